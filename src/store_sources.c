/* store_sources.c: the senders' table (what each *arr app and the manual trigger last sent):
 * the rows staged for the group commit, their writing inside its transaction, and their reading
 * at start. Below store.c, which owns the connection and the transaction (store_internal.h). */
#include <assert.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "store_internal.h"
#include "util.h"

static void row_free(store_source_row *r)
{
    free(r->app);
    free(r->last_type);
    free(r->last_title);
    memset(r, 0, sizeof *r);
}

void store_sources_stage(store_sources_staged *st, const store_source *src)
{
    size_t i = 0;
    while (i < st->n && strcmp(st->v[i].app, src->app) != 0)
        i++;
    assert(i < STORE_SOURCES_MAX); /* the apps are a fixed few */
    if (i == st->n)
        st->n++;
    else
        row_free(&st->v[i]);
    st->v[i] = (store_source_row){
        .app = xstrdup(src->app),
        .last_type = xstrdup(src->last_type),
        .last_title = xstrdup(src->last_title),
        .events = src->events,
        .last_at = src->last_at,
        .last_test_at = src->last_test_at,
    };
}

void store_sources_clear(store_sources_staged *st)
{
    for (size_t i = 0; i < st->n; i++)
        row_free(&st->v[i]);
    st->n = 0;
}

static int bind_text(sqlite3_stmt *st, int i, const char *v)
{
    return v ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

int store_sources_write(sqlite3_stmt *w, const store_sources_staged *st)
{
    int rc = SQLITE_OK;
    for (size_t i = 0; rc == SQLITE_OK && i < st->n; i++) {
        const store_source_row *r = &st->v[i];
        rc = bind_text(w, 1, r->app);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(w, 2, (int64_t)r->events);
        if (rc == SQLITE_OK)
            rc = bind_text(w, 3, r->last_type);
        if (rc == SQLITE_OK)
            rc = bind_text(w, 4, r->last_title);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(w, 5, (int64_t)r->last_at);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(w, 6, (int64_t)r->last_test_at);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(w);
        if (rc == SQLITE_DONE)
            rc = SQLITE_OK;
        sqlite3_reset(w);
        sqlite3_clear_bindings(w);
    }
    return rc;
}

int store_sources_load(sqlite3 *db, void (*fn)(void *ud, const store_source *src), void *ud)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT app, events, last_type, last_title, last_at, last_test_at FROM sources",
                                -1, &st, NULL);
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            break;
        const char *app = (const char *)sqlite3_column_text(st, 0);
        if (!app)
            continue;
        store_source src = {
            .app = app,
            .events = (uint64_t)sqlite3_column_int64(st, 1),
            .last_type = (const char *)sqlite3_column_text(st, 2),
            .last_title = (const char *)sqlite3_column_text(st, 3),
            .last_at = (uint64_t)sqlite3_column_int64(st, 4),
            .last_test_at = (uint64_t)sqlite3_column_int64(st, 5),
        };
        fn(ud, &src);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}
