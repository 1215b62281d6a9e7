/* queue_deliveries.h: internal to the queue, not for its callers (they use queue.h): the rules
 * over one entry's deliveries (queue_deliveries.c), which queue.c applies when events arrive,
 * rounds end, targets are re-mapped and parked ones are released. Pure: no queue, no clock;
 * each function works on the entry it is given. The public parts of the file
 * (delivery_state_name, q_entry_count_deliveries) are declared in queue.h. */
#ifndef PSS_QUEUE_DELIVERIES_H
#define PSS_QUEUE_DELIVERIES_H

#include <stdbool.h>
#include <stddef.h>

#include "queue.h"

/* Interned strings (target names, library ids): one copy of each, owned by the table and freed
 * by deliv_strings_free; deliveries point into it. */
typedef struct deliv_strings {
    char **v;
    size_t n;
} deliv_strings;

/* s (NULL = "") as the table's own copy, stable until deliv_strings_free. */
const char *deliv_intern(deliv_strings *t, const char *s);
void deliv_strings_free(deliv_strings *t);

/* Frees e's deliveries and their errors (not their interned strings); e has none after. */
void deliv_free(q_entry *e);
/* The index of the delivery to (target, library), or -1. */
int deliv_find(const q_entry *e, const char *target, const char *library);
/* Whether any delivery of e is in state s. */
bool deliv_any(const q_entry *e, delivery_state s);
/* Something to send at the next attempt (a pending or retrying delivery). */
bool deliv_runnable(const q_entry *e);
/* A new event: done deliveries are pending again and the rclone step runs again. */
void deliv_renew(q_entry *e);
/* e's deliveries become nw (n of them, at most QUEUE_MAX_DELIVERIES), keeping what e knew of
 * each (see queue_deliveries.c); with keep_old the ones nw lacks stay too. New strings are
 * interned in t. Returns whether anything changed. */
bool deliv_update(deliv_strings *t, q_entry *e, const q_delivery *nw, size_t n, bool keep_old);
/* The first parked delivery's error (or a default text); "parked" when none is parked. The
 * string belongs to e or is static. */
const char *deliv_parked_reason(const q_entry *e);
/* Parked deliveries (to target, or to any target when NULL) become pending, their errors
 * freed. Returns whether any did. */
bool deliv_unpark(q_entry *e, const char *target);

#endif
