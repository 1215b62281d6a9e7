/* actions.h: what a person asks of the queue from the page or the API (actions.c): retry a
 * parked entry, retry every parked one, cancel an entry, scan one now. Each is logged at INFO
 * naming the entry and who asked (`who`: "admin from 10.0.0.5", as the caller says it). */
#ifndef PSS_ACTIONS_H
#define PSS_ACTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "app.h"

/* Retry parked entry id now: a target that refused its token is probed first (its parked
 * deliveries resume when it accepts); anything else parked runs again now. 0, -ENOENT (no such
 * entry) or -EINVAL (not parked). */
int actions_retry(app_t *a, int64_t id, const char *who);
/* The same for every parked entry; returns how many there were. */
size_t actions_retry_parked(app_t *a, const char *who);
/* Remove entry id from the queue (durably, with the next commit); its round's history row is
 * written as `cancelled`. 0, -ENOENT, or -EBUSY (checking or syncing right now) with *why. */
int actions_cancel(app_t *a, int64_t id, const char *who, const char **why);
/* Make entry id due now (skipping WEBHOOK_DELAY, SYNC_COOLDOWN, a backoff; MINIMUM_AGE and the
 * anchors still apply): 0 with *due, or -ENOENT, or -EBUSY / -EPERM / -ENODATA (checking or
 * syncing, parked, unresolved) with *why. */
int actions_run_now(app_t *a, int64_t id, const char *who, uint64_t *due, const char **why);

#endif
