/* queue.c: pending scans, one entry per (section, Plex path), and the rules that decide when
 * each may run (DESIGN.md "The queue"). Pure logic: the caller passes the time in. The index
 * structures the rules work over are queue_index.c's.
 *
 * Storage. Everything is intrusive, so an entry costs one allocation (struct, Plex path and arr
 * path together) plus one for its file list (pointer array and strings together):
 * - the entries by (section, plex_path) with the folder tree over them, and by id
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
#include "queue_index.h"
#include "util.h"

#define BACKOFF_BASE_MS 5000ULL
#define BACKOFF_MAX_SHIFT 40 /* 5000 << 40 still fits in 64 bits; beyond, the cap is retry_max */
#define REMAP_MAX 32         /* sections one folder can map to in queue_remap */
#define CREC_SWEEP_MIN 64

enum { IN_NONE = 0, IN_TIMED, IN_READY, IN_BLOCKED, IN_ACTIVE };

typedef struct qent qent;

struct qent {
    qi_node n;                  /* first member, and n.e first in it: a q_entry * is a qent * */
    uint64_t not_before;        /* absorbed or own backoff end: a backoff is never shortened */
    unsigned where : 3;         /* IN_* */
    unsigned ready_from : 4;    /* state before READY: decides needs_age */
    unsigned plex_heap : 1;     /* plex_path was allocated apart (re-mapped) */
    unsigned dirty_manual : 1;  /* a manual event arrived while checking/syncing */
    char inl[];                 /* plex_path, then arr_path when it differs */
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

static unsigned sat_addu(unsigned a, unsigned b)
{
    return a > UINT32_MAX - b ? UINT32_MAX : a + b;
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
    if (a->n.e.section != b->n.e.section)
        return false;
    size_t al = strlen(a->n.e.plex_path), bl = strlen(b->n.e.plex_path);
    return is_above(a->n.e.plex_path, al, b->n.e.plex_path, bl) || is_above(b->n.e.plex_path, bl, a->n.e.plex_path, al);
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

static qent *key_find(const queue_t *q, long section, const char *p, size_t len)
{
    return of_node(qi_keys_find(&q->keys, section, p, len));
}

static void collect_one(void *ud, qi_node *n)
{
    queue_t *q = ud;
    if (!is_active(n->e.state))
        vec_push(&q->scratch, of_node(n));
}

/* Non-active entries strictly beneath (section, p) into q->scratch; returns how many. */
static size_t collect_below(queue_t *q, long section, const char *p, size_t len)
{
    q->scratch.n = 0;
    qi_keys_below(&q->keys, section, p, len, collect_one, q);
    return q->scratch.n;
}

/* ---- entries ---- */

static qent *ent_alloc(long section, const char *plex, const char *arr)
{
    size_t pl = strlen(plex) + 1;
    bool same = !arr || strcmp(arr, plex) == 0;
    size_t al = same ? 0 : strlen(arr) + 1;
    qent *x = xcalloc(1, offsetof(qent, inl) + pl + al); /* the strings right after the fields */
    memcpy(x->inl, plex, pl);
    x->n.e.plex_path = x->inl;
    x->n.e.arr_path = x->inl;
    if (!same) {
        memcpy(x->inl + pl, arr, al);
        x->n.e.arr_path = x->inl + pl;
    }
    x->n.e.section = section;
    return x;
}

static void ent_free(qent *x)
{
    if (x->plex_heap)
        free(x->n.e.plex_path);
    free(x->n.e.files);
    free(x->n.e.park_reason);
    free(x->n.e.last_error);
    free(x->n.e.hold_reason);
    free(x);
}

static void ent_set_path(qent *x, const char *p)
{
    if (x->plex_heap)
        free(x->n.e.plex_path);
    x->plex_heap = 0;
    x->n.e.plex_path = x->inl;
    if (strcmp(p, x->inl) != 0) {
        x->n.e.plex_path = xstrdup(p);
        x->plex_heap = 1;
    }
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

/* The file list is one block: the pointer array, then the strings. */
static void files_set(q_entry *e, const char *const *list, size_t n)
{
    if (n > QUEUE_MAX_FILES)
        n = QUEUE_MAX_FILES;
    size_t bytes = n * sizeof(char *);
    for (size_t i = 0; i < n; i++)
        bytes += strlen(list[i]) + 1;
    char **blk = NULL;
    if (n) {
        blk = xmalloc(bytes);
        char *s = (char *)(blk + n);
        for (size_t i = 0; i < n; i++) {
            size_t l = strlen(list[i]) + 1;
            memcpy(s, list[i], l);
            blk[i] = s;
            s += l;
        }
    }
    free(e->files); /* after the copy: list may point into the old block */
    e->files = blk;
    e->n_files = n;
}

/* Union, keeping the order of arrival; past QUEUE_MAX_FILES the rest is dropped. */
static void files_union(q_entry *e, const char *const *add, size_t n)
{
    const char *list[QUEUE_MAX_FILES];
    size_t k = 0;
    for (size_t i = 0; i < e->n_files && k < QUEUE_MAX_FILES; i++)
        list[k++] = e->files[i];
    size_t had = k;
    for (size_t i = 0; i < n && k < QUEUE_MAX_FILES; i++) {
        if (!add || !add[i])
            continue;
        size_t j = 0;
        while (j < k && strcmp(list[j], add[i]) != 0)
            j++;
        if (j == k)
            list[k++] = add[i];
    }
    if (k != had)
        files_set(e, list, k);
}

/* ---- timing rules ---- */

static uint64_t debounce_due(const queue_t *q, uint64_t first, uint64_t last)
{
    uint64_t cap = q->p.max_delay_ms < q->p.delay_ms ? q->p.delay_ms : q->p.max_delay_ms;
    return min64(sat_add(last, q->p.delay_ms), sat_add(first, cap));
}

static uint64_t cooldown_until(const queue_t *q, long section, const char *p)
{
    if (!q->p.cooldown_ms || !q->cooled.count)
        return 0;
    const uint64_t *at = qi_stamps_find(&q->cooled, section, p, strlen(p));
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
        d = max64(d, cooldown_until(q, x->n.e.section, x->n.e.plex_path));
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
    d->first_seen = min64(d->first_seen, s->first_seen);
    d->last_event = max64(d->last_event, s->last_event);
    files_union(d, (const char *const *)s->files, s->n_files);
    d->sources |= s->sources;
    d->events = sat_addu(d->events, s->events);
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
static void fold_dirty(qent *dst, uint64_t first, uint64_t last, const char *const *files, size_t n,
                       unsigned sources, unsigned events, bool manual)
{
    q_entry *d = &dst->n.e;
    d->dirty_first = d->dirty ? min64(d->dirty_first, first) : first;
    d->dirty = true;
    d->last_event = max64(d->last_event, last);
    files_union(d, files, n);
    d->sources |= sources;
    d->events = sat_addu(d->events, events);
    if (manual)
        dst->dirty_manual = 1;
}

/* Looks at the entries for the ancestors of (section, p) from the top down, and at p itself
 * when self: *outer = the topmost one not CHECKING/SYNCING, *act = a CHECKING/SYNCING one. */
static void scan_up(const queue_t *q, long section, const char *p, size_t len, bool self, qent **outer, qent **act)
{
    qi_up w;
    qi_node *n;
    *outer = *act = NULL;
    qi_up_init(&w, &q->keys, section, p, len, self);
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
    scan_up(q, x->n.e.section, x->n.e.plex_path, strlen(x->n.e.plex_path), false, &anc, &act);
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
        d = max64(max64(d, cooldown_until(q, x->n.e.section, x->n.e.plex_path)), x->not_before);
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

static void merge_event(queue_t *q, qent *x, const q_event *ev, uint64_t now)
{
    q_entry *e = &x->n.e;
    e->first_seen = min64(e->first_seen, ev->at);
    e->last_event = max64(e->last_event, ev->at);
    files_union(e, ev->files, ev->n_files);
    e->sources |= ev->source_bit;
    e->events = sat_addu(e->events, 1);
    if (ev->manual)
        e->manual = true;
    if (e->state == ENTRY_WAITING) {
        e->due = waiting_due(q, x, now);
    } else if (e->state == ENTRY_AGING && ev->manual) {
        /* Manual skips the minimum age, which is all an AGING entry waits for. */
        e->due = max64(now, x->not_before);
    }
    reschedule(q, x);
}

int queue_add(queue_t *q, const q_event *ev, uint64_t now, q_add_result *res)
{
    if (!ev || !ev->plex_path || !ev->plex_path[0])
        return -EINVAL;
    const char *p = ev->plex_path;
    size_t len = strlen(p);
    qent *outer, *act;
    scan_up(q, ev->section, p, len, true, &outer, &act);
    if (outer) {
        merge_event(q, outer, ev, now);
        emit(q, outer, QCHANGE_PUT);
        if (res)
            *res = (q_add_result){.kind = QADD_MERGED, .entry = &outer->n.e};
        return 0;
    }
    if (act) {
        fold_dirty(act, ev->at, ev->at, ev->files, ev->n_files, ev->source_bit, 1, ev->manual);
        emit(q, act, QCHANGE_PUT);
        if (res)
            *res = (q_add_result){.kind = QADD_DIRTY, .entry = &act->n.e};
        return 0;
    }

    size_t nabs = collect_below(q, ev->section, p, len);
    if (q->p.max_pending > 0 && qi_keys_count(&q->keys) + 1 > (size_t)q->p.max_pending + nabs) {
        q->scratch.n = 0;
        return -ENOSPC;
    }
    qent *x = ent_alloc(ev->section, p, ev->arr_path);
    x->n.e.id = take_id(q);
    x->n.e.first_seen = x->n.e.last_event = ev->at;
    x->n.e.sources = ev->source_bit;
    x->n.e.events = 1;
    x->n.e.manual = ev->manual;
    files_union(&x->n.e, ev->files, ev->n_files);
    x->n.e.state = ev->section == QUEUE_SECTION_UNRESOLVED ? ENTRY_UNRESOLVED : ENTRY_WAITING;
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
    if (q->active.n >= max_active(q))
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
    if (q->active.n >= max_active(q)) {
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
        collect_below(q, c->n.e.section, c->n.e.plex_path, strlen(c->n.e.plex_path));
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

q_entry *queue_sync_done(queue_t *q, q_entry *e, sync_outcome o, const char *error, uint64_t now)
{
    qent *x = of_entry(e);
    assert(x && is_active(x->n.e.state));
    switch (o) {
    case SYNC_OK: {
        queue_note_success(q, x->n.e.section, x->n.e.plex_path, now);
        if (!x->n.e.dirty) {
            ent_remove(q, x);
            unblock(q);
            return NULL;
        }
        /* Start over for the events that came during the run. */
        x->n.e.first_seen = x->n.e.dirty_first;
        x->n.e.attempts = 0;
        x->n.e.manual = x->dirty_manual;
        x->n.e.dirty = false;
        x->n.e.dirty_first = 0;
        x->dirty_manual = 0;
        x->not_before = 0;
        free(x->n.e.last_error);
        x->n.e.last_error = NULL;
        free(x->n.e.park_reason);
        x->n.e.park_reason = NULL;
        uint64_t d = waiting_due(q, x, now);
        if (!x->n.e.manual)
            d = max64(d, sat_add(now, q->p.cooldown_ms));
        return leave_active(q, x, ENTRY_WAITING, d, now);
    }
    case SYNC_TRANSIENT: {
        if (error)
            replace_str(&x->n.e.last_error, error);
        x->n.e.attempts = sat_addu(x->n.e.attempts, 1);
        uint64_t d = sat_add(now, backoff(q, x->n.e.attempts));
        x->not_before = d;
        return leave_active(q, x, ENTRY_RETRY, d, now);
    }
    case SYNC_PARKED:
    default:
        if (error)
            replace_str(&x->n.e.last_error, error);
        replace_str(&x->n.e.park_reason, error ? error : "parked");
        return leave_active(q, x, ENTRY_PARKED, x->n.e.due, now);
    }
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

int queue_unpark(queue_t *q, q_entry *e, uint64_t now)
{
    qent *x = of_entry(e);
    if (!x || x->n.e.state != ENTRY_PARKED)
        return 0;
    unplace(q, x);
    set_state(q, x, ENTRY_WAITING);
    free(x->n.e.park_reason);
    x->n.e.park_reason = NULL;
    x->n.e.due = now;
    x->not_before = 0;
    place(q, x);
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

/* ---- remap ---- */

/* Applies one mapping to a detached entry; true when its key or state changed. */
static bool retarget(queue_t *q, qent *x, const q_mapping *m, uint64_t now)
{
    if (!m->plex_path || !m->plex_path[0])
        return false;
    /* "No library list yet" never undoes a resolution the entry already has. */
    if (m->section == QUEUE_SECTION_UNRESOLVED && x->n.e.section != QUEUE_SECTION_UNRESOLVED)
        return false;
    bool changed = false;
    if (m->section != x->n.e.section || strcmp(m->plex_path, x->n.e.plex_path) != 0) {
        x->n.e.section = m->section;
        ent_set_path(x, m->plex_path);
        changed = true;
    }
    if (x->n.e.section != QUEUE_SECTION_UNRESOLVED && x->n.e.state == ENTRY_UNRESOLVED) {
        x->n.e.state = ENTRY_WAITING;
        x->n.e.due = waiting_due(q, x, now);
        changed = true;
    }
    return changed;
}

/* Puts a detached entry back under its (maybe new) key with the merge and absorb rules.
 * Returns true when anything changed (and was emitted). */
static bool relink(queue_t *q, qent *x, uint64_t now, bool changed)
{
    const char *p = x->n.e.plex_path;
    size_t len = strlen(p);
    qent *outer, *act;
    scan_up(q, x->n.e.section, p, len, true, &outer, &act);
    if (outer || act) {
        if (outer) {
            fold(outer, x);
            refresh_due(q, outer, now);
        } else {
            fold_dirty(act, x->n.e.first_seen, x->n.e.last_event, (const char *const *)x->n.e.files, x->n.e.n_files,
                       x->n.e.sources, x->n.e.events, x->n.e.manual);
        }
        emit(q, x, QCHANGE_DEL);
        qi_ids_remove(&q->ids, &x->n);
        ent_free(x);
        emit(q, outer ? outer : act, QCHANGE_PUT);
        return true;
    }
    collect_below(q, x->n.e.section, p, len);
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

static qent *ent_clone(queue_t *q, const qent *src)
{
    qent *c = ent_alloc(src->n.e.section, src->n.e.plex_path, src->n.e.arr_path);
    char *plex = c->n.e.plex_path, *arr = c->n.e.arr_path;
    c->n.e = src->n.e;
    c->n.e.plex_path = plex;
    c->n.e.arr_path = arr;
    c->n.e.hnext = NULL;
    c->n.e.files = NULL;
    c->n.e.n_files = 0;
    files_set(&c->n.e, (const char *const *)src->n.e.files, src->n.e.n_files);
    c->n.e.park_reason = xstrdup(src->n.e.park_reason);
    c->n.e.last_error = xstrdup(src->n.e.last_error);
    c->n.e.hold_reason = xstrdup(src->n.e.hold_reason);
    c->not_before = src->not_before;
    c->ready_from = src->ready_from;
    c->n.e.id = take_id(q);
    qi_ids_insert(&q->ids, &c->n);
    return c;
}

/* The mappings that apply to x: a path, not "unresolved" for a resolved entry, no repeats. */
static size_t usable_mappings(const qent *x, const q_mapping *out, size_t n, const q_mapping **use)
{
    size_t k = 0;
    for (size_t j = 0; j < n; j++) {
        const q_mapping *m = &out[j];
        if (!m->plex_path || !m->plex_path[0])
            continue;
        if (m->section == QUEUE_SECTION_UNRESOLVED && x->n.e.section != QUEUE_SECTION_UNRESOLVED)
            continue;
        bool dup = false;
        for (size_t i = 0; i < k && !dup; i++)
            dup = use[i]->section == m->section && strcmp(use[i]->plex_path, m->plex_path) == 0;
        if (!dup)
            use[k++] = m;
    }
    return k;
}

/* Re-maps one detached entry; returns the number of entries changed. An entry whose key is
 * still among its mappings stays as it is and is not split again: its split happened when it
 * was first mapped, and the siblings may have synced already. */
static int remap_one(queue_t *q, qent *x, const q_mapping *out, size_t n, uint64_t now)
{
    const q_mapping *use[REMAP_MAX];
    size_t k = usable_mappings(x, out, n, use);
    bool keep = k == 0;
    for (size_t j = 0; j < k && !keep; j++)
        keep = use[j]->section == x->n.e.section && strcmp(use[j]->plex_path, x->n.e.plex_path) == 0;
    if (keep)
        return relink(q, x, now, false) ? 1 : 0;
    /* Clone before x is put back: x may merge away. */
    qent *clones[REMAP_MAX];
    for (size_t j = 1; j < k; j++) {
        clones[j] = ent_clone(q, x);
        retarget(q, clones[j], use[j], now);
    }
    int changed = relink(q, x, now, retarget(q, x, use[0], now)) ? 1 : 0;
    for (size_t j = 1; j < k; j++) {
        relink(q, clones[j], now, true);
        changed++;
    }
    return changed;
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
    for (size_t i = 0; i < work.n; i++) {
        qent *x = work.v[i];
        q_mapping out[REMAP_MAX];
        size_t n = 0;
        memset(out, 0, sizeof out);
        int rc = fn(ud, x->n.e.arr_path, out, REMAP_MAX, &n);
        if (n > REMAP_MAX)
            n = REMAP_MAX;
        if (rc < 0) {
            if (relink(q, x, now, false)) /* unchanged, but another entry may have moved onto it */
                changed++;
        } else if (n == 0) {
            emit(q, x, QCHANGE_DEL);
            qi_ids_remove(&q->ids, &x->n);
            ent_free(x);
            changed++;
        } else {
            changed += remap_one(q, x, out, n, now);
        }
        for (size_t j = 0; j < REMAP_MAX; j++)
            free(out[j].plex_path);
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

void queue_note_success(queue_t *q, long section, const char *plex_path, uint64_t at)
{
    if (!plex_path || !q->p.cooldown_ms)
        return; /* nothing to remember: no cooldown */
    q->cnow = max64(q->cnow, at);
    size_t len = strlen(plex_path);
    uint64_t *last = qi_stamps_find(&q->cooled, section, plex_path, len);
    if (last) {
        *last = max64(*last, at);
        return;
    }
    if (sat_add(at, q->p.cooldown_ms) <= q->cnow)
        return; /* already over */
    qi_stamps_add(&q->cooled, section, plex_path, len, at);
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
    if (!e || !e->plex_path || !e->plex_path[0])
        return -EINVAL;
    size_t len = strlen(e->plex_path);
    if (key_find(q, e->section, e->plex_path, len) || (e->id > 0 && qi_ids_find(&q->ids, e->id)))
        return -EEXIST;
    qent *x = ent_alloc(e->section, e->plex_path, e->arr_path);
    x->n.e.id = e->id > 0 ? e->id : take_id(q);
    x->n.e.first_seen = e->first_seen;
    x->n.e.last_event = e->last_event;
    x->n.e.due = e->due;
    x->n.e.state = (unsigned)e->state < ENTRY_STATE_COUNT ? e->state : ENTRY_WAITING;
    x->n.e.attempts = e->attempts;
    x->n.e.dirty = e->dirty;
    x->n.e.dirty_first = e->dirty_first;
    x->n.e.manual = e->manual;
    files_set(&x->n.e, (const char *const *)e->files, e->files ? e->n_files : 0);
    x->n.e.sources = e->sources;
    x->n.e.events = e->events;
    x->n.e.park_reason = xstrdup(e->park_reason);
    x->n.e.last_error = xstrdup(e->last_error);
    x->n.e.hold_reason = xstrdup(e->hold_reason);

    entry_state s = x->n.e.state;
    if (x->n.e.section == QUEUE_SECTION_UNRESOLVED)
        s = ENTRY_UNRESOLVED;
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

q_entry *queue_find(const queue_t *q, long section, const char *plex_path)
{
    if (!plex_path)
        return NULL;
    qent *x = key_find(q, section, plex_path, strlen(plex_path));
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

bool queue_takes_without_growing(const queue_t *q, long section, const char *plex_path)
{
    qent *outer, *act;
    scan_up(q, section, plex_path, strlen(plex_path), true, &outer, &act);
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
