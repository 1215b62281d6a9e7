/* plex.c: the Plex calls: read the library list, ask for a partial scan of one folder, empty a
 * section's trash. */
#include "plex.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define PLEX_PRODUCT "plex-servarr-sync"
#define PLEX_DEFAULT_IDENTIFIER "plex-servarr-sync"
#define PLEX_SCAN_MAX_RESPONSE (64u * 1024u)
#define PLEX_SECTIONS_MAX_RESPONSE (4u * 1024u * 1024u) /* 1024 libraries x 64 locations fit */
#define PLEX_EXCERPT 200

/* What rides behind httpc's ud until the answer comes (or the request is cancelled); the
 * target's names are copied, as a reload may free the target before the answer. */
typedef struct plex_call {
    plex_scan_cb scan_cb;
    plex_libraries_cb libraries_cb;
    void *ud;
    char *url;     /* the base address, for the fix of a TLS failure */
    char *url_var; /* what holds it: "PLEX_URL", "MEDIA_SERVERS (family)" */
    char *ca_var;  /* "PLEX_CA_FILE", ... */
    bool ca_set;   /* a CA file was given */
} plex_call;

/* Where a call goes and how it authenticates: a Plex target's url, token and timeout. */
typedef struct plex_peer {
    const char *url;        /* base, trailing '/' allowed */
    const char *token;      /* NULL or "": no X-Plex-Token header */
    const char *identifier; /* NULL or "": the default */
    uint64_t timeout_ms;
    const char *ca_file;    /* NULL: the system's CAs */
    const char *origin;     /* the variable that names the target */
    const char *ca_var;
} plex_peer;

plex_status plex_classify(const httpc_result *res)
{
    if (res->error == HTTPC_ERR_TLS)
        return PLEX_RES_BAD; /* the same on every try: PLEX_URL's scheme or the certificate */
    if (res->error != HTTPC_OK)
        return PLEX_RES_TRANSIENT;
    long st = res->status;
    if (st >= 200 && st < 300)
        return PLEX_RES_OK;
    if (st == 401 || st == 403)
        return PLEX_RES_AUTH;
    if (st == 404)
        return PLEX_RES_NOT_FOUND;
    if (st == 408 || st == 429 || (st >= 500 && st < 600))
        return PLEX_RES_TRANSIENT;
    return PLEX_RES_BAD;
}

/* One line for the log and the UI. Never holds a URL's path or query (the token travels in a
 * header anyway): only the base address in the fix of a TLS failure. */
static void describe(const plex_call *call, const httpc_result *res, plex_status st, char *msg, size_t msglen)
{
    if (res->error != HTTPC_OK) {
        const char *kind = httpc_error_name(res->error);
        snprintf(msg, msglen, "no answer from Plex (%s): ", kind);
        str_append_escaped(msg, msglen, res->message ? res->message : "", res->message ? strlen(res->message) : 0, PLEX_EXCERPT);
        if (res->error == HTTPC_ERR_TLS) {
            char fix[400];
            httpc_tls_advice(res, call->url, call->url_var, call->ca_set ? "set" : NULL, call->ca_var, fix, sizeof fix);
            size_t n = strlen(msg);
            snprintf(msg + n, msglen - n, " (%s)", fix);
        }
        return;
    }
    const char *hint = "";
    if (st == PLEX_RES_AUTH)
        hint = " (check PLEX_TOKEN)";
    else if (res->status >= 300 && res->status < 400)
        hint = " (a redirect, not followed: check PLEX_URL)";
    snprintf(msg, msglen, "HTTP %ld%s", res->status, hint);
    if (st != PLEX_RES_OK && res->body_len) {
        size_t n = strlen(msg);
        snprintf(msg + n, msglen - n, ": ");
        size_t blen = res->body_len;
        while (blen > 0 && strchr(" \t\r\n", res->body[blen - 1]))
            blen--;
        str_append_escaped(msg, msglen, res->body, blen, PLEX_EXCERPT);
    }
}

static void call_release(void *ud)
{
    plex_call *call = ud;
    free(call->url);
    free(call->url_var);
    free(call->ca_var);
    free(call);
}

static void on_scan(void *ud, const httpc_result *res)
{
    plex_call *call = ud;
    char msg[768];
    plex_result r = {.status = plex_classify(res), .http_status = res->error == HTTPC_OK ? res->status : 0,
                     .message = msg};
    describe(call, res, r.status, msg, sizeof msg);
    plex_scan_cb cb = call->scan_cb;
    void *cb_ud = call->ud;
    call_release(call);
    cb(cb_ud, &r);
}

static char *base_url(const plex_peer *p)
{
    size_t n = strlen(p->url);
    while (n > 0 && p->url[n - 1] == '/')
        n--;
    return xstrndup(p->url, n);
}

/* `method` {base}{route} with the Plex headers; call owns cb/ud and is freed by the answer or the
 * release. PUT goes with an empty body (Content-Length: 0, no Content-Type). */
static int plex_request(httpc_t *h, const plex_peer *p, const char *method, const char *route, size_t max,
                        httpc_cb on_answer, plex_call *call, httpc_req **out)
{
    const char *ident = p->identifier && *p->identifier ? p->identifier : PLEX_DEFAULT_IDENTIFIER;
    char *token_h = p->token && *p->token ? xasprintf("X-Plex-Token: %s", p->token) : NULL;
    char *ident_h = xasprintf("X-Plex-Client-Identifier: %s", ident);
    bool put = strcmp(method, "PUT") == 0;
    const char *headers[7];
    size_t n = 0;
    if (token_h)
        headers[n++] = token_h;
    headers[n++] = ident_h;
    headers[n++] = "X-Plex-Product: " PLEX_PRODUCT;
    headers[n++] = "X-Plex-Version: " PSS_VERSION;
    headers[n++] = "Accept: application/json";
    if (put)
        headers[n++] = "Content-Type:"; /* curl would add a form type to the empty body */
    headers[n] = NULL;
    char *base = base_url(p);
    char *url = xasprintf("%s%s", base, route);
    call->url = xstrdup(base);
    call->url_var = xstrdup(p->origin ? p->origin : "PLEX_URL");
    call->ca_var = xstrdup(p->ca_var ? p->ca_var : "PLEX_CA_FILE");
    call->ca_set = p->ca_file != NULL;
    httpc_opts o = {
        .method = method,
        .url = url,
        .headers = headers,
        .body = put ? "" : NULL,
        .timeout_ms = p->timeout_ms,
        .max_response_bytes = max,
        .ca_file = p->ca_file,
    };
    int rc = httpc_request_ex(h, &o, on_answer, call, call_release, out);
    free(token_h); /* httpc copied the header strings */
    free(ident_h);
    free(base);
    free(url);
    if (rc < 0)
        call_release(call);
    return rc;
}

/* A Plex target's peer, or -EINVAL. */
static int peer_of_target(const cfg_target *t, const char *identifier, plex_peer *p)
{
    if (!t || t->kind != TARGET_PLEX || !t->url || !*t->url)
        return -EINVAL;
    *p = (plex_peer){.url = t->url, .token = t->token, .identifier = identifier, .timeout_ms = t->timeout_ms,
                     .ca_file = t->ca_file, .origin = t->origin, .ca_var = t->ca_var};
    return 0;
}

/* A section id as it goes into a path: decimal digits only. */
static bool section_id_ok(const char *id)
{
    long long v;
    return id && parse_positive(id, strlen(id), 999999999999999LL, &v) == 0;
}

int plex_target_scan(httpc_t *h, const cfg_target *t, const char *identifier, const char *section_id,
                     const char *plex_path, plex_scan_cb cb, void *ud, httpc_req **out)
{
    if (out)
        *out = NULL;
    plex_peer p;
    if (!h || peer_of_target(t, identifier, &p) || !section_id_ok(section_id) || !plex_path || !cb)
        return -EINVAL;
    char *path = url_encode(plex_path);
    char *route = xasprintf("/library/sections/%s/refresh?path=%s", section_id, path);
    free(path);
    plex_call *call = xcalloc(1, sizeof *call);
    call->scan_cb = cb;
    call->ud = ud;
    int rc = plex_request(h, &p, "GET", route, PLEX_SCAN_MAX_RESPONSE, on_scan, call, out);
    free(route);
    return rc;
}

static void on_libraries(void *ud, const httpc_result *res)
{
    plex_call *call = ud;
    char msg[768];
    plex_result r = {.status = plex_classify(res), .http_status = res->error == HTTPC_OK ? res->status : 0,
                     .message = msg};
    describe(call, res, r.status, msg, sizeof msg);
    plex_libraries_cb cb = call->libraries_cb;
    void *cb_ud = call->ud;
    call_release(call);
    media_libraries libs;
    memset(&libs, 0, sizeof libs);
    char err[256];
    if (r.status == PLEX_RES_OK && plex_media_libraries_parse(res->body, res->body_len, &libs, err, sizeof err) < 0) {
        r.status = PLEX_RES_BAD;
        snprintf(msg, sizeof msg, "unreadable library list (HTTP %ld, %s): ", res->status,
                 res->content_type ? res->content_type : "no content type");
        str_append_escaped(msg, sizeof msg, err, strlen(err), PLEX_EXCERPT);
    }
    cb(cb_ud, &r, r.status == PLEX_RES_OK ? &libs : NULL);
    media_libraries_free(&libs); /* nothing left if the callback moved it out */
}

int plex_target_list_sections(httpc_t *h, const cfg_target *t, const char *identifier, plex_libraries_cb cb,
                              void *ud, httpc_req **out)
{
    if (out)
        *out = NULL;
    plex_peer p;
    if (!h || peer_of_target(t, identifier, &p) || !cb)
        return -EINVAL;
    plex_call *call = xcalloc(1, sizeof *call);
    call->libraries_cb = cb;
    call->ud = ud;
    return plex_request(h, &p, "GET", "/library/sections", PLEX_SECTIONS_MAX_RESPONSE, on_libraries, call, out);
}

int plex_empty_trash(httpc_t *h, const cfg_target *t, const char *identifier, const char *section_id,
                     plex_scan_cb cb, void *ud, httpc_req **out)
{
    if (out)
        *out = NULL;
    plex_peer p;
    if (!h || peer_of_target(t, identifier, &p) || !section_id_ok(section_id) || !cb)
        return -EINVAL;
    char *route = xasprintf("/library/sections/%s/emptyTrash", section_id);
    plex_call *call = xcalloc(1, sizeof *call);
    call->scan_cb = cb; /* the same answer as a scan: a status, no body worth reading */
    call->ud = ud;
    int rc = plex_request(h, &p, "PUT", route, PLEX_SCAN_MAX_RESPONSE, on_scan, call, out);
    free(route);
    return rc;
}
