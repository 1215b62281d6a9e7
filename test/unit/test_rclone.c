/* test_rclone.c: the rclone step: classification of every kind of answer, the exact requests and
 * the walk-up against a scripted RC server, then the same against a real rclone (serve http --rc). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "rclone.h"
#include "util.h"
#include "test_httpd.h"

#define VAR_AUTH "RCLONE_RC_USER/RCLONE_RC_PASS"

/* ---- classification -------------------------------------------------------------------- */

static httpc_result mk(httpc_error e, long status, const char *body)
{
    httpc_result r;
    memset(&r, 0, sizeof r);
    r.error = e;
    r.status = status;
    r.body = body ? body : "";
    r.body_len = strlen(r.body);
    r.message = e == HTTPC_OK ? "ok" : "Failed to connect to 127.0.0.1 port 5572";
    return r;
}

typedef struct cls {
    rclone_status st;
    int missing;
    const char *variable;
    char msg[512];
} cls;

static cls classify(httpc_error e, long status, const char *body, const char *key)
{
    cls c;
    memset(&c, 0, sizeof c);
    httpc_result r = mk(e, status, body);
    c.missing = -1;
    c.st = rclone_classify(&r, key, &c.missing, c.msg, sizeof c.msg, &c.variable);
    return c;
}

static void test_transport_errors_are_transient(void **state)
{
    (void)state;
    httpc_error errs[] = {HTTPC_ERR_CONNECT, HTTPC_ERR_DNS, HTTPC_ERR_TIMEOUT, HTTPC_ERR_TOO_BIG, HTTPC_ERR_PROTOCOL};
    for (size_t i = 0; i < ARRAY_SIZE(errs); i++) {
        cls c = classify(errs[i], 0, NULL, "tv/Show");
        assert_int_equal(c.st, RCLONE_RES_TRANSIENT);
        assert_int_equal(c.missing, 0);
        assert_null(c.variable);
        assert_non_null(strstr(c.msg, "127.0.0.1 port 5572"));
    }
}

static void test_429_408_and_plain_5xx_are_transient(void **state)
{
    (void)state;
    assert_int_equal(classify(HTTPC_OK, 429, "slow down", "a").st, RCLONE_RES_TRANSIENT);
    assert_int_equal(classify(HTTPC_OK, 408, "", "a").st, RCLONE_RES_TRANSIENT);
    assert_int_equal(classify(HTTPC_OK, 503, "<html>bad gateway</html>", "a").st, RCLONE_RES_TRANSIENT);
    cls c = classify(HTTPC_OK, 500, "{\"error\":\"failed to read directory: i/o error\",\"status\":500}", "a");
    assert_int_equal(c.st, RCLONE_RES_TRANSIENT);
    assert_null(c.variable);
    assert_non_null(strstr(c.msg, "HTTP 500"));
    assert_non_null(strstr(c.msg, "failed to read directory: i/o error"));
}

static void test_auth_failures_park_on_the_credentials(void **state)
{
    (void)state;
    cls c = classify(HTTPC_OK, 401, "Unauthorized\nby the proxy\n", "a");
    assert_int_equal(c.st, RCLONE_RES_CONFIG);
    assert_string_equal(c.variable, VAR_AUTH);
    assert_non_null(strstr(c.msg, "Unauthorized\\nby the proxy")); /* escaped */
    assert_null(strstr(c.msg, "proxy\\n")); /* the final line break is dropped */

    c = classify(HTTPC_OK, 403,
                 "{\"error\":\"authentication must be set up on the rc server to use \\\"vfs/forget\\\" or the "
                 "--rc-no-auth flag must be in use\",\"status\":403}",
                 NULL);
    assert_int_equal(c.st, RCLONE_RES_CONFIG);
    assert_string_equal(c.variable, "RCLONE_RC_USER/RCLONE_RC_PASS (rclone needs --rc-user/--rc-pass or --rc-no-auth)");
    assert_non_null(strstr(c.msg, "authentication must be set up"));

    c = classify(HTTPC_OK, 403, "Forbidden", "a");
    assert_int_equal(c.st, RCLONE_RES_CONFIG);
    assert_string_equal(c.variable, VAR_AUTH);
}

static void test_404_and_redirects_park_on_the_url(void **state)
{
    (void)state;
    cls c = classify(HTTPC_OK, 404, "{\"error\":\"couldn't find method \\\"nope\\\"\",\"status\":404}", "a");
    assert_int_equal(c.st, RCLONE_RES_CONFIG);
    assert_string_equal(c.variable, "RCLONE_RC_URL");
    assert_non_null(strstr(c.msg, "couldn't find method \"nope\""));
    c = classify(HTTPC_OK, 302, "", "a");
    assert_int_equal(c.st, RCLONE_RES_CONFIG);
    assert_string_equal(c.variable, "RCLONE_RC_URL");
}

static void test_vfs_selection_errors_park_on_fs(void **state)
{
    (void)state;
    const char *bodies[] = {
        "{\"error\":\"no VFS found with name \\\"nope:\\\"\",\"status\":500}",
        "{\"error\":\"more than one VFS active - need \\\"fs\\\" parameter\",\"status\":500}",
        "{\"error\":\"more than one VFS active with name \\\"x\\\"\",\"status\":500}",
        "{\"error\":\"no VFS active and \\\"fs\\\" parameter not supplied\",\"status\":500}",
        "{\"error\":\"unknown key \\\"fs\\\"\",\"status\":500}",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bodies); i++) {
        cls c = classify(HTTPC_OK, 500, bodies[i], "tv/Show");
        assert_int_equal(c.st, RCLONE_RES_CONFIG);
        assert_string_equal(c.variable, "RCLONE_FS");
    }
}

static void test_unsupported_charset_is_a_config_error(void **state)
{
    (void)state;
    cls c = classify(HTTPC_OK, 400, "{\"error\":\"unsupported charset \\\"latin1\\\"\",\"status\":400}", "a");
    assert_int_equal(c.st, RCLONE_RES_CONFIG);
    assert_non_null(c.variable);
    assert_non_null(strstr(c.msg, "unsupported charset"));
}

static void test_refresh_result_values(void **state)
{
    (void)state;
    cls c = classify(HTTPC_OK, 200, "{\n\t\"result\": {\n\t\t\"tv/Show\": \"OK\"\n\t}\n}", "tv/Show");
    assert_int_equal(c.st, RCLONE_RES_OK);
    assert_int_equal(c.missing, 0);

    c = classify(HTTPC_OK, 200, "{\"result\":{\"tv/Show\":\"file does not exist\"}}", "tv/Show");
    assert_int_equal(c.st, RCLONE_RES_ABSENT);
    assert_int_equal(c.missing, 1);
    assert_null(c.variable);

    c = classify(HTTPC_OK, 200, "{\"result\":{\"tv/Show\":\"invalid argument\"}}", "tv/Show");
    assert_int_equal(c.st, RCLONE_RES_TRANSIENT);
    assert_int_equal(c.missing, 0);
    assert_non_null(strstr(c.msg, "invalid argument"));

    c = classify(HTTPC_OK, 200, "{\"result\":{\"\":\"OK\"}}", "");
    assert_int_equal(c.st, RCLONE_RES_OK);

    /* The one entry is ours even when rclone re-spelled the key. */
    c = classify(HTTPC_OK, 200, "{\"result\":{\"tv/Sh\\ufffdw\":\"OK\"}}", "tv/Sh\xffw");
    assert_int_equal(c.st, RCLONE_RES_OK);

    c = classify(HTTPC_OK, 200, "{\"result\":{\"a\":\"OK\",\"b\":\"OK\"}}", "tv/Show");
    assert_int_equal(c.st, RCLONE_RES_TRANSIENT);
    c = classify(HTTPC_OK, 200, "{\"forgotten\":[]}", "tv/Show");
    assert_int_equal(c.st, RCLONE_RES_TRANSIENT);
    c = classify(HTTPC_OK, 200, "<html>not json", "tv/Show");
    assert_int_equal(c.st, RCLONE_RES_TRANSIENT);
    c = classify(HTTPC_OK, 200, "{\"result\":{\"tv/Show\":true}}", "tv/Show");
    assert_int_equal(c.st, RCLONE_RES_TRANSIENT);
}

static void test_forget_answer_is_ok_on_any_2xx(void **state)
{
    (void)state;
    assert_int_equal(classify(HTTPC_OK, 200, "{\"forgotten\":[\"tv/Show\"]}", NULL).st, RCLONE_RES_OK);
    assert_int_equal(classify(HTTPC_OK, 200, "", NULL).st, RCLONE_RES_OK);
}

static void test_messages_are_escaped_and_bounded(void **state)
{
    (void)state;
    char body[4096];
    memset(body, 'z', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    memcpy(body, "evil\n<0>forged\x1b[31m", 19);
    cls c = classify(HTTPC_OK, 502, body, "a");
    assert_int_equal(c.st, RCLONE_RES_TRANSIENT);
    assert_null(strchr(c.msg, '\n'));
    assert_null(strchr(c.msg, '\x1b'));
    assert_non_null(strstr(c.msg, "evil\\n<0>forged\\x1b[31m"));
    assert_true(strlen(c.msg) < 400);
    assert_non_null(strstr(c.msg, "..."));

    /* Every out-parameter may be NULL. */
    httpc_result r = mk(HTTPC_OK, 200, "{\"result\":{\"a\":\"file does not exist\"}}");
    assert_int_equal(rclone_classify(&r, "a", NULL, NULL, 0, NULL), RCLONE_RES_ABSENT);
}

/* ---- scripted RC server ---------------------------------------------------------------- */

typedef struct step {
    const char *target;   /* expected request target */
    const char *body;     /* expected request body, exactly */
    int status;           /* answer */
    const char *answer;
} step;

typedef struct fx {
    uv_loop_t loop;
    httpc_t *h;
    thd_server *srv;
    bool closed;
    char base[128];
    const step *script;
    size_t n_script;
    size_t seen;
    bool hold;            /* don't answer */
    char heads[8][1024];
    /* result */
    bool done;
    int calls;
    rclone_status st;
    char msg[1024];
    char variable[256];
} fx;

static void script_handler(void *ud, thd_conn *c, const thd_request *r)
{
    fx *f = ud;
    if (f->seen < ARRAY_SIZE(f->heads))
        snprintf(f->heads[f->seen], sizeof f->heads[0], "%.*s", (int)r->head_len, r->head);
    if (f->seen >= f->n_script) {
        fail_msg("unexpected request %zu: %s %.*s", f->seen, r->target, (int)r->body_len, r->body);
    }
    const step *s = &f->script[f->seen++];
    assert_string_equal(r->method, "POST");
    assert_string_equal(r->target, s->target);
    char body[1024];
    snprintf(body, sizeof body, "%.*s", (int)r->body_len, r->body);
    assert_string_equal(body, s->body);
    if (f->hold)
        return;
    thd_respond(c, s->status, "application/json", "", s->answer, strlen(s->answer));
}

static int fx_setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->h = httpc_new(&f->loop);
    f->srv = thd_start(&f->loop, script_handler, f);
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", f->srv->port);
    *state = f;
    return 0;
}

static void on_closed(void *ud)
{
    ((fx *)ud)->closed = true;
}

static int fx_teardown(void **state)
{
    fx *f = *state;
    if (f->h)
        httpc_close(f->h, on_closed, f);
    if (f->srv)
        thd_stop(f->srv);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_true(f->closed);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

static void on_done(void *ud, const rclone_result *r)
{
    fx *f = ud;
    f->done = true;
    f->calls++;
    f->st = r->status;
    assert_non_null(r->message);
    snprintf(f->msg, sizeof f->msg, "%s", r->message);
    snprintf(f->variable, sizeof f->variable, "%s", r->variable ? r->variable : "");
}

static void run_script(fx *f, const step *script, size_t n, cfg_mount *m, const char *dir)
{
    f->script = script;
    f->n_script = n;
    rclone_op *op = NULL;
    assert_int_equal(rclone_refresh_folder(f->h, m, dir, 5000, on_done, f, &op), 0);
    assert_non_null(op);
    assert_false(f->done);
    assert_true(thd_run_until(&f->loop, &f->done, 10000));
    assert_int_equal(f->calls, 1);
    assert_int_equal(f->seen, n);
}

#define MISSING(d) "{\"result\":{\"" d "\":\"file does not exist\"}}"
#define OKRES(d) "{\"result\":{\"" d "\":\"OK\"}}"

static void test_walk_up_refreshes_parents_then_the_folder_again(void **state)
{
    fx *f = *state;
    static const step script[] = {
        {"/vfs/forget", "{\"dir\":\"tv/New Show/Season 01\",\"fs\":\"gdrive:media\"}", 200, "{\"forgotten\":[]}"},
        {"/vfs/refresh", "{\"dir\":\"tv/New Show/Season 01\",\"recursive\":\"true\",\"fs\":\"gdrive:media\"}", 200,
         MISSING("tv/New Show/Season 01")},
        {"/vfs/refresh", "{\"dir\":\"tv/New Show\",\"fs\":\"gdrive:media\"}", 200, MISSING("tv/New Show")},
        {"/vfs/refresh", "{\"dir\":\"tv\",\"fs\":\"gdrive:media\"}", 200, OKRES("tv")},
        {"/vfs/refresh", "{\"dir\":\"tv/New Show/Season 01\",\"recursive\":\"true\",\"fs\":\"gdrive:media\"}", 200,
         OKRES("tv/New Show/Season 01")},
    };
    char url[160];
    snprintf(url, sizeof url, "%s/", f->base); /* a trailing '/' must not double up */
    cfg_mount m = {.root = "/mnt/media", .url = url, .fs = "gdrive:media"};
    run_script(f, script, ARRAY_SIZE(script), &m, "/tv/New Show/Season 01/");
    assert_int_equal(f->st, RCLONE_RES_OK);
    assert_non_null(strstr(f->msg, "after refreshing 'tv'"));
    for (size_t i = 0; i < ARRAY_SIZE(script); i++) {
        assert_non_null(strstr(f->heads[i], "\r\nContent-Type: application/json\r\n"));
        assert_null(strstr(f->heads[i], "charset"));
        assert_null(strstr(f->heads[i], "Authorization"));
        assert_null(strstr(f->heads[i], "Expect"));
    }
}

static void test_still_missing_after_walking_to_the_root_is_absent(void **state)
{
    fx *f = *state;
    static const step script[] = {
        {"/vfs/forget", "{\"dir\":\"movies/Gone (2001)\"}", 200, "{\"forgotten\":[\"movies/Gone (2001)\"]}"},
        {"/vfs/refresh", "{\"dir\":\"movies/Gone (2001)\",\"recursive\":\"true\"}", 200, MISSING("movies/Gone (2001)")},
        {"/vfs/refresh", "{\"dir\":\"movies\"}", 200, MISSING("movies")},
        {"/vfs/refresh", "{}", 200, OKRES("")},
        {"/vfs/refresh", "{\"dir\":\"movies/Gone (2001)\",\"recursive\":\"true\"}", 200, MISSING("movies/Gone (2001)")},
    };
    cfg_mount m = {.root = "/mnt", .url = f->base};
    run_script(f, script, ARRAY_SIZE(script), &m, "movies/Gone (2001)");
    assert_int_equal(f->st, RCLONE_RES_ABSENT);
    assert_non_null(strstr(f->msg, "the mount root"));
}

static void test_root_is_refreshed_without_dir_and_never_forgotten(void **state)
{
    fx *f = *state;
    static const step script[] = {
        {"/vfs/refresh", "{}", 200, OKRES("")},
    };
    cfg_mount m = {.root = "/mnt", .url = f->base, .user = "rc", .pass = "secret"};
    run_script(f, script, ARRAY_SIZE(script), &m, "/");
    assert_int_equal(f->st, RCLONE_RES_OK);
    assert_non_null(strstr(f->heads[0], "\r\nAuthorization: Basic cmM6c2VjcmV0\r\n"));
    assert_null(strstr(f->msg, "secret"));
}

static void test_one_component_folder_is_refreshed_without_recursive(void **state)
{
    fx *f = *state;
    static const step script[] = {
        {"/vfs/forget", "{\"dir\":\"movies\"}", 200, "{\"forgotten\":[]}"},
        {"/vfs/refresh", "{\"dir\":\"movies\"}", 200, OKRES("movies")},
    };
    cfg_mount m = {.root = "/mnt", .url = f->base};
    run_script(f, script, ARRAY_SIZE(script), &m, "movies");
    assert_int_equal(f->st, RCLONE_RES_OK);
}

static void test_error_mid_way_stops_and_names_the_variable(void **state)
{
    fx *f = *state;
    static const step script[] = {
        {"/vfs/forget", "{\"dir\":\"tv/Show\",\"fs\":\"nope:\"}", 500,
         "{\"error\":\"no VFS found with name \\\"nope:\\\"\",\"path\":\"vfs/forget\",\"status\":500}"},
    };
    cfg_mount m = {.root = "/mnt", .url = f->base, .fs = "nope:"};
    run_script(f, script, ARRAY_SIZE(script), &m, "tv/Show");
    assert_int_equal(f->st, RCLONE_RES_CONFIG);
    assert_string_equal(f->variable, "RCLONE_FS");
    assert_non_null(strstr(f->msg, "vfs/forget 'tv/Show'"));
    assert_non_null(strstr(f->msg, "no VFS found"));
}

static void test_odd_refresh_value_is_transient(void **state)
{
    fx *f = *state;
    static const step script[] = {
        {"/vfs/forget", "{\"dir\":\"tv/Show/S01\"}", 200, "{\"forgotten\":[]}"},
        {"/vfs/refresh", "{\"dir\":\"tv/Show/S01\",\"recursive\":\"true\"}", 200,
         "{\"result\":{\"tv/Show/S01\":\"invalid argument\"}}"},
    };
    cfg_mount m = {.root = "/mnt", .url = f->base};
    run_script(f, script, ARRAY_SIZE(script), &m, "tv/Show/S01");
    assert_int_equal(f->st, RCLONE_RES_TRANSIENT);
    assert_non_null(strstr(f->msg, "invalid argument"));
}

static void on_must_not_run(void *ud, const rclone_result *r)
{
    (void)ud;
    (void)r;
    fail_msg("callback ran for a cancelled op");
}

static void test_cancel_in_flight_runs_no_callback(void **state)
{
    fx *f = *state;
    static const step script[] = {
        {"/vfs/forget", "{\"dir\":\"tv/Show\"}", 200, ""},
    };
    f->script = script;
    f->n_script = 1;
    f->hold = true;
    cfg_mount m = {.root = "/mnt", .url = f->base};
    rclone_op *op = NULL;
    assert_int_equal(rclone_refresh_folder(f->h, &m, "tv/Show", 5000, on_must_not_run, f, &op), 0);
    bool never = false;
    thd_run_until(&f->loop, &never, 200);
    assert_int_equal(f->seen, 1);
    rclone_cancel(op);
    assert_int_equal(httpc_in_flight(f->h), 0);
}

static void test_op_aborted_by_httpc_close_is_freed_by_cancel(void **state)
{
    fx *f = *state;
    static const step script[] = {
        {"/vfs/forget", "{\"dir\":\"tv/Show\"}", 200, ""},
    };
    f->script = script;
    f->n_script = 1;
    f->hold = true;
    cfg_mount m = {.root = "/mnt", .url = f->base};
    rclone_op *op = NULL;
    assert_int_equal(rclone_refresh_folder(f->h, &m, "tv/Show", 5000, on_must_not_run, f, &op), 0);
    bool never = false;
    thd_run_until(&f->loop, &never, 200);
    httpc_close(f->h, on_closed, f);
    f->h = NULL;
    rclone_cancel(op); /* no leak, no use of the closed client */
}

static void test_bad_arguments_are_refused(void **state)
{
    fx *f = *state;
    cfg_mount m = {.root = "/mnt", .url = NULL};
    rclone_op *op = (rclone_op *)1;
    assert_int_equal(rclone_refresh_folder(f->h, &m, "tv", 5000, on_must_not_run, f, &op), -EINVAL);
    assert_null(op);
}

/* ---- real rclone ------------------------------------------------------------------------- */

typedef struct real_rclone {
    bool available;
    char why[256];
    pid_t pid;
    char tmp[64];
    char root[128];
    int rc_port;
    int http_port;
} real_rclone;

static real_rclone RR;

static bool find_on_path(const char *name, char *out, size_t outlen)
{
    const char *path = getenv("PATH");
    if (!path)
        return false;
    for (const char *d = path; *d;) {
        const char *end = strchr(d, ':');
        size_t n = end ? (size_t)(end - d) : strlen(d);
        snprintf(out, outlen, "%.*s/%s", (int)n, d, name);
        if (n > 0 && access(out, X_OK) == 0)
            return true;
        d += n + (end ? 1 : 0);
    }
    return false;
}

static void mkdirs(const char *base, const char *rel)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", base, rel);
    for (char *s = p + strlen(base) + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            mkdir(p, 0755);
            *s = '/';
        }
    mkdir(p, 0755);
}

static void touch(const char *base, const char *rel)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", base, rel);
    int fd = open(p, O_CREAT | O_WRONLY, 0644);
    assert_true(fd >= 0);
    close(fd);
}

static bool port_open(int port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = connect(s, (struct sockaddr *)&a, sizeof a) == 0;
    close(s);
    return ok;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int real_setup(void **state)
{
    (void)state;
    char exe[512];
    if (!find_on_path("rclone", exe, sizeof exe)) {
        snprintf(RR.why, sizeof RR.why, "rclone not found on PATH");
        return 0;
    }
    snprintf(RR.tmp, sizeof RR.tmp, "/tmp/pss-rclone-XXXXXX");
    assert_non_null(mkdtemp(RR.tmp));
    snprintf(RR.root, sizeof RR.root, "%s/root", RR.tmp);
    assert_int_equal(mkdir(RR.root, 0755), 0);
    mkdirs(RR.root, "tv/Show/Season 01");
    mkdirs(RR.root, "movies/Heat (1995)");
    touch(RR.root, "tv/Show/Season 01/Show - S01E01.mkv");
    RR.rc_port = thd_refused_port();
    do
        RR.http_port = thd_refused_port();
    while (RR.http_port == RR.rc_port);

    char rc_addr[64], http_addr[64], conf[128], logf[128];
    snprintf(rc_addr, sizeof rc_addr, "127.0.0.1:%d", RR.rc_port);
    snprintf(http_addr, sizeof http_addr, "127.0.0.1:%d", RR.http_port);
    snprintf(conf, sizeof conf, "%s/rclone.conf", RR.tmp);
    snprintf(logf, sizeof logf, "%s/rclone.log", RR.tmp);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive a crashed test */
        int fd = open(logf, O_CREAT | O_WRONLY | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        setenv("RCLONE_CONFIG", conf, 1);
        execl(exe, "rclone", "serve", "http", RR.root, "--addr", http_addr, "--rc", "--rc-addr", rc_addr,
              "--rc-no-auth", "--dir-cache-time", "1h", (char *)NULL);
        _exit(127);
    }
    RR.pid = pid;
    for (int i = 0; i < 150; i++) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            RR.pid = 0;
            snprintf(RR.why, sizeof RR.why, "rclone exited at start (see %s)", logf);
            return 0;
        }
        if (port_open(RR.rc_port) && port_open(RR.http_port)) {
            RR.available = true;
            return 0;
        }
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    snprintf(RR.why, sizeof RR.why, "rclone did not start listening within 15 s");
    return 0;
}

static int real_teardown(void **state)
{
    (void)state;
    if (RR.pid > 0) {
        kill(RR.pid, SIGTERM);
        waitpid(RR.pid, NULL, 0);
    }
    if (RR.tmp[0])
        nftw(RR.tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static int real_fx_setup(void **state)
{
    fx_setup(state);
    fx *f = *state;
    thd_stop(f->srv); /* the scripted server is not used here */
    f->srv = NULL;
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", RR.rc_port);
    return 0;
}

static void need_rclone(void)
{
    if (!RR.available) {
        print_message("skipped: %s\n", RR.why);
        skip();
    }
}

typedef struct raw {
    bool done;
    long status;
    char body[16384];
} raw;

static void on_raw(void *ud, const httpc_result *res)
{
    raw *r = ud;
    r->done = true;
    r->status = res->error == HTTPC_OK ? res->status : -1;
    snprintf(r->body, sizeof r->body, "%s", res->body);
}

static void raw_call(fx *f, const char *method, const char *url, const char *body, raw *r)
{
    static const char *const headers[] = {"Content-Type: application/json", NULL};
    httpc_opts o = {.method = method, .url = url, .headers = body ? headers : NULL, .body = body,
                    .body_len = body ? strlen(body) : 0, .timeout_ms = 10000};
    memset(r, 0, sizeof *r);
    assert_int_equal(httpc_request(f->h, &o, on_raw, r, NULL), 0);
    assert_true(thd_run_until(&f->loop, &r->done, 15000));
}

/* Read the whole tree into rclone's directory cache (which then holds for --dir-cache-time). */
static void prime_cache(fx *f)
{
    char url[160];
    raw r;
    snprintf(url, sizeof url, "%s/vfs/refresh", f->base);
    raw_call(f, "POST", url, "{\"recursive\":\"true\"}", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"OK\""));
}

/* What rclone's VFS lists for dir (served over its HTTP side, through the same cache). */
static void vfs_listing(fx *f, const char *dir_encoded, raw *r)
{
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/%s", RR.http_port, dir_encoded);
    raw_call(f, "GET", url, NULL, r);
}

static void refresh(fx *f, cfg_mount *m, const char *dir)
{
    f->done = false;
    f->calls = 0;
    rclone_op *op = NULL;
    assert_int_equal(rclone_refresh_folder(f->h, m, dir, 15000, on_done, f, &op), 0);
    assert_true(thd_run_until(&f->loop, &f->done, 20000));
    assert_int_equal(f->calls, 1);
}

static void test_real_listed_folder_refreshes_ok(void **state)
{
    need_rclone();
    fx *f = *state;
    prime_cache(f);
    cfg_mount m = {.root = RR.root, .url = f->base};
    refresh(f, &m, "tv/Show/Season 01"); /* two components: "recursive": "true" */
    assert_int_equal(f->st, RCLONE_RES_OK);
    refresh(f, &m, "tv");
    assert_int_equal(f->st, RCLONE_RES_OK);
}

static void test_real_new_folder_becomes_visible_through_the_walk_up(void **state)
{
    need_rclone();
    fx *f = *state;
    prime_cache(f);
    mkdirs(RR.root, "tv/New Show/Season 01");
    touch(RR.root, "tv/New Show/Season 01/New Show - S01E01.mkv");
    raw r;
    vfs_listing(f, "tv/", &r);
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.body, "New%20Show")); /* rclone's cached listing does not know it yet */

    cfg_mount m = {.root = RR.root, .url = f->base};
    refresh(f, &m, "tv/New Show/Season 01");
    assert_int_equal(f->st, RCLONE_RES_OK);
    assert_non_null(strstr(f->msg, "after refreshing 'tv'"));

    vfs_listing(f, "tv/", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "New%20Show"));
    vfs_listing(f, "tv/New%20Show/Season%2001/", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "S01E01.mkv"));
}

static void test_real_missing_folder_is_absent(void **state)
{
    need_rclone();
    fx *f = *state;
    prime_cache(f);
    cfg_mount m = {.root = RR.root, .url = f->base};
    refresh(f, &m, "tv/Nope/Season 01");
    assert_int_equal(f->st, RCLONE_RES_ABSENT);
    refresh(f, &m, "Nope At Root");
    assert_int_equal(f->st, RCLONE_RES_ABSENT);
    assert_non_null(strstr(f->msg, "the mount root"));
}

static void test_real_root_refreshes_ok(void **state)
{
    need_rclone();
    fx *f = *state;
    cfg_mount m = {.root = RR.root, .url = f->base};
    refresh(f, &m, "");
    assert_int_equal(f->st, RCLONE_RES_OK);
}

static void test_real_wrong_fs_is_a_config_error(void **state)
{
    need_rclone();
    fx *f = *state;
    cfg_mount m = {.root = RR.root, .url = f->base, .fs = "nope:"};
    refresh(f, &m, "tv/Show");
    assert_int_equal(f->st, RCLONE_RES_CONFIG);
    assert_string_equal(f->variable, "RCLONE_FS");
    refresh(f, &m, "");
    assert_int_equal(f->st, RCLONE_RES_CONFIG);
    assert_string_equal(f->variable, "RCLONE_FS");
}

static void test_real_right_fs_is_accepted(void **state)
{
    need_rclone();
    fx *f = *state;
    /* The VFS of a local path is named by the path itself. */
    cfg_mount m = {.root = RR.root, .url = f->base, .fs = RR.root};
    refresh(f, &m, "tv/Show");
    assert_int_equal(f->st, RCLONE_RES_OK);
}

static void test_real_wrong_url_is_a_config_error(void **state)
{
    need_rclone();
    fx *f = *state;
    char url[160];
    snprintf(url, sizeof url, "%s/not-rc", f->base);
    cfg_mount m = {.root = RR.root, .url = url};
    refresh(f, &m, "tv/Show");
    assert_int_equal(f->st, RCLONE_RES_CONFIG);
    assert_string_equal(f->variable, "RCLONE_RC_URL");
}

int main(void)
{
    const struct CMUnitTest classify_tests[] = {
        cmocka_unit_test(test_transport_errors_are_transient),
        cmocka_unit_test(test_429_408_and_plain_5xx_are_transient),
        cmocka_unit_test(test_auth_failures_park_on_the_credentials),
        cmocka_unit_test(test_404_and_redirects_park_on_the_url),
        cmocka_unit_test(test_vfs_selection_errors_park_on_fs),
        cmocka_unit_test(test_unsupported_charset_is_a_config_error),
        cmocka_unit_test(test_refresh_result_values),
        cmocka_unit_test(test_forget_answer_is_ok_on_any_2xx),
        cmocka_unit_test(test_messages_are_escaped_and_bounded),
    };
    const struct CMUnitTest scripted_tests[] = {
        cmocka_unit_test_setup_teardown(test_walk_up_refreshes_parents_then_the_folder_again, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_still_missing_after_walking_to_the_root_is_absent, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_root_is_refreshed_without_dir_and_never_forgotten, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_one_component_folder_is_refreshed_without_recursive, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_error_mid_way_stops_and_names_the_variable, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_odd_refresh_value_is_transient, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cancel_in_flight_runs_no_callback, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_op_aborted_by_httpc_close_is_freed_by_cancel, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments_are_refused, fx_setup, fx_teardown),
    };
    const struct CMUnitTest real_tests[] = {
        cmocka_unit_test_setup_teardown(test_real_listed_folder_refreshes_ok, real_fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_real_new_folder_becomes_visible_through_the_walk_up, real_fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_real_missing_folder_is_absent, real_fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_real_root_refreshes_ok, real_fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_real_wrong_fs_is_a_config_error, real_fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_real_right_fs_is_accepted, real_fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_real_wrong_url_is_a_config_error, real_fx_setup, fx_teardown),
    };
    int failed = cmocka_run_group_tests_name("classify", classify_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("scripted", scripted_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("real_rclone", real_tests, real_setup, real_teardown);
    return failed ? 1 : 0;
}
