/* http_client.c: outgoing HTTP on libcurl's multi interface, driven by the libuv loop through one
 * uv_poll_t per socket and one uv_timer_t (curl's "socket action" API; no threads of our own). */
#include "http_client.h"

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "list.h"
#include "log.h"
#include "util.h"

#define HTTPC_DEFAULT_MAX_RESPONSE (1024u * 1024u)
#define HTTPC_DEFAULT_TIMEOUT_MS 30000u
#define HTTPC_MAX_CONNECT_MS 10000u

/* One uv_poll_t per socket curl asks us to watch. Created in the socket callback, stored with
 * curl_multi_assign, closed at once on CURL_POLL_REMOVE (a reused fd gets a fresh one). */
typedef struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    httpc_t *h;
    list_node link; /* h->socks, while not closing */
} sock_ctx;

struct httpc_req {
    httpc_t *h;
    CURL *easy;
    struct curl_slist *headers;
    char *body;     /* our copy of the POST body (curl does not copy POSTFIELDS) */
    buf_t resp;     /* capped at max_response_bytes */
    bool too_big;
    bool finishing; /* its callback is running: cancel is a no-op */
    char errbuf[CURL_ERROR_SIZE];
    httpc_cb cb;
    void (*release)(void *ud);
    void *ud;
    uint64_t start_ms;
    list_node link; /* h->reqs */
};

struct httpc {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    list_node socks; /* sock_ctx */
    list_node reqs;  /* httpc_req */
    size_t n_reqs;
    size_t open_handles; /* timer + polls not yet through their close callback */
    bool closing;
    void (*done)(void *ud);
    void *done_ud;
};

static bool curl_inited;

/* ---- lists ---------------------------------------------------------------------------- */

static void req_link(httpc_t *h, httpc_req *r)
{
    list_push(&h->reqs, &r->link);
    h->n_reqs++;
}

static void req_unlink(httpc_t *h, httpc_req *r)
{
    list_del(&r->link);
    h->n_reqs--;
}

static void req_free(httpc_req *r)
{
    if (r->easy)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    free(r->body);
    buf_free(&r->resp);
    free(r);
}

/* ---- handle closing -------------------------------------------------------------------- */

static void httpc_handle_closed(httpc_t *h)
{
    h->open_handles--;
    if (h->closing && h->open_handles == 0) {
        void (*done)(void *) = h->done;
        void *ud = h->done_ud;
        free(h);
        if (done)
            done(ud);
    }
}

static void sock_closed(uv_handle_t *handle)
{
    sock_ctx *s = container_of((uv_poll_t *)handle, sock_ctx, poll);
    httpc_t *h = s->h;
    free(s);
    httpc_handle_closed(h);
}

static void timer_closed(uv_handle_t *handle)
{
    httpc_t *h = container_of((uv_timer_t *)handle, httpc_t, timer);
    httpc_handle_closed(h);
}

static void sock_close(sock_ctx *s)
{
    list_del(&s->link);
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, sock_closed);
}

/* ---- completion ------------------------------------------------------------------------ */

static httpc_error map_curl_error(CURLcode rc, bool too_big)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
        return HTTPC_ERR_CONNECT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return HTTPC_ERR_DNS;
    case CURLE_OPERATION_TIMEDOUT:
        return HTTPC_ERR_TIMEOUT;
    case CURLE_FILESIZE_EXCEEDED:
        return HTTPC_ERR_TOO_BIG;
    case CURLE_WRITE_ERROR:
        return too_big ? HTTPC_ERR_TOO_BIG : HTTPC_ERR_PROTOCOL;
    default:
        return HTTPC_ERR_PROTOCOL;
    }
}

/* TLS failures that repeat on every try: the peer does not speak TLS at all (our ClientHello
 * reached a plain-HTTP server, whose answer OpenSSL reads as a bad record), its certificate is
 * refused, or the CA file cannot be used. A handshake cut short by a reset is an ordinary
 * connection failure (false). */
static bool tls_config_error(CURLcode rc, const char *errbuf, httpc_tls *kind)
{
    *kind = HTTPC_TLS_OTHER;
    switch (rc) {
    case CURLE_SSL_CACERT_BADFILE:
        *kind = HTTPC_TLS_CA_FILE;
        return true;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_INVALIDCERTSTATUS:
        *kind = HTTPC_TLS_CERT;
        return true;
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        return true;
    case CURLE_SSL_CONNECT_ERROR:
        if (strstr(errbuf, "wrong version number") || strstr(errbuf, "packet length too long") ||
            strstr(errbuf, "unknown protocol") || strstr(errbuf, "record layer failure") ||
            strstr(errbuf, "http request")) {
            *kind = HTTPC_TLS_PLAIN_HTTP;
            return true;
        }
        if (strstr(errbuf, "certificate")) {
            *kind = HTTPC_TLS_CERT;
            return true;
        }
        return false;
    default:
        return false;
    }
}

/* The transfer of r ended with rc (already removed from the multi handle): report it, free it. */
static void req_finish(httpc_t *h, httpc_req *r, CURLcode rc)
{
    httpc_result res;
    memset(&res, 0, sizeof res);
    res.elapsed_ms = mono_ms() - r->start_ms;
    res.error = rc == CURLE_OK ? HTTPC_OK : map_curl_error(rc, r->too_big);
    if (res.error == HTTPC_ERR_PROTOCOL && tls_config_error(rc, r->errbuf, &res.tls))
        res.error = HTTPC_ERR_TLS;
    if (res.error == HTTPC_OK) {
        long status = 0;
        char *ctype = NULL;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(r->easy, CURLINFO_CONTENT_TYPE, &ctype);
        res.status = status;
        res.content_type = ctype;
        res.body = r->resp.data ? r->resp.data : "";
        res.body_len = r->resp.len;
        res.message = "ok";
    } else {
        res.body = "";
        if (res.error == HTTPC_ERR_TOO_BIG)
            res.message = "response body larger than the limit";
        else if (r->errbuf[0])
            res.message = r->errbuf;
        else
            res.message = curl_easy_strerror(rc);
    }
    req_unlink(h, r);
    r->finishing = true;
    r->cb(r->ud, &res);
    req_free(r);
}

/* Drain curl's completion messages. Called after every curl_multi_socket_action, never from a
 * curl callback. A user callback may start or cancel requests, or close h: re-check h->multi. */
static void check_multi_info(httpc_t *h)
{
    CURLMsg *msg;
    int left;
    while (h->multi && (msg = curl_multi_info_read(h->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        /* msg is only valid until the next curl call: copy what we need first. */
        CURL *easy = msg->easy_handle;
        CURLcode rc = msg->data.result;
        char *priv = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
        curl_multi_remove_handle(h->multi, easy);
        if (priv)
            req_finish(h, (httpc_req *)(void *)priv, rc);
    }
}

static void socket_action(httpc_t *h, curl_socket_t fd, int flags)
{
    int running = 0;
    CURLMcode mc = curl_multi_socket_action(h->multi, fd, flags, &running);
    if (mc != CURLM_OK)
        log_error("http client: curl_multi_socket_action: %s", curl_multi_strerror(mc));
    check_multi_info(h);
}

/* ---- libuv -> curl --------------------------------------------------------------------- */

static void on_poll(uv_poll_t *p, int status, int events)
{
    sock_ctx *s = container_of(p, sock_ctx, poll);
    httpc_t *h = s->h;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    /* s may be closed by curl's socket callback during this call; do not touch it after. */
    socket_action(h, s->fd, flags);
}

static void on_timer(uv_timer_t *t)
{
    httpc_t *h = container_of(t, httpc_t, timer);
    socket_action(h, CURL_SOCKET_TIMEOUT, 0);
}

/* ---- curl -> libuv (curl callbacks: no curl_multi_* calls except curl_multi_assign) ------ */

static int curl_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    httpc_t *h = userp;
    sock_ctx *s = socketp;

    if (what == CURL_POLL_REMOVE) {
        if (s) {
            sock_close(s);
            /* curl drops its own entry right after; unassign so nothing can see a stale one.
             * During httpc_close the multi handle is being torn down: leave it alone. */
            if (!h->closing)
                curl_multi_assign(h->multi, fd, NULL);
        }
        return 0;
    }
    if (h->closing)
        return 0;
    if (!s) {
        s = xcalloc(1, sizeof *s);
        list_init(&s->link);
        s->fd = fd;
        s->h = h;
        int rc = uv_poll_init_socket(h->loop, &s->poll, fd);
        if (rc < 0) {
            log_error("http client: cannot watch socket %d: %s", (int)fd, uv_strerror(rc));
            free(s);
            return -1; /* curl fails the transfers on this socket */
        }
        h->open_handles++;
        list_push(&h->socks, &s->link);
        curl_multi_assign(h->multi, fd, s);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    int rc = uv_poll_start(&s->poll, events, on_poll);
    if (rc < 0) {
        log_error("http client: cannot poll socket %d: %s", (int)fd, uv_strerror(rc));
        return -1;
    }
    return 0;
}

static int curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    httpc_t *h = userp;
    if (h->closing)
        return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&h->timer);
    else /* 0 is fine: libuv runs it on the loop, never inside this call */
        uv_timer_start(&h->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static size_t curl_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    httpc_req *r = userdata;
    size_t n = size * nmemb;
    if (buf_append(&r->resp, ptr, n) < 0) {
        r->too_big = true;
        return 0; /* curl aborts with CURLE_WRITE_ERROR */
    }
    return n;
}

/* ---- public API ------------------------------------------------------------------------ */

httpc_t *httpc_new(uv_loop_t *loop)
{
    if (!curl_inited) {
        /* Reference counted by libcurl: harmless if main already called it. */
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            log_error("http client: curl_global_init failed");
            return NULL;
        }
        curl_inited = true;
    }
    httpc_t *h = xcalloc(1, sizeof *h);
    list_init(&h->socks);
    list_init(&h->reqs);
    h->loop = loop;
    h->multi = curl_multi_init();
    if (!h->multi) {
        log_error("http client: curl_multi_init failed");
        free(h);
        return NULL;
    }
    uv_timer_init(loop, &h->timer);
    h->open_handles = 1;
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    return h;
}

static bool header_ok(const char *s)
{
    return s && !strpbrk(s, "\r\n") && strchr(s, ':');
}

static bool method_ok(const char *m)
{
    if (!m || !*m || strlen(m) > 16)
        return false;
    for (const char *p = m; *p; p++)
        if (*p < 'A' || *p > 'Z')
            return false;
    return true;
}

/* Configure the easy handle; false when curl refuses an option (cb must then not run). */
static bool req_setup(httpc_req *r, const httpc_opts *o)
{
    CURL *e = r->easy;
    uint64_t timeout = o->timeout_ms ? o->timeout_ms : HTTPC_DEFAULT_TIMEOUT_MS;
    if (timeout > (uint64_t)LONG_MAX)
        timeout = (uint64_t)LONG_MAX;
    uint64_t connect = timeout < HTTPC_MAX_CONNECT_MS ? timeout : HTTPC_MAX_CONNECT_MS;
    size_t max = o->max_response_bytes ? o->max_response_bytes : HTTPC_DEFAULT_MAX_RESPONSE;
    bool ok = true;

    buf_init(&r->resp, max);
#define SET(opt, val) ok = ok && curl_easy_setopt(e, opt, val) == CURLE_OK
    SET(CURLOPT_URL, o->url);
    SET(CURLOPT_PRIVATE, (void *)r);
    SET(CURLOPT_ERRORBUFFER, r->errbuf);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_TIMEOUT_MS, (long)timeout);
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)connect);
    SET(CURLOPT_WRITEFUNCTION, curl_write_cb);
    SET(CURLOPT_WRITEDATA, (void *)r);
    /* Early refusal when Content-Length already says too much; the write callback catches the rest. */
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max);
    if (o->ca_file)
        SET(CURLOPT_CAINFO, o->ca_file);
    if (o->user) {
        SET(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        SET(CURLOPT_USERNAME, o->user);
        SET(CURLOPT_PASSWORD, o->pass ? o->pass : "");
    }
    if (strcmp(o->method, "GET") == 0) {
        SET(CURLOPT_HTTPGET, 1L);
    } else {
        if (strcmp(o->method, "POST") == 0) {
            SET(CURLOPT_POST, 1L);
        } else {
            SET(CURLOPT_CUSTOMREQUEST, o->method);
        }
        if (o->body || strcmp(o->method, "POST") == 0) {
            r->body = xmalloc(o->body_len + 1);
            if (o->body_len)
                memcpy(r->body, o->body, o->body_len);
            r->body[o->body_len] = '\0';
            SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
            SET(CURLOPT_POSTFIELDS, r->body);
        }
    }
    for (const char *const *hp = o->headers; hp && *hp; hp++) {
        struct curl_slist *n = curl_slist_append(r->headers, *hp);
        if (!n)
            return false;
        r->headers = n;
    }
    /* curl waits up to a second for "100 Continue" on big bodies; rclone and Plex never need it. */
    struct curl_slist *n = curl_slist_append(r->headers, "Expect:");
    if (!n)
        return false;
    r->headers = n;
    SET(CURLOPT_HTTPHEADER, r->headers);
#undef SET
    return ok;
}

int httpc_request_ex(httpc_t *h, const httpc_opts *o, httpc_cb cb, void *ud, void (*release)(void *ud),
                     httpc_req **out)
{
    if (out)
        *out = NULL;
    if (!h || !o || !cb || !o->url || !method_ok(o->method) || (o->body_len && !o->body))
        return -EINVAL;
    for (const char *const *hp = o->headers; hp && *hp; hp++)
        if (!header_ok(*hp))
            return -EINVAL;
    if (h->closing)
        return -ESHUTDOWN;

    httpc_req *r = xcalloc(1, sizeof *r);
    list_init(&r->link);
    r->h = h;
    r->cb = cb;
    r->ud = ud;
    r->release = release;
    r->start_ms = mono_ms();
    r->easy = curl_easy_init();
    if (!r->easy) {
        free(r);
        return -ENOMEM;
    }
    if (!req_setup(r, o)) {
        req_free(r);
        return -EINVAL;
    }
    /* Adding arms curl's timer with 0: the work (and the callback) happens on a later turn. */
    CURLMcode mc = curl_multi_add_handle(h->multi, r->easy);
    if (mc != CURLM_OK) {
        log_error("http client: curl_multi_add_handle: %s", curl_multi_strerror(mc));
        req_free(r);
        return -EIO;
    }
    req_link(h, r);
    if (out)
        *out = r;
    return 0;
}

int httpc_request(httpc_t *h, const httpc_opts *o, httpc_cb cb, void *ud, httpc_req **out)
{
    return httpc_request_ex(h, o, cb, ud, NULL, out);
}

/* Abort r without its callback: out of the multi handle, off the list, release, free. */
static void req_abort(httpc_t *h, httpc_req *r)
{
    if (h->multi)
        curl_multi_remove_handle(h->multi, r->easy);
    req_unlink(h, r);
    if (r->release)
        r->release(r->ud);
    req_free(r);
}

void httpc_cancel(httpc_req *r)
{
    if (!r || r->finishing)
        return;
    req_abort(r->h, r);
}

size_t httpc_in_flight(const httpc_t *h)
{
    return h ? h->n_reqs : 0;
}

void httpc_close(httpc_t *h, void (*done)(void *ud), void *ud)
{
    if (!h || h->closing)
        return;
    h->closing = true;
    h->done = done;
    h->done_ud = ud;
    while (!list_empty(&h->reqs))
        req_abort(h, container_of(h->reqs.next, httpc_req, link));
    /* Cleanup may still report CURL_POLL_REMOVE for cached connections; the socket callback
     * closes those polls, and we close whatever is left below. */
    curl_multi_cleanup(h->multi);
    h->multi = NULL;
    while (!list_empty(&h->socks))
        sock_close(container_of(h->socks.next, sock_ctx, link));
    uv_timer_stop(&h->timer);
    uv_close((uv_handle_t *)&h->timer, timer_closed);
}

const char *httpc_error_name(httpc_error e)
{
    switch (e) {
    case HTTPC_OK: return "ok";
    case HTTPC_ERR_CONNECT: return "connection failed";
    case HTTPC_ERR_DNS: return "name did not resolve";
    case HTTPC_ERR_TIMEOUT: return "timed out";
    case HTTPC_ERR_TOO_BIG: return "answer too large";
    case HTTPC_ERR_PROTOCOL: return "protocol error";
    case HTTPC_ERR_TLS: return "TLS failed";
    }
    return "error";
}

/* url's scheme://host[:port]/base with the scheme given and without user:password@. */
static void url_as(const char *url, const char *scheme, char *out, size_t outlen)
{
    const char *sep = strstr(url, "://");
    const char *host = sep ? sep + 3 : url;
    const char *end = host + strcspn(host, "/?#");
    const char *at = memchr(host, '@', (size_t)(end - host));
    if (at)
        host = at + 1;
    snprintf(out, outlen, "%s://%s", scheme, host);
}

void httpc_tls_advice(const httpc_result *res, const char *url, const char *url_var, const char *ca_file,
                      const char *ca_var, char *out, size_t outlen)
{
    char fixed[512];
    switch (res->tls) {
    case HTTPC_TLS_PLAIN_HTTP:
        url_as(url, "http", fixed, sizeof fixed);
        snprintf(out, outlen, "the server speaks http here: use %s in %s", fixed, url_var);
        return;
    case HTTPC_TLS_CERT:
        if (ca_file)
            snprintf(out, outlen, "its certificate is not accepted with the CA in %s: it is signed by another CA, "
                     "or issued for another name than the host in %s", ca_var, url_var);
        else
            snprintf(out, outlen, "its certificate is not trusted (self-signed?): set %s to the CA certificate "
                     "that signed it (a PEM file)", ca_var);
        return;
    case HTTPC_TLS_CA_FILE:
        snprintf(out, outlen, "the CA file in %s cannot be used: make it a readable PEM file", ca_var);
        return;
    case HTTPC_TLS_OTHER:
        break;
    }
    snprintf(out, outlen, "check %s: http:// or https://, and the certificate", url_var);
}
