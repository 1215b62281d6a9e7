/* plex.c: the two Plex calls: read the library list, and ask for a partial scan of one folder. */
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

/* What rides behind httpc's ud until the answer comes (or the request is cancelled). */
typedef struct plex_call {
    plex_scan_cb scan_cb;
    plex_sections_cb sections_cb;
    void *ud;
} plex_call;

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

/* One line for the log and the UI. Never holds the URL (the token travels in a header anyway). */
static void describe(const httpc_result *res, plex_status st, char *msg, size_t msglen)
{
    if (res->error != HTTPC_OK) {
        const char *kind = httpc_error_name(res->error);
        snprintf(msg, msglen, "no answer from Plex (%s): ", kind);
        str_append_escaped(msg, msglen, res->message ? res->message : "", res->message ? strlen(res->message) : 0, PLEX_EXCERPT);
        if (res->error == HTTPC_ERR_TLS) {
            size_t n = strlen(msg);
            snprintf(msg + n, msglen - n, " (check PLEX_URL: http:// or https://, and Plex's certificate)");
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
    free(ud);
}

static void on_scan(void *ud, const httpc_result *res)
{
    plex_call *call = ud;
    char msg[512];
    plex_result r = {.status = plex_classify(res), .http_status = res->error == HTTPC_OK ? res->status : 0,
                     .message = msg};
    describe(res, r.status, msg, sizeof msg);
    plex_scan_cb cb = call->scan_cb;
    void *cb_ud = call->ud;
    free(call);
    cb(cb_ud, &r);
}

static void on_sections(void *ud, const httpc_result *res)
{
    plex_call *call = ud;
    char msg[512];
    plex_result r = {.status = plex_classify(res), .http_status = res->error == HTTPC_OK ? res->status : 0,
                     .message = msg};
    describe(res, r.status, msg, sizeof msg);
    plex_sections_cb cb = call->sections_cb;
    void *cb_ud = call->ud;
    free(call);
    if (r.status != PLEX_RES_OK) {
        cb(cb_ud, &r, NULL);
        return;
    }
    plex_libraries libs;
    char err[256];
    if (plex_libraries_parse(res->body, res->body_len, &libs, err, sizeof err) < 0) {
        r.status = PLEX_RES_BAD;
        snprintf(msg, sizeof msg, "unreadable library list (HTTP %ld, %s): ", res->status,
                 res->content_type ? res->content_type : "no content type");
        str_append_escaped(msg, sizeof msg, err, strlen(err), PLEX_EXCERPT);
        cb(cb_ud, &r, NULL);
        return;
    }
    if (!libs.fetched_at)
        libs.fetched_at = wall_ms();
    cb(cb_ud, &r, &libs);
    plex_libraries_free(&libs); /* nothing left if the callback moved it out */
}

static char *base_url(const config_t *c)
{
    size_t n = strlen(c->plex_url);
    while (n > 0 && c->plex_url[n - 1] == '/')
        n--;
    return xstrndup(c->plex_url, n);
}

/* GET url with the Plex headers; call owns cb/ud and is freed by the answer or the release. */
static int plex_get(httpc_t *h, const config_t *c, const char *url, size_t max, httpc_cb on_answer, plex_call *call,
                    httpc_req **out)
{
    const char *ident = c->plex_identifier && *c->plex_identifier ? c->plex_identifier : PLEX_DEFAULT_IDENTIFIER;
    char *token_h = c->plex_token && *c->plex_token ? xasprintf("X-Plex-Token: %s", c->plex_token) : NULL;
    char *ident_h = xasprintf("X-Plex-Client-Identifier: %s", ident);
    const char *headers[6];
    size_t n = 0;
    if (token_h)
        headers[n++] = token_h;
    headers[n++] = ident_h;
    headers[n++] = "X-Plex-Product: " PLEX_PRODUCT;
    headers[n++] = "X-Plex-Version: " PSS_VERSION;
    headers[n++] = "Accept: application/json";
    headers[n] = NULL;
    httpc_opts o = {
        .method = "GET",
        .url = url,
        .headers = headers,
        .timeout_ms = c->plex_timeout_ms,
        .max_response_bytes = max,
    };
    int rc = httpc_request_ex(h, &o, on_answer, call, call_release, out);
    free(token_h); /* httpc copied the header strings */
    free(ident_h);
    if (rc < 0)
        free(call);
    return rc;
}

int plex_scan(httpc_t *h, const config_t *c, long section, const char *plex_path, plex_scan_cb cb, void *ud,
              httpc_req **out)
{
    if (out)
        *out = NULL;
    if (!h || !c || !c->plex_url || !*c->plex_url || !plex_path || !cb || section < 0)
        return -EINVAL;
    char *base = base_url(c);
    char *path = url_encode(plex_path);
    char *url = xasprintf("%s/library/sections/%ld/refresh?path=%s", base, section, path);
    free(base);
    free(path);
    plex_call *call = xcalloc(1, sizeof *call);
    call->scan_cb = cb;
    call->ud = ud;
    int rc = plex_get(h, c, url, PLEX_SCAN_MAX_RESPONSE, on_scan, call, out);
    free(url);
    return rc;
}

int plex_list_sections(httpc_t *h, const config_t *c, plex_sections_cb cb, void *ud, httpc_req **out)
{
    if (out)
        *out = NULL;
    if (!h || !c || !c->plex_url || !*c->plex_url || !cb)
        return -EINVAL;
    char *base = base_url(c);
    char *url = xasprintf("%s/library/sections", base);
    free(base);
    plex_call *call = xcalloc(1, sizeof *call);
    call->sections_cb = cb;
    call->ud = ud;
    int rc = plex_get(h, c, url, PLEX_SECTIONS_MAX_RESPONSE, on_sections, call, out);
    free(url);
    return rc;
}
