/* test_hostpaths.c: whether this host sees the configured places, on a real temporary tree: the
 * Python script's container paths (missing here) with rclone's mount path (present) suggested,
 * and the warning's wording for each case. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "hostpaths.h"
#include "util.h"

#define S(x) ((char *)(uintptr_t)(x))

typedef struct seen {
    int n;
    bool exists[4];
    char *host[4], *rclone[4], *advice[4];
    bool done;
} seen;

static void on_each(void *ud, const hostpath_seen *s)
{
    seen *r = ud;
    assert_true(r->n < 4);
    r->exists[r->n] = s->exists;
    r->host[r->n] = xstrdup(s->host);
    r->rclone[r->n] = xstrdup(s->rclone);
    r->advice[r->n] = s->exists ? NULL : hostpaths_advice(s);
    r->n++;
}

static void on_done(void *ud) { ((seen *)ud)->done = true; }
static void on_closed(void *ud) { *(bool *)ud = true; }

static void seen_free(seen *r)
{
    for (int i = 0; i < r->n; i++) {
        free(r->host[i]);
        free(r->rclone[i]);
        free(r->advice[i]);
    }
}

static void test_a_container_path_missing_here_suggests_the_rclone_mount_path(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    char *dir = xasprintf("%s/pss-hostpaths-XXXXXX", tmp && *tmp ? tmp : P_tmpdir);
    assert_non_null(mkdtemp(dir));
    char *tv = xasprintf("%s/tv", dir);
    assert_int_equal(mkdir(tv, 0755), 0);

    cfg_replacement plex[] = {{S("/tv"), S("/nonexistent-pss-test/tv")}, {S("/movies"), S(dir)}};
    cfg_replacement rclone[] = {{S("/tv"), tv}};
    cfg_mount mount = {.root = S(dir), .url = S("http://127.0.0.1:5572")};
    config_t c;
    memset(&c, 0, sizeof c);
    c.path_repl = (cfg_replacements){plex, 2};
    c.rclone_path_repl = (cfg_replacements){rclone, 1};
    c.mounts = &mount;
    c.n_mounts = 1;
    c.use_rclone = true;
    c.minimum_age_ms = 60000;
    assert_true(hostpaths_wanted(&c));

    uv_loop_t loop;
    uv_loop_init(&loop);
    fscheck_t *fs = fscheck_new(&loop, 0);
    map_roots roots;
    map_roots_from_config(&c, &roots);
    seen r = {0};
    hostpaths_op *op = NULL;
    assert_int_equal(hostpaths_probe(fs, &c, &roots, on_each, on_done, &r, &op), 0);
    map_roots_free(&roots); /* copied */
    assert_int_equal(r.n, 0); /* later, not now */
    while (!r.done)
        uv_run(&loop, UV_RUN_ONCE);

    assert_int_equal(r.n, 2);
    assert_false(r.exists[0]); /* /tv: /nonexistent-pss-test/tv */
    assert_string_equal(r.host[0], "/nonexistent-pss-test/tv");
    assert_string_equal(r.rclone[0], tv);
    char *want = xasprintf("'/tv' (RCLONE_PATH_REPLACEMENTS '/tv' -> '%s') is '/nonexistent-pss-test/tv' on this host "
                           "(the Plex path: PATH_REPLACEMENTS, as LOCAL_PATH_REPLACEMENTS is unset), which does not "
                           "exist here: MINIMUM_AGE counts from the event time there, not from the files' age; set "
                           "LOCAL_PATH_REPLACEMENTS to map '/tv' to '%s' (the rclone mount path, which exists here)",
                           tv, tv);
    assert_string_equal(r.advice[0], want);
    free(want);
    assert_true(r.exists[1]); /* /movies: the temporary directory itself */
    assert_null(r.rclone[1]);
    seen_free(&r);

    bool closed = false;
    fscheck_close(fs, on_closed, &closed);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    rmdir(tv);
    rmdir(dir);
    free(tv);
    free(dir);
}

static void test_the_warning_says_what_it_costs_and_why(void **state)
{
    (void)state;
    hostpath_seen s = {.arr = "/tv", .what = "PATH_REPLACEMENTS '/tv' -> '/data/tv'", .host = "/data/tv",
                       .via = "LOCAL_PATH_REPLACEMENTS", .why = "EACCES", .anchors = true};
    char *a = hostpaths_advice(&s);
    assert_string_equal(a, "'/tv' (PATH_REPLACEMENTS '/tv' -> '/data/tv') is '/data/tv' on this host "
                           "(LOCAL_PATH_REPLACEMENTS), which this host cannot see (EACCES): ANCHOR_FILES guard "
                           "nothing there; set LOCAL_PATH_REPLACEMENTS to map '/tv' to where this host sees those "
                           "files (the rclone or mergerfs mount path)");
    free(a);
    s.min_age = true;
    s.why = "ENOENT";
    a = hostpaths_advice(&s);
    assert_non_null(strstr(a, "which does not exist here: MINIMUM_AGE counts from the event time there and "
                              "ANCHOR_FILES guard nothing there;"));
    free(a);
}

static void test_nothing_is_probed_without_minimum_age_or_anchors(void **state)
{
    (void)state;
    config_t c;
    memset(&c, 0, sizeof c);
    assert_false(hostpaths_wanted(&c));
    hostpaths_op *op = (hostpaths_op *)&c;
    assert_int_equal(hostpaths_warn(NULL, &c, NULL, NULL, &op), 0);
    assert_null(op);
    hostpaths_cancel(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_container_path_missing_here_suggests_the_rclone_mount_path),
        cmocka_unit_test(test_the_warning_says_what_it_costs_and_why),
        cmocka_unit_test(test_nothing_is_probed_without_minimum_age_or_anchors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
