/* test_fscheck.c: async stats on a real temporary tree: newest mtime, anchors, exists, one
 * request per mount, a hung (delayed) mount failing alone and recovering, cancel and close. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
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

#include "fscheck.h"
#include "log.h"
#include "util.h"
#include "test_hooks.h"

#define P_MAX 512

typedef struct ctx {
    uv_loop_t loop;
    fscheck_t *f;
    char dir[P_MAX];
} ctx;

/* ---- captured log lines ---- */

static char logbuf[16384];

static void log_sink(log_level_t lvl, const char *line)
{
    (void)lvl;
    size_t used = strlen(logbuf);
    snprintf(logbuf + used, sizeof logbuf - used, "%s\n", line);
}

/* ---- tree helpers ---- */

static void pth(char *out, const ctx *t, const char *rel)
{
    int n = snprintf(out, P_MAX, "%s/%s", t->dir, rel);
    assert_true(n > 0 && n < P_MAX);
}

static void mkdir_rel(const ctx *t, const char *rel)
{
    char p[P_MAX];
    pth(p, t, rel);
    assert_int_equal(mkdir(p, 0755), 0);
}

/* Create a file with the given mtime (seconds, nanoseconds). */
static void touch_rel(const ctx *t, const char *rel, time_t sec, long nsec)
{
    char p[P_MAX];
    pth(p, t, rel);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    close(fd);
    struct timespec ts[2] = {{sec, nsec}, {sec, nsec}};
    assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

/* ---- callbacks ---- */

static int seq; /* completion order across all results of a test */

typedef struct result {
    int calls;
    int order;
    uint64_t mtime;
    bool ok;
    bool has_why;
    char why[P_MAX * 2];
    fscheck_op *op;      /* set by the test when the callback cancels its own op */
    fscheck_t *close_f;  /* callback closes this fscheck */
    int *done_calls;
} result;

static void on_done(void *ud) { (*(int *)ud)++; }

static void after_call(result *r)
{
    r->calls++;
    r->order = ++seq;
    if (r->op)
        fscheck_cancel(r->op); /* from inside its own callback: must be ignored */
    if (r->close_f)
        fscheck_close(r->close_f, on_done, r->done_calls);
}

static void on_mtime(void *ud, uint64_t newest)
{
    result *r = ud;
    r->mtime = newest;
    after_call(r);
}

static void set_why(result *r, const char *why)
{
    r->has_why = why != NULL;
    snprintf(r->why, sizeof r->why, "%s", why ? why : "");
}

static void on_anchor(void *ud, bool ok, const char *reason)
{
    result *r = ud;
    r->ok = ok;
    set_why(r, reason);
    after_call(r);
}

static void on_exists(void *ud, bool exists, const char *why)
{
    result *r = ud;
    r->ok = exists;
    set_why(r, why);
    after_call(r);
}

/* ---- loop helpers (no sleeps: run the loop until the wanted thing happened) ---- */

static void run_until_called(ctx *t, result *const *rs, size_t n)
{
    for (;;) {
        size_t got = 0;
        for (size_t i = 0; i < n; i++)
            got += rs[i]->calls > 0;
        if (got == n)
            return;
        if (uv_run(&t->loop, UV_RUN_ONCE) == 0) {
            got = 0;
            for (size_t i = 0; i < n; i++)
                got += rs[i]->calls > 0;
            if (got != n)
                fail_msg("loop ran dry with %zu of %zu callbacks", got, n);
        }
    }
}

static void run_until_one(ctx *t, result *r)
{
    result *rs[] = {r};
    run_until_called(t, rs, 1);
}

static void run_until_idle_mount(ctx *t, const char *root)
{
    while (fscheck_in_flight(t->f, root) > 0)
        if (uv_run(&t->loop, UV_RUN_ONCE) == 0 && fscheck_in_flight(t->f, root) > 0)
            fail_msg("loop ran dry with a request in flight on %s", root);
}

/* ---- fixture ---- */

static int setup(void **state)
{
    ctx *t = calloc(1, sizeof *t);
    assert_non_null(t);
    const char *tmp = getenv("TMPDIR");
    snprintf(t->dir, sizeof t->dir, "%s/pss-fscheck-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(t->dir));
    assert_int_equal(uv_loop_init(&t->loop), 0);
    logbuf[0] = '\0';
    log_set_sink(log_sink);
    seq = 0;
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    ctx *t = *state;
    if (t->f) {
        int done = 0;
        fscheck_close(t->f, on_done, &done);
        t->f = NULL;
        uv_run(&t->loop, UV_RUN_DEFAULT);
        assert_int_equal(done, 1);
    }
    uv_run(&t->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&t->loop), 0);
    log_set_sink(NULL);
    assert_int_equal(nftw(t->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
    free(t);
    return 0;
}

/* ---- newest mtime ---- */

static void test_newest_mtime_is_the_latest_file_in_wall_ms(void **state)
{
    ctx *t = *state;
    t->f = fscheck_new(&t->loop, 10000);
    touch_rel(t, "a", 1600000000, 250000000);
    touch_rel(t, "b", 1700000000, 999999999);
    touch_rel(t, "c", 1650000000, 0);
    char a[P_MAX], b[P_MAX], c[P_MAX];
    pth(a, t, "a");
    pth(b, t, "b");
    pth(c, t, "c");
    const char *files[] = {a, b, c};
    result r = {0};
    assert_int_equal(fscheck_newest_mtime(t->f, files, 3, on_mtime, &r, NULL), 0);
    assert_int_equal(r.calls, 0); /* never inside the starting call */
    run_until_one(t, &r);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.mtime, UINT64_C(1700000000999));
}

static void test_missing_file_counts_as_unknown(void **state)
{
    ctx *t = *state;
    t->f = fscheck_new(&t->loop, 10000);
    touch_rel(t, "old", 1600000000, 0);
    char old[P_MAX], gone[P_MAX], under_file[P_MAX];
    pth(old, t, "old");
    pth(gone, t, "gone");
    pth(under_file, t, "old/x"); /* ENOTDIR */
    const char *files[] = {gone, old, under_file};
    result r = {0};
    assert_int_equal(fscheck_newest_mtime(t->f, files, 3, on_mtime, &r, NULL), 0);
    run_until_one(t, &r);
    assert_int_equal(r.mtime, UINT64_C(1600000000000));

    const char *none[] = {gone, under_file};
    result r2 = {0}, r3 = {0};
    assert_int_equal(fscheck_newest_mtime(t->f, none, 2, on_mtime, &r2, NULL), 0);
    assert_int_equal(fscheck_newest_mtime(t->f, NULL, 0, on_mtime, &r3, NULL), 0);
    assert_int_equal(r3.calls, 0);
    result *rs[] = {&r2, &r3};
    run_until_called(t, rs, 2);
    assert_int_equal(r2.mtime, 0);
    assert_int_equal(r3.mtime, 0);
}

/* ---- anchors ---- */

static void test_anchors_present_answer_ok(void **state)
{
    ctx *t = *state;
    t->f = fscheck_new(&t->loop, 10000);
    mkdir_rel(t, "tv");
    mkdir_rel(t, "tv/Show");
    touch_rel(t, "tv/.anchor", 1600000000, 0);
    touch_rel(t, "tv/Show/.anchor", 1600000000, 0);
    char a1[P_MAX], a2[P_MAX], show[P_MAX];
    pth(a1, t, "tv/.anchor");
    pth(a2, t, "tv/Show/.anchor"); /* its directory is the path itself */
    pth(show, t, "tv/Show");
    const char *anchors[] = {a1, a2};
    result r = {0}, none = {0};
    assert_int_equal(fscheck_anchors(t->f, anchors, 2, show, on_anchor, &r, NULL), 0);
    assert_int_equal(fscheck_anchors(t->f, NULL, 0, show, on_anchor, &none, NULL), 0);
    assert_int_equal(r.calls + none.calls, 0);
    result *rs[] = {&r, &none};
    run_until_called(t, rs, 2);
    assert_true(r.ok);
    assert_false(r.has_why);
    assert_true(none.ok);
}

static void test_missing_anchor_holds_with_its_path(void **state)
{
    ctx *t = *state;
    t->f = fscheck_new(&t->loop, 10000);
    mkdir_rel(t, "tv");
    touch_rel(t, "tv/.present", 1600000000, 0);
    char present[P_MAX], missing[P_MAX], show[P_MAX], want[P_MAX * 2];
    pth(present, t, "tv/.present");
    pth(missing, t, "tv/.anchor");
    pth(show, t, "tv/Show/S01");
    const char *anchors[] = {present, missing};
    result r = {0};
    assert_int_equal(fscheck_anchors(t->f, anchors, 2, show, on_anchor, &r, NULL), 0);
    run_until_one(t, &r);
    assert_false(r.ok);
    snprintf(want, sizeof want, "anchor %s missing", missing);
    assert_string_equal(r.why, want);
}

static void test_anchor_below_a_file_is_enotdir_and_counts_as_missing(void **state)
{
    ctx *t = *state;
    t->f = fscheck_new(&t->loop, 10000);
    touch_rel(t, "file", 1600000000, 0);
    char anchor[P_MAX], path[P_MAX], want[P_MAX * 2];
    pth(anchor, t, "file/.anchor");
    pth(path, t, "file/x");
    const char *anchors[] = {anchor};
    result r = {0};
    assert_int_equal(fscheck_anchors(t->f, anchors, 1, path, on_anchor, &r, NULL), 0);
    run_until_one(t, &r);
    assert_false(r.ok);
    snprintf(want, sizeof want, "anchor %s missing", anchor);
    assert_string_equal(r.why, want);
}

static void test_anchor_error_other_than_missing_holds_with_the_error(void **state)
{
    ctx *t = *state;
    t->f = fscheck_new(&t->loop, 10000);
    mkdir_rel(t, "mnt");
    char loop_link[P_MAX], anchor[P_MAX], path[P_MAX], want[P_MAX * 2];
    pth(loop_link, t, "mnt/.anchor");
    assert_int_equal(symlink(loop_link, loop_link), 0); /* stat answers ELOOP */
    pth(anchor, t, "mnt/.anchor");
    pth(path, t, "mnt/Movie");
    const char *anchors[] = {anchor};
    result r = {0};
    assert_int_equal(fscheck_anchors(t->f, anchors, 1, path, on_anchor, &r, NULL), 0);
    run_until_one(t, &r);
    assert_false(r.ok);
    snprintf(want, sizeof want, "anchor %s: %s", anchor, uv_strerror(UV_ELOOP));
    assert_string_equal(r.why, want);
}

static void test_anchor_outside_the_paths_tree_is_ignored(void **state)
{
    ctx *t = *state;
    t->f = fscheck_new(&t->loop, 10000);
    mkdir_rel(t, "tv");
    char other[P_MAX], sibling[P_MAX], deeper[P_MAX], path[P_MAX];
    pth(other, t, "movies/.anchor");     /* another tree */
    pth(sibling, t, "tv 2/.anchor");     /* "tv 2" is not a component prefix of "tv/..." */
    pth(deeper, t, "tv/Show/S01/.anchor"); /* guards below the path, not the path */
    pth(path, t, "tv/Show");
    const char *anchors[] = {other, sibling, deeper, "relative/.anchor"};
    result r = {0};
    assert_int_equal(fscheck_anchors(t->f, anchors, 4, path, on_anchor, &r, NULL), 0);
    run_until_one(t, &r);
    assert_true(r.ok);
    assert_int_equal(fscheck_in_flight(t->f, "/"), 0);
}

/* ---- exists ---- */

static void test_exists_answers_with_the_errno_name(void **state)
{
    ctx *t = *state;
    t->f = fscheck_new(&t->loop, 10000);
    touch_rel(t, "here", 1600000000, 0);
    char here[P_MAX], gone[P_MAX];
    pth(here, t, "here");
    pth(gone, t, "gone");
    result r1 = {0}, r2 = {0}, r3 = {0};
    assert_int_equal(fscheck_exists(t->f, here, on_exists, &r1, NULL), 0);
    assert_int_equal(fscheck_exists(t->f, gone, on_exists, &r2, NULL), 0);
    assert_int_equal(fscheck_exists(t->f, t->dir, on_exists, &r3, NULL), 0);
    assert_int_equal(r1.calls + r2.calls + r3.calls, 0);
    result *rs[] = {&r1, &r2, &r3};
    run_until_called(t, rs, 3);
    assert_true(r1.ok);
    assert_false(r1.has_why);
    assert_false(r2.ok);
    assert_string_equal(r2.why, "ENOENT");
    assert_true(r3.ok);
    assert_int_equal(fscheck_exists(t->f, NULL, on_exists, &r1, NULL), -EINVAL);
    assert_int_equal(fscheck_exists(t->f, here, NULL, &r1, NULL), -EINVAL);
}

/* ---- one request per mount ---- */

typedef struct sampler {
    uv_check_t h;
    fscheck_t *f;
    const char *roots[3];
    size_t max[3];
} sampler;

static void on_sample(uv_check_t *h)
{
    sampler *s = container_of(h, sampler, h);
    for (size_t i = 0; i < 3; i++) {
        size_t n = fscheck_in_flight(s->f, s->roots[i]);
        if (n > s->max[i])
            s->max[i] = n;
    }
}

static void test_one_request_in_flight_per_mount_in_fifo_order(void **state)
{
    ctx *t = *state;
    t->f = fscheck_new(&t->loop, 10000);
    mkdir_rel(t, "A");
    mkdir_rel(t, "B");
    touch_rel(t, "A/f1", 1600000001, 0);
    touch_rel(t, "A/f2", 1600000002, 0);
    touch_rel(t, "A/f3", 1600000003, 0);
    touch_rel(t, "B/g", 1600000009, 0);
    char A[P_MAX], B[P_MAX], f[4][P_MAX], g[P_MAX];
    pth(A, t, "A");
    pth(B, t, "B");
    pth(f[0], t, "A/f1");
    pth(f[1], t, "A/f2");
    pth(f[2], t, "A/f3");
    pth(f[3], t, "A/missing");
    pth(g, t, "B/g");
    const char *roots[] = {A, B};
    fscheck_set_mounts(t->f, roots, 2);
    fscheck_test_set_stat_delay(t->f, A, 20); /* a slow mount makes the queue visible */

    sampler s = {.f = t->f, .roots = {A, B, "/"}};
    assert_int_equal(uv_check_init(&t->loop, &s.h), 0);
    assert_int_equal(uv_check_start(&s.h, on_sample), 0);

    result ra[4] = {{0}}, rm = {0}, rb = {0};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(fscheck_exists(t->f, f[i], on_exists, &ra[i], NULL), 0);
        assert_int_equal(fscheck_in_flight(t->f, A), 1); /* the rest waits */
    }
    const char *mfiles[] = {f[0], f[2], g};
    assert_int_equal(fscheck_newest_mtime(t->f, mfiles, 3, on_mtime, &rm, NULL), 0);
    assert_int_equal(fscheck_exists(t->f, g, on_exists, &rb, NULL), 0);
    assert_int_equal(fscheck_in_flight(t->f, A), 1);
    assert_int_equal(fscheck_in_flight(t->f, B), 1);

    result *rs[] = {&ra[0], &ra[1], &ra[2], &ra[3], &rm, &rb};
    run_until_called(t, rs, 6);
    uv_close((uv_handle_t *)&s.h, NULL);
    uv_run(&t->loop, UV_RUN_NOWAIT); /* finish closing the stack handle before it goes away */

    assert_int_equal(s.max[0], 1);
    assert_true(s.max[1] <= 1);
    assert_true(s.max[2] <= 1);
    /* B's request did not wait behind A's queue; A answered in the order asked. */
    assert_int_equal(rb.order, 1);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(ra[i].order, (int)i + 2);
    assert_true(ra[0].ok && ra[1].ok && ra[2].ok);
    assert_false(ra[3].ok);
    assert_string_equal(ra[3].why, "ENOENT");
    assert_int_equal(rm.mtime, UINT64_C(1600000009000));
    assert_int_equal(fscheck_in_flight(t->f, A), 0);
}

static void test_longest_root_is_the_mount_and_set_mounts_replaces_the_list(void **state)
{
    ctx *t = *state;
    t->f = fscheck_new(&t->loop, 10000);
    mkdir_rel(t, "a");
    mkdir_rel(t, "a/b");
    char a[P_MAX], ab[P_MAX], ab_slash[P_MAX], abc[P_MAX], abd[P_MAX], a_bc[P_MAX], x[P_MAX];
    pth(a, t, "a");
    pth(ab, t, "a/b");
    pth(ab_slash, t, "a/b/");
    pth(abc, t, "a/b/c");
    pth(abd, t, "a/b/d");
    pth(a_bc, t, "a/bc");
    pth(x, t, "x");
    const char *roots[] = {a, ab_slash};
    fscheck_set_mounts(t->f, roots, 2);
    fscheck_test_set_stat_delay(t->f, a, 30);
    fscheck_test_set_stat_delay(t->f, ab, 30);
    fscheck_test_set_stat_delay(t->f, "/", 30);

    result r1 = {0}, r2 = {0}, r3 = {0}, r4 = {0};
    assert_int_equal(fscheck_exists(t->f, abc, on_exists, &r1, NULL), 0);
    assert_int_equal(fscheck_in_flight(t->f, ab), 1);
    assert_int_equal(fscheck_in_flight(t->f, a), 0);
    assert_int_equal(fscheck_exists(t->f, a_bc, on_exists, &r2, NULL), 0);
    assert_int_equal(fscheck_in_flight(t->f, a), 1);
    assert_int_equal(fscheck_exists(t->f, x, on_exists, &r3, NULL), 0);
    assert_int_equal(fscheck_in_flight(t->f, "/"), 1);

    /* Drop a/b while its request runs: new paths below it now belong to a. */
    const char *only_a[] = {a};
    fscheck_set_mounts(t->f, only_a, 1);
    assert_int_equal(fscheck_in_flight(t->f, ab), 1);
    assert_int_equal(fscheck_exists(t->f, abd, on_exists, &r4, NULL), 0);
    assert_int_equal(fscheck_in_flight(t->f, a), 1); /* queued behind r2 */
    result *rs[] = {&r1, &r2, &r3, &r4};
    run_until_called(t, rs, 4);
    assert_true(r4.order > r2.order);
    assert_int_equal(fscheck_in_flight(t->f, ab), 0); /* retired once its request returned */
    assert_int_equal(fscheck_in_flight(t->f, a), 0);
}

/* ---- a hung mount ---- */

static void test_hung_stat_fails_its_mount_alone_until_it_returns(void **state)
{
    ctx *t = *state;
    t->f = fscheck_new(&t->loop, 100);
    mkdir_rel(t, "A");
    mkdir_rel(t, "B");
    touch_rel(t, "A/file", 1600000001, 0);
    touch_rel(t, "A/.anchor", 1600000000, 0);
    touch_rel(t, "B/file", 1600000002, 0);
    char A[P_MAX], B[P_MAX], afile[P_MAX], anchor[P_MAX], ashow[P_MAX], bfile[P_MAX];
    char want[P_MAX * 3];
    pth(A, t, "A");
    pth(B, t, "B");
    pth(afile, t, "A/file");
    pth(anchor, t, "A/.anchor");
    pth(ashow, t, "A/Show");
    pth(bfile, t, "B/file");
    const char *roots[] = {A, B};
    fscheck_set_mounts(t->f, roots, 2);
    fscheck_test_set_stat_delay(t->f, A, 400);

    result r1 = {0}, r2 = {0}, r3 = {0}, rb = {0};
    const char *anchors[] = {anchor};
    const char *files[] = {afile, bfile};
    /* r1 is in flight on A, r2 and r3 wait behind it, rb goes to B. */
    assert_int_equal(fscheck_exists(t->f, afile, on_exists, &r1, NULL), 0);
    assert_int_equal(fscheck_anchors(t->f, anchors, 1, ashow, on_anchor, &r2, NULL), 0);
    assert_int_equal(fscheck_newest_mtime(t->f, files, 2, on_mtime, &r3, NULL), 0);
    assert_int_equal(fscheck_exists(t->f, bfile, on_exists, &rb, NULL), 0);
    uint64_t t0 = uv_now(&t->loop);

    result *hung[] = {&r1, &r2, &r3, &rb};
    run_until_called(t, hung, 4);
    assert_true(rb.ok);
    assert_true(rb.order < r1.order); /* B did not wait for A */
    assert_false(r1.ok);
    snprintf(want, sizeof want, "mount %s: stat hung for ", A);
    assert_memory_equal(r1.why, want, strlen(want));
    assert_false(r2.ok);
    snprintf(want, sizeof want, "anchor %s: mount %s: stat hung for ", anchor, A);
    assert_memory_equal(r2.why, want, strlen(want));
    assert_int_equal(r3.mtime, UINT64_C(1600000002000)); /* A's file unknown, B's counts */
    assert_true(uv_now(&t->loop) - t0 >= 100);

    const char *failed[4] = {0};
    assert_int_equal(fscheck_failed_mounts(t->f, failed, 4), 1);
    assert_string_equal(failed[0], A);
    assert_int_equal(fscheck_in_flight(t->f, A), 1); /* the hung stat still occupies A */
    snprintf(want, sizeof want, "mount %s: stat of %s hung for", A, afile);
    assert_non_null(strstr(logbuf, want));

    /* While failed: a new check on A answers at once (before the hung stat returns) without
     * a new stat there; B still works. */
    result r4 = {0}, r5 = {0};
    assert_int_equal(fscheck_exists(t->f, afile, on_exists, &r4, NULL), 0);
    assert_int_equal(fscheck_exists(t->f, bfile, on_exists, &r5, NULL), 0);
    assert_int_equal(r4.calls, 0);
    result *during[] = {&r4, &r5};
    run_until_called(t, during, 2);
    assert_false(r4.ok);
    snprintf(want, sizeof want, "mount %s: stat hung for ", A);
    assert_memory_equal(r4.why, want, strlen(want));
    assert_true(r5.ok);
    assert_int_equal(fscheck_in_flight(t->f, A), 1);
    assert_int_equal(fscheck_failed_mounts(t->f, NULL, 0), 1);

    /* The hung stat returns: A is healthy again. */
    run_until_idle_mount(t, A);
    assert_true(uv_now(&t->loop) - t0 >= 400);
    assert_int_equal(fscheck_failed_mounts(t->f, failed, 4), 0);
    snprintf(want, sizeof want, "mount %s: the stat of %s returned after", A, afile);
    assert_non_null(strstr(logbuf, want));
    assert_non_null(strstr(logbuf, "healthy again"));
    fscheck_test_set_stat_delay(t->f, A, 0);
    result r6 = {0};
    assert_int_equal(fscheck_exists(t->f, afile, on_exists, &r6, NULL), 0);
    run_until_one(t, &r6);
    assert_true(r6.ok);
    assert_false(r6.has_why);
}

/* ---- cancel ---- */

static void test_canceled_check_never_calls_back(void **state)
{
    ctx *t = *state;
    t->f = fscheck_new(&t->loop, 10000);
    mkdir_rel(t, "A");
    touch_rel(t, "A/f", 1600000000, 0);
    char A[P_MAX], af[P_MAX], show[P_MAX];
    pth(A, t, "A");
    pth(af, t, "A/f");
    pth(show, t, "A/Show");
    const char *roots[] = {A};
    fscheck_set_mounts(t->f, roots, 1);
    fscheck_test_set_stat_delay(t->f, A, 30);

    result r1 = {0}, r2 = {0}, r3 = {0}, r4 = {0}, r5 = {0};
    fscheck_op *o1 = NULL, *o2 = NULL, *o4 = NULL, *o5 = NULL;
    const char *files[] = {af};
    assert_int_equal(fscheck_exists(t->f, af, on_exists, &r1, &o1), 0);           /* in flight */
    assert_int_equal(fscheck_newest_mtime(t->f, files, 1, on_mtime, &r2, &o2), 0); /* queued */
    assert_int_equal(fscheck_exists(t->f, af, on_exists, &r3, NULL), 0);           /* queued */
    assert_int_equal(fscheck_anchors(t->f, NULL, 0, show, on_anchor, &r4, &o4), 0); /* answered */
    assert_int_equal(fscheck_exists(t->f, af, on_exists, &r5, &o5), 0);
    assert_non_null(o1);
    fscheck_cancel(o1);
    fscheck_cancel(o2);
    fscheck_cancel(o4);
    /* The canceled stat still runs to its end: the mount stays occupied until it returns. */
    assert_int_equal(fscheck_in_flight(t->f, A), 1);
    r5.op = o5; /* cancels itself from its callback: ignored */
    result *rs[] = {&r3, &r5};
    run_until_called(t, rs, 2);
    run_until_idle_mount(t, A);
    assert_int_equal(r1.calls + r2.calls + r4.calls, 0);
    assert_int_equal(r3.calls, 1);
    assert_int_equal(r5.calls, 1);
    assert_true(r3.ok);
}

/* ---- close ---- */

static void test_close_with_stats_in_flight_calls_done_and_no_callback(void **state)
{
    ctx *t = *state;
    t->f = fscheck_new(&t->loop, 10000);
    mkdir_rel(t, "slow");
    touch_rel(t, "f", 1600000000, 0);
    char slow[P_MAX], sf[P_MAX], f[P_MAX];
    pth(slow, t, "slow");
    pth(sf, t, "slow/f");
    pth(f, t, "f");
    const char *roots[] = {slow};
    fscheck_set_mounts(t->f, roots, 1);
    fscheck_test_set_stat_delay(t->f, slow, 60000); /* would take a minute */

    result r[5] = {{0}};
    const char *files[] = {f, sf};
    /* r0: a real stat in flight on "/", r1 queued behind it, r2 delayed on slow, r3 queued
     * behind it, r4 answered and waiting for the next turn. */
    assert_int_equal(fscheck_exists(t->f, f, on_exists, &r[0], NULL), 0);
    assert_int_equal(fscheck_newest_mtime(t->f, files, 2, on_mtime, &r[1], NULL), 0);
    assert_int_equal(fscheck_exists(t->f, sf, on_exists, &r[2], NULL), 0);
    assert_int_equal(fscheck_exists(t->f, sf, on_exists, &r[3], NULL), 0);
    assert_int_equal(fscheck_anchors(t->f, NULL, 0, f, on_anchor, &r[4], NULL), 0);
    int done = 0;
    uint64_t t0 = uv_now(&t->loop);
    fscheck_close(t->f, on_done, &done);
    t->f = NULL;
    assert_int_equal(done, 0); /* later, not inside the call */
    uv_run(&t->loop, UV_RUN_DEFAULT);
    uv_update_time(&t->loop);
    assert_int_equal(done, 1);
    assert_true(uv_now(&t->loop) - t0 < 30000); /* did not wait for the slow mount */
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(r[i].calls, 0);
}

static void test_close_from_a_callback_drops_the_other_answers(void **state)
{
    ctx *t = *state;
    t->f = fscheck_new(&t->loop, 10000);
    char p[P_MAX];
    pth(p, t, "x");
    int done = 0;
    result r1 = {0}, r2 = {0}, r3 = {0};
    r1.close_f = t->f;
    r1.done_calls = &done;
    assert_int_equal(fscheck_anchors(t->f, NULL, 0, p, on_anchor, &r1, NULL), 0);
    assert_int_equal(fscheck_anchors(t->f, NULL, 0, p, on_anchor, &r2, NULL), 0);
    assert_int_equal(fscheck_exists(t->f, p, on_exists, &r3, NULL), 0);
    t->f = NULL; /* r1's callback closes it */
    uv_run(&t->loop, UV_RUN_DEFAULT);
    assert_int_equal(r1.calls, 1);
    assert_int_equal(r2.calls, 0);
    assert_int_equal(r3.calls, 0);
    assert_int_equal(done, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_newest_mtime_is_the_latest_file_in_wall_ms, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_missing_file_counts_as_unknown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_anchors_present_answer_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_anchor_holds_with_its_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_anchor_below_a_file_is_enotdir_and_counts_as_missing,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_anchor_error_other_than_missing_holds_with_the_error,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_anchor_outside_the_paths_tree_is_ignored, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_exists_answers_with_the_errno_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_request_in_flight_per_mount_in_fifo_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_longest_root_is_the_mount_and_set_mounts_replaces_the_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hung_stat_fails_its_mount_alone_until_it_returns,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_canceled_check_never_calls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_with_stats_in_flight_calls_done_and_no_callback,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_from_a_callback_drops_the_other_answers, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
