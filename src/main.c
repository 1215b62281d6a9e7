/* main.c: the command line, the configuration, and the three ways to run: the daemon, --check
 * and --health.
 *
 * A map of src/, top to bottom; each file is a library of its own (CMakeLists.txt), linked only
 * to what it calls, so the linker keeps every call pointing down:
 *   main      -> router, check (--check: -> hostpaths, mapping), probe (--health)
 *   router    the HTTP surface as a table of routes; the webhook and manual-trigger handlers,
 *             which stage their folders for the group commit with a completion callback
 *             -> api (JSON API, /health, /metrics) -> probes (is each target and rclone
 *             answering now: what is older than 5 s is asked again, /health waits up to 2 s),
 *             auth (Basic, failed-login delays), static (the page's files), http_json;
 *             api_page (sources, setup, the page's actions) -> actions (retry, cancel, run now)
 *   app       the owner: the loop's handles, the configuration and its reloads, the queue's
 *             timer, the group commit and its WAL sync; it knows no route. Its struct
 *             (app_internal.h) is seen only by app.c, app_view.c and actions.c: the handlers
 *             above get app.h's narrow view (the configuration, queue and targets read-only,
 *             the counters, the senders, the store, the loop's services, the staging call)
 *             -> folders (arr path -> its forms and one delivery per target library: one rule
 *             for webhooks, manual scans, re-maps and previews), sync, targets, tell, trash,
 *             queue, store, store_history, metrics, notify (systemd), hostpaths (can this host
 *             see the configured places? on fscheck) -> mapping (the places the configuration
 *             names, and the prefixes run-time warnings are said once for; pure)
 *   tell      which events become notifications, and when -> notify_out (the destinations,
 *             batching, retries) -> http_client
 *   trash     Plex's empty trash behind its guards -> targets, fscheck, sync (is a section busy)
 *   sync      one entry's attempt (age, anchors, rclone once per round, anchors, every delivery
 *             not done, a round's history row), reporting through the hooks given at its start
 *             -> targets (state per server, request slots), rclone, fscheck, queue, store, mapping
 *   targets   what is known of each media server (its library list, refused token, reachable)
 *             -> target (one interface) -> plex, mediabrowser (Jellyfin, Emby) -> http_client
 *             (curl multi on libuv) ; libraries (the lists' parsers, pure)
 *   rclone -> http_client ; fscheck (stats on libuv's pool)
 *   queue -> queue_deliveries, queue_files (pure: one entry's deliveries and files),
 *   queue_index (pure: rules over an index) ; store (SQLite) <- store_history ; store ->
 *   store_schema (schema, migration), store_codec (pure: persisted names, BLOBs), store_files
 *   (state directory, files on disk)
 *   webhook (payload -> folders), paths, config -> config_json, config_keys (the env file's
 *   names against the known ones), dotenv ; http_server (start,
 *   stop, request assembly, answers) -> http_conn (a connection's life) -> http_message
 *   (pure) ; util, log, list.h at the bottom. */
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/resource.h>
#include <uv.h>

#include "app.h"
#include "check.h"
#include "config.h"
#include "dotenv.h"
#include "log.h"
#include "probe.h"
#include "router.h"
#include "static.h"
#include "util.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: plex-servarr-sync [--env-file PATH] [--check | --health]\n"
            "\n"
            "Receives Sonarr/Radarr/Lidarr/Readarr webhooks, refreshes rclone's VFS for the folder,\n"
            "then asks Plex to scan exactly that folder.\n"
            "\n"
            "Options:\n"
            "  --env-file PATH  read variables from PATH (default: ./.env if it exists);\n"
            "                   the environment wins over the file\n"
            "  -n, --check      validate the configuration, then try the media servers, rclone (and\n"
            "                   whether its VFS has the configured folders), STATE_DIR, the anchor\n"
            "                   files and the host paths; one line per check, OK, WARN (works, but\n"
            "                   look) or FAIL; exit 1 if a check failed, else 0 (warnings too)\n"
            "  --health         ask the running daemon (PORT, on loopback when BIND_ADDRESS is a\n"
            "                   wildcard) for /health; one line; exit 0 on 200, else 1 (for a\n"
            "                   container's HEALTHCHECK)\n"
            "  -h, --help       this text and the list of variables\n"
            "  -V, --version    print the version\n"
            "\n"
            "Variables:\n");
}

typedef enum { MODE_DAEMON, MODE_CHECK, MODE_HEALTH } run_mode;

/* The command line: 0 to go on, else the exit status (after --help, --version or a usage error,
 * which are answered here). */
static int parse_args(int argc, char **argv, const char **env_file, run_mode *mode)
{
    bool check = false, health = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--env-file") == 0 && i + 1 < argc) {
            *env_file = argv[++i];
        } else if (strncmp(argv[i], "--env-file=", 11) == 0) {
            *env_file = argv[i] + 11;
        } else if (strcmp(argv[i], "-n") == 0 || strcmp(argv[i], "--check") == 0) {
            check = true;
        } else if (strcmp(argv[i], "--health") == 0) {
            health = true;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            config_print_help();
            return -1;
        } else if (strcmp(argv[i], "-V") == 0 || strcmp(argv[i], "--version") == 0) {
            printf("plex-servarr-sync %s\n", PSS_VERSION);
            return -1;
        } else {
            fprintf(stderr, "plex-servarr-sync: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (check && health) {
        fprintf(stderr, "plex-servarr-sync: --check and --health do not go together\n");
        return 2;
    }
    *mode = check ? MODE_CHECK : health ? MODE_HEALTH : MODE_DAEMON;
    return 0;
}

/* Every connection is a file descriptor: raise the soft RLIMIT_NOFILE to the hard limit, so the
 * connection limit (not a default soft limit of 1024) decides when clients are turned away. */
static void fd_limit_raise(int max_connections)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        log_debug("getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
        return;
    }
    rlim_t before = rl.rlim_cur;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit want = {.rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &want) == 0) {
            rl.rlim_cur = rl.rlim_max;
            log_debug("open file limit raised from %llu to %llu", (unsigned long long)before,
                      (unsigned long long)rl.rlim_cur);
        } else {
            log_debug("open file limit stays %llu (raising it to %llu: %s)",
                      (unsigned long long)before, (unsigned long long)rl.rlim_max, strerror(errno));
        }
    } else {
        log_debug("open file limit %llu (already the hard limit)", (unsigned long long)before);
    }
    /* Room for the listener, the state database, rclone/Plex connections and libuv's own. */
    if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)max_connections + 64 > rl.rlim_cur)
        log_warn("MAX_CONNECTIONS is %d but only %llu files may be open; connections past "
                 "that are refused by the kernel, not closed by age",
                 max_connections, (unsigned long long)rl.rlim_cur);
}

/* What reading the configuration found, every line of it: --check prints it as its first check
 * lines, --health only the first error, the daemon logs it. */
static void config_report_say(const config_report *rep, run_mode mode)
{
    if (mode == MODE_CHECK) {
        for (size_t i = 0; i < rep->n_warnings; i++)
            printf("%-5s %-16s %s\n", "WARN", "config", log_esc(rep->warnings[i]));
        for (size_t i = 0; i < rep->n_errors; i++)
            printf("%-5s %-16s %s\n", "FAIL", "config", log_esc(rep->errors[i]));
        if (rep->n_errors)
            printf("%zu configuration error%s: nothing else was checked\n", rep->n_errors,
                   rep->n_errors == 1 ? "" : "s");
    } else if (mode == MODE_HEALTH) {
        if (rep->n_errors)
            printf("unhealthy: configuration error: %s\n", log_esc(rep->errors[0]));
    } else {
        config_report_log(rep, "configuration error");
    }
}

/* The daemon: the loop, the owner on it, the router answering its requests. */
static int run_daemon(const env_map *env, const char *env_file, config_t *cfg)
{
    const char *env_path = check_env_file_path(env_file);
    if (check_world_readable(env_path)) {
        char fix[256];
        log_warn("%s is readable by every user and may hold PLEX_TOKEN and passwords: %s", log_esc(env_path),
                 check_env_file_fix(env_path, fix, sizeof fix));
    }

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_error("libcurl failed to initialize");
        return 1;
    }
    log_set_level((log_level_t)cfg->log_level);
    fd_limit_raise(cfg->max_connections);
    uv_loop_t loop;
    uv_loop_init(&loop);
    static_init();
    app_t *app = app_new();
    static const app_http http = {
        .handler = router_handle, .body_limit = router_body_limit, .head_check = router_head_check};
    int rc = app_start(app, &loop, env, env_file, cfg, &http);
    if (rc == 0) {
        uv_run(&loop, UV_RUN_DEFAULT);
        rc = app_exit_code(app);
    } else {
        rc = 1;
        /* Close whatever was opened before the failure. */
        app_abort(app);
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    app_free(app);
    app_delete(app);
    static_free();
    if (uv_loop_close(&loop) != 0)
        log_debug("the loop still had handles at exit");
    curl_global_cleanup();
    return rc;
}

int main(int argc, char **argv)
{
    const char *env_file = NULL;
    run_mode mode = MODE_DAEMON;
    int rc = parse_args(argc, argv, &env_file, &mode);
    if (rc)
        return rc < 0 ? 0 : rc;
    log_init();
    signal(SIGPIPE, SIG_IGN);
    if (mode == MODE_HEALTH)
        log_set_level(LOG_LVL_ERROR); /* the probe's one line, not the config's notes */

    env_map env;
    env_map_from_environ(&env);
    config_t cfg;
    config_report rep = {0};
    rc = config_load(&cfg, &env, env_file, &rep);
    config_report_say(&rep, mode);
    config_report_free(&rep);
    if (rc < 0) {
        env_map_free(&env);
        return 1;
    }
    if (cfg.tz && *cfg.tz) {
        setenv("TZ", cfg.tz, 1);
        log_init();
    }
    if (mode == MODE_CHECK) {
        /* Only the check lines on stdout; the log (stderr) says only what goes wrong. */
        log_set_level(LOG_LVL_ERROR);
        rc = check_run(&cfg, env_file, stdout);
    } else if (mode == MODE_HEALTH) {
        rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? probe_health(&cfg, stdout) : 1;
        curl_global_cleanup();
    } else {
        return run_daemon(&env, env_file, &cfg); /* the app owns cfg and env from app_start on */
    }
    config_free(&cfg);
    env_map_free(&env);
    return rc;
}
