/* fuzz_http.c: the whole request path of the daemon: bytes on a TCP connection -> llhttp and the
 * server's limits (http_server.c) -> the router -> the real handlers (webhooks, the manual form,
 * the API, static files, auth and its failure throttle) -> the real queue and state database.
 *
 * LLVMFuzzerInitialize starts the application once (app_start, as main does) on 127.0.0.1 with
 * Plex unconfigured and the rclone step off, so nothing leaves the process; its state lives in a
 * fresh directory under $TMPDIR (default: the working directory). Each input is written on a
 * new connection (then the write side is shut), and the loop runs until the daemon closes the
 * connection or 50 ms pass (a failed login is answered late on purpose: its answer is then
 * dropped, as for a client that gave up). TRUSTED_PROXIES holds 127.0.0.1, so X-Forwarded-For
 * is parsed too. Checked: every answer is an HTTP/1.1 status line, and
 * no request is ever answered 500. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "router.h"
#include "static.h"
#include "fuzz_common.h"
#include "http_server.h"
#include "util.h"

#define BUDGET_MS 50

static uv_loop_t loop;
static app_t *app;
static int port;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sin;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) < 0)
        abort();
    close(fd);
    return ntohs(sin.sin_port);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet();
    signal(SIGPIPE, SIG_IGN);
    const char *tmp = getenv("TMPDIR");
    char *dir = xasprintf("%s/pss-fuzz-http-XXXXXX", tmp && *tmp ? tmp : ".");
    if (!mkdtemp(dir))
        abort();
    port = free_port();
    char port_text[16];
    snprintf(port_text, sizeof port_text, "%d", port);
    env_map env = {0};
    static const char *const kv[] = {
        "BIND_ADDRESS", "127.0.0.1",
        "DURABILITY", "process",
        "MANUAL_USER", "admin",
        "MANUAL_PASS", "fuzz-pass",
        "WEBHOOK_DELAY", "1h",
        "WEBHOOK_MAX_DELAY", "1h",
        "USE_RCLONE", "false",
        "LOG_LEVEL", "error",
        "MAX_HEADER_BYTES", "4096",
        "MAX_BODY", "8192",
        "MAX_WEBHOOK_BODY", "65536",
        "MAX_BUFFERED_BYTES", "1048576",
        "MAX_CONNECTIONS", "64",
        "TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8, ::1",
        "HEADER_TIMEOUT", "2s",
        "IDLE_TIMEOUT", "2s",
        "PATH_REPLACEMENTS", "{\"/data\": \"/media\"}",
        "SECTION_MAPPING", "{\"/media/tv\": 1, \"/media/movies\": 2}",
        NULL};
    for (size_t i = 0; kv[i]; i += 2)
        env_map_set(&env, kv[i], kv[i + 1]);
    env_map_set(&env, "PORT", port_text);
    env_map_set(&env, "STATE_DIR", dir);
    free(dir);
    config_t cfg;
    char err[512];
    if (config_build(&cfg, &env, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_http: config refused: %s\n", err);
        abort();
    }
    uv_loop_init(&loop);
    static const app_http http = {
        .handler = router_handle, .body_limit = router_body_limit, .head_check = router_head_check};
    static_init();
    app = app_new();
    if (app_start(app, &loop, &env, NULL, &cfg, &http) != 0) {
        fprintf(stderr, "fuzz_http: the application did not start\n");
        abort();
    }
    fuzz_quiet(); /* app_start applied LOG_LEVEL */
    return 0;
}

/* Run the loop for what is ready, then wait up to ms for the client socket or the loop. */
static void pump(int fd, short events, int ms)
{
    uv_run(&loop, UV_RUN_NOWAIT);
    int t = uv_backend_timeout(&loop);
    if (t < 0 || t > ms)
        t = ms;
    struct pollfd p[2] = {{.fd = fd, .events = events}, {.fd = uv_backend_fd(&loop), .events = POLLIN}};
    poll(p, 2, t);
    uv_run(&loop, UV_RUN_NOWAIT);
}

static void check_answer(const char *resp, size_t len)
{
    if (len == 0)
        return;
    size_t k = len < 9 ? len : 9;
    if (memcmp(resp, "HTTP/1.1 ", k) != 0)
        abort();
    if (len >= 12 && memcmp(resp + 9, "500", 3) == 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        abort();
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0 && errno != EINPROGRESS)
        abort();
    size_t off = 0;
    bool shut = false, eof = false;
    char head[16];
    size_t head_len = 0;
    uint64_t deadline = now_ms() + BUDGET_MS;
    while (!eof && now_ms() < deadline) {
        if (off < size) {
            ssize_t n = send(fd, data + off, size - off, MSG_NOSIGNAL);
            if (n > 0)
                off += (size_t)n;
            else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTCONN)
                off = size; /* the daemon closed on us: read what it said */
        }
        if (off == size && !shut && shutdown(fd, SHUT_WR) == 0)
            shut = true;
        char buf[65536];
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r > 0) {
            if (head_len < sizeof head) {
                size_t k = (size_t)r < sizeof head - head_len ? (size_t)r : sizeof head - head_len;
                memcpy(head + head_len, buf, k);
                head_len += k;
            }
            continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTCONN)) {
            eof = true;
            break;
        }
        pump(fd, (short)(POLLIN | (off < size || !shut ? POLLOUT : 0)), 20);
    }
    check_answer(head, head_len);
    /* Close with a reset: no TIME_WAIT piles up over millions of connections. */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
    for (int i = 0; i < 4; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    return 0;
}
