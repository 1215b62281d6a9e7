/* test_app_commit.c: the owner's group commit (app.c), built without the router: requests staged
 * in a loop turn are applied to the queue and committed together, and each is answered through
 * its own completion callback, in the order staged, only once what it brought is durable
 * (DURABILITY=full: after the fdatasync of the WAL that covers its commit, which runs on libuv's
 * thread pool while the loop goes on); a commit that fails
 * answers every request of its turn with the reason, and the next turn works again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "app_internal.h" /* the owner's own test: it reads the owner's state */
#include "config.h"
#include "dotenv.h"
#include "test_tmpfile.h"
#include "util.h"

#define MAX_ANSWERS 16

typedef struct fx {
    uv_loop_t loop;
    char dir[256];
    app_t app;
    /* the answers, in the order the callbacks ran */
    unsigned n_answers;
    int order[MAX_ANSWERS];
    bool committed[MAX_ANSWERS];
    int64_t entry_id[MAX_ANSWERS];
    char err[MAX_ANSWERS][320];
} fx;

typedef struct tagged {
    staged_req s;
    fx *f;
    int tag;
} tagged;

/* A port nothing listens on now. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t len = sizeof sa;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static void no_request(void *ud, http_request *req)
{
    (void)req;
    (void)ud;
    fail_msg("no HTTP request is made in this test");
}

static void start_app(fx *f, const char *durability)
{
    assert_int_equal(uv_loop_init(&f->loop), 0);
    make_temp_dir(f->dir, sizeof f->dir, "test_app_commit");
    char port[16];
    snprintf(port, sizeof port, "%d", free_port());
    env_map env = {0};
    env_map_set(&env, "STATE_DIR", f->dir);
    env_map_set(&env, "PORT", port);
    env_map_set(&env, "BIND_ADDRESS", "127.0.0.1");
    env_map_set(&env, "MANUAL_PASS", "commit-test-pass");
    env_map_set(&env, "DURABILITY", durability);
    env_map_set(&env, "WEBHOOK_DELAY", "1h");
    env_map_set(&env, "WEBHOOK_MAX_DELAY", "2h");
    config_t cfg;
    char err[512] = "";
    if (config_build(&cfg, &env, NULL, err, sizeof err) != 0)
        fail_msg("config: %s", err);
    static const app_http http = {.handler = no_request};
    assert_int_equal(app_start(&f->app, &f->loop, &env, NULL, &cfg, &http), 0);
}

static int setup_full(void **state)
{
    fx *f = calloc(1, sizeof *f);
    start_app(f, "full");
    *state = f;
    return 0;
}

static int setup_normal(void **state)
{
    fx *f = calloc(1, sizeof *f);
    start_app(f, "process");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    /* SIGTERM: the daemon's own way out, through its grace time and final commit. */
    uv_kill(getpid(), SIGTERM);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    app_free(&f->app);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    remove_tree(f->dir);
    free(f);
    return 0;
}

static void on_done(void *ud, staged_req *s, bool committed, const char *err)
{
    tagged *t = ud;
    fx *f = t->f;
    assert_ptr_equal(s, &t->s);
    assert_true(f->n_answers < MAX_ANSWERS);
    unsigned i = f->n_answers++;
    f->order[i] = t->tag;
    f->committed[i] = committed;
    f->entry_id[i] = s->n_folders && s->folders[0].applied ? s->folders[0].entry_id : 0;
    snprintf(f->err[i], sizeof f->err[i], "%s", err ? err : "");
    for (size_t k = 0; k < s->n_folders; k++)
        app_folder_free(&s->folders[k]);
    free(s->folders);
    free(t);
}

/* A webhook's request for one folder, as the router stages it. */
static void stage(fx *f, int tag, const char *path)
{
    tagged *t = calloc(1, sizeof *t);
    t->f = f;
    t->tag = tag;
    t->s.done = on_done;
    t->s.done_ud = t;
    t->s.app = APP_SONARR;
    t->s.at = wall_ms();
    t->s.folders = calloc(1, sizeof *t->s.folders);
    t->s.folders[0].arr_path = xstrdup(path);
    t->s.folders[0].kinds = QKIND_IMPORT;
    t->s.n_folders = 1;
    app_stage(&f->app, &t->s);
}

static void run_until_answers(fx *f, unsigned n)
{
    uint64_t end = uv_now(&f->loop) + 10000;
    while (f->n_answers < n && uv_now(&f->loop) < end)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(f->n_answers, n);
}

static void test_a_turn_is_answered_in_the_order_staged(void **state)
{
    fx *f = *state;
    stage(f, 1, "/tv/A");
    stage(f, 2, "/tv/B");
    stage(f, 3, "/tv/C");
    assert_int_equal(f->n_answers, 0); /* nothing is answered before its commit */
    uint64_t end = uv_now(&f->loop) + 10000;
    while (f->app.counters.commits == 0 && uv_now(&f->loop) < end)
        uv_run(&f->loop, UV_RUN_ONCE);
    /* DURABILITY=process: the turn that committed answered them all. */
    assert_int_equal(f->n_answers, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(f->order[i], i + 1);
        assert_true(f->committed[i]);
        assert_true(f->entry_id[i] > 0);
        assert_string_equal(f->err[i], "");
    }
    assert_int_equal(queue_count(f->app.q), 3);
    assert_int_equal(f->app.counters.commits, 1); /* one turn, one commit */
}

/* DURABILITY=full: answered after the fdatasync that covers the commit, never while it is out;
 * a request staged while one is out rides on the next sync and is answered after the first. */
static void test_full_durability_answers_after_the_wal_sync(void **state)
{
    fx *f = *state;
    stage(f, 1, "/tv/A");
    uint64_t end = uv_now(&f->loop) + 10000;
    while (f->app.counters.commits == 0 && uv_now(&f->loop) < end)
        uv_run(&f->loop, UV_RUN_ONCE);
    /* The turn that committed started the fdatasync on the thread pool and answered nobody. */
    assert_int_equal(f->app.counters.commits, 1);
    assert_true(f->app.wal_syncing);
    assert_int_equal(f->n_answers, 0);
    stage(f, 2, "/tv/B");
    run_until_answers(f, 2);
    assert_int_equal(f->order[0], 1);
    assert_int_equal(f->order[1], 2);
    for (int i = 0; i < 2; i++) {
        assert_true(f->committed[i]);
        assert_true(f->entry_id[i] > 0);
    }
    assert_int_equal(f->app.counters.commits, 2);
}

/* The state database replaced under the daemon: that turn's requests are answered with the
 * reason (their events went into the replaced files), the store starts afresh with every entry
 * the queue holds, and the next turn is committed again. */
static void test_a_failed_commit_answers_its_turn_with_the_reason(void **state)
{
    fx *f = *state;
    stage(f, 1, "/tv/A");
    run_until_answers(f, 1);
    assert_true(f->committed[0]);

    char db[512], moved[560];
    snprintf(db, sizeof db, "%s", store_path(f->app.store));
    snprintf(moved, sizeof moved, "%s.away", db);
    assert_int_equal(rename(db, moved), 0);
    stage(f, 2, "/tv/B");
    stage(f, 3, "/tv/C");
    run_until_answers(f, 3);
    assert_int_equal(f->order[1], 2);
    assert_int_equal(f->order[2], 3);
    assert_false(f->committed[1]);
    assert_false(f->committed[2]);
    assert_non_null(strstr(f->err[1], db));
    assert_string_equal(f->err[1], f->err[2]);
    assert_true(f->app.counters.commit_failures >= 1);

    stage(f, 4, "/tv/D");
    run_until_answers(f, 4);
    assert_int_equal(f->order[3], 4);
    assert_true(f->committed[3]);
    assert_string_equal(f->err[3], "");
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as main() does */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_turn_is_answered_in_the_order_staged, setup_normal, teardown),
        cmocka_unit_test_setup_teardown(test_full_durability_answers_after_the_wal_sync, setup_full, teardown),
        cmocka_unit_test_setup_teardown(test_a_failed_commit_answers_its_turn_with_the_reason, setup_normal,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
