/* http_client.h: outgoing HTTP through libcurl's multi interface driven by the libuv loop
 * (one uv_poll_t per socket, one uv_timer_t for curl's timeout). Many requests run at once;
 * nothing blocks. Redirects are never followed. Response bodies are capped. */
#ifndef PSS_HTTP_CLIENT_H
#define PSS_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct httpc httpc_t;
typedef struct httpc_req httpc_req;

typedef enum {
    HTTPC_OK = 0,          /* got an HTTP answer (any status) */
    HTTPC_ERR_CONNECT,     /* refused, reset, unreachable */
    HTTPC_ERR_DNS,         /* name did not resolve */
    HTTPC_ERR_TIMEOUT,     /* no complete answer within timeout_ms */
    HTTPC_ERR_TOO_BIG,     /* response body larger than max_response_bytes */
    HTTPC_ERR_PROTOCOL,    /* garbage / TLS mismatch / other curl errors */
} httpc_error;

typedef struct httpc_opts {
    const char *method;        /* "GET" or "POST" */
    const char *url;
    const char *const *headers; /* "Name: value" strings, NULL-terminated array, may be NULL */
    const char *body;          /* may be NULL */
    size_t body_len;
    const char *user;          /* Basic auth when non-NULL */
    const char *pass;
    uint64_t timeout_ms;       /* whole request */
    size_t max_response_bytes; /* 0 = 1 MiB */
} httpc_opts;

typedef struct httpc_result {
    httpc_error error;
    long status;           /* HTTP status when error == HTTPC_OK, else 0 */
    const char *body;      /* NUL-terminated, valid only during the callback */
    size_t body_len;
    const char *message;   /* human text for errors ("connection refused", curl's text) */
    const char *content_type; /* may be NULL */
    uint64_t elapsed_ms;
} httpc_result;

typedef void (*httpc_cb)(void *ud, const httpc_result *res);

httpc_t *httpc_new(uv_loop_t *loop);
/* Start a request; cb runs exactly once from a later loop turn (never from inside this call),
 * unless the request is cancelled. Returns 0 or a negative code (cb will not run). */
int httpc_request(httpc_t *h, const httpc_opts *o, httpc_cb cb, void *ud, httpc_req **out);
/* Abort; its callback will not run. */
void httpc_cancel(httpc_req *r);
size_t httpc_in_flight(const httpc_t *h);
/* Abort everything (no callbacks), close handles; `done` runs when all are closed. */
void httpc_close(httpc_t *h, void (*done)(void *ud), void *ud);

#endif
