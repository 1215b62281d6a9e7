/* queue.c: pending scans, one entry per (section, Plex path), and the rules that decide when
 * each may run (DESIGN.md "The queue"). Pure logic: the caller passes the time in. */
#include "queue.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/*
 * Storage. Everything is intrusive, so an entry costs one allocation (struct, Plex path and arr
 * path together) plus one for its file list (pointer array and strings together):
 * - a chained hash table on (section, plex_path) and one on id;
 * - a folder trie hashed by (section, folder prefix): a node exists for every folder with at
 *   least one entry strictly beneath it and counts them; an entry hangs off the node of its
 *   parent folder. A new entry whose own path has no node has no descendants, so queue_add costs
 *   O(depth) hash lookups; when a node exists its subtree lists exactly the descendants;
 * - where the entry waits, by state (q_entry.heap_idx is its index there):
 *     timed heap  WAITING, AGING, HELD, RETRY, ordered by (due, id);
 *     ready heap  READY entries held back by the concurrency limit;
 *     blocked     READY entries held back by a nested CHECKING/SYNCING entry, looked at again
 *                 whenever an entry stops being CHECKING/SYNCING;
 *     active      CHECKING, SYNCING;
 *   UNRESOLVED and PARKED entries have no timer and sit in none of them.
 * READY entries stay out of the timed heap so queue_next_wakeup() never reports a past time for
 * work that cannot start (the owner's timer would spin).
 *
 * Hashes: FNV-1a over the section, then the path bytes. It runs left to right, so one pass over
 * a path gives the hash of every ancestor prefix on the way (pwalk).
 */

#define BACKOFF_BASE_MS 5000ULL
#define BACKOFF_MAX_SHIFT 40 /* 5000 << 40 still fits in 64 bits; beyond, the cap is retry_max */
#define REMAP_MAX 32         /* sections one folder can map to in queue_remap */
#define CREC_SWEEP_MIN 64

enum { IN_NONE = 0, IN_TIMED, IN_READY, IN_BLOCKED, IN_ACTIVE };

typedef struct qent qent;
typedef struct dnode dnode;

struct qent {
    q_entry e;                  /* first member: a q_entry * is a qent * */
    qent *idnext;               /* id hash chain */
    qent *dnext, *dprev;        /* entries of the same parent folder node */
    uint64_t not_before;        /* absorbed or own backoff end: a backoff is never shortened */
    uint32_t khash;             /* hash of (section, plex_path) */
    unsigned where : 3;         /* IN_* */
    unsigned ready_from : 4;    /* state before READY: decides needs_age */
    unsigned plex_heap : 1;     /* plex_path was allocated apart (re-mapped) */
    unsigned dirty_manual : 1;  /* a manual event arrived while checking/syncing */
    unsigned indexed : 1;       /* in the key table and trie, counted */
    char inl[];                 /* plex_path, then arr_path when it differs */
};

struct dnode {
    dnode *hnext;
    dnode *parent, *child, *next, *prev;
    qent *entries;              /* entries whose parent folder is this one */
    long section;
    uint32_t hash;
    uint32_t below;             /* entries strictly beneath */
    size_t len;
    char key[];
};

typedef struct crec {           /* cooldown memory: last successful scan of a key */
    struct crec *next;
    long section;
    uint64_t at;
    uint32_t hash;
    char key[];
} crec;

typedef struct qvec {
    qent **v;
    size_t n, cap;
} qvec;

struct queue {
    queue_params p;
    queue_change_fn on_change;
    void *ud;
    q_entry **kb;               /* key table (chained through q_entry.hnext) */
    size_t nkb, count;
    qent **ib;                  /* id table (holds detached entries during a remap too) */
    size_t nib, nid;
    dnode **db;                 /* folder trie */
    size_t ndb, ndn;
    crec **cb;                  /* cooldown records */
    size_t ncb, ncr, csweep;
    uint64_t cnow;
    qvec timed, ready, blocked, active, scratch;
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
        q->on_change(q->ud, &x->e, what);
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
    if (a->e.section != b->e.section)
        return false;
    size_t al = strlen(a->e.plex_path), bl = strlen(b->e.plex_path);
    return is_above(a->e.plex_path, al, b->e.plex_path, bl) || is_above(b->e.plex_path, bl, a->e.plex_path, al);
}

/* ---- hashing ---- */

/* The section's bytes, least significant first (the same on every host), start the hash. */
static uint64_t h_seed(long section)
{
    uint64_t v = (uint64_t)section;
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    return hash_bytes(HASH_INIT, b, sizeof b);
}

static uint32_t h_fin(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return (uint32_t)h;
}

static uint32_t key_hash(long section, const char *p, size_t len)
{
    return h_fin(hash_bytes(h_seed(section), p, len));
}

static uint32_t id_hash(int64_t id)
{
    uint64_t z = (uint64_t)id;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return (uint32_t)(z ^ (z >> 31));
}

/* Walks the prefixes of a path from the top: each proper ancestor, then the path itself. */
typedef struct pwalk {
    const char *p;
    size_t len, at;
    uint64_t st;
    bool done;
} pwalk;

static void pw_init(pwalk *w, long section, const char *p, size_t len)
{
    w->p = p;
    w->len = len;
    w->at = 0;
    w->st = h_seed(section);
    w->done = len == 0;
}

static bool pw_next(pwalk *w, size_t *L, uint32_t *h)
{
    if (w->done)
        return false;
    size_t next = w->len;
    if (w->at == 0 && w->len > 1 && w->p[0] == '/') {
        next = 1; /* the root "/" */
    } else {
        for (size_t i = w->at + 1; i < w->len; i++)
            if (w->p[i] == '/') {
                next = i;
                break;
            }
    }
    w->st = hash_bytes(w->st, w->p + w->at, next - w->at);
    w->at = next;
    w->done = next == w->len;
    *L = next;
    *h = h_fin(w->st);
    return true;
}

/* ---- vectors and heaps ---- */

static void vec_push(qvec *v, qent *x)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 16;
        v->v = xrealloc(v->v, v->cap * sizeof *v->v);
    }
    v->v[v->n++] = x;
}

static void list_add(qvec *v, qent *x)
{
    x->e.heap_idx = (uint32_t)v->n; /* MAX_PENDING is far below 2^32 */
    vec_push(v, x);
}

static void list_del(qvec *v, qent *x)
{
    size_t i = x->e.heap_idx;
    v->v[i] = v->v[--v->n];
    v->v[i]->e.heap_idx = (uint32_t)i;
}

static bool before(const qent *a, const qent *b)
{
    return a->e.due < b->e.due || (a->e.due == b->e.due && a->e.id < b->e.id);
}

static void heap_set(qvec *h, size_t i, qent *x)
{
    h->v[i] = x;
    x->e.heap_idx = (uint32_t)i;
}

static void heap_up(qvec *h, size_t i)
{
    qent *x = h->v[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(x, h->v[parent]))
            break;
        heap_set(h, i, h->v[parent]);
        i = parent;
    }
    heap_set(h, i, x);
}

static void heap_down(qvec *h, size_t i)
{
    qent *x = h->v[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && before(h->v[c + 1], h->v[c]))
            c++;
        if (!before(h->v[c], x))
            break;
        heap_set(h, i, h->v[c]);
        i = c;
    }
    heap_set(h, i, x);
}

static void heap_push(qvec *h, qent *x)
{
    vec_push(h, x);
    heap_up(h, h->n - 1);
}

static void heap_del(qvec *h, qent *x)
{
    size_t i = x->e.heap_idx;
    qent *last = h->v[--h->n];
    if (i < h->n) {
        heap_set(h, i, last);
        heap_up(h, i);
        heap_down(h, last->e.heap_idx);
    }
}

static void heap_fix(qvec *h, qent *x)
{
    heap_up(h, x->e.heap_idx);
    heap_down(h, x->e.heap_idx);
}

static qent *heap_top(const qvec *h)
{
    return h->n ? h->v[0] : NULL;
}

/* ---- placement by state ---- */

static void place(queue_t *q, qent *x)
{
    entry_state s = x->e.state;
    if (is_timed(s)) {
        x->where = IN_TIMED;
        heap_push(&q->timed, x);
    } else if (s == ENTRY_READY) {
        x->where = IN_READY;
        heap_push(&q->ready, x);
    } else if (is_active(s)) {
        x->where = IN_ACTIVE;
        list_add(&q->active, x);
    } else {
        x->where = IN_NONE;
    }
}

static void unplace(queue_t *q, qent *x)
{
    switch (x->where) {
    case IN_TIMED:
        heap_del(&q->timed, x);
        break;
    case IN_READY:
        heap_del(&q->ready, x);
        break;
    case IN_BLOCKED:
        list_del(&q->blocked, x);
        break;
    case IN_ACTIVE:
        list_del(&q->active, x);
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
        heap_fix(&q->timed, x);
    else if (x->where == IN_READY)
        heap_fix(&q->ready, x);
}

static void set_state(queue_t *q, qent *x, entry_state s)
{
    if (x->indexed) {
        q->nstate[x->e.state]--;
        q->nstate[s]++;
    }
    x->e.state = s;
}

/* ---- key table ---- */

/* Doubles a chained table when it holds as many items as buckets (load factor <= 1). */
#define TABLE_GROW(tab, nb, count, type, link, hashfn)                                   \
    do {                                                                                 \
        if ((count) < (nb))                                                              \
            break;                                                                       \
        size_t nn_ = (nb) ? (nb) * 2 : 256;                                              \
        type **nt_ = xcalloc(nn_, sizeof *nt_);                                          \
        for (size_t i_ = 0; i_ < (nb); i_++)                                             \
            for (type *x_ = (tab)[i_], *nx_; x_; x_ = nx_) {                             \
                nx_ = x_->link;                                                          \
                size_t b_ = hashfn(x_) & (nn_ - 1);                                      \
                x_->link = nt_[b_];                                                      \
                nt_[b_] = x_;                                                            \
            }                                                                            \
        free(tab);                                                                       \
        (tab) = nt_;                                                                     \
        (nb) = nn_;                                                                      \
    } while (0)

#define ENTRY_KHASH(e) (((const qent *)(e))->khash)
#define ENTRY_IDHASH(x) id_hash((x)->e.id)
#define NODE_HASH(n) ((n)->hash)

static qent *kt_find(const queue_t *q, long section, const char *p, size_t len, uint32_t h)
{
    if (!q->nkb)
        return NULL;
    for (q_entry *e = q->kb[h & (q->nkb - 1)]; e; e = e->hnext) {
        qent *x = (qent *)e;
        if (x->khash == h && e->section == section && strncmp(e->plex_path, p, len) == 0 && e->plex_path[len] == '\0')
            return x;
    }
    return NULL;
}

static void id_insert(queue_t *q, qent *x)
{
    TABLE_GROW(q->ib, q->nib, q->nid, qent, idnext, ENTRY_IDHASH);
    size_t b = id_hash(x->e.id) & (q->nib - 1);
    x->idnext = q->ib[b];
    q->ib[b] = x;
    q->nid++;
}

static void id_remove(queue_t *q, qent *x)
{
    qent **pp = &q->ib[id_hash(x->e.id) & (q->nib - 1)];
    while (*pp != x)
        pp = &(*pp)->idnext;
    *pp = x->idnext;
    q->nid--;
}

static qent *id_find(const queue_t *q, int64_t id)
{
    if (!q->nib)
        return NULL;
    for (qent *x = q->ib[id_hash(id) & (q->nib - 1)]; x; x = x->idnext)
        if (x->e.id == id)
            return x;
    return NULL;
}

/* ---- folder trie ---- */

static dnode *dt_find(const queue_t *q, long section, const char *p, size_t len, uint32_t h)
{
    if (!q->ndb)
        return NULL;
    for (dnode *n = q->db[h & (q->ndb - 1)]; n; n = n->hnext)
        if (n->hash == h && n->section == section && n->len == len && memcmp(n->key, p, len) == 0)
            return n;
    return NULL;
}

static dnode *dt_make(queue_t *q, dnode *parent, long section, const char *p, size_t len, uint32_t h)
{
    TABLE_GROW(q->db, q->ndb, q->ndn, dnode, hnext, NODE_HASH);
    dnode *n = xcalloc(1, sizeof *n + len + 1);
    n->section = section;
    n->hash = h;
    n->len = len;
    memcpy(n->key, p, len);
    n->parent = parent;
    if (parent) {
        n->next = parent->child;
        if (parent->child)
            parent->child->prev = n;
        parent->child = n;
    }
    size_t b = h & (q->ndb - 1);
    n->hnext = q->db[b];
    q->db[b] = n;
    q->ndn++;
    return n;
}

static void dt_drop(queue_t *q, dnode *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else if (n->parent)
        n->parent->child = n->next;
    if (n->next)
        n->next->prev = n->prev;
    dnode **pp = &q->db[n->hash & (q->ndb - 1)];
    while (*pp != n)
        pp = &(*pp)->hnext;
    *pp = n->hnext;
    q->ndn--;
    free(n);
}

static void trie_add(queue_t *q, qent *x)
{
    const char *p = x->e.plex_path;
    size_t len = strlen(p), L;
    uint32_t h;
    pwalk w;
    dnode *parent = NULL;
    pw_init(&w, x->e.section, p, len);
    while (pw_next(&w, &L, &h) && L < len) {
        dnode *n = dt_find(q, x->e.section, p, L, h);
        if (!n)
            n = dt_make(q, parent, x->e.section, p, L, h);
        n->below++;
        parent = n;
    }
    x->dprev = NULL;
    x->dnext = NULL;
    if (parent) {
        x->dnext = parent->entries;
        if (parent->entries)
            parent->entries->dprev = x;
        parent->entries = x;
    }
}

static void trie_remove(queue_t *q, qent *x)
{
    const char *p = x->e.plex_path;
    size_t len = strlen(p), L, plen = 0;
    uint32_t h, ph = 0;
    pwalk w;
    pw_init(&w, x->e.section, p, len);
    while (pw_next(&w, &L, &h) && L < len) {
        plen = L;
        ph = h;
    }
    if (!plen)
        return; /* a top-level path: no parent folder node */
    dnode *n = dt_find(q, x->e.section, p, plen, ph);
    if (x->dprev)
        x->dprev->dnext = x->dnext;
    else
        n->entries = x->dnext;
    if (x->dnext)
        x->dnext->dprev = x->dprev;
    while (n) {
        dnode *up = n->parent;
        if (--n->below == 0)
            dt_drop(q, n);
        n = up;
    }
}

/* Non-active entries strictly beneath (section, p) into q->scratch; returns how many. */
static size_t collect_below(queue_t *q, long section, const char *p, size_t len)
{
    q->scratch.n = 0;
    dnode *top = dt_find(q, section, p, len, key_hash(section, p, len));
    dnode *n = top;
    while (n) {
        for (qent *x = n->entries; x; x = x->dnext)
            if (!is_active(x->e.state))
                vec_push(&q->scratch, x);
        if (n->child) {
            n = n->child;
            continue;
        }
        while (n != top && !n->next)
            n = n->parent;
        n = n == top ? NULL : n->next;
    }
    return q->scratch.n;
}

/* ---- indexes together ---- */

static void index_insert(queue_t *q, qent *x)
{
    TABLE_GROW(q->kb, q->nkb, q->count, q_entry, hnext, ENTRY_KHASH);
    x->khash = key_hash(x->e.section, x->e.plex_path, strlen(x->e.plex_path));
    size_t b = x->khash & (q->nkb - 1);
    x->e.hnext = q->kb[b];
    q->kb[b] = &x->e;
    trie_add(q, x);
    q->count++;
    q->nstate[x->e.state]++;
    x->indexed = 1;
}

static void index_remove(queue_t *q, qent *x)
{
    if (!x->indexed)
        return;
    q_entry **pp = &q->kb[x->khash & (q->nkb - 1)];
    while (*pp != &x->e)
        pp = &(*pp)->hnext;
    *pp = x->e.hnext;
    trie_remove(q, x);
    q->count--;
    q->nstate[x->e.state]--;
    x->indexed = 0;
}

/* ---- entries ---- */

static qent *ent_alloc(long section, const char *plex, const char *arr)
{
    size_t pl = strlen(plex) + 1;
    bool same = !arr || strcmp(arr, plex) == 0;
    size_t al = same ? 0 : strlen(arr) + 1;
    qent *x = xcalloc(1, sizeof *x + pl + al);
    memcpy(x->inl, plex, pl);
    x->e.plex_path = x->inl;
    x->e.arr_path = x->inl;
    if (!same) {
        memcpy(x->inl + pl, arr, al);
        x->e.arr_path = x->inl + pl;
    }
    x->e.section = section;
    return x;
}

static void ent_free(qent *x)
{
    if (x->plex_heap)
        free(x->e.plex_path);
    free(x->e.files);
    free(x->e.park_reason);
    free(x->e.last_error);
    free(x->e.hold_reason);
    free(x);
}

static void ent_set_path(qent *x, const char *p)
{
    if (x->plex_heap)
        free(x->e.plex_path);
    x->plex_heap = 0;
    x->e.plex_path = x->inl;
    if (strcmp(p, x->inl) != 0) {
        x->e.plex_path = xstrdup(p);
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
    id_remove(q, x);
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

static crec *crec_find(const queue_t *q, long section, const char *p, size_t len, uint32_t h)
{
    if (!q->ncb)
        return NULL;
    for (crec *r = q->cb[h & (q->ncb - 1)]; r; r = r->next)
        if (r->hash == h && r->section == section && strncmp(r->key, p, len) == 0 && r->key[len] == '\0')
            return r;
    return NULL;
}

static uint64_t cooldown_until(const queue_t *q, long section, const char *p)
{
    if (!q->p.cooldown_ms || !q->ncr)
        return 0;
    size_t len = strlen(p);
    crec *r = crec_find(q, section, p, len, key_hash(section, p, len));
    return r ? sat_add(r->at, q->p.cooldown_ms) : 0;
}

/* Due of a WAITING entry: the debounce window (or now for a manual one), not before the key's
 * cooldown (manual skips it) nor before any backoff the entry carries. */
static uint64_t waiting_due(const queue_t *q, const qent *x, uint64_t now)
{
    uint64_t d;
    if (x->e.manual) {
        d = now;
    } else {
        d = debounce_due(q, x->e.first_seen, x->e.last_event);
        d = max64(d, cooldown_until(q, x->e.section, x->e.plex_path));
    }
    return max64(d, x->not_before);
}

/* After a fold: WAITING recomputes its window; any other timed state only moves later. */
static void refresh_due(queue_t *q, qent *x, uint64_t now)
{
    switch (x->e.state) {
    case ENTRY_WAITING:
        x->e.due = waiting_due(q, x, now);
        break;
    case ENTRY_AGING:
    case ENTRY_HELD:
    case ENTRY_RETRY:
    case ENTRY_READY:
        x->e.due = max64(x->e.due, x->not_before);
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
    q_entry *d = &dst->e, *s = &src->e;
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
    q_entry *d = &dst->e;
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
    pwalk w;
    size_t L;
    uint32_t h;
    *outer = *act = NULL;
    pw_init(&w, section, p, len);
    while (pw_next(&w, &L, &h)) {
        if (L == len && !self)
            break;
        qent *x = kt_find(q, section, p, L, h);
        if (!x)
            continue;
        if (is_active(x->e.state)) {
            *act = x;
            continue;
        }
        *outer = x;
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
        unplace(q, x);
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
    scan_up(q, x->e.section, x->e.plex_path, strlen(x->e.plex_path), false, &anc, &act);
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

void queue_free(queue_t *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->nib; i++)
        for (qent *x = q->ib[i], *nx; x; x = nx) {
            nx = x->idnext;
            ent_free(x);
        }
    for (size_t i = 0; i < q->ndb; i++)
        for (dnode *n = q->db[i], *nx; n; n = nx) {
            nx = n->hnext;
            free(n);
        }
    for (size_t i = 0; i < q->ncb; i++)
        for (crec *r = q->cb[i], *nx; r; r = nx) {
            nx = r->next;
            free(r);
        }
    free(q->kb);
    free(q->ib);
    free(q->db);
    free(q->cb);
    free(q->timed.v);
    free(q->ready.v);
    free(q->blocked.v);
    free(q->active.v);
    free(q->scratch.v);
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
            vec_push(&q->scratch, q->timed.v[i]);
    for (size_t i = 0; i < q->scratch.n; i++) {
        qent *x = q->scratch.v[i];
        uint64_t d = debounce_due(q, x->e.first_seen, x->e.last_event);
        d = max64(max64(d, cooldown_until(q, x->e.section, x->e.plex_path)), x->not_before);
        if (d == x->e.due)
            continue;
        x->e.due = d;
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
    q_entry *e = &x->e;
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
            *res = (q_add_result){.kind = QADD_MERGED, .entry = &outer->e};
        return 0;
    }
    if (act) {
        fold_dirty(act, ev->at, ev->at, ev->files, ev->n_files, ev->source_bit, 1, ev->manual);
        emit(q, act, QCHANGE_PUT);
        if (res)
            *res = (q_add_result){.kind = QADD_DIRTY, .entry = &act->e};
        return 0;
    }

    size_t nabs = collect_below(q, ev->section, p, len);
    if (q->p.max_pending > 0 && q->count + 1 > (size_t)q->p.max_pending + nabs) {
        q->scratch.n = 0;
        return -ENOSPC;
    }
    qent *x = ent_alloc(ev->section, p, ev->arr_path);
    x->e.id = take_id(q);
    x->e.first_seen = x->e.last_event = ev->at;
    x->e.sources = ev->source_bit;
    x->e.events = 1;
    x->e.manual = ev->manual;
    files_union(&x->e, ev->files, ev->n_files);
    x->e.state = ev->section == QUEUE_SECTION_UNRESOLVED ? ENTRY_UNRESOLVED : ENTRY_WAITING;
    id_insert(q, x);
    /* Absorbed entries give up their state: a parked one's request is renewed by this event, so
     * the new entry waits like any other and carries no park reason (the error comes back by
     * itself if the cause is still there); a retry's backoff end is kept as not_before. */
    unsigned absorbed = absorb_scratch(q, x);
    x->e.due = x->e.state == ENTRY_WAITING ? waiting_due(q, x, now)
                                            : debounce_due(q, x->e.first_seen, x->e.last_event);
    index_insert(q, x);
    place(q, x);
    emit(q, x, QCHANGE_PUT);
    if (res)
        *res = (q_add_result){.kind = QADD_NEW, .entry = &x->e, .absorbed = absorbed};
    return 0;
}

uint64_t queue_next_wakeup(const queue_t *q)
{
    /* Every timed state needs a slot to start; with none free nothing can run before a
     * CHECKING/SYNCING entry ends, and the owner looks again after that call. */
    if (q->active.n >= max_active(q))
        return UINT64_MAX;
    uint64_t w = UINT64_MAX;
    const qent *t = heap_top(&q->timed), *r = heap_top(&q->ready);
    if (t)
        w = t->e.due;
    if (r)
        w = min64(w, r->e.due);
    return w;
}

static void to_ready(queue_t *q, qent *x, bool blocked)
{
    unplace(q, x);
    if (x->e.state != ENTRY_READY) {
        x->ready_from = x->e.state;
        set_state(q, x, ENTRY_READY);
        emit(q, x, QCHANGE_PUT);
    }
    if (blocked) {
        x->where = IN_BLOCKED;
        list_add(&q->blocked, x);
    } else {
        place(q, x);
    }
}

q_entry *queue_take_ready(queue_t *q, uint64_t now, bool *needs_age)
{
    if (needs_age)
        *needs_age = false;
    if (q->active.n >= max_active(q)) {
        qent *t;
        while ((t = heap_top(&q->timed)) && t->e.due <= now)
            to_ready(q, t, false);
        return NULL;
    }
    for (;;) {
        qent *t = heap_top(&q->timed), *r = heap_top(&q->ready);
        if (t && t->e.due > now)
            t = NULL;
        if (r && r->e.due > now)
            r = NULL;
        qent *c = t && r ? (before(t, r) ? t : r) : (t ? t : r);
        if (!c)
            return NULL;
        if (nested_with_active(q, c)) {
            to_ready(q, c, true);
            continue;
        }
        entry_state from = c->e.state == ENTRY_READY ? (entry_state)c->ready_from : c->e.state;
        unplace(q, c);
        /* Only a restore can leave pending entries nested; one scan of c covers them. */
        collect_below(q, c->e.section, c->e.plex_path, strlen(c->e.plex_path));
        absorb_scratch(q, c);
        /* dirty means "an event arrived since this run started"; the run starting now includes
         * every event so far. */
        c->e.dirty = false;
        c->e.dirty_first = 0;
        c->dirty_manual = 0;
        c->not_before = 0;
        set_state(q, c, ENTRY_CHECKING);
        place(q, c);
        if (needs_age)
            *needs_age = q->p.min_age_ms > 0 && !c->e.manual && (from == ENTRY_WAITING || from == ENTRY_AGING);
        emit(q, c, QCHANGE_PUT);
        return &c->e;
    }
}

/* x leaves CHECKING/SYNCING for state s with due d. x may be freed (settle): returns the entry
 * that carries its work. */
static q_entry *leave_active(queue_t *q, qent *x, entry_state s, uint64_t d, uint64_t now)
{
    unplace(q, x);
    set_state(q, x, s);
    x->e.due = d;
    if (s != ENTRY_HELD) {
        free(x->e.hold_reason);
        x->e.hold_reason = NULL;
    }
    place(q, x);
    qent *carrier = settle(q, x, now);
    unblock(q);
    return &carrier->e;
}

q_entry *queue_age_checked(queue_t *q, q_entry *e, uint64_t newest_mtime, uint64_t now, bool *old_enough)
{
    qent *x = (qent *)e;
    assert(x && x->e.state == ENTRY_CHECKING);
    *old_enough = true;
    if (!q->p.min_age_ms)
        return e; /* MINIMUM_AGE was set to 0 by a reload since the entry was taken */
    /* An mtime in the future (clock skew on the remote) is no evidence of a recent write and
     * would hold the folder until the clocks meet: treat it as unknown. */
    uint64_t ref = x->e.last_event;
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
    qent *x = (qent *)e;
    assert(x && is_active(x->e.state));
    replace_str(&x->e.hold_reason, reason ? reason : "held");
    return leave_active(q, x, ENTRY_HELD, sat_add(now, q->p.hold_recheck_ms), now);
}

void queue_sync_started(queue_t *q, q_entry *e, uint64_t now)
{
    (void)now;
    qent *x = (qent *)e;
    assert(x && x->e.state == ENTRY_CHECKING);
    set_state(q, x, ENTRY_SYNCING);
    emit(q, x, QCHANGE_PUT);
}

q_entry *queue_sync_done(queue_t *q, q_entry *e, sync_outcome o, const char *error, uint64_t now)
{
    qent *x = (qent *)e;
    assert(x && is_active(x->e.state));
    switch (o) {
    case SYNC_OK: {
        queue_note_success(q, x->e.section, x->e.plex_path, now);
        if (!x->e.dirty) {
            ent_remove(q, x);
            unblock(q);
            return NULL;
        }
        /* Start over for the events that came during the run. */
        x->e.first_seen = x->e.dirty_first;
        x->e.attempts = 0;
        x->e.manual = x->dirty_manual;
        x->e.dirty = false;
        x->e.dirty_first = 0;
        x->dirty_manual = 0;
        x->not_before = 0;
        free(x->e.last_error);
        x->e.last_error = NULL;
        free(x->e.park_reason);
        x->e.park_reason = NULL;
        uint64_t d = waiting_due(q, x, now);
        if (!x->e.manual)
            d = max64(d, sat_add(now, q->p.cooldown_ms));
        return leave_active(q, x, ENTRY_WAITING, d, now);
    }
    case SYNC_TRANSIENT: {
        if (error)
            replace_str(&x->e.last_error, error);
        x->e.attempts = sat_addu(x->e.attempts, 1);
        uint64_t d = sat_add(now, backoff(q, x->e.attempts));
        x->not_before = d;
        return leave_active(q, x, ENTRY_RETRY, d, now);
    }
    case SYNC_PARKED:
    default:
        if (error)
            replace_str(&x->e.last_error, error);
        replace_str(&x->e.park_reason, error ? error : "parked");
        return leave_active(q, x, ENTRY_PARKED, x->e.due, now);
    }
}

int queue_unpark(queue_t *q, q_entry *e, uint64_t now)
{
    qent *x = (qent *)e;
    if (!x || x->e.state != ENTRY_PARKED)
        return 0;
    unplace(q, x);
    set_state(q, x, ENTRY_WAITING);
    free(x->e.park_reason);
    x->e.park_reason = NULL;
    x->e.due = now;
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
    for (size_t i = 0; i < q->nkb; i++)
        for (q_entry *e = q->kb[i]; e; e = e->hnext)
            if (e->state == ENTRY_PARKED)
                vec_push(&parked, (qent *)e);
    int n = 0;
    for (size_t i = 0; i < parked.n; i++)
        n += queue_unpark(q, &parked.v[i]->e, now);
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
    if (m->section == QUEUE_SECTION_UNRESOLVED && x->e.section != QUEUE_SECTION_UNRESOLVED)
        return false;
    bool changed = false;
    if (m->section != x->e.section || strcmp(m->plex_path, x->e.plex_path) != 0) {
        x->e.section = m->section;
        ent_set_path(x, m->plex_path);
        changed = true;
    }
    if (x->e.section != QUEUE_SECTION_UNRESOLVED && x->e.state == ENTRY_UNRESOLVED) {
        x->e.state = ENTRY_WAITING;
        x->e.due = waiting_due(q, x, now);
        changed = true;
    }
    return changed;
}

/* Puts a detached entry back under its (maybe new) key with the merge and absorb rules.
 * Returns true when anything changed (and was emitted). */
static bool relink(queue_t *q, qent *x, uint64_t now, bool changed)
{
    const char *p = x->e.plex_path;
    size_t len = strlen(p);
    qent *outer, *act;
    scan_up(q, x->e.section, p, len, true, &outer, &act);
    if (outer || act) {
        if (outer) {
            fold(outer, x);
            refresh_due(q, outer, now);
        } else {
            fold_dirty(act, x->e.first_seen, x->e.last_event, (const char *const *)x->e.files, x->e.n_files,
                       x->e.sources, x->e.events, x->e.manual);
        }
        emit(q, x, QCHANGE_DEL);
        id_remove(q, x);
        ent_free(x);
        emit(q, outer ? outer : act, QCHANGE_PUT);
        return true;
    }
    collect_below(q, x->e.section, p, len);
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
    qent *c = ent_alloc(src->e.section, src->e.plex_path, src->e.arr_path);
    char *plex = c->e.plex_path, *arr = c->e.arr_path;
    c->e = src->e;
    c->e.plex_path = plex;
    c->e.arr_path = arr;
    c->e.hnext = NULL;
    c->e.files = NULL;
    c->e.n_files = 0;
    files_set(&c->e, (const char *const *)src->e.files, src->e.n_files);
    c->e.park_reason = xstrdup(src->e.park_reason);
    c->e.last_error = xstrdup(src->e.last_error);
    c->e.hold_reason = xstrdup(src->e.hold_reason);
    c->not_before = src->not_before;
    c->ready_from = src->ready_from;
    c->e.id = take_id(q);
    id_insert(q, c);
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
        if (m->section == QUEUE_SECTION_UNRESOLVED && x->e.section != QUEUE_SECTION_UNRESOLVED)
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
        keep = use[j]->section == x->e.section && strcmp(use[j]->plex_path, x->e.plex_path) == 0;
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
    for (size_t i = 0; i < q->nkb; i++)
        for (q_entry *e = q->kb[i]; e; e = e->hnext)
            if (!is_active(e->state))
                vec_push(&work, (qent *)e);
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
        int rc = fn(ud, x->e.arr_path, out, REMAP_MAX, &n);
        if (n > REMAP_MAX)
            n = REMAP_MAX;
        if (rc < 0) {
            if (relink(q, x, now, false)) /* unchanged, but another entry may have moved onto it */
                changed++;
        } else if (n == 0) {
            emit(q, x, QCHANGE_DEL);
            id_remove(q, x);
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

static void crec_sweep(queue_t *q)
{
    for (size_t i = 0; i < q->ncb; i++) {
        crec **pp = &q->cb[i];
        while (*pp) {
            crec *r = *pp;
            if (sat_add(r->at, q->p.cooldown_ms) <= q->cnow) {
                *pp = r->next;
                free(r);
                q->ncr--;
            } else {
                pp = &r->next;
            }
        }
    }
    q->csweep = max64(CREC_SWEEP_MIN, 2 * q->ncr);
}

void queue_note_success(queue_t *q, long section, const char *plex_path, uint64_t at)
{
    if (!plex_path || !q->p.cooldown_ms)
        return; /* nothing to remember: no cooldown */
    q->cnow = max64(q->cnow, at);
    size_t len = strlen(plex_path);
    uint32_t h = key_hash(section, plex_path, len);
    crec *r = crec_find(q, section, plex_path, len, h);
    if (r) {
        r->at = max64(r->at, at);
        return;
    }
    if (sat_add(at, q->p.cooldown_ms) <= q->cnow)
        return; /* already over */
    TABLE_GROW(q->cb, q->ncb, q->ncr, crec, next, NODE_HASH);
    r = xmalloc(sizeof *r + len + 1);
    r->section = section;
    r->at = at;
    r->hash = h;
    memcpy(r->key, plex_path, len + 1);
    size_t b = h & (q->ncb - 1);
    r->next = q->cb[b];
    q->cb[b] = r;
    q->ncr++;
    /* Records older than the cooldown no longer matter; sweeping when the count doubles keeps
     * memory bounded by the successes of one cooldown window, at O(1) amortized. */
    if (q->ncr > q->csweep)
        crec_sweep(q);
}

/* ---- restore ---- */

int queue_restore(queue_t *q, const q_entry *e, uint64_t now)
{
    if (!e || !e->plex_path || !e->plex_path[0])
        return -EINVAL;
    size_t len = strlen(e->plex_path);
    if (kt_find(q, e->section, e->plex_path, len, key_hash(e->section, e->plex_path, len)) ||
        (e->id > 0 && id_find(q, e->id)))
        return -EEXIST;
    qent *x = ent_alloc(e->section, e->plex_path, e->arr_path);
    x->e.id = e->id > 0 ? e->id : take_id(q);
    x->e.first_seen = e->first_seen;
    x->e.last_event = e->last_event;
    x->e.due = e->due;
    x->e.state = (unsigned)e->state < ENTRY_STATE_COUNT ? e->state : ENTRY_WAITING;
    x->e.attempts = e->attempts;
    x->e.dirty = e->dirty;
    x->e.dirty_first = e->dirty_first;
    x->e.manual = e->manual;
    files_set(&x->e, (const char *const *)e->files, e->files ? e->n_files : 0);
    x->e.sources = e->sources;
    x->e.events = e->events;
    x->e.park_reason = xstrdup(e->park_reason);
    x->e.last_error = xstrdup(e->last_error);
    x->e.hold_reason = xstrdup(e->hold_reason);

    entry_state s = x->e.state;
    if (x->e.section == QUEUE_SECTION_UNRESOLVED)
        s = ENTRY_UNRESOLVED;
    else if (s == ENTRY_UNRESOLVED)
        s = ENTRY_WAITING;
    /* Interrupted work runs again at once. A SYNCING entry had passed its age check; a CHECKING
     * one may not have (ready_from decides needs_age). */
    x->ready_from = x->e.attempts > 0 || s == ENTRY_SYNCING ? ENTRY_RETRY : ENTRY_WAITING;
    if (is_active(s)) {
        s = ENTRY_READY;
        x->e.due = now;
    }
    x->e.state = s;
    if ((is_timed(s) || s == ENTRY_READY) && q->p.clamp_future_ms && x->e.due > sat_add(now, q->p.clamp_future_ms))
        x->e.due = sat_add(now, q->p.delay_ms); /* the clock jumped back: don't wait for ages */
    if (s == ENTRY_RETRY)
        x->not_before = x->e.due;
    if (x->e.id >= q->next_id)
        q->next_id = x->e.id + 1;
    id_insert(q, x);
    index_insert(q, x);
    place(q, x);
    return 0;
}

/* ---- lookups ---- */

q_entry *queue_find(const queue_t *q, long section, const char *plex_path)
{
    if (!plex_path)
        return NULL;
    size_t len = strlen(plex_path);
    qent *x = kt_find(q, section, plex_path, len, key_hash(section, plex_path, len));
    return x ? &x->e : NULL;
}

q_entry *queue_find_id(const queue_t *q, int64_t id)
{
    qent *x = id_find(q, id);
    return x ? &x->e : NULL;
}

size_t queue_count(const queue_t *q)
{
    return q->count;
}

size_t queue_count_state(const queue_t *q, entry_state s)
{
    return (unsigned)s < ENTRY_STATE_COUNT ? q->nstate[s] : 0;
}

void queue_foreach(const queue_t *q, void (*fn)(void *ud, const q_entry *e), void *ud)
{
    for (size_t i = 0; i < q->nkb; i++)
        for (const q_entry *e = q->kb[i]; e; e = e->hnext)
            fn(ud, e);
}
