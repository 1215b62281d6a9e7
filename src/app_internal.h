/* app_internal.h: the owner's state, struct app. Not a public header: only the owner's files
 * include it: app.c (the owner), app_view.c (the narrow interface of app.h, apart from app.c
 * for its size) and actions.c (the owner's changes to the queue a person asks for from the page:
 * they unpark, cancel and re-time entries, tell the notifications and stage history rows, so
 * they need the queue, the targets and the store writable), and the owner's own unit test. The
 * request handlers (router.c, api.c, api_page.c, auth.c, probes.c) see app_t only through
 * app.h. */
#ifndef PSS_APP_INTERNAL_H
#define PSS_APP_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "app.h"

struct tell;
struct trash;
struct hostpaths_op;

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
    struct hostpaths_op *hostpaths; /* the start's (or a reload's) look at the host paths */
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
    /* The probe rounds' state: probes.c's, attached by it on first use (app_probes_attach) and
     * freed here by its free function, since the owner outlives every round. */
    struct probes *probes;
    void (*probes_free)(struct probes *p);
    uint64_t started_at;         /* wall ms */
    uint64_t clock_wall, clock_mono; /* both clocks at the last look (follow_wall_clock) */
    bool stopping;               /* SIGTERM/SIGINT: no new syncs; in-flight ones get a grace time */
    bool stop_done;              /* the grace time is over: final commit made, handles closing */
    bool reload_refused;         /* the last SIGHUP's file did not validate (shown in STATUS=) */
    uv_timer_t stop_timer;       /* the grace time (and the turn after the last sync ended) */
    int exit_code;
};


#endif
