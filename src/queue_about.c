/* queue_about.c: what each queue entry is about: its title, one shared copy per distinct title,
 * and the latest event's kind and sender, with the rule for which wins when one entry takes
 * another in (queue_about.h). Pure, below queue.c. */
#include "queue_about.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define QT_CHAIN_LOOK 8 /* copies of a chain a lookup compares before making a new one */

struct qt_node {
    qt_node *next, **pprev; /* chain; pprev points at whatever points here (O(1) unlink) */
    qtitles *table;         /* a reference can be put back without the table at hand */
    uint64_t hash;
    size_t refs;
    char s[];
};

static const char *const event_names[QEVENT_COUNT] = {
    [QEVENT_OTHER] = "other",   [QEVENT_IMPORT] = "import", [QEVENT_UPGRADE] = "upgrade",
    [QEVENT_RENAME] = "rename", [QEVENT_DELETE] = "delete", [QEVENT_MANUAL] = "manual",
};

const char *q_event_kind_name(q_event_kind k)
{
    return (unsigned)k < QEVENT_COUNT ? event_names[k] : "other";
}

int q_event_kind_parse(const char *s)
{
    for (int i = 0; s && i < QEVENT_COUNT; i++)
        if (strcmp(s, event_names[i]) == 0)
            return i;
    return -1;
}

q_event_kind q_event_kind_of(unsigned kinds, bool manual)
{
    if (manual)
        return QEVENT_MANUAL;
    if (kinds & QKIND_UPGRADE)
        return QEVENT_UPGRADE;
    if (kinds & QKIND_IMPORT)
        return QEVENT_IMPORT;
    if (kinds & QKIND_RENAME)
        return QEVENT_RENAME;
    if (kinds & QKIND_DELETE)
        return QEVENT_DELETE;
    return QEVENT_OTHER;
}

/* ---- the shared copies ---- */

static void link_node(qtitles *t, qt_node *x)
{
    qt_node **head = &t->b[x->hash & (t->nb - 1)];
    x->next = *head;
    if (x->next)
        x->next->pprev = &x->next;
    x->pprev = head;
    *head = x;
}

static void grow(qtitles *t)
{
    qt_node **old = t->b;
    size_t nold = t->nb;
    t->nb = nold ? nold * 2 : 64;
    t->b = xcalloc(t->nb, sizeof *t->b);
    for (size_t i = 0; i < nold; i++) {
        for (qt_node *x = old[i], *next; x; x = next) {
            next = x->next;
            link_node(t, x);
        }
    }
    free(old);
}

const char *qtitles_get(qtitles *t, const char *s)
{
    if (!s || !*s)
        return NULL;
    size_t len = strlen(s);
    uint64_t h = hash_bytes(HASH_INIT, s, len);
    if (t->nb) {
        qt_node *x = t->b[h & (t->nb - 1)];
        for (int i = 0; x && i < QT_CHAIN_LOOK; x = x->next, i++) {
            if (x->hash == h && strcmp(x->s, s) == 0) {
                x->refs++;
                return x->s;
            }
        }
    }
    if (t->n + 1 > t->nb)
        grow(t);
    qt_node *x = xmalloc(sizeof *x + len + 1);
    memcpy(x->s, s, len + 1);
    x->table = t;
    x->hash = h;
    x->refs = 1;
    link_node(t, x);
    t->n++;
    return x->s;
}

void qtitles_put(const char *title)
{
    if (!title)
        return;
    /* the entries hold the copy as const (they must not write it); the table owns it */
    qt_node *x = (qt_node *)((uintptr_t)title - offsetof(qt_node, s));
    if (--x->refs)
        return;
    *x->pprev = x->next;
    if (x->next)
        x->next->pprev = x->pprev;
    x->table->n--;
    free(x);
}

void qtitles_free(qtitles *t)
{
    for (size_t i = 0; i < t->nb; i++) {
        for (qt_node *x = t->b[i], *next; x; x = next) {
            next = x->next;
            free(x);
        }
    }
    free(t->b);
    *t = (qtitles){0};
}

/* ---- which event an entry shows ---- */

void about_take(qtitles *t, q_entry *e, const char *title, q_event_kind event, unsigned source_bit)
{
    if (title && *title) {
        const char *mine = qtitles_get(t, title); /* before the put: it may be the same copy */
        qtitles_put(e->title);
        e->title = mine;
    }
    e->event = (unsigned)event < QEVENT_COUNT ? event : QEVENT_OTHER;
    e->last_app = source_bit ? (unsigned)__builtin_ctz(source_bit) + 1u : 0u;
}

void about_fold(q_entry *d, q_entry *s)
{
    bool newer = s->last_event > d->last_event;
    if (newer) {
        d->event = s->event;
        d->last_app = s->last_app;
    }
    if (s->title && (newer || !d->title)) {
        const char *t = d->title;
        d->title = s->title;
        s->title = t; /* put back when s is freed */
    }
}
