/* queue_index.c: the queue's index structures (queue_index.h): chained hash tables by key, by
 * id and for stamps, the folder tree, and the due-time heap. No scheduling rule lives here.
 *
 * Hashes: FNV-1a (util.h's hash_bytes) over the path bytes. It runs left to right, so one pass over a path gives the hash of every ancestor prefix on the way (qi_up). */
#include "queue_index.h"

#include <stdlib.h>
#include <stddef.h>
#include <string.h>

#include "util.h"

struct qi_dir {
    qi_dir *hnext;
    qi_dir *parent;
    list_node sib;              /* in the parent's kids */
    list_node kids;             /* subfolders with a node (their sib) */
    list_node entries;          /* entries whose parent folder is this one (qi_node.sib) */
    uint32_t hash;
    uint32_t below;             /* keyed entries strictly beneath */
    uint32_t len;               /* paths are at most a few KiB */
    char key[];
};

struct qi_stamp {
    qi_stamp *next;
    uint64_t at;
    uint32_t hash;
    char key[];
};

/* ---- hashing ---- */

static uint32_t h_fin(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return (uint32_t)h;
}

uint32_t qi_key_hash(const char *p, size_t len)
{
    return h_fin(hash_bytes(HASH_INIT, p, len));
}

static uint32_t id_hash(int64_t id)
{
    uint64_t z = (uint64_t)id;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return (uint32_t)(z ^ (z >> 31));
}

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

#define ENTRY_KHASH(p) (container_of((p), qi_node, e)->khash)
#define NODE_IDHASH(x) id_hash((x)->e.id)
#define ITEM_HASH(n) ((n)->hash)

/* ---- prefix walk ---- */

/* Steps to the next prefix of the walked path: its length in *L and its hash in *h. */
static bool up_step(qi_up *w, size_t *L, uint32_t *h)
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

void qi_up_init(qi_up *w, const qi_keys *k, const char *p, size_t len, bool self)
{
    w->k = k;
        w->p = p;
    w->len = len;
    w->at = 0;
    w->st = HASH_INIT;
    w->done = len == 0;
    w->self = self;
}

/* ---- key table ---- */

static qi_node *kt_find(const qi_keys *k, const char *p, size_t len, uint32_t h)
{
    if (!k->nkb)
        return NULL;
    for (q_entry *e = k->kb[h & (k->nkb - 1)]; e; e = e->hnext) {
        qi_node *x = container_of(e, qi_node, e);
        if (x->khash == h && strncmp(e->path, p, len) == 0 && e->path[len] == '\0')
            return x;
    }
    return NULL;
}

qi_node *qi_keys_find(const qi_keys *k, const char *p, size_t len)
{
    return kt_find(k, p, len, qi_key_hash(p, len));
}

size_t qi_keys_count(const qi_keys *k)
{
    return k->count;
}

void qi_keys_foreach(const qi_keys *k, void (*fn)(void *ud, qi_node *x), void *ud)
{
    for (size_t i = 0; i < k->nkb; i++)
        for (q_entry *e = k->kb[i]; e; e = e->hnext)
            fn(ud, container_of(e, qi_node, e));
}

qi_node *qi_up_next(qi_up *w)
{
    size_t L;
    uint32_t h;
    while (up_step(w, &L, &h)) {
        if (L == w->len && !w->self)
            return NULL;
        qi_node *x = kt_find(w->k, w->p, L, h);
        if (x)
            return x;
    }
    return NULL;
}

/* ---- folder tree ---- */

static qi_dir *dt_find(const qi_keys *k, const char *p, size_t len, uint32_t h)
{
    if (!k->ndb)
        return NULL;
    for (qi_dir *n = k->db[h & (k->ndb - 1)]; n; n = n->hnext)
        if (n->hash == h && n->len == len && memcmp(n->key, p, len) == 0)
            return n;
    return NULL;
}

static qi_dir *dt_make(qi_keys *k, qi_dir *parent, const char *p, size_t len, uint32_t h)
{
    TABLE_GROW(k->db, k->ndb, k->ndn, qi_dir, hnext, ITEM_HASH);
    /* The key right after the last field, not after sizeof's padding: 100,000 folders are
     * 100,000 nodes, and 16 bytes less each moves them into a smaller malloc size class. */
    qi_dir *n = xcalloc(1, offsetof(qi_dir, key) + len + 1);
        n->hash = h;
    n->len = (uint32_t)len;
    memcpy(n->key, p, len);
    n->parent = parent;
    list_init(&n->sib);
    list_init(&n->kids);
    list_init(&n->entries);
    if (parent)
        list_push(&parent->kids, &n->sib);
    size_t b = h & (k->ndb - 1);
    n->hnext = k->db[b];
    k->db[b] = n;
    k->ndn++;
    return n;
}

static void dt_drop(qi_keys *k, qi_dir *n)
{
    list_del(&n->sib);
    qi_dir **pp = &k->db[n->hash & (k->ndb - 1)];
    while (*pp != n)
        pp = &(*pp)->hnext;
    *pp = n->hnext;
    k->ndn--;
    free(n);
}

/* Counts x in every folder above it, making the nodes that are missing. */
static void tree_add(qi_keys *k, qi_node *x)
{
    const char *p = x->e.path;
    size_t len = strlen(p), L;
    uint32_t h;
    qi_up w;
    qi_dir *parent = NULL;
    qi_up_init(&w, k, p, len, true);
    while (up_step(&w, &L, &h) && L < len) {
        qi_dir *n = dt_find(k, p, L, h);
        if (!n)
            n = dt_make(k, parent, p, L, h);
        n->below++;
        parent = n;
    }
    list_init(&x->sib);
    if (parent)
        list_push(&parent->entries, &x->sib);
}

static void tree_remove(qi_keys *k, qi_node *x)
{
    const char *p = x->e.path;
    size_t len = strlen(p), L, plen = 0;
    uint32_t h, ph = 0;
    qi_up w;
    qi_up_init(&w, k, p, len, true);
    while (up_step(&w, &L, &h) && L < len) {
        plen = L;
        ph = h;
    }
    if (!plen)
        return; /* a top-level path: no parent folder node */
    qi_dir *n = dt_find(k, p, plen, ph);
    list_del(&x->sib);
    while (n) {
        qi_dir *up = n->parent;
        if (--n->below == 0)
            dt_drop(k, n);
        n = up;
    }
}

/* Lists are appended to, so newest first means from the tail: a node's older sibling is the
 * one before it. */
void qi_keys_below(const qi_keys *k, const char *p, size_t len,
                   void (*fn)(void *ud, qi_node *x), void *ud)
{
    qi_dir *top = dt_find(k, p, len, qi_key_hash(p, len));
    qi_dir *n = top;
    while (n) {
        for (list_node *l = n->entries.prev; l != &n->entries; l = l->prev)
            fn(ud, container_of(l, qi_node, sib));
        if (!list_empty(&n->kids)) {
            n = container_of(n->kids.prev, qi_dir, sib);
            continue;
        }
        while (n != top && n->sib.prev == &n->parent->kids)
            n = n->parent;
        n = n == top ? NULL : container_of(n->sib.prev, qi_dir, sib);
    }
}

/* ---- keys together ---- */

void qi_keys_insert(qi_keys *k, qi_node *x)
{
    TABLE_GROW(k->kb, k->nkb, k->count, q_entry, hnext, ENTRY_KHASH);
    x->khash = qi_key_hash(x->e.path, strlen(x->e.path));
    size_t b = x->khash & (k->nkb - 1);
    x->e.hnext = k->kb[b];
    k->kb[b] = &x->e;
    tree_add(k, x);
    k->count++;
    x->e.keyed = true;
}

void qi_keys_remove(qi_keys *k, qi_node *x)
{
    if (!x->e.keyed)
        return;
    q_entry **pp = &k->kb[x->khash & (k->nkb - 1)];
    while (*pp != &x->e)
        pp = &(*pp)->hnext;
    *pp = x->e.hnext;
    tree_remove(k, x);
    k->count--;
    x->e.keyed = false;
}

void qi_keys_free(qi_keys *k)
{
    for (size_t i = 0; i < k->ndb; i++)
        for (qi_dir *n = k->db[i], *nx; n; n = nx) {
            nx = n->hnext;
            free(n);
        }
    free(k->kb);
    free(k->db);
    memset(k, 0, sizeof *k);
}

/* ---- ids ---- */

void qi_ids_insert(qi_ids *t, qi_node *x)
{
    TABLE_GROW(t->b, t->nb, t->count, qi_node, idnext, NODE_IDHASH);
    size_t b = id_hash(x->e.id) & (t->nb - 1);
    x->idnext = t->b[b];
    t->b[b] = x;
    t->count++;
}

void qi_ids_remove(qi_ids *t, qi_node *x)
{
    qi_node **pp = &t->b[id_hash(x->e.id) & (t->nb - 1)];
    while (*pp != x)
        pp = &(*pp)->idnext;
    *pp = x->idnext;
    t->count--;
}

qi_node *qi_ids_find(const qi_ids *t, int64_t id)
{
    if (!t->nb)
        return NULL;
    for (qi_node *x = t->b[id_hash(id) & (t->nb - 1)]; x; x = x->idnext)
        if (x->e.id == id)
            return x;
    return NULL;
}

void qi_ids_drain(qi_ids *t, void (*fn)(qi_node *x))
{
    for (size_t i = 0; i < t->nb; i++)
        for (qi_node *x = t->b[i], *nx; x; x = nx) {
            nx = x->idnext;
            fn(x);
        }
    free(t->b);
    memset(t, 0, sizeof *t);
}

/* ---- heap ---- */

bool qi_before(const qi_node *a, const qi_node *b)
{
    return a->e.due < b->e.due || (a->e.due == b->e.due && a->e.id < b->e.id);
}

static void heap_set(qi_heap *h, size_t i, qi_node *x)
{
    h->v[i] = x;
    x->e.heap_idx = (uint32_t)i; /* MAX_PENDING is far below 2^32 */
}

static void heap_up(qi_heap *h, size_t i)
{
    qi_node *x = h->v[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!qi_before(x, h->v[parent]))
            break;
        heap_set(h, i, h->v[parent]);
        i = parent;
    }
    heap_set(h, i, x);
}

static void heap_down(qi_heap *h, size_t i)
{
    qi_node *x = h->v[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && qi_before(h->v[c + 1], h->v[c]))
            c++;
        if (!qi_before(h->v[c], x))
            break;
        heap_set(h, i, h->v[c]);
        i = c;
    }
    heap_set(h, i, x);
}

void qi_heap_push(qi_heap *h, qi_node *x)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 16;
        h->v = xrealloc(h->v, h->cap * sizeof *h->v);
    }
    h->v[h->n++] = x;
    heap_up(h, h->n - 1);
}

void qi_heap_del(qi_heap *h, qi_node *x)
{
    size_t i = x->e.heap_idx;
    qi_node *last = h->v[--h->n];
    if (i < h->n) {
        heap_set(h, i, last);
        heap_up(h, i);
        heap_down(h, last->e.heap_idx);
    }
}

void qi_heap_fix(qi_heap *h, qi_node *x)
{
    heap_up(h, x->e.heap_idx);
    heap_down(h, x->e.heap_idx);
}

qi_node *qi_heap_top(const qi_heap *h)
{
    return h->n ? h->v[0] : NULL;
}

void qi_heap_free(qi_heap *h)
{
    free(h->v);
    memset(h, 0, sizeof *h);
}

/* ---- stamps ---- */

static qi_stamp *stamp_find(const qi_stamps *t, const char *p, size_t len, uint32_t h)
{
    if (!t->nb)
        return NULL;
    for (qi_stamp *r = t->b[h & (t->nb - 1)]; r; r = r->next)
        if (r->hash == h && strncmp(r->key, p, len) == 0 && r->key[len] == '\0')
            return r;
    return NULL;
}

uint64_t *qi_stamps_find(const qi_stamps *t, const char *p, size_t len)
{
    qi_stamp *r = stamp_find(t, p, len, qi_key_hash(p, len));
    return r ? &r->at : NULL;
}

void qi_stamps_add(qi_stamps *t, const char *p, size_t len, uint64_t at)
{
    TABLE_GROW(t->b, t->nb, t->count, qi_stamp, next, ITEM_HASH);
    qi_stamp *r = xmalloc(sizeof *r + len + 1);
        r->at = at;
    r->hash = qi_key_hash(p, len);
    memcpy(r->key, p, len);
    r->key[len] = '\0';
    size_t b = r->hash & (t->nb - 1);
    r->next = t->b[b];
    t->b[b] = r;
    t->count++;
}

void qi_stamps_sweep(qi_stamps *t, bool (*expired)(void *ud, uint64_t at), void *ud)
{
    for (size_t i = 0; i < t->nb; i++) {
        qi_stamp **pp = &t->b[i];
        while (*pp) {
            qi_stamp *r = *pp;
            if (expired(ud, r->at)) {
                *pp = r->next;
                free(r);
                t->count--;
            } else {
                pp = &r->next;
            }
        }
    }
}

/* Add delta to a time that means "never" at 0, without wrapping. */
static uint64_t shifted(uint64_t t, int64_t delta)
{
    if (!t)
        return 0;
    if (delta < 0)
        return t > (uint64_t)-delta ? t + (uint64_t)delta : 1;
    return t + (uint64_t)delta;
}

void qi_stamps_shift(qi_stamps *t, int64_t delta)
{
    for (size_t i = 0; i < t->nb; i++)
        for (qi_stamp *r = t->b[i]; r; r = r->next)
            r->at = shifted(r->at, delta);
}

uint64_t qi_time_shifted(uint64_t t, int64_t delta)
{
    return shifted(t, delta);
}

void qi_stamps_free(qi_stamps *t)
{
    for (size_t i = 0; i < t->nb; i++)
        for (qi_stamp *r = t->b[i], *nx; r; r = nx) {
            nx = r->next;
            free(r);
        }
    free(t->b);
    memset(t, 0, sizeof *t);
}
