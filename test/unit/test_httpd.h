/* test_httpd.h: a tiny HTTP/1.1 server on the test's own libuv loop, for the http_client, rclone
 * and plex tests. It hands each complete request (head + Content-Length body) to a handler,
 * which answers with thd_respond/thd_send, holds the request, or closes the connection.
 * Header-only (static functions) so each test stays one file plus this. */
#ifndef PSS_TEST_HTTPD_H
#define PSS_TEST_HTTPD_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#define THD_MAX_REQUEST (8u * 1024u * 1024u)

typedef struct thd_server thd_server;
typedef struct thd_conn thd_conn;

typedef struct thd_request {
    const char *head;   /* request line + headers, through the blank line */
    size_t head_len;
    const char *body;
    size_t body_len;
    char method[16];
    char target[2048];
} thd_request;

typedef void (*thd_handler)(void *ud, thd_conn *c, const thd_request *r);

struct thd_conn {
    uv_tcp_t tcp;
    thd_server *srv;
    char *in;
    size_t in_len, in_cap;
    bool closing;
    bool in_handler;
    thd_conn *next;
    void *user; /* free for the handler (e.g. a held request's tag) */
};

struct thd_server {
    uv_tcp_t listener;
    uv_loop_t *loop;
    thd_handler handler;
    void *ud;
    thd_conn *conns;
    int port;
    int open; /* handles not yet through their close callback */
    bool stopping;
    unsigned n_requests;
    unsigned n_connections;
};

typedef struct thd_write {
    uv_write_t req;
    thd_conn *conn;
    char *data;
} thd_write;

static void thd__conn_closed(uv_handle_t *h)
{
    thd_conn *c = (thd_conn *)h;
    thd_server *s = c->srv;
    thd_conn **pp = &s->conns;
    while (*pp && *pp != c)
        pp = &(*pp)->next;
    if (*pp)
        *pp = c->next;
    free(c->in);
    free(c);
    if (--s->open == 0 && s->stopping)
        free(s);
}

static __attribute__((unused)) void thd_close_conn(thd_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_close((uv_handle_t *)&c->tcp, thd__conn_closed);
}

static void thd__written(uv_write_t *w, int status)
{
    (void)status;
    thd_write *tw = (thd_write *)w;
    free(tw->data);
    free(tw);
}

static __attribute__((unused)) void thd_send(thd_conn *c, const void *data, size_t len)
{
    if (c->closing)
        return;
    thd_write *w = calloc(1, sizeof *w);
    w->conn = c;
    w->data = malloc(len ? len : 1);
    memcpy(w->data, data, len);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, thd__written) < 0) {
        free(w->data);
        free(w);
        thd_close_conn(c);
    }
}

static void thd__shut(uv_shutdown_t *req, int status)
{
    (void)status;
    thd_conn *c = req->data;
    free(req);
    thd_close_conn(c);
}

/* Close after everything queued has been written. */
static __attribute__((unused)) void thd_end(thd_conn *c)
{
    if (c->closing)
        return;
    uv_shutdown_t *req = calloc(1, sizeof *req);
    req->data = c;
    if (uv_shutdown(req, (uv_stream_t *)&c->tcp, thd__shut) < 0) {
        free(req);
        thd_close_conn(c);
    }
}

/* A complete keep-alive answer with Content-Length. extra_headers: "" or lines ending in CRLF. */
static __attribute__((unused)) void thd_respond(thd_conn *c, int status, const char *ctype,
                                                const char *extra_headers, const void *body, size_t len)
{
    char head[1024];
    int n = snprintf(head, sizeof head, "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%s%s%s%s\r\n", status,
                     len, ctype ? "Content-Type: " : "", ctype ? ctype : "", ctype ? "\r\n" : "",
                     extra_headers ? extra_headers : "");
    thd_send(c, head, (size_t)n);
    if (len)
        thd_send(c, body, len);
}

static size_t thd__content_length(const char *head, size_t head_len)
{
    const char *p = head;
    const char *end = head + head_len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            break;
        if ((size_t)(eol - p) > 15 && strncasecmp(p, "Content-Length:", 15) == 0)
            return (size_t)strtoul(p + 15, NULL, 10);
        p = eol + 1;
    }
    return 0;
}

static void thd__parse(thd_conn *c)
{
    while (!c->closing && c->in_len > 0) {
        char *eoh = memmem(c->in, c->in_len, "\r\n\r\n", 4);
        if (!eoh)
            return;
        size_t head_len = (size_t)(eoh - c->in) + 4;
        size_t body_len = thd__content_length(c->in, head_len);
        if (c->in_len < head_len + body_len)
            return;
        thd_request r;
        memset(&r, 0, sizeof r);
        r.head = c->in;
        r.head_len = head_len;
        r.body = c->in + head_len;
        r.body_len = body_len;
        /* sscanf needs a C string: the request line alone (c->in is not NUL-terminated). */
        char line[2100];
        size_t ll = (size_t)((char *)memchr(c->in, '\r', head_len) - c->in);
        if (ll >= sizeof line)
            ll = sizeof line - 1;
        memcpy(line, c->in, ll);
        line[ll] = '\0';
        sscanf(line, "%15s %2047s", r.method, r.target);
        c->srv->n_requests++;
        c->in_handler = true;
        c->srv->handler(c->srv->ud, c, &r);
        c->in_handler = false;
        memmove(c->in, c->in + head_len + body_len, c->in_len - head_len - body_len);
        c->in_len -= head_len + body_len;
    }
}

static void thd__alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    thd_conn *c = (thd_conn *)h;
    if (c->in_cap - c->in_len < suggested) {
        c->in_cap = c->in_len + suggested;
        c->in = realloc(c->in, c->in_cap);
    }
    *b = uv_buf_init(c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

static void thd__read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    (void)b;
    thd_conn *c = (thd_conn *)st;
    if (nread < 0) {
        thd_close_conn(c);
        return;
    }
    c->in_len += (size_t)nread;
    if (c->in_len > THD_MAX_REQUEST) {
        thd_close_conn(c);
        return;
    }
    thd__parse(c);
}

static void thd__accept(uv_stream_t *l, int status)
{
    thd_server *s = (thd_server *)l;
    if (status < 0)
        return;
    thd_conn *c = calloc(1, sizeof *c);
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    s->open++;
    c->next = s->conns;
    s->conns = c;
    s->n_connections++;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) < 0 || uv_read_start((uv_stream_t *)&c->tcp, thd__alloc, thd__read) < 0)
        thd_close_conn(c);
}

/* Start listening on 127.0.0.1, a free port. Returns the server (freed by thd_stop's last close). */
static __attribute__((unused)) thd_server *thd_start(uv_loop_t *loop, thd_handler handler, void *ud)
{
    thd_server *s = calloc(1, sizeof *s);
    s->loop = loop;
    s->handler = handler;
    s->ud = ud;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    uv_tcp_init(loop, &s->listener);
    s->open = 1;
    if (uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0) < 0 ||
        uv_listen((uv_stream_t *)&s->listener, 128, thd__accept) < 0) {
        fprintf(stderr, "test httpd: cannot listen\n");
        abort();
    }
    struct sockaddr_storage ss;
    int len = sizeof ss;
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len);
    s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return s;
}

static void thd__listener_closed(uv_handle_t *h)
{
    thd_server *s = (thd_server *)h;
    if (--s->open == 0)
        free(s);
}

/* Close the listener and every connection; the server frees itself when all are closed. */
static __attribute__((unused)) void thd_stop(thd_server *s)
{
    s->stopping = true;
    for (thd_conn *c = s->conns; c; c = c->next)
        thd_close_conn(c);
    uv_close((uv_handle_t *)&s->listener, thd__listener_closed);
}

/* A port nothing listens on (bound, then closed). */
static __attribute__((unused)) int thd_refused_port(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    uv_tcp_t t;
    uv_tcp_init(&loop, &t);
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    uv_tcp_bind(&t, (const struct sockaddr *)&addr, 0);
    struct sockaddr_storage ss;
    int len = sizeof ss;
    uv_tcp_getsockname(&t, (struct sockaddr *)&ss, &len);
    int port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return port;
}

/* Run the loop until *flag is set or timeout_ms passes; returns *flag. */
static void thd__tick(uv_timer_t *t)
{
    (void)t;
}

static __attribute__((unused)) bool thd_run_until(uv_loop_t *loop, const bool *flag, uint64_t timeout_ms)
{
    uv_timer_t tick;
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, thd__tick, 20, 20);
    uint64_t end = uv_now(loop) + timeout_ms;
    while (!*flag && uv_now(loop) < end)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return *flag;
}

#endif
