/* target.c: one interface over the kinds of media server (see target.h). */
#include "target.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mediabrowser.h"
#include "plex.h"
#include "util.h"

struct target_op {
    target_done_cb done;
    target_list_cb list;
    void *ud;
    httpc_req *req; /* Plex calls and the Jellyfin/Emby list */
    mb_op *mb;      /* a Jellyfin/Emby scan (one or two requests) */
};

static target_status of_plex(plex_status s)
{
    switch (s) {
    case PLEX_RES_OK:
        return TARGET_RES_OK;
    case PLEX_RES_TRANSIENT:
        return TARGET_RES_TRANSIENT;
    case PLEX_RES_AUTH:
        return TARGET_RES_AUTH;
    case PLEX_RES_NOT_FOUND:
        return TARGET_RES_NOT_FOUND;
    default:
        return TARGET_RES_BAD;
    }
}

static target_status of_mb(mb_status s)
{
    switch (s) {
    case MB_RES_OK:
        return TARGET_RES_OK;
    case MB_RES_TRANSIENT:
        return TARGET_RES_TRANSIENT;
    case MB_RES_AUTH:
        return TARGET_RES_AUTH;
    case MB_RES_NOT_FOUND:
        return TARGET_RES_NOT_FOUND;
    default:
        return TARGET_RES_BAD;
    }
}

static void on_plex_done(void *ud, const plex_result *r)
{
    target_op *op = ud;
    target_result tr = {of_plex(r->status), r->http_status, r->message ? r->message : "", "refresh"};
    op->done(op->ud, &tr);
    free(op);
}

static void on_plex_list(void *ud, const plex_result *r, media_libraries *libs)
{
    target_op *op = ud;
    target_result tr = {of_plex(r->status), r->http_status, r->message ? r->message : "", "sections"};
    op->list(op->ud, &tr, libs);
    free(op);
}

static void on_mb_done(void *ud, const mb_result *r)
{
    target_op *op = ud;
    target_result tr = {of_mb(r->status), r->http_status, r->message ? r->message : "", r->via};
    op->done(op->ud, &tr);
    free(op);
}

static void on_mb_list(void *ud, const mb_result *r, media_libraries *libs)
{
    target_op *op = ud;
    target_result tr = {of_mb(r->status), r->http_status, r->message ? r->message : "", r->via};
    op->list(op->ud, &tr, libs);
    free(op);
}

static target_op *op_new(target_done_cb done, target_list_cb list, void *ud)
{
    target_op *op = xcalloc(1, sizeof *op);
    op->done = done;
    op->list = list;
    op->ud = ud;
    return op;
}

/* A started call hands op to its callback; a refused one frees it here. */
static int started(int rc, target_op *op, target_op **out)
{
    if (rc < 0) {
        free(op);
        if (out)
            *out = NULL;
        return rc;
    }
    if (out)
        *out = op;
    return 0;
}

static mb_update_type mb_update(target_update u)
{
    return u == TARGET_UPDATE_CREATED ? MB_UPDATE_CREATED : u == TARGET_UPDATE_DELETED ? MB_UPDATE_DELETED
                                                                                      : MB_UPDATE_MODIFIED;
}

int target_scan(httpc_t *h, const cfg_target *t, const char *identifier, const char *library_id,
                const char *path, target_update update, target_done_cb cb, void *ud, target_op **out)
{
    if (!t || !cb || !path)
        return -EINVAL;
    target_op *op = op_new(cb, NULL, ud);
    int rc;
    if (t->kind == TARGET_PLEX)
        rc = plex_target_scan(h, t, identifier, library_id, path, on_plex_done, op, &op->req);
    else
        rc = mb_scan(h, t, path, mb_update(update), on_mb_done, op, &op->mb);
    return started(rc, op, out);
}

int target_list(httpc_t *h, const cfg_target *t, const char *identifier, target_list_cb cb, void *ud,
                target_op **out)
{
    if (!t || !cb)
        return -EINVAL;
    target_op *op = op_new(NULL, cb, ud);
    int rc;
    if (t->kind == TARGET_PLEX)
        rc = plex_target_list_sections(h, t, identifier, on_plex_list, op, &op->req);
    else
        rc = mb_list_libraries(h, t, on_mb_list, op, &op->req);
    return started(rc, op, out);
}

int target_empty_trash(httpc_t *h, const cfg_target *t, const char *identifier, const char *library_id,
                       target_done_cb cb, void *ud, target_op **out)
{
    if (!t || !cb || t->kind != TARGET_PLEX)
        return -EINVAL;
    target_op *op = op_new(cb, NULL, ud);
    return started(plex_empty_trash(h, t, identifier, library_id, on_plex_done, op, &op->req), op, out);
}

void target_cancel(target_op *op)
{
    if (!op)
        return;
    if (op->req)
        httpc_cancel(op->req);
    if (op->mb)
        mb_cancel(op->mb);
    free(op);
}

const char *target_fix_for(const cfg_target *t, target_status s)
{
    if (s == TARGET_RES_AUTH)
        return t->token_var;
    if (strcmp(t->origin, "PLEX_URL") == 0 && s == TARGET_RES_NOT_FOUND)
        return "SECTION_MAPPING";
    return t->origin;
}
