/* test_http_server.c: the HTTP server against real sockets on 127.0.0.1 (port 0): framing,
 * keep-alive, pipelining, limits, timeouts, eviction, shutdown. Each client runs in a forked
 * child with plain blocking sockets (receive timeouts, never sleeps) and reports what it
 * received through a pipe that the test's loop reads; the parent drives uv_run until a
 * condition holds, with a generous guard timer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "http_server.h"
#include "log.h"
#include "util.h"
#include "test_hooks.h"

#define GUARD_MS 30000
#define MAX_SEEN 16

/* ---- log capture -------------------------------------------------------------------------- */

static char last_warn[1024];
static int n_warns;

static void log_sink(log_level_t lvl, const char *line)
{
    if (lvl <= LOG_LVL_WARN) {
        n_warns++;
        snprintf(last_warn, sizeof last_warn, "%s", line);
    }
    if (getenv("PSS_TEST_VERBOSE"))
        fprintf(stderr, "%s\n", line);
}

/* ---- test context ------------------------------------------------------------------------- */

enum handler_mode { H_ECHO, H_DEFER, H_HOLD, H_HOLD_EVICTABLE, H_QUERY, H_JSON_ERROR, H_HEADER, H_BIG };

#define BIG_RESPONSE ((size_t)48 << 20) /* more than loopback socket buffers can absorb */

typedef struct tctx tctx;

typedef void (*client_fn)(int port, buf_t *out);

typedef struct client {
    tctx *t;
    uv_pipe_t pipe;
    pid_t pid;
    bool done;
    buf_t out;
} client;

struct tctx {
    uv_loop_t loop;
    http_server *srv;
    int port;
    bool ipv6;
    enum handler_mode mode;
    size_t body_limit;
    int handled;
    char seen[MAX_SEEN][512];  /* "METHOD target|remote_addr" per handled request */
    http_conn *conn_of[MAX_SEEN];
    http_request *held[MAX_SEEN];
    int n_held;
    bool overlap; /* a request was handed over while another was still held (DEFER) */
    uv_timer_t defer;
    uv_timer_t guard;
    bool guard_fired;
    bool closed;
};

static size_t body_limit_cb(void *ud, const http_request *r)
{
    (void)r;
    return ((tctx *)ud)->body_limit;
}

static void respond_echo(http_request *r)
{
    char *s = xasprintf("%s %s|%s", r->method, r->target, r->body);
    http_respond(r, 200, "text/plain", s, strlen(s), "X-Echo: 1\r\n");
    free(s);
}

static void on_defer(uv_timer_t *tm)
{
    tctx *t = tm->data;
    http_request *r = t->held[0];
    memmove(&t->held[0], &t->held[1], (size_t)(t->n_held - 1) * sizeof t->held[0]);
    t->n_held--;
    respond_echo(r);
}

static void handler(void *ud, http_request *r)
{
    tctx *t = ud;
    if (t->handled < MAX_SEEN) {
        snprintf(t->seen[t->handled], sizeof t->seen[0], "%s %s|%s", r->method, r->target,
                 r->remote_addr);
        t->conn_of[t->handled] = r->conn;
    }
    t->handled++;
    switch (t->mode) {
    case H_ECHO:
        respond_echo(r);
        break;
    case H_DEFER:
        if (t->n_held)
            t->overlap = true;
        t->held[t->n_held++] = r;
        uv_timer_start(&t->defer, on_defer, 50, 0);
        break;
    case H_HOLD:
        t->held[t->n_held++] = r;
        break;
    case H_HOLD_EVICTABLE:
        t->held[t->n_held++] = r;
        http_request_evictable(r);
        break;
    case H_QUERY: {
        char *v = http_query_get(r->query, "path");
        const char *s = v ? v : "(null)";
        http_respond(r, 200, "text/plain", s, strlen(s), NULL);
        free(v);
        break;
    }
    case H_JSON_ERROR:
        http_respond_json_error(r, 404, "no \"such\" path\\\n\x01 caf\xc3\xa9 \xff!");
        break;
    case H_BIG: {
        char *big = xmalloc(BIG_RESPONSE);
        memset(big, 'x', BIG_RESPONSE);
        http_respond(r, 200, "application/octet-stream", big, BIG_RESPONSE, NULL);
        free(big);
        break;
    }
    case H_HEADER: {
        const char *v = http_header_get(r, "x-test");
        char *s = xasprintf("[%s][%s]", v ? v : "(none)", http_header_get(r, "HOST"));
        http_respond(r, 200, "text/plain", s, strlen(s), NULL);
        free(s);
        break;
    }
    }
}

static void on_guard(uv_timer_t *tm)
{
    ((tctx *)tm->data)->guard_fired = true;
}

typedef bool (*cond_fn)(tctx *t, const void *arg);

static void run_until(tctx *t, cond_fn cond, const void *arg)
{
    t->guard_fired = false;
    uv_timer_start(&t->guard, on_guard, GUARD_MS, 0);
    while (!cond(t, arg) && !t->guard_fired)
        uv_run(&t->loop, UV_RUN_ONCE);
    uv_timer_stop(&t->guard);
    assert_true(cond(t, arg));
}

static bool cond_handled(tctx *t, const void *arg)
{
    return t->handled >= *(const int *)arg;
}

static bool cond_conns(tctx *t, const void *arg)
{
    return http_server_conn_count(t->srv) == *(const size_t *)arg;
}

static bool cond_closed(tctx *t, const void *arg)
{
    (void)arg;
    return t->closed;
}

static bool cond_client_done(tctx *t, const void *arg)
{
    (void)t;
    return ((const client *)arg)->done;
}

static void wait_handled(tctx *t, int n)
{
    run_until(t, cond_handled, &n);
}

static void wait_conns(tctx *t, size_t n)
{
    run_until(t, cond_conns, &n);
}

static void start_opts(tctx *t, http_server_opts *o)
{
    memset(t, 0, sizeof *t);
    assert_int_equal(uv_loop_init(&t->loop), 0);
    uv_timer_init(&t->loop, &t->defer);
    uv_timer_init(&t->loop, &t->guard);
    t->defer.data = t;
    t->guard.data = t;
    t->body_limit = (size_t)1 << 20;
    if (!o->bind_address)
        o->bind_address = "127.0.0.1";
    o->port = 0;
    o->handler = handler;
    o->body_limit = body_limit_cb;
    o->ud = t;
    char err[256];
    int rc = http_server_start(&t->loop, o, &t->srv, err, sizeof err);
    if (rc != 0)
        fail_msg("http_server_start: %s", err);
    t->port = http_server_port(t->srv);
    assert_true(t->port > 0);
    n_warns = 0;
    last_warn[0] = '\0';
}

static void start(tctx *t)
{
    http_server_opts o = {0};
    start_opts(t, &o);
}

static void on_closed(void *ud)
{
    ((tctx *)ud)->closed = true;
}

/* Close everything and prove that no handle is left behind. */
static void finish(tctx *t)
{
    if (!t->closed) {
        http_server_close(t->srv, on_closed, t);
        run_until(t, cond_closed, NULL);
    }
    uv_close((uv_handle_t *)&t->defer, NULL);
    uv_close((uv_handle_t *)&t->guard, NULL);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&t->loop), 0);
}

/* ---- forked clients ----------------------------------------------------------------------- */

static void write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        c += w;
        n -= (size_t)w;
    }
}

static void client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    static char chunk[65536];
    *buf = uv_buf_init(chunk, sizeof chunk);
}

static void client_pipe_closed(uv_handle_t *h)
{
    client *cl = container_of((uv_pipe_t *)h, client, pipe);
    cl->done = true;
}

static void client_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    client *cl = container_of((uv_pipe_t *)st, client, pipe);
    if (nread > 0)
        buf_append(&cl->out, buf->base, (size_t)nread);
    else if (nread < 0)
        uv_close((uv_handle_t *)&cl->pipe, client_pipe_closed);
}

static void client_start(tctx *t, client *cl, client_fn fn)
{
    memset(cl, 0, sizeof *cl);
    cl->t = t;
    buf_init(&cl->out, 0);
    buf_appends(&cl->out, "");
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* The child must not keep the server's sockets alive: drop every inherited fd. */
        for (int fd = 3; fd < 1024; fd++)
            if (fd != fds[1])
                close(fd);
        buf_t out;
        buf_init(&out, 0);
        fn(t->ipv6 ? -t->port : t->port, &out);
        write_all(fds[1], out.data ? out.data : "", out.len);
        _exit(0);
    }
    close(fds[1]);
    cl->pid = pid;
    assert_int_equal(uv_pipe_init(&t->loop, &cl->pipe, 0), 0);
    assert_int_equal(uv_pipe_open(&cl->pipe, fds[0]), 0);
    assert_int_equal(uv_read_start((uv_stream_t *)&cl->pipe, client_alloc, client_read), 0);
}

/* Runs the loop until the child has reported; returns its transcript (freed by client_free). */
static const char *client_wait(tctx *t, client *cl)
{
    run_until(t, cond_client_done, cl);
    int st = 0;
    assert_int_equal(waitpid(cl->pid, &st, 0), cl->pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    return cl->out.data;
}

static void client_free(client *cl)
{
    buf_free(&cl->out);
}

/* One client run to completion; the transcript is copied into a static buffer. */
static const char *run_client(tctx *t, client_fn fn)
{
    static char copy[262144];
    client cl;
    client_start(t, &cl, fn);
    snprintf(copy, sizeof copy, "%s", client_wait(t, &cl));
    client_free(&cl);
    return copy;
}

/* -- helpers that run in the child -- */

static int cl_connect(int port)
{
    bool v6 = port < 0;
    int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int rc;
    if (v6) {
        struct sockaddr_in6 a;
        memset(&a, 0, sizeof a);
        a.sin6_family = AF_INET6;
        a.sin6_port = htons((uint16_t)-port);
        a.sin6_addr = in6addr_loopback;
        rc = connect(fd, (struct sockaddr *)&a, sizeof a);
    } else {
        struct sockaddr_in a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        rc = connect(fd, (struct sockaddr *)&a, sizeof a);
    }
    if (rc != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void cl_sendn(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        c += w;
        n -= (size_t)w;
    }
}

static void cl_send(int fd, const char *s)
{
    cl_sendn(fd, s, strlen(s));
}

static void cl_note_error(buf_t *out, ssize_t r)
{
    if (r == 0 || errno == ECONNRESET)
        buf_appends(out, "<CLOSED>");
    else if (errno == EAGAIN || errno == EWOULDBLOCK)
        buf_appends(out, "<TIMEOUT>");
    else
        buf_appends(out, "<ERROR>");
}

static const char *ci_find(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = hay; *p; p++)
        if (ascii_strncasecmp(p, needle, n) == 0)
            return p;
    return NULL;
}

/* Reads one response and appends it to out; returns its status, or -1 (with a marker). */
static int cl_response(int fd, buf_t *out, bool head)
{
    buf_t h;
    buf_init(&h, 65536);
    for (;;) {
        char ch;
        ssize_t r = recv(fd, &ch, 1, 0);
        if (r != 1) {
            buf_append(out, h.data ? h.data : "", h.len);
            cl_note_error(out, r);
            buf_free(&h);
            return -1;
        }
        if (buf_append(&h, &ch, 1) != 0)
            break;
        if (h.len >= 4 && memcmp(h.data + h.len - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    buf_append(out, h.data, h.len);
    int status = (h.len > 12 && memcmp(h.data, "HTTP/1.1 ", 9) == 0)
                     ? (int)strtol(h.data + 9, NULL, 10)
                     : -1;
    const char *cl = ci_find(h.data, "\r\nContent-Length:");
    size_t len = cl ? (size_t)strtoul(cl + 17, NULL, 10) : 0;
    buf_free(&h);
    if (head || status < 200 || status == 204 || status == 304)
        return status;
    while (len) {
        char chunk[4096];
        ssize_t r = recv(fd, chunk, len < sizeof chunk ? len : sizeof chunk, 0);
        if (r <= 0) {
            cl_note_error(out, r);
            return -1;
        }
        buf_append(out, chunk, (size_t)r);
        len -= (size_t)r;
    }
    return status;
}

/* Reads until the server closes; appends what came and "<CLOSED>" (or "<TIMEOUT>"). */
static void cl_until_closed(int fd, buf_t *out)
{
    for (;;) {
        char chunk[4096];
        ssize_t r = recv(fd, chunk, sizeof chunk, 0);
        if (r <= 0) {
            cl_note_error(out, r);
            return;
        }
        buf_append(out, chunk, (size_t)r);
    }
}

static void assert_contains(const char *hay, const char *needle)
{
    if (!strstr(hay, needle))
        fail_msg("expected \"%s\" in:\n%s", needle, hay);
}

static void assert_lacks(const char *hay, const char *needle)
{
    if (strstr(hay, needle))
        fail_msg("did not expect \"%s\" in:\n%s", needle, hay);
}

/* Each needle found after the previous one. */
static void assert_in_order(const char *hay, const char *const *needles, size_t n)
{
    const char *p = hay;
    for (size_t i = 0; i < n; i++) {
        const char *q = strstr(p, needles[i]);
        if (!q)
            fail_msg("expected \"%s\" (item %zu, in order) in:\n%s", needles[i], i, hay);
        p = q + strlen(needles[i]);
    }
}

/* ---- clients ------------------------------------------------------------------------------ */

static void cl_get_close_then_post(int port, buf_t *out)
{
    int fd = cl_connect(port);
    cl_send(fd, "GET /hello?x=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    cl_response(fd, out, false);
    cl_until_closed(fd, out);
    close(fd);
    fd = cl_connect(port);
    cl_send(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\n"
                "Content-Length: 5\r\n\r\nabcde");
    cl_response(fd, out, false);
    close(fd);
    fd = cl_connect(port);
    cl_send(fd, "GET /old HTTP/1.0\r\n\r\n");
    buf_appends(out, "\nHTTP10:");
    cl_response(fd, out, false);
    cl_until_closed(fd, out);
    close(fd);
}

static void cl_two_on_one(int port, buf_t *out)
{
    int fd = cl_connect(port);
    cl_send(fd, "GET /one HTTP/1.1\r\nHost: t\r\n\r\n");
    cl_response(fd, out, false);
    cl_send(fd, "GET /two HTTP/1.1\r\nHost: t\r\n\r\n");
    cl_response(fd, out, false);
    close(fd);
}

static void cl_pipelined(int port, buf_t *out)
{
    int fd = cl_connect(port);
    cl_send(fd, "GET /a HTTP/1.1\r\nHost: t\r\n\r\n"
                "GET /b HTTP/1.1\r\nHost: t\r\n\r\n"
                "POST /c HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nxyz"
                "GET /d HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    for (int i = 0; i < 4; i++)
        cl_response(fd, out, false);
    cl_until_closed(fd, out);
    close(fd);
}

/* Requests, then a half-close (shutdown of the sending side) before any answer: as `nc -N`
 * and some scripts do. Every request sent is still answered, then the connection closes. */
static void cl_pipelined_then_half_close(int port, buf_t *out)
{
    int fd = cl_connect(port);
    cl_send(fd, "GET /a HTTP/1.1\r\nHost: t\r\n\r\n"
                "POST /c HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nxyz"
                "GET /d HTTP/1.1\r\nHost: t\r\n\r\n");
    shutdown(fd, SHUT_WR);
    for (int i = 0; i < 3; i++)
        cl_response(fd, out, false);
    cl_until_closed(fd, out);
    close(fd);
}

static void cl_big_header(int port, buf_t *out)
{
    char big[2100];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    int fd = cl_connect(port);
    cl_send(fd, "GET /fits HTTP/1.1\r\nHost: t\r\nX-Small: 0123456789\r\n\r\n");
    cl_response(fd, out, false);
    cl_send(fd, "GET /big HTTP/1.1\r\nHost: t\r\nX-Big: ");
    cl_send(fd, big);
    cl_send(fd, "\r\n\r\n");
    cl_response(fd, out, false);
    cl_until_closed(fd, out);
    close(fd);
}

static void cl_huge_body_announced(int port, buf_t *out)
{
    int fd = cl_connect(port);
    cl_send(fd, "POST /fits HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n");
    char body[100];
    memset(body, 'b', sizeof body);
    cl_sendn(fd, body, sizeof body);
    cl_response(fd, out, false);
    /* Headers only: the 413 must come without the server waiting for the body. */
    cl_send(fd, "POST /huge HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n");
    cl_response(fd, out, false);
    cl_until_closed(fd, out);
    close(fd);
}

static void cl_chunked(int port, buf_t *out)
{
    int fd = cl_connect(port);
    cl_send(fd, "POST /chunks HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    cl_response(fd, out, false);
    cl_send(fd, "POST /toolong HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                "10\r\n0123456789abcdef\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n");
    cl_response(fd, out, false);
    cl_until_closed(fd, out);
    close(fd);
}

static void cl_garbage(int port, buf_t *out)
{
    /* The start of a TLS 1.2 ClientHello. */
    static const unsigned char hello[] = {0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1,
                                          0x03, 0x03, 0x5b, 0x90, 0x12, 0x00, 0x00, 0x00, 0x00,
                                          0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    int fd = cl_connect(port);
    cl_sendn(fd, hello, sizeof hello);
    buf_appends(out, "TLS:");
    cl_until_closed(fd, out);
    close(fd);
    fd = cl_connect(port);
    cl_send(fd, "GET / HTTP/1.1\r\nNo colon here\r\n\r\n");
    buf_appends(out, "\nNOCOLON:");
    cl_response(fd, out, false);
    cl_until_closed(fd, out);
    close(fd);
    fd = cl_connect(port);
    cl_send(fd, "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab");
    buf_appends(out, "\nTWOLENGTHS:");
    cl_response(fd, out, false);
    cl_until_closed(fd, out);
    close(fd);
}

static void cl_slow_headers(int port, buf_t *out)
{
    int fd = cl_connect(port);
    uint64_t t0 = mono_ms();
    cl_send(fd, "GET /slow HTTP/1.1\r\nHost: t\r\n");
    cl_response(fd, out, false);
    cl_until_closed(fd, out);
    /* The idle timeout is 20 s in this test: a fast answer came from the header timer. */
    buf_appends(out, mono_ms() - t0 < 8000 ? "<FAST>" : "<SLOW>");
    close(fd);
}

static void cl_slow_body(int port, buf_t *out)
{
    int fd = cl_connect(port);
    cl_send(fd, "POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n12345");
    cl_response(fd, out, false);
    cl_until_closed(fd, out);
    close(fd);
}

static void cl_idle(int port, buf_t *out)
{
    int fd = cl_connect(port);
    cl_send(fd, "GET /once HTTP/1.1\r\nHost: t\r\n\r\n");
    cl_response(fd, out, false);
    buf_appends(out, "\nWAIT:");
    cl_until_closed(fd, out);
    close(fd);
    fd = cl_connect(port); /* sends nothing at all */
    buf_appends(out, "\nSILENT:");
    cl_until_closed(fd, out);
    close(fd);
}

static void cl_evict(int port, buf_t *out)
{
    int c1 = cl_connect(port);
    cl_send(c1, "GET /first HTTP/1.1\r\n");
    int c2 = cl_connect(port);
    cl_send(c2, "GET /second HTTP/1.1\r\n");
    int c3 = cl_connect(port);
    cl_send(c3, "GET /third HTTP/1.1\r\nHost: t\r\n\r\n");
    buf_appends(out, "C3:");
    cl_response(c3, out, false);
    buf_appends(out, "\nC1:");
    cl_until_closed(c1, out);
    cl_send(c2, "Host: t\r\n\r\n");
    buf_appends(out, "\nC2:");
    cl_response(c2, out, false);
    close(c1);
    close(c2);
    close(c3);
}

static void cl_send_and_vanish(int port, buf_t *out)
{
    (void)out;
    int fd = cl_connect(port);
    cl_send(fd, "POST /gone HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbody");
    close(fd);
}

static void cl_head(int port, buf_t *out)
{
    int fd = cl_connect(port);
    cl_send(fd, "HEAD /h HTTP/1.1\r\nHost: t\r\n\r\n");
    cl_response(fd, out, true);
    buf_appends(out, "\nNEXT:");
    cl_send(fd, "GET /g HTTP/1.1\r\nHost: t\r\n\r\n");
    cl_response(fd, out, false);
    close(fd);
}

static void cl_query(int port, buf_t *out)
{
    int fd = cl_connect(port);
    cl_send(fd, "GET /api/resolve?x=1&path=%2Ftv%2FShow+Name%21&y HTTP/1.1\r\nHost: t\r\n\r\n");
    cl_response(fd, out, false);
    cl_send(fd, "GET /api/resolve?path=%2 HTTP/1.1\r\nHost: t\r\n\r\n");
    cl_response(fd, out, false);
    cl_send(fd, "GET /api/resolve?path=a%00b HTTP/1.1\r\nHost: t\r\n\r\n");
    cl_response(fd, out, false);
    close(fd);
}

static void cl_request_and_wait(int port, buf_t *out)
{
    int idle = cl_connect(port);
    int fd = cl_connect(port);
    cl_send(fd, "GET /pending HTTP/1.1\r\nHost: t\r\n\r\n");
    if (cl_response(fd, out, false) >= 0)
        cl_until_closed(fd, out);
    buf_appends(out, "\nIDLE:");
    cl_until_closed(idle, out);
    close(fd);
    close(idle);
}

static void cl_drain(int port, buf_t *out)
{
    int fd = cl_connect(port);
    int idle = cl_connect(port);
    cl_send(fd, "GET /last HTTP/1.1\r\nHost: t\r\n\r\n");
    cl_response(fd, out, false);
    cl_until_closed(fd, out);
    buf_appends(out, "\nIDLE:");
    cl_until_closed(idle, out);
    int again = cl_connect(port);
    buf_appends(out, again < 0 ? "\nREFUSED" : "\nACCEPTED");
    if (again >= 0)
        close(again);
    close(fd);
    close(idle);
}

static void cl_expect_continue(int port, buf_t *out)
{
    int fd = cl_connect(port);
    cl_send(fd, "POST /up HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                "Content-Length: 5\r\n\r\n");
    cl_response(fd, out, false); /* the interim 100 */
    cl_send(fd, "12345");
    cl_response(fd, out, false);
    close(fd);
}

static void cl_flood(int port, buf_t *out)
{
    size_t n = 200000;
    char *body = xmalloc(n);
    memset(body, 'f', n);
    int fd = cl_connect(port);
    cl_send(fd, "POST /flood HTTP/1.1\r\nHost: t\r\nContent-Length: 200000\r\n\r\n");
    cl_sendn(fd, body, n);
    cl_response(fd, out, false);
    cl_until_closed(fd, out);
    close(fd);
    free(body);
}

static void cl_get_json_error(int port, buf_t *out)
{
    int fd = cl_connect(port);
    cl_send(fd, "GET /missing HTTP/1.1\r\nHost: t\r\n\r\n");
    cl_response(fd, out, false);
    close(fd);
}

static void cl_byte_by_byte(int port, buf_t *out)
{
    const char *req = "GET /pieces HTTP/1.1\r\nHost: pieces.example\r\n"
                      "X-Test:   split value  \r\nX-Empty:\r\n\r\n";
    int fd = cl_connect(port);
    for (const char *p = req; *p; p++)
        cl_sendn(fd, p, 1);
    cl_response(fd, out, false);
    close(fd);
}

static void cl_connect_expect_close(int port, buf_t *out)
{
    int fd = cl_connect(port);
    buf_appends(out, "REFUSED:");
    if (fd >= 0) {
        cl_send(fd, "GET /refused HTTP/1.1\r\nHost: t\r\n\r\n");
        cl_until_closed(fd, out);
        close(fd);
    }
}

static void cl_get_wait(int port, buf_t *out)
{
    int fd = cl_connect(port);
    cl_send(fd, "GET /busy HTTP/1.1\r\nHost: t\r\n\r\n");
    cl_response(fd, out, false);
    close(fd);
}

static void cl_get_v6(int port, buf_t *out)
{
    int fd = cl_connect(port);
    if (fd < 0) {
        buf_appends(out, "<NOCONNECT>");
        return;
    }
    cl_send(fd, "GET /six HTTP/1.1\r\nHost: t\r\n\r\n");
    cl_response(fd, out, false);
    close(fd);
}

/* Header lines a lenient parser would take: each on its own connection, then a value split
 * between two writes right before a space, which is no fold. */
static void cl_bad_header_lines(int port, buf_t *out)
{
    static const char *const reqs[] = {
        "GET /a HTTP/1.1\r\nHost: t\r\nX-Test: a\r\n b\r\n\r\n",          /* obsolete fold */
        "GET /b HTTP/1.1\r\nHost: t\r\nX-Test : a\r\n\r\n",                 /* space in name */
        "GET /c HTTP/1.1\r\nHost: t\r\nX-Test: a\x01b\r\n\r\n",            /* control byte */
        "GET /d HTTP/1.1\r\nHost: t\r\nX(Test): a\r\n\r\n",                  /* not a token */
    };
    for (size_t i = 0; i < ARRAY_SIZE(reqs); i++) {
        int fd = cl_connect(port);
        cl_send(fd, reqs[i]);
        buf_appends(out, "\nBAD:");
        cl_until_closed(fd, out);
        close(fd);
    }
    int fd = cl_connect(port); /* a fold whose line break comes in a read of its own */
    cl_send(fd, "GET /e HTTP/1.1\r\nHost: t\r\nX-Test: a");
    usleep(50000);
    cl_send(fd, "\r\n");
    usleep(50000);
    cl_send(fd, " b\r\n\r\n");
    buf_appends(out, "\nBAD:");
    cl_until_closed(fd, out);
    close(fd);
    fd = cl_connect(port);
    cl_send(fd, "GET /split HTTP/1.1\r\nHost: t\r\nX-Test: a");
    usleep(50000);
    cl_send(fd, " b\r\n\r\n");
    buf_appends(out, "\nSPLIT:");
    cl_response(fd, out, false);
    close(fd);
}

static void cl_hold_then_evict(int port, buf_t *out)
{
    int c1 = cl_connect(port);
    cl_send(c1, "GET /held HTTP/1.1\r\nHost: t\r\n\r\n");
    usleep(100000); /* handed to the handler, which holds it evictable */
    int c2 = cl_connect(port);
    cl_send(c2, "GET /second HTTP/1.1\r\nHost: t\r\n\r\n");
    buf_appends(out, "C1:");
    cl_until_closed(c1, out);
    buf_appends(out, "\nC2:");
    cl_response(c2, out, false);
    close(c1);
    close(c2);
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_get_and_post_are_answered(void **state)
{
    (void)state;
    tctx t;
    start(&t);
    const char *out = run_client(&t, cl_get_close_then_post);
    assert_int_equal(t.handled, 3);
    assert_string_equal(t.seen[0], "GET /hello?x=1|127.0.0.1");
    assert_string_equal(t.seen[1], "POST /echo|127.0.0.1");
    const char *want[] = {"HTTP/1.1 200 OK\r\n", "Content-Type: text/plain\r\n",
                          "Content-Length: 15\r\n", "Connection: close\r\n", "X-Echo: 1\r\n",
                          "GET /hello?x=1|<CLOSED>", "HTTP/1.1 200 OK\r\n",
                          "Connection: keep-alive\r\n", "POST /echo|abcde", "\nHTTP10:",
                          "Connection: close\r\n", "GET /old|<CLOSED>"};
    assert_in_order(out, want, ARRAY_SIZE(want));
    assert_contains(out, "\r\nDate: ");
    finish(&t);
}

static void test_keep_alive_serves_two_requests_on_one_connection(void **state)
{
    (void)state;
    tctx t;
    start(&t);
    const char *out = run_client(&t, cl_two_on_one);
    assert_int_equal(t.handled, 2);
    assert_ptr_equal(t.conn_of[0], t.conn_of[1]);
    const char *want[] = {"GET /one|", "GET /two|"};
    assert_in_order(out, want, 2);
    assert_lacks(out, "<CLOSED>");
    finish(&t);
}

static void test_pipelined_requests_are_answered_in_order(void **state)
{
    (void)state;
    tctx t;
    start(&t);
    const char *out = run_client(&t, cl_pipelined);
    assert_int_equal(t.handled, 4);
    const char *want[] = {"GET /a|", "GET /b|", "POST /c|xyz", "Connection: close", "GET /d|",
                          "<CLOSED>"};
    assert_in_order(out, want, ARRAY_SIZE(want));
    finish(&t);
}

static void test_deferred_response_holds_back_the_next_pipelined_request(void **state)
{
    (void)state;
    tctx t;
    start(&t);
    t.mode = H_DEFER;
    const char *out = run_client(&t, cl_pipelined);
    assert_int_equal(t.handled, 4);
    assert_false(t.overlap);
    const char *want[] = {"GET /a|", "GET /b|", "POST /c|xyz", "GET /d|", "<CLOSED>"};
    assert_in_order(out, want, ARRAY_SIZE(want));
    finish(&t);
}

static void test_half_closed_client_gets_every_answer_then_a_close(void **state)
{
    for (int deferred = 0; deferred < 2; deferred++) {
        tctx t;
        start(&t);
        if (deferred)
            t.mode = H_DEFER; /* the end of stream arrives while a request is being handled */
        const char *out = run_client(&t, cl_pipelined_then_half_close);
        assert_int_equal(t.handled, 3);
        const char *want[] = {"GET /a|", "POST /c|xyz", "GET /d|", "<CLOSED>"};
        assert_in_order(out, want, ARRAY_SIZE(want));
        finish(&t);
    }
    (void)state;
}

static void test_oversized_headers_get_431_and_close(void **state)
{
    (void)state;
    tctx t;
    http_server_opts o = {.max_header_bytes = 1024};
    start_opts(&t, &o);
    const char *out = run_client(&t, cl_big_header);
    assert_int_equal(t.handled, 1);
    const char *want[] = {"GET /fits|", "HTTP/1.1 431 Request Header Fields Too Large\r\n",
                          "Connection: close\r\n",
                          "{\"status\":\"request_header_fields_too_large\"", "<CLOSED>"};
    assert_in_order(out, want, ARRAY_SIZE(want));
    assert_contains(last_warn, "431");
    finish(&t);
}

static void test_body_over_limit_gets_413_without_being_read(void **state)
{
    (void)state;
    tctx t;
    start(&t);
    t.body_limit = 100;
    const char *out = run_client(&t, cl_huge_body_announced);
    assert_int_equal(t.handled, 1);
    const char *want[] = {"POST /fits|bbbb", "HTTP/1.1 413 Payload Too Large\r\n",
                          "Connection: close\r\n", "\"payload_too_large\"", "<CLOSED>"};
    assert_in_order(out, want, ARRAY_SIZE(want));
    assert_contains(last_warn, "413");
    finish(&t);
}

static void test_chunked_body_is_assembled_and_capped(void **state)
{
    (void)state;
    tctx t;
    start(&t);
    t.body_limit = 20;
    const char *out = run_client(&t, cl_chunked);
    assert_int_equal(t.handled, 1);
    const char *want[] = {"POST /chunks|hello world", "HTTP/1.1 413 ", "<CLOSED>"};
    assert_in_order(out, want, ARRAY_SIZE(want));
    finish(&t);
}

static void test_garbage_and_tls_hello_get_400_or_close(void **state)
{
    (void)state;
    tctx t;
    start(&t);
    const char *out = run_client(&t, cl_garbage);
    assert_int_equal(t.handled, 0);
    const char *tls = strstr(out, "TLS:");
    assert_non_null(tls);
    assert_true(strncmp(tls + 4, "HTTP/1.1 400 ", 13) == 0 || strncmp(tls + 4, "<CLOSED>", 8) == 0);
    const char *want[] = {"TLS:", "<CLOSED>", "NOCOLON:HTTP/1.1 400 Bad Request\r\n",
                          "\"bad_request\"", "<CLOSED>", "TWOLENGTHS:HTTP/1.1 400 ",
                          "<CLOSED>"};
    assert_in_order(out, want, ARRAY_SIZE(want));
    finish(&t);
}

static void test_slow_headers_get_408_from_the_header_timer(void **state)
{
    (void)state;
    tctx t;
    http_server_opts o = {.header_timeout_ms = 200, .idle_timeout_ms = 20000};
    start_opts(&t, &o);
    const char *out = run_client(&t, cl_slow_headers);
    assert_int_equal(t.handled, 0);
    const char *want[] = {"HTTP/1.1 408 Request Timeout\r\n", "\"request_timeout\"",
                          "<CLOSED>", "<FAST>"};
    assert_in_order(out, want, ARRAY_SIZE(want));
    finish(&t);
}

static void test_stalled_body_gets_408_from_the_idle_timer(void **state)
{
    (void)state;
    tctx t;
    http_server_opts o = {.header_timeout_ms = 20000, .idle_timeout_ms = 200};
    start_opts(&t, &o);
    const char *out = run_client(&t, cl_slow_body);
    assert_int_equal(t.handled, 0);
    const char *want[] = {"HTTP/1.1 408 ", "request body stalled", "<CLOSED>"};
    assert_in_order(out, want, ARRAY_SIZE(want));
    finish(&t);
}

static void test_idle_keep_alive_connection_is_closed_silently(void **state)
{
    (void)state;
    tctx t;
    http_server_opts o = {.header_timeout_ms = 20000, .idle_timeout_ms = 200};
    start_opts(&t, &o);
    const char *out = run_client(&t, cl_idle);
    assert_int_equal(t.handled, 1);
    const char *want[] = {"GET /once|", "\nWAIT:<CLOSED>", "\nSILENT:<CLOSED>"};
    assert_in_order(out, want, ARRAY_SIZE(want));
    assert_lacks(out, "408");
    finish(&t);
}

static void test_full_server_evicts_oldest_connection_waiting_for_headers(void **state)
{
    (void)state;
    tctx t;
    http_server_opts o = {.max_connections = 2};
    start_opts(&t, &o);
    const char *out = run_client(&t, cl_evict);
    const char *want[] = {"C3:HTTP/1.1 200 OK", "GET /third|", "\nC1:<CLOSED>",
                          "\nC2:HTTP/1.1 200 OK", "GET /second|"};
    assert_in_order(out, want, ARRAY_SIZE(want));
    assert_lacks(out, "/first");
    assert_int_equal(t.handled, 2);
    finish(&t);
}

static void test_full_server_refuses_when_every_connection_is_busy(void **state)
{
    (void)state;
    tctx t;
    http_server_opts o = {.max_connections = 1};
    start_opts(&t, &o);
    t.mode = H_HOLD;
    client busy;
    client_start(&t, &busy, cl_get_wait);
    wait_handled(&t, 1);
    const char *out = run_client(&t, cl_connect_expect_close);
    assert_string_equal(out, "REFUSED:<CLOSED>");
    assert_int_equal(t.handled, 1);
    assert_int_equal(http_server_conn_count(t.srv), 1);
    http_respond(t.held[0], 200, "text/plain", "late", 4, NULL);
    assert_contains(client_wait(&t, &busy), "\r\n\r\nlate");
    client_free(&busy);
    finish(&t);
}

static void test_peer_gone_while_handler_pending_then_response_is_harmless(void **state)
{
    (void)state;
    tctx t;
    start(&t);
    t.mode = H_HOLD;
    run_client(&t, cl_send_and_vanish);
    wait_handled(&t, 1);
    assert_string_equal(t.held[0]->body, "body");
    http_respond(t.held[0], 200, "text/plain", "too late", 8, NULL);
    wait_conns(&t, 0);
    finish(&t);
}

static void test_server_closed_while_handler_pending_keeps_request_valid(void **state)
{
    (void)state;
    tctx t;
    start(&t);
    t.mode = H_HOLD;
    client cl;
    client_start(&t, &cl, cl_request_and_wait);
    wait_handled(&t, 1);
    http_request *r = t.held[0];
    http_server_close(t.srv, on_closed, &t);
    run_until(&t, cond_closed, NULL);
    /* The server and its handles are gone; the request still is readable and answerable. */
    assert_string_equal(r->target, "/pending");
    assert_string_equal(http_header_get(r, "host"), "t");
    http_respond(r, 200, "text/plain", "dropped", 7, NULL);
    const char *out = client_wait(&t, &cl);
    assert_string_equal(out, "<CLOSED>\nIDLE:<CLOSED>");
    client_free(&cl);
    finish(&t);
}

static void test_stop_accepting_finishes_the_current_request_then_closes(void **state)
{
    (void)state;
    tctx t;
    start(&t);
    t.mode = H_HOLD;
    client cl;
    client_start(&t, &cl, cl_drain);
    wait_handled(&t, 1);
    wait_conns(&t, 2);
    http_server_stop_accepting(t.srv);
    assert_int_equal(http_server_conn_count(t.srv), 1);
    http_respond(t.held[0], 200, "text/plain", "bye", 3, NULL);
    const char *out = client_wait(&t, &cl);
    const char *want[] = {"Connection: close\r\n", "bye<CLOSED>", "\nIDLE:<CLOSED>",
                          "\nREFUSED"};
    assert_in_order(out, want, ARRAY_SIZE(want));
    wait_conns(&t, 0);
    client_free(&cl);
    finish(&t);
}

/* The client here is a plain socket in the test process that sends a request and never
 * reads: the response cannot be written, and the idle timer must end the connection. */
static void test_response_never_taken_is_dropped_after_idle_timeout(void **state)
{
    (void)state;
    tctx t;
    http_server_opts o = {.idle_timeout_ms = 200};
    start_opts(&t, &o);
    t.mode = H_BIG;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)t.port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    const char *req = "GET /big HTTP/1.1\r\nHost: t\r\n\r\n";
    assert_int_equal(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
    wait_handled(&t, 1);
    assert_int_equal(http_server_conn_count(t.srv), 1);
    wait_conns(&t, 0);
    assert_contains(last_warn, "response not taken");
    close(fd);
    finish(&t);
}

static void test_head_gets_headers_only(void **state)
{
    (void)state;
    tctx t;
    start(&t);
    const char *out = run_client(&t, cl_head);
    assert_int_equal(t.handled, 2);
    /* "HEAD /h|" is 8 bytes: announced, not sent; the next response follows directly. */
    const char *want[] = {"Content-Length: 8\r\n", "\r\n\r\n\nNEXT:HTTP/1.1 200 OK",
                          "\r\n\r\nGET /g|"};
    assert_in_order(out, want, ARRAY_SIZE(want));
    assert_lacks(out, "HEAD /h|");
    finish(&t);
}

static void test_query_parameters_are_decoded_in_requests(void **state)
{
    (void)state;
    tctx t;
    start(&t);
    t.mode = H_QUERY;
    const char *out = run_client(&t, cl_query);
    const char *want[] = {"\r\n\r\n/tv/Show Name!", "\r\n\r\n(null)", "\r\n\r\n(null)"};
    assert_in_order(out, want, ARRAY_SIZE(want));
    finish(&t);
}

static void test_url_decoding_rejects_bad_escapes_and_nuls(void **state)
{
    (void)state;
    char *s = http_url_decode("a%2Fb+c%7e", 10, true);
    assert_string_equal(s, "a/b c~");
    free(s);
    s = http_url_decode("a+b", 3, false);
    assert_string_equal(s, "a+b");
    free(s);
    s = http_url_decode("abc%41", 3, false); /* the length bounds the input */
    assert_string_equal(s, "abc");
    free(s);
    assert_null(http_url_decode("abc%41", 5, false)); /* an escape cut by the length */
    assert_null(http_url_decode("abc%4", 5, false));
    assert_null(http_url_decode("%g0", 3, false));
    assert_null(http_url_decode("%", 1, false));
    assert_null(http_url_decode("a%00", 4, false));
    assert_null(http_url_decode("a\0b", 3, false));
    assert_null(http_url_decode(NULL, 0, false));

    s = http_query_get("a=1&path=%2Ftv&b", "path");
    assert_string_equal(s, "/tv");
    free(s);
    s = http_query_get("a=1&flag&b=2", "flag");
    assert_string_equal(s, "");
    free(s);
    s = http_query_get("x%20y=1&x+y=2", "x y");
    assert_string_equal(s, "1");
    free(s);
    s = http_query_get("path=&path=2", "path");
    assert_string_equal(s, "");
    free(s);
    s = http_form_get("path=%2Fmovies%2FA+B%26C", "path");
    assert_string_equal(s, "/movies/A B&C");
    free(s);
    assert_null(http_query_get("pathx=1&xpath=2", "path"));
    assert_null(http_query_get("", "path"));
    assert_null(http_query_get(NULL, "path"));
    assert_null(http_query_get("path=%zz", "path"));
    assert_null(http_query_get("path=a%00", "path"));
    assert_null(http_query_get("%zz=1", "path"));
}

static void test_json_error_is_escaped_valid_json(void **state)
{
    (void)state;
    tctx t;
    start(&t);
    t.mode = H_JSON_ERROR;
    const char *out = run_client(&t, cl_get_json_error);
    const char *want[] = {"HTTP/1.1 404 Not Found\r\n", "Content-Type: application/json\r\n",
                          "\r\n\r\n{\"status\":\"not_found\",\"message\":\"no \\\"such\\\" "
                          "path\\\\\\n\\u0001 caf\xc3\xa9 \xef\xbf\xbd!\"}"};
    assert_in_order(out, want, ARRAY_SIZE(want));
    assert_string_equal(http_status_reason(503), "Service Unavailable");
    assert_string_equal(http_status_reason(299), "");
    finish(&t);
}

static void test_expect_continue_gets_interim_response(void **state)
{
    (void)state;
    tctx t;
    start(&t);
    const char *out = run_client(&t, cl_expect_continue);
    const char *want[] = {"HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 200 OK", "POST /up|12345"};
    assert_in_order(out, want, ARRAY_SIZE(want));
    finish(&t);
}

static void test_lenient_header_lines_get_400_but_split_values_pass(void **state)
{
    (void)state;
    tctx t;
    start(&t);
    t.mode = H_HEADER;
    const char *out = run_client(&t, cl_bad_header_lines);
    const char *want[] = {"\nBAD:HTTP/1.1 400 ", "folded header line", "\nBAD:HTTP/1.1 400 ",
                          "invalid character in a header name", "\nBAD:HTTP/1.1 400 ",
                          "\nBAD:HTTP/1.1 400 ", "\nBAD:HTTP/1.1 400 ", "folded header line",
                          "\nSPLIT:HTTP/1.1 200 OK", "[a b][t]"};
    assert_in_order(out, want, ARRAY_SIZE(want));
    assert_int_equal(t.handled, 1);
    finish(&t);
}

static void test_full_server_closes_a_held_evictable_request_first(void **state)
{
    (void)state;
    tctx t;
    http_server_opts o = {.max_connections = 1};
    start_opts(&t, &o);
    t.mode = H_HOLD_EVICTABLE;
    client cl;
    client_start(&t, &cl, cl_hold_then_evict);
    wait_handled(&t, 2);
    /* The first connection was closed to make room; its request is still valid and its
     * answer is dropped; the second is answered. */
    http_respond(t.held[0], 401, "text/plain", "no", 2, NULL);
    http_respond(t.held[1], 200, "text/plain", "yes", 3, NULL);
    const char *out = client_wait(&t, &cl);
    const char *want[] = {"C1:<CLOSED>", "\nC2:HTTP/1.1 200 OK", "\r\n\r\nyes"};
    assert_in_order(out, want, ARRAY_SIZE(want));
    assert_lacks(out, "401");
    client_free(&cl);
    finish(&t);
}

static void test_buffered_bytes_cap_gets_503(void **state)
{
    (void)state;
    tctx t;
    http_server_opts o = {.max_buffered_bytes = 8192};
    start_opts(&t, &o);
    const char *out = run_client(&t, cl_flood);
    assert_int_equal(t.handled, 0);
    const char *want[] = {"HTTP/1.1 503 Service Unavailable\r\n", "\"service_unavailable\"",
                          "<CLOSED>"};
    assert_in_order(out, want, ARRAY_SIZE(want));
    assert_contains(last_warn, "503");
    finish(&t);
}

static void test_headers_arriving_in_pieces_are_joined_and_trimmed(void **state)
{
    (void)state;
    tctx t;
    start(&t);
    t.mode = H_HEADER;
    const char *out = run_client(&t, cl_byte_by_byte);
    assert_contains(out, "\r\n\r\n[split value][pieces.example]");
    finish(&t);
}

static void test_ipv6_literal_and_remote_addr(void **state)
{
    (void)state;
    tctx t;
    memset(&t, 0, sizeof t);
    assert_int_equal(uv_loop_init(&t.loop), 0);
    http_server *s = NULL;
    char err[256];
    http_server_opts o = {.bind_address = "::1", .handler = handler, .ud = &t};
    int rc = http_server_start(&t.loop, &o, &s, err, sizeof err);
    if (rc != 0) {
        uv_run(&t.loop, UV_RUN_DEFAULT);
        assert_int_equal(uv_loop_close(&t.loop), 0);
        skip(); /* no IPv6 loopback here */
    }
    http_server_close(s, NULL, NULL);
    uv_run(&t.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&t.loop), 0);

    o = (http_server_opts){.bind_address = "[::1]"};
    start_opts(&t, &o);
    t.ipv6 = true;
    const char *out = run_client(&t, cl_get_v6);
    assert_contains(out, "GET /six|");
    assert_string_equal(t.seen[0], "GET /six|::1");
    finish(&t);
}

static void test_start_fails_cleanly(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    char err[256];
    http_server *s = (http_server *)&loop;
    http_server_opts o = {.bind_address = "localhost", .port = 0, .handler = handler};
    assert_int_equal(http_server_start(&loop, &o, &s, err, sizeof err), UV_EINVAL);
    assert_null(s);
    assert_non_null(strstr(err, "localhost"));

    http_server *a = NULL;
    o.bind_address = "127.0.0.1";
    assert_int_equal(http_server_start(&loop, &o, &a, err, sizeof err), 0);
    o.port = http_server_port(a);
    assert_int_equal(http_server_start(&loop, &o, &s, err, sizeof err), UV_EADDRINUSE);
    assert_null(s);
    assert_non_null(strstr(err, "cannot listen"));
    http_server_close(a, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_clean_shutdown_with_open_connections(void **state)
{
    (void)state;
    tctx t;
    start(&t);
    client cl;
    client_start(&t, &cl, cl_idle);
    wait_handled(&t, 1);
    http_server_close(t.srv, on_closed, &t);
    run_until(&t, cond_closed, NULL);
    const char *out = client_wait(&t, &cl);
    assert_contains(out, "WAIT:<CLOSED>");
    client_free(&cl);
    finish(&t);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    log_init();
    log_set_level(LOG_LVL_DEBUG);
    log_set_sink(log_sink);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_and_post_are_answered),
        cmocka_unit_test(test_keep_alive_serves_two_requests_on_one_connection),
        cmocka_unit_test(test_pipelined_requests_are_answered_in_order),
        cmocka_unit_test(test_deferred_response_holds_back_the_next_pipelined_request),
        cmocka_unit_test(test_half_closed_client_gets_every_answer_then_a_close),
        cmocka_unit_test(test_oversized_headers_get_431_and_close),
        cmocka_unit_test(test_body_over_limit_gets_413_without_being_read),
        cmocka_unit_test(test_chunked_body_is_assembled_and_capped),
        cmocka_unit_test(test_garbage_and_tls_hello_get_400_or_close),
        cmocka_unit_test(test_slow_headers_get_408_from_the_header_timer),
        cmocka_unit_test(test_stalled_body_gets_408_from_the_idle_timer),
        cmocka_unit_test(test_idle_keep_alive_connection_is_closed_silently),
        cmocka_unit_test(test_full_server_evicts_oldest_connection_waiting_for_headers),
        cmocka_unit_test(test_full_server_refuses_when_every_connection_is_busy),
        cmocka_unit_test(test_peer_gone_while_handler_pending_then_response_is_harmless),
        cmocka_unit_test(test_server_closed_while_handler_pending_keeps_request_valid),
        cmocka_unit_test(test_stop_accepting_finishes_the_current_request_then_closes),
        cmocka_unit_test(test_response_never_taken_is_dropped_after_idle_timeout),
        cmocka_unit_test(test_head_gets_headers_only),
        cmocka_unit_test(test_query_parameters_are_decoded_in_requests),
        cmocka_unit_test(test_url_decoding_rejects_bad_escapes_and_nuls),
        cmocka_unit_test(test_json_error_is_escaped_valid_json),
        cmocka_unit_test(test_expect_continue_gets_interim_response),
        cmocka_unit_test(test_buffered_bytes_cap_gets_503),
        cmocka_unit_test(test_lenient_header_lines_get_400_but_split_values_pass),
        cmocka_unit_test(test_full_server_closes_a_held_evictable_request_first),
        cmocka_unit_test(test_headers_arriving_in_pieces_are_joined_and_trimmed),
        cmocka_unit_test(test_ipv6_literal_and_remote_addr),
        cmocka_unit_test(test_start_fails_cleanly),
        cmocka_unit_test(test_clean_shutdown_with_open_connections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
