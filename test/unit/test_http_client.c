/* test_http_client.c: the curl-multi-on-libuv client against an in-test server on the same loop. */
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

#include "http_client.h"
#include "test_httpd.h"

#define HUGE_LEN (2u * 1024u * 1024u)
#define N_GATHER 8

typedef struct fx {
    uv_loop_t loop;
    thd_server *srv;
    httpc_t *h;
    bool closed_done;
    char base[64];
    /* server side */
    thd_conn *gathered[N_GATHER];
    int n_gathered;
    int n_held;
    char last_head[4096];
} fx;

typedef struct result {
    bool done;
    int calls;
    httpc_error error;
    long status;
    char body[8192];
    size_t body_len;
    char ctype[128];
    char message[256];
    uint64_t elapsed_ms;
    httpc_tls tls;
} result;

/* ---- server ------------------------------------------------------------------------------ */

static void send_big(thd_conn *c, size_t len, bool chunked_close)
{
    char *body = malloc(len);
    memset(body, 'x', len);
    if (chunked_close) {
        static const char head[] = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
        thd_send(c, head, sizeof head - 1);
        thd_send(c, body, len);
        thd_end(c);
    } else {
        thd_respond(c, 200, "application/octet-stream", "", body, len);
    }
    free(body);
}

static void handler(void *ud, thd_conn *c, const thd_request *r)
{
    fx *f = ud;
    size_t hl = r->head_len < sizeof f->last_head - 1 ? r->head_len : sizeof f->last_head - 1;
    memcpy(f->last_head, r->head, hl);
    f->last_head[hl] = '\0';

    if (strcmp(r->target, "/ok") == 0) {
        thd_respond(c, 200, "text/plain", "", "hello", 5);
    } else if (strcmp(r->target, "/echo") == 0) {
        char *out = malloc(r->head_len + 64);
        memcpy(out, r->head, r->head_len);
        int n = snprintf(out + r->head_len, 64, "body-len: %zu", r->body_len);
        thd_respond(c, 200, "text/plain", "", out, r->head_len + (size_t)n);
        free(out);
    } else if (strcmp(r->target, "/hold") == 0) {
        f->n_held++;
    } else if (strcmp(r->target, "/huge") == 0) {
        send_big(c, HUGE_LEN, false);
    } else if (strcmp(r->target, "/huge-chunked") == 0) {
        send_big(c, HUGE_LEN, true);
    } else if (strcmp(r->target, "/exact64k") == 0) {
        send_big(c, 64 * 1024, false);
    } else if (strcmp(r->target, "/redirect") == 0) {
        thd_respond(c, 302, "text/plain", "Location: /ok\r\n", "moved", 5);
    } else if (strcmp(r->target, "/close") == 0) {
        thd_close_conn(c);
    } else if (strcmp(r->target, "/garbage") == 0) {
        thd_send(c, "garbage garbage\r\n\r\n", 19);
        thd_end(c);
    } else if (strcmp(r->target, "/gather") == 0) {
        /* Answer nobody until all N_GATHER are waiting: passes only if they run concurrently. */
        f->gathered[f->n_gathered++] = c;
        if (f->n_gathered == N_GATHER)
            for (int i = 0; i < N_GATHER; i++) {
                char b[16];
                int n = snprintf(b, sizeof b, "%d", i);
                thd_respond(f->gathered[i], 200, "text/plain", "", b, (size_t)n);
            }
    } else {
        thd_respond(c, 404, "text/plain", "", "nope", 4);
    }
}

/* ---- fixture ----------------------------------------------------------------------------- */

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->srv = thd_start(&f->loop, handler, f);
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", f->srv->port);
    f->h = httpc_new(&f->loop);
    assert_non_null(f->h);
    *state = f;
    return 0;
}

static void on_closed(void *ud)
{
    fx *f = ud;
    f->closed_done = true;
}

static int teardown(void **state)
{
    fx *f = *state;
    if (f->h)
        httpc_close(f->h, on_closed, f);
    thd_stop(f->srv);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_true(f->closed_done);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

static void on_result(void *ud, const httpc_result *res)
{
    result *r = ud;
    r->calls++;
    r->done = true;
    r->error = res->error;
    r->status = res->status;
    assert_non_null(res->message);
    assert_non_null(res->body);
    assert_int_equal(res->body[res->body_len], '\0');
    r->body_len = res->body_len;
    size_t n = res->body_len < sizeof r->body - 1 ? res->body_len : sizeof r->body - 1;
    memcpy(r->body, res->body, n);
    r->body[n] = '\0';
    snprintf(r->ctype, sizeof r->ctype, "%s", res->content_type ? res->content_type : "");
    snprintf(r->message, sizeof r->message, "%s", res->message);
    r->elapsed_ms = res->elapsed_ms;
    r->tls = res->tls;
}

static void get(fx *f, const char *path, uint64_t timeout_ms, size_t max, result *r)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", f->base, path);
    httpc_opts o = {.method = "GET", .url = url, .timeout_ms = timeout_ms, .max_response_bytes = max};
    assert_int_equal(httpc_request(f->h, &o, on_result, r, NULL), 0);
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_get_returns_status_body_and_content_type_from_a_later_turn(void **state)
{
    fx *f = *state;
    result r = {0};
    get(f, "/ok", 5000, 0, &r);
    assert_false(r.done); /* never called from inside httpc_request */
    assert_int_equal(httpc_in_flight(f->h), 1);
    assert_true(thd_run_until(&f->loop, &r.done, 5000));
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.error, HTTPC_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello");
    assert_string_equal(r.ctype, "text/plain");
    assert_int_equal(httpc_in_flight(f->h), 0);
    assert_non_null(strstr(f->last_head, "GET /ok HTTP/1.1\r\n"));
}

static void test_post_sends_body_headers_and_basic_auth_without_expect(void **state)
{
    fx *f = *state;
    result r = {0};
    char url[256];
    snprintf(url, sizeof url, "%s/echo", f->base);
    size_t blen = 1536u * 1024u; /* big enough that curl would add "Expect: 100-continue" */
    char *body = malloc(blen);
    memset(body, 'b', blen);
    const char *headers[] = {"Content-Type: application/json", "X-Test: 1", NULL};
    httpc_opts o = {.method = "POST", .url = url, .headers = headers, .body = body, .body_len = blen,
                    .user = "user", .pass = "pass", .timeout_ms = 5000};
    assert_int_equal(httpc_request(f->h, &o, on_result, &r, NULL), 0);
    free(body); /* the client keeps its own copy */
    assert_true(thd_run_until(&f->loop, &r.done, 5000));
    assert_int_equal(r.error, HTTPC_OK);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "POST /echo HTTP/1.1\r\n"));
    assert_non_null(strstr(r.body, "\r\nContent-Type: application/json\r\n"));
    assert_non_null(strstr(r.body, "\r\nX-Test: 1\r\n"));
    assert_non_null(strstr(r.body, "\r\nAuthorization: Basic dXNlcjpwYXNz\r\n"));
    assert_null(strstr(r.body, "Expect"));
    assert_non_null(strstr(r.body, "body-len: 1572864"));
}

static void test_post_without_body_sends_empty_body(void **state)
{
    fx *f = *state;
    result r = {0};
    char url[256];
    snprintf(url, sizeof url, "%s/echo", f->base);
    httpc_opts o = {.method = "POST", .url = url, .timeout_ms = 5000};
    assert_int_equal(httpc_request(f->h, &o, on_result, &r, NULL), 0);
    assert_true(thd_run_until(&f->loop, &r.done, 5000));
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "POST /echo HTTP/1.1\r\n"));
    assert_non_null(strstr(r.body, "body-len: 0"));
}

static void test_put_is_sent_as_put_with_or_without_a_body(void **state)
{
    fx *f = *state;
    result r = {0};
    char url[256];
    snprintf(url, sizeof url, "%s/echo", f->base);
    const char *headers[] = {"Content-Type:", NULL};
    httpc_opts o = {.method = "PUT", .url = url, .headers = headers, .body = "", .timeout_ms = 5000};
    assert_int_equal(httpc_request(f->h, &o, on_result, &r, NULL), 0);
    assert_true(thd_run_until(&f->loop, &r.done, 5000));
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "PUT /echo HTTP/1.1\r\n"));
    assert_non_null(strstr(r.body, "\r\nContent-Length: 0\r\n"));
    assert_null(strstr(r.body, "Content-Type"));
    assert_non_null(strstr(r.body, "body-len: 0"));

    result r2 = {0};
    httpc_opts o2 = {.method = "PUT", .url = url, .body = "{\"a\":1}", .body_len = 7, .timeout_ms = 5000};
    assert_int_equal(httpc_request(f->h, &o2, on_result, &r2, NULL), 0);
    assert_true(thd_run_until(&f->loop, &r2.done, 5000));
    assert_non_null(strstr(r2.body, "PUT /echo HTTP/1.1\r\n"));
    assert_non_null(strstr(r2.body, "body-len: 7"));
    httpc_opts o3 = {.method = "put", .url = url};
    assert_int_equal(httpc_request(f->h, &o3, on_result, &r2, NULL), -EINVAL);
}

static void test_slow_answer_times_out(void **state)
{
    fx *f = *state;
    result r = {0};
    get(f, "/hold", 300, 0, &r);
    assert_true(thd_run_until(&f->loop, &r.done, 5000));
    assert_int_equal(r.error, HTTPC_ERR_TIMEOUT);
    assert_int_equal(r.status, 0);
    assert_true(r.elapsed_ms >= 250);
    assert_true(r.elapsed_ms < 3000);
}

static void test_huge_body_with_length_is_too_big(void **state)
{
    fx *f = *state;
    result r = {0};
    get(f, "/huge", 5000, 64 * 1024, &r);
    assert_true(thd_run_until(&f->loop, &r.done, 5000));
    assert_int_equal(r.error, HTTPC_ERR_TOO_BIG);
}

static void test_huge_body_without_length_is_too_big(void **state)
{
    fx *f = *state;
    result r = {0};
    get(f, "/huge-chunked", 5000, 64 * 1024, &r);
    assert_true(thd_run_until(&f->loop, &r.done, 5000));
    assert_int_equal(r.error, HTTPC_ERR_TOO_BIG);
}

static void test_body_exactly_at_the_cap_is_accepted(void **state)
{
    fx *f = *state;
    result r = {0};
    get(f, "/exact64k", 5000, 64 * 1024, &r);
    assert_true(thd_run_until(&f->loop, &r.done, 5000));
    assert_int_equal(r.error, HTTPC_OK);
    assert_int_equal(r.body_len, 64 * 1024);
}

static void test_default_cap_is_one_mib(void **state)
{
    fx *f = *state;
    result r = {0};
    get(f, "/huge", 5000, 0, &r); /* 2 MiB > default 1 MiB */
    assert_true(thd_run_until(&f->loop, &r.done, 5000));
    assert_int_equal(r.error, HTTPC_ERR_TOO_BIG);
}

static void test_refused_port_is_a_connect_error(void **state)
{
    fx *f = *state;
    result r = {0};
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", thd_refused_port());
    httpc_opts o = {.method = "GET", .url = url, .timeout_ms = 5000};
    assert_int_equal(httpc_request(f->h, &o, on_result, &r, NULL), 0);
    assert_true(thd_run_until(&f->loop, &r.done, 5000));
    assert_int_equal(r.error, HTTPC_ERR_CONNECT);
    assert_true(r.message[0] != '\0');
}

static void test_connection_closed_without_answer_is_a_connect_error(void **state)
{
    fx *f = *state;
    result r = {0};
    get(f, "/close", 5000, 0, &r);
    assert_true(thd_run_until(&f->loop, &r.done, 5000));
    assert_int_equal(r.error, HTTPC_ERR_CONNECT);
}

static void test_unknown_host_is_a_dns_error(void **state)
{
    fx *f = *state;
    result r = {0};
    httpc_opts o = {.method = "GET", .url = "http://does-not-exist.invalid/", .timeout_ms = 20000};
    assert_int_equal(httpc_request(f->h, &o, on_result, &r, NULL), 0);
    assert_true(thd_run_until(&f->loop, &r.done, 25000));
    assert_int_equal(r.error, HTTPC_ERR_DNS);
}

static void test_garbage_answer_and_foreign_scheme_are_protocol_errors(void **state)
{
    fx *f = *state;
    result r = {0}, r2 = {0};
    get(f, "/garbage", 5000, 0, &r);
    httpc_opts o = {.method = "GET", .url = "ftp://127.0.0.1/x", .timeout_ms = 5000};
    assert_int_equal(httpc_request(f->h, &o, on_result, &r2, NULL), 0);
    assert_false(r2.done);
    assert_true(thd_run_until(&f->loop, &r.done, 5000));
    assert_true(thd_run_until(&f->loop, &r2.done, 5000));
    assert_int_equal(r.error, HTTPC_ERR_PROTOCOL);
    assert_int_equal(r2.error, HTTPC_ERR_PROTOCOL);
}

static void test_redirect_is_returned_not_followed(void **state)
{
    fx *f = *state;
    result r = {0};
    get(f, "/redirect", 5000, 0, &r);
    assert_true(thd_run_until(&f->loop, &r.done, 5000));
    assert_int_equal(r.error, HTTPC_OK);
    assert_int_equal(r.status, 302);
    assert_string_equal(r.body, "moved");
    assert_int_equal(f->srv->n_requests, 1);
}

static void test_concurrent_requests_all_complete(void **state)
{
    fx *f = *state;
    result r[N_GATHER];
    memset(r, 0, sizeof r);
    for (int i = 0; i < N_GATHER; i++)
        get(f, "/gather", 5000, 0, &r[i]);
    assert_int_equal(httpc_in_flight(f->h), N_GATHER);
    for (int i = 0; i < N_GATHER; i++) {
        assert_true(thd_run_until(&f->loop, &r[i].done, 5000));
        assert_int_equal(r[i].error, HTTPC_OK);
        assert_int_equal(r[i].status, 200);
        assert_int_equal(r[i].calls, 1);
    }
    assert_int_equal(httpc_in_flight(f->h), 0);
}

/* Each answer starts the next request from inside the callback, as rclone.c does. */
typedef struct chain {
    fx *f;
    int left;
    int ok;
    bool done;
} chain;

static void chain_next(chain *c);

static void on_chain(void *ud, const httpc_result *res)
{
    chain *c = ud;
    if (res->error == HTTPC_OK && res->status == 200)
        c->ok++;
    if (--c->left == 0)
        c->done = true;
    else
        chain_next(c);
}

static void chain_next(chain *c)
{
    char url[256];
    snprintf(url, sizeof url, "%s/ok", c->f->base);
    httpc_opts o = {.method = "GET", .url = url, .timeout_ms = 5000};
    assert_int_equal(httpc_request(c->f->h, &o, on_chain, c, NULL), 0);
}

static void test_requests_started_from_callbacks_reuse_the_connection(void **state)
{
    fx *f = *state;
    chain c = {.f = f, .left = 5};
    chain_next(&c);
    assert_true(thd_run_until(&f->loop, &c.done, 5000));
    assert_int_equal(c.ok, 5);
    assert_int_equal(f->srv->n_requests, 5);
    /* One keep-alive connection: its socket went through CURL_POLL_REMOVE and came back. */
    assert_int_equal(f->srv->n_connections, 1);
}

static void on_must_not_run(void *ud, const httpc_result *res)
{
    (void)ud;
    (void)res;
    fail_msg("callback ran for a cancelled request");
}

static void count_release(void *ud)
{
    (*(int *)ud)++;
}

static void test_cancel_suppresses_the_callback(void **state)
{
    fx *f = *state;
    char url[256];
    snprintf(url, sizeof url, "%s/hold", f->base);
    httpc_opts o = {.method = "GET", .url = url, .timeout_ms = 5000};
    httpc_req *a = NULL, *b = NULL;
    int released = 0;
    /* Cancelled before the loop ever ran. */
    assert_int_equal(httpc_request_ex(f->h, &o, on_must_not_run, &released, count_release, &a), 0);
    httpc_cancel(a);
    assert_int_equal(released, 1);
    /* Cancelled while the server holds it. */
    assert_int_equal(httpc_request_ex(f->h, &o, on_must_not_run, &released, count_release, &b), 0);
    bool never = false;
    thd_run_until(&f->loop, &never, 200);
    assert_int_equal(f->n_held, 1);
    httpc_cancel(b);
    assert_int_equal(released, 2);
    assert_int_equal(httpc_in_flight(f->h), 0);
    /* The client still works afterwards. */
    result r = {0};
    get(f, "/ok", 5000, 0, &r);
    assert_true(thd_run_until(&f->loop, &r.done, 5000));
    assert_int_equal(r.status, 200);
    thd_run_until(&f->loop, &never, 100);
}

static void test_close_with_requests_in_flight_frees_everything(void **state)
{
    fx *f = *state;
    char url[256];
    snprintf(url, sizeof url, "%s/hold", f->base);
    httpc_opts o = {.method = "GET", .url = url, .timeout_ms = 5000};
    int released = 0;
    for (int i = 0; i < 5; i++)
        assert_int_equal(httpc_request_ex(f->h, &o, on_must_not_run, &released, count_release, NULL), 0);
    bool never = false;
    thd_run_until(&f->loop, &never, 200);
    assert_int_equal(f->n_held, 5);
    /* One more that has not even connected yet. */
    assert_int_equal(httpc_request_ex(f->h, &o, on_must_not_run, &released, count_release, NULL), 0);
    httpc_close(f->h, on_closed, f);
    assert_int_equal(released, 6);
    assert_false(f->closed_done); /* done runs once the handles are closed, later */
    f->h = NULL;
    assert_true(thd_run_until(&f->loop, &f->closed_done, 5000));
}

static void close_from_cb(void *ud, const httpc_result *res)
{
    fx *f = ud;
    assert_int_equal(res->status, 200);
    httpc_close(f->h, on_closed, f);
    f->h = NULL;
}

static void test_close_from_inside_a_callback(void **state)
{
    fx *f = *state;
    char url[256];
    snprintf(url, sizeof url, "%s/ok", f->base);
    httpc_opts o = {.method = "GET", .url = url, .timeout_ms = 5000};
    assert_int_equal(httpc_request(f->h, &o, close_from_cb, f, NULL), 0);
    snprintf(url, sizeof url, "%s/hold", f->base);
    assert_int_equal(httpc_request(f->h, &o, on_must_not_run, NULL, NULL), 0);
    assert_true(thd_run_until(&f->loop, &f->closed_done, 5000));
}

static void test_bad_input_is_refused_without_callback(void **state)
{
    fx *f = *state;
    char url[256];
    snprintf(url, sizeof url, "%s/ok", f->base);
    const char *bad_headers[] = {"X-Evil: a\r\nX-Injected: b", NULL};
    httpc_opts o = {.method = "GET", .url = url, .headers = bad_headers, .timeout_ms = 5000};
    assert_int_equal(httpc_request(f->h, &o, on_must_not_run, NULL, NULL), -EINVAL);
    httpc_opts o2 = {.method = "get", .url = url};
    assert_int_equal(httpc_request(f->h, &o2, on_must_not_run, NULL, NULL), -EINVAL);
    httpc_opts o3 = {.method = "GET", .url = NULL};
    assert_int_equal(httpc_request(f->h, &o3, on_must_not_run, NULL, NULL), -EINVAL);
    assert_int_equal(httpc_in_flight(f->h), 0);
}

/* A CA file that cannot be read is a TLS error of its own; the fix of each TLS error in words,
 * naming the variables (https:// to a plain port itself: test_config_hints.py, against the Plex
 * double). */
static void test_tls_errors_are_told_apart_with_their_fix(void **state)
{
    fx *f = *state;
    result r = {0};
    char url[96];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/ok", f->srv->port);
    httpc_opts o = {.method = "GET", .url = url, .timeout_ms = 5000, .ca_file = "/nonexistent/pss-ca.pem"};
    assert_int_equal(httpc_request(f->h, &o, on_result, &r, NULL), 0);
    assert_true(thd_run_until(&f->loop, &r.done, 5000));
    assert_int_equal(r.error, HTTPC_ERR_TLS);
    assert_int_equal(r.tls, HTTPC_TLS_CA_FILE);

    char base[96], fix[512];
    snprintf(base, sizeof base, "https://user:pw@127.0.0.1:%d/jellyfin", f->srv->port);
    httpc_result res = {.error = HTTPC_ERR_TLS, .tls = HTTPC_TLS_PLAIN_HTTP};
    httpc_tls_advice(&res, base, "JELLYFIN_URL", NULL, "JELLYFIN_CA_FILE", fix, sizeof fix);
    char want[160];
    snprintf(want, sizeof want, "the server speaks http here: use http://127.0.0.1:%d/jellyfin in JELLYFIN_URL",
             f->srv->port);
    assert_string_equal(fix, want);
    res.tls = HTTPC_TLS_CERT;
    httpc_tls_advice(&res, base, "PLEX_URL", NULL, "PLEX_CA_FILE", fix, sizeof fix);
    assert_string_equal(fix, "its certificate is not trusted (self-signed?): set PLEX_CA_FILE to the CA certificate "
                             "that signed it (a PEM file)");
    httpc_tls_advice(&res, base, "PLEX_URL", "/etc/ca.pem", "PLEX_CA_FILE", fix, sizeof fix);
    assert_string_equal(fix, "its certificate is not accepted with the CA in PLEX_CA_FILE: it is signed by another "
                             "CA, or issued for another name than the host in PLEX_URL");
    res.tls = HTTPC_TLS_CA_FILE;
    httpc_tls_advice(&res, base, "PLEX_URL", "/etc/ca.pem", "PLEX_CA_FILE", fix, sizeof fix);
    assert_string_equal(fix, "the CA file in PLEX_CA_FILE cannot be used: make it a readable PEM file");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tls_errors_are_told_apart_with_their_fix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_returns_status_body_and_content_type_from_a_later_turn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_sends_body_headers_and_basic_auth_without_expect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_without_body_sends_empty_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_is_sent_as_put_with_or_without_a_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_answer_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huge_body_with_length_is_too_big, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huge_body_without_length_is_too_big, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_exactly_at_the_cap_is_accepted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_cap_is_one_mib, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_port_is_a_connect_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_closed_without_answer_is_a_connect_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_host_is_a_dns_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_answer_and_foreign_scheme_are_protocol_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redirect_is_returned_not_followed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_requests_all_complete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_requests_started_from_callbacks_reuse_the_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_suppresses_the_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_with_requests_in_flight_frees_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_from_inside_a_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input_is_refused_without_callback, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
