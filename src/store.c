/* store.c: durable state in SQLite (WAL): opening and corruption handling, the in-memory
 * staging area and its group commit, the renewal after the state files were replaced, and the
 * start-up load. Below it (store_internal.h): the schema and its migration (store_schema.c), how
 * a row's values are spelled (store_codec.c), the files on disk (store_files.c). Reading and
 * pruning the history table is store_history.c's, above it. */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "test_hooks.h"
#include "store_internal.h"
#include "util.h"

#define STORE_BUSY_TIMEOUT_MS 5000

/* ---- cached statements (the hot paths) ---- */

enum {
    ST_BEGIN = 0,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_INBOX_DELETE,
    ST_ENTRY_PUT,
    ST_ENTRY_DELETE,
    ST_HISTORY_INSERT,
    ST_SOURCE_PUT,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_INBOX_DELETE] = "DELETE FROM inbox WHERE id = ?",
    [ST_ENTRY_PUT] = "INSERT OR REPLACE INTO entries (id, path, first_seen, last_event, due, state,"
                     " attempts, dirty, dirty_first, manual, files, sources, events, kinds,"
                     " park_reason, last_error, hold_reason, deliveries, rclone_done, round_id, title, event, app)"
                     " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    [ST_ENTRY_DELETE] = "DELETE FROM entries WHERE id = ?",
    /* A round's row: written at its first attempt, then updated; `started` stays the first's. */
    [ST_HISTORY_INSERT] = "INSERT INTO history (id, path, sources, events, kinds, started, duration_ms,"
                          " status, rclone, deliveries, error, attempts, title, event, app)"
                          " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                          " ON CONFLICT (id) DO UPDATE SET sources = excluded.sources,"
                          " events = excluded.events, kinds = excluded.kinds,"
                          " duration_ms = max(0, excluded.started + excluded.duration_ms - history.started),"
                          " status = excluded.status,"
                          " rclone = CASE excluded.status WHEN 'cancelled' THEN history.rclone ELSE excluded.rclone END,"
                          " deliveries = excluded.deliveries, error = excluded.error,"
                          " attempts = excluded.attempts, title = excluded.title, event = excluded.event,"
                          " app = excluded.app",
    [ST_SOURCE_PUT] = STORE_SOURCES_PUT_SQL,
};

/* ---- staging ---- */

/* The one pending change of an entry id: its latest snapshot, or its deletion. */
typedef struct staged_entry {
    int64_t id;
    bool del;
    char *path;
    uint64_t first_seen, last_event, due;
    entry_state state;
    unsigned attempts;
    bool dirty;
    uint64_t dirty_first;
    bool manual;
    unsigned char *files;
    size_t files_len;
    unsigned sources, events, kinds;
    char *park_reason, *last_error, *hold_reason;
    unsigned char *deliv;
    size_t deliv_len;
    int rclone_done; /* 0, 1, or 2 when the folder was absent */
    int64_t round_id;
    char *title;
    q_event_kind event;
    unsigned app; /* arr_app + 1, 0 = unknown */
} staged_entry;

typedef struct staged_history {
    int64_t id;
    char *path;
    unsigned sources, events, kinds;
    uint64_t started, duration_ms;
    hist_status status;
    char *rclone, *deliveries, *error;
    unsigned attempts;
    char *title;
    q_event_kind event;
    unsigned app; /* arr_app + 1, 0 = unknown */
} staged_history;

struct store {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *stmt[ST_COUNT];
    char sqlerr[256];        /* text of the last SQLite failure */
    bool fail_next_commit;   /* test hook */
    int durability;          /* STORE_SYNC_* */
    /* The database and its WAL as opened (SQLite keeps both open, and never reopens them, for
     * as long as the connection lives): a path that names another file, or none, means the
     * files were removed or replaced under the running daemon. */
    store_file_id db_id, wal_id;
    int wal_fd;              /* the WAL's descriptor (store_wal_fd), -1 without a WAL */
    int retired_wal_fd;      /* the replaced WAL's: a sync may still be running on it */
    /* Set when the files changed (why says how) until store_renew has written a fresh
     * database; commits are refused meanwhile. */
    bool replaced;
    char replaced_why[PATH_MAX + 96];
    sqlite3 *old_db;         /* store_renew: the replaced connection, read for its history */
    char moved_to[PATH_MAX]; /* store_renew: where the replaced files went, "" before */

    staged_entry *ops;       /* one per entry id, in staging order */
    size_t n_ops, cap_ops;
    uint32_t *slots;         /* open addressing over ops: index + 1, 0 = empty */
    size_t n_slots;          /* power of two, at least twice n_ops */
    int64_t *done;           /* replayed inbox rows to delete */
    size_t n_done, cap_done;
    staged_history *hist;
    size_t n_hist, cap_hist;
    store_sources_staged sources; /* the senders' latest rows */
    int64_t next_hist_id;    /* the next round's row id (never one a pruned row had) */
};

/* ---- small helpers ---- */

static int sqlite_to_errno(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK: return 0;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return -EBUSY;
    case SQLITE_NOMEM: return -ENOMEM;
    case SQLITE_READONLY: return -EROFS;
    case SQLITE_FULL: return -ENOSPC;
    case SQLITE_PERM:
    case SQLITE_AUTH: return -EACCES;
    case SQLITE_CANTOPEN: return -ENOENT;
    case SQLITE_TOOBIG: return -E2BIG;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return -EILSEQ;
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE: return -EINVAL;
    default: return -EIO;
    }
}

static bool sqlite_is_corrupt(int rc)
{
    return (rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB;
}

/* Remember SQLite's text for a failure and turn its code into ours. */
static int sql_fail(store_t *s, int rc)
{
    const char *msg = s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);
    snprintf(s->sqlerr, sizeof s->sqlerr, "%s", msg ? msg : sqlite3_errstr(rc));
    return sqlite_to_errno(rc);
}

static void *grow(void *p, size_t *cap, size_t need, size_t elsize)
{
    if (need <= *cap)
        return p;
    size_t n = *cap ? *cap : 16;
    while (n < need) {
        if (n > SIZE_MAX / 2 / elsize)
            log_fatal("store: staging area overflow");
        n *= 2;
    }
    *cap = n;
    return xrealloc(p, n * elsize);
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

/* ---- binding ---- */

/* Binds parameters left to right and keeps the first failure, so a row's binds read as a list. */
typedef struct binder {
    sqlite3_stmt *st;
    int idx;
    int rc;
} binder;

static void b_int(binder *b, int64_t v)
{
    b->idx++;
    if (b->rc == SQLITE_OK)
        b->rc = sqlite3_bind_int64(b->st, b->idx, v);
}

static void b_u64(binder *b, uint64_t v)
{
    b_int(b, (int64_t)v); /* bit pattern kept: read back as uint64_t it is the same value */
}

/* The staged strings outlive the statement's step, so SQLite need not copy them. */
static void b_text(binder *b, const char *v)
{
    b->idx++;
    if (b->rc != SQLITE_OK)
        return;
    if (v)
        b->rc = sqlite3_bind_text64(b->st, b->idx, v, strlen(v), SQLITE_STATIC, SQLITE_UTF8);
    else
        b->rc = sqlite3_bind_null(b->st, b->idx);
}

static void b_blob(binder *b, const void *p, size_t n)
{
    b->idx++;
    if (b->rc != SQLITE_OK)
        return;
    if (p && n > 0)
        b->rc = sqlite3_bind_blob64(b->st, b->idx, p, n, SQLITE_STATIC);
    else
        b->rc = sqlite3_bind_null(b->st, b->idx);
}

/* A sender kept as arr_app + 1 (0 = unknown) is stored as its arr_app, or NULL. */
static void b_app(binder *b, unsigned app)
{
    b->idx++;
    if (b->rc == SQLITE_OK)
        b->rc = app ? sqlite3_bind_int(b->st, b->idx, (int)app - 1) : sqlite3_bind_null(b->st, b->idx);
}

static int stmt_get(store_t *s, int which, sqlite3_stmt **out)
{
    if (!s->stmt[which]) {
        int rc = sqlite3_prepare_v3(s->db, stmt_sql[which], -1, SQLITE_PREPARE_PERSISTENT,
                                    &s->stmt[which], NULL);
        if (rc != SQLITE_OK)
            return sql_fail(s, rc);
    }
    *out = s->stmt[which];
    return 0;
}

/* Step a bound statement that returns no rows we want; always leaves it reset and unbound. */
static int stmt_finish(store_t *s, binder *b)
{
    int ret = 0;
    if (b->rc != SQLITE_OK) {
        ret = sql_fail(s, b->rc);
    } else {
        int rc = sqlite3_step(b->st);
        if (rc != SQLITE_DONE && rc != SQLITE_ROW)
            ret = sql_fail(s, rc);
    }
    sqlite3_reset(b->st);
    sqlite3_clear_bindings(b->st);
    return ret;
}

static int run_cached(store_t *s, int which)
{
    binder b = {0};
    int ret = stmt_get(s, which, &b.st);
    if (ret < 0)
        return ret;
    return stmt_finish(s, &b);
}

/* Single-value query; *out is 0 when there is no row or the value is NULL. */
static int query_int(store_t *s, const char *sql, int64_t *out, int *sqlite_rc)
{
    sqlite3_stmt *st = NULL;
    *out = 0;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int64(st, 0);
            rc = SQLITE_OK;
        } else if (rc == SQLITE_DONE) {
            rc = SQLITE_OK;
        }
    }
    int ret = rc == SQLITE_OK ? 0 : sql_fail(s, rc);
    sqlite3_finalize(st);
    if (sqlite_rc)
        *sqlite_rc = rc;
    return ret;
}

/* ---- opening ---- */

/* Remember which files the connection just opened. A read transaction makes SQLite open the
 * WAL (creating it) in WAL mode; our own descriptor of it serves fdatasync (STORE_SYNC_OWNER)
 * and pins its identity. Without a WAL (a file system that cannot share memory for one) only
 * the database is watched. */
static void note_open_files(store_t *s)
{
    int64_t v;
    (void)query_int(s, "PRAGMA user_version", &v, NULL);
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s-wal", s->path);
    if (s->wal_fd >= 0) {
        if (s->retired_wal_fd >= 0)
            close(s->retired_wal_fd);
        s->retired_wal_fd = s->wal_fd;
        s->wal_fd = -1;
    }
    s->db_id = store_path_id(s->path);
    s->wal_id = (store_file_id){.present = false};
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0) {
        s->wal_fd = fd;
        s->wal_id = (store_file_id){.dev = st.st_dev, .ino = st.st_ino, .present = true};
    } else if (fd >= 0) {
        close(fd);
    }
}

/* 0 while the paths still name the files the connection has open; else -ESTALE, with
 * s->replaced_why saying which file changed and how. Two stat(2) calls. */
static int files_check(store_t *s)
{
    char wal[PATH_MAX];
    snprintf(wal, sizeof wal, "%s-wal", s->path);
    const struct {
        const char *path;
        store_file_id had;
    } f[] = {{s->path, s->db_id}, {wal, s->wal_id}};
    for (size_t i = 0; i < ARRAY_SIZE(f); i++) {
        if (!f[i].had.present)
            continue;
        store_file_id now = store_path_id(f[i].path);
        if (store_same_file(now, f[i].had))
            continue;
        snprintf(s->replaced_why, sizeof s->replaced_why,
                 "%s was %s under the running daemon (SQLite still writes the file it opened)",
                 f[i].path, now.present ? "replaced by another file" : "removed");
        return -ESTALE;
    }
    return 0;
}

static void db_close(store_t *s)
{
    for (size_t i = 0; i < ST_COUNT; i++) {
        sqlite3_finalize(s->stmt[i]);
        s->stmt[i] = NULL;
    }
    if (s->db) {
        int rc = sqlite3_close(s->db);
        if (rc != SQLITE_OK)
            log_error("store: closing %s: %s", log_esc(s->path), sqlite3_errstr(rc));
        s->db = NULL;
    }
}

/* Close a connection whose files are no longer at its paths: no checkpoint into them, and
 * above all no deleting "<db>-wal" by name on the way out, which is a fresh database's WAL now. */
static void forget_db(sqlite3 *db)
{
    if (!db)
        return;
    int persist = 1;
    sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL);
    sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
    sqlite3_close_v2(db);
}

static void old_db_close(store_t *s)
{
    forget_db(s->old_db);
    s->old_db = NULL;
}

/* PRAGMA quick_check answers one row "ok", or rows describing the damage. */
static int quick_check(store_t *s, bool *corrupt, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, "PRAGMA quick_check", -1, &st, NULL);
    size_t rows = 0;
    char first[200] = "no answer";
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            break;
        if (rows++ == 0)
            snprintf(first, sizeof first, "%s", nz((const char *)sqlite3_column_text(st, 0)));
    }
    int ret = 0;
    if (rc != SQLITE_DONE) {
        ret = sql_fail(s, rc);
        *corrupt = sqlite_is_corrupt(rc);
        errbuf_set(err, errlen, "%s: integrity check: %s", s->path, s->sqlerr);
    } else if (rows != 1 || strcmp(first, "ok") != 0) {
        *corrupt = true;
        ret = -EILSEQ;
        snprintf(s->sqlerr, sizeof s->sqlerr, "integrity check: %s", first);
        errbuf_set(err, errlen, "%s: %s", s->path, s->sqlerr);
    }
    sqlite3_finalize(st);
    return ret;
}

static int pragma(store_t *s, const char *sql, char *err, size_t errlen)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        int ret = sql_fail(s, rc);
        errbuf_set(err, errlen, "%s: %s: %s", s->path, sql, s->sqlerr);
        return ret;
    }
    return 0;
}

static int set_journal_wal(store_t *s, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    int ret = 0;
    if (rc == SQLITE_ROW) {
        const char *mode = (const char *)sqlite3_column_text(st, 0);
        /* Some file systems cannot share memory for WAL; one process on one loop works with
         * any journal, so this is worth a warning, not a refusal. */
        if (!mode || strcmp(mode, "wal") != 0)
            log_warn("store: %s: WAL journal not available, using %s", log_esc(s->path),
                     mode ? mode : "?");
    } else {
        ret = sql_fail(s, rc);
        errbuf_set(err, errlen, "%s: setting WAL journal: %s", s->path, s->sqlerr);
    }
    sqlite3_finalize(st);
    return ret;
}

static int migrate(store_t *s, int64_t from, char *err, size_t errlen)
{
    char msg[512];
    int rc = store_schema_migrate(s->db, from, msg, sizeof msg);
    if (rc == SQLITE_OK)
        return 0;
    errbuf_set(err, errlen, "%s: creating the schema (version %lld to %d): %s", s->path,
           (long long)from, STORE_SCHEMA_VERSION, msg);
    return sqlite_to_errno(rc);
}

/* One attempt at opening. On failure the connection is closed and *corrupt says whether the
 * file itself is damaged (then the caller moves it aside). */
static int db_open(store_t *s, int durability, bool *corrupt, char *err, size_t errlen)
{
    *corrupt = false;
    /* NOMUTEX: only the loop thread uses the connection (the WAL sync on the thread pool works
     * on a file descriptor, not through SQLite), so SQLite's per-call locking is skipped. */
    int rc = sqlite3_open_v2(s->path, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        int ret = sql_fail(s, rc);
        *corrupt = sqlite_is_corrupt(rc);
        errbuf_set(err, errlen, "cannot open %s: %s", s->path, s->sqlerr);
        db_close(s);
        return ret;
    }
    sqlite3_extended_result_codes(s->db, 1);
    /* Until the file has passed its checks, closing must neither checkpoint into it nor delete
     * its -wal: a damaged database is moved aside with everything that belongs to it. */
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL);
    sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);

    int64_t version = 0;
    int ret = query_int(s, "PRAGMA user_version", &version, &rc);
    if (ret < 0) {
        *corrupt = sqlite_is_corrupt(rc);
        errbuf_set(err, errlen, "cannot read %s: %s", s->path, s->sqlerr);
        goto fail;
    }
    if (version > STORE_SCHEMA_VERSION) {
        ret = -EPROTO;
        errbuf_set(err, errlen,
               "%s was written by a newer version of plex-servarr-sync (schema %lld > %d); "
               "refusing to start so no acknowledged work is lost",
               s->path, (long long)version, STORE_SCHEMA_VERSION);
        goto fail;
    }
    ret = quick_check(s, corrupt, err, errlen);
    if (ret < 0)
        goto fail;
    ret = set_journal_wal(s, err, errlen);
    if (ret < 0)
        goto fail;
    ret = pragma(s, durability == STORE_SYNC_COMMIT ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
                 err, errlen);
    if (ret < 0)
        goto fail;
    /* 512 KiB of page cache (SQLite's default is 2 MB): it holds the hot pages of a working
     * queue; with 100,000 queued folders the rest is read back from the OS cache, not kept twice
     * (the ingest benchmark reads no more pages with it than with the default). */
    ret = pragma(s, "PRAGMA cache_size=-512", err, errlen);
    if (ret < 0)
        goto fail;
    ret = pragma(s, "PRAGMA foreign_keys=OFF", err, errlen);
    if (ret < 0)
        goto fail;
    if (version < STORE_SCHEMA_VERSION) {
        ret = migrate(s, version, err, errlen);
        if (ret < 0)
            goto fail;
    }
    /* Round rows get their ids here (see store_stage_history): past every id the table ever
     * gave, pruned ones included, so the UI's paging never meets an id twice. */
    int64_t seq = 0, max = 0;
    ret = query_int(s, "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'history'), 0)", &seq, NULL);
    if (ret == 0)
        ret = query_int(s, "SELECT coalesce(max(id), 0) FROM history", &max, NULL);
    if (ret < 0) {
        errbuf_set(err, errlen, "cannot read %s: %s", s->path, s->sqlerr);
        goto fail;
    }
    s->next_hist_id = (seq > max ? seq : max) + 1;
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, (int *)NULL);
    note_open_files(s);
    return 0;
fail:
    db_close(s);
    return ret;
}

static int move_corrupt_aside(store_t *s, char *err, size_t errlen)
{
    char dst[PATH_MAX];
    int ret = store_move_aside(s->path, "corrupt", dst, sizeof dst, err, errlen);
    if (ret < 0)
        return ret;
    log_error("store: DATABASE CORRUPT: %s could not be read (%s); moved it to %s (with its "
              "-wal/-shm, if any) and starting with an empty database: pending scans it held "
              "are not replayed",
              log_esc(s->path), log_esc(s->sqlerr), log_esc(dst));
    return 0;
}

int store_open(store_t **out, const char *state_dir, int durability, char *err, size_t errlen)
{
    *out = NULL;
    if (!state_dir || !*state_dir) {
        errbuf_set(err, errlen, "state directory not set");
        return -EINVAL;
    }
    if (durability != STORE_SYNC_COMMIT && durability != STORE_SYNC_NONE &&
        durability != STORE_SYNC_OWNER) {
        errbuf_set(err, errlen, "bad durability %d (see STORE_SYNC_*)", durability);
        return -EINVAL;
    }
    int ret = store_dir_ready(state_dir, err, errlen);
    if (ret < 0)
        return ret;
    store_t *s = xcalloc(1, sizeof *s);
    s->wal_fd = -1;
    s->retired_wal_fd = -1;
    s->durability = durability;
    size_t n = strlen(state_dir);
    s->path = xasprintf("%s%s%s", state_dir, state_dir[n - 1] == '/' ? "" : "/", STORE_DB_NAME);
    bool corrupt = false;
    ret = db_open(s, durability, &corrupt, err, errlen);
    if (ret < 0 && corrupt) {
        ret = move_corrupt_aside(s, err, errlen);
        if (ret == 0)
            ret = db_open(s, durability, &corrupt, err, errlen);
    }
    if (ret < 0) {
        store_close(s);
        return ret;
    }
    *out = s;
    return 0;
}

const char *store_path(const store_t *s)
{
    return s->path;
}

int store_wal_fd(store_t *s)
{
    return s->wal_fd >= 0 ? s->wal_fd : -ENOENT;
}

/* ---- staging ---- */

static void staged_entry_clear(staged_entry *op)
{
    free(op->path);
    free(op->deliv);
    free(op->files);
    free(op->park_reason);
    free(op->last_error);
    free(op->hold_reason);
    free(op->title);
    int64_t id = op->id;
    memset(op, 0, sizeof *op);
    op->id = id;
}

static void staged_history_free(staged_history *h)
{
    free(h->path);
    free(h->rclone);
    free(h->deliveries);
    free(h->error);
    free(h->title);
}

static void discard_all(store_t *s)
{
    for (size_t i = 0; i < s->n_ops; i++)
        staged_entry_clear(&s->ops[i]);
    s->n_ops = 0;
    if (s->slots)
        memset(s->slots, 0, s->n_slots * sizeof *s->slots);
    s->n_done = 0;
    for (size_t i = 0; i < s->n_hist; i++)
        staged_history_free(&s->hist[i]);
    s->n_hist = 0;
    store_sources_clear(&s->sources);
}

void store_close(store_t *s)
{
    if (!s)
        return;
    discard_all(s);
    db_close(s);
    old_db_close(s);
    if (s->wal_fd >= 0)
        close(s->wal_fd);
    if (s->retired_wal_fd >= 0)
        close(s->retired_wal_fd);
    free(s->ops);
    free(s->slots);
    free(s->done);
    free(s->hist);
    free(s->path);
    free(s);
}

static size_t id_hash(int64_t id)
{
    uint64_t x = (uint64_t)id; /* splitmix64 finalizer: sequential ids spread over the table */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return (size_t)x;
}

static void slots_insert(store_t *s, size_t idx)
{
    size_t mask = s->n_slots - 1;
    size_t i = id_hash(s->ops[idx].id) & mask;
    while (s->slots[i])
        i = (i + 1) & mask;
    s->slots[i] = (uint32_t)(idx + 1);
}

/* The pending change for an entry id, created empty when there is none yet. */
static staged_entry *entry_op(store_t *s, int64_t id)
{
    if ((s->n_ops + 1) * 2 > s->n_slots) {
        size_t n = s->n_slots ? s->n_slots * 2 : 64;
        if (n > UINT32_MAX)
            log_fatal("store: too many staged entries");
        free(s->slots);
        s->slots = xcalloc(n, sizeof *s->slots);
        s->n_slots = n;
        for (size_t i = 0; i < s->n_ops; i++)
            slots_insert(s, i);
    }
    size_t mask = s->n_slots - 1;
    size_t i = id_hash(id) & mask;
    for (; s->slots[i]; i = (i + 1) & mask)
        if (s->ops[s->slots[i] - 1].id == id)
            return &s->ops[s->slots[i] - 1];
    s->ops = grow(s->ops, &s->cap_ops, s->n_ops + 1, sizeof *s->ops);
    staged_entry *op = &s->ops[s->n_ops];
    memset(op, 0, sizeof *op);
    op->id = id;
    s->slots[i] = (uint32_t)(++s->n_ops);
    return op;
}

void store_stage_entry_put(store_t *s, const q_entry *e)
{
    if (!e || e->id <= 0) {
        log_error("store: entry snapshot without an id ignored");
        return;
    }
    staged_entry *op = entry_op(s, e->id);
    staged_entry_clear(op);
    op->del = false;
    op->path = xstrdup(nz(e->path));
    op->first_seen = e->first_seen;
    op->last_event = e->last_event;
    op->due = e->due;
    op->state = e->state;
    op->attempts = e->attempts;
    op->dirty = e->dirty;
    op->dirty_first = e->dirty_first;
    op->manual = e->manual;
    store_files_encode((const char *const *)e->files, e->files ? e->n_files : 0, &op->files,
                 &op->files_len);
    op->sources = e->sources;
    op->events = e->events;
    op->kinds = e->kinds;
    op->park_reason = xstrdup(e->park_reason);
    op->last_error = xstrdup(e->last_error);
    op->hold_reason = xstrdup(e->hold_reason);
    store_deliveries_encode(e, &op->deliv, &op->deliv_len);
    /* 2: done, and the folder was absent (the same column, so no schema change) */
    op->rclone_done = e->rclone_done ? (e->rclone_absent ? 2 : 1) : 0;
    op->round_id = e->round_id;
    op->title = xstrdup(e->title);
    op->event = (q_event_kind)e->event;
    op->app = e->last_app;
}

void store_stage_entry_del(store_t *s, int64_t entry_id)
{
    if (entry_id <= 0)
        return;
    staged_entry *op = entry_op(s, entry_id);
    staged_entry_clear(op);
    op->del = true;
}

void store_stage_event_done(store_t *s, int64_t event_id)
{
    if (event_id <= 0)
        return;
    s->done = grow(s->done, &s->cap_done, s->n_done + 1, sizeof *s->done);
    s->done[s->n_done++] = event_id;
}

int64_t store_stage_history(store_t *s, const store_history *h)
{
    if (!h)
        return 0;
    int64_t id = h->id > 0 ? h->id : s->next_hist_id++;
    staged_history *c = NULL;
    for (size_t i = 0; h->id > 0 && i < s->n_hist && !c; i++)
        if (s->hist[i].id == id)
            c = &s->hist[i]; /* a second attempt in one turn replaces the first's row */
    if (c) {
        staged_history_free(c);
    } else {
        s->hist = grow(s->hist, &s->cap_hist, s->n_hist + 1, sizeof *s->hist);
        c = &s->hist[s->n_hist++];
    }
    c->id = id;
    c->path = xstrdup(nz(h->path));
    c->sources = h->sources;
    c->events = h->events;
    c->kinds = h->kinds;
    c->started = h->started;
    c->duration_ms = h->duration_ms;
    c->status = h->status;
    c->rclone = xstrdup(nz(h->rclone));
    c->deliveries = xstrdup(h->deliveries ? h->deliveries : "[]");
    c->error = xstrdup(h->error);
    c->attempts = h->attempts;
    c->title = xstrdup(h->title);
    c->event = h->event;
    c->app = h->app;
    return id;
}

void store_stage_source(store_t *s, const store_source *src)
{
    store_sources_stage(&s->sources, src);
}

bool store_has_staged(const store_t *s)
{
    return s->n_ops || s->n_done || s->n_hist || s->sources.n;
}

void store_test_fail_next_commit(store_t *s)
{
    s->fail_next_commit = true;
}

/* ---- commit ---- */

/* Deletions first: a key may move from an entry being deleted to a new one in the same turn. */
static int write_entries(store_t *s)
{
    binder b = {0};
    int ret = stmt_get(s, ST_ENTRY_DELETE, &b.st);
    for (size_t i = 0; ret == 0 && i < s->n_ops; i++) {
        if (!s->ops[i].del)
            continue;
        b.idx = 0;
        b_int(&b, s->ops[i].id);
        ret = stmt_finish(s, &b);
    }
    if (ret == 0)
        ret = stmt_get(s, ST_ENTRY_PUT, &b.st);
    for (size_t i = 0; ret == 0 && i < s->n_ops; i++) {
        const staged_entry *op = &s->ops[i];
        if (op->del)
            continue;
        b.idx = 0;
        b_int(&b, op->id);
        b_text(&b, op->path);
        b_u64(&b, op->first_seen);
        b_u64(&b, op->last_event);
        b_u64(&b, op->due);
        b_text(&b, store_state_name(op->state));
        b_int(&b, op->attempts);
        b_int(&b, op->dirty);
        b_u64(&b, op->dirty_first);
        b_int(&b, op->manual);
        b_blob(&b, op->files, op->files_len);
        b_int(&b, op->sources);
        b_int(&b, op->events);
        b_int(&b, op->kinds);
        b_text(&b, op->park_reason);
        b_text(&b, op->last_error);
        b_text(&b, op->hold_reason);
        b_blob(&b, op->deliv, op->deliv_len);
        b_int(&b, op->rclone_done);
        b_int(&b, op->round_id);
        b_text(&b, op->title);
        b_text(&b, q_event_kind_name(op->event));
        b_app(&b, op->app);
        ret = stmt_finish(s, &b);
    }
    return ret;
}

static int write_done(store_t *s)
{
    binder b = {0};
    int ret = stmt_get(s, ST_INBOX_DELETE, &b.st);
    for (size_t i = 0; ret == 0 && i < s->n_done; i++) {
        b.idx = 0;
        b_int(&b, s->done[i]);
        ret = stmt_finish(s, &b);
    }
    return ret;
}

static int write_history(store_t *s)
{
    binder b = {0};
    int ret = stmt_get(s, ST_HISTORY_INSERT, &b.st);
    for (size_t i = 0; ret == 0 && i < s->n_hist; i++) {
        const staged_history *h = &s->hist[i];
        b.idx = 0;
        b_int(&b, h->id);
        b_text(&b, h->path);
        b_int(&b, h->sources);
        b_int(&b, h->events);
        b_int(&b, h->kinds);
        b_u64(&b, h->started);
        b_u64(&b, h->duration_ms);
        b_text(&b, hist_status_name(h->status));
        b_text(&b, h->rclone);
        b_text(&b, h->deliveries);
        b_text(&b, h->error);
        b_int(&b, h->attempts);
        b_text(&b, h->title);
        b_text(&b, q_event_kind_name(h->event));
        b_app(&b, h->app);
        ret = stmt_finish(s, &b);
    }
    return ret;
}

/* After a renewal: the replaced database's history (read through the connection that still has
 * its files open) goes into the fresh one with its ids, so the list and the cooldown memory (the
 * latest "ok" row of each folder) survive. It is no acknowledged work: a read that fails ends
 * the copy with a warning, not the commit. */
static int copy_old_history(store_t *s, int *copied)
{
    static const char cols[] = "id, path, sources, events, kinds, started, duration_ms, status, rclone,"
                               " deliveries, error, attempts, title, event, app";
    enum { N_COLS = 15 };
    char sql[256];
    sqlite3_stmt *rd = NULL, *wr = NULL;
    *copied = 0;
    snprintf(sql, sizeof sql, "SELECT %s FROM history ORDER BY id", cols);
    int rrc = sqlite3_prepare_v2(s->old_db, sql, -1, &rd, NULL);
    snprintf(sql, sizeof sql, "INSERT INTO history (%s) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", cols);
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &wr, NULL);
    int ret = rc == SQLITE_OK ? 0 : sql_fail(s, rc);
    while (ret == 0 && rrc == SQLITE_OK) {
        rrc = sqlite3_step(rd);
        if (rrc != SQLITE_ROW)
            break;
        rrc = SQLITE_OK;
        for (int i = 0; i < N_COLS; i++)
            sqlite3_bind_value(wr, i + 1, sqlite3_column_value(rd, i));
        rc = sqlite3_step(wr);
        sqlite3_reset(wr);
        if (rc != SQLITE_DONE)
            ret = sql_fail(s, rc);
        else
            (*copied)++;
    }
    if (ret == 0 && rrc != SQLITE_DONE)
        log_warn("store: reading the history of the replaced %s stopped after %d rows: %s; the "
                 "rest is not copied (only its cooldowns are forgotten)",
                 log_esc(s->path), *copied, log_esc(sqlite3_errmsg(s->old_db)));
    sqlite3_finalize(rd);
    sqlite3_finalize(wr);
    return ret;
}

/* One transaction for everything staged (after a renewal, with the old history), then the check
 * that the files written are still the ones at the paths (-ESTALE when not). */
static int commit_staged(store_t *s, int *copied, char *err, size_t errlen)
{
    const char *step = "begin";
    int ret = run_cached(s, ST_BEGIN);
    if (ret == 0) {
        step = "entries";
        ret = write_entries(s);
    }
    if (ret == 0 && s->fail_next_commit) {
        s->fail_next_commit = false;
        step = "test hook";
        snprintf(s->sqlerr, sizeof s->sqlerr, "injected failure");
        ret = -EIO;
    }
    if (ret == 0) {
        step = "inbox cleanup";
        ret = write_done(s);
    }
    if (ret == 0 && s->old_db) {
        step = "history copy";
        ret = copy_old_history(s, copied);
    }
    if (ret == 0) {
        step = "history";
        ret = write_history(s);
    }
    if (ret == 0 && s->sources.n) {
        step = "sources";
        sqlite3_stmt *w = NULL;
        ret = stmt_get(s, ST_SOURCE_PUT, &w);
        int rc = ret == 0 ? store_sources_write(w, &s->sources) : SQLITE_OK;
        if (rc != SQLITE_OK)
            ret = sql_fail(s, rc);
    }
    if (ret == 0) {
        step = "commit";
        ret = run_cached(s, ST_COMMIT);
    }
    if (ret < 0) {
        errbuf_set(err, errlen, "%s: commit failed (%s): %s", s->path, step, s->sqlerr);
        /* A failed COMMIT (or a statement error SQLite did not roll back itself) leaves the
         * transaction open; it must end here or every later commit would fail on BEGIN. */
        if (!sqlite3_get_autocommit(s->db) && run_cached(s, ST_ROLLBACK) < 0)
            log_error("store: %s: rollback failed: %s", log_esc(s->path), log_esc(s->sqlerr));
    }
    /* Committed into files that are no longer at the paths, the rows are as good as lost at the
     * next crash. They need no staging to be written again: the entries come back from the
     * queue at the renewal, the history rows with the old database's. */
    if (files_check(s) < 0) {
        if (ret == 0)
            discard_all(s);
        errbuf_set(err, errlen, "%s", s->replaced_why);
        return -ESTALE;
    }
    if (ret == 0)
        discard_all(s);
    return ret;
}

int store_commit(store_t *s, char *err, size_t errlen)
{
    if (s->replaced) {
        errbuf_set(err, errlen, "%s", s->replaced_why);
        return -ESTALE;
    }
    if (!store_has_staged(s))
        return 0;
    int copied = 0;
    int ret = commit_staged(s, &copied, err, errlen);
    if (ret == -ESTALE)
        s->replaced = true;
    return ret;
}

bool store_replaced(const store_t *s)
{
    return s->replaced;
}

/* Move what is at the paths aside and open a fresh database there; the replaced connection
 * stays open (s->old_db) for its history until the renewal commits. On failure s->db is what
 * it was. */
static int start_fresh(store_t *s, char *err, size_t errlen)
{
    char dst[PATH_MAX];
    int ret = store_move_aside(s->path, "replaced", dst, sizeof dst, err, errlen);
    if (ret < 0)
        return ret;
    if (!s->moved_to[0]) /* a later try moves only what a failed try left */
        snprintf(s->moved_to, sizeof s->moved_to, "%s", dst);
    sqlite3 *prev = s->db;
    for (size_t i = 0; i < ST_COUNT; i++) {
        sqlite3_finalize(s->stmt[i]);
        s->stmt[i] = NULL;
    }
    s->db = NULL;
    bool corrupt = false;
    int64_t next_hist = s->next_hist_id; /* the old history comes along with its ids */
    ret = db_open(s, s->durability, &corrupt, err, errlen);
    if (next_hist > s->next_hist_id)
        s->next_hist_id = next_hist;
    if (ret < 0) {
        s->db = prev;
        return ret;
    }
    if (s->old_db)
        forget_db(prev); /* a fresh one of an earlier try, replaced in its turn: nothing in it */
    else
        s->old_db = prev;
    return 0;
}

static size_t staged_puts(const store_t *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_ops; i++)
        n += !s->ops[i].del;
    return n;
}

int store_renew(store_t *s, store_refill_fn refill, void *ud, char *err, size_t errlen)
{
    if (!s->replaced)
        return 0;
    char why[sizeof s->replaced_why], e[512] = "";
    snprintf(why, sizeof why, "%s", s->replaced_why);
    int ret = 0;
    if (!s->old_db || files_check(s) < 0)
        ret = start_fresh(s, e, sizeof e);
    size_t entries = 0;
    int copied = 0;
    if (ret == 0) {
        refill(ud, s);
        entries = staged_puts(s);
        ret = commit_staged(s, &copied, e, sizeof e);
    }
    /* STORE_SYNC_OWNER: what the replaced files held was acknowledged as on stable storage. */
    if (ret == 0 && s->durability == STORE_SYNC_OWNER && s->wal_fd >= 0 && fdatasync(s->wal_fd) != 0) {
        ret = -errno;
        errbuf_set(e, sizeof e, "%s-wal: fdatasync: %s", s->path, strerror(-ret));
    }
    if (ret < 0) {
        errbuf_set(err, errlen, "%s; no fresh database yet: %s", why, e);
        return ret;
    }
    log_error("store: STATE FILES REPLACED: %s. Moved what was left of it aside to %s, and "
              "wrote the %zu queued folder%s (and %d history row%s) into a fresh %s; webhooks "
              "are acknowledged again",
              log_esc(why), log_esc(s->moved_to), entries, entries == 1 ? "" : "s", copied,
              copied == 1 ? "" : "s", log_esc(s->path));
    old_db_close(s);
    s->replaced = false;
    s->moved_to[0] = '\0';
    return 0;
}

/* ---- start-up load ---- */

static char *col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    if (!t)
        return NULL;
    return xstrndup((const char *)t, (size_t)sqlite3_column_bytes(st, i));
}

/* An entry's counters, as the queue keeps them (at most QUEUE_COUNT_MAX). */
static uint16_t count16(int64_t v)
{
    return v <= 0 ? 0 : v >= (int64_t)QUEUE_COUNT_MAX ? (uint16_t)QUEUE_COUNT_MAX : (uint16_t)v;
}

static void entry_from_row(sqlite3_stmt *st, q_entry *e)
{
    memset(e, 0, sizeof *e);
    e->id = sqlite3_column_int64(st, 0);
    e->path = col_dup(st, 1);
    if (!e->path)
        e->path = xstrdup("");
    e->first_seen = (uint64_t)sqlite3_column_int64(st, 2);
    e->last_event = (uint64_t)sqlite3_column_int64(st, 3);
    e->due = (uint64_t)sqlite3_column_int64(st, 4);
    const char *state = (const char *)sqlite3_column_text(st, 5);
    entry_state es;
    if (!store_state_parse(state, &es)) {
        /* Keep the work: an unknown state waits for its due time like a fresh entry. */
        log_warn("store: entry %lld has unknown state \"%s\"; treating it as waiting", (long long)e->id,
                 log_esc(state));
        es = ENTRY_WAITING;
    }
    e->state = (uint8_t)es;
    e->attempts = count16(sqlite3_column_int64(st, 6));
    e->dirty = sqlite3_column_int64(st, 7) != 0;
    e->dirty_first = (uint64_t)sqlite3_column_int64(st, 8);
    e->manual = sqlite3_column_int64(st, 9) != 0;
    e->sources = (unsigned)sqlite3_column_int64(st, 11);
    e->events = count16(sqlite3_column_int64(st, 12));
    e->kinds = (unsigned)sqlite3_column_int64(st, 13);
    e->park_reason = col_dup(st, 14);
    e->last_error = col_dup(st, 15);
    e->hold_reason = col_dup(st, 16);
    e->rclone_done = sqlite3_column_int64(st, 18) != 0;
    e->rclone_absent = sqlite3_column_int64(st, 18) == 2;
    e->round_id = sqlite3_column_int64(st, 19);
    e->title = col_dup(st, 20);
    int kind = q_event_kind_parse((const char *)sqlite3_column_text(st, 21));
    e->event = kind >= 0 ? (unsigned)kind : QEVENT_OTHER;
    /* the sender as stored (arr_app), kept as its source bit's index + 1 */
    int64_t app = sqlite3_column_type(st, 22) == SQLITE_INTEGER ? sqlite3_column_int64(st, 22) : -1;
    e->last_app = app >= 0 && app < 15 ? (unsigned)app + 1 : 0;
}

static int load_entries(store_t *s, const store_loader *l)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(
        s->db,
        "SELECT id, path, first_seen, last_event, due, state, attempts, dirty, dirty_first, manual,"
        " files, sources, events, kinds, park_reason, last_error, hold_reason, deliveries, rclone_done,"
        " round_id, title, event, app FROM entries ORDER BY id",
        -1, &st, NULL);
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            break;
        q_entry e;
        entry_from_row(st, &e);
        store_files_view fv, dv;
        store_files_decode(sqlite3_column_blob(st, 10), (size_t)sqlite3_column_bytes(st, 10), &fv);
        e.files = fv.v;
        e.n_files = (uint8_t)(fv.n < QUEUE_MAX_FILES ? fv.n : QUEUE_MAX_FILES); /* a queue never wrote more */
        store_deliveries_decode(sqlite3_column_blob(st, 17), (size_t)sqlite3_column_bytes(st, 17), &dv, &e);
        l->entry(l->ud, &e);
        store_files_view_free(&fv);
        store_files_view_free(&dv);
        free(e.deliv);
        free(e.path);
        free(e.park_reason);
        free(e.last_error);
        free(e.hold_reason);
        free((char *)(uintptr_t)e.title); /* queue_restore copied it */
    }
    int ret = rc == SQLITE_DONE ? 0 : sql_fail(s, rc);
    sqlite3_finalize(st);
    return ret;
}

static int load_events(store_t *s, const store_loader *l)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT id, arr_path, files, source_bit, manual, at FROM inbox ORDER BY id",
                                -1, &st, NULL);
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            break;
        char *arr = col_dup(st, 1);
        store_files_view fv;
        store_files_decode(sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2), &fv);
        store_event ev = {
            .id = sqlite3_column_int64(st, 0),
            .arr_path = nz(arr),
            .files = (const char *const *)fv.v,
            .n_files = fv.n,
            .source_bit = (unsigned)sqlite3_column_int64(st, 3),
            .manual = sqlite3_column_int64(st, 4) != 0,
            .at = (uint64_t)sqlite3_column_int64(st, 5),
        };
        l->event(l->ud, &ev);
        store_files_view_free(&fv);
        free(arr);
    }
    int ret = rc == SQLITE_DONE ? 0 : sql_fail(s, rc);
    sqlite3_finalize(st);
    return ret;
}

/* A scan's success time is when it ended (started + duration), as the queue records it live. */
static int load_last_success(store_t *s, const store_loader *l)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT path, max(started + duration_ms) FROM history"
                                " WHERE status IN ('ok', 'warning') GROUP BY path",
                                -1, &st, NULL);
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            break;
        char *path = col_dup(st, 0);
        l->last_success(l->ud, nz(path), (uint64_t)sqlite3_column_int64(st, 1));
        free(path);
    }
    int ret = rc == SQLITE_DONE ? 0 : sql_fail(s, rc);
    sqlite3_finalize(st);
    return ret;
}

/* Entries, then last successes (so replayed events see their key's cooldown), then the inbox. */
int store_load(store_t *s, const store_loader *l)
{
    int ret = 0;
    const char *what = "";
    if (l->entry) {
        what = "entries";
        ret = load_entries(s, l);
    }
    if (ret == 0 && l->last_success) {
        what = "history";
        ret = load_last_success(s, l);
    }
    if (ret == 0 && l->event) {
        what = "inbox";
        ret = load_events(s, l);
    }
    if (ret == 0 && l->source) {
        what = "sources";
        int rc = store_sources_load(s->db, l->source, l->ud);
        if (rc != SQLITE_OK)
            ret = sql_fail(s, rc);
    }
    if (ret < 0)
        log_error("store: %s: loading %s: %s", log_esc(s->path), what, log_esc(s->sqlerr));
    return ret;
}

int64_t store_max_entry_id(store_t *s)
{
    int64_t max = 0;
    int ret = query_int(s, "SELECT coalesce(max(id), 0) FROM entries", &max, NULL);
    if (ret < 0) {
        log_error("store: %s: reading entry ids: %s", log_esc(s->path), log_esc(s->sqlerr));
        return ret;
    }
    for (size_t i = 0; i < s->n_ops; i++)
        if (s->ops[i].id > max)
            max = s->ops[i].id;
    return max;
}

/* ---- for store_history.c (store_internal.h) ---- */

sqlite3 *store_db(store_t *s)
{
    return s->db;
}

int store_sql_fail(store_t *s, int rc)
{
    return sql_fail(s, rc);
}

const char *store_sqlerr(const store_t *s)
{
    return s->sqlerr;
}
