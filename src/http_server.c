/* http_server.c: HTTP/1.x server on libuv TCP streams, parsed by llhttp, with hard limits.
 *
 * One request at a time per connection (as h2o's http1.c): when a request is complete the
 * parser pauses (on_message_complete returns HPE_PAUSED), reading stops and the handler gets
 * the request. Once its response is written, a keep-alive connection first parses what is
 * still buffered (pipelined requests are answered in order) and only then reads again.
 *
 * Connection states and the timer that guards each:
 *   IDLE      waiting for the first byte of a request     idle timer: silent close
 *   HEADERS   request line and headers arriving           header timer: 408 and close
 *   BODY      body arriving                               idle timer (re-armed per read): 408
 *   HANDLING  the handler holds the request; not reading  none (our own code)
 *   WRITING   response write in flight; not reading       idle timer: close (peer not reading)
 *   LINGER    response sent, write side shut down; input  idle timer (capped at 2 s): close
 *             read and discarded until EOF, so unread request bytes do not turn our close into
 *             a reset that destroys the response before the client has read it
 *   CLOSING   uv_close issued on the three handles
 *
 * Ownership: a connection owns its three handles (socket and two timers), each closed with
 * uv_close; the connection is freed when the last close callback has run AND no handler still
 * holds its request. A request handed to the handler stays valid, whatever happens to its
 * connection (peer gone, server closed), until the handler calls http_respond(), which then
 * sends nothing and frees it (and the connection if that was all that kept it). */
#include "http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <llhttp.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>

#include "list.h"
#include "log.h"
#include "util.h"

#define LISTEN_BACKLOG 511
#define READ_CHUNK ((size_t)65536)
#define LINGER_MAX_MS 2000
#define EVICT_GRACE_MS 250 /* a new connection's time to send its first bytes before eviction */
/* A body must come at MIN_BODY_RATE bytes a second on average once it has had the header timeout
 * to get going: the idle timeout only bounds the gap between two bytes, and a byte every 20 s
 * would hold a connection for days. */
#define MIN_BODY_RATE 1024u
#define HEADER_LINE_OVERHEAD 4 /* ": " and CRLF of each header line, as on the wire */
#define DEFAULT_MAX_HEADER_BYTES ((size_t)16384)
#define DEFAULT_HEADER_TIMEOUT_MS 10000
#define DEFAULT_IDLE_TIMEOUT_MS 60000
#define DEFAULT_MAX_CONNECTIONS 4096
#define DEFAULT_MAX_BUFFERED ((size_t)256 << 20)
#define DEFAULT_BODY_LIMIT ((size_t)1 << 20)
/* A body that fits (webhook payloads are a few KiB) is read into a buffer of this size, and the
 * buffer is kept for the next body instead of freed: a malloc of that size per request made
 * glibc consolidate its free lists every time. A few are kept, for requests handled at once. */
#define SPARE_BODY_BYTES ((size_t)8192)
#define SPARE_BODIES 4
/* Finished requests kept for the next ones, as the bodies are: a request is over 1 KiB. */
#define SPARE_REQS 8
/* Room reserved for a request's text (target and headers); a buffer that grew past twice this
 * is not kept when the request is. */
#define REQ_TEXT_BYTES ((size_t)512)

typedef enum {
    CONN_IDLE,
    CONN_HEADERS,
    CONN_BODY,
    CONN_HANDLING,
    CONN_WRITING,
    CONN_LINGER,
    CONN_CLOSING,
} conn_state;

/* Where a header's name and value start in its request's text. */
typedef struct hdr_at {
    size_t name, value;
} hdr_at;

/* Headers most requests stay within: kept inside the request, not allocated. */
#define INLINE_HEADERS 16

/* A request under construction, then handed out; handlers see only `pub` (first member).
 * Its strings live in one buffer, `text`: the target and a NUL, the path (when a query
 * follows it) and a NUL, then each header line as "name\0value\0". pub's pointers are set
 * from the offsets once the headers are complete, and again whenever `text` moves (trailers
 * of a chunked body). */
typedef struct req_priv {
    http_request pub;
    buf_t text;
    bool target_done;    /* the target and path are in text */
    bool published;      /* pub's pointers are set */
    size_t path_at, query_at;
    size_t name_at, value_at; /* of the header line being received; SIZE_MAX when not begun */
    hdr_at *at;          /* per header; at_inline until more than INLINE_HEADERS */
    size_t headers_cap;
    size_t header_bytes; /* URL + names + values + per-line overhead */
    char *body;
    size_t body_len, body_cap, body_limit;
    size_t body_expected; /* Content-Length, 0 if chunked */
    /* Last: a reused request is cleared up to here (these need no clearing). */
    http_header headers_inline[INLINE_HEADERS];
    hdr_at at_inline[INLINE_HEADERS];
} req_priv;

struct http_conn {
    http_server *srv;  /* NULL once the server is gone and only an orphan request keeps us */
    list_node link;    /* the server's connections, oldest accepted first */
    uv_tcp_t tcp;
    uv_timer_t header_timer;
    uv_timer_t idle_timer;
    uv_write_t wreq;
    uv_write_t cont_wreq; /* "100 Continue" interim response */
    uv_shutdown_t shutdown_req;
    int open_handles;
    conn_state state;
    bool reading;
    bool handed;       /* req is held by the handler */
    bool close_after;  /* close (linger) once the write completes */
    bool cont_pending;
    bool evictable;    /* the handler holds the request only to delay its answer */
    bool got_bytes;    /* anything was read on it yet */
    bool peer_eof;     /* the peer half-closed while its request was handled or answered */
    uint64_t accepted_at; /* loop time (ms) of the accept */
    uint64_t body_at;     /* loop time (ms) the body began (the end of the head) */
    const char *exec_start, *exec_end; /* the bytes of the llhttp_execute() call running */
    unsigned exec_id;  /* counts llhttp_execute() calls */
    const char *value_end; /* end of the last header value piece, to tell a fold from a split */
    unsigned value_exec_id; /* the call that piece came in */
    bool value_end_at_exec_end;
    int fail_status;   /* set by a parser callback that stops the parse */
    const char *fail_msg;
    const char *fail_headers; /* extra headers of that answer (the head check's), or NULL */
    llhttp_t parser;
    char *rbuf;        /* READ_CHUNK bytes; [rpos, rlen) not yet parsed */
    size_t rpos, rlen;
    char *wbuf;        /* response being written, kept until the write callback */
    size_t wlen;
    req_priv *req;
    size_t acct;       /* bytes this connection adds to srv->buffered */
    char peer[64];     /* address text, for requests */
    char label[80];    /* "addr:port" / "[addr]:port", for logs */
};

struct http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_timer_t anchor; /* never started: guarantees close always completes in a callback */
    llhttp_settings_t settings;
    http_server_opts o;
    list_node conns;     /* http_conn, oldest accepted first */
    size_t n_conns;      /* connections not yet closing */
    size_t buffered;     /* bytes held by all connections' buffers, requests and responses */
    unsigned open_handles;
    bool listener_open, draining, closing;
    int port;
    void (*done)(void *ud);
    void *done_ud;
    char *spare_rbuf;    /* an emptied read buffer, kept for the next connection that reads */
    char *spare_body[SPARE_BODIES]; /* emptied SPARE_BODY_BYTES body buffers, for the next bodies */
    size_t n_spare_body;
    req_priv *spare_req[SPARE_REQS]; /* finished requests, kept (with their text buffer) for reuse */
    size_t n_spare_req;
};

static char continue_line[] = "HTTP/1.1 100 Continue\r\n\r\n";

static void conn_close(http_conn *c);
static void conn_parse(http_conn *c);

/* The handler has the request, or its answer is being written. */
static bool conn_busy(const http_conn *c)
{
    return c->state == CONN_HANDLING || c->state == CONN_WRITING;
}

static void conn_update_reading(http_conn *c);
static void on_idle_timeout(uv_timer_t *t);
static void on_header_timeout(uv_timer_t *t);

/* ---- requests ----------------------------------------------------------------------------- */

/* q's body buffer goes back to the server's spares, or is freed. */
static void req_release_body(req_priv *q)
{
    http_server *s = q->pub.conn ? q->pub.conn->srv : NULL;
    if (q->body && q->body_cap == SPARE_BODY_BYTES && s && !s->closing &&
        s->n_spare_body < SPARE_BODIES)
        s->spare_body[s->n_spare_body++] = q->body;
    else
        free(q->body);
    q->body = NULL;
    q->body_len = q->body_cap = 0;
}

static void req_free(req_priv *q)
{
    if (!q)
        return;
    if (q->pub.headers != q->headers_inline) {
        free(q->pub.headers);
        free(q->at);
    }
    req_release_body(q);
    http_server *s = q->pub.conn ? q->pub.conn->srv : NULL;
    if (s && !s->closing && s->n_spare_req < SPARE_REQS && q->text.cap <= 2 * REQ_TEXT_BYTES) {
        s->spare_req[s->n_spare_req++] = q;
        return;
    }
    buf_free(&q->text);
    free(q);
}

/* A cleared request for c, reused when the server has one. */
static req_priv *req_new(http_conn *c)
{
    http_server *s = c->srv;
    req_priv *q;
    if (s && s->n_spare_req) {
        q = s->spare_req[--s->n_spare_req];
        buf_t text = q->text;
        memset(q, 0, offsetof(req_priv, headers_inline));
        q->text = text;
        buf_reset(&q->text);
    } else {
        q = xmalloc(sizeof *q);
        memset(q, 0, offsetof(req_priv, headers_inline));
        buf_init(&q->text, 0);
        buf_reserve(&q->text, REQ_TEXT_BYTES); /* a usual request line and headers, at once */
    }
    q->name_at = q->value_at = SIZE_MAX;
    q->pub.headers = q->headers_inline;
    q->at = q->at_inline;
    q->headers_cap = INLINE_HEADERS;
    q->pub.conn = c;
    return q;
}

/* pub's strings, from their offsets in text. */
static void req_publish(req_priv *q)
{
    char *t = q->text.data;
    q->pub.target = t;
    q->pub.path = t + q->path_at;
    q->pub.query = t + q->query_at;
    for (size_t i = 0; i < q->pub.n_headers; i++) {
        q->pub.headers[i].name = t + q->at[i].name;
        q->pub.headers[i].value = t + q->at[i].value;
    }
    q->published = true;
}

static void req_text_append(req_priv *q, const char *p, size_t n)
{
    const char *was = q->text.data;
    buf_append(&q->text, p, n);
    if (q->published && q->text.data != was)
        req_publish(q);
}

static bool req_is_head(const req_priv *q)
{
    return q && q->pub.method && strcmp(q->pub.method, "HEAD") == 0;
}

/* ---- accounting and small connection helpers --------------------------------------------- */

static void conn_account(http_conn *c)
{
    size_t now = (c->rlen - c->rpos) + c->wlen;
    if (c->req)
        now += c->req->header_bytes + c->req->body_cap;
    if (c->srv)
        c->srv->buffered = c->srv->buffered - c->acct + now;
    c->acct = now;
}

static void conn_drop_input(http_conn *c)
{
    /* An emptied buffer goes back to the server for the next read: a 64 KiB malloc and free per
     * request cost more than parsing it (glibc consolidates its heap on every such free). */
    if (c->rbuf && c->srv && !c->srv->spare_rbuf && !c->srv->closing)
        c->srv->spare_rbuf = c->rbuf;
    else
        free(c->rbuf);
    c->rbuf = NULL;
    c->rpos = c->rlen = 0;
}


/* Frees c once its handles are closed and no handler holds its request. */
static void conn_maybe_free(http_conn *c)
{
    if (c->open_handles > 0 || c->req)
        return;
    conn_drop_input(c);
    free(c->wbuf);
    c->wbuf = NULL;
    c->wlen = 0;
    conn_account(c);
    list_del(&c->link);
    free(c);
}

static void server_maybe_finish(http_server *s)
{
    if (!s->closing || s->open_handles > 0)
        return;
    /* What is left are connections whose request a handler still holds: they no longer
     * need the server; http_respond() frees them. */
    list_for_each_safe(n, tmp, &s->conns) {
        http_conn *c = container_of(n, http_conn, link);
        list_del(&c->link);
        c->srv = NULL;
    }
    if (s->done)
        s->done(s->done_ud);
    free(s->spare_rbuf);
    for (size_t i = 0; i < s->n_spare_body; i++)
        free(s->spare_body[i]);
    for (size_t i = 0; i < s->n_spare_req; i++) {
        buf_free(&s->spare_req[i]->text);
        free(s->spare_req[i]);
    }
    free(s);
}

static void conn_handle_closed(http_conn *c)
{
    http_server *s = c->srv;
    c->open_handles--;
    if (c->open_handles == 0)
        conn_maybe_free(c);
    if (s) {
        s->open_handles--;
        server_maybe_finish(s);
    }
}

static void on_tcp_closed(uv_handle_t *h)
{
    conn_handle_closed(container_of((uv_tcp_t *)h, http_conn, tcp));
}

static void on_header_timer_closed(uv_handle_t *h)
{
    conn_handle_closed(container_of((uv_timer_t *)h, http_conn, header_timer));
}

static void on_idle_timer_closed(uv_handle_t *h)
{
    conn_handle_closed(container_of((uv_timer_t *)h, http_conn, idle_timer));
}

/* Silent close, idempotent. A request the handler holds survives (see the file comment). */
static void conn_close(http_conn *c)
{
    if (c->state == CONN_CLOSING)
        return;
    log_debug("http: %s: closing", c->label);
    c->state = CONN_CLOSING;
    c->reading = false;
    if (c->srv)
        c->srv->n_conns--;
    if (c->req && !c->handed) {
        req_free(c->req);
        c->req = NULL;
    }
    conn_drop_input(c);
    conn_account(c);
    uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
    uv_close((uv_handle_t *)&c->header_timer, on_header_timer_closed);
    uv_close((uv_handle_t *)&c->idle_timer, on_idle_timer_closed);
}

static void conn_idle_timer(http_conn *c, uint64_t ms)
{
    uv_timer_start(&c->idle_timer, on_idle_timeout, ms, 0);
}

/* ---- writing ------------------------------------------------------------------------------ */

static void on_shutdown(uv_shutdown_t *req, int status)
{
    http_conn *c = container_of(req, http_conn, shutdown_req);
    if (status < 0 && c->state != CONN_CLOSING)
        conn_close(c);
}

/* Response sent and no more requests wanted: send FIN, then discard input until the peer
 * closes too (or a short timer runs out). */
static void conn_linger(http_conn *c)
{
    c->state = CONN_LINGER;
    conn_drop_input(c);
    conn_account(c);
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        conn_close(c);
        return;
    }
    uint64_t ms = c->srv->o.idle_timeout_ms;
    conn_idle_timer(c, ms < LINGER_MAX_MS ? ms : LINGER_MAX_MS);
    conn_update_reading(c);
}

/* Keep-alive: the next request may already be buffered (pipelined); parse it before reading. */
static void conn_next_request(http_conn *c)
{
    c->state = CONN_IDLE;
    conn_idle_timer(c, c->srv->o.idle_timeout_ms);
    conn_parse(c);
    conn_update_reading(c);
}

static void on_write(uv_write_t *req, int status)
{
    http_conn *c = container_of(req, http_conn, wreq);
    free(c->wbuf);
    c->wbuf = NULL;
    c->wlen = 0;
    conn_account(c);
    if (c->state == CONN_CLOSING)
        return;
    if (status < 0) {
        log_debug("http: %s: write failed: %s", c->label, uv_strerror(status));
        conn_close(c);
        return;
    }
    uv_timer_stop(&c->idle_timer);
    if (c->peer_eof) {
        /* Requests it sent before its half-close are still answered, one by one; then it is
         * done (lingering would wait for an end of stream that has already come). */
        if (!c->close_after && !c->srv->draining) {
            conn_next_request(c);
            if (c->state != CONN_IDLE && c->state != CONN_HEADERS && c->state != CONN_BODY)
                return; /* handling the next one, or answering an error about it */
        }
        conn_close(c);
        return;
    }
    /* Draining may have begun while this keep-alive response was in flight. */
    if (c->close_after || c->srv->draining)
        conn_linger(c);
    else
        conn_next_request(c);
}

/* Takes ownership of data (malloc'd). */
static void conn_write(http_conn *c, char *data, size_t len, bool close_after)
{
    c->state = CONN_WRITING;
    c->close_after = close_after;
    /* A keep-alive answer with nothing buffered behind it is first tried at once: when the
     * socket takes it all (the usual case), the connection is ready for its next request here,
     * without the write request's round trip through the loop (and the epoll_ctl that libuv
     * makes when its write queue drains). Buffered input (a pipelined request) takes the queued
     * path, so the next request is never dispatched from inside this handler's answer. */
    if (!close_after && !c->peer_eof && !c->srv->draining && (!c->rbuf || c->rpos == c->rlen)) {
        uv_buf_t b = uv_buf_init(data, (unsigned)len);
        int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (n == (int)len) {
            free(data);
            uv_timer_stop(&c->idle_timer);
            conn_next_request(c);
            conn_account(c);
            return;
        }
        if (n > 0) { /* the rest goes through the queue */
            memmove(data, data + n, len - (size_t)n);
            len -= (size_t)n;
        }
    }
    c->wbuf = data;
    c->wlen = len;
    conn_update_reading(c);
    conn_account(c);
    /* The handler may have run long since this loop turn began: start the stall timer from
     * now, not from the loop's cached time. */
    uv_update_time(c->srv->loop);
    conn_idle_timer(c, c->srv->o.idle_timeout_ms);
    uv_buf_t b = uv_buf_init(data, (unsigned)len);
    int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc != 0) {
        log_debug("http: %s: write failed: %s", c->label, uv_strerror(rc));
        free(c->wbuf);
        c->wbuf = NULL;
        c->wlen = 0;
        conn_close(c);
    }
}

/* Answer an error we decided on ourselves, then close. Only before the handler has the
 * request (states IDLE, HEADERS, BODY). */
static void conn_refuse(http_conn *c, int status, const char *message, const char *extra_headers);

static void conn_fail(http_conn *c, int status, const char *message)
{
    conn_refuse(c, status, message, NULL);
}

/* Answer status with a JSON error (and extra_headers) and close, from wherever the request is
 * in its head or body. */
static void conn_refuse(http_conn *c, int status, const char *message, const char *extra_headers)
{
    if (c->state != CONN_IDLE && c->state != CONN_HEADERS && c->state != CONN_BODY) {
        conn_close(c);
        return;
    }
    bool head = req_is_head(c->req);
    req_free(c->req);
    c->req = NULL;
    conn_drop_input(c);
    uv_timer_stop(&c->header_timer);
    buf_t body, out;
    buf_init(&body, 0);
    buf_init(&out, 0);
    http_build_json_error(&body, status, message);
    http_build_response(&out, status, "application/json", body.data, body.len, extra_headers, true, head);
    buf_free(&body);
    size_t len = out.len;
    conn_write(c, buf_steal(&out), len, true);
}

static void on_continue_written(uv_write_t *req, int status)
{
    http_conn *c = container_of(req, http_conn, cont_wreq);
    (void)status; /* a failure shows up on the next read or write */
    c->cont_pending = false;
}

/* ---- parser callbacks --------------------------------------------------------------------- */

static int count_header_bytes(http_conn *c, size_t n)
{
    req_priv *q = c->req;
    size_t max = c->srv->o.max_header_bytes;
    if (n > max || q->header_bytes > max - n) {
        log_warn("http: %s: request headers over %zu bytes (%s), answering 431", c->label, max,
                 log_esc(q->text.data ? q->text.data : ""));
        c->fail_status = 431;
        c->fail_msg = "request headers too large";
        return -1;
    }
    q->header_bytes += n;
    return 0;
}

static int on_message_begin(llhttp_t *p)
{
    http_conn *c = p->data;
    req_free(c->req); /* none expected: one request at a time */
    req_priv *q = req_new(c);
    memcpy(q->pub.remote_addr, c->peer, sizeof q->pub.remote_addr);
    c->req = q;
    c->state = CONN_HEADERS;
    uv_timer_stop(&c->idle_timer);
    uv_timer_start(&c->header_timer, on_header_timeout, c->srv->o.header_timeout_ms, 0);
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
    http_conn *c = p->data;
    if (count_header_bytes(c, n))
        return -1;
    req_text_append(c->req, at, n);
    return 0;
}

/* The target is complete: end it, and add the path when a query follows it (the query is the
 * target's own tail). */
static void req_end_target(req_priv *q)
{
    if (q->target_done)
        return;
    q->target_done = true;
    size_t len = q->text.len;
    size_t start = http_target_path_start(q->text.data, len);
    const char *qm = len > start ? memchr(q->text.data + start, '?', len - start) : NULL;
    size_t path_end = qm ? (size_t)(qm - q->text.data) : len;
    bool empty = path_end == start; /* "http://host" or "http://host?q": the path is "/" */
    bool copy = qm || empty;
    buf_reserve(&q->text, 1 + (copy ? path_end - start + 2 : 0)); /* text does not move below */
    buf_append(&q->text, "", 1);
    q->query_at = qm ? path_end + 1 : len; /* len: the target's NUL, "" */
    if (copy) {
        q->path_at = q->text.len;
        if (empty)
            buf_append(&q->text, "/", 1);
        else
            buf_append(&q->text, q->text.data + start, path_end - start);
        buf_append(&q->text, "", 1);
    } else {
        q->path_at = start;
    }
}

static int on_url_complete(llhttp_t *p)
{
    http_conn *c = p->data;
    req_end_target(c->req);
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
    http_conn *c = p->data;
    req_priv *q = c->req;
    if (count_header_bytes(c, n))
        return -1;
    req_end_target(q);
    if (q->name_at == SIZE_MAX)
        q->name_at = q->text.len;
    req_text_append(q, at, n);
    return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
    http_conn *c = p->data;
    req_priv *q = c->req;
    if (q->name_at == SIZE_MAX)
        q->name_at = q->text.len; /* an empty name: refused when the line is complete */
    req_text_append(q, "", 1);
    q->value_at = q->text.len;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
    http_conn *c = p->data;
    if (count_header_bytes(c, n))
        return -1;
    /* llhttp accepts obsolete line folding ("X: a\r\n b") and hands the continuation over as
     * one more piece of the value, after a gap (the CRLF). A value merely split between two
     * reads continues exactly where the previous piece ended (same call), or at the start of
     * the very next call when the previous piece ended its call's data. */
    req_priv *q = c->req;
    if (q->value_at == SIZE_MAX) /* a value without a name: cannot happen with llhttp */
        return -1;
    if (q->text.len > q->value_at && n > 0 && (at[0] == ' ' || at[0] == '\t')) {
        bool contiguous = (c->value_exec_id == c->exec_id && at == c->value_end) ||
                          (c->value_exec_id + 1 == c->exec_id && c->value_end_at_exec_end &&
                           at == c->exec_start);
        if (!contiguous) {
            log_warn("http: %s: bad request (folded header line), answering 400", c->label);
            c->fail_status = 400;
            c->fail_msg = "folded header line";
            return -1;
        }
    }
    c->value_end = at + n;
    c->value_exec_id = c->exec_id;
    c->value_end_at_exec_end = at + n == c->exec_end;
    req_text_append(q, at, n);
    return 0;
}

/* RFC 9110 token characters: a header name is one token. */
/* A header line the parser let through but a server must refuse (http_header_line_problem):
 * answered 400. */
static int header_line_ok(http_conn *c, const char *name, size_t name_len, const char *value,
                          size_t value_len)
{
    const char *why = http_header_line_problem(name, name_len, value, value_len);
    if (!why)
        return 0;
    log_warn("http: %s: bad request (%s), answering 400", c->label, why);
    c->fail_status = 400;
    c->fail_msg = why;
    return -1;
}

/* Called for every header line, even one with an empty value; also for chunked trailers,
 * which are appended to the same list (and count against the same limit). */
static int on_header_value_complete(llhttp_t *p)
{
    http_conn *c = p->data;
    req_priv *q = c->req;
    if (count_header_bytes(c, HEADER_LINE_OVERHEAD))
        return -1;
    if (q->value_at == SIZE_MAX) { /* no name was ever completed: cannot happen with llhttp */
        header_line_ok(c, "", 0, "", 0);
        return -1;
    }
    size_t name_at = q->name_at, value_at = q->value_at;
    q->name_at = q->value_at = SIZE_MAX;
    const char *name = q->text.data + name_at;
    size_t name_len = value_at - 1 - name_at, vlen = q->text.len - value_at;
    if (header_line_ok(c, name, name_len, q->text.data + value_at, vlen))
        return -1;
    /* Surrounding whitespace trimmed: the value starts later and ends sooner in text. */
    const char *v = q->text.data + value_at;
    while (vlen && (*v == ' ' || *v == '\t')) {
        v++;
        vlen--;
        value_at++;
    }
    while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
        vlen--;
    q->text.len = value_at + vlen;
    req_text_append(q, "", 1);
    if (q->pub.n_headers == q->headers_cap) {
        size_t cap = q->headers_cap * 2;
        if (q->pub.headers == q->headers_inline) {
            q->pub.headers = xmalloc(cap * sizeof *q->pub.headers);
            q->at = xmalloc(cap * sizeof *q->at);
            memcpy(q->pub.headers, q->headers_inline, sizeof q->headers_inline);
            memcpy(q->at, q->at_inline, sizeof q->at_inline);
        } else {
            q->pub.headers = xrealloc(q->pub.headers, cap * sizeof *q->pub.headers);
            q->at = xrealloc(q->at, cap * sizeof *q->at);
        }
        q->headers_cap = cap;
    }
    q->at[q->pub.n_headers++] = (hdr_at){.name = name_at, .value = value_at};
    if (q->published) /* a trailer */
        req_publish(q);
    return 0;
}

static void maybe_send_continue(http_conn *c, const llhttp_t *p)
{
    const char *expect = http_header_get(&c->req->pub, "Expect");
    if (!expect || strlen(expect) != 12 || ascii_strncasecmp(expect, "100-continue", 12) != 0)
        return;
    if (p->http_major != 1 || p->http_minor < 1 || c->cont_pending)
        return;
    uv_buf_t b = uv_buf_init(continue_line, (unsigned)(sizeof continue_line - 1));
    if (uv_write(&c->cont_wreq, (uv_stream_t *)&c->tcp, &b, 1, on_continue_written) == 0)
        c->cont_pending = true;
}

static int on_headers_complete(llhttp_t *p)
{
    http_conn *c = p->data;
    http_server *s = c->srv;
    req_priv *q = c->req;
    uv_timer_stop(&c->header_timer);
    req_end_target(q);
    req_publish(q);
    q->pub.method = llhttp_method_name((llhttp_method_t)p->method);
    /* Upgrades (and CONNECT) are not spoken here: answer, then close. */
    q->pub.keep_alive = llhttp_should_keep_alive(p) && !p->upgrade;
    q->body_limit = s->o.body_limit ? s->o.body_limit(s->o.ud, &q->pub) : DEFAULT_BODY_LIMIT;
    bool chunked = (p->flags & F_CHUNKED) != 0;
    bool sized = (p->flags & F_CONTENT_LENGTH) && p->content_length > 0;
    if (s->o.head_check && (chunked || sized)) {
        const char *hdrs = NULL, *msg = NULL;
        int st = s->o.head_check(s->o.ud, &q->pub, &hdrs, &msg);
        if (st == HTTP_HEAD_WITHOUT_BODY) {
            /* conn_parse dispatches at the pause; the body is never parsed, so the connection
             * cannot carry another request. */
            q->pub.body_skipped = true;
            q->pub.keep_alive = false;
            return HPE_PAUSED;
        }
        if (st) {
            /* Refused before its body is read (an "Expect: 100-continue" client gets this
             * instead of 100): the connection closes, so the body need not be drained. */
            c->fail_status = st;
            c->fail_msg = msg;
            c->fail_headers = hdrs;
            return -1;
        }
    }
    if (sized && p->content_length > q->body_limit) {
        log_warn("http: %s: %s %s: body of %llu bytes over the %zu-byte limit, answering 413",
                 c->label, q->pub.method, log_esc(q->pub.target),
                 (unsigned long long)p->content_length, q->body_limit);
        c->fail_status = 413;
        c->fail_msg = "request body too large";
        return -1;
    }
    if (chunked || sized) {
        q->body_expected = chunked ? 0 : (size_t)p->content_length;
        c->state = CONN_BODY;
        c->body_at = uv_now(s->loop);
        conn_idle_timer(c, s->o.idle_timeout_ms);
        maybe_send_continue(c, p);
    }
    return 0;
}

/* Bytes a second the body has averaged (a body younger than a second counts as fast). */
static uint64_t body_rate(const http_conn *c, uint64_t now)
{
    uint64_t ms = now - c->body_at;
    return ms < 1000 ? UINT64_MAX : (uint64_t)c->req->body_len * 1000u / ms;
}

/* Past the header timeout's grace, a body must keep MIN_BODY_RATE on average. */
static bool body_too_slow(const http_conn *c)
{
    http_server *s = c->srv;
    if (!s)
        return false;
    uint64_t now = uv_now(s->loop), ms = now - c->body_at;
    return ms > s->o.header_timeout_ms &&
           c->req->body_len < (ms - s->o.header_timeout_ms) / 1000u * MIN_BODY_RATE;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    http_conn *c = p->data;
    req_priv *q = c->req;
    if (n > q->body_limit - q->body_len) {
        log_warn("http: %s: %s %s: chunked body over the %zu-byte limit, answering 413",
                 c->label, q->pub.method, log_esc(q->pub.target), q->body_limit);
        c->fail_status = 413;
        c->fail_msg = "request body too large";
        return -1;
    }
    size_t need = q->body_len + n + 1;
    size_t known = q->body_expected ? q->body_expected + 1 : need;
    if (!q->body && known <= SPARE_BODY_BYTES && need <= SPARE_BODY_BYTES) {
        http_server *s = c->srv;
        q->body = s && s->n_spare_body ? s->spare_body[--s->n_spare_body] : xmalloc(SPARE_BODY_BYTES);
        q->body_cap = SPARE_BODY_BYTES;
    } else if (need > q->body_cap) {
        /* Grow with the bytes received (doubling), never past what the body may need, so a
         * large Content-Length that is never sent costs nothing. */
        size_t ceiling = q->body_expected ? q->body_expected + 1
                         : q->body_limit < SIZE_MAX ? q->body_limit + 1 : SIZE_MAX;
        size_t cap = q->body_cap ? q->body_cap * 2 : 4096;
        if (cap > ceiling)
            cap = ceiling;
        if (cap < need)
            cap = need;
        q->body = xrealloc(q->body, cap);
        q->body_cap = cap;
    }
    memcpy(q->body + q->body_len, at, n);
    q->body_len += n;
    q->body[q->body_len] = '\0';
    if (body_too_slow(c)) {
        log_warn("http: %s: %s %s: body of %zu bytes after %llu s, under %u bytes/s: answering 408",
                 c->label, q->pub.method, log_esc(q->pub.target), q->body_len,
                 (unsigned long long)((uv_now(c->srv->loop) - c->body_at) / 1000), MIN_BODY_RATE);
        c->fail_status = 408;
        c->fail_msg = "request body too slow";
        return -1;
    }
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    (void)p;
    return HPE_PAUSED; /* conn_parse hands the request over once llhttp_execute returns */
}

/* ---- reading and parsing ------------------------------------------------------------------ */

static void conn_dispatch(http_conn *c)
{
    http_server *s = c->srv;
    req_priv *q = c->req;
    uv_timer_stop(&c->header_timer);
    uv_timer_stop(&c->idle_timer);
    if (!q->body) {
        q->body = xstrdup("");
        q->body_cap = 1;
    }
    q->pub.body = q->body;
    q->pub.body_len = q->body_len;
    q->pub.received_at = mono_ms();
    c->state = CONN_HANDLING;
    c->handed = true;
    conn_update_reading(c);
    conn_account(c);
    log_debug("http: %s: %s %s (%zu body bytes)", c->label, q->pub.method,
              log_esc(q->pub.target), q->body_len);
    /* Last thing: the handler may respond (or even close the server) before returning. */
    s->o.handler(s->o.ud, &q->pub);
}

static void conn_parse_failed(http_conn *c, llhttp_errno_t err)
{
    int status = c->fail_status ? c->fail_status : 400;
    const char *msg = c->fail_msg ? c->fail_msg : "malformed request";
    if (!c->fail_status)
        log_warn("http: %s: bad request (%s: %s), answering 400", c->label,
                 llhttp_errno_name(err), log_esc(llhttp_get_error_reason(&c->parser)));
    conn_refuse(c, status, msg, c->fail_headers);
}

/* Parse what is buffered, as long as no request is being handled. */
static void conn_parse(http_conn *c)
{
    while (c->rpos < c->rlen &&
           (c->state == CONN_IDLE || c->state == CONN_HEADERS || c->state == CONN_BODY)) {
        const char *data = c->rbuf + c->rpos;
        size_t len = c->rlen - c->rpos;
        c->exec_start = data;
        c->exec_end = data + len;
        c->exec_id++;
        llhttp_errno_t err = llhttp_execute(&c->parser, data, len);
        if (err == HPE_OK) {
            c->rpos = c->rlen;
        } else if (err == HPE_PAUSED) {
            c->rpos += (size_t)(llhttp_get_error_pos(&c->parser) - data);
            llhttp_resume(&c->parser);
            if (c->rpos == c->rlen)
                conn_drop_input(c);
            conn_dispatch(c);
            return;
        } else {
            conn_parse_failed(c, err);
            return;
        }
    }
    if (c->rpos == c->rlen)
        conn_drop_input(c);
    conn_account(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    http_conn *c = container_of((uv_tcp_t *)h, http_conn, tcp);
    (void)suggested;
    if (!c->rbuf) {
        if (c->srv && c->srv->spare_rbuf) {
            c->rbuf = c->srv->spare_rbuf;
            c->srv->spare_rbuf = NULL;
        } else {
            c->rbuf = xmalloc(READ_CHUNK);
        }
        c->rpos = c->rlen = 0;
    } else if (c->rpos > 0) {
        memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
        c->rlen -= c->rpos;
        c->rpos = 0;
    }
    /* A full buffer gives a zero-length buffer, which libuv reports as UV_ENOBUFS. */
    *buf = uv_buf_init(c->rbuf + c->rlen, (unsigned)(READ_CHUNK - c->rlen));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    http_conn *c = container_of((uv_tcp_t *)st, http_conn, tcp);
    http_server *s = c->srv;
    (void)buf;
    if (nread == 0)
        return;
    bool busy = conn_busy(c);
    if (nread < 0) {
        if (nread == UV_EOF && busy) {
            c->peer_eof = true; /* its answer is still written (see on_write) */
            conn_update_reading(c);
            return;
        }
        if (nread != UV_EOF)
            log_debug("http: %s: read: %s", c->label, uv_strerror((int)nread));
        else if (c->state == CONN_HEADERS || c->state == CONN_BODY)
            log_debug("http: %s: peer closed in the middle of a request", c->label);
        conn_close(c);
        return;
    }
    if (c->state == CONN_LINGER) {
        c->rpos = c->rlen = 0; /* discarded */
        return;
    }
    c->rlen += (size_t)nread;
    c->got_bytes = true;
    if (busy) {
        /* The next pipelined request: parsed once this one is answered. */
        conn_account(c);
        conn_update_reading(c);
        return;
    }
    if (c->state == CONN_BODY)
        conn_idle_timer(c, s->o.idle_timeout_ms);
    conn_account(c);
    if (s->buffered > s->o.max_buffered_bytes) {
        log_warn("http: %s: %zu bytes buffered across all connections (limit %zu), "
                 "answering 503",
                 c->label, s->buffered, s->o.max_buffered_bytes);
        conn_fail(c, 503, "server busy, try again");
        return;
    }
    conn_parse(c);
    conn_update_reading(c);
}

/* Reading stays on while a request is handled and answered, as long as the read buffer has
 * room: stopping and restarting it around every request cost two epoll_ctl calls each. Bytes
 * read meanwhile (a pipelined request) wait in the buffer; a full buffer stops reading. */
static void conn_update_reading(http_conn *c)
{
    bool busy = conn_busy(c);
    bool room = !c->rbuf || c->rlen - c->rpos < READ_CHUNK;
    bool want = c->state == CONN_IDLE || c->state == CONN_HEADERS || c->state == CONN_BODY ||
                c->state == CONN_LINGER ||
                (busy && room && !c->peer_eof && c->srv &&
                 c->srv->buffered <= c->srv->o.max_buffered_bytes);
    if (want && !c->reading) {
        int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
        if (rc != 0) {
            log_debug("http: %s: read start: %s", c->label, uv_strerror(rc));
            conn_close(c);
            return;
        }
        c->reading = true;
    } else if (!want && c->reading && c->state != CONN_CLOSING) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

/* ---- timers ------------------------------------------------------------------------------- */

static void on_header_timeout(uv_timer_t *t)
{
    http_conn *c = container_of(t, http_conn, header_timer);
    if (c->state != CONN_HEADERS)
        return;
    log_warn("http: %s: request headers not complete after %llu ms, answering 408", c->label,
             (unsigned long long)c->srv->o.header_timeout_ms);
    conn_fail(c, 408, "request headers took too long");
}

static void on_idle_timeout(uv_timer_t *t)
{
    http_conn *c = container_of(t, http_conn, idle_timer);
    switch (c->state) {
    case CONN_IDLE:
        log_debug("http: %s: idle, closing", c->label);
        conn_close(c);
        break;
    case CONN_BODY:
        log_warn("http: %s: no body bytes for %llu ms, answering 408", c->label,
                 (unsigned long long)c->srv->o.idle_timeout_ms);
        conn_fail(c, 408, "request body stalled");
        break;
    case CONN_WRITING:
        log_warn("http: %s: response not taken for %llu ms, closing", c->label,
                 (unsigned long long)c->srv->o.idle_timeout_ms);
        conn_close(c);
        break;
    case CONN_LINGER:
        conn_close(c);
        break;
    case CONN_HEADERS:
    case CONN_HANDLING:
    case CONN_CLOSING:
        break;
    }
}

/* ---- accepting ---------------------------------------------------------------------------- */

static void conn_set_peer(http_conn *c)
{
    struct sockaddr_storage ss;
    int len = (int)sizeof ss;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0)
        ss.ss_family = AF_UNSPEC;
    http_peer_text((const struct sockaddr *)&ss, c->peer, sizeof c->peer, c->label, sizeof c->label);
}

static http_conn *conn_new(http_server *s)
{
    http_conn *c = xcalloc(1, sizeof *c);
    list_init(&c->link);
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->header_timer);
    uv_timer_init(s->loop, &c->idle_timer);
    c->open_handles = 3;
    s->open_handles += 3;
    llhttp_init(&c->parser, HTTP_REQUEST, &s->settings);
    c->parser.data = c;
    snprintf(c->label, sizeof c->label, "unknown");
    list_push(&s->conns, &c->link);
    s->n_conns++;
    c->state = CONN_IDLE;
    c->accepted_at = uv_now(s->loop);
    return c;
}

/* Has the peer sent anything: read already, or waiting in the socket. */
static bool conn_has_sent(http_conn *c)
{
    if (c->got_bytes)
        return true;
    uv_os_fd_t fd;
    int pending = 0;
    return uv_fileno((const uv_handle_t *)&c->tcp, &fd) == 0 && ioctl(fd, FIONREAD, &pending) == 0 &&
           pending > 0;
}

/* The connection to close when the limit is reached: one doing no work. First the oldest that
 * is done (lingering after its last response) or only waits to be told "no" (a delayed answer
 * to a failed login); else the oldest waiting for, or still sending, its request head, except a
 * connection accepted less than EVICT_GRACE_MS ago that has sent nothing yet: a burst of
 * accepts must not close connections that could not even have spoken. */
static http_conn *oldest_evictable(http_server *s)
{
    list_for_each(n, &s->conns) {
        http_conn *c = container_of(n, http_conn, link);
        if (c->state == CONN_LINGER || (c->state == CONN_HANDLING && c->evictable))
            return c;
    }
    uint64_t now = uv_now(s->loop);
    list_for_each(n, &s->conns) {
        http_conn *c = container_of(n, http_conn, link);
        if ((c->state == CONN_IDLE || c->state == CONN_HEADERS) &&
            (now - c->accepted_at >= EVICT_GRACE_MS || conn_has_sent(c)))
            return c;
    }
    /* Every slot holds a request: the slowest body goes (a trickle of bytes loses to a webhook). */
    http_conn *slowest = NULL;
    uint64_t slowest_rate = UINT64_MAX;
    list_for_each(n, &s->conns) {
        http_conn *c = container_of(n, http_conn, link);
        if (c->state != CONN_BODY || now - c->body_at < EVICT_GRACE_MS)
            continue;
        uint64_t rate = body_rate(c, now);
        if (!slowest || rate < slowest_rate) {
            slowest = c;
            slowest_rate = rate;
        }
    }
    return slowest;
}

static void on_connection(uv_stream_t *ls, int status)
{
    http_server *s = container_of((uv_tcp_t *)ls, http_server, listener);
    if (status < 0) {
        log_warn("http: accept: %s", uv_strerror(status));
        return;
    }
    bool refuse = false;
    if (s->n_conns >= (size_t)s->o.max_connections) {
        http_conn *old = oldest_evictable(s);
        if (old) {
            log_warn("http: %zu connections open (limit %d), closing the oldest idle one (%s)",
                     s->n_conns, s->o.max_connections, old->label);
            conn_close(old);
        } else {
            refuse = true;
        }
    }
    http_conn *c = conn_new(s);
    int rc = uv_accept(ls, (uv_stream_t *)&c->tcp);
    if (rc != 0) {
        log_warn("http: accept: %s", uv_strerror(rc));
        conn_close(c);
        return;
    }
    conn_set_peer(c);
    if (refuse) {
        log_warn("http: %zu connections open (limit %d), all busy: refusing %s", s->n_conns - 1,
                 s->o.max_connections, c->label);
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    log_debug("http: %s: connected (%zu open)", c->label, s->n_conns);
    conn_idle_timer(c, s->o.idle_timeout_ms);
    conn_update_reading(c);
}

/* ---- server ------------------------------------------------------------------------------- */

static void on_server_handle_closed(uv_handle_t *h)
{
    http_server *s = h->data;
    s->open_handles--;
    server_maybe_finish(s);
}

int http_server_start(uv_loop_t *loop, const http_server_opts *o, http_server **out, char *err,
                      size_t errlen)
{
    *out = NULL;
    if (errlen)
        err[0] = '\0';
    if (!o->handler || o->port < 0 || o->port > 65535) {
        snprintf(err, errlen, "http server: no handler or port %d out of range", o->port);
        return UV_EINVAL;
    }
    const char *addr = o->bind_address && *o->bind_address ? o->bind_address : "0.0.0.0";
    char host[64];
    size_t alen = strlen(addr);
    if (alen >= 2 && addr[0] == '[' && addr[alen - 1] == ']') { /* "[::1]" accepted too */
        addr++;
        alen -= 2;
    }
    if (alen >= sizeof host) {
        snprintf(err, errlen, "bind address too long");
        return UV_EINVAL;
    }
    memcpy(host, addr, alen);
    host[alen] = '\0';
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (uv_ip4_addr(host, o->port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, o->port, (struct sockaddr_in6 *)&ss) != 0) {
        snprintf(err, errlen, "bind address \"%s\" is not an IPv4 or IPv6 address",
                 log_esc(host));
        return UV_EINVAL;
    }

    http_server *s = xcalloc(1, sizeof *s);
    list_init(&s->conns);
    s->loop = loop;
    s->o = *o;
    s->o.bind_address = NULL; /* not kept: the caller's string may go away */
    if (!s->o.max_header_bytes)
        s->o.max_header_bytes = DEFAULT_MAX_HEADER_BYTES;
    if (!s->o.header_timeout_ms)
        s->o.header_timeout_ms = DEFAULT_HEADER_TIMEOUT_MS;
    if (!s->o.idle_timeout_ms)
        s->o.idle_timeout_ms = DEFAULT_IDLE_TIMEOUT_MS;
    if (s->o.max_connections <= 0)
        s->o.max_connections = DEFAULT_MAX_CONNECTIONS;
    if (!s->o.max_buffered_bytes)
        s->o.max_buffered_bytes = DEFAULT_MAX_BUFFERED;
    llhttp_settings_init(&s->settings);
    s->settings.on_message_begin = on_message_begin;
    s->settings.on_url = on_url;
    s->settings.on_url_complete = on_url_complete;
    s->settings.on_header_field = on_header_field;
    s->settings.on_header_field_complete = on_header_field_complete;
    s->settings.on_header_value = on_header_value;
    s->settings.on_header_value_complete = on_header_value_complete;
    s->settings.on_headers_complete = on_headers_complete;
    s->settings.on_body = on_body;
    s->settings.on_message_complete = on_message_complete;

    uv_tcp_init(loop, &s->listener);
    uv_timer_init(loop, &s->anchor);
    s->listener.data = s;
    s->anchor.data = s;
    s->listener_open = true;
    s->open_handles = 2;
    int rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, LISTEN_BACKLOG, on_connection);
    if (rc == 0) {
        int len = (int)sizeof ss;
        rc = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len);
    }
    if (rc != 0) {
        snprintf(err, errlen, "cannot listen on %s port %d: %s", log_esc(host), o->port,
                 uv_strerror(rc));
        http_server_close(s, NULL, NULL);
        return rc;
    }
    s->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                       : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    log_debug("http: listening on %s port %d", log_esc(host), s->port);
    *out = s;
    return 0;
}

void http_server_stop_accepting(http_server *s)
{
    if (s->draining || s->closing)
        return;
    s->draining = true;
    if (s->listener_open) {
        s->listener_open = false;
        uv_close((uv_handle_t *)&s->listener, on_server_handle_closed);
    }
    list_for_each_safe(n, tmp, &s->conns) {
        http_conn *c = container_of(n, http_conn, link);
        if (c->state == CONN_IDLE && c->rpos == c->rlen)
            conn_close(c);
    }
}

void http_server_close(http_server *s, void (*done)(void *ud), void *ud)
{
    if (s->closing)
        return;
    s->closing = true;
    s->done = done;
    s->done_ud = ud;
    if (s->listener_open) {
        s->listener_open = false;
        uv_close((uv_handle_t *)&s->listener, on_server_handle_closed);
    }
    uv_close((uv_handle_t *)&s->anchor, on_server_handle_closed);
    list_for_each_safe(n, tmp, &s->conns)
        conn_close(container_of(n, http_conn, link));
}

size_t http_server_conn_count(const http_server *s)
{
    return s->n_conns;
}

int http_server_port(const http_server *s)
{
    return s->port;
}

/* ---- responding --------------------------------------------------------------------------- */

void http_respond(http_request *r, int status, const char *content_type, const char *body,
                  size_t len, const char *extra_headers)
{
    req_priv *q = (req_priv *)r;
    http_conn *c = r->conn;
    if (c->state != CONN_HANDLING || c->req != q) {
        /* The connection went away (server closed) while the handler held the request. */
        log_debug("http: %s: %s %s: connection gone, response %d dropped", c->label,
                  r->method, log_esc(r->target), status);
        c->req = NULL;
        c->handed = false;
        req_free(q);
        conn_account(c);
        conn_maybe_free(c);
        return;
    }
    if (status < 200 || status > 599) {
        log_error("http: handler answered status %d for %s; sending 500", status,
                  log_esc(r->target));
        status = 500;
    }
    http_server *s = c->srv;
    c->evictable = false;
    bool close = !r->keep_alive || s->draining || s->closing;
    bool head = req_is_head(q);
    buf_t out;
    buf_init(&out, 0);
    http_build_response(&out, status, content_type, body, body ? len : 0, extra_headers, close, head);
    log_debug("http: %s: %s %s -> %d", c->label, r->method, log_esc(r->target), status);
    c->req = NULL;
    c->handed = false;
    req_free(q);
    size_t n = out.len;
    conn_write(c, buf_steal(&out), n, close);
}

void http_request_drop_body(http_request *r)
{
    req_priv *q = (req_priv *)r;
    static char empty[1];
    req_release_body(q);
    r->body = empty;
    r->body_len = 0;
    if (r->conn->req == q)
        conn_account(r->conn);
}

void http_request_evictable(http_request *r)
{
    http_conn *c = r->conn;
    if (c->state == CONN_HANDLING && c->req == (req_priv *)r)
        c->evictable = true;
}

void http_respond_json_error(http_request *r, int status, const char *message)
{
    buf_t b;
    buf_init(&b, 0);
    http_build_json_error(&b, status, message);
    http_respond(r, status, "application/json", b.data, b.len, NULL);
    buf_free(&b);
}
