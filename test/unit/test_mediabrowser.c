/* test_mediabrowser.c: Jellyfin and Emby calls: the exact auth header of each, the scan body, the
 * ScanPath fallback, statuses, the library list and cancellation at every step, against an
 * in-test server on the same loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <cjson/cJSON.h>

#include "mediabrowser.h"
#include "test_httpd.h"
#include "util.h"

#define TOKEN "0123abcd-Key"
#define MAX_STEPS 4

/* ---- classification -------------------------------------------------------------------- */

static mb_status cls(httpc_error e, long status)
{
    httpc_result r;
    memset(&r, 0, sizeof r);
    r.error = e;
    r.status = status;
    r.body = "";
    r.message = "x";
    return mb_classify(&r);
}

static void test_statuses_map_like_plex(void **state)
{
    (void)state;
    assert_int_equal(cls(HTTPC_OK, 200), MB_RES_OK);
    assert_int_equal(cls(HTTPC_OK, 204), MB_RES_OK);
    assert_int_equal(cls(HTTPC_OK, 401), MB_RES_AUTH);
    assert_int_equal(cls(HTTPC_OK, 403), MB_RES_AUTH);
    assert_int_equal(cls(HTTPC_OK, 404), MB_RES_NOT_FOUND);
    assert_int_equal(cls(HTTPC_OK, 408), MB_RES_TRANSIENT);
    assert_int_equal(cls(HTTPC_OK, 429), MB_RES_TRANSIENT);
    assert_int_equal(cls(HTTPC_OK, 503), MB_RES_TRANSIENT);
    assert_int_equal(cls(HTTPC_OK, 400), MB_RES_BAD);
    assert_int_equal(cls(HTTPC_OK, 302), MB_RES_BAD);
    assert_int_equal(cls(HTTPC_ERR_TLS, 0), MB_RES_BAD);
    assert_int_equal(cls(HTTPC_ERR_CONNECT, 0), MB_RES_TRANSIENT);
    assert_int_equal(cls(HTTPC_ERR_TIMEOUT, 0), MB_RES_TRANSIENT);
}

/* ---- server-backed --------------------------------------------------------------------- */

typedef struct step {
    int status;
    const char *body; /* NULL: hold the request (no answer) */
} step;

typedef struct seen {
    char method[16];
    char target[2048];
    char head[4096];
    char body[4096];
} seen;

typedef struct fx {
    uv_loop_t loop;
    httpc_t *h;
    thd_server *srv;
    bool closed;
    cfg_target t;
    char url[128];
    step script[MAX_STEPS];
    size_t n_script;
    seen req[MAX_STEPS];
    int requests;
    bool done;
    int calls;
    mb_result res;
    char msg[1024];
    char via[32];
    media_libraries libs;
    bool got_libs;
} fx;

static void handler(void *ud, thd_conn *c, const thd_request *r)
{
    fx *f = ud;
    int i = f->requests++;
    assert_true(i < MAX_STEPS);
    seen *s = &f->req[i];
    snprintf(s->method, sizeof s->method, "%s", r->method);
    snprintf(s->target, sizeof s->target, "%s", r->target);
    snprintf(s->head, sizeof s->head, "%.*s", (int)r->head_len, r->head);
    snprintf(s->body, sizeof s->body, "%.*s", (int)r->body_len, r->body);
    if ((size_t)i >= f->n_script || !f->script[i].body)
        return; /* held */
    const char *ctype = f->script[i].body[0] ? "application/json" : NULL;
    thd_respond(c, f->script[i].status, ctype, "", f->script[i].body, strlen(f->script[i].body));
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->h = httpc_new(&f->loop);
    f->srv = thd_start(&f->loop, handler, f);
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d/", f->srv->port); /* trailing '/' on purpose */
    f->t.name = "jf";
    f->t.kind = TARGET_JELLYFIN;
    f->t.url = f->url;
    f->t.token = TOKEN;
    f->t.token_var = "MEDIA_SERVERS (jf): token";
    f->t.origin = "MEDIA_SERVERS (jf)";
    f->t.timeout_ms = 5000;
    *state = f;
    return 0;
}

static void on_closed(void *ud)
{
    ((fx *)ud)->closed = true;
}

static int teardown(void **state)
{
    fx *f = *state;
    if (f->h)
        httpc_close(f->h, on_closed, f);
    thd_stop(f->srv);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_true(f->closed);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    media_libraries_free(&f->libs);
    free(f);
    return 0;
}

static void script(fx *f, const step *s, size_t n)
{
    if (n)
        memcpy(f->script, s, n * sizeof *s);
    f->n_script = n;
}

static void keep_result(fx *f, const mb_result *r)
{
    f->done = true;
    f->calls++;
    f->res = *r;
    assert_non_null(r->message);
    assert_non_null(r->via);
    snprintf(f->msg, sizeof f->msg, "%s", r->message);
    snprintf(f->via, sizeof f->via, "%s", r->via);
    f->res.message = f->msg;
    f->res.via = f->via;
    assert_null(strstr(r->message, TOKEN));
    assert_null(strchr(r->message, '\n'));
}

static void on_scan(void *ud, const mb_result *r)
{
    keep_result(ud, r);
}

static void scan(fx *f, const char *path, mb_update_type type)
{
    mb_op *op = NULL;
    assert_int_equal(mb_scan(f->h, &f->t, path, type, on_scan, f, &op), 0);
    assert_non_null(op);
    assert_false(f->done);
    assert_true(thd_run_until(&f->loop, &f->done, 10000));
    bool never = false;
    thd_run_until(&f->loop, &never, 50); /* a second request would show up now */
    assert_int_equal(f->calls, 1);
}

static bool has_header(const seen *s, const char *line)
{
    char want[512];
    snprintf(want, sizeof want, "\r\n%s\r\n", line);
    return strstr(s->head, want) != NULL;
}

static bool has_header_name(const seen *s, const char *name)
{
    char want[128];
    snprintf(want, sizeof want, "\r\n%s:", name);
    return strcasestr(s->head, want) != NULL;
}

static void test_jellyfin_scan_sends_only_the_mediabrowser_authorization(void **state)
{
    fx *f = *state;
    static const step ok[] = {{204, ""}};
    script(f, ok, 1);
    scan(f, "/media/tv/Am\xc3\xa9lie \"Q\" \\ 'x'", MB_UPDATE_CREATED);
    assert_int_equal(f->res.status, MB_RES_OK);
    assert_int_equal(f->res.http_status, 204);
    assert_string_equal(f->via, "Media/Updated");
    assert_int_equal(f->requests, 1);
    seen *s = &f->req[0];
    assert_string_equal(s->method, "POST");
    assert_string_equal(s->target, "/Library/Media/Updated");
    assert_true(has_header(s, "Authorization: MediaBrowser Token=\"" TOKEN "\""));
    assert_true(has_header(s, "Content-Type: application/json"));
    assert_true(has_header(s, "Accept: application/json"));
    assert_false(has_header_name(s, "X-Emby-Token"));
    assert_false(has_header_name(s, "X-MediaBrowser-Token"));
    assert_false(has_header_name(s, "X-Emby-Authorization"));
    assert_null(strstr(s->target, TOKEN));
    assert_string_equal(s->body, "{\"Updates\":[{\"Path\":\"/media/tv/Am\xc3\xa9lie \\\"Q\\\" \\\\ 'x'\","
                                 "\"UpdateType\":\"Created\"}]}");
}

static void test_emby_scan_sends_only_x_emby_token(void **state)
{
    fx *f = *state;
    f->t.kind = TARGET_EMBY;
    static const step ok[] = {{200, ""}};
    script(f, ok, 1);
    scan(f, "/m/Heat (1995)", MB_UPDATE_DELETED);
    assert_int_equal(f->res.status, MB_RES_OK);
    seen *s = &f->req[0];
    assert_true(has_header(s, "X-Emby-Token: " TOKEN));
    assert_false(has_header_name(s, "Authorization"));
    cJSON *j = cJSON_Parse(s->body);
    assert_non_null(j);
    const cJSON *u = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "Updates"), 0);
    assert_string_equal(cJSON_GetObjectItem(u, "Path")->valuestring, "/m/Heat (1995)");
    assert_string_equal(cJSON_GetObjectItem(u, "UpdateType")->valuestring, "Deleted");
    cJSON_Delete(j);
}

static void test_update_type_modified_is_spelled_as_the_api_wants(void **state)
{
    fx *f = *state;
    static const step ok[] = {{204, ""}};
    script(f, ok, 1);
    scan(f, "/m", MB_UPDATE_MODIFIED);
    assert_non_null(strstr(f->req[0].body, "\"UpdateType\":\"Modified\""));
}

static void test_scan_path_404_without_body_falls_back(void **state)
{
    fx *f = *state;
    f->t.scan_path = true;
    static const step s[] = {{404, ""}, {204, ""}};
    script(f, s, 2);
    scan(f, "/media/tv/Show", MB_UPDATE_CREATED);
    assert_int_equal(f->requests, 2);
    assert_string_equal(f->req[0].target, "/Library/ScanPath");
    assert_string_equal(f->req[0].method, "POST");
    assert_string_equal(f->req[0].body, "{\"Path\":\"/media/tv/Show\"}");
    assert_true(has_header(&f->req[0], "Authorization: MediaBrowser Token=\"" TOKEN "\""));
    assert_true(has_header(&f->req[0], "Content-Type: application/json"));
    assert_string_equal(f->req[1].target, "/Library/Media/Updated");
    assert_int_equal(f->res.status, MB_RES_OK);
    assert_string_equal(f->via, "Media/Updated");
}

static void test_scan_path_not_found_statuses_fall_back(void **state)
{
    fx *f = *state;
    f->t.scan_path = true;
    f->t.kind = TARGET_EMBY;
    static const step s[] = {{404, "{\"ItemId\":null,\"Status\":\"PathNotFound\",\"Message\":\"no\"}"}, {503, "busy"}};
    script(f, s, 2);
    scan(f, "/media/tv/New Show", MB_UPDATE_CREATED);
    assert_int_equal(f->requests, 2);
    assert_int_equal(f->res.status, MB_RES_TRANSIENT);
    assert_int_equal(f->res.http_status, 503);
    assert_string_equal(f->via, "Media/Updated");
    assert_true(has_header(&f->req[1], "X-Emby-Token: " TOKEN));

    static const step p[] = {{404, "{\"Status\":\"ParentNotFound\"}"}, {204, ""}};
    script(f, p, 2);
    f->requests = 0;
    f->calls = 0;
    f->done = false;
    scan(f, "/media/tv/New Show", MB_UPDATE_CREATED);
    assert_int_equal(f->requests, 2);
    assert_int_equal(f->res.status, MB_RES_OK);
}

static void test_scan_path_created_is_done_without_a_second_call(void **state)
{
    fx *f = *state;
    f->t.scan_path = true;
    static const step s[] = {{200, "{\"ItemId\":\"abc\",\"ItemName\":\"Show\",\"Status\":\"Created\"}"}};
    script(f, s, 1);
    scan(f, "/media/tv/Show", MB_UPDATE_CREATED);
    assert_int_equal(f->requests, 1);
    assert_int_equal(f->res.status, MB_RES_OK);
    assert_int_equal(f->res.http_status, 200);
    assert_string_equal(f->via, "ScanPath");
}

static void test_scan_path_failed_is_transient_and_other_refusals_decide(void **state)
{
    fx *f = *state;
    f->t.scan_path = true;
    static const step s[] = {{200, "{\"Status\":\"Failed\",\"Message\":\"disk\"}"}};
    script(f, s, 1);
    scan(f, "/media/tv/Show", MB_UPDATE_MODIFIED);
    assert_int_equal(f->requests, 1);
    assert_int_equal(f->res.status, MB_RES_TRANSIENT);
    assert_string_equal(f->via, "ScanPath");
    assert_non_null(strstr(f->msg, "failed"));

    static const step a[] = {{401, ""}};
    script(f, a, 1);
    f->requests = 0;
    f->calls = 0;
    f->done = false;
    scan(f, "/media/tv/Show", MB_UPDATE_MODIFIED);
    assert_int_equal(f->requests, 1); /* a refused key does not fall back */
    assert_int_equal(f->res.status, MB_RES_AUTH);
    assert_string_equal(f->via, "ScanPath");
}

static void test_401_is_auth_naming_the_token_variable(void **state)
{
    fx *f = *state;
    static const step s[] = {{401, "Unauthorized"}};
    script(f, s, 1);
    scan(f, "/m", MB_UPDATE_MODIFIED);
    assert_int_equal(f->res.status, MB_RES_AUTH);
    assert_int_equal(f->res.http_status, 401);
    assert_non_null(strstr(f->msg, "MEDIA_SERVERS (jf): token"));
    assert_non_null(strstr(f->msg, "Unauthorized"));
}

static void test_503_is_transient_and_no_answer_has_no_status(void **state)
{
    fx *f = *state;
    static const step s[] = {{503, "down"}};
    script(f, s, 1);
    scan(f, "/m", MB_UPDATE_MODIFIED);
    assert_int_equal(f->res.status, MB_RES_TRANSIENT);
    assert_int_equal(f->res.http_status, 503);

    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", thd_refused_port());
    f->t.url = url;
    f->calls = 0;
    f->done = false;
    scan(f, "/m", MB_UPDATE_MODIFIED);
    assert_int_equal(f->res.status, MB_RES_TRANSIENT);
    assert_int_equal(f->res.http_status, 0);
}

static void on_must_not_run(void *ud, const mb_result *r)
{
    (void)ud;
    (void)r;
    fail_msg("callback ran for a cancelled scan");
}

static void wait_for_requests(fx *f, int n)
{
    uint64_t end = uv_now(&f->loop) + 5000;
    bool never = false;
    while (f->requests < n && uv_now(&f->loop) < end)
        thd_run_until(&f->loop, &never, 20);
    assert_int_equal(f->requests, n);
}

static void test_cancel_in_either_step_runs_no_callback_and_leaks_nothing(void **state)
{
    fx *f = *state;
    f->t.scan_path = true;
    mb_op *op = NULL;
    /* In step one: ScanPath held. */
    script(f, NULL, 0);
    assert_int_equal(mb_scan(f->h, &f->t, "/m/a", MB_UPDATE_CREATED, on_must_not_run, f, &op), 0);
    wait_for_requests(f, 1);
    mb_cancel(op);
    assert_int_equal(httpc_in_flight(f->h), 0);
    /* In step two: ScanPath falls back, Media/Updated held. */
    static const step s[] = {{404, ""}, {204, NULL}};
    f->requests = 0;
    script(f, s, 2);
    assert_int_equal(mb_scan(f->h, &f->t, "/m/b", MB_UPDATE_CREATED, on_must_not_run, f, &op), 0);
    wait_for_requests(f, 2);
    assert_string_equal(f->req[1].target, "/Library/Media/Updated");
    mb_cancel(op);
    assert_int_equal(httpc_in_flight(f->h), 0);
    /* And one aborted by closing the client. */
    f->requests = 0;
    assert_int_equal(mb_scan(f->h, &f->t, "/m/c", MB_UPDATE_CREATED, on_must_not_run, f, &op), 0);
    httpc_close(f->h, on_closed, f);
    f->h = NULL;
}

static void on_list_must_not_run(void *ud, const mb_result *r, media_libraries *libs)
{
    (void)ud;
    (void)r;
    (void)libs;
    fail_msg("callback ran for a cancelled list");
}

static void test_bad_tokens_and_arguments_are_refused(void **state)
{
    fx *f = *state;
    mb_op *op = (mb_op *)1;
    char bad[][32] = {"a\"b", "a\r\nX-Injected: 1", "tab\there", "", "del\x7f"};
    for (size_t i = 0; i <= ARRAY_SIZE(bad); i++) {
        f->t.token = i < ARRAY_SIZE(bad) ? bad[i] : NULL;
        assert_int_equal(mb_scan(f->h, &f->t, "/m", MB_UPDATE_CREATED, on_must_not_run, f, &op), -EINVAL);
        assert_null(op);
        httpc_req *req = (httpc_req *)1;
        assert_int_equal(mb_list_libraries(f->h, &f->t, on_list_must_not_run, f, &req), -EINVAL);
        assert_null(req);
    }
    f->t.token = TOKEN;
    f->t.kind = TARGET_PLEX;
    assert_int_equal(mb_scan(f->h, &f->t, "/m", MB_UPDATE_CREATED, on_must_not_run, f, &op), -EINVAL);
    f->t.kind = TARGET_EMBY;
    assert_int_equal(mb_scan(f->h, &f->t, NULL, MB_UPDATE_CREATED, on_must_not_run, f, &op), -EINVAL);
    assert_int_equal(mb_scan(f->h, &f->t, "/m", (mb_update_type)7, on_must_not_run, f, &op), -EINVAL);
    f->t.url = NULL;
    assert_int_equal(mb_scan(f->h, &f->t, "/m", MB_UPDATE_CREATED, on_must_not_run, f, &op), -EINVAL);
    assert_int_equal(httpc_in_flight(f->h), 0);
    assert_int_equal(f->requests, 0);
}

/* ---- library list ---------------------------------------------------------------------- */

static void on_libraries(void *ud, const mb_result *r, media_libraries *libs)
{
    fx *f = ud;
    keep_result(f, r);
    f->got_libs = libs != NULL;
    if (r->status == MB_RES_OK) {
        assert_non_null(libs);
        assert_true(libs->fetched_at > 0);
        f->libs = *libs;
        memset(libs, 0, sizeof *libs);
    } else {
        assert_null(libs);
    }
}

static void list(fx *f)
{
    httpc_req *req = NULL;
    assert_int_equal(mb_probe(f->h, &f->t, on_libraries, f, &req), 0);
    assert_non_null(req);
    assert_true(thd_run_until(&f->loop, &f->done, 10000));
    assert_int_equal(f->calls, 1);
}

static void test_library_list_is_read_with_the_auth_header_and_moved_out(void **state)
{
    fx *f = *state;
    static const step s[] = {{200, "[{\"Name\":\"Shows\",\"Locations\":[\"/media/tv/\"],\"CollectionType\":\"tvshows\","
                                   "\"ItemId\":\"f137a2dd21bbc1b99aa5c0f6bf02a805\"}]"}};
    script(f, s, 1);
    list(f);
    assert_int_equal(f->res.status, MB_RES_OK);
    assert_string_equal(f->via, "VirtualFolders");
    assert_string_equal(f->req[0].method, "GET");
    assert_string_equal(f->req[0].target, "/Library/VirtualFolders");
    assert_true(has_header(&f->req[0], "Authorization: MediaBrowser Token=\"" TOKEN "\""));
    assert_true(has_header(&f->req[0], "Accept: application/json"));
    assert_false(has_header_name(&f->req[0], "Content-Type"));
    assert_int_equal(f->libs.n, 1);
    assert_string_equal(f->libs.v[0].id, "f137a2dd21bbc1b99aa5c0f6bf02a805");
    assert_string_equal(f->libs.v[0].locations[0], "/media/tv");
}

static void test_library_list_refusals(void **state)
{
    fx *f = *state;
    f->t.kind = TARGET_EMBY;
    static const step forbidden[] = {{403, ""}};
    script(f, forbidden, 1);
    list(f);
    assert_int_equal(f->res.status, MB_RES_AUTH);
    assert_false(f->got_libs);
    assert_true(has_header(&f->req[0], "X-Emby-Token: " TOKEN));

    static const step garbage[] = {{200, "{\"not\":\"a list\"}"}};
    script(f, garbage, 1);
    f->requests = 0;
    f->calls = 0;
    f->done = false;
    list(f);
    assert_int_equal(f->res.status, MB_RES_BAD);
    assert_int_equal(f->res.http_status, 200);
    assert_false(f->got_libs);
    assert_non_null(strstr(f->msg, "unreadable library list"));
}

static void test_cancelled_library_list_leaks_nothing(void **state)
{
    fx *f = *state;
    script(f, NULL, 0);
    httpc_req *req = NULL;
    assert_int_equal(mb_list_libraries(f->h, &f->t, on_list_must_not_run, f, &req), 0);
    wait_for_requests(f, 1);
    httpc_cancel(req);
    assert_int_equal(httpc_in_flight(f->h), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_statuses_map_like_plex),
        cmocka_unit_test_setup_teardown(test_jellyfin_scan_sends_only_the_mediabrowser_authorization, setup, teardown),
        cmocka_unit_test_setup_teardown(test_emby_scan_sends_only_x_emby_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_type_modified_is_spelled_as_the_api_wants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_path_404_without_body_falls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_path_not_found_statuses_fall_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_path_created_is_done_without_a_second_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_path_failed_is_transient_and_other_refusals_decide, setup, teardown),
        cmocka_unit_test_setup_teardown(test_401_is_auth_naming_the_token_variable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_503_is_transient_and_no_answer_has_no_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_in_either_step_runs_no_callback_and_leaks_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_tokens_and_arguments_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_library_list_is_read_with_the_auth_header_and_moved_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_library_list_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancelled_library_list_leaks_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
