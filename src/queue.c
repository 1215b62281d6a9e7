/* queue.c: pending scans, one entry per folder with its deliveries, and the rules that decide when
 * each may run (DESIGN.md "The queue"). Pure logic: the caller passes the time in. The index
 * structures the rules work over are queue_index.c's; the rules over one entry's deliveries
 * (and the interned strings they point to) are queue_deliveries.c's.
 *
 * Storage. Everything is intrusive, so an entry costs one allocation (struct and path together)
 * plus one for its file list (pointer array and strings together) and one for its deliveries
 * (whose target names and library ids are interned: a few strings shared by every entry):
 * - the entries by path with the folder tree over them, and by id
 *   (queue_index.h); a new entry whose own path has no folder node has no descendants, so
 *   queue_add costs O(depth) hash lookups;
 * - where the entry waits, by state (q_entry.heap_idx is its slot in a heap):
 *     timed heap  WAITING, AGING, HELD, RETRY, ordered by (due, id);
 *     ready heap  READY entries held back by the concurrency limit;
 *     blocked     READY entries held back by a nested CHECKING/SYNCING entry, looked at again
 *                 whenever an entry stops being CHECKING/SYNCING;
 *     active      CHECKING, SYNCING;
 *   UNRESOLVED and PARKED entries have no timer and sit in none of them.
 * READY entries stay out of the timed heap so queue_next_wakeup() never reports a past time for
 * work that cannot start (the owner's timer would spin).
 */
#include "queue.h"

#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "list.h"
#include "queue_about.h"
#include "queue_deliveries.h"
#include "queue_files.h"
#include "queue_index.h"
#include "util.h"

#define BACKOFF_BASE_MS 5000ULL
#define BACKOFF_MAX_SHIFT 40 /* 5000 << 40 still fits in 64 bits; beyond, the cap is retry_max */
#define CREC_SWEEP_MIN 64

enum { IN_NONE = 0, IN_TIMED, IN_READY, IN_BLOCKED, IN_ACTIVE };

typedef struct qent qent;

struct qent {
    qi_node n;                  /* first member, and n.e first in it: a q_entry * is a qent * */
    uint64_t not_before;        /* absorbed or own backoff end: a backoff is never shortened */
    unsigned where : 3;         /* IN_* */
    unsigned ready_from : 4;    /* state before READY: decides needs_age */
    unsigned dirty_manual : 1;  /* a manual event arrived while checking/syncing */
    unsigned slot_free : 1;     /* SYNCING past its rclone step: no longer holds a sync slot */
    char inl[];                 /* the path */
};

typedef struct qvec {
    qent **v;
    size_t n, cap;
} qvec;

struct queue {
    queue_params p;
    queue_change_fn on_change;
    void *ud;
    qi_keys keys;               /* entries by key, and the folder tree */
    qi_ids ids;                 /* by id (holds detached entries during a remap too) */
    qi_stamps cooled;           /* cooldown memory: last successful scan of a key */
    size_t csweep;
    uint64_t cnow;
    qi_heap timed, ready;
    qvec blocked, active;       /* READY held back; CHECKING/SYNCING (slot in e.heap_idx) */
    qvec scratch;
    size_t n_slot_free;         /* active entries with slot_free */
    deliv_strings interned;     /* queue_intern's strings */
    qtitles titles;             /* the entries' titles, one shared copy each (queue_about.c) */
    size_t nstate[ENTRY_STATE_COUNT];
    int64_t next_id;
    uint64_t rng;
};

static const char *const state_names[ENTRY_STATE_COUNT] = {
    "unresolved", "waiting", "aging", "held", "ready", "checking", "syncing", "retry", "parked",
};

const char *entry_state_name(entry_state s)
{
    return (unsigned)s < ENTRY_STATE_COUNT ? state_names[s] : "unknown";
}

/* ---- small helpers ---- */

static qent *of_node(qi_node *n)
{
    return n ? container_of(n, qent, n) : NULL;
}

static qent *of_entry(q_entry *e)
{
    return e ? of_node(container_of(e, qi_node, e)) : NULL;
}

static uint64_t max64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

static uint64_t min64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* An entry's counters (attempts, events) stop at QUEUE_COUNT_MAX. */
static uint16_t sat_addu(unsigned a, unsigned b)
{
    return a >= QUEUE_COUNT_MAX || b >= QUEUE_COUNT_MAX - a ? (uint16_t)QUEUE_COUNT_MAX : (uint16_t)(a + b);
}

static bool is_active(entry_state s)
{
    return s == ENTRY_CHECKING || s == ENTRY_SYNCING;
}

static bool is_timed(entry_state s)
{
    return s == ENTRY_WAITING || s == ENTRY_AGING || s == ENTRY_HELD || s == ENTRY_RETRY;
}

static size_t max_active(const queue_t *q)
{
    return q->p.max_concurrent > 0 ? (size_t)q->p.max_concurrent : 1;
}

/* CHECKING and SYNCING entries hold a sync slot until their rclone step is over. */
static size_t slots_used(const queue_t *q)
{
    return q->active.n - q->n_slot_free;
}

static void emit(queue_t *q, qent *x, q_change what)
{
    if (q->on_change)
        q->on_change(q->ud, &x->n.e, what);
}

static void replace_str(char **dst, const char *src)
{
    char *n = xstrdup(src);
    free(*dst);
    *dst = n;
}

/* Component ancestry: "/tv/Show" is above "/tv/Show/S1" but not "/tv/Show 2"; "/" is above
 * every other absolute path. */
static bool is_above(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen >= blen)
        return false;
    if (alen == 1 && a[0] == '/')
        return b[0] == '/';
    return memcmp(a, b, alen) == 0 && b[alen] == '/';
}

static bool nested(const qent *a, const qent *b)
{
    size_t al = strlen(a->n.e.path), bl = strlen(b->n.e.path);
    return is_above(a->n.e.path, al, b->n.e.path, bl) || is_above(b->n.e.path, bl, a->n.e.path, al);
}

static void vec_push(qvec *v, qent *x)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 16;
        v->v = xrealloc(v->v, v->cap * sizeof *v->v);
    }
    v->v[v->n++] = x;
}

/* The blocked and active lists: an entry on one is in no heap, so its heap slot holds its
 * place in the list, and taking it off is O(1) (the last one moves into its slot). */
static void vec_add(qvec *v, qent *x)
{
    x->n.e.heap_idx = (uint32_t)v->n; /* MAX_PENDING is far below 2^32 */
    vec_push(v, x);
}

static void vec_del(qvec *v, qent *x)
{
    size_t i = x->n.e.heap_idx;
    assert(i < v->n && v->v[i] == x);
    v->v[i] = v->v[--v->n];
    v->v[i]->n.e.heap_idx = (uint32_t)i;
}

/* ---- placement by state ---- */

static void place(queue_t *q, qent *x)
{
    entry_state s = x->n.e.state;
    if (is_timed(s)) {
        x->where = IN_TIMED;
        qi_heap_push(&q->timed, &x->n);
    } else if (s == ENTRY_READY) {
        x->where = IN_READY;
        qi_heap_push(&q->ready, &x->n);
    } else if (is_active(s)) {
        x->where = IN_ACTIVE;
        vec_add(&q->active, x);
    } else {
        x->where = IN_NONE;
    }
}

static void unplace(queue_t *q, qent *x)
{
    switch (x->where) {
    case IN_TIMED:
        qi_heap_del(&q->timed, &x->n);
        break;
    case IN_READY:
        qi_heap_del(&q->ready, &x->n);
        break;
    case IN_BLOCKED:
        vec_del(&q->blocked, x);
        break;
    case IN_ACTIVE:
        vec_del(&q->active, x);
        if (x->slot_free) {
            q->n_slot_free--;
            x->slot_free = 0;
        }
        break;
    default:
        break;
    }
    x->where = IN_NONE;
}

/* The due time changed: restore heap order. */
static void reschedule(queue_t *q, qent *x)
{
    if (x->where == IN_TIMED)
        qi_heap_fix(&q->timed, &x->n);
    else if (x->where == IN_READY)
        qi_heap_fix(&q->ready, &x->n);
}

static void set_state(queue_t *q, qent *x, entry_state s)
{
    if (x->n.e.keyed) {
        q->nstate[x->n.e.state]--;
        q->nstate[s]++;
    }
    x->n.e.state = s;
}

/* ---- indexes ---- */

/* Keyed entries are the ones counted, by state. */
static void index_insert(queue_t *q, qent *x)
{
    qi_keys_insert(&q->keys, &x->n);
    q->nstate[x->n.e.state]++;
}

static void index_remove(queue_t *q, qent *x)
{
    if (!x->n.e.keyed)
        return;
    qi_keys_remove(&q->keys, &x->n);
    q->nstate[x->n.e.state]--;
}

static qent *key_find(const queue_t *q, const char *p, size_t len)
{
    return of_node(qi_keys_find(&q->keys, p, len));
}

static void collect_one(void *ud, qi_node *n)
{
    queue_t *q = ud;
    if (!is_active(n->e.state))
        vec_push(&q->scratch, of_node(n));
}

/* Non-active entries strictly beneath p into q->scratch; returns how many. */
static size_t collect_below(queue_t *q, const char *p, size_t len)
{
    q->scratch.n = 0;
    qi_keys_below(&q->keys, p, len, collect_one, q);
    return q->scratch.n;
}

/* ---- entries ---- */

static qent *ent_alloc(const char *path)
{
    size_t pl = strlen(path) + 1;
    qent *x = xcalloc(1, offsetof(qent, inl) + pl); /* the path right after the fields */
    memcpy(x->inl, path, pl);
    x->n.e.path = x->inl;
    return x;
}

static void ent_free(qent *x)
{
    free(x->n.e.files);
    deliv_free(&x->n.e);
    free(x->n.e.park_reason);
    free(x->n.e.last_error);
    free(x->n.e.hold_reason);
    qtitles_put(x->n.e.title);
    free(x);
}

/* next_id only grows and queue_restore moves it past every id it inserts, so it is free. */
static int64_t take_id(queue_t *q)
{
    return q->next_id++;
}

/* Emits DEL, then unlinks and frees. */
static void ent_remove(queue_t *q, qent *x)
{
    emit(q, x, QCHANGE_DEL);
    index_remove(q, x);
    unplace(q, x);
    qi_ids_remove(&q->ids, &x->n);
    ent_free(x);
}

/* ---- deliveries (queue_deliveries.c) ---- */

const char *queue_intern(queue_t *q, const char *s)
{
    return deliv_intern(&q->interned, s);
}

/* ---- timing rules ---- */

static uint64_t debounce_due(const queue_t *q, uint64_t first, uint64_t last)
{
    uint64_t cap = q->p.max_delay_ms < q->p.delay_ms ? q->p.delay_ms : q->p.max_delay_ms;
    return min64(sat_add(last, q->p.delay_ms), sat_add(first, cap));
}

static uint64_t cooldown_until(const queue_t *q, const char *p)
{
    if (!q->p.cooldown_ms || !q->cooled.count)
        return 0;
    const uint64_t *at = qi_stamps_find(&q->cooled, p, strlen(p));
    return at ? sat_add(*at, q->p.cooldown_ms) : 0;
}

/* Due of a WAITING entry: the debounce window (or now for a manual one), not before the key's
 * cooldown (manual skips it) nor before any backoff the entry carries. */
static uint64_t waiting_due(const queue_t *q, const qent *x, uint64_t now)
{
    uint64_t d;
    if (x->n.e.manual) {
        d = now;
    } else {
        d = debounce_due(q, x->n.e.first_seen, x->n.e.last_event);
        d = max64(d, cooldown_until(q, x->n.e.path));
    }
    return max64(d, x->not_before);
}

/* After a fold: WAITING recomputes its window; any other timed state only moves later. */
static void refresh_due(queue_t *q, qent *x, uint64_t now)
{
    switch (x->n.e.state) {
    case ENTRY_WAITING:
        x->n.e.due = waiting_due(q, x, now);
        break;
    case ENTRY_AGING:
    case ENTRY_HELD:
    case ENTRY_RETRY:
    case ENTRY_READY:
        x->n.e.due = max64(x->n.e.due, x->not_before);
        break;
    default:
        break;
    }
    reschedule(q, x);
}

static double rand01(queue_t *q)
{
    if (q->p.rand01)
        return q->p.rand01(q->p.rand_ud);
    /* splitmix64 */
    uint64_t z = (q->rng += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

/* Full jitter: random(0, min(retry_max, 5 s * 2^(attempts-1))). */
static uint64_t backoff(queue_t *q, unsigned attempts)
{
    unsigned n = attempts ? attempts - 1 : 0;
    uint64_t cap = n >= BACKOFF_MAX_SHIFT ? UINT64_MAX : BACKOFF_BASE_MS << n;
    cap = min64(cap, q->p.retry_max_ms);
    double r = rand01(q);
    if (!(r > 0.0))
        r = 0.0;
    if (r > 1.0)
        r = 1.0;
    double d = r * (double)cap;
    return d >= (double)cap ? cap : (uint64_t)d;
}

/* ---- folding one entry into another ---- */

/* src's work moves into the non-active dst (absorb, or merge of two entries). The caller
 * recomputes dst's due and removes src. */
static void fold(qent *dst, qent *src)
{
    q_entry *d = &dst->n.e, *s = &src->n.e;
    about_fold(d, s); /* before the times change: it compares them */
    d->first_seen = min64(d->first_seen, s->first_seen);
    d->last_event = max64(d->last_event, s->last_event);
    files_union(d, (const char *const *)s->files, s->n_files, s->path);
    d->sources |= s->sources;
    d->kinds |= s->kinds;
    d->events = sat_addu(d->events, s->events);
    deliv_renew(d); /* src's events are news to dst's round */
    if (s->attempts > d->attempts)
        d->attempts = s->attempts;
    if (s->manual)
        d->manual = true;
    if (!d->last_error) {
        d->last_error = s->last_error;
        s->last_error = NULL;
    }
    if (s->state == ENTRY_RETRY)
        dst->not_before = max64(dst->not_before, s->due);
    dst->not_before = max64(dst->not_before, src->not_before);
}

/* src's work joins the CHECKING/SYNCING dst as a dirty re-run. */
static void fold_dirty(qent *dst, uint64_t first, uint64_t last, const char *const *files, size_t n, const char *base,
                       unsigned sources, unsigned kinds, unsigned events, bool manual)
{
    q_entry *d = &dst->n.e;
    d->kinds |= kinds;
    d->dirty_first = d->dirty ? min64(d->dirty_first, first) : first;
    d->dirty = true;
    d->last_event = max64(d->last_event, last);
    files_union(d, files, n, base);
    d->sources |= sources;
    d->events = sat_addu(d->events, events);
    if (manual)
        dst->dirty_manual = 1;
}

/* Looks at the entries for the ancestors of p from the top down, and at p itself when self:
 * *outer = the topmost one not CHECKING/SYNCING, *act = a CHECKING/SYNCING one. */
static void scan_up(const queue_t *q, const char *p, size_t len, bool self, qent **outer, qent **act)
{
    qi_up w;
    qi_node *n;
    *outer = *act = NULL;
    qi_up_init(&w, &q->keys, p, len, self);
    while ((n = qi_up_next(&w))) {
        if (is_active(n->e.state)) {
            *act = of_node(n);
            continue;
        }
        *outer = of_node(n);
        return;
    }
}

/* Folds the entries in q->scratch into x (not indexed yet) and removes them. */
static unsigned absorb_scratch(queue_t *q, qent *x)
{
    unsigned n = 0;
    for (size_t i = 0; i < q->scratch.n; i++) {
        qent *d = q->scratch.v[i];
        fold(x, d);
        ent_remove(q, d);
        n++;
    }
    q->scratch.n = 0;
    return n;
}

static bool nested_with_active(const queue_t *q, const qent *x)
{
    for (size_t i = 0; i < q->active.n; i++)
        if (q->active.v[i] != x && nested(q->active.v[i], x))
            return true;
    return false;
}

/* An entry stopped being CHECKING/SYNCING: READY entries it blocked may go. */
static void unblock(queue_t *q)
{
    for (size_t i = 0; i < q->blocked.n;) {
        qent *x = q->blocked.v[i];
        if (nested_with_active(q, x)) {
            i++;
            continue;
        }
        unplace(q, x); /* the last one moves into slot i */
        place(q, x);
    }
}

/* x just left CHECKING/SYNCING and is placed for its new state. An ancestor entry that came in
 * meanwhile waited for it; it now takes over what remains (nested folders never sync at the
 * same time, and one scan of the ancestor covers both) and x is freed. Emits the changes and
 * returns the entry that carries the work: x or that ancestor. */
static qent *settle(queue_t *q, qent *x, uint64_t now)
{
    qent *anc, *act;
    scan_up(q, x->n.e.path, strlen(x->n.e.path), false, &anc, &act);
    if (!anc) {
        emit(q, x, QCHANGE_PUT);
        return x;
    }
    fold(anc, x);
    refresh_due(q, anc, now);
    ent_remove(q, x);
    emit(q, anc, QCHANGE_PUT);
    return anc;
}

/* ---- public ---- */

queue_t *queue_new(const queue_params *p, queue_change_fn on_change, void *ud)
{
    queue_t *q = xcalloc(1, sizeof *q);
    q->p = *p;
    q->on_change = on_change;
    q->ud = ud;
    q->next_id = 1;
    q->csweep = CREC_SWEEP_MIN;
    if (random_bytes(&q->rng, sizeof q->rng) < 0)
        q->rng = 0x853c49e6748fea9bULL ^ (uint64_t)(uintptr_t)q;
    return q;
}

static void free_node(qi_node *n)
{
    ent_free(of_node(n));
}

void queue_free(queue_t *q)
{
    if (!q)
        return;
    qi_ids_drain(&q->ids, free_node);
    qi_keys_free(&q->keys);
    qi_stamps_free(&q->cooled);
    qi_heap_free(&q->timed);
    qi_heap_free(&q->ready);
    deliv_strings_free(&q->interned);
    qtitles_free(&q->titles); /* after the entries, which held its copies */
    free(q->scratch.v);
    free(q->blocked.v);
    free(q->active.v);
    free(q);
}

void queue_set_params(queue_t *q, const queue_params *p)
{
    q->p = *p;
    /* Open debounce windows follow the new delays; other waits (age, hold, backoff) keep their
     * due, so a backoff is never shortened. */
    q->scratch.n = 0;
    for (size_t i = 0; i < q->timed.n; i++)
        if (q->timed.v[i]->e.state == ENTRY_WAITING && !q->timed.v[i]->e.manual)
            vec_push(&q->scratch, of_node(q->timed.v[i]));
    for (size_t i = 0; i < q->scratch.n; i++) {
        qent *x = q->scratch.v[i];
        uint64_t d = debounce_due(q, x->n.e.first_seen, x->n.e.last_event);
        d = max64(max64(d, cooldown_until(q, x->n.e.path)), x->not_before);
        if (d == x->n.e.due)
            continue;
        x->n.e.due = d;
        reschedule(q, x);
        emit(q, x, QCHANGE_PUT);
    }
    q->scratch.n = 0;
}

void queue_set_next_id(queue_t *q, int64_t next_id)
{
    if (next_id > q->next_id)
        q->next_id = next_id;
}

/* An entry with nothing to send waits, untimed, for a library list; one that has something
 * again waits its window. */
static void settle_unresolved(queue_t *q, qent *x, uint64_t now)
{
    entry_state s = x->n.e.state;
    if (s == ENTRY_UNRESOLVED && deliv_runnable(&x->n.e)) {
        unplace(q, x);
        set_state(q, x, ENTRY_WAITING);
        x->n.e.due = waiting_due(q, x, now);
        place(q, x);
    } else if (is_timed(s) && !deliv_runnable(&x->n.e) && deliv_any(&x->n.e, DELIVERY_UNRESOLVED)) {
        unplace(q, x);
        set_state(q, x, ENTRY_UNRESOLVED);
        place(q, x);
    }
}

static void merge_event(queue_t *q, qent *x, const q_event *ev, uint64_t now)
{
    q_entry *e = &x->n.e;
    e->first_seen = min64(e->first_seen, ev->at);
    e->last_event = max64(e->last_event, ev->at);
    files_union(e, ev->files, ev->n_files, NULL);
    e->sources |= ev->source_bit;
    e->kinds |= ev->kinds;
    e->events = sat_addu(e->events, 1);
    about_take(&q->titles, e, ev->title, ev->event, ev->source_bit);
    deliv_renew(e);
    /* The folder's own deliveries may know more than the entry's (a list read meanwhile). */
    if (strcmp(e->path, ev->path) == 0)
        deliv_update(&q->interned, e, ev->deliv, ev->n_deliv, true);
    if (ev->manual)
        e->manual = true;
    if (e->state == ENTRY_WAITING) {
        e->due = waiting_due(q, x, now);
    } else if (e->state == ENTRY_AGING && ev->manual) {
        /* Manual skips the minimum age, which is all an AGING entry waits for. */
        e->due = max64(now, x->not_before);
    }
    reschedule(q, x);
    settle_unresolved(q, x, now);
}

int queue_add(queue_t *q, const q_event *ev, uint64_t now, q_add_result *res)
{
    if (!ev || !ev->path || !ev->path[0])
        return -EINVAL;
    const char *p = ev->path;
    size_t len = strlen(p);
    qent *outer, *act;
    scan_up(q, p, len, true, &outer, &act);
    if (outer) {
        merge_event(q, outer, ev, now);
        emit(q, outer, QCHANGE_PUT);
        if (res)
            *res = (q_add_result){.kind = QADD_MERGED, .entry = &outer->n.e};
        return 0;
    }
    if (act) {
        about_take(&q->titles, &act->n.e, ev->title, ev->event, ev->source_bit);
        fold_dirty(act, ev->at, ev->at, ev->files, ev->n_files, NULL, ev->source_bit, ev->kinds, 1, ev->manual);
        emit(q, act, QCHANGE_PUT);
        if (res)
            *res = (q_add_result){.kind = QADD_DIRTY, .entry = &act->n.e};
        return 0;
    }

    size_t nabs = collect_below(q, p, len);
    if (q->p.max_pending > 0 && qi_keys_count(&q->keys) + 1 > (size_t)q->p.max_pending + nabs) {
        q->scratch.n = 0;
        return -ENOSPC;
    }
    qent *x = ent_alloc(p);
    x->n.e.id = take_id(q);
    x->n.e.first_seen = x->n.e.last_event = ev->at;
    x->n.e.sources = ev->source_bit;
    x->n.e.kinds = ev->kinds;
    x->n.e.events = 1;
    x->n.e.manual = ev->manual;
    about_take(&q->titles, &x->n.e, ev->title, ev->event, ev->source_bit);
    files_union(&x->n.e, ev->files, ev->n_files, NULL);
    deliv_update(&q->interned, &x->n.e, ev->deliv, ev->n_deliv, false);
    x->n.e.state = deliv_runnable(&x->n.e) ? ENTRY_WAITING : ENTRY_UNRESOLVED;
    qi_ids_insert(&q->ids, &x->n);
    /* Absorbed entries give up their state: a parked one's request is renewed by this event, so
     * the new entry waits like any other and carries no park reason (the error comes back by
     * itself if the cause is still there); a retry's backoff end is kept as not_before. */
    unsigned absorbed = absorb_scratch(q, x);
    x->n.e.due = x->n.e.state == ENTRY_WAITING ? waiting_due(q, x, now)
                                            : debounce_due(q, x->n.e.first_seen, x->n.e.last_event);
    index_insert(q, x);
    place(q, x);
    emit(q, x, QCHANGE_PUT);
    if (res)
        *res = (q_add_result){.kind = QADD_NEW, .entry = &x->n.e, .absorbed = absorbed};
    return 0;
}

uint64_t queue_next_wakeup(const queue_t *q)
{
    /* Every timed state needs a slot to start; with none free nothing can run before a
     * CHECKING/SYNCING entry ends, and the owner looks again after that call. */
    if (slots_used(q) >= max_active(q))
        return UINT64_MAX;
    uint64_t w = UINT64_MAX;
    const qi_node *t = qi_heap_top(&q->timed), *r = qi_heap_top(&q->ready);
    if (t)
        w = t->e.due;
    if (r)
        w = min64(w, r->e.due);
    return w;
}

static void to_ready(queue_t *q, qent *x, bool blocked)
{
    unplace(q, x);
    if (x->n.e.state != ENTRY_READY) {
        x->ready_from = x->n.e.state;
        set_state(q, x, ENTRY_READY);
        emit(q, x, QCHANGE_PUT);
    }
    if (blocked) {
        x->where = IN_BLOCKED;
        vec_add(&q->blocked, x);
    } else {
        place(q, x);
    }
}

q_entry *queue_take_ready(queue_t *q, uint64_t now, bool *needs_age)
{
    if (needs_age)
        *needs_age = false;
    if (slots_used(q) >= max_active(q)) {
        qi_node *t;
        while ((t = qi_heap_top(&q->timed)) && t->e.due <= now)
            to_ready(q, of_node(t), false);
        return NULL;
    }
    for (;;) {
        qi_node *t = qi_heap_top(&q->timed), *r = qi_heap_top(&q->ready);
        if (t && t->e.due > now)
            t = NULL;
        if (r && r->e.due > now)
            r = NULL;
        qent *c = of_node(t && r ? (qi_before(t, r) ? t : r) : (t ? t : r));
        if (!c)
            return NULL;
        if (nested_with_active(q, c)) {
            to_ready(q, c, true);
            continue;
        }
        entry_state from = c->n.e.state == ENTRY_READY ? (entry_state)c->ready_from : c->n.e.state;
        unplace(q, c);
        /* Only a restore can leave pending entries nested; one scan of c covers them. */
        collect_below(q, c->n.e.path, strlen(c->n.e.path));
        absorb_scratch(q, c);
        /* dirty means "an event arrived since this run started"; the run starting now includes
         * every event so far. */
        c->n.e.dirty = false;
        c->n.e.dirty_first = 0;
        c->dirty_manual = 0;
        c->not_before = 0;
        set_state(q, c, ENTRY_CHECKING);
        place(q, c);
        if (needs_age)
            *needs_age = q->p.min_age_ms > 0 && !c->n.e.manual && (from == ENTRY_WAITING || from == ENTRY_AGING);
        emit(q, c, QCHANGE_PUT);
        return &c->n.e;
    }
}

/* x leaves CHECKING/SYNCING for state s with due d. x may be freed (settle): returns the entry
 * that carries its work. */
static q_entry *leave_active(queue_t *q, qent *x, entry_state s, uint64_t d, uint64_t now)
{
    unplace(q, x);
    set_state(q, x, s);
    x->n.e.due = d;
    if (s != ENTRY_HELD) {
        free(x->n.e.hold_reason);
        x->n.e.hold_reason = NULL;
    }
    place(q, x);
    qent *carrier = settle(q, x, now);
    unblock(q);
    return &carrier->n.e;
}

q_entry *queue_age_checked(queue_t *q, q_entry *e, uint64_t newest_mtime, uint64_t now, bool *old_enough)
{
    qent *x = of_entry(e);
    assert(x && x->n.e.state == ENTRY_CHECKING);
    *old_enough = true;
    if (!q->p.min_age_ms)
        return e; /* MINIMUM_AGE was set to 0 by a reload since the entry was taken */
    x->n.e.age_unseen = newest_mtime == 0;
    /* An mtime in the future (clock skew on the remote) is no evidence of a recent write and
     * would hold the folder until the clocks meet: treat it as unknown. */
    uint64_t ref = x->n.e.last_event;
    if (newest_mtime <= now)
        ref = max64(ref, newest_mtime);
    uint64_t age = now > ref ? now - ref : 0;
    if (age >= q->p.min_age_ms)
        return e;
    *old_enough = false;
    return leave_active(q, x, ENTRY_AGING, sat_add(now, q->p.min_age_ms - age), now);
}

q_entry *queue_hold(queue_t *q, q_entry *e, const char *reason, uint64_t now)
{
    qent *x = of_entry(e);
    assert(x && is_active(x->n.e.state));
    replace_str(&x->n.e.hold_reason, reason ? reason : "held");
    return leave_active(q, x, ENTRY_HELD, sat_add(now, q->p.hold_recheck_ms), now);
}

void queue_sync_started(queue_t *q, q_entry *e, uint64_t now)
{
    (void)now;
    qent *x = of_entry(e);
    assert(x && x->n.e.state == ENTRY_CHECKING);
    set_state(q, x, ENTRY_SYNCING);
    emit(q, x, QCHANGE_PUT);
}

void queue_release_slot(queue_t *q, q_entry *e)
{
    qent *x = of_entry(e);
    assert(x && x->n.e.state == ENTRY_SYNCING);
    if (!x->slot_free) {
        x->slot_free = 1;
        q->n_slot_free++;
    }
}

void queue_delivery_set(queue_t *q, q_entry *e, size_t i, delivery_state st, const char *error)
{
    qent *x = of_entry(e);
    assert(x && is_active(x->n.e.state) && i < x->n.e.n_deliv);
    q_delivery *d = &x->n.e.deliv[i];
    d->state = st;
    free(d->error);
    d->error = st == DELIVERY_DONE || !error ? NULL : xstrdup(error);
    emit(q, x, QCHANGE_PUT);
}

void queue_rclone_done(queue_t *q, q_entry *e, bool absent)
{
    qent *x = of_entry(e);
    assert(x && is_active(x->n.e.state));
    x->n.e.rclone_done = true;
    x->n.e.rclone_absent = absent;
    emit(q, x, QCHANGE_PUT);
}

void queue_set_round(queue_t *q, q_entry *e, int64_t round_id)
{
    qent *x = of_entry(e);
    assert(x && is_active(x->n.e.state));
    x->n.e.round_id = round_id;
    emit(q, x, QCHANGE_PUT);
}

/* The dirty re-run: a new round for the events that came during the last one. */
static q_entry *start_over(queue_t *q, qent *x, uint64_t now)
{
    q_entry *e = &x->n.e;
    e->first_seen = e->dirty_first;
    e->attempts = 0;
    e->manual = x->dirty_manual;
    e->dirty = false;
    e->dirty_first = 0;
    e->round_id = 0;
    x->dirty_manual = 0;
    x->not_before = 0;
    deliv_renew(e);
    free(e->last_error);
    e->last_error = NULL;
    free(e->park_reason);
    e->park_reason = NULL;
    uint64_t d = waiting_due(q, x, now);
    if (!e->manual)
        d = max64(d, sat_add(now, q->p.cooldown_ms));
    if (!deliv_runnable(e) && deliv_any(e, DELIVERY_PARKED)) {
        replace_str(&e->park_reason, deliv_parked_reason(e));
        return leave_active(q, x, ENTRY_PARKED, d, now);
    }
    return leave_active(q, x, deliv_runnable(e) ? ENTRY_WAITING : ENTRY_UNRESOLVED, d, now);
}

/* An attempt without a transient failure: the deliveries say whether the round is over. */
static q_entry *attempt_ok(queue_t *q, qent *x, uint64_t now, bool *round_over)
{
    q_entry *e = &x->n.e;
    if (deliv_runnable(e)) /* a step left work undone without saying why: try again */
        return leave_active(q, x, ENTRY_RETRY, sat_add(now, backoff(q, sat_addu(e->attempts, 1))), now);
    if (deliv_any(e, DELIVERY_UNRESOLVED))
        return leave_active(q, x, ENTRY_UNRESOLVED, e->due, now);
    *round_over = true;
    if (deliv_any(e, DELIVERY_PARKED) && !e->dirty) {
        replace_str(&e->park_reason, deliv_parked_reason(e));
        return leave_active(q, x, ENTRY_PARKED, e->due, now);
    }
    queue_note_success(q, e->path, now);
    if (e->dirty)
        return start_over(q, x, now);
    ent_remove(q, x);
    unblock(q);
    return NULL;
}

q_entry *queue_sync_done(queue_t *q, q_entry *e, sync_outcome o, const char *error, uint64_t now,
                         bool *round_over)
{
    qent *x = of_entry(e);
    assert(x && is_active(x->n.e.state));
    bool over = false;
    q_entry *next;
    switch (o) {
    case SYNC_OK:
        next = attempt_ok(q, x, now, &over);
        break;
    case SYNC_TRANSIENT: {
        if (error)
            replace_str(&x->n.e.last_error, error);
        x->n.e.attempts = sat_addu(x->n.e.attempts, 1);
        uint64_t d = sat_add(now, backoff(q, x->n.e.attempts));
        x->not_before = d;
        next = leave_active(q, x, ENTRY_RETRY, d, now);
        break;
    }
    case SYNC_PARKED:
    default:
        if (error)
            replace_str(&x->n.e.last_error, error);
        replace_str(&x->n.e.park_reason, error ? error : "parked");
        x->n.e.attempts = sat_addu(x->n.e.attempts, 1); /* it was an attempt of the round */
        over = true;
        next = leave_active(q, x, ENTRY_PARKED, x->n.e.due, now);
        break;
    }
    if (round_over)
        *round_over = over;
    return next;
}

typedef struct pick {
    qvec *v;
    bool (*want)(entry_state s);
} pick;

static void pick_one(void *ud, qi_node *n)
{
    pick *p = ud;
    if (p->want(n->e.state))
        vec_push(p->v, of_node(n));
}

/* The keyed entries whose state `want` accepts, into v (in table order). */
static void collect_keyed(queue_t *q, qvec *v, bool (*want)(entry_state s))
{
    pick p = {v, want};
    qi_keys_foreach(&q->keys, pick_one, &p);
}

static bool is_parked(entry_state s)
{
    return s == ENTRY_PARKED;
}

static bool is_idle(entry_state s)
{
    return !is_active(s);
}

/* A PARKED entry with something to send again waits for nothing: it runs now. */
static void wake_parked(queue_t *q, qent *x, uint64_t now)
{
    unplace(q, x);
    set_state(q, x, ENTRY_WAITING);
    free(x->n.e.park_reason);
    x->n.e.park_reason = NULL;
    x->n.e.due = now;
    x->not_before = 0;
    place(q, x);
}

int queue_unpark(queue_t *q, q_entry *e, uint64_t now)
{
    qent *x = of_entry(e);
    if (!x || x->n.e.state != ENTRY_PARKED)
        return 0;
    deliv_unpark(&x->n.e, NULL);
    wake_parked(q, x, now);
    emit(q, x, QCHANGE_PUT);
    return 1;
}

int queue_unpark_all(queue_t *q, uint64_t now)
{
    if (!q->nstate[ENTRY_PARKED])
        return 0;
    qvec parked = {0};
    collect_keyed(q, &parked, is_parked);
    int n = 0;
    for (size_t i = 0; i < parked.n; i++)
        n += queue_unpark(q, &parked.v[i]->n.e, now);
    free(parked.v);
    return n;
}

int queue_unpark_target(queue_t *q, const char *target, uint64_t now)
{
    qvec idle = {0};
    collect_keyed(q, &idle, is_idle);
    int n = 0;
    for (size_t i = 0; i < idle.n; i++) {
        qent *x = idle.v[i];
        if (!deliv_unpark(&x->n.e, target))
            continue;
        if (x->n.e.state == ENTRY_PARKED && !deliv_any(&x->n.e, DELIVERY_PARKED))
            wake_parked(q, x, now);
        emit(q, x, QCHANGE_PUT);
        n++;
    }
    free(idle.v);
    return n;
}

/* ---- what a person asks of one entry ---- */

int queue_cancel(queue_t *q, q_entry *e)
{
    qent *x = of_entry(e);
    assert(x);
    if (is_active(x->n.e.state))
        return -EBUSY;
    ent_remove(q, x); /* it blocked nothing: only CHECKING and SYNCING entries block */
    return 0;
}

int queue_run_now(queue_t *q, q_entry *e, uint64_t now)
{
    qent *x = of_entry(e);
    assert(x);
    entry_state s = x->n.e.state;
    if (is_active(s))
        return -EBUSY;
    if (s == ENTRY_PARKED)
        return -EPERM;
    if (s == ENTRY_UNRESOLVED)
        return -ENODATA;
    /* A READY entry is due already; it waits for a slot or a nested folder, as anything would. */
    x->not_before = 0;
    if (x->n.e.due > now) {
        x->n.e.due = now;
        reschedule(q, x);
        emit(q, x, QCHANGE_PUT);
    }
    return 0;
}

/* ---- remap ---- */

/* Puts a detached entry back under its key with the merge and absorb rules (an entry that
 * came meanwhile may now hold it). Returns true when anything changed (and was emitted). */
static bool relink(queue_t *q, qent *x, uint64_t now, bool changed)
{
    const char *p = x->n.e.path;
    size_t len = strlen(p);
    qent *outer, *act;
    scan_up(q, p, len, true, &outer, &act);
    if (outer || act) {
        if (outer) {
            fold(outer, x);
            refresh_due(q, outer, now);
        } else {
            about_fold(&act->n.e, &x->n.e);
            fold_dirty(act, x->n.e.first_seen, x->n.e.last_event, (const char *const *)x->n.e.files, x->n.e.n_files,
                       x->n.e.path, x->n.e.sources, x->n.e.kinds, x->n.e.events, x->n.e.manual);
        }
        emit(q, x, QCHANGE_DEL);
        qi_ids_remove(&q->ids, &x->n);
        ent_free(x);
        emit(q, outer ? outer : act, QCHANGE_PUT);
        return true;
    }
    collect_below(q, p, len);
    if (absorb_scratch(q, x)) {
        refresh_due(q, x, now);
        changed = true;
    }
    index_insert(q, x);
    place(q, x);
    if (changed)
        emit(q, x, QCHANGE_PUT);
    return changed;
}

/* New deliveries for a detached entry; true when they changed (and its state with them). */
static bool retarget(queue_t *q, qent *x, const q_delivery *nw, size_t n, uint64_t now)
{
    q_entry *e = &x->n.e;
    bool was_parked_deliv = e->state == ENTRY_PARKED && deliv_any(e, DELIVERY_PARKED);
    if (!deliv_update(&q->interned, e, nw, n, false))
        return false;
    bool runnable = deliv_runnable(e), unresolved = deliv_any(e, DELIVERY_UNRESOLVED);
    if (e->state == ENTRY_UNRESOLVED && (runnable || !unresolved)) {
        /* something to send waits its window; nothing left to send ends the round at once */
        e->state = ENTRY_WAITING;
        e->due = runnable ? waiting_due(q, x, now) : now;
    } else if (was_parked_deliv && !deliv_any(e, DELIVERY_PARKED)) {
        /* the deliveries it was parked for are gone (a target removed): the rest goes on */
        e->state = ENTRY_WAITING;
        e->due = now;
        free(e->park_reason);
        e->park_reason = NULL;
    } else if (is_timed(e->state) && !runnable && unresolved) {
        e->state = ENTRY_UNRESOLVED;
    }
    return true;
}

int queue_remap(queue_t *q, queue_map_fn fn, void *ud, uint64_t now)
{
    qvec work = {0};
    collect_keyed(q, &work, is_idle);
    /* Detach them all first: putting one back may merge or absorb others. */
    for (size_t i = 0; i < work.n; i++) {
        index_remove(q, work.v[i]);
        unplace(q, work.v[i]);
    }
    int changed = 0;
    q_delivery out[QUEUE_MAX_DELIVERIES];
    for (size_t i = 0; i < work.n; i++) {
        qent *x = work.v[i];
        size_t n = 0;
        int rc = fn(ud, x->n.e.path, out, QUEUE_MAX_DELIVERIES, &n);
        if (n > QUEUE_MAX_DELIVERIES)
            n = QUEUE_MAX_DELIVERIES;
        if (rc == 1) {
            emit(q, x, QCHANGE_DEL);
            qi_ids_remove(&q->ids, &x->n);
            ent_free(x);
            changed++;
            continue;
        }
        bool moved = rc == 0 && retarget(q, x, out, n, now);
        if (relink(q, x, now, moved) || moved)
            changed++;
    }
    free(work.v);
    return changed;
}

/* ---- cooldown memory ---- */

static bool cooled_down(void *ud, uint64_t at)
{
    const queue_t *q = ud;
    return sat_add(at, q->p.cooldown_ms) <= q->cnow;
}

void queue_note_success(queue_t *q, const char *path, uint64_t at)
{
    if (!path || !q->p.cooldown_ms)
        return; /* nothing to remember: no cooldown */
    q->cnow = max64(q->cnow, at);
    size_t len = strlen(path);
    uint64_t *last = qi_stamps_find(&q->cooled, path, len);
    if (last) {
        *last = max64(*last, at);
        return;
    }
    if (sat_add(at, q->p.cooldown_ms) <= q->cnow)
        return; /* already over */
    qi_stamps_add(&q->cooled, path, len, at);
    /* Records older than the cooldown no longer matter; sweeping when the count doubles keeps
     * memory bounded by the successes of one cooldown window, at O(1) amortized. */
    if (q->cooled.count > q->csweep) {
        qi_stamps_sweep(&q->cooled, cooled_down, q);
        q->csweep = max64(CREC_SWEEP_MIN, 2 * q->cooled.count);
    }
}

/* ---- restore ---- */

int queue_restore(queue_t *q, const q_entry *e, uint64_t now)
{
    if (!e || !e->path || !e->path[0])
        return -EINVAL;
    size_t len = strlen(e->path);
    if (key_find(q, e->path, len) || (e->id > 0 && qi_ids_find(&q->ids, e->id)))
        return -EEXIST;
    qent *x = ent_alloc(e->path);
    x->n.e.id = e->id > 0 ? e->id : take_id(q);
    x->n.e.first_seen = e->first_seen;
    x->n.e.last_event = e->last_event;
    x->n.e.due = e->due;
    x->n.e.state = (unsigned)e->state < ENTRY_STATE_COUNT ? e->state : ENTRY_WAITING;
    x->n.e.attempts = e->attempts;
    x->n.e.dirty = e->dirty;
    x->n.e.dirty_first = e->dirty_first;
    x->n.e.manual = e->manual;
    /* as stored (relative), or absolute from an older version: kept relative either way */
    files_union(&x->n.e, (const char *const *)e->files, e->files ? e->n_files : 0, e->path);
    x->n.e.sources = e->sources;
    x->n.e.kinds = e->kinds;
    x->n.e.events = e->events;
    x->n.e.rclone_done = e->rclone_done;
    x->n.e.rclone_absent = e->rclone_done && e->rclone_absent;
    x->n.e.round_id = e->round_id;
    deliv_update(&q->interned, &x->n.e, e->deliv, e->n_deliv, false);
    for (size_t i = 0; i < x->n.e.n_deliv && i < e->n_deliv; i++) {
        x->n.e.deliv[i].state = (unsigned)e->deliv[i].state < DELIVERY_STATE_COUNT ? e->deliv[i].state : DELIVERY_PENDING;
        x->n.e.deliv[i].error = xstrdup(e->deliv[i].error);
    }
    x->n.e.park_reason = xstrdup(e->park_reason);
    x->n.e.last_error = xstrdup(e->last_error);
    x->n.e.hold_reason = xstrdup(e->hold_reason);
    x->n.e.title = qtitles_get(&q->titles, e->title);
    x->n.e.event = e->event;
    x->n.e.last_app = e->last_app;

    entry_state s = x->n.e.state;
    bool runnable = deliv_runnable(&x->n.e);
    if (!runnable && deliv_any(&x->n.e, DELIVERY_UNRESOLVED) && s != ENTRY_PARKED)
        s = ENTRY_UNRESOLVED;
    else if (x->n.e.n_deliv == 0 && s != ENTRY_PARKED)
        s = ENTRY_UNRESOLVED; /* not mapped yet (a row from an older version): the owner re-maps it */
    else if (s == ENTRY_UNRESOLVED)
        s = ENTRY_WAITING;
    /* Interrupted work runs again at once. A SYNCING entry had passed its age check; a CHECKING
     * one may not have (ready_from decides needs_age). */
    x->ready_from = x->n.e.attempts > 0 || s == ENTRY_SYNCING ? ENTRY_RETRY : ENTRY_WAITING;
    if (is_active(s)) {
        s = ENTRY_READY;
        x->n.e.due = now;
    }
    x->n.e.state = s;
    if ((is_timed(s) || s == ENTRY_READY) && q->p.clamp_future_ms && x->n.e.due > sat_add(now, q->p.clamp_future_ms))
        x->n.e.due = sat_add(now, q->p.delay_ms); /* the clock jumped back: don't wait for ages */
    if (s == ENTRY_RETRY)
        x->not_before = x->n.e.due;
    if (x->n.e.id >= q->next_id)
        q->next_id = x->n.e.id + 1;
    qi_ids_insert(&q->ids, &x->n);
    index_insert(q, x);
    place(q, x);
    return 0;
}

/* ---- lookups ---- */

q_entry *queue_find(const queue_t *q, const char *path)
{
    if (!path)
        return NULL;
    qent *x = key_find(q, path, strlen(path));
    return x ? &x->n.e : NULL;
}

q_entry *queue_find_id(const queue_t *q, int64_t id)
{
    qi_node *x = qi_ids_find(&q->ids, id);
    return x ? &x->e : NULL;
}

typedef struct shift_ctx {
    queue_t *q;
    int64_t delta;
} shift_ctx;

static void shift_entry(void *ud, qi_node *n)
{
    shift_ctx *c = ud;
    qent *x = of_node(n);
    q_entry *e = &x->n.e;
    e->first_seen = qi_time_shifted(e->first_seen, c->delta);
    e->last_event = qi_time_shifted(e->last_event, c->delta);
    e->due = qi_time_shifted(e->due, c->delta);
    e->dirty_first = qi_time_shifted(e->dirty_first, c->delta);
    x->not_before = qi_time_shifted(x->not_before, c->delta);
    emit(c->q, x, QCHANGE_PUT);
}

void queue_shift_time(queue_t *q, int64_t delta)
{
    if (!delta)
        return;
    shift_ctx c = {.q = q, .delta = delta};
    /* Every time moves by the same amount: the heaps' order stands. */
    qi_keys_foreach(&q->keys, shift_entry, &c);
    qi_stamps_shift(&q->cooled, delta);
    q->cnow = qi_time_shifted(q->cnow, delta);
}

bool queue_takes_without_growing(const queue_t *q, const char *path)
{
    qent *outer, *act;
    scan_up(q, path, strlen(path), true, &outer, &act);
    return outer || act;
}

size_t queue_count(const queue_t *q)
{
    return qi_keys_count(&q->keys);
}

size_t queue_count_state(const queue_t *q, entry_state s)
{
    return (unsigned)s < ENTRY_STATE_COUNT ? q->nstate[s] : 0;
}

typedef struct visit {
    void (*fn)(void *ud, const q_entry *e);
    void *ud;
} visit;

static void visit_one(void *ud, qi_node *n)
{
    const visit *v = ud;
    v->fn(v->ud, &n->e);
}

void queue_foreach(const queue_t *q, void (*fn)(void *ud, const q_entry *e), void *ud)
{
    visit v = {fn, ud};
    qi_keys_foreach(&q->keys, visit_one, &v);
}
