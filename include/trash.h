/* trash.h: Plex's "empty trash", made safe (trash.c; DESIGN.md "Plex, empty trash").
 *
 * Plex's own "empty trash automatically after every scan" deletes the metadata of every item
 * whose files are missing, so a scan during a mount outage wipes a library. Here a section's
 * trash is emptied only after a round that delivered to it and whose events include a delete,
 * rename or upgrade, and only when all of these hold right before the call: every location of the
 * section maps back to a host path under a directory guarded by an anchor (ANCHOR_FILES); every
 * such anchor is present and its mount answers; Plex no longer reports the section refreshing
 * (polled every 5 s, at most 10 minutes); no other folder of that section is syncing; the trash
 * was not emptied in the last 5 minutes (rounds in between share one call). A refusal or a
 * failure is logged with its reason and not retried. */
#ifndef PSS_TRASH_H
#define PSS_TRASH_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "config.h"
#include "fscheck.h"
#include "http_client.h"
#include "libraries.h"
#include "sync.h"
#include "targets.h"

/* Whether every location of lib maps back to a host path guarded by an anchor: the inverse of
 * t's path replacements gives the arr path, LOCAL_PATH_REPLACEMENTS (else PATH_REPLACEMENTS) the
 * host path. why says which anchors guard it, or which location is unguarded and what to set. */
bool trash_guarded(const config_t *c, const cfg_target *t, const media_library *lib, char *why, size_t n);

typedef struct trash trash_t;

/* What the trash needs of its owner, lent for as long as it runs. */
typedef struct trash_env {
    const config_t *cfg;
    httpc_t *httpc;
    fscheck_t *fs;
    targets *targets;
    const sync_env *sync;
} trash_env;

trash_t *trash_new(uv_loop_t *loop, const trash_env *env);
/* A round delivered to library_id of target and its events were `kinds` (QKIND_*): empty that
 * section's trash when the target asks for it and every guard holds. */
void trash_after_round(trash_t *tr, const char *target, const char *library_id, unsigned kinds);
/* The targets' library lists changed (the first read at the start, a new list, a reload): say,
 * per section of a Plex target that asks for it, whether its trash may ever be emptied (logged
 * once per verdict). */
void trash_lists_changed(trash_t *tr);
/* Stop and free: what is in flight is cancelled, the timers close on the loop's next turns
 * (closed(ud) is called at once: nothing of tr is used afterwards). */
void trash_stop(trash_t *tr, void (*closed)(void *ud), void *ud);
/* How many calls were made, and how many were refused by a guard (for /metrics). */
void trash_counts(const trash_t *tr, uint64_t *emptied, uint64_t *refused);

#endif
