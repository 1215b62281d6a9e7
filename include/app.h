/* app.h: the daemon as one object. app.c owns the loop's handles, the configuration, the queue,
 * the store, the HTTP server and clients; it runs the group commit, drives the queue's timer,
 * keeps Plex's library list fresh and applies reloads. router.c, api.c and static.c answer HTTP
 * requests against it; sync.c runs one entry's rclone and Plex steps. */
#ifndef PSS_APP_H
#define PSS_APP_H

#include <stdbool.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include <uv.h>

#include "config.h"
#include "dotenv.h"
#include "fscheck.h"
#include "http_client.h"
#include "http_server.h"
#include "queue.h"
#include "sections.h"
#include "store.h"
#include "webhook.h"

typedef struct app app_t;
typedef struct sync_job sync_job;

/* One folder a request asks for, after mapping: what gets staged. */
typedef struct app_folder {
    /* once applied to the queue, what carries it: */
    bool applied;
    int64_t entry_id;
    entry_state state;
    q_add_kind kind;
    char *carrier_path; /* the carrying entry's Plex path (an ancestor after a merge) */
    char *arr_path;
    char *plex_path;
    long section;      /* QUEUE_SECTION_UNRESOLVED when unknown */
    char **files;
    size_t n_files;
} app_folder;

/* A request waiting for the group commit. */
typedef struct staged_req {
    http_request *req;
    arr_app app;
    bool manual;
    bool html;          /* answer with the manual page instead of JSON */
    bool queue_full;    /* a folder found the queue full when applied (answered 503) */
    app_folder *folders;
    size_t n_folders;
    char *skipped_json; /* JSON array text of skipped folders, or NULL */
    uint64_t at;        /* wall ms when the request arrived */
    struct staged_req *next;
} staged_req;

/* Webhook event types counted in /metrics: a fixed list (api.c maps eventType onto it; anything
 * else is "other"), so no label value ever comes from client input. */
#define APP_EVENT_KINDS 25
/* Index into app_counters.webhook_events for an eventType (case-insensitive); "other" for
 * unknown or NULL. */
int api_event_kind(const char *event_type);
const char *api_event_kind_name(int kind);

typedef struct app_counters {
    uint64_t webhooks[APP_COUNT];     /* requests accepted per app */
    uint64_t webhook_events[APP_COUNT][APP_EVENT_KINDS]; /* accepted, by app and event type */
    uint64_t manual_requests;         /* manual triggers queued (form and API) */
    uint64_t webhook_errors;          /* 4xx answers to webhooks */
    uint64_t scans_ok, scans_failed, scans_parked, scans_skipped;
    uint64_t rclone_calls_ok, rclone_calls_failed;
    uint64_t plex_calls_ok, plex_calls_failed;
    uint64_t commits, commit_failures;
    uint64_t sync_ms_buckets[12];     /* histogram of sync durations (see api.c) */
    uint64_t sync_us_sum, sync_count; /* microseconds: a fast scan is not 0 */
} app_counters;

/* Reachability probes (api.c): Plex's /identity and each rclone mount's rc/noop, started when
 * /api/stats or /health is asked and the last round is older than a few seconds. */
typedef struct app_probes {
    uint64_t started;          /* mono ms of the last round started, 0 = never */
    bool in_flight;            /* a round is out */
    bool plex_done;            /* a round has answered for Plex */
    bool plex_up;              /* Plex answered (any HTTP status) */
    uint64_t plex_checked;     /* wall ms */
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
    char *web_dir;          /* where the UI files are */
    char *manual_pass;      /* effective MANUAL_PASS (configured or generated) */

    queue_t *q;
    store_t *store;
    httpc_t *httpc;
    fscheck_t *fs;
    http_server *srv;

    /* Plex library list */
    plex_libraries libs;
    const char **roots;          /* library roots, built when first needed (app_is_library_root) */
    size_t n_roots;
    httpc_req *libs_req;
    uint64_t libs_last_attempt;  /* mono ms */
    bool plex_reachable;         /* last call got an HTTP answer */
    bool plex_auth_failed;       /* 401/403 seen: no Plex calls until a reload */
    char *plex_error;            /* last Plex problem, for /health */
    bool rclone_reachable;
    char *rclone_error;

    /* group commit */
    uv_check_t commit_check;
    uv_idle_t flush_idle;        /* keeps the loop turning while entry snapshots wait to be written */
    uv_prepare_t log_prepare;    /* writes a turn's log lines in one go before the loop waits */
    staged_req *staged_head, *staged_tail;
    size_t staged_events;
    uint64_t commit_fail_streak; /* consecutive failed commits: logged at the first and at recovery */
    /* DURABILITY=full: committed requests are answered once an fdatasync of the WAL, run on
     * libuv's thread pool while the loop goes on, has covered their commit. */
    uv_fs_t wal_sync;
    bool wal_syncing;
    staged_req *sync_wait_head, *sync_wait_tail; /* committed, waiting for the next sync */
    staged_req *syncing;                         /* covered by the sync in flight */

    uv_timer_t queue_timer;
    uv_timer_t section_timer;
    uv_timer_t prune_timer;
    uv_timer_t watchdog_timer;
    uv_signal_t sig_hup, sig_term, sig_int;
    uv_signal_t sig_chld;        /* only as PID 1 (a container's init): reaps orphans */
    bool reaping;                /* sig_chld is started */

    sync_job *jobs;              /* in flight */
    app_counters counters;
    app_probes probes;           /* api.c */
    uint64_t started_at;         /* wall ms */
    bool stopping;               /* SIGTERM/SIGINT: no new syncs; in-flight ones get a grace time */
    bool stop_done;              /* the grace time is over: final commit made, handles closing */
    bool reload_refused;         /* the last SIGHUP's file did not validate (shown in STATUS=) */
    uv_timer_t stop_timer;       /* the grace time (and the turn after the last sync ended) */
    int exit_code;
};

/* Start everything on loop. Returns 0, or non-zero after logging why (the caller exits 1). */
int app_start(app_t *a, uv_loop_t *loop, const env_map *env, const char *env_file, config_t *cfg);
/* After a failed app_start: close the handles it opened (then run the loop to let them close). */
void app_abort(app_t *a);
/* Release everything after uv_run returned. */
void app_free(app_t *a);

/* ---- used by the request handlers ---- */

/* Map one arr folder (validated, normalized) to staged folders: one per section, or one
 * unresolved. Returns the count added to *out (0 = skipped: *skip_reason says why), or -1 with
 * *err (400) when the folder may not be scanned from a webhook. */
int app_map_folder(app_t *a, const char *arr_path, const char *const *files, size_t n_files,
                   bool allow_library_root, app_folder **out, size_t *n_out, const char **err,
                   char **skip_reason);
void app_folder_free(app_folder *f);
/* Whether a Plex path is a library location or above one (scanning it scans a whole library). */
bool app_is_library_root(app_t *a, const char *plex_path);

/* Hand a request's folders to the next group commit: applied to the queue at the end of the
 * loop turn, then committed; the response is written after the commit. */
void app_stage(app_t *a, staged_req *s);
/* Ask for a library list refresh because a folder matched nothing (at most once a minute). */
void app_sections_miss(app_t *a);
/* Re-arm the queue timer after a change. */
void app_schedule(app_t *a);
/* Retry a parked entry now (UI). */
int app_retry_entry(app_t *a, int64_t id);

/* ---- sync.c ---- */
void sync_start(app_t *a, q_entry *e, bool needs_age);
void sync_cancel_all(app_t *a);
size_t sync_count(const app_t *a);

/* ---- router.c ---- */
void router_handle(void *ud, http_request *r);
/* The group commit for s ended: committed (folders applied to the queue, entries filled in
 * by app) or not (err says why): write the response and free s. */
void router_staged_done(app_t *a, staged_req *s, bool committed, const char *err);
size_t router_body_limit(void *ud, const http_request *r);

/* ---- auth.c ---- */
/* Check Basic credentials against user/pass (constant time; the password compared as given in
 * UTF-8 and as its ISO-8859-1 bytes). */
bool auth_basic_ok(const http_request *r, const char *user, const char *pass);
/* Answer 401 with a Basic challenge for realm. A request that carried credentials is a failed
 * login: its answer is delayed per client address (doubling from 0.25 s up to 5 s; X-Forwarded-For
 * believed only from TRUSTED_PROXIES), with a uv timer, so the handler returns at once. */
void auth_reject(app_t *a, http_request *r, const char *realm);

/* ---- api.c ---- */
/* Answer with a JSON document (no-store, nosniff) and delete it. */
void api_respond_json(http_request *r, int status, cJSON *j);
void api_health(app_t *a, http_request *r);
void api_metrics(app_t *a, http_request *r);
void api_stats(app_t *a, http_request *r);
void api_queue(app_t *a, http_request *r);
void api_history(app_t *a, http_request *r);
void api_resolve(app_t *a, http_request *r);
void api_scans(app_t *a, http_request *r);
void api_retry(app_t *a, http_request *r, int64_t id);

/* ---- static.c ---- */
/* Serve a file from web_dir (GET/HEAD); name is a route-chosen file name, never client input. */
void static_serve(app_t *a, http_request *r, const char *name);
/* Serve /static/<file> from client input: canonicalized, confined to web_dir. */
void static_serve_path(app_t *a, http_request *r, const char *url_path);
char *static_find_web_dir(void);

#endif
