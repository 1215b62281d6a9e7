/* store_history.c: reading the history table for the API (listing with search, status and
 * paging; the totals of /api/stats) and pruning old rows. Rows are written by store.c's group
 * commit, with the entries of the same loop turn. */
#include <errno.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store.h"
#include "store_internal.h"
#include "util.h"

#define STORE_HISTORY_MAX_LIMIT 500

static const char *nz(const char *s)
{
    return s ? s : "";
}

/* A status name the store wrote; anything else reads as failed. */
static hist_status hist_status_parse(const char *name)
{
    for (int i = HIST_OK; name && i < HIST_STATUS_COUNT; i++)
        if (strcmp(name, hist_status_name((hist_status)i)) == 0)
            return (hist_status)i;
    return HIST_FAILED;
}

/* LIKE pattern for "contains search": \ escapes the wildcards and itself. */
static char *like_pattern(const char *search)
{
    size_t n = strlen(search);
    char *p = xmalloc(2 * n + 3);
    size_t o = 0;
    p[o++] = '%';
    for (size_t i = 0; i < n; i++) {
        if (search[i] == '%' || search[i] == '_' || search[i] == '\\')
            p[o++] = '\\';
        p[o++] = search[i];
    }
    p[o++] = '%';
    p[o] = '\0';
    return p;
}

static void history_from_row(sqlite3_stmt *st, store_history *h)
{
    h->id = sqlite3_column_int64(st, 0);
    h->path = nz((const char *)sqlite3_column_text(st, 1));
    h->sources = (unsigned)sqlite3_column_int64(st, 2);
    h->events = (unsigned)sqlite3_column_int64(st, 3);
    h->kinds = (unsigned)sqlite3_column_int64(st, 4);
    h->started = (uint64_t)sqlite3_column_int64(st, 5);
    h->duration_ms = (uint64_t)sqlite3_column_int64(st, 6);
    h->status = hist_status_parse((const char *)sqlite3_column_text(st, 7));
    h->rclone = nz((const char *)sqlite3_column_text(st, 8));
    h->deliveries = nz((const char *)sqlite3_column_text(st, 9));
    h->error = (const char *)sqlite3_column_text(st, 10);
    h->attempts = (unsigned)sqlite3_column_int64(st, 11);
    h->title = (const char *)sqlite3_column_text(st, 12);
    int kind = q_event_kind_parse((const char *)sqlite3_column_text(st, 13));
    h->event = kind >= 0 ? (q_event_kind)kind : QEVENT_OTHER;
    int64_t app = sqlite3_column_type(st, 14) == SQLITE_INTEGER ? sqlite3_column_int64(st, 14) : -1;
    h->app = app >= 0 && app < 15 ? (unsigned)app + 1 : 0; /* stored as its arr_app */
}

int store_history_list(store_t *s, const store_history_query *q, store_history_fn fn, void *ud)
{
    if (!q || !fn || q->limit < 1 || q->limit > STORE_HISTORY_MAX_LIMIT || q->status < -1 ||
        q->status >= HIST_STATUS_COUNT || q->before_id < 0)
        return -EINVAL;
    bool search = q->search && *q->search;
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT id, path, sources, events, kinds, started, duration_ms, status, rclone, deliveries,"
             " error, attempts, title, event, app FROM history WHERE 1%s%s%s"
             " ORDER BY id DESC LIMIT :limit",
             q->before_id > 0 ? " AND id < :before" : "",
             q->status >= 0 ? " AND status = :status" : "",
             search ? " AND (path LIKE :pat ESCAPE '\\' OR deliveries LIKE :pat ESCAPE '\\'"
                      " OR title LIKE :pat ESCAPE '\\')" : "");
    sqlite3_stmt *st = NULL;
    char *pat = search ? like_pattern(q->search) : NULL;
    int rc = sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(st, sqlite3_bind_parameter_index(st, ":limit"), q->limit);
    if (rc == SQLITE_OK && q->before_id > 0)
        rc = sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":before"), q->before_id);
    if (rc == SQLITE_OK && q->status >= 0)
        rc = sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":status"),
                               hist_status_name((hist_status)q->status), -1, SQLITE_STATIC);
    if (rc == SQLITE_OK && pat)
        rc = sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":pat"), pat, -1,
                               SQLITE_STATIC);
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            break;
        store_history h;
        history_from_row(st, &h);
        fn(ud, &h);
    }
    int ret = rc == SQLITE_DONE ? 0 : store_sql_fail(s, rc);
    if (ret < 0)
        log_error("store: %s: reading history: %s", log_esc(store_path(s)), log_esc(store_sqlerr(s)));
    sqlite3_finalize(st);
    free(pat);
    return ret;
}

int store_history_stats(store_t *s, store_stats *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(
        store_db(s),
        "SELECT count(*), total(status = 'ok'), total(status = 'failed'),"
        " total(status = 'parked'), total(status = 'skipped'), total(status = 'retrying'),"
        " total(status = 'cancelled'),"
        " coalesce(CAST(round(avg(CASE WHEN status = 'ok' THEN duration_ms END)) AS INTEGER), 0),"
        " (SELECT id FROM history WHERE status = 'ok' ORDER BY id DESC LIMIT 1),"
        " (SELECT started + duration_ms FROM history WHERE status = 'ok' ORDER BY id DESC LIMIT 1)"
        " FROM history",
        -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->total = (uint64_t)sqlite3_column_int64(st, 0);
        out->ok = (uint64_t)sqlite3_column_int64(st, 1);
        out->failed = (uint64_t)sqlite3_column_int64(st, 2);
        out->parked = (uint64_t)sqlite3_column_int64(st, 3);
        out->skipped = (uint64_t)sqlite3_column_int64(st, 4);
        out->retrying = (uint64_t)sqlite3_column_int64(st, 5);
        out->cancelled = (uint64_t)sqlite3_column_int64(st, 6);
        out->avg_duration_ms = (uint64_t)sqlite3_column_int64(st, 7);
        out->last_sync_id = sqlite3_column_int64(st, 8);
        out->last_sync = (uint64_t)sqlite3_column_int64(st, 9);
        rc = SQLITE_DONE;
    }
    int ret = rc == SQLITE_DONE ? 0 : store_sql_fail(s, rc);
    if (ret < 0)
        log_error("store: %s: history stats: %s", log_esc(store_path(s)), log_esc(store_sqlerr(s)));
    sqlite3_finalize(st);
    return ret;
}

/* Rare (a few times a day), so a statement of its own each time rather than a cached one. */
int store_prune(store_t *s, uint64_t before, int max_rows)
{
    if (max_rows < 1)
        return -EINVAL;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(store_db(s),
                                "DELETE FROM history WHERE id IN"
                                " (SELECT id FROM history WHERE started < ? AND status != 'retrying'"
                                " ORDER BY started LIMIT ?)",
                                -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 1, (int64_t)before);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(st, 2, max_rows);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    int ret = rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : store_sql_fail(s, rc);
    sqlite3_finalize(st);
    if (ret < 0) {
        log_error("store: %s: pruning history: %s", log_esc(store_path(s)), log_esc(store_sqlerr(s)));
        return ret;
    }
    return sqlite3_changes(store_db(s));
}
