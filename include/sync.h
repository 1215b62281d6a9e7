/* sync.h: one attempt of one queue entry (sync.c): minimum age, anchors, the rclone step
 * (forget + refresh, once per round), anchors again, then every delivery of the round not yet
 * done, to every target at once; the round's history row; the outcome told to the queue.
 *
 * A job works with what its owner lends it (sync_env) and reports through the hooks given when
 * it starts: what it learned of rclone, and its end. What it learns of a target goes to the
 * targets module (targets_seen), which owns that state. It never writes its owner's state. */
#ifndef PSS_SYNC_H
#define PSS_SYNC_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "fscheck.h"
#include "http_client.h"
#include "list.h"
#include "metrics.h"
#include "queue.h"
#include "store.h"
#include "targets.h"

/* What the rclone step learned of rclone. */
typedef enum {
    SYNC_NEWS_RCLONE_OK,      /* rclone answered and did the call */
    SYNC_NEWS_RCLONE_REFUSED, /* rclone answered, refusing the call as configured */
    SYNC_NEWS_RCLONE_FAILED,  /* no usable answer from rclone */
} sync_news_kind;

/* How an attempt ended, for the owner (notifications, trash). */
typedef struct sync_report {
    const q_entry *entry;     /* valid during the call only; NULL when the queue removed it */
    const char *path;         /* the folder's arr path */
    bool round_over;          /* its round ended (ok, parked, or a dirty re-run starts) */
    bool parked;              /* the round ended with something parked */
    bool failed;              /* the attempt failed and is retried (a transient failure) */
    bool held;                /* a mount's anchor holds the folder (`hold_reason` says why) */
    const char *hold_reason;  /* valid during the call */
    unsigned kinds;           /* QKIND_* of the round's events */
    const q_delivery *done;   /* the round's deliveries done so far (target and library interned;
                                 valid during the call) */
    size_t n_done;
} sync_report;

typedef struct sync_hooks {
    /* rclone's health as the step saw it; `error` (may be NULL) says what went wrong. */
    void (*news)(void *ud, sync_news_kind kind, const char *error);
    /* The job ended (the queue already knows how); the owner re-arms its timer. */
    void (*ended)(void *ud, const sync_report *r);
    /* The folder is past its rclone step and gave its sync slot back (queue_release_slot):
     * another folder may start. */
    void (*slot_freed)(void *ud);
} sync_hooks;

/* What jobs work with, lent by the owner for as long as any job runs. The pointers stay valid
 * across reloads (the owner reloads into the same objects). */
typedef struct sync_env {
    const config_t *cfg;
    queue_t *q;
    store_t *store;
    httpc_t *httpc;
    fscheck_t *fs;
    targets *targets;
    metrics *m;
    list_node jobs; /* the jobs running; list_init it before the first sync_start */
} sync_env;

/* Start the work of entry e, which the queue gave out (queue_take_ready: CHECKING). From here the
 * job reports on e to the queue; the owner must not. `needs_age`: check MINIMUM_AGE first. */
void sync_start(sync_env *env, q_entry *e, bool needs_age, const sync_hooks *hooks, void *ud);
/* Stop every job at once (shutdown): their requests are cancelled, nothing is reported, their
 * entries stay as they are in the queue (the store keeps them for the next start). */
void sync_cancel_all(sync_env *env);
size_t sync_count(const sync_env *env);
/* What each target would have been sent for a skipped folder (a history row's deliveries JSON,
 * each with result "skipped"; new string). */
char *sync_skipped_deliveries(const targets *ts, const char *arr_path);
/* An entry's deliveries as its round's history row keeps them, each with its state as result
 * (done is "ok"; new string): for a round closed without an attempt (a cancel). */
char *sync_entry_deliveries(const targets *ts, const q_entry *e);
/* Whether a job is delivering to library `library_id` of `target` now (empty trash waits). */
bool sync_busy_library(const sync_env *env, const char *target, const char *library_id);

#endif
