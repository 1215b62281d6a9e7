/* list.h: the one intrusive list every module uses (as libuv's queue.h): a circular doubly
 * linked list whose head is a node of its own. A node on no list points at itself, so removing
 * a node never needs to know which list holds it, and removing it twice is harmless. Recover the
 * owner of a node with container_of (util.h). Header only: every function is a few pointer
 * moves. */
#ifndef PSS_LIST_H
#define PSS_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct list_node {
    struct list_node *prev, *next;
} list_node;

/* An empty list, or a node on no list. */
static inline void list_init(list_node *h) { h->prev = h->next = h; }

static inline bool list_empty(const list_node *h) { return h->next == h; }

/* Append n (on no list) at the tail of h. */
static inline void list_push(list_node *h, list_node *n)
{
    n->prev = h->prev;
    n->next = h;
    h->prev->next = n;
    h->prev = n;
}

/* Take n off whatever list holds it (nothing if none). */
static inline void list_del(list_node *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

/* The head node of h, taken off; NULL when h is empty. */
static inline list_node *list_pop(list_node *h)
{
    if (list_empty(h))
        return NULL;
    list_node *n = h->next;
    list_del(n);
    return n;
}

/* Move every node of `from` to the empty list `to`, in order; `from` is left empty. */
static inline void list_take(list_node *to, list_node *from)
{
    if (list_empty(from))
        return;
    to->next = from->next;
    to->prev = from->prev;
    to->next->prev = to;
    to->prev->next = to;
    list_init(from);
}

/* for (list_node *n = ...) over h, from head to tail; n must not be removed in the body (copy
 * n->next first for that: see list_for_each_safe). */
#define list_for_each(n, h) for (list_node *n = (h)->next; n != (h); n = n->next)
#define list_for_each_safe(n, tmp, h)                                                              \
    for (list_node *n = (h)->next, *tmp = n->next; n != (h); n = tmp, tmp = n->next)

#endif
