/* test_sync.c: one attempt of one queue entry (sync.c) against an in-test Plex on the same loop,
 * with a real queue, a real store in a temporary directory and the daemon's HTTP client: what
 * the job reports through its hooks, what it leaves in the queue and in the history, what Plex
 * received, for each way a round can end; and the entry a waiting ancestor takes over while its
 * attempt is out (the job must not touch it after the queue freed it: ASan watches). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "dotenv.h"
#include "fscheck.h"
#include "http_client.h"
#include "metrics.h"
#include "queue.h"
#include "store.h"
#include "sync.h"
#include "targets.h"
#include "test_httpd.h"
#include "test_tmpfile.h"
#include "util.h"

#define TOKEN "sync-T0ken"
#define FOLDER "/data/tv/Show/Season 01"
#define FOLDER_Q "%2Fdata%2Ftv%2FShow%2FSeason%2001"
#define SERIES "/data/tv/Show"

static const char SECTIONS[] =
    "{\"MediaContainer\":{\"size\":1,\"Directory\":[{\"key\":\"2\",\"type\":\"show\",\"title\":\"TV\","
    "\"refreshing\":false,\"Location\":[{\"id\":3,\"path\":\"/data/tv\"}]}]}}";

typedef struct fx {
    uv_loop_t loop;
    char dir[256];
    thd_server *srv;
    config_t cfg;
    queue_t *q;
    store_t *store;
    httpc_t *httpc;
    fscheck_t *fs;
    targets ts;
    metrics m;
    sync_env env;
    bool targets_closed, fs_closed, httpc_closed;

    /* what the in-test Plex does and saw */
    int scan_status;       /* answer to a refresh */
    bool hold_scan;        /* keep the refresh unanswered (held_conn) */
    thd_conn *held_conn;
    unsigned scans;
    char scan_target[2048];
    char scan_head[4096];

    /* what the job reported */
    bool ended;
    unsigned n_ended, n_news, n_slot_freed;
    sync_report rep;       /* copied: pointers cleared (valid during the call only) */
    bool rep_had_entry;
    char rep_path[512];
    char rep_done_target[64], rep_done_library[64];
} fx;

static void plex(void *ud, thd_conn *c, const thd_request *r)
{
    fx *f = ud;
    if (strstr(r->target, "/refresh")) {
        f->scans++;
        snprintf(f->scan_target, sizeof f->scan_target, "%s", r->target);
        snprintf(f->scan_head, sizeof f->scan_head, "%.*s", (int)r->head_len, r->head);
        if (f->hold_scan) {
            f->held_conn = c;
            return;
        }
        thd_respond(c, f->scan_status, "text/plain", "", "", 0);
        return;
    }
    if (strncmp(r->target, "/library/sections", 17) == 0) {
        thd_respond(c, 200, "application/json", "", SECTIONS, strlen(SECTIONS));
        return;
    }
    thd_respond(c, 404, "text/plain", "", "", 0);
}

static void on_lists_changed(void *ud)
{
    (void)ud;
}

static void on_accepted(void *ud, const char *target)
{
    (void)ud;
    (void)target;
}

static const targets_hooks THOOKS = {.lists_changed = on_lists_changed, .accepted = on_accepted};

static void on_news(void *ud, sync_news_kind kind, const char *error)
{
    (void)kind;
    (void)error;
    ((fx *)ud)->n_news++;
}

static void on_ended(void *ud, const sync_report *r)
{
    fx *f = ud;
    f->ended = true;
    f->n_ended++;
    f->rep = *r;
    f->rep_had_entry = r->entry != NULL;
    snprintf(f->rep_path, sizeof f->rep_path, "%s", r->path);
    f->rep_done_target[0] = f->rep_done_library[0] = '\0';
    if (r->n_done > 0) {
        snprintf(f->rep_done_target, sizeof f->rep_done_target, "%s", r->done[0].target);
        snprintf(f->rep_done_library, sizeof f->rep_done_library, "%s", r->done[0].library);
    }
    f->rep.entry = NULL;
    f->rep.path = NULL;
    f->rep.done = NULL;
    f->rep.hold_reason = NULL;
}

static void on_slot_freed(void *ud)
{
    ((fx *)ud)->n_slot_freed++;
}

static const sync_hooks HOOKS = {.news = on_news, .ended = on_ended, .slot_freed = on_slot_freed};

static void on_change(void *ud, const q_entry *e, q_change what)
{
    fx *f = ud;
    if (what == QCHANGE_PUT)
        store_stage_entry_put(f->store, e);
    else
        store_stage_entry_del(f->store, e->id);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    make_temp_dir(f->dir, sizeof f->dir, "test_sync");
    f->srv = thd_start(&f->loop, plex, f);
    f->scan_status = 200;

    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", f->srv->port);
    env_map env = {0};
    env_map_set(&env, "PLEX_URL", url);
    env_map_set(&env, "PLEX_TOKEN", TOKEN);
    env_map_set(&env, "STATE_DIR", f->dir);
    env_map_set(&env, "MINIMUM_AGE", "0");
    char err[512] = "";
    int rc = config_build(&f->cfg, &env, NULL, err, sizeof err);
    env_map_free(&env);
    if (rc != 0)
        fail_msg("config: %s", err);

    queue_params p = {
        .delay_ms = 0,
        .max_delay_ms = 60000,
        .retry_max_ms = 300000,
        .hold_recheck_ms = 30000,
        .clamp_future_ms = 86400000,
        .max_concurrent = 4,
        .max_pending = 1000,
    };
    f->q = queue_new(&p, on_change, f);
    assert_int_equal(store_open(&f->store, f->dir, 1, err, sizeof err), 0);
    f->httpc = httpc_new(&f->loop);
    f->fs = fscheck_new(&f->loop, 10000);
    assert_int_equal(targets_start(&f->ts, &f->loop, f->httpc, &f->cfg, &THOOKS, f), 0);
    f->env = (sync_env){.cfg = &f->cfg, .q = f->q, .store = f->store, .httpc = f->httpc, .fs = f->fs,
                        .targets = &f->ts, .m = &f->m};
    list_init(&f->env.jobs);

    /* The library list first, as the daemon's start reads it. */
    uint64_t end = uv_now(&f->loop) + 10000;
    while (f->ts.v[0].libs.fetched_at == 0 && uv_now(&f->loop) < end)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_true(f->ts.v[0].libs.fetched_at != 0);
    *state = f;
    return 0;
}

static void set_true(void *ud)
{
    *(bool *)ud = true;
}

static int teardown(void **state)
{
    fx *f = *state;
    sync_cancel_all(&f->env);
    targets_stop(&f->ts, set_true, &f->targets_closed);
    fscheck_close(f->fs, set_true, &f->fs_closed);
    httpc_close(f->httpc, set_true, &f->httpc_closed);
    thd_stop(f->srv);
    for (int i = 0; i < 200 && uv_run(&f->loop, UV_RUN_NOWAIT); i++)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_true(f->targets_closed && f->fs_closed && f->httpc_closed);
    targets_free(&f->ts);
    queue_free(f->q);
    store_close(f->store);
    config_free(&f->cfg);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    remove_tree(f->dir);
    free(f);
    return 0;
}

/* An import of `path` into the queue, as the webhook handler stages it: one Plex delivery. */
static q_entry *add(fx *f, const char *path)
{
    q_delivery d = {.target = queue_intern(f->q, "plex"), .library = queue_intern(f->q, "2"),
                    .state = DELIVERY_PENDING};
    q_event ev = {.path = path, .deliv = &d, .n_deliv = 1, .kinds = QKIND_IMPORT, .source_bit = 1u,
                  .at = wall_ms()};
    q_add_result res;
    assert_int_equal(queue_add(f->q, &ev, wall_ms(), &res), 0);
    return res.entry;
}

/* Take the folder out of the queue and start its attempt. */
static void start(fx *f, const char *path)
{
    bool needs_age = false;
    q_entry *e = queue_take_ready(f->q, wall_ms() + 1, &needs_age);
    assert_non_null(e);
    assert_string_equal(e->path, path);
    f->ended = false;
    sync_start(&f->env, e, false, &HOOKS, f);
}

static void run_until_ended(fx *f)
{
    assert_true(thd_run_until(&f->loop, &f->ended, 10000));
}

static bool run_until_scans(fx *f, unsigned n)
{
    uint64_t end = uv_now(&f->loop) + 10000;
    while (f->scans < n && uv_now(&f->loop) < end)
        uv_run(&f->loop, UV_RUN_ONCE);
    return f->scans >= n;
}

typedef struct rows {
    unsigned n;
    hist_status status;
    char error[256];
} rows;

static void on_row(void *ud, const store_history *h)
{
    rows *r = ud;
    r->n++;
    r->status = h->status;
    snprintf(r->error, sizeof r->error, "%s", h->error ? h->error : "");
}

/* The history after committing what the job staged. */
static rows history(fx *f)
{
    char err[256];
    assert_true(store_has_staged(f->store));
    assert_int_equal(store_commit(f->store, err, sizeof err), 0);
    rows r = {0};
    store_history_query hq = {.status = -1, .limit = 10};
    assert_int_equal(store_history_list(f->store, &hq, on_row, &r), 0);
    return r;
}

static void test_a_scan_that_succeeds_ends_the_round(void **state)
{
    fx *f = *state;
    add(f, FOLDER);
    start(f, FOLDER);
    run_until_ended(f);

    assert_int_equal(f->n_ended, 1);
    assert_true(f->rep.round_over);
    assert_false(f->rep.failed);
    assert_false(f->rep.parked);
    assert_false(f->rep.held);
    assert_string_equal(f->rep_path, FOLDER);
    assert_int_equal(f->rep.n_done, 1);
    assert_string_equal(f->rep_done_target, "plex");
    assert_string_equal(f->rep_done_library, "2");
    assert_int_equal(f->rep.kinds, QKIND_IMPORT);
    assert_int_equal(f->n_slot_freed, 1);
    /* Exactly the folder, to the library holding it, with the token. */
    assert_int_equal(f->scans, 1);
    assert_string_equal(f->scan_target, "/library/sections/2/refresh?path=" FOLDER_Q);
    assert_non_null(strstr(f->scan_head, "X-Plex-Token: " TOKEN "\r\n"));
    /* The round is over: nothing left to do for the folder. */
    assert_null(queue_find(f->q, FOLDER));
    assert_int_equal(sync_count(&f->env), 0);
    assert_int_equal(f->m.scans_ok, 1);
    rows r = history(f);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.status, HIST_OK);
}

static void test_a_transient_failure_is_retried_later(void **state)
{
    fx *f = *state;
    f->scan_status = 503;
    add(f, FOLDER);
    start(f, FOLDER);
    run_until_ended(f);

    assert_true(f->rep.failed);
    assert_false(f->rep.round_over);
    assert_false(f->rep.parked);
    assert_true(f->rep_had_entry);
    assert_int_equal(f->rep.n_done, 0);
    q_entry *e = queue_find(f->q, FOLDER);
    assert_non_null(e);
    assert_int_equal(e->state, ENTRY_RETRY);
    assert_true(e->due > wall_ms());
    assert_int_equal(e->deliv[0].state, DELIVERY_RETRY);
    assert_non_null(e->last_error);
    assert_non_null(strstr(e->last_error, "503"));
    assert_int_equal(f->m.scans_failed, 1);
    rows r = history(f);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.status, HIST_RETRYING);
}

static void test_a_refused_token_parks_the_delivery(void **state)
{
    fx *f = *state;
    f->scan_status = 401;
    add(f, FOLDER);
    start(f, FOLDER);
    run_until_ended(f);

    assert_true(f->rep.round_over);
    assert_true(f->rep.parked);
    assert_false(f->rep.failed);
    q_entry *e = queue_find(f->q, FOLDER);
    assert_non_null(e);
    assert_int_equal(e->state, ENTRY_PARKED);
    assert_int_equal(e->deliv[0].state, DELIVERY_PARKED);
    /* What the job learnt of the server went to the targets module, which owns it. */
    assert_true(targets_find(&f->ts, "plex")->refused);
    assert_int_equal(f->m.scans_parked, 1);
    rows r = history(f);
    assert_int_equal(r.status, HIST_PARKED);
    assert_non_null(strstr(r.error, "PLEX_TOKEN"));
}

/* issue 12's bug: the series folder's event arrives while the episode folder's attempt is out;
 * the attempt then fails and the waiting ancestor takes the work over, and the queue frees the
 * episode's entry. The job reports without it (entry NULL) and the ancestor carries the retry. */
static void test_an_ancestor_takes_over_a_failed_attempt(void **state)
{
    fx *f = *state;
    f->hold_scan = true;
    add(f, FOLDER);
    start(f, FOLDER);
    assert_true(run_until_scans(f, 1));
    q_entry *series = add(f, SERIES);
    assert_non_null(series);
    int64_t series_id = series->id;
    assert_int_equal(series->state, ENTRY_WAITING);

    thd_respond(f->held_conn, 500, "text/plain", "", "", 0);
    run_until_ended(f);

    assert_true(f->rep.failed);
    assert_false(f->rep_had_entry); /* the episode's entry is gone */
    assert_string_equal(f->rep_path, FOLDER);
    assert_null(queue_find(f->q, FOLDER));
    q_entry *now = queue_find(f->q, SERIES);
    assert_non_null(now);
    assert_int_equal(now->id, series_id);
    assert_int_equal(queue_count(f->q), 1);
}

/* An event for the folder while its scan is out: the scan that answers OK does not end the round,
 * the folder runs again and every delivery is sent again (the event may be a newer file). */
static void test_an_event_during_the_attempt_starts_the_round_again(void **state)
{
    fx *f = *state;
    f->hold_scan = true;
    add(f, FOLDER);
    start(f, FOLDER);
    assert_true(run_until_scans(f, 1));
    add(f, FOLDER);

    thd_respond(f->held_conn, 200, "text/plain", "", "", 0);
    run_until_ended(f);

    assert_false(f->rep.failed);
    assert_false(f->rep.parked);
    q_entry *e = queue_find(f->q, FOLDER);
    assert_non_null(e);
    assert_int_equal(e->state, ENTRY_WAITING);
    assert_int_equal(e->deliv[0].state, DELIVERY_PENDING);
    assert_int_equal(e->events, 2);

    f->hold_scan = false;
    start(f, FOLDER);
    run_until_ended(f);
    assert_true(f->rep.round_over);
    assert_int_equal(f->scans, 2);
    assert_null(queue_find(f->q, FOLDER));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_scan_that_succeeds_ends_the_round, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_transient_failure_is_retried_later, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_refused_token_parks_the_delivery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_ancestor_takes_over_a_failed_attempt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_event_during_the_attempt_starts_the_round_again, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
