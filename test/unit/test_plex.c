/* test_plex.c: the calls to a Plex target: status classification, the exact bytes of a scan
 * request, the library list, emptying the trash, and cancellation, against an in-test server on
 * the same loop. */
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

#include "plex.h"
#include "test_httpd.h"
#include "util.h"

#define TOKEN "s3cr3t-T0ken"

/* ---- classification -------------------------------------------------------------------- */

static plex_status cls(httpc_error e, long status)
{
    httpc_result r;
    memset(&r, 0, sizeof r);
    r.error = e;
    r.status = status;
    r.body = "";
    r.message = "x";
    return plex_classify(&r);
}

static void test_statuses_map_to_what_the_queue_does(void **state)
{
    (void)state;
    assert_int_equal(cls(HTTPC_OK, 200), PLEX_RES_OK);
    assert_int_equal(cls(HTTPC_OK, 201), PLEX_RES_OK);
    assert_int_equal(cls(HTTPC_OK, 204), PLEX_RES_OK);
    assert_int_equal(cls(HTTPC_OK, 401), PLEX_RES_AUTH);
    assert_int_equal(cls(HTTPC_OK, 403), PLEX_RES_AUTH);
    assert_int_equal(cls(HTTPC_OK, 404), PLEX_RES_NOT_FOUND);
    assert_int_equal(cls(HTTPC_OK, 429), PLEX_RES_TRANSIENT);
    assert_int_equal(cls(HTTPC_OK, 408), PLEX_RES_TRANSIENT);
    assert_int_equal(cls(HTTPC_OK, 500), PLEX_RES_TRANSIENT);
    assert_int_equal(cls(HTTPC_OK, 503), PLEX_RES_TRANSIENT);
    assert_int_equal(cls(HTTPC_OK, 400), PLEX_RES_BAD);
    assert_int_equal(cls(HTTPC_OK, 405), PLEX_RES_BAD);
    assert_int_equal(cls(HTTPC_OK, 301), PLEX_RES_BAD);
    assert_int_equal(cls(HTTPC_OK, 302), PLEX_RES_BAD);
    httpc_error errs[] = {HTTPC_ERR_CONNECT, HTTPC_ERR_DNS, HTTPC_ERR_TIMEOUT, HTTPC_ERR_TOO_BIG, HTTPC_ERR_PROTOCOL};
    for (size_t i = 0; i < ARRAY_SIZE(errs); i++)
        assert_int_equal(cls(errs[i], 0), PLEX_RES_TRANSIENT);
}

/* ---- server-backed --------------------------------------------------------------------- */

typedef struct fx {
    uv_loop_t loop;
    httpc_t *h;
    thd_server *srv;
    bool closed;
    cfg_target t;      /* the Plex target every call goes to */
    const char *ident; /* PLEXAPI_HEADER_IDENTIFIER */
    char url[128];
    /* what the server does */
    int status;
    const char *ctype;
    const char *answer;
    const char *extra;
    bool hold;
    char head[4096];
    int requests;
    /* what the callback saw */
    bool done;
    int calls;
    plex_result res;
    char msg[1024];
    media_libraries libs;
    bool take_libs;
    bool got_libs;
} fx;

static void handler(void *ud, thd_conn *c, const thd_request *r)
{
    fx *f = ud;
    f->requests++;
    snprintf(f->head, sizeof f->head, "%.*s", (int)r->head_len, r->head);
    if (f->hold)
        return;
    thd_respond(c, f->status, f->ctype, f->extra, f->answer, strlen(f->answer));
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->h = httpc_new(&f->loop);
    f->srv = thd_start(&f->loop, handler, f);
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d/", f->srv->port); /* trailing '/' on purpose */
    f->t = (cfg_target){.name = "plex", .kind = TARGET_PLEX, .url = f->url, .token = TOKEN, .timeout_ms = 5000};
    f->ident = "pss-test-id";
    f->status = 200;
    f->ctype = "application/json";
    f->answer = "";
    f->extra = "";
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

static void on_scan(void *ud, const plex_result *r)
{
    fx *f = ud;
    f->done = true;
    f->calls++;
    f->res = *r;
    assert_non_null(r->message);
    snprintf(f->msg, sizeof f->msg, "%s", r->message);
    f->res.message = f->msg;
    assert_null(strstr(r->message, TOKEN));
}

static void scan(fx *f, const char *section, const char *path)
{
    httpc_req *req = NULL;
    assert_int_equal(plex_target_scan(f->h, &f->t, f->ident, section, path, on_scan, f, &req), 0);
    assert_non_null(req);
    assert_false(f->done);
    assert_true(thd_run_until(&f->loop, &f->done, 10000));
    assert_int_equal(f->calls, 1);
}

static void test_scan_request_bytes_are_exact(void **state)
{
    fx *f = *state;
    scan(f, "7", "/tv/Am\xc3\xa9lie & 'Co' #1 +x?/S01");
    assert_int_equal(f->res.status, PLEX_RES_OK);
    assert_int_equal(f->res.http_status, 200);
    char expect[1024];
    snprintf(expect, sizeof expect,
             "GET /library/sections/7/refresh?path=%%2Ftv%%2FAm%%C3%%A9lie%%20%%26%%20%%27Co%%27%%20%%231%%20%%2Bx%%3F%%2FS01 HTTP/1.1\r\n"
             "Host: 127.0.0.1:%d\r\n"
             "X-Plex-Token: " TOKEN "\r\n"
             "X-Plex-Client-Identifier: pss-test-id\r\n"
             "X-Plex-Product: plex-servarr-sync\r\n"
             "X-Plex-Version: " PSS_VERSION "\r\n"
             "Accept: application/json\r\n"
             "\r\n",
             f->srv->port);
    assert_string_equal(f->head, expect);
}

static void test_scan_uses_the_default_identifier_and_skips_an_empty_token(void **state)
{
    fx *f = *state;
    f->ident = NULL;
    f->t.token = "";
    scan(f, "1", "/movies/Heat (1995)");
    assert_int_equal(f->res.status, PLEX_RES_OK);
    assert_non_null(strstr(f->head, "GET /library/sections/1/refresh?path=%2Fmovies%2FHeat%20%281995%29 HTTP/1.1\r\n"));
    assert_non_null(strstr(f->head, "\r\nX-Plex-Client-Identifier: plex-servarr-sync\r\n"));
    assert_null(strstr(f->head, "X-Plex-Token"));
    /* An empty identifier is the default too. */
    f->done = false;
    f->calls = 0;
    f->ident = "";
    scan(f, "1", "/movies/Heat (1995)");
    assert_int_equal(f->res.status, PLEX_RES_OK);
    assert_non_null(strstr(f->head, "GET /library/sections/1/refresh?path=%2Fmovies%2FHeat%20%281995%29 HTTP/1.1\r\n"));
    assert_non_null(strstr(f->head, "\r\nX-Plex-Client-Identifier: plex-servarr-sync\r\n"));
    assert_null(strstr(f->head, "X-Plex-Token"));
}

static void test_scan_auth_failure_names_the_token_without_leaking_it(void **state)
{
    fx *f = *state;
    f->status = 401;
    f->ctype = "text/html";
    f->answer = "<html><head><title>Unauthorized</title></head>\n<body><h1>401 Unauthorized</h1></body></html>";
    scan(f, "2", "/tv/Show");
    assert_int_equal(f->res.status, PLEX_RES_AUTH);
    assert_int_equal(f->res.http_status, 401);
    assert_non_null(strstr(f->msg, "PLEX_TOKEN"));
    assert_non_null(strstr(f->msg, "Unauthorized"));
    assert_null(strchr(f->msg, '\n'));
}

static void test_scan_404_503_and_redirect(void **state)
{
    fx *f = *state;
    f->status = 404;
    scan(f, "99", "/tv/Show");
    assert_int_equal(f->res.status, PLEX_RES_NOT_FOUND);
    f->done = false;
    f->calls = 0;
    f->status = 503;
    scan(f, "2", "/tv/Show");
    assert_int_equal(f->res.status, PLEX_RES_TRANSIENT);
    assert_int_equal(f->res.http_status, 503);
    f->done = false;
    f->calls = 0;
    f->status = 301;
    f->extra = "Location: https://plex.example/\r\n";
    scan(f, "2", "/tv/Show");
    assert_int_equal(f->res.status, PLEX_RES_BAD);
    assert_int_equal(f->requests, 3); /* the redirect was not followed */
    assert_non_null(strstr(f->msg, "PLEX_URL"));
}

static void test_scan_without_answer_is_transient_with_no_status(void **state)
{
    fx *f = *state;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", thd_refused_port());
    f->t.url = url;
    scan(f, "2", "/tv/Show");
    assert_int_equal(f->res.status, PLEX_RES_TRANSIENT);
    assert_int_equal(f->res.http_status, 0);
    assert_non_null(strstr(f->msg, "connection failed"));
}

static void test_scan_times_out_after_plex_timeout(void **state)
{
    fx *f = *state;
    f->hold = true;
    f->t.timeout_ms = 300;
    scan(f, "2", "/tv/Show");
    assert_int_equal(f->res.status, PLEX_RES_TRANSIENT);
    assert_int_equal(f->res.http_status, 0);
}

static void on_must_not_run(void *ud, const plex_result *r)
{
    (void)ud;
    (void)r;
    fail_msg("callback ran for a cancelled request");
}

static void on_must_not_list(void *ud, const plex_result *r, media_libraries *libs)
{
    (void)ud;
    (void)r;
    (void)libs;
    fail_msg("callback ran for a refused or cancelled request");
}

static void test_cancelled_scan_runs_no_callback_and_leaks_nothing(void **state)
{
    fx *f = *state;
    f->hold = true;
    httpc_req *req = NULL;
    assert_int_equal(plex_target_scan(f->h, &f->t, f->ident, "2", "/tv/Show", on_must_not_run, f, &req), 0);
    bool never = false;
    thd_run_until(&f->loop, &never, 200);
    assert_int_equal(f->requests, 1);
    httpc_cancel(req);
    /* And one aborted by closing the client. */
    assert_int_equal(plex_target_scan(f->h, &f->t, f->ident, "2", "/tv/Other", on_must_not_run, f, &req), 0);
    httpc_close(f->h, on_closed, f);
    f->h = NULL;
}

static void test_bad_arguments_are_refused(void **state)
{
    fx *f = *state;
    httpc_req *req = (httpc_req *)1;
    f->t.url = NULL;
    assert_int_equal(plex_target_scan(f->h, &f->t, f->ident, "2", "/tv", on_must_not_run, f, &req), -EINVAL);
    assert_null(req);
    req = (httpc_req *)1;
    assert_int_equal(plex_target_list_sections(f->h, &f->t, f->ident, on_must_not_list, f, &req), -EINVAL);
    assert_null(req);
    f->t.url = "";
    assert_int_equal(plex_target_scan(f->h, &f->t, f->ident, "2", "/tv", on_must_not_run, f, &req), -EINVAL);
    assert_int_equal(plex_target_list_sections(f->h, &f->t, f->ident, on_must_not_list, f, &req), -EINVAL);
    f->t.url = f->url;
    assert_int_equal(plex_target_scan(f->h, &f->t, f->ident, "2", NULL, on_must_not_run, f, &req), -EINVAL);
    assert_int_equal(plex_target_scan(f->h, &f->t, f->ident, "2", "/tv", NULL, f, &req), -EINVAL);
    assert_int_equal(plex_target_scan(f->h, NULL, f->ident, "2", "/tv", on_must_not_run, f, &req), -EINVAL);
    assert_int_equal(plex_target_list_sections(f->h, NULL, f->ident, on_must_not_list, f, &req), -EINVAL);
    assert_int_equal(plex_target_list_sections(f->h, &f->t, f->ident, NULL, f, &req), -EINVAL);
    f->t.token = "bad\r\nX-Injected: 1";
    assert_int_equal(plex_target_scan(f->h, &f->t, f->ident, "2", "/tv", on_must_not_run, f, &req), -EINVAL);
    assert_int_equal(plex_target_list_sections(f->h, &f->t, f->ident, on_must_not_list, f, &req), -EINVAL);
    f->t.token = TOKEN;
    assert_int_equal(plex_target_scan(f->h, &f->t, "bad\nid", "2", "/tv", on_must_not_run, f, &req), -EINVAL);
    assert_int_equal(httpc_in_flight(f->h), 0);
    assert_int_equal(f->requests, 0);
}

/* ---- library list ---------------------------------------------------------------------- */

static const char SECTIONS_JSON[] =
    "{\"MediaContainer\":{\"size\":2,\"title1\":\"Plex Library\",\"Directory\":["
    "{\"key\":\"2\",\"type\":\"show\",\"title\":\"TV Shows\",\"refreshing\":false,"
    "\"Location\":[{\"id\":3,\"path\":\"/data/tv\"}]},"
    "{\"key\":\"1\",\"type\":\"movie\",\"title\":\"Movies\",\"refreshing\":false,"
    "\"Location\":[{\"id\":1,\"path\":\"/data/movies\"},{\"id\":2,\"path\":\"/data/movies2\"}]}]}}";

static void on_sections(void *ud, const plex_result *r, media_libraries *libs)
{
    fx *f = ud;
    f->done = true;
    f->calls++;
    f->res = *r;
    snprintf(f->msg, sizeof f->msg, "%s", r->message);
    f->res.message = f->msg;
    f->got_libs = libs != NULL;
    if (r->status == PLEX_RES_OK) {
        assert_non_null(libs);
        assert_true(libs->fetched_at > 0);
    } else {
        assert_null(libs);
    }
    if (libs && f->take_libs) {
        media_libraries_free(&f->libs);
        f->libs = *libs;
        memset(libs, 0, sizeof *libs);
    }
}

static void list_sections(fx *f)
{
    httpc_req *req = NULL;
    assert_int_equal(plex_target_list_sections(f->h, &f->t, f->ident, on_sections, f, &req), 0);
    assert_non_null(req);
    assert_false(f->done);
    assert_true(thd_run_until(&f->loop, &f->done, 10000));
    assert_int_equal(f->calls, 1);
}

static void test_library_list_is_parsed_and_moved_to_the_caller(void **state)
{
    fx *f = *state;
    f->answer = SECTIONS_JSON;
    f->take_libs = true;
    list_sections(f);
    assert_int_equal(f->res.status, PLEX_RES_OK);
    assert_non_null(strstr(f->head, "GET /library/sections HTTP/1.1\r\n"));
    assert_non_null(strstr(f->head, "\r\nAccept: application/json\r\n"));
    assert_non_null(strstr(f->head, "\r\nX-Plex-Token: " TOKEN "\r\n"));
    assert_non_null(strstr(f->head, "\r\nX-Plex-Client-Identifier: pss-test-id\r\n"));
    char expect[1024];
    snprintf(expect, sizeof expect,
             "GET /library/sections HTTP/1.1\r\n"
             "Host: 127.0.0.1:%d\r\n"
             "X-Plex-Token: " TOKEN "\r\n"
             "X-Plex-Client-Identifier: pss-test-id\r\n"
             "X-Plex-Product: plex-servarr-sync\r\n"
             "X-Plex-Version: " PSS_VERSION "\r\n"
             "Accept: application/json\r\n"
             "\r\n",
             f->srv->port);
    assert_string_equal(f->head, expect);
    assert_int_equal(f->libs.n, 2);
    bool tv = false;
    for (size_t i = 0; i < f->libs.n; i++)
        if (strcmp(f->libs.v[i].id, "2") == 0) {
            tv = true;
            assert_string_equal(f->libs.v[i].title, "TV Shows");
            assert_string_equal(f->libs.v[i].type, "show");
            assert_int_equal(f->libs.v[i].n_locations, 1);
            assert_string_equal(f->libs.v[i].locations[0], "/data/tv");
        }
    assert_true(tv);
}

static void test_library_list_not_taken_is_freed(void **state)
{
    fx *f = *state;
    f->ctype = "application/xml";
    f->answer = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<MediaContainer size=\"1\" title1=\"Plex Library\">"
                "<Directory key=\"4\" type=\"artist\" title=\"Music\"><Location id=\"5\" path=\"/data/music\"/>"
                "</Directory></MediaContainer>";
    list_sections(f); /* the callback does not take it: LeakSanitizer would see a leak */
    assert_int_equal(f->res.status, PLEX_RES_OK);
    assert_true(f->got_libs);
}

static void test_unreadable_library_list_is_bad(void **state)
{
    fx *f = *state;
    f->answer = "this is not a library list";
    list_sections(f);
    assert_int_equal(f->res.status, PLEX_RES_BAD);
    assert_int_equal(f->res.http_status, 200);
    assert_false(f->got_libs);
    assert_non_null(strstr(f->msg, "unreadable library list"));
}

static void test_library_list_auth_failure(void **state)
{
    fx *f = *state;
    f->status = 401;
    f->answer = "Unauthorized";
    list_sections(f);
    assert_int_equal(f->res.status, PLEX_RES_AUTH);
    assert_false(f->got_libs);
}

/* ---- ids, the trash, cancellation ----------------------------------------------------- */

static void test_target_calls_refuse_bad_targets_and_ids(void **state)
{
    fx *f = *state;
    cfg_target t = f->t;
    httpc_req *req = (httpc_req *)1;
    assert_int_equal(plex_target_scan(f->h, &t, NULL, "7/../8", "/tv", on_must_not_run, f, &req), -EINVAL);
    assert_null(req);
    assert_int_equal(plex_target_scan(f->h, &t, NULL, "", "/tv", on_must_not_run, f, &req), -EINVAL);
    assert_int_equal(plex_empty_trash(f->h, &t, NULL, "x", on_must_not_run, f, &req), -EINVAL);
    assert_int_equal(plex_empty_trash(f->h, &t, NULL, NULL, on_must_not_run, f, &req), -EINVAL);
    t.kind = TARGET_JELLYFIN;
    assert_int_equal(plex_target_scan(f->h, &t, NULL, "7", "/tv", on_must_not_run, f, &req), -EINVAL);
    assert_int_equal(plex_empty_trash(f->h, &t, NULL, "7", on_must_not_run, f, &req), -EINVAL);
    t.kind = TARGET_PLEX;
    t.token = "bad\r\nX-Injected: 1";
    assert_int_equal(plex_empty_trash(f->h, &t, NULL, "7", on_must_not_run, f, &req), -EINVAL);
    assert_int_equal(httpc_in_flight(f->h), 0);
    assert_int_equal(f->requests, 0);
}

static void test_empty_trash_is_a_put_with_the_plex_headers(void **state)
{
    fx *f = *state;
    cfg_target t = f->t;
    httpc_req *req = NULL;
    assert_int_equal(plex_empty_trash(f->h, &t, "pss-test-id", "3", on_scan, f, &req), 0);
    assert_true(thd_run_until(&f->loop, &f->done, 10000));
    assert_int_equal(f->res.status, PLEX_RES_OK);
    char expect[1024];
    snprintf(expect, sizeof expect,
             "PUT /library/sections/3/emptyTrash HTTP/1.1\r\n"
             "Host: 127.0.0.1:%d\r\n"
             "X-Plex-Token: " TOKEN "\r\n"
             "X-Plex-Client-Identifier: pss-test-id\r\n"
             "X-Plex-Product: plex-servarr-sync\r\n"
             "X-Plex-Version: " PSS_VERSION "\r\n"
             "Accept: application/json\r\n"
             "Content-Length: 0\r\n"
             "\r\n",
             f->srv->port);
    assert_string_equal(f->head, expect);
    f->done = false;
    f->calls = 0;
    f->status = 401;
    assert_int_equal(plex_empty_trash(f->h, &t, NULL, "3", on_scan, f, &req), 0);
    assert_true(thd_run_until(&f->loop, &f->done, 10000));
    assert_int_equal(f->res.status, PLEX_RES_AUTH);
}

static void test_target_library_list_carries_ids_and_refreshing(void **state)
{
    fx *f = *state;
    f->answer = "{\"MediaContainer\":{\"Directory\":[{\"key\":\"2\",\"type\":\"show\",\"title\":\"TV\",\"refreshing\":true,"
                "\"Location\":[{\"id\":3,\"path\":\"/data/tv\"}]},{\"key\":\"1\",\"refreshing\":false}]}}";
    f->take_libs = true;
    f->ident = NULL;
    list_sections(f);
    assert_int_equal(f->res.status, PLEX_RES_OK);
    assert_non_null(strstr(f->head, "GET /library/sections HTTP/1.1\r\n"));
    assert_non_null(strstr(f->head, "\r\nX-Plex-Client-Identifier: plex-servarr-sync\r\n"));
    assert_int_equal(f->libs.n, 2);
    assert_string_equal(f->libs.v[0].id, "2");
    assert_true(f->libs.v[0].refreshing);
    assert_string_equal(f->libs.v[0].locations[0], "/data/tv");
    assert_string_equal(f->libs.v[1].id, "1");
    assert_false(f->libs.v[1].refreshing);
}

static void test_cancelled_target_calls_leak_nothing(void **state)
{
    fx *f = *state;
    f->hold = true;
    cfg_target t = f->t;
    httpc_req *a = NULL, *b = NULL, *c = NULL;
    assert_int_equal(plex_empty_trash(f->h, &t, NULL, "3", on_must_not_run, f, &a), 0);
    assert_int_equal(plex_target_scan(f->h, &t, NULL, "3", "/tv", on_must_not_run, f, &b), 0);
    assert_int_equal(plex_target_list_sections(f->h, &t, NULL, on_must_not_list, f, &c), 0);
    bool never = false;
    thd_run_until(&f->loop, &never, 200);
    httpc_cancel(a);
    httpc_cancel(b);
    httpc_cancel(c);
    assert_int_equal(httpc_in_flight(f->h), 0);
    assert_false(f->done);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_statuses_map_to_what_the_queue_does),
        cmocka_unit_test_setup_teardown(test_scan_request_bytes_are_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_uses_the_default_identifier_and_skips_an_empty_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_auth_failure_names_the_token_without_leaking_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_404_503_and_redirect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_without_answer_is_transient_with_no_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_times_out_after_plex_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancelled_scan_runs_no_callback_and_leaks_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_library_list_is_parsed_and_moved_to_the_caller, setup, teardown),
        cmocka_unit_test_setup_teardown(test_library_list_not_taken_is_freed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_library_list_is_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_library_list_auth_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_target_calls_refuse_bad_targets_and_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_trash_is_a_put_with_the_plex_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_target_library_list_carries_ids_and_refreshing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancelled_target_calls_leak_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
