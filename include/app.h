/* app.h: the daemon as one object. app.c owns the loop's handles, the configuration, the queue,
 * the store, the HTTP server and clients, the targets; it runs the group commit, drives the
 * queue's timer and applies reloads. router.c, api.c and static.c answer HTTP
 * requests against it; sync.c runs one entry's rclone and Plex steps.
 *
 * app_t is opaque here: its definition (src/app_internal.h) is the owner's. The request handlers
 * reach what they need through the functions below, read-only wherever they only read. */
#ifndef PSS_APP_H
#define PSS_APP_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "dotenv.h"
#include "folders.h"
#include "fscheck.h"
#include "http_client.h"
#include "http_server.h"
#include "metrics.h"
#include "notify_out.h"
#include "queue.h"
#include "sources.h"
#include "store.h"
#include "sync.h"
#include "targets.h"
#include "webhook.h"

typedef struct app app_t;

/* One folder a request asks for, after mapping: what gets staged. */
typedef struct app_folder {
    /* once applied to the queue, what carries it: */
    bool applied;
    int64_t entry_id;
    entry_state state;
    q_add_kind kind;
    char *carrier_path; /* the carrying entry's path (an ancestor after a merge) */
    char *arr_path;
    q_delivery *deliv;  /* its deliveries (target and library interned by the queue) */
    char *plex_path;    /* the first Plex delivery's path, else the PATH_REPLACEMENTS form (for
                           the answer's `plex_path`, as the Python script answered) */
    const char *plex_section; /* that delivery's library id (interned), NULL when none */
    size_t n_deliv;
    unsigned kinds;     /* QKIND_* of the request's event */
    char **files;
    size_t n_files;
} app_folder;

/* A folder of a request that no library holds (an arr path and why). */
typedef struct skipped_folder {
    char *arr_path;
    char *reason;
} skipped_folder;

typedef struct staged_req staged_req;
/* The group commit for s ended: committed (its folders applied to the queue, their entries filled
 * in) or not (err says why). The callee answers the request and frees s. */
typedef void (*staged_done_fn)(void *ud, staged_req *s, bool committed, const char *err);

/* A request waiting for the group commit; whoever stages it says, in `done`, what happens when
 * the commit ends (the owner knows nothing of the request behind it). */
struct staged_req {
    staged_done_fn done;
    void *done_ud;
    http_request *req;
    arr_app app;
    bool manual;
    bool html;          /* answer with the manual page instead of JSON */
    bool queue_full;    /* a folder found the queue full when applied (answered 503) */
    app_folder *folders;
    size_t n_folders;
    skipped_folder *skipped; /* folders no library holds: answered and recorded, not queued */
    size_t n_skipped;
    uint64_t at;        /* wall ms when the request arrived */
    char *title;        /* what the event is about (wh_event.label), NULL for a person's or a
                           trigger's; owned by whoever frees the request */
    unsigned kinds;     /* the event's QKIND_* (for its skipped folders' history rows) */
    struct staged_req *next;
};

/* Who answers the HTTP requests (the router, above the owner): both get the app as their ud. */
typedef struct app_http {
    http_handler_fn handler;
    http_body_limit_fn body_limit;
    http_head_check_fn head_check;
} app_http;

/* A zeroed app for app_start, and its release after app_free. */
app_t *app_new(void);
void app_delete(app_t *a);
/* What the process exits with once the loop has returned. */
int app_exit_code(const app_t *a);

/* Start everything on loop, requests going to http. Returns 0, or non-zero after logging why (the
 * caller exits 1). */
int app_start(app_t *a, uv_loop_t *loop, const env_map *env, const char *env_file, config_t *cfg,
              const app_http *http);
/* After a failed app_start: close the handles it opened (then run the loop to let them close). */
void app_abort(app_t *a);
/* Release everything after uv_run returned. */
void app_free(app_t *a);

/* ---- what the request handlers read ---- */

/* The configuration in force (replaced by a reload between two requests, never during one). */
const config_t *app_config(const app_t *a);
/* The environment at start (a reload re-reads the file over it) and the --env-file given, or
 * NULL for ./.env: the page's setup hints. */
const env_map *app_env(const app_t *a, const char **env_file);
/* The effective MANUAL_PASS (configured or generated). */
const char *app_manual_pass(const app_t *a);
const queue_t *app_queue(const app_t *a);
const targets *app_targets(const app_t *a);

/* The owner's own state, as /health and /api/stats report it. */
typedef struct app_status {
    uint64_t started_at;          /* wall ms */
    uint64_t commit_fail_streak;  /* consecutive failed commits */
    uint64_t sync_fail_streak;    /* consecutive failed fdatasyncs of the WAL */
    bool stopping;                /* SIGTERM/SIGINT: no new syncs */
    bool stop_done;               /* the grace time is over: the state is being closed */
    bool rclone_reachable;        /* rclone answered at the start (or the last reload) */
    const char *rclone_error;     /* why not, or NULL; valid until the next reload */
    size_t staged_events;         /* requests waiting for the next group commit */
    size_t syncing;               /* sync jobs in flight */
} app_status;
app_status app_status_of(const app_t *a);
/* The one status fact a deferred callback checks before going on. */
bool app_stopping(const app_t *a);

/* ---- what the request handlers write, or work with ---- */

/* The counters: handlers count the requests they answer (metrics.h). */
metrics *app_metrics(app_t *a);
/* What each sender last sent: the router notes each request (staged before each commit). */
sources *app_sources(app_t *a);
/* The store: history reads, and the history rows of a request's skipped folders, staged for the
 * next group commit. */
store_t *app_store(app_t *a);

/* What a handler's own asynchronous work runs on: services the app holds, not its state, so a
 * reader of the app may use them too. */
typedef struct app_io {
    uv_loop_t *loop;
    httpc_t *httpc;      /* NULL when the start failed before making it */
    fscheck_t *fs;       /* the checks of host paths (never blocks the loop) */
} app_io;
app_io app_io_of(const app_t *a);
/* The media servers, to be probed (probes.c asks for their lists; the rest only reads them). */
targets *app_targets_probed(app_t *a);
/* The notification destinations (NOTIFY): what /api/notify and /metrics show of them. */
const notify_out *app_notify_out(const app_t *a);

/* The probe rounds' state belongs to probes.c; the owner only holds it (the handlers reach
 * everything through the app) and frees it with free_fn in app_free. NULL until attached. */
struct probes;
struct probes *app_probes(const app_t *a);
void app_probes_attach(app_t *a, struct probes *p, void (*free_fn)(struct probes *p));

/* ---- what the request handlers ask of the owner ---- */

/* Map one arr folder (validated, normalized) to a staged folder with its deliveries. Returns the
 * count added to *out (1, or 0 = skipped: *skip_reason says why), or -1 with *err (400) when the
 * folder may not be scanned from a webhook. */
int app_map_folder(app_t *a, const char *arr_path, const char *const *files, size_t n_files, unsigned kinds,
                   bool allow_library_root, app_folder **out, size_t *n_out, const char **err,
                   char **skip_reason);
void app_folder_free(app_folder *f);
/* What the owner knows of the libraries now, for folders_plan (the preview uses it as the
 * webhooks do). Valid until the next reload or library list. */
void app_folder_libs(app_t *a, folder_libs *out);

/* Hand a request's folders to the next group commit: applied to the queue at the end of the
 * loop turn, then committed; the response is written after the commit. */
void app_stage(app_t *a, staged_req *s);
/* Ask for the library lists again because a folder matched nothing (at most once a minute). */
void app_sections_miss(app_t *a);
/* Re-arm the queue timer after a change. */
void app_schedule(app_t *a);
/* A `test` notification: an *arr Test event (`source` names the app; destinations that filter
 * `test` out hear nothing) or the page's button (source NULL: every destination). Returns how
 * many destinations are configured. */
size_t app_notify_test(app_t *a, const char *source);

#endif
