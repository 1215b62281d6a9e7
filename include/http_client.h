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
    HTTPC_ERR_PROTOCOL,    /* garbage / other curl errors */
    HTTPC_ERR_TLS,         /* TLS spoken to a plain-HTTP port, or the certificate refused: a
                              retry cannot help (the URL's scheme or the certificate is wrong) */
} httpc_error;

/* Short human name of a transport error ("connection failed", "timed out", ...). */
const char *httpc_error_name(httpc_error e);

/* With HTTPC_ERR_TLS: what went wrong, so a message can name the fix. */
typedef enum {
    HTTPC_TLS_OTHER = 0,   /* none of these (or not a TLS error) */
    HTTPC_TLS_PLAIN_HTTP,  /* the peer answered our ClientHello in plain HTTP: the port speaks http */
    HTTPC_TLS_CERT,        /* the peer's certificate is not trusted (no CA for it, another name) */
    HTTPC_TLS_CA_FILE,     /* the CA file given (ca_file) cannot be used */
} httpc_tls;

typedef struct httpc_opts {
    const char *method;        /* "GET", "POST", "PUT", ...: upper-case letters only; a body goes
                                  with any method but GET (an empty one: Content-Length: 0) */
    const char *url;
    const char *const *headers; /* "Name: value" strings, NULL-terminated array, may be NULL */
    const char *body;          /* may be NULL */
    size_t body_len;
    const char *user;          /* Basic auth when non-NULL */
    const char *pass;
    uint64_t timeout_ms;       /* whole request (0 = 30 s); connecting gets min(this, 10 s) */
    size_t max_response_bytes; /* 0 = 1 MiB */
    const char *ca_file;       /* PEM file of the CAs that may sign an https peer's certificate
                                  (CURLOPT_CAINFO, in place of the system's bundle); NULL: the
                                  system's */
} httpc_opts;

typedef struct httpc_result {
    httpc_error error;
    long status;           /* HTTP status when error == HTTPC_OK, else 0 */
    const char *body;      /* NUL-terminated, valid only during the callback */
    size_t body_len;
    const char *message;   /* human text for errors ("connection refused", curl's text); never NULL.
                              Holds no URL path, query or credentials (curl names host and port). */
    const char *content_type; /* may be NULL */
    uint64_t elapsed_ms;
    httpc_tls tls;         /* with HTTPC_ERR_TLS: which failure; else HTTPC_TLS_OTHER */
} httpc_result;

/* The fix for a TLS failure (res->error == HTTPC_ERR_TLS) of a request to the base address `url`,
 * in words for a person, naming the variables: url_var holds the address, ca_var the CA file
 * (ca_file: its value, NULL when unset). E.g. "the server speaks http here: use
 * http://10.0.0.5:32400 in PLEX_URL", "its certificate is not trusted (self-signed?): set
 * PLEX_CA_FILE to the CA certificate that signed it". The address is shown without user:password. */
void httpc_tls_advice(const httpc_result *res, const char *url, const char *url_var, const char *ca_file,
                      const char *ca_var, char *out, size_t outlen);

typedef void (*httpc_cb)(void *ud, const httpc_result *res);

/* NULL on failure. Calls curl_global_init(CURL_GLOBAL_DEFAULT) once, lazily (libcurl counts
 * calls, so main may also call it first; nothing here calls curl_global_cleanup). Requests fail
 * with a negative code (-EINVAL: bad method, header with CR/LF or without ':', option refused by
 * curl; -ESHUTDOWN: after httpc_close) and then cb never runs. */
httpc_t *httpc_new(uv_loop_t *loop);
/* Start a request; cb runs exactly once from a later loop turn (never from inside this call),
 * unless the request is cancelled. Returns 0 or a negative code (cb will not run). */
int httpc_request(httpc_t *h, const httpc_opts *o, httpc_cb cb, void *ud, httpc_req **out);
/* ADDED: as httpc_request, plus `release(ud)` (may be NULL), which runs exactly once when the
 * request ends WITHOUT its callback (httpc_cancel, httpc_close), never after cb ran. Lets a wrapper
 * (plex.c, rclone.c) own a context behind ud that a cancel by its caller would otherwise leak. */
int httpc_request_ex(httpc_t *h, const httpc_opts *o, httpc_cb cb, void *ud, void (*release)(void *ud),
                     httpc_req **out);
/* Abort; its callback will not run. r is invalid once its callback has started (cancelling a
 * request from inside its own callback is a harmless no-op). */
void httpc_cancel(httpc_req *r);
size_t httpc_in_flight(const httpc_t *h);
/* Abort everything (no callbacks; release hooks run), close handles; `done` runs from a later
 * loop turn when all are closed, after h has been freed. May be called from a request callback. */
void httpc_close(httpc_t *h, void (*done)(void *ud), void *ud);

#endif
