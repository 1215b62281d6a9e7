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
 * sends nothing and frees it (and the connection if that was all that kept it).
 *
 * This file: starting and stopping the server, assembling each request from llhttp's callbacks
 * (target, headers, body, and the limits on each), and sending the handlers' answers. The
 * connection's life (accepting, reading, timers, writing, closing) is http_conn.c's, below it;
 * what the two share is in http_server_internal.h. */
#include "http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <llhttp.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "http_server_internal.h"
#include "list.h"
#include "log.h"
#include "util.h"

#define LISTEN_BACKLOG 511
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

static char continue_line[] = "HTTP/1.1 100 Continue\r\n\r\n";

/* ---- requests ----------------------------------------------------------------------------- */

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
    http_req_free(c->req); /* none expected: one request at a time */
    req_priv *q = http_req_new(c);
    memcpy(q->pub.remote_addr, c->peer, sizeof q->pub.remote_addr);
    c->req = q;
    c->state = CONN_HEADERS;
    uv_timer_stop(&c->idle_timer);
    http_conn_header_timer(c, c->srv->o.header_timeout_ms);
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
        http_conn_idle_timer(c, s->o.idle_timeout_ms);
        maybe_send_continue(c, p);
    }
    return 0;
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

/* ---- server ------------------------------------------------------------------------------- */

static void on_server_handle_closed(uv_handle_t *h)
{
    http_server *s = h->data;
    s->open_handles--;
    http_server_maybe_finish(s);
}

/* The bind address ("0.0.0.0" when unset; "[::1]" accepted too) and port into *ss, the address
 * text into host (for messages). 0, or UV_EINVAL with err saying why. */
static int bind_addr_parse(const http_server_opts *o, char *host, size_t hostlen,
                           struct sockaddr_storage *ss, char *err, size_t errlen)
{
    const char *addr = o->bind_address && *o->bind_address ? o->bind_address : "0.0.0.0";
    size_t alen = strlen(addr);
    if (alen >= 2 && addr[0] == '[' && addr[alen - 1] == ']') { /* "[::1]" accepted too */
        addr++;
        alen -= 2;
    }
    if (alen >= hostlen) {
        snprintf(err, errlen, "bind address too long");
        return UV_EINVAL;
    }
    memcpy(host, addr, alen);
    host[alen] = '\0';
    memset(ss, 0, sizeof *ss);
    if (uv_ip4_addr(host, o->port, (struct sockaddr_in *)ss) != 0 &&
        uv_ip6_addr(host, o->port, (struct sockaddr_in6 *)ss) != 0) {
        snprintf(err, errlen, "bind address \"%s\" is not an IPv4 or IPv6 address",
                 log_esc(host));
        return UV_EINVAL;
    }
    return 0;
}

/* A server with o's options (0 or unset: the defaults) and the parser's callbacks; no handles
 * yet. */
static http_server *server_new(uv_loop_t *loop, const http_server_opts *o)
{
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
    return s;
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
    char host[64];
    struct sockaddr_storage ss;
    int rc = bind_addr_parse(o, host, sizeof host, &ss, err, errlen);
    if (rc != 0)
        return rc;
    http_server *s = server_new(loop, o);
    uv_tcp_init(loop, &s->listener);
    uv_timer_init(loop, &s->anchor);
    s->listener.data = s;
    s->anchor.data = s;
    s->listener_open = true;
    s->open_handles = 2;
    rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, LISTEN_BACKLOG, http_conn_on_connection);
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
            http_conn_close(c);
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
        http_conn_close(container_of(n, http_conn, link));
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
        http_req_free(q);
        http_conn_account(c);
        http_conn_maybe_free(c);
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
    bool head = http_req_is_head(q);
    buf_t out;
    buf_init(&out, 0);
    http_build_response(&out, status, content_type, body, body ? len : 0, extra_headers, close, head);
    log_debug("http: %s: %s %s -> %d", c->label, r->method, log_esc(r->target), status);
    c->req = NULL;
    c->handed = false;
    http_req_free(q);
    size_t n = out.len;
    http_conn_write(c, buf_steal(&out), n, close);
}

void http_request_drop_body(http_request *r)
{
    req_priv *q = (req_priv *)r;
    static char empty[1];
    http_req_release_body(q);
    r->body = empty;
    r->body_len = 0;
    if (r->conn->req == q)
        http_conn_account(r->conn);
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
