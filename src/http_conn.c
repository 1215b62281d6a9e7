/* http_conn.c: one HTTP connection's life on libuv: accepting (and evicting or refusing at the
 * connection limit), reading and the parse loop that hands each complete request to the
 * handler, the header and idle timers, writing, lingering and closing, and the server's pools
 * of spare buffers and requests. The states and ownership rules are at the top of
 * http_server.c, which sits above this file and assembles requests from llhttp's callbacks
 * (http_server_internal.h). */
#include <errno.h>
#include <llhttp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "http_server_internal.h"
#include "list.h"
#include "log.h"
#include "util.h"

#define READ_CHUNK ((size_t)65536)
#define LINGER_MAX_MS 2000
#define EVICT_GRACE_MS 250 /* a new connection's time to send its first bytes before eviction */
/* Room reserved for a request's text (target and headers); a buffer that grew past twice this
 * is not kept when the request is. */
#define REQ_TEXT_BYTES ((size_t)512)

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
void http_req_release_body(req_priv *q)
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

void http_req_free(req_priv *q)
{
    if (!q)
        return;
    if (q->pub.headers != q->headers_inline) {
        free(q->pub.headers);
        free(q->at);
    }
    http_req_release_body(q);
    http_server *s = q->pub.conn ? q->pub.conn->srv : NULL;
    if (s && !s->closing && s->n_spare_req < SPARE_REQS && q->text.cap <= 2 * REQ_TEXT_BYTES) {
        s->spare_req[s->n_spare_req++] = q;
        return;
    }
    buf_free(&q->text);
    free(q);
}

/* A cleared request for c, reused when the server has one. */
req_priv *http_req_new(http_conn *c)
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

bool http_req_is_head(const req_priv *q)
{
    return q && q->pub.method && strcmp(q->pub.method, "HEAD") == 0;
}

/* ---- accounting and small connection helpers --------------------------------------------- */

void http_conn_account(http_conn *c)
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
void http_conn_maybe_free(http_conn *c)
{
    if (c->open_handles > 0 || c->req)
        return;
    conn_drop_input(c);
    free(c->wbuf);
    c->wbuf = NULL;
    c->wlen = 0;
    http_conn_account(c);
    list_del(&c->link);
    free(c);
}

void http_server_maybe_finish(http_server *s)
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
        http_conn_maybe_free(c);
    if (s) {
        s->open_handles--;
        http_server_maybe_finish(s);
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
void http_conn_close(http_conn *c)
{
    if (c->state == CONN_CLOSING)
        return;
    log_debug("http: %s: closing", c->label);
    c->state = CONN_CLOSING;
    c->reading = false;
    if (c->srv)
        c->srv->n_conns--;
    if (c->req && !c->handed) {
        http_req_free(c->req);
        c->req = NULL;
    }
    conn_drop_input(c);
    http_conn_account(c);
    uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
    uv_close((uv_handle_t *)&c->header_timer, on_header_timer_closed);
    uv_close((uv_handle_t *)&c->idle_timer, on_idle_timer_closed);
}

void http_conn_idle_timer(http_conn *c, uint64_t ms)
{
    uv_timer_start(&c->idle_timer, on_idle_timeout, ms, 0);
}

void http_conn_header_timer(http_conn *c, uint64_t ms)
{
    uv_timer_start(&c->header_timer, on_header_timeout, ms, 0);
}

/* ---- writing ------------------------------------------------------------------------------ */

static void on_shutdown(uv_shutdown_t *req, int status)
{
    http_conn *c = container_of(req, http_conn, shutdown_req);
    if (status < 0 && c->state != CONN_CLOSING)
        http_conn_close(c);
}

/* Response sent and no more requests wanted: send FIN, then discard input until the peer
 * closes too (or a short timer runs out). */
static void conn_linger(http_conn *c)
{
    c->state = CONN_LINGER;
    conn_drop_input(c);
    http_conn_account(c);
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        http_conn_close(c);
        return;
    }
    uint64_t ms = c->srv->o.idle_timeout_ms;
    http_conn_idle_timer(c, ms < LINGER_MAX_MS ? ms : LINGER_MAX_MS);
    conn_update_reading(c);
}

/* Keep-alive: the next request may already be buffered (pipelined); parse it before reading. */
static void conn_next_request(http_conn *c)
{
    c->state = CONN_IDLE;
    http_conn_idle_timer(c, c->srv->o.idle_timeout_ms);
    conn_parse(c);
    conn_update_reading(c);
}

static void on_write(uv_write_t *req, int status)
{
    http_conn *c = container_of(req, http_conn, wreq);
    free(c->wbuf);
    c->wbuf = NULL;
    c->wlen = 0;
    http_conn_account(c);
    if (c->state == CONN_CLOSING)
        return;
    if (status < 0) {
        log_debug("http: %s: write failed: %s", c->label, uv_strerror(status));
        http_conn_close(c);
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
        http_conn_close(c);
        return;
    }
    /* Draining may have begun while this keep-alive response was in flight. */
    if (c->close_after || c->srv->draining)
        conn_linger(c);
    else
        conn_next_request(c);
}

/* Takes ownership of data (malloc'd). */
void http_conn_write(http_conn *c, char *data, size_t len, bool close_after)
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
            http_conn_account(c);
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
    http_conn_account(c);
    /* The handler may have run long since this loop turn began: start the stall timer from
     * now, not from the loop's cached time. */
    uv_update_time(c->srv->loop);
    http_conn_idle_timer(c, c->srv->o.idle_timeout_ms);
    uv_buf_t b = uv_buf_init(data, (unsigned)len);
    int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc != 0) {
        log_debug("http: %s: write failed: %s", c->label, uv_strerror(rc));
        free(c->wbuf);
        c->wbuf = NULL;
        c->wlen = 0;
        http_conn_close(c);
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
        http_conn_close(c);
        return;
    }
    bool head = http_req_is_head(c->req);
    http_req_free(c->req);
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
    http_conn_write(c, buf_steal(&out), len, true);
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
    http_conn_account(c);
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
    http_conn_account(c);
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
        http_conn_close(c);
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
        http_conn_account(c);
        conn_update_reading(c);
        return;
    }
    if (c->state == CONN_BODY)
        http_conn_idle_timer(c, s->o.idle_timeout_ms);
    http_conn_account(c);
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
            http_conn_close(c);
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
        http_conn_close(c);
        break;
    case CONN_BODY:
        log_warn("http: %s: no body bytes for %llu ms, answering 408", c->label,
                 (unsigned long long)c->srv->o.idle_timeout_ms);
        conn_fail(c, 408, "request body stalled");
        break;
    case CONN_WRITING:
        log_warn("http: %s: response not taken for %llu ms, closing", c->label,
                 (unsigned long long)c->srv->o.idle_timeout_ms);
        http_conn_close(c);
        break;
    case CONN_LINGER:
        http_conn_close(c);
        break;
    case CONN_HEADERS:
    case CONN_HANDLING:
    case CONN_CLOSING:
        break;
    }
}

/* ---- accepting ---------------------------------------------------------------------------- */

/* Bytes a second the body has averaged (a body younger than a second counts as fast). */
static uint64_t body_rate(const http_conn *c, uint64_t now)
{
    uint64_t ms = now - c->body_at;
    return ms < 1000 ? UINT64_MAX : (uint64_t)c->req->body_len * 1000u / ms;
}

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

void http_conn_on_connection(uv_stream_t *ls, int status)
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
            http_conn_close(old);
        } else {
            refuse = true;
        }
    }
    http_conn *c = conn_new(s);
    int rc = uv_accept(ls, (uv_stream_t *)&c->tcp);
    if (rc != 0) {
        log_warn("http: accept: %s", uv_strerror(rc));
        http_conn_close(c);
        return;
    }
    conn_set_peer(c);
    if (refuse) {
        log_warn("http: %zu connections open (limit %d), all busy: refusing %s", s->n_conns - 1,
                 s->o.max_connections, c->label);
        http_conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    log_debug("http: %s: connected (%zu open)", c->label, s->n_conns);
    http_conn_idle_timer(c, s->o.idle_timeout_ms);
    conn_update_reading(c);
}
