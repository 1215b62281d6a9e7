/* queue_index.h: the queue's index structures, with no scheduling policy in them: entries by
 * folder and by id, the folder tree that finds an entry's ancestors and
 * descendants, the heap of entries by due time, and time stamps by key. queue.c decides what
 * goes where and when; this module only keeps it findable.
 *
 * Everything is intrusive: the index allocates only its tables and folder nodes, never an
 * entry, and frees no entry. Nothing here is bounded by itself; the queue bounds the number of
 * entries (MAX_PENDING) and so every table. */
#ifndef PSS_QUEUE_INDEX_H
#define PSS_QUEUE_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "list.h"
#include "queue.h"

/* What the index keeps of an entry. The queue's own entry struct starts with one, and a
 * qi_node * found here goes back to it with container_of. */
typedef struct qi_node {
    q_entry e;              /* first member: e.hnext chains the key table, e.heap_idx is a heap slot */
    struct qi_node *idnext; /* id table chain */
    list_node sib;          /* entries whose parent folder is the same folder node */
    uint32_t khash;         /* qi_key_hash of the path while keyed */
} qi_node;

/* The hash of a key: the path's bytes (util.h's hash_bytes). */
uint32_t qi_key_hash(const char *p, size_t len);

/* ---- keys: entries by path, and the folder tree over them ---- */

typedef struct qi_dir qi_dir;

/* A folder node exists for every folder with at least one keyed entry strictly beneath it and
 * counts them; an entry hangs off the node of its parent folder. So a path without a node has
 * no descendants, and a node's subtree lists exactly the descendants. Zero-initialize. */
typedef struct qi_keys {
    q_entry **kb;           /* key table, chained through q_entry.hnext */
    size_t nkb, count;
    qi_dir **db;            /* folder nodes by folder */
    size_t ndb, ndn;
} qi_keys;

/* Adds x under (x->e.path), which must not be keyed yet. */
void qi_keys_insert(qi_keys *k, qi_node *x);
/* Takes x out of the key table and the folder tree; nothing when x is not keyed. */
void qi_keys_remove(qi_keys *k, qi_node *x);
qi_node *qi_keys_find(const qi_keys *k, const char *p, size_t len);
size_t qi_keys_count(const qi_keys *k);
/* Every keyed entry, in table order. fn must not change the index. */
void qi_keys_foreach(const qi_keys *k, void (*fn)(void *ud, qi_node *x), void *ud);
/* Every keyed entry strictly beneath p: depth first, each folder's entries newest
 * first, then its subfolders newest first. fn must not change the index. */
void qi_keys_below(const qi_keys *k, const char *p, size_t len,
                   void (*fn)(void *ud, qi_node *x), void *ud);
/* Frees the tables and folder nodes (never an entry) and leaves k empty. */
void qi_keys_free(qi_keys *k);

/* Walks the entries at the prefixes of p, top down: each proper ancestor folder
 * ("/" first for an absolute path), then p itself when `self`. Component-wise: "/tv/Show" is
 * above "/tv/Show/S1", never above "/tv/Show 2". The path must outlive the walk. */
typedef struct qi_up {
    const qi_keys *k;
    const char *p;
    size_t len, at;
    uint64_t st;
    bool done, self;
} qi_up;
void qi_up_init(qi_up *w, const qi_keys *k, const char *p, size_t len, bool self);
/* The next entry found on the way; NULL at the end. */
qi_node *qi_up_next(qi_up *w);

/* ---- ids ---- */

typedef struct qi_ids {     /* zero-initialize */
    qi_node **b;
    size_t nb, count;
} qi_ids;

void qi_ids_insert(qi_ids *t, qi_node *x); /* x->e.id must not be in t */
void qi_ids_remove(qi_ids *t, qi_node *x); /* x must be in t */
qi_node *qi_ids_find(const qi_ids *t, int64_t id);
/* Takes every entry out, calling fn (which may free it) for each, and frees the table. */
void qi_ids_drain(qi_ids *t, void (*fn)(qi_node *x));

/* ---- the due-time heap: earliest (due, id) on top; x->e.heap_idx is x's slot ---- */

typedef struct qi_heap {    /* zero-initialize */
    qi_node **v;
    size_t n, cap;
} qi_heap;

/* The heap's order: earlier due first, then the lower id. */
bool qi_before(const qi_node *a, const qi_node *b);
void qi_heap_push(qi_heap *h, qi_node *x);
void qi_heap_del(qi_heap *h, qi_node *x); /* x must be in h */
void qi_heap_fix(qi_heap *h, qi_node *x); /* x's due changed */
qi_node *qi_heap_top(const qi_heap *h);   /* NULL when empty */
void qi_heap_free(qi_heap *h);

/* ---- stamps: one time per path, kept by copy of the key ---- */

typedef struct qi_stamp qi_stamp;
typedef struct qi_stamps {  /* zero-initialize */
    qi_stamp **b;
    size_t nb, count;
} qi_stamps;

/* The time kept for the key, which the caller may change in place; NULL when none. */
uint64_t *qi_stamps_find(const qi_stamps *t, const char *p, size_t len);
void qi_stamps_add(qi_stamps *t, const char *p, size_t len, uint64_t at); /* key not in t */
/* Drops every stamp whose time `expired` says is over. */
void qi_stamps_sweep(qi_stamps *t, bool (*expired)(void *ud, uint64_t at), void *ud);
void qi_stamps_free(qi_stamps *t);
/* Every stamp moved by delta ms (the wall clock stepped). */
void qi_stamps_shift(qi_stamps *t, int64_t delta);
/* t moved by delta, 0 ("never") kept, never wrapping below 1. */
uint64_t qi_time_shifted(uint64_t t, int64_t delta);

#endif
