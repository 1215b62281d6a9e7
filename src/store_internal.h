/* store_internal.h: what the store's files share, apart from its public header. store.c lends
 * its connection and error text to store_history.c (the history table's reading and pruning),
 * which sits above it; store_schema.c (the schema and its migration), store_codec.c (how a row's
 * values are spelled) and store_files.c (the state directory and the files on disk) sit below
 * store.c and serve it. Not a public header: callers use store.h. */
#ifndef PSS_STORE_INTERNAL_H
#define PSS_STORE_INTERNAL_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "queue.h"
#include "store.h"

#define STORE_DB_NAME "plex-servarr-sync.db"
/* Room left in a path for ".corrupt-<seconds>.<n>-wal". */
#define STORE_SUFFIX_ROOM 48

/* ---- store.c, for store_history.c ---- */

/* The open connection; owned by the store, valid until store_close. */
sqlite3 *store_db(store_t *s);
/* Keeps SQLite's text for a failure (store_sqlerr) and returns it as a negative errno. */
int store_sql_fail(store_t *s, int rc);
/* The text of the last failure store_sql_fail kept. */
const char *store_sqlerr(const store_t *s);

/* ---- store_schema.c ---- */

/* Takes db from user_version `from` to STORE_SCHEMA_VERSION in one transaction. Returns
 * SQLITE_OK, or SQLite's code with its text in msg and the transaction rolled back. */
int store_schema_migrate(sqlite3 *db, int64_t from, char *msg, size_t msglen);

/* ---- store_codec.c ---- */

/* An entry state's persisted name; an unknown state is written as "waiting". */
const char *store_state_name(entry_state st);
/* The state a persisted name stands for; false for NULL or an unknown name. */
bool store_state_parse(const char *name, entry_state *out);

/* Files (and deliveries) as a BLOB: each string followed by one NUL byte. *out is a new
 * buffer, or NULL when the list is empty (then *outlen is 0). */
void store_files_encode(const char *const *files, size_t n, unsigned char **out, size_t *outlen);

/* Decoded files: one allocation for the bytes, one for the pointer array. */
typedef struct store_files_view {
    char *bytes;
    char **v;
    size_t n;
} store_files_view;

/* Fills fv from a BLOB (a truncated last string still ends); free with store_files_view_free. */
void store_files_decode(const void *blob, size_t len, store_files_view *fv);
void store_files_view_free(store_files_view *fv);
/* e's deliveries as a BLOB of four strings each (target, library, state, error). */
void store_deliveries_encode(const q_entry *e, unsigned char **out, size_t *outlen);
/* Into e->deliv (new array, the caller frees it); its strings point into fv, which the caller
 * frees after use. */
void store_deliveries_decode(const void *blob, size_t len, store_files_view *fv, q_entry *e);

/* ---- store_sources.c ---- */

/* The senders' rows staged for the next commit: the latest of each app, copied. */
typedef struct store_source_row {
    char *app, *last_type, *last_title;
    uint64_t events, last_at, last_test_at;
} store_source_row;
typedef struct store_sources_staged {
    store_source_row v[STORE_SOURCES_MAX];
    size_t n;
} store_sources_staged;

void store_sources_stage(store_sources_staged *st, const store_source *src);
/* The statement store.c prepares once and hands to store_sources_write (its parameters: app,
 * events, last_type, last_title, last_at, last_test_at). */
#define STORE_SOURCES_PUT_SQL                                                                       \
    "INSERT OR REPLACE INTO sources (app, events, last_type, last_title, last_at, last_test_at)"    \
    " VALUES (?, ?, ?, ?, ?, ?)"
/* Writes the staged rows with w (STORE_SOURCES_PUT_SQL) inside the caller's transaction, leaving
 * it reset: SQLITE_OK or SQLite's code. */
int store_sources_write(sqlite3_stmt *w, const store_sources_staged *st);
void store_sources_clear(store_sources_staged *st);
/* Each row of the sources table to fn: SQLITE_OK (SQLITE_DONE is taken as it) or SQLite's code. */
int store_sources_load(sqlite3 *db, void (*fn)(void *ud, const store_source *src), void *ud);

/* ---- store_files.c ---- */

/* Which file a path names (device and inode), or that nothing is there. */
typedef struct store_file_id {
    dev_t dev;
    ino_t ino;
    bool present;
} store_file_id;

/* mkdir -p dir with mode 0750, then checks that it is a directory we can write in and that the
 * database files in it, if any, are writable. 0, or a negative errno with err saying why. */
int store_dir_ready(const char *dir, char *err, size_t errlen);
store_file_id store_path_id(const char *path);
bool store_same_file(store_file_id a, store_file_id b);
/* Renames the database at path, with its -wal and -shm, to "<path>.<tag>-<unix time>" (dst).
 * 0, or a negative errno with err saying which rename failed. */
int store_move_aside(const char *path, const char *tag, char *dst, size_t dstlen, char *err,
                     size_t errlen);

#endif
