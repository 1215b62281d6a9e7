/* sync.h: one queue entry's work (sync.c): minimum age, anchors, rclone (forget + refresh),
 * anchors again, the Plex partial scan; one history row; the outcome told to the queue.
 *
 * A job works with what its owner lends it (sync_env) and reports through the hooks given when
 * it starts: what it learned of Plex and rclone, a library list that may be stale, and its end.
 * It never writes its owner's state. */
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
#include "sections.h"
#include "store.h"

/* What a step learned of an upstream. */
typedef enum {
    SYNC_NEWS_PLEX_OK,        /* Plex answered (any HTTP status but a refused token) */
    SYNC_NEWS_PLEX_REFUSED,   /* Plex refused PLEX_TOKEN: no Plex call until a reload */
    SYNC_NEWS_PLEX_DOWN,      /* no answer from Plex */
    SYNC_NEWS_RCLONE_OK,      /* rclone answered and did the call */
    SYNC_NEWS_RCLONE_REFUSED, /* rclone answered, refusing the call as configured */
    SYNC_NEWS_RCLONE_FAILED,  /* no usable answer from rclone */
} sync_news_kind;

typedef struct sync_hooks {
    /* An upstream's health as a step saw it; `error` (may be NULL) says what went wrong. */
    void (*news)(void *ud, sync_news_kind kind, const char *error);
    /* Plex answered 404 for a section: the library list may be stale. */
    void (*sections_stale)(void *ud);
    /* Whether Plex refused the token (no scan is sent then). */
    bool (*plex_refused)(void *ud);
    /* The job ended (the queue already knows how); the owner re-arms its timer. */
    void (*ended)(void *ud);
} sync_hooks;

/* What jobs work with, lent by the owner for as long as any job runs. The pointers stay valid
 * across reloads (the owner reloads into the same objects). */
typedef struct sync_env {
    const config_t *cfg;
    queue_t *q;
    store_t *store;
    httpc_t *httpc;
    fscheck_t *fs;
    const plex_libraries *libs;
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

#endif
