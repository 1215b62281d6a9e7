/* probes.h: are the media servers and rclone answering right now (probes.c)? What is older than
 * PROBES_FRESH_MS is asked again when /health or /api/stats are asked; /health waits for the
 * answers, at most PROBES_WAIT_MS, so a monitor's first ask after an outage (or a recovery) hears
 * of it. Asks at the same time share the calls and the wait. */
#ifndef PSS_PROBES_H
#define PSS_PROBES_H

#include <stdbool.h>
#include <stdint.h>

#include "app.h"

#define PROBES_FRESH_MS 5000u /* a fact older than this is asked again before /health answers */
#define PROBES_WAIT_MS 2000u  /* ...but /health waits at most this long after the round began */

typedef void (*probes_done_fn)(void *ud);

/* What the last batch of rc/noop calls that answered heard of rclone (all zero before one). */
typedef struct probes_rclone {
    bool done;        /* a batch has answered */
    unsigned mounts;  /* mounts probed in that batch */
    unsigned up;      /* of them, how many answered */
    uint64_t checked; /* wall ms */
} probes_rclone;
probes_rclone probes_rclone_of(const app_t *a);

/* Ask again what is older than PROBES_FRESH_MS and not being asked already: each rclone mount's
 * rc/noop, and the library list of each server nothing was heard of (or asked) lately. */
void probes_renew(app_t *a);
/* probes_renew, then done(ud) once nothing this ask waits for is out any more (what was asked
 * at most PROBES_WAIT_MS before it) or PROBES_WAIT_MS later, whichever comes first; at once (from
 * this call) when nothing is out or the daemon stops. Called exactly once. */
void probes_wait(app_t *a, probes_done_fn done, void *ud);

#endif
