/* queue_about.h: internal to the queue, not for its callers (they use queue.h): what an entry is
 * about (queue_about.c): its title, "Show S02E05 · Episode", kept as one shared copy per distinct
 * title with a count of the entries holding it (a thousand folders of one event, or a title seen
 * again, cost one string), and which of two entries' latest event wins when one takes the other
 * in. The public part (q_event_kind's names) is declared in queue.h. */
#ifndef PSS_QUEUE_ABOUT_H
#define PSS_QUEUE_ABOUT_H

#include <stddef.h>

#include "queue.h"

typedef struct qt_node qt_node;

/* The shared copies, by hash (chained, load factor <= 1). A lookup compares at most a few
 * copies of a chain: past them a title gets a copy of its own, so a flood of colliding titles
 * costs memory, never time. */
typedef struct qtitles {
    qt_node **b;
    size_t nb, n;
} qtitles;

/* A reference to the table's copy of s, made when new; NULL for NULL or "". */
const char *qtitles_get(qtitles *t, const char *s);
/* Drops one reference to a title qtitles_get gave (NULL: nothing); the copy goes with its last. */
void qtitles_put(const char *title);
/* Frees the table; every title must have been put back (the entries are freed first). */
void qtitles_free(qtitles *t);

/* e's latest event: its kind, its sender (arr_app + 1, from source_bit) and its title (a
 * reference is taken). A NULL title keeps the one e has: a manual scan names nothing, and the
 * folder is still what the *arr app said it was. */
void about_take(qtitles *t, q_entry *e, const char *title, q_event_kind event, unsigned source_bit);
/* d takes s in (an absorb, a merge, a take-over); call it before d's times change. The newer
 * one's event and sender win, and its title when it has one (else the other's): references move
 * between the two, and s is freed right after. */
void about_fold(q_entry *d, q_entry *s);

#endif
