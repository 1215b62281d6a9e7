/* queue_deliveries.c: the rules over one entry's deliveries (target, library, state, error):
 * finding, renewing for a new event, updating from a new list of libraries (an event or a
 * re-map), releasing parked ones, and the interned strings they point to. Pure, below queue.c,
 * which decides when each applies (queue_deliveries.h). */
#include "queue_deliveries.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char *const delivery_names[DELIVERY_STATE_COUNT] = {
    "pending", "unresolved", "done", "retry", "parked",
};

const char *delivery_state_name(delivery_state s)
{
    return (unsigned)s < DELIVERY_STATE_COUNT ? delivery_names[s] : "unknown";
}

size_t q_entry_count_deliveries(const q_entry *e, delivery_state s)
{
    size_t n = 0;
    for (size_t i = 0; i < e->n_deliv; i++)
        n += e->deliv[i].state == s;
    return n;
}

void deliv_free(q_entry *e)
{
    for (size_t i = 0; i < e->n_deliv; i++)
        free(e->deliv[i].error);
    if (e->deliv != &e->deliv_one)
        free(e->deliv);
    e->deliv = NULL;
    e->n_deliv = 0;
}

const char *deliv_intern(deliv_strings *t, const char *s)
{
    if (!s)
        s = "";
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i], s) == 0)
            return t->v[i];
    t->v = xrealloc(t->v, (t->n + 1) * sizeof *t->v);
    return t->v[t->n++] = xstrdup(s);
}

void deliv_strings_free(deliv_strings *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i]);
    free(t->v);
    t->v = NULL;
    t->n = 0;
}

int deliv_find(const q_entry *e, const char *target, const char *library)
{
    for (size_t i = 0; i < e->n_deliv; i++)
        if (strcmp(e->deliv[i].target, target) == 0 && strcmp(e->deliv[i].library, library) == 0)
            return (int)i;
    return -1;
}

/* Whether e has a resolved delivery to target (a library is known). */
static bool knows_target(const q_entry *e, const char *target)
{
    for (size_t i = 0; i < e->n_deliv; i++)
        if (strcmp(e->deliv[i].target, target) == 0 && e->deliv[i].state != DELIVERY_UNRESOLVED)
            return true;
    return false;
}

bool deliv_any(const q_entry *e, delivery_state s)
{
    for (size_t i = 0; i < e->n_deliv; i++)
        if (e->deliv[i].state == s)
            return true;
    return false;
}

/* Something to send at the next attempt. */
bool deliv_runnable(const q_entry *e)
{
    return deliv_any(e, DELIVERY_PENDING) || deliv_any(e, DELIVERY_RETRY);
}

/* A new event: whatever was delivered in this round is sent again (a file arrived since), and
 * the rclone step runs again. Parked and unresolved ones wait as they were. */
void deliv_renew(q_entry *e)
{
    for (size_t i = 0; i < e->n_deliv; i++)
        if (e->deliv[i].state == DELIVERY_DONE)
            e->deliv[i].state = DELIVERY_PENDING;
    e->rclone_done = false;
    e->rclone_absent = false;
}

/* The entry's deliveries become `nw` (at most QUEUE_MAX_DELIVERIES): one it had keeps its state
 * and error, one to a target that was unresolved (or a new one) is pending. With keep_old, the
 * ones `nw` lacks are kept too (an event adds; a re-map replaces). Returns whether anything
 * changed. */
bool deliv_update(deliv_strings *t, q_entry *e, const q_delivery *nw, size_t n, bool keep_old)
{
    q_delivery out[QUEUE_MAX_DELIVERIES];
    size_t k = 0;
    bool changed = false, used[QUEUE_MAX_DELIVERIES] = {false};
    for (size_t i = 0; i < n && k < QUEUE_MAX_DELIVERIES; i++) {
        const char *lib = nw[i].library ? nw[i].library : "";
        bool unresolved = nw[i].state == DELIVERY_UNRESOLVED;
        if (unresolved && knows_target(e, nw[i].target)) {
            /* "no list" never undoes what the entry knows of that target: its deliveries stay */
            for (size_t m = 0; m < e->n_deliv && k < QUEUE_MAX_DELIVERIES; m++)
                if (!used[m] && strcmp(e->deliv[m].target, nw[i].target) == 0) {
                    used[m] = true;
                    out[k++] = e->deliv[m];
                }
            continue;
        }
        int at = deliv_find(e, nw[i].target, unresolved ? "" : lib);
        if (at >= 0 && !used[at]) {
            /* the same delivery, or a target still unresolved */
            used[at] = true;
            out[k++] = e->deliv[at];
            continue;
        }
        changed = true;
        out[k++] = (q_delivery){.target = deliv_intern(t, nw[i].target), .library = deliv_intern(t, unresolved ? "" : lib),
                                .state = unresolved ? DELIVERY_UNRESOLVED : DELIVERY_PENDING};
    }
    for (size_t i = 0; i < e->n_deliv; i++) {
        if (used[i])
            continue;
        /* Kept when the event does not name it, unless the target just resolved (its
         * unresolved placeholder gives way to the libraries found). */
        bool resolved_now = false;
        for (size_t j = 0; j < k; j++)
            if (e->deliv[i].state == DELIVERY_UNRESOLVED && out[j].target == e->deliv[i].target)
                resolved_now = true;
        if (keep_old && !resolved_now && k < QUEUE_MAX_DELIVERIES) {
            out[k++] = e->deliv[i];
            continue;
        }
        changed = true;
        free(e->deliv[i].error);
    }
    if (e->deliv != &e->deliv_one)
        free(e->deliv);
    e->deliv = NULL;
    if (k == 1) {
        /* one server: no allocation of its own */
        e->deliv_one = out[0];
        e->deliv = &e->deliv_one;
    } else if (k) {
        e->deliv = xmalloc(k * sizeof *out);
        memcpy(e->deliv, out, k * sizeof *out);
    }
    e->n_deliv = (uint32_t)k;
    return changed;
}

/* The first parked delivery's error: what the person has to fix. */
const char *deliv_parked_reason(const q_entry *e)
{
    for (size_t i = 0; i < e->n_deliv; i++)
        if (e->deliv[i].state == DELIVERY_PARKED)
            return e->deliv[i].error ? e->deliv[i].error : "a media server refused the scan";
    return "parked";
}

bool deliv_unpark(q_entry *e, const char *target)
{
    bool any = false;
    for (size_t i = 0; i < e->n_deliv; i++) {
        q_delivery *d = &e->deliv[i];
        if (d->state != DELIVERY_PARKED || (target && strcmp(d->target, target) != 0))
            continue;
        d->state = DELIVERY_PENDING;
        free(d->error);
        d->error = NULL;
        any = true;
    }
    return any;
}
