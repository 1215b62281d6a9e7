/* store_schema.c: the database's schema, one text per version, and the migration that takes a
 * database from the version it has to STORE_SCHEMA_VERSION in one transaction. Below store.c,
 * which opens the database and calls it (store_internal.h). */
#include <stdint.h>
#include <stdio.h>
#include <sqlite3.h>

#include "store.h"
#include "store_internal.h"
#include "util.h"


/* Files of an event or entry are a BLOB of paths, each followed by one NUL byte: paths never
 * contain NUL, so this is length-safe for any other byte (no escaping, no UTF-8 assumption). */
static const char schema_v1[] =
    "CREATE TABLE entries ("
    " id INTEGER PRIMARY KEY,"
    " section INTEGER NOT NULL,"
    " plex_path TEXT NOT NULL,"
    " arr_path TEXT NOT NULL,"
    " first_seen INTEGER NOT NULL,"
    " last_event INTEGER NOT NULL,"
    " due INTEGER NOT NULL,"
    " state TEXT NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " dirty INTEGER NOT NULL DEFAULT 0,"
    " dirty_first INTEGER NOT NULL DEFAULT 0,"
    " manual INTEGER NOT NULL DEFAULT 0,"
    " files BLOB,"
    " sources INTEGER NOT NULL DEFAULT 0,"
    " events INTEGER NOT NULL DEFAULT 0,"
    " park_reason TEXT,"
    " last_error TEXT,"
    " hold_reason TEXT);"
    "CREATE TABLE inbox ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " section INTEGER NOT NULL,"
    " plex_path TEXT NOT NULL,"
    " arr_path TEXT NOT NULL,"
    " files BLOB,"
    " source_bit INTEGER NOT NULL DEFAULT 0,"
    " manual INTEGER NOT NULL DEFAULT 0,"
    " at INTEGER NOT NULL);"
    "CREATE TABLE history ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " section INTEGER NOT NULL,"
    " plex_path TEXT NOT NULL,"
    " arr_path TEXT NOT NULL,"
    " sources INTEGER NOT NULL DEFAULT 0,"
    " events INTEGER NOT NULL DEFAULT 0,"
    " started INTEGER NOT NULL,"
    " duration_ms INTEGER NOT NULL DEFAULT 0,"
    " status TEXT NOT NULL,"
    " rclone TEXT NOT NULL,"
    " plex TEXT NOT NULL,"
    " error TEXT,"
    " attempt INTEGER NOT NULL DEFAULT 0);"
    /* pruning and "older than" */
    "CREATE INDEX history_started ON history (started);"
    /* the API's status filter, paged newest first by id */
    "CREATE INDEX history_status_id ON history (status, id);"
    /* cooldown rebuild at start: latest ok row per key */
    "CREATE INDEX history_ok_key ON history (section, plex_path, started) WHERE status = 'ok';";

/* Version 2: one entry per folder with its deliveries (target, library, state, error), and one
 * history row per round with each delivery's result. A version-1 entry (one per Plex section and
 * path) becomes one for its arr path with no deliveries yet: the daemon maps it at start, as a
 * reload would, and a parked one waits no more (the configuration it was parked for may be the
 * one that changed). A version-1 history row becomes a round with one delivery to `plex`. */
static const char schema_v2[] =
    "CREATE TABLE entries2 ("
    " id INTEGER PRIMARY KEY,"
    " path TEXT NOT NULL,"
    " first_seen INTEGER NOT NULL,"
    " last_event INTEGER NOT NULL,"
    " due INTEGER NOT NULL,"
    " state TEXT NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " dirty INTEGER NOT NULL DEFAULT 0,"
    " dirty_first INTEGER NOT NULL DEFAULT 0,"
    " manual INTEGER NOT NULL DEFAULT 0,"
    " files BLOB,"
    " sources INTEGER NOT NULL DEFAULT 0,"
    " events INTEGER NOT NULL DEFAULT 0,"
    " kinds INTEGER NOT NULL DEFAULT 0,"
    " park_reason TEXT,"
    " last_error TEXT,"
    " hold_reason TEXT,"
    " deliveries BLOB,"
    " rclone_done INTEGER NOT NULL DEFAULT 0,"
    " round_id INTEGER NOT NULL DEFAULT 0);"
    "INSERT INTO entries2 (id, path, first_seen, last_event, due, state, attempts, dirty, dirty_first,"
    " manual, files, sources, events, park_reason, last_error, hold_reason)"
    " SELECT id, arr_path, first_seen, last_event, due,"
    " CASE WHEN state IN ('parked', 'unresolved') THEN 'waiting' ELSE state END,"
    " attempts, dirty, dirty_first, manual, files, sources, events, NULL, last_error, hold_reason"
    " FROM entries;"
    "DROP TABLE entries;"
    "ALTER TABLE entries2 RENAME TO entries;"
    "CREATE TABLE history2 ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " path TEXT NOT NULL,"
    " sources INTEGER NOT NULL DEFAULT 0,"
    " events INTEGER NOT NULL DEFAULT 0,"
    " kinds INTEGER NOT NULL DEFAULT 0,"
    " started INTEGER NOT NULL,"
    " duration_ms INTEGER NOT NULL DEFAULT 0,"
    " status TEXT NOT NULL,"
    " rclone TEXT NOT NULL,"
    " deliveries TEXT NOT NULL DEFAULT '[]',"
    " error TEXT,"
    " attempts INTEGER NOT NULL DEFAULT 0);"
    "INSERT INTO history2 (id, path, sources, events, started, duration_ms, status, rclone, deliveries,"
    " error, attempts)"
    " SELECT id, arr_path, sources, events, started, duration_ms, status, rclone,"
    " CASE WHEN section < 0 OR status = 'skipped' THEN '[]' ELSE json_array(json_object("
    "  'target', 'plex', 'kind', 'plex', 'library', CAST(section AS TEXT), 'path', plex_path,"
    "  'result', plex, 'error', CASE WHEN status = 'ok' THEN NULL ELSE error END)) END,"
    " error, attempt FROM history;"
    /* history2's sequence goes on from history's: ids of pruned rows are never given again */
    "DELETE FROM sqlite_sequence WHERE name = 'history2';"
    "INSERT INTO sqlite_sequence (name, seq) SELECT 'history2',"
    " max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'history'), 0),"
    " coalesce((SELECT max(id) FROM history2), 0));"
    "DROP TABLE history;"
    "ALTER TABLE history2 RENAME TO history;"
    "CREATE INDEX history_started ON history (started);"
    "CREATE INDEX history_status_id ON history (status, id);"
    /* cooldown rebuild at start: latest ok round per folder */
    "CREATE INDEX history_ok_path ON history (path, started) WHERE status = 'ok';";

/* Version 3: what each entry and round is about (title, the latest event's kind, its sender:
 * an arr_app number) and the senders' table (what each *arr app, and the manual and autoscan
 * triggers, last sent). An older row has no title; its event is read from its kinds (the one a
 * person or a trigger sent is 'manual') and its sender from its sources when one *arr app sent
 * all of it. */
#define V3_EVENT_OF_OLD_ROW                                                                        \
    "CASE WHEN kinds & 2 THEN 'upgrade' WHEN kinds & 1 THEN 'import' WHEN kinds & 4 THEN 'rename'" \
    " WHEN kinds & 8 THEN 'delete' WHEN sources > 0 AND sources & 15 = 0 THEN 'manual'"            \
    " ELSE 'other' END"
#define V3_APP_OF_OLD_ROW "CASE sources WHEN 1 THEN 0 WHEN 2 THEN 1 WHEN 4 THEN 2 WHEN 8 THEN 3 END"
static const char schema_v3[] =
    "ALTER TABLE entries ADD COLUMN title TEXT;"
    "ALTER TABLE entries ADD COLUMN event TEXT;"
    "ALTER TABLE entries ADD COLUMN app INTEGER;"
    "ALTER TABLE history ADD COLUMN title TEXT;"
    "ALTER TABLE history ADD COLUMN event TEXT;"
    "ALTER TABLE history ADD COLUMN app INTEGER;"
    "UPDATE entries SET event = " V3_EVENT_OF_OLD_ROW ", app = " V3_APP_OF_OLD_ROW ";"
    "UPDATE history SET event = " V3_EVENT_OF_OLD_ROW ", app = " V3_APP_OF_OLD_ROW ";"
    "CREATE TABLE sources ("
    " app TEXT PRIMARY KEY,"
    " events INTEGER NOT NULL DEFAULT 0,"
    " last_type TEXT,"
    " last_title TEXT,"
    " last_at INTEGER NOT NULL DEFAULT 0,"
    " last_test_at INTEGER NOT NULL DEFAULT 0);";

/* migrations[v] takes a database at user_version v - 1 to v. */
static const char *const migrations[STORE_SCHEMA_VERSION + 1] = {NULL, schema_v1, schema_v2, schema_v3};

int store_schema_migrate(sqlite3 *db, int64_t from, char *msg, size_t msglen)
{
    char *e = NULL;
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &e);
    for (int64_t v = from + 1; rc == SQLITE_OK && v <= STORE_SCHEMA_VERSION; v++) {
        rc = sqlite3_exec(db, migrations[v], NULL, NULL, &e);
        if (rc == SQLITE_OK) {
            char sql[64];
            snprintf(sql, sizeof sql, "PRAGMA user_version = %lld", (long long)v);
            rc = sqlite3_exec(db, sql, NULL, NULL, &e);
        }
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "COMMIT", NULL, NULL, &e);
    if (rc == SQLITE_OK)
        return SQLITE_OK;
    errbuf_set(msg, msglen, "%s", e ? e : sqlite3_errstr(rc));
    sqlite3_free(e);
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}
