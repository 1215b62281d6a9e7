/* rclone.c: the rclone step of a sync: vfs/forget then vfs/refresh over the RC API, walking up to
 * the nearest parent rclone can list when the refresh says "file does not exist". */
#include "rclone.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define RCLONE_MAX_RESPONSE (1024u * 1024u)
#define RCLONE_EXCERPT 240

#define VAR_AUTH "RCLONE_RC_USER/RCLONE_RC_PASS"
#define VAR_AUTH_NOAUTH "RCLONE_RC_USER/RCLONE_RC_PASS (rclone needs --rc-user/--rc-pass or --rc-no-auth)"
#define VAR_URL "RCLONE_RC_URL"
#define VAR_FS "RCLONE_FS"

typedef enum {
    ST_FORGET,        /* vfs/forget dir */
    ST_REFRESH,       /* vfs/refresh dir (recursive when deep enough) */
    ST_WALK,          /* vfs/refresh of an ancestor (non-recursive), until one is OK */
    ST_REFRESH_AGAIN, /* vfs/refresh dir after the walk-up: still missing means absent */
} op_state;

struct rclone_op {
    httpc_t *h;
    char *url; /* copies: a reload may free the config while a call is in flight */
    char *fs;
    char *user;
    char *pass;
    char *dir;  /* normalized, "" = the mount root */
    char *cur;  /* the ancestor being refreshed in ST_WALK */
    uint64_t timeout_ms;
    op_state st;
    rclone_cb cb;
    void *ud;
    httpc_req *req;
    bool finishing;
    char msg[1024];
};

/* ---- text helpers ---------------------------------------------------------------------- */

static void str_append(char *out, size_t outlen, const char *s)
{
    size_t n = strlen(out);
    if (n + 1 < outlen)
        snprintf(out + n, outlen - n, "%s", s);
}

/* msg = prefix + an escaped, bounded excerpt of esc_text. */
static void msg_set(char *msg, size_t msglen, const char *prefix, const char *esc_text, size_t esc_len)
{
    snprintf(msg, msglen, "%s", prefix);
    while (esc_text && esc_len > 0 && strchr(" \t\r\n", esc_text[esc_len - 1]))
        esc_len--; /* "Unauthorized\n" reads better without its line break */
    if (esc_text)
        str_append_escaped(msg, msglen, esc_text, esc_len, RCLONE_EXCERPT);
}

/* The text worth quoting from an error answer: rc.Error's "error" field, else the raw body. */
static const char *error_text(const httpc_result *res, cJSON *json, size_t *len)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(json, "error");
    if (cJSON_IsString(e) && e->valuestring) {
        *len = strlen(e->valuestring);
        return e->valuestring;
    }
    *len = res->body_len;
    return res->body ? res->body : "";
}

static bool is_fs_error(const char *text)
{
    static const char *const needles[] = {"no VFS found with name", "more than one VFS active", "no VFS active",
                                          "unknown key \"fs\""};
    for (size_t i = 0; i < ARRAY_SIZE(needles); i++)
        if (strstr(text, needles[i]))
            return true;
    return false;
}

/* ---- classification -------------------------------------------------------------------- */

static rclone_status classify_ok(const httpc_result *res, cJSON *json, const char *dir_key, int *missing,
                                 char *msg, size_t msglen)
{
    if (!dir_key) { /* vfs/forget: any 2xx will do; the list of forgotten dirs is informational */
        snprintf(msg, msglen, "OK");
        return RCLONE_RES_OK;
    }
    const cJSON *result = cJSON_GetObjectItemCaseSensitive(json, "result");
    const cJSON *val = cJSON_GetObjectItemCaseSensitive(result, dir_key);
    /* We name one dir per call, so a lone entry is ours even if rclone re-spelled the key
     * (it turns invalid UTF-8 into U+FFFD, for one). */
    if (!val && cJSON_IsObject(result) && cJSON_GetArraySize(result) == 1)
        val = result->child;
    if (!cJSON_IsString(val) || !val->valuestring) {
        char head[96];
        snprintf(head, sizeof head, "unexpected answer (HTTP %ld, no result for the dir): ", res->status);
        msg_set(msg, msglen, head, res->body, res->body_len);
        return RCLONE_RES_TRANSIENT;
    }
    if (strcmp(val->valuestring, "OK") == 0) {
        snprintf(msg, msglen, "OK");
        return RCLONE_RES_OK;
    }
    if (strcmp(val->valuestring, "file does not exist") == 0) {
        *missing = 1;
        snprintf(msg, msglen, "file does not exist");
        return RCLONE_RES_ABSENT;
    }
    msg_set(msg, msglen, "rclone answered: ", val->valuestring, strlen(val->valuestring));
    return RCLONE_RES_TRANSIENT;
}

/* An answer rclone gave (json: its body parsed, or NULL), by its HTTP status. */
static rclone_status classify_answer(const httpc_result *res, cJSON *json, const char *dir_key, int *missing,
                                     char *msg, size_t msglen, const char **variable)
{
    long st = res->status;
    size_t tlen = 0;
    const char *text = error_text(res, json, &tlen);
    /* text may be the raw body (NUL-terminated by httpc) or a cJSON string: both are C strings. */
    char head[160];
    rclone_status out;

    if (st >= 200 && st < 300) {
        out = classify_ok(res, json, dir_key, missing, msg, msglen);
    } else if (st == 401) {
        *variable = VAR_AUTH;
        msg_set(msg, msglen, "rclone refused the credentials (HTTP 401): ", text, tlen);
        out = RCLONE_RES_CONFIG;
    } else if (st == 403) {
        *variable = strstr(text, "--rc-no-auth") ? VAR_AUTH_NOAUTH : VAR_AUTH;
        msg_set(msg, msglen, "rclone refused the call (HTTP 403): ", text, tlen);
        out = RCLONE_RES_CONFIG;
    } else if (st == 404) {
        *variable = VAR_URL;
        msg_set(msg, msglen, "not an rclone RC endpoint (HTTP 404): ", text, tlen);
        out = RCLONE_RES_CONFIG;
    } else if (st == 400 && strstr(text, "unsupported charset")) {
        /* Something between us and rclone rewrote our exact Content-Type. */
        *variable = VAR_URL;
        msg_set(msg, msglen, "rclone refused the request's charset (HTTP 400): ", text, tlen);
        out = RCLONE_RES_CONFIG;
    } else if (st == 408 || st == 429) {
        snprintf(head, sizeof head, "rclone asked to retry later (HTTP %ld): ", st);
        msg_set(msg, msglen, head, text, tlen);
        out = RCLONE_RES_TRANSIENT;
    } else if (st >= 500 && st < 600 && is_fs_error(text)) {
        *variable = VAR_FS;
        snprintf(head, sizeof head, "rclone cannot pick the VFS (HTTP %ld): ", st);
        msg_set(msg, msglen, head, text, tlen);
        out = RCLONE_RES_CONFIG;
    } else if (st >= 500 && st < 600) {
        snprintf(head, sizeof head, "rclone failed (HTTP %ld): ", st);
        msg_set(msg, msglen, head, text, tlen);
        out = RCLONE_RES_TRANSIENT;
    } else if ((st >= 300 && st < 400) || (st >= 400 && st < 500)) {
        /* A redirect (never followed) or a refused request: repeating it cannot help. */
        *variable = VAR_URL;
        snprintf(head, sizeof head, "unexpected answer from rclone (HTTP %ld%s): ", st,
                 st < 400 ? ", a redirect, not followed" : "");
        msg_set(msg, msglen, head, text, tlen);
        out = RCLONE_RES_CONFIG;
    } else {
        snprintf(head, sizeof head, "unexpected answer from rclone (HTTP %ld): ", st);
        msg_set(msg, msglen, head, text, tlen);
        out = RCLONE_RES_TRANSIENT;
    }
    return out;
}

rclone_status rclone_classify(const httpc_result *res, const char *dir_key, int *missing, char *msg, size_t msglen,
                              const char **variable)
{
    char dummy_msg[8];
    int dummy_missing;
    const char *dummy_var;
    if (!msg || msglen == 0) {
        msg = dummy_msg;
        msglen = sizeof dummy_msg;
    }
    if (!missing)
        missing = &dummy_missing;
    if (!variable)
        variable = &dummy_var;
    *missing = 0;
    *variable = NULL;
    msg[0] = '\0';

    if (res->error != HTTPC_OK) {
        char head[96];
        snprintf(head, sizeof head, "no answer from rclone (%s): ", httpc_error_name(res->error));
        const char *m = res->message ? res->message : "";
        msg_set(msg, msglen, head, m, strlen(m));
        if (res->error == HTTPC_ERR_TLS) { /* https:// to rclone's plain port, or its certificate */
            str_append(msg, msglen, " (http:// or https://?)");
            *variable = VAR_URL;
            return RCLONE_RES_CONFIG;
        }
        return RCLONE_RES_TRANSIENT;
    }

    cJSON *json = res->body && res->body_len ? cJSON_ParseWithLength(res->body, res->body_len) : NULL;
    rclone_status out = classify_answer(res, json, dir_key, missing, msg, msglen, variable);
    cJSON_Delete(json);
    return out;
}

/* ---- the step -------------------------------------------------------------------------- */

/* "/tv//Show/" -> "tv/Show"; "" and "/" -> "". */
static char *normalize_dir(const char *in)
{
    size_t n = strlen(in);
    char *out = xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i] == '/' && (o == 0 || out[o - 1] == '/'))
            continue;
        out[o++] = in[i];
    }
    if (o > 0 && out[o - 1] == '/')
        o--;
    out[o] = '\0';
    return out;
}

static int dir_depth(const char *dir)
{
    if (!*dir)
        return 0;
    int n = 1;
    for (const char *p = dir; *p; p++)
        if (*p == '/')
            n++;
    return n;
}

static char *parent_of(const char *dir)
{
    const char *slash = strrchr(dir, '/');
    return slash ? xstrndup(dir, (size_t)(slash - dir)) : xstrdup("");
}

static void op_free(rclone_op *op)
{
    free(op->url);
    free(op->fs);
    free(op->user);
    free(op->pass);
    free(op->dir);
    free(op->cur);
    free(op);
}

static void op_finish(rclone_op *op, rclone_status st, const char *variable)
{
    rclone_result r = {.status = st, .message = op->msg, .variable = variable};
    op->finishing = true;
    op->cb(op->ud, &r);
    op_free(op);
}

/* httpc_close aborted our call: the op stays (its owner still holds it) until rclone_cancel. */
static void op_released(void *ud)
{
    rclone_op *op = ud;
    op->req = NULL;
}

static void on_answer(void *ud, const httpc_result *res);

/* One RC call. dir NULL = the mount root (no "dir" key at all: "dir": "" fails in rclone). */
static int op_call(rclone_op *op, const char *method, const char *dir, bool recursive)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return -ENOMEM;
    if (dir)
        cJSON_AddStringToObject(o, "dir", dir);
    if (recursive)
        cJSON_AddStringToObject(o, "recursive", "true"); /* a string: rclone rejects a JSON bool */
    if (op->fs)
        cJSON_AddStringToObject(o, "fs", op->fs);
    char *body = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!body)
        return -ENOMEM;

    char *url = xasprintf("%s/%s", op->url, method);
    /* Exactly this: rclone before 1.70 ignores a body sent with any other Content-Type. */
    static const char *const headers[] = {"Content-Type: application/json", NULL};
    httpc_opts ho = {
        .method = "POST",
        .url = url,
        .headers = headers,
        .body = body,
        .body_len = strlen(body),
        .user = op->user,
        .pass = op->pass,
        .timeout_ms = op->timeout_ms,
        .max_response_bytes = RCLONE_MAX_RESPONSE,
    };
    int rc = httpc_request_ex(op->h, &ho, on_answer, op, op_released, &op->req);
    free(url);
    cJSON_free(body);
    return rc;
}

static void op_call_or_fail(rclone_op *op, const char *method, const char *dir, bool recursive)
{
    int rc = op_call(op, method, dir, recursive);
    if (rc < 0) {
        snprintf(op->msg, sizeof op->msg, "%s: cannot start the call: %s", method, strerror(-rc));
        op_finish(op, RCLONE_RES_TRANSIENT, NULL);
    }
}

/* Put "<what> '<dir>': " in front of the classification message. */
static void op_message(rclone_op *op, const char *what, const char *dir, const char *detail)
{
    op->msg[0] = '\0';
    snprintf(op->msg, sizeof op->msg, "%s '", what);
    str_append_escaped(op->msg, sizeof op->msg, dir, strlen(dir), 256);
    size_t n = strlen(op->msg);
    snprintf(op->msg + n, sizeof op->msg - n, "': %s", detail);
}

static void refresh_target(rclone_op *op, op_state st)
{
    op->st = st;
    op_call_or_fail(op, "vfs/refresh", *op->dir ? op->dir : NULL, dir_depth(op->dir) >= 2);
}

static void on_answer(void *ud, const httpc_result *res)
{
    rclone_op *op = ud;
    op->req = NULL;
    const char *key = op->st == ST_FORGET ? NULL : op->st == ST_WALK ? op->cur : op->dir;
    const char *what = op->st == ST_FORGET ? "vfs/forget" : "vfs/refresh";
    char detail[768];
    const char *variable = NULL;
    int missing = 0;
    rclone_status st = rclone_classify(res, key, &missing, detail, sizeof detail, &variable);

    if (st != RCLONE_RES_OK && !missing) {
        op_message(op, what, key ? key : op->dir, detail);
        op_finish(op, st, variable);
        return;
    }
    switch (op->st) {
    case ST_FORGET:
        refresh_target(op, ST_REFRESH);
        return;
    case ST_REFRESH:
        if (!missing) {
            op_message(op, what, op->dir, "OK");
            op_finish(op, RCLONE_RES_OK, NULL);
            return;
        }
        if (!*op->dir) {
            op_message(op, what, "", "the mount root itself does not exist");
            op_finish(op, RCLONE_RES_TRANSIENT, NULL);
            return;
        }
        /* The parent's cached listing lacks dir: refresh the nearest ancestor rclone can list. */
        op->cur = parent_of(op->dir);
        op->st = ST_WALK;
        op_call_or_fail(op, "vfs/refresh", *op->cur ? op->cur : NULL, false);
        return;
    case ST_WALK:
        if (!missing) {
            refresh_target(op, ST_REFRESH_AGAIN);
            return;
        }
        if (!*op->cur) {
            op_message(op, what, "", "the mount root itself does not exist");
            op_finish(op, RCLONE_RES_TRANSIENT, NULL);
            return;
        }
        {
            char *up = parent_of(op->cur);
            free(op->cur);
            op->cur = up;
        }
        op_call_or_fail(op, "vfs/refresh", *op->cur ? op->cur : NULL, false);
        return;
    case ST_REFRESH_AGAIN: {
        /* Still missing once its parent's listing is fresh: it is gone (a delete). */
        char detail2[512];
        snprintf(detail2, sizeof detail2, "%s after refreshing ", missing ? "absent" : "OK");
        if (*op->cur) {
            str_append(detail2, sizeof detail2, "'");
            str_append_escaped(detail2, sizeof detail2, op->cur, strlen(op->cur), 256);
            str_append(detail2, sizeof detail2, "'");
        } else {
            str_append(detail2, sizeof detail2, "the mount root");
        }
        op_message(op, what, op->dir, detail2);
        op_finish(op, missing ? RCLONE_RES_ABSENT : RCLONE_RES_OK, NULL);
        return;
    }
    }
}

static char *url_trimmed(const char *url)
{
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        n--;
    return xstrndup(url, n);
}

int rclone_refresh_folder(httpc_t *h, const cfg_mount *m, const char *vfs_dir, uint64_t timeout_ms, rclone_cb cb,
                          void *ud, rclone_op **out)
{
    if (out)
        *out = NULL;
    if (!h || !m || !m->url || !*m->url || !vfs_dir || !cb)
        return -EINVAL;
    rclone_op *op = xcalloc(1, sizeof *op);
    op->h = h;
    op->url = url_trimmed(m->url);
    op->fs = m->fs && *m->fs ? xstrdup(m->fs) : NULL;
    op->user = m->user && *m->user ? xstrdup(m->user) : NULL;
    op->pass = op->user ? xstrdup(m->pass ? m->pass : "") : NULL;
    op->dir = normalize_dir(vfs_dir);
    op->timeout_ms = timeout_ms;
    op->cb = cb;
    op->ud = ud;

    int rc;
    if (*op->dir) {
        op->st = ST_FORGET; /* a forget never goes out without a dir: that would drop the whole cache */
        rc = op_call(op, "vfs/forget", op->dir, false);
    } else {
        op->st = ST_REFRESH;
        rc = op_call(op, "vfs/refresh", NULL, false);
    }
    if (rc < 0) {
        op_free(op);
        return rc;
    }
    if (out)
        *out = op;
    return 0;
}

void rclone_cancel(rclone_op *op)
{
    if (!op || op->finishing)
        return;
    if (op->req) {
        httpc_req *r = op->req;
        op->req = NULL;
        httpc_cancel(r); /* runs op_released (harmless) but never on_answer */
    }
    op_free(op);
}
