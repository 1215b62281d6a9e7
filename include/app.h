/* app.h: the daemon as one object. app.c owns the loop's handles, the configuration, the queue,
 * the store, the HTTP server and clients, the targets; it runs the group commit, drives the
 * queue's timer and applies reloads. router.c, api.c and static.c answer HTTP
 * requests against it; sync.c runs one entry's rclone and Plex steps. */
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

/* Reachability probes (api.c): each rclone mount's rc/noop, started when /api/stats or /health
 * is asked and the last round is older than a few seconds (targets are probed by their lists). */
typedef struct app_probes {
    uint64_t started;          /* mono ms of the last round started, 0 = never */
    bool in_flight;            /* a round is out */
    bool rclone_done;          /* a round has answered for rclone */
    unsigned rclone_mounts;    /* mounts probed in that round */
    unsigned rclone_up;        /* of them, how many answered */
    uint64_t rclone_checked;   /* wall ms */
} app_probes;

struct app {
    uv_loop_t *loop;
    env_map env;            /* the environment at start (reload re-reads the file over it) */
    char *env_file;         /* --env-file, or NULL for ./.env */
    config_t cfg;
    char *manual_pass;      /* effective MANUAL_PASS (configured or generated) */

    queue_t *q;
    store_t *store;
    httpc_t *httpc;
    fscheck_t *fs;
    http_server *srv;

    /* the media servers */
    targets targets;
    folder_target *ftargets;     /* the targets as folders_plan sees them (app_folder_libs) */
    struct trash *trash;         /* Plex's empty trash, when a target asks for it */
    bool rclone_reachable;
    char *rclone_error;

    /* group commit */
    uv_check_t commit_check;
    uv_idle_t flush_idle;        /* keeps the loop turning while entry snapshots wait to be written */
    uv_prepare_t log_prepare;    /* writes a turn's log lines in one go before the loop waits */
    staged_req *staged_head, *staged_tail;
    size_t staged_events;
    uint64_t commit_fail_streak; /* consecutive failed commits: logged at the first and at recovery */
    uint64_t sync_fail_streak;   /* the same for the WAL's fdatasync (DURABILITY=full) */
    /* DURABILITY=full: committed requests are answered once an fdatasync of the WAL, run on
     * libuv's thread pool while the loop goes on, has covered their commit. */
    uv_fs_t wal_sync;
    bool wal_syncing;
    staged_req *sync_wait_head, *sync_wait_tail; /* committed, waiting for the next sync */
    staged_req *syncing;                         /* covered by the sync in flight */

    uv_timer_t queue_timer;
    uv_timer_t prune_timer;
    uv_timer_t watchdog_timer;
    uv_signal_t sig_hup, sig_term, sig_int;
    uv_timer_t hup_timer;        /* the reload of a burst of SIGHUPs, on the next turn */
    unsigned hup_pending;        /* SIGHUPs since the reload was scheduled */
    uv_signal_t sig_chld;        /* only as PID 1 (a container's init): reaps orphans */
    bool reaping;                /* sig_chld is started */

    /* notifications (NOTIFY): the destinations, and what the events need remembered */
    notify_out *nout;
    struct tell *tell;           /* which events become notifications, and when */

    sync_env sync;               /* what sync jobs work with, and the jobs in flight */
    metrics counters;
    sources sources;             /* what each sender last sent (staged before each commit) */
    app_probes probes;           /* api.c */
    uint64_t started_at;         /* wall ms */
    uint64_t clock_wall, clock_mono; /* both clocks at the last look (follow_wall_clock) */
    bool stopping;               /* SIGTERM/SIGINT: no new syncs; in-flight ones get a grace time */
    bool stop_done;              /* the grace time is over: final commit made, handles closing */
    bool reload_refused;         /* the last SIGHUP's file did not validate (shown in STATUS=) */
    uv_timer_t stop_timer;       /* the grace time (and the turn after the last sync ended) */
    int exit_code;
};

/* Who answers the HTTP requests (the router, above the owner): both get the app as their ud. */
typedef struct app_http {
    http_handler_fn handler;
    http_body_limit_fn body_limit;
    http_head_check_fn head_check;
} app_http;

/* Start everything on loop, requests going to http. Returns 0, or non-zero after logging why (the
 * caller exits 1). */
int app_start(app_t *a, uv_loop_t *loop, const env_map *env, const char *env_file, config_t *cfg,
              const app_http *http);
/* After a failed app_start: close the handles it opened (then run the loop to let them close). */
void app_abort(app_t *a);
/* Release everything after uv_run returned. */
void app_free(app_t *a);

/* ---- used by the request handlers ---- */

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
