/* mediabrowser.c: the calls to Jellyfin and Emby: the library list, and a folder's scan (the
 * Targeted Scans plugin's ScanPath first when asked, then Library/Media/Updated). */
#include "mediabrowser.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "log.h"
#include "util.h"

#define MB_SCAN_MAX_RESPONSE (64u * 1024u)
#define MB_LIBRARIES_MAX_RESPONSE (4u * 1024u * 1024u)
#define MB_EXCERPT 200
#define MB_MSG_MAX 768

#define VIA_SCAN_PATH "ScanPath"
#define VIA_UPDATED "Media/Updated"
#define VIA_LIBRARIES "VirtualFolders"

/* What a call needs from its target, copied: a reload may free the target while a call runs. */
typedef struct mb_peer {
    target_kind kind;
    char *url;
    char *auth;      /* the one auth header line */
    char *token_var; /* for messages: what to fix on 401/403 */
    char *origin;    /* for messages: what to fix on a redirect or TLS failure */
    char *ca_file;   /* NULL: the system's CAs */
    char *ca_var;    /* for messages: what names the CA file */
    uint64_t timeout_ms;
} mb_peer;

/* A scan, step after step; freed by the final answer or by the release of a cancelled request. */
struct mb_op {
    httpc_t *h;
    mb_peer peer;
    char *path;
    mb_update_type type;
    mb_scan_cb cb;
    void *ud;
    httpc_req *req; /* the request of the current step */
};

/* The library list's one request. */
typedef struct mb_list_call {
    mb_peer peer;
    mb_libraries_cb cb;
    void *ud;
} mb_list_call;

mb_status mb_classify(const httpc_result *res)
{
    if (res->error == HTTPC_ERR_TLS)
        return MB_RES_BAD; /* the same on every try: the URL's scheme or the certificate */
    if (res->error != HTTPC_OK)
        return MB_RES_TRANSIENT;
    long st = res->status;
    if (st >= 200 && st < 300)
        return MB_RES_OK;
    if (st == 401 || st == 403)
        return MB_RES_AUTH;
    if (st == 404)
        return MB_RES_NOT_FOUND;
    if (st == 408 || st == 429 || (st >= 500 && st < 600))
        return MB_RES_TRANSIENT;
    return MB_RES_BAD;
}

const char *mb_update_type_name(mb_update_type type)
{
    switch (type) {
    case MB_UPDATE_CREATED:
        return "Created";
    case MB_UPDATE_MODIFIED:
        return "Modified";
    case MB_UPDATE_DELETED:
        return "Deleted";
    }
    return NULL;
}

/* ---------------------------------------------------------------- the target, copied */

/* A token goes inside a header (and, for Jellyfin, inside quotes): a quote, CR, LF or any other
 * control byte would end it early or add a header. */
static bool token_ok(const char *tok)
{
    if (!tok || !*tok)
        return false;
    for (const unsigned char *p = (const unsigned char *)tok; *p; p++)
        if (*p < 0x20 || *p == 0x7f || *p == '"')
            return false;
    return true;
}

static int peer_init(mb_peer *p, const cfg_target *t)
{
    memset(p, 0, sizeof *p);
    if (!t || (t->kind != TARGET_JELLYFIN && t->kind != TARGET_EMBY) || !t->url || !*t->url ||
        !token_ok(t->token))
        return -EINVAL;
    size_t n = strlen(t->url);
    while (n > 0 && t->url[n - 1] == '/')
        n--;
    p->kind = t->kind;
    p->url = xstrndup(t->url, n);
    /* Jellyfin 12 refuses the legacy headers; Emby documents only its own. One header each. */
    if (t->kind == TARGET_JELLYFIN)
        p->auth = xasprintf("Authorization: MediaBrowser Token=\"%s\"", t->token);
    else
        p->auth = xasprintf("X-Emby-Token: %s", t->token);
    p->token_var = xstrdup(t->token_var ? t->token_var : "the token");
    p->origin = xstrdup(t->origin ? t->origin : "the URL");
    p->ca_file = xstrdup(t->ca_file);
    p->ca_var = xstrdup(t->ca_var ? t->ca_var : "the CA file");
    p->timeout_ms = t->timeout_ms;
    return 0;
}

static void peer_free(mb_peer *p)
{
    free(p->url);
    free(p->auth);
    free(p->token_var);
    free(p->origin);
    free(p->ca_file);
    free(p->ca_var);
    memset(p, 0, sizeof *p);
}

/* ---------------------------------------------------------------- answers */

/* One line for the log and the UI: never the token, and no URL but the base address in the fix
 * of a TLS failure. */
static void describe(const mb_peer *p, const httpc_result *res, mb_status st, char *msg, size_t msglen)
{
    const char *server = target_kind_name(p->kind);
    if (res->error != HTTPC_OK) {
        snprintf(msg, msglen, "no answer from %s (%s): ", server, httpc_error_name(res->error));
        str_append_escaped(msg, msglen, res->message ? res->message : "", res->message ? strlen(res->message) : 0,
                           MB_EXCERPT);
        if (res->error == HTTPC_ERR_TLS) {
            char fix[400];
            httpc_tls_advice(res, p->url, p->origin, p->ca_file, p->ca_var, fix, sizeof fix);
            size_t n = strlen(msg);
            snprintf(msg + n, msglen - n, " (%s)", fix);
        }
        return;
    }
    char hint[160] = "";
    if (st == MB_RES_AUTH)
        snprintf(hint, sizeof hint, " (check %s)", p->token_var);
    else if (res->status >= 300 && res->status < 400)
        snprintf(hint, sizeof hint, " (a redirect, not followed: check %s)", p->origin);
    snprintf(msg, msglen, "%s: HTTP %ld%s", server, res->status, hint);
    if (st != MB_RES_OK && res->body_len) {
        size_t n = strlen(msg);
        snprintf(msg + n, msglen - n, ": ");
        size_t blen = res->body_len;
        while (blen > 0 && strchr(" \t\r\n", res->body[blen - 1]))
            blen--;
        str_append_escaped(msg, msglen, res->body, blen, MB_EXCERPT);
    }
}

static void result_of(const mb_peer *p, const httpc_result *res, const char *via, mb_result *r, char *msg,
                      size_t msglen)
{
    r->status = mb_classify(res);
    r->http_status = res->error == HTTPC_OK ? res->status : 0;
    r->message = msg;
    r->via = via;
    describe(p, res, r->status, msg, msglen);
}

/* ---------------------------------------------------------------- requests */

static int mb_request(httpc_t *h, const mb_peer *p, const char *method, const char *route, const char *body,
                      size_t max, httpc_cb on_answer, void *ud, void (*release)(void *), httpc_req **out)
{
    const char *headers[4];
    size_t n = 0;
    headers[n++] = p->auth;
    headers[n++] = "Accept: application/json";
    if (body)
        headers[n++] = "Content-Type: application/json";
    headers[n] = NULL;
    char *url = xasprintf("%s%s", p->url, route);
    httpc_opts o = {
        .method = method,
        .url = url,
        .headers = headers,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .timeout_ms = p->timeout_ms,
        .max_response_bytes = max,
        .ca_file = p->ca_file,
    };
    int rc = httpc_request_ex(h, &o, on_answer, ud, release, out);
    free(url);
    return rc;
}

/* ---------------------------------------------------------------- the library list */

static void list_call_free(mb_list_call *call)
{
    peer_free(&call->peer);
    free(call);
}

static void list_release(void *ud)
{
    list_call_free(ud);
}

static void on_libraries(void *ud, const httpc_result *res)
{
    mb_list_call *call = ud;
    char msg[MB_MSG_MAX];
    mb_result r;
    result_of(&call->peer, res, VIA_LIBRARIES, &r, msg, sizeof msg);
    mb_libraries_cb cb = call->cb;
    void *cb_ud = call->ud;
    media_libraries libs;
    memset(&libs, 0, sizeof libs);
    char err[256];
    if (r.status == MB_RES_OK && mb_libraries_parse(res->body, res->body_len, &libs, err, sizeof err) < 0) {
        r.status = MB_RES_BAD;
        snprintf(msg, sizeof msg, "%s: unreadable library list (HTTP %ld, %s): ", target_kind_name(call->peer.kind),
                 res->status, res->content_type ? res->content_type : "no content type");
        str_append_escaped(msg, sizeof msg, err, strlen(err), MB_EXCERPT);
    }
    list_call_free(call);
    cb(cb_ud, &r, r.status == MB_RES_OK ? &libs : NULL);
    media_libraries_free(&libs); /* nothing left if the callback moved it out */
}

int mb_list_libraries(httpc_t *h, const cfg_target *t, mb_libraries_cb cb, void *ud, httpc_req **out)
{
    if (out)
        *out = NULL;
    if (!h || !cb)
        return -EINVAL;
    mb_list_call *call = xcalloc(1, sizeof *call);
    int rc = peer_init(&call->peer, t);
    call->cb = cb;
    call->ud = ud;
    if (rc == 0)
        rc = mb_request(h, &call->peer, "GET", "/Library/VirtualFolders", NULL, MB_LIBRARIES_MAX_RESPONSE,
                        on_libraries, call, list_release, out);
    if (rc < 0)
        list_call_free(call); /* a request that did not start runs neither callback nor release */
    return rc;
}

/* ---------------------------------------------------------------- the scan */

static void op_free(mb_op *op)
{
    peer_free(&op->peer);
    free(op->path);
    free(op);
}

static void op_release(void *ud)
{
    op_free(ud);
}

static void op_finish(mb_op *op, const mb_result *r)
{
    mb_scan_cb cb = op->cb;
    void *ud = op->ud;
    op_free(op);
    cb(ud, r);
}

static char *updated_body(const char *path, mb_update_type type)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(root, "Updates");
    cJSON *one = cJSON_CreateObject();
    cJSON_AddItemToArray(list, one);
    cJSON_AddStringToObject(one, "Path", path);
    cJSON_AddStringToObject(one, "UpdateType", mb_update_type_name(type));
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!s)
        log_fatal("mediabrowser: out of memory");
    return s;
}

static char *scan_path_body(const char *path)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "Path", path);
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!s)
        log_fatal("mediabrowser: out of memory");
    return s;
}

static void on_updated(void *ud, const httpc_result *res)
{
    mb_op *op = ud;
    char msg[MB_MSG_MAX];
    mb_result r;
    result_of(&op->peer, res, VIA_UPDATED, &r, msg, sizeof msg);
    op_finish(op, &r);
}

static int step_updated(mb_op *op)
{
    char *body = updated_body(op->path, op->type);
    int rc = mb_request(op->h, &op->peer, "POST", "/Library/Media/Updated", body, MB_SCAN_MAX_RESPONSE, on_updated,
                        op, op_release, &op->req);
    cJSON_free(body);
    return rc;
}

/* The plugin's answer {"Status": ...}, or NULL when the body holds none (no plugin). */
static char *scan_path_status(const httpc_result *res)
{
    if (!res->body || !res->body_len)
        return NULL;
    cJSON *j = cJSON_ParseWithLength(res->body, res->body_len);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "Status");
    char *s = cJSON_IsString(st) ? xstrdup(st->valuestring) : NULL;
    cJSON_Delete(j);
    return s;
}

/* Whether ScanPath's answer hands the folder on to Media/Updated; else it decides, and a Status
 * "Failed" turns a 2xx into a retry. */
static bool scan_path_falls_back(const httpc_result *res, mb_result *r, char *msg, size_t msglen)
{
    char *status = scan_path_status(res);
    bool not_found = status && (strcmp(status, "PathNotFound") == 0 || strcmp(status, "ParentNotFound") == 0);
    bool back = res->error == HTTPC_OK && ((res->status == 404 && !status) || not_found);
    if (!back && r->status == MB_RES_OK && status && strcmp(status, "Failed") == 0) {
        r->status = MB_RES_TRANSIENT;
        size_t n = strlen(msg);
        snprintf(msg + n, msglen - n, ": the plugin's scan failed: ");
        str_append_escaped(msg, msglen, res->body, res->body_len, MB_EXCERPT);
    }
    free(status);
    return back;
}

static void on_scan_path(void *ud, const httpc_result *res)
{
    mb_op *op = ud;
    char msg[MB_MSG_MAX];
    mb_result r;
    result_of(&op->peer, res, VIA_SCAN_PATH, &r, msg, sizeof msg);
    if (!scan_path_falls_back(res, &r, msg, sizeof msg)) {
        op_finish(op, &r);
        return;
    }
    int rc = step_updated(op);
    if (rc < 0) {
        snprintf(msg, sizeof msg, "%s: Media/Updated did not start (%s)", target_kind_name(op->peer.kind),
                 strerror(-rc));
        r = (mb_result){.status = MB_RES_BAD, .message = msg, .via = VIA_UPDATED};
        op_finish(op, &r);
    }
}

static int step_scan_path(mb_op *op)
{
    char *body = scan_path_body(op->path);
    int rc = mb_request(op->h, &op->peer, "POST", "/Library/ScanPath", body, MB_SCAN_MAX_RESPONSE, on_scan_path, op,
                        op_release, &op->req);
    cJSON_free(body);
    return rc;
}

int mb_scan(httpc_t *h, const cfg_target *t, const char *path, mb_update_type type, mb_scan_cb cb, void *ud,
            mb_op **out)
{
    if (out)
        *out = NULL;
    if (!h || !path || !cb || !mb_update_type_name(type))
        return -EINVAL;
    mb_op *op = xcalloc(1, sizeof *op);
    int rc = peer_init(&op->peer, t);
    if (rc < 0) {
        op_free(op);
        return rc;
    }
    op->h = h;
    op->path = xstrdup(path);
    op->type = type;
    op->cb = cb;
    op->ud = ud;
    rc = t->scan_path ? step_scan_path(op) : step_updated(op);
    if (rc < 0) {
        op_free(op);
        return rc;
    }
    if (out)
        *out = op;
    return 0;
}

void mb_cancel(mb_op *op)
{
    if (op)
        httpc_cancel(op->req); /* its release frees op */
}
