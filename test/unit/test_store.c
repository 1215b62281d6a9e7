/* test_store.c: the SQLite store on real files in a temporary directory: schema, group commit,
 * failure handling, start-up load, corruption, refusal, history queries and pruning. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <dirent.h>

#include "log.h"
#include "store.h"
#include "util.h"
#include "test_hooks.h"

#define DB_NAME "plex-servarr-sync.db"

typedef struct fixture {
    char tmp[256];        /* mkdtemp root, removed after the test */
    char state[512];      /* STATE_DIR under it */
    char db[640];
} fixture;

/* ---- captured log lines ---- */

static char logged[8192];

static void sink(log_level_t lvl, const char *line)
{
    (void)lvl;
    size_t n = strlen(logged);
    snprintf(logged + n, sizeof logged - n, "%s\n", line);
}

/* ---- fixture ---- */

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    const char *base = getenv("TMPDIR");
    snprintf(f->tmp, sizeof f->tmp, "%s/test_store.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(f->tmp))
        return -1;
    snprintf(f->state, sizeof f->state, "%s/state", f->tmp);
    snprintf(f->db, sizeof f->db, "%s/%s", f->state, DB_NAME);
    logged[0] = '\0';
    log_set_sink(sink);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    log_set_sink(NULL);
    nftw(f->tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static store_t *open_ok(const fixture *f)
{
    char err[512] = "";
    store_t *s = NULL;
    int rc = store_open(&s, f->state, 0, err, sizeof err);
    if (rc != 0)
        print_error("store_open: %d %s\n", rc, err);
    assert_int_equal(rc, 0);
    assert_non_null(s);
    return s;
}

static void commit_ok(store_t *s)
{
    char err[512] = "";
    int rc = store_commit(s, err, sizeof err);
    if (rc != 0)
        print_error("store_commit: %d %s\n", rc, err);
    assert_int_equal(rc, 0);
    assert_false(store_has_staged(s));
}

/* ---- looking at the file from a second connection ---- */

static int64_t sql_int(const char *db, const char *sql)
{
    sqlite3 *c = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(db, &c, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(c, sql, -1, &st, NULL), SQLITE_OK);
    int64_t v = -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(c);
    return v;
}

static void sql_exec(const char *db, const char *sql)
{
    sqlite3 *c = NULL;
    assert_int_equal(sqlite3_open_v2(db, &c, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
                     SQLITE_OK);
    char *e = NULL;
    int rc = sqlite3_exec(c, sql, NULL, NULL, &e);
    if (rc != SQLITE_OK)
        print_error("%s: %s\n", sql, e ? e : "?");
    sqlite3_free(e);
    assert_int_equal(rc, SQLITE_OK);
    sqlite3_close(c);
}

/* ---- builders ---- */

/* An inbox row as an earlier build left it (nothing writes the inbox now; start-up replays it).
 * The database must exist (a store opened once). Returns the row's id. */
static int64_t plant_event_full(const char *db, long section, const char *plex, const char *arr,
                                const char *const *files, size_t n_files, unsigned source_bit,
                                bool manual, uint64_t at)
{
    buf_t blob = {0};
    for (size_t i = 0; i < n_files; i++)
        buf_append(&blob, files[i], strlen(files[i]) + 1); /* each path and its NUL */
    sqlite3 *c = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(db, &c, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(c,
                                        "INSERT INTO inbox (section, plex_path, arr_path, files,"
                                        " source_bit, manual, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(st, 1, section);
    sqlite3_bind_text(st, 2, plex, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, arr, -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(st, 4, blob.data ? blob.data : "", (int)blob.len, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, source_bit);
    sqlite3_bind_int(st, 6, manual);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)at);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    int64_t id = sqlite3_last_insert_rowid(c);
    sqlite3_finalize(st);
    sqlite3_close(c);
    buf_free(&blob);
    return id;
}

static int64_t plant_event(const fixture *f, const char *plex, uint64_t at)
{
    static const char *const files[] = {"/tv/Show/Season 1/a.mkv", "/tv/Show/Season 1/b.mkv"};
    return plant_event_full(f->db, 2, plex, plex, files, 2, 1u << 0, false, at);
}

static q_entry make_entry(int64_t id, const char *plex, entry_state st)
{
    q_entry e;
    memset(&e, 0, sizeof e);
    e.id = id;
    e.path = (char *)(uintptr_t)plex; /* not written through */
    e.first_seen = 1000;
    e.last_event = 2000;
    e.due = 3000;
    e.state = st;
    return e;
}

/* A round's row with one plex delivery (none when skipped); returns its id. */
static int64_t stage_hist(store_t *s, const char *path, uint64_t started, hist_status st, uint64_t dur)
{
    char deliveries[512];
    if (st == HIST_SKIPPED)
        snprintf(deliveries, sizeof deliveries, "[]");
    else
        snprintf(deliveries, sizeof deliveries,
                 "[{\"target\":\"plex\",\"kind\":\"plex\",\"library\":\"1\",\"path\":\"%s\",\"result\":\"%s\"}]",
                 path, st == HIST_OK ? "ok" : "failed");
    store_history h = {
        .path = path,
        .sources = 1,
        .events = 1,
        .kinds = QKIND_IMPORT,
        .started = started,
        .duration_ms = dur,
        .status = st,
        .rclone = "ok",
        .deliveries = deliveries,
        .error = st == HIST_OK ? NULL : "boom",
        .attempts = 1,
    };
    int64_t id = store_stage_history(s, &h);
    assert_true(id > 0);
    return id;
}

/* ---- load recorder ---- */

typedef struct loaded {
    char log[16384]; /* "E<id>:<state>;" "V<id>;" "S<section>:<path>@<at>;" in call order */
    q_entry last_entry;
    char *entry_paths[4];
    char *entry_files[4];
    size_t n_entry_files;
    char *entry_park, *entry_err, *entry_hold, *entry_title;
    char *event_files[4];
    size_t n_event_files;
    unsigned event_source;
    bool event_manual;
    uint64_t event_at;
    size_t n_entries, n_events, n_success;
    char deliv[1024]; /* the last entry's deliveries: "target/library/state/error;" ("-" = none) */
    size_t n_deliv;
} loaded;

static const char *state_text(entry_state st)
{
    static const char *const n[] = {"unresolved", "waiting", "aging",   "held",  "ready",
                                    "checking",   "syncing", "retry",   "parked"};
    return (unsigned)st < ARRAY_SIZE(n) ? n[st] : "?";
}

static void ld_append(loaded *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ld_append(loaded *l, const char *fmt, ...)
{
    size_t n = strlen(l->log);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->log + n, sizeof l->log - n, fmt, ap);
    va_end(ap);
}

static void ld_entry(void *ud, const q_entry *e)
{
    loaded *l = ud;
    ld_append(l, "E%lld:%s;", (long long)e->id, state_text(e->state));
    l->n_entries++;
    l->last_entry = *e;
    free(l->entry_paths[0]);
    free(l->entry_paths[1]);
    l->entry_paths[0] = xstrdup(e->path);
    l->entry_paths[1] = NULL;
    l->deliv[0] = '\0';
    for (size_t i = 0; i < e->n_deliv; i++) {
        size_t n = strlen(l->deliv);
        snprintf(l->deliv + n, sizeof l->deliv - n, "%s/%s/%s/%s;", e->deliv[i].target, e->deliv[i].library,
                 delivery_state_name(e->deliv[i].state), e->deliv[i].error ? e->deliv[i].error : "-");
    }
    l->n_deliv = e->n_deliv;
    for (size_t i = 0; i < l->n_entry_files; i++)
        free(l->entry_files[i]);
    l->n_entry_files = e->n_files < 4 ? e->n_files : 4;
    for (size_t i = 0; i < l->n_entry_files; i++)
        l->entry_files[i] = xstrdup(e->files[i]);
    free(l->entry_park);
    free(l->entry_err);
    free(l->entry_hold);
    l->entry_park = xstrdup(e->park_reason);
    l->entry_err = xstrdup(e->last_error);
    l->entry_hold = xstrdup(e->hold_reason);
    free(l->entry_title);
    l->entry_title = xstrdup(e->title);
    l->last_entry.title = NULL; /* e's strings end with the call */
}

static void ld_event(void *ud, const store_event *ev)
{
    loaded *l = ud;
    ld_append(l, "V%lld;", (long long)ev->id);
    l->n_events++;
    for (size_t i = 0; i < l->n_event_files; i++)
        free(l->event_files[i]);
    l->n_event_files = ev->n_files < 4 ? ev->n_files : 4;
    for (size_t i = 0; i < l->n_event_files; i++)
        l->event_files[i] = xstrdup(ev->files[i]);
    l->event_source = ev->source_bit;
    l->event_manual = ev->manual;
    l->event_at = ev->at;
}

static void ld_success(void *ud, const char *path, uint64_t at)
{
    loaded *l = ud;
    ld_append(l, "S:%s@%llu;", path, (unsigned long long)at);
    l->n_success++;
}

static void loaded_free(loaded *l)
{
    for (size_t i = 0; i < 2; i++)
        free(l->entry_paths[i]);
    for (size_t i = 0; i < l->n_entry_files; i++)
        free(l->entry_files[i]);
    for (size_t i = 0; i < l->n_event_files; i++)
        free(l->event_files[i]);
    free(l->entry_park);
    free(l->entry_err);
    free(l->entry_hold);
    free(l->entry_title);
}

static void load_all(store_t *s, loaded *l)
{
    memset(l, 0, sizeof *l);
    store_loader ld = {.ud = l, .entry = ld_entry, .event = ld_event, .last_success = ld_success};
    assert_int_equal(store_load(s, &ld), 0);
}

/* ---- history recorder ---- */

typedef struct hlist {
    int64_t ids[600];
    char paths[600][64];
    hist_status st[600];
    size_t n;
} hlist;

static void hl_add(void *ud, const store_history *h)
{
    hlist *l = ud;
    assert_true(l->n < ARRAY_SIZE(l->ids));
    l->ids[l->n] = h->id;
    snprintf(l->paths[l->n], sizeof l->paths[0], "%s", h->path);
    l->st[l->n] = h->status;
    l->n++;
}

static void list(store_t *s, const char *search, int status, int64_t before, int limit, hlist *out)
{
    memset(out, 0, sizeof *out);
    store_history_query q = {
        .search = search, .status = status, .before_id = before, .limit = limit};
    assert_int_equal(store_history_list(s, &q, hl_add, out), 0);
}

/* ---- tests ---- */

static void test_open_creates_state_dir_and_schema(void **state)
{
    fixture *f = *state;
    snprintf(f->state, sizeof f->state, "%s/a/b/state", f->tmp);
    snprintf(f->db, sizeof f->db, "%s/%s", f->state, DB_NAME);
    mode_t old = umask(022);
    store_t *s = open_ok(f);
    umask(old);
    assert_string_equal(store_path(s), f->db);

    struct stat st;
    assert_int_equal(stat(f->state, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0750);
    assert_int_equal(stat(f->db, &st), 0);

    assert_int_equal(sql_int(f->db, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table'"
                                    " AND name IN ('entries', 'inbox', 'history')"),
                     3);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM sqlite_schema WHERE type = 'index'"
                                    " AND tbl_name = 'history' AND sql LIKE '%started%'"),
                     2);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM pragma_journal_mode WHERE"
                                    " journal_mode = 'wal'"),
                     1);
    assert_false(store_has_staged(s));
    assert_int_equal(store_max_entry_id(s), 0);
    store_close(s);
}

static void test_bad_arguments_are_refused(void **state)
{
    fixture *f = *state;
    store_t *s = (store_t *)1;
    char err[256] = "";
    assert_int_equal(store_open(&s, f->state, 3, err, sizeof err), -EINVAL);
    assert_null(s);
    assert_int_equal(store_open(&s, "", 0, err, sizeof err), -EINVAL);
    s = open_ok(f);
    hlist l;
    store_history_query q = {.status = -1, .limit = 0};
    assert_int_equal(store_history_list(s, &q, hl_add, &l), -EINVAL);
    q.limit = 501;
    assert_int_equal(store_history_list(s, &q, hl_add, &l), -EINVAL);
    q.limit = 10;
    q.status = 7;
    assert_int_equal(store_history_list(s, &q, hl_add, &l), -EINVAL);
    assert_int_equal(store_prune(s, 10, 0), -EINVAL);
    store_close(s);
}

static void test_owner_synced_store_hands_out_its_wal(void **state)
{
    fixture *f = *state;
    char err[512] = "";
    store_t *s = NULL;
    assert_int_equal(store_open(&s, f->state, STORE_SYNC_OWNER, err, sizeof err), 0);
    q_entry e = make_entry(1, "/tv/A", ENTRY_WAITING);
    store_stage_entry_put(s, &e);
    commit_ok(s);
    int fd = store_wal_fd(s);
    assert_true(fd >= 0);
    assert_int_equal(store_wal_fd(s), fd); /* kept while it is the same file */
    char wal[700];
    snprintf(wal, sizeof wal, "%s-wal", f->db);
    struct stat by_fd, by_path;
    assert_int_equal(fstat(fd, &by_fd), 0);
    assert_int_equal(stat(wal, &by_path), 0);
    assert_true(by_fd.st_ino == by_path.st_ino && by_fd.st_dev == by_path.st_dev);
    assert_true(by_fd.st_size > 0); /* the commit's frames are in it */
    assert_int_equal(fdatasync(fd), 0);
    store_close(s);
}

static void test_reopen_keeps_entries_inbox_and_history(void **state)
{
    fixture *f = *state;
    store_t *s = open_ok(f);
    q_entry e = make_entry(7, "/tv/Show/Season 1", ENTRY_WAITING);
    store_stage_entry_put(s, &e);
    stage_hist(s, "/tv/Old", 5000, HIST_OK, 10);
    commit_ok(s);
    store_close(s);
    plant_event(f, "/tv/Show/Season 2", 111);

    s = open_ok(f);
    loaded l;
    load_all(s, &l);
    assert_int_equal(l.n_entries, 1);
    assert_int_equal(l.n_events, 1);
    assert_int_equal(l.n_success, 1);
    assert_int_equal(l.last_entry.id, 7);
    assert_int_equal(l.event_at, 111);
    assert_int_equal(store_max_entry_id(s), 7);
    store_close(s);
    loaded_free(&l);
}

static void test_replayed_inbox_rows_are_deleted_with_the_entries_they_became(void **state)
{
    fixture *f = *state;
    store_close(open_ok(f));
    int64_t a = plant_event(f, "/m/A", 1);
    int64_t b = plant_event(f, "/m/B", 2);
    assert_int_equal(b, a + 1);

    store_t *s = open_ok(f);
    loaded l;
    load_all(s, &l);
    assert_int_equal(l.n_events, 2);
    /* the owner applies each to its queue: the entry and the row's deletion commit together */
    q_entry e = make_entry(1, "/m/A", ENTRY_WAITING);
    store_stage_entry_put(s, &e);
    store_stage_event_done(s, a);
    commit_ok(s);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM entries"), 1);
    assert_int_equal(sql_int(f->db, "SELECT group_concat(id) FROM inbox"), b);
    store_stage_event_done(s, b);
    commit_ok(s);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM inbox"), 0);
    store_close(s);
    loaded_free(&l);
}

static void test_group_commit_writes_entries_deletions_and_history_together(void **state)
{
    fixture *f = *state;
    store_t *s = open_ok(f);
    q_entry e1 = make_entry(1, "/tv/A", ENTRY_WAITING);
    q_entry e2 = make_entry(2, "/tv/B", ENTRY_READY);
    q_entry e3 = make_entry(3, "/tv/C", ENTRY_WAITING);
    store_stage_entry_put(s, &e1);
    store_stage_entry_put(s, &e2);
    store_stage_entry_put(s, &e3);
    stage_hist(s, "/tv/Z", 100, HIST_OK, 5);
    assert_true(store_has_staged(s));

    /* staging touches nothing on disk */
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM entries"), 0);

    commit_ok(s);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM entries"), 3);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM history"), 1);

    /* events merged into an entry, another scanned and gone: one transaction */
    e1.events = 3;
    store_stage_entry_put(s, &e1);
    store_stage_entry_del(s, 2);
    stage_hist(s, "/tv/B", 200, HIST_OK, 5);
    commit_ok(s);
    assert_int_equal(sql_int(f->db, "SELECT events FROM entries WHERE id = 1"), 3);
    assert_int_equal(sql_int(f->db, "SELECT group_concat(id) = '1,3' FROM (SELECT id FROM entries"
                                    " ORDER BY id)"),
                     1);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM history"), 2);

    /* nothing staged: nothing to do */
    char err[64];
    assert_int_equal(store_commit(s, err, sizeof err), 0);
    store_close(s);
}

static void test_failed_commit_writes_nothing_and_keeps_everything_staged(void **state)
{
    fixture *f = *state;
    store_t *s = open_ok(f);
    q_entry old = make_entry(9, "/tv/Gone", ENTRY_WAITING);
    store_stage_entry_put(s, &old);
    commit_ok(s);
    store_close(s);
    int64_t leftover = plant_event(f, "/tv/Gone", 5);
    s = open_ok(f);

    q_entry e = make_entry(3, "/tv/New", ENTRY_WAITING);
    store_stage_entry_put(s, &e);
    store_stage_entry_del(s, 9);
    store_stage_event_done(s, leftover);
    stage_hist(s, "/tv/Gone", 40, HIST_OK, 1);

    store_test_fail_next_commit(s);
    char err[512] = "";
    int rc = store_commit(s, err, sizeof err);
    assert_true(rc < 0);
    assert_non_null(strstr(err, f->db));
    assert_non_null(strstr(err, "injected failure"));
    /* rolled back: the entry rows written before the failure are gone, nothing else applied */
    assert_int_equal(sql_int(f->db, "SELECT group_concat(id) FROM entries"), 9);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM inbox"), 1);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM history"), 0);
    assert_true(store_has_staged(s));

    /* the next commit writes all of it */
    commit_ok(s);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM inbox"), 0);
    assert_int_equal(sql_int(f->db, "SELECT group_concat(id) FROM entries"), 3);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM history"), 1);
    store_close(s);
}

static void test_put_then_del_cancels_the_put(void **state)
{
    fixture *f = *state;
    store_t *s = open_ok(f);
    q_entry a = make_entry(1, "/a", ENTRY_WAITING);
    q_entry b = make_entry(2, "/b", ENTRY_WAITING);
    store_stage_entry_put(s, &a);
    store_stage_entry_put(s, &b);
    commit_ok(s);

    /* new entry created and removed within one turn: never written */
    q_entry c = make_entry(3, "/c", ENTRY_WAITING);
    store_stage_entry_put(s, &c);
    store_stage_entry_del(s, 3);
    /* existing entry modified then removed: row deleted */
    a.attempts = 4;
    store_stage_entry_put(s, &a);
    store_stage_entry_del(s, 1);
    /* removed then put again (a del followed by a put): the put wins */
    store_stage_entry_del(s, 2);
    b.attempts = 2;
    store_stage_entry_put(s, &b);
    commit_ok(s);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM entries"), 1);
    assert_int_equal(sql_int(f->db, "SELECT attempts FROM entries WHERE id = 2"), 2);
    store_close(s);
}

static void test_same_id_put_twice_keeps_the_last_snapshot(void **state)
{
    fixture *f = *state;
    store_t *s = open_ok(f);
    q_entry e = make_entry(5, "/tv/X", ENTRY_WAITING);
    store_stage_entry_put(s, &e);
    e.state = ENTRY_RETRY;
    e.attempts = 3;
    e.last_error = (char *)(uintptr_t)"Plex answered 503";
    store_stage_entry_put(s, &e);
    commit_ok(s);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM entries"), 1);
    assert_int_equal(sql_int(f->db, "SELECT attempts FROM entries WHERE id = 5"), 3);
    assert_int_equal(sql_int(f->db, "SELECT state = 'retry' AND last_error = 'Plex answered 503'"
                                    " FROM entries WHERE id = 5"),
                     1);
    store_close(s);
}

static void test_load_gives_entries_then_successes_then_events_oldest_first(void **state)
{
    fixture *f = *state;
    store_t *s = open_ok(f);
    /* any bytes but NUL survive, in paths and in files */
    static const char odd[] = "/tv/\xff\xfe Show \xc3\xa9/Season 1";
    static const char *const files[] = {"/tv/\xff/a.mkv", "/tv/b\tc.mkv", ""};
    q_entry e = make_entry(4, odd, ENTRY_PARKED);
    e.first_seen = 100;
    e.last_event = 200;
    e.due = UINT64_MAX; /* the full range round-trips */
    e.attempts = 6;
    e.dirty = true;
    e.dirty_first = 150;
    e.manual = true;
    e.files = (char **)(uintptr_t)files;
    e.n_files = 3;
    e.sources = 5;
    e.events = 9;
    e.park_reason = (char *)(uintptr_t)"PLEX_TOKEN: Plex answered 401";
    e.last_error = (char *)(uintptr_t)"401";
    e.hold_reason = NULL;
    store_stage_entry_put(s, &e);
    q_entry e2 = make_entry(2, "/tv/Two", ENTRY_SYNCING);
    store_stage_entry_put(s, &e2);

    stage_hist(s, "/tv/Done", 1000, HIST_OK, 20);
    commit_ok(s);
    store_close(s);
    int64_t v1 = plant_event(f, "/tv/First", 1);
    int64_t v2 = plant_event(f, "/tv/Second", 2);
    static const char *const evfiles[] = {"/m/\x01odd\x7f.mkv"};
    int64_t v3 = plant_event_full(f->db, 3, "/m", "/arr/m", evfiles, 1, 1u << 3, true, 33);

    s = open_ok(f);
    loaded l;
    load_all(s, &l);
    char want[256];
    snprintf(want, sizeof want, "E2:syncing;E4:parked;S:/tv/Done@1020;V%lld;V%lld;V%lld;",
             (long long)v1, (long long)v2, (long long)v3);
    assert_string_equal(l.log, want);

    const q_entry *g = &l.last_entry;
    assert_int_equal(g->id, 4);
    assert_string_equal(l.entry_paths[0], odd);
    assert_int_equal(l.n_deliv, 0);
    assert_int_equal(g->first_seen, 100);
    assert_int_equal(g->last_event, 200);
    assert_true(g->due == UINT64_MAX);
    assert_int_equal(g->state, ENTRY_PARKED);
    assert_int_equal(g->attempts, 6);
    assert_true(g->dirty);
    assert_int_equal(g->dirty_first, 150);
    assert_true(g->manual);
    assert_int_equal(l.n_entry_files, 3);
    assert_string_equal(l.entry_files[0], files[0]);
    assert_string_equal(l.entry_files[1], files[1]);
    assert_string_equal(l.entry_files[2], "");
    assert_int_equal(g->sources, 5);
    assert_int_equal(g->events, 9);
    assert_string_equal(l.entry_park, "PLEX_TOKEN: Plex answered 401");
    assert_string_equal(l.entry_err, "401");
    assert_null(l.entry_hold);

    assert_int_equal(l.n_event_files, 1);
    assert_string_equal(l.event_files[0], evfiles[0]);
    assert_int_equal(l.event_source, 1u << 3);
    assert_true(l.event_manual);
    assert_int_equal(l.event_at, 33);

    /* a loader may leave out what it does not want */
    store_loader only = {.ud = &l};
    assert_int_equal(store_load(s, &only), 0);
    store_close(s);
    loaded_free(&l);
}

static void test_last_success_is_the_latest_ok_row_per_key(void **state)
{
    fixture *f = *state;
    store_t *s = open_ok(f);
    stage_hist(s, "/tv/A", 1000, HIST_OK, 10);
    stage_hist(s, "/tv/A", 5000, HIST_OK, 10);     /* latest ok of /tv/A */
    stage_hist(s, "/tv/A", 9000, HIST_FAILED, 10); /* later but failed */
    stage_hist(s, "/tv/A", 9500, HIST_RETRYING, 10); /* later but still going */
    stage_hist(s, "/movies/A", 2000, HIST_OK, 0);  /* another folder: another key */
    stage_hist(s, "/tv/A/S1", 8000, HIST_OK, 0);   /* a subfolder is its own key */
    stage_hist(s, "/tv/B", 3000, HIST_PARKED, 0);  /* never ok: no line */
    commit_ok(s);
    loaded l;
    load_all(s, &l);
    assert_int_equal(l.n_success, 3);
    assert_non_null(strstr(l.log, "S:/tv/A@5010;"));
    assert_non_null(strstr(l.log, "S:/movies/A@2000;"));
    assert_non_null(strstr(l.log, "S:/tv/A/S1@8000;"));
    assert_null(strstr(l.log, "/tv/B"));
    store_close(s);
    loaded_free(&l);
}

static void write_random(const char *path, size_t n)
{
    unsigned char buf[4096];
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    while (n > 0) {
        size_t k = n < sizeof buf ? n : sizeof buf;
        assert_int_equal(random_bytes(buf, k), 0);
        buf[0] = 'X'; /* never the "SQLite format 3" magic by chance */
        assert_int_equal(write(fd, buf, k), (ssize_t)k);
        n -= k;
    }
    close(fd);
}

static bool read_file(const char *path, unsigned char *buf, size_t n)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return false;
    size_t got = fread(buf, 1, n, fp);
    fclose(fp);
    return got == n;
}

/* The name a corrupt database was moved to ("<db>.corrupt-<seconds>"), or "" */
static void find_moved(const fixture *f, char *out, size_t outlen)
{
    out[0] = '\0';
    DIR *d = opendir(f->state);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *p = strstr(de->d_name, ".corrupt-");
        if (p && strncmp(de->d_name, DB_NAME, strlen(DB_NAME)) == 0 && !strstr(p, "-wal") &&
            !strstr(p, "-shm"))
            snprintf(out, outlen, "%s/%s", f->state, de->d_name);
    }
    closedir(d);
}

static void assert_fresh_and_usable(const fixture *f, store_t *s)
{
    loaded l;
    load_all(s, &l);
    assert_int_equal(l.n_entries + l.n_events + l.n_success, 0);
    q_entry e = make_entry(1, "/tv/After", ENTRY_WAITING);
    store_stage_entry_put(s, &e);
    commit_ok(s);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM entries"), 1);
    loaded_free(&l);
}

static void test_random_bytes_db_is_moved_aside_with_wal_and_shm(void **state)
{
    fixture *f = *state;
    assert_int_equal(mkdir(f->state, 0750), 0);
    char wal[700], shm[700];
    snprintf(wal, sizeof wal, "%s-wal", f->db);
    snprintf(shm, sizeof shm, "%s-shm", f->db);
    write_random(f->db, 8192);
    write_random(wal, 4096);
    write_random(shm, 32768);
    unsigned char orig_db[8192], orig_wal[4096], got_db[8192], got_wal[4096];
    assert_true(read_file(f->db, orig_db, sizeof orig_db));
    assert_true(read_file(wal, orig_wal, sizeof orig_wal));

    store_t *s = open_ok(f);
    char moved[1024], p[1100];
    find_moved(f, moved, sizeof moved);
    assert_true(moved[0] != '\0');
    assert_true(read_file(moved, got_db, sizeof got_db));
    assert_memory_equal(got_db, orig_db, sizeof orig_db);
    snprintf(p, sizeof p, "%s-wal", moved);
    assert_true(read_file(p, got_wal, sizeof got_wal));
    assert_memory_equal(got_wal, orig_wal, sizeof orig_wal);
    snprintf(p, sizeof p, "%s-shm", moved);
    assert_int_equal(access(p, F_OK), 0);

    /* loud, and it names where the file went */
    assert_non_null(strstr(logged, "ERROR"));
    assert_non_null(strstr(logged, "CORRUPT"));
    assert_non_null(strstr(logged, moved));

    assert_fresh_and_usable(f, s);
    store_close(s);
}

static void test_damaged_pages_found_by_quick_check_are_moved_aside(void **state)
{
    fixture *f = *state;
    store_t *s = open_ok(f);
    char big[2048];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (int i = 0; i < 50; i++) {
        store_history h = {.path = big, .started = (uint64_t)i, .status = HIST_OK, .rclone = "ok",
                           .deliveries = "[]"};
        store_stage_history(s, &h);
    }
    commit_ok(s);
    store_close(s);

    /* keep page 1 (header and schema) intact, smash every page after it */
    struct stat st;
    assert_int_equal(stat(f->db, &st), 0);
    assert_true(st.st_size > 8 * 4096);
    int fd = open(f->db, O_WRONLY);
    assert_true(fd >= 0);
    unsigned char junk[4096];
    memset(junk, 0xa5, sizeof junk);
    for (off_t off = 4096; off < st.st_size; off += 4096)
        assert_int_equal(pwrite(fd, junk, sizeof junk, off), (ssize_t)sizeof junk);
    close(fd);
    char wal[700];
    snprintf(wal, sizeof wal, "%s-wal", f->db);
    write_random(wal, 1000);

    s = open_ok(f);
    char moved[1024], p[1100];
    find_moved(f, moved, sizeof moved);
    assert_true(moved[0] != '\0');
    snprintf(p, sizeof p, "%s-wal", moved);
    assert_int_equal(access(p, F_OK), 0); /* its WAL went with it */
    assert_non_null(strstr(logged, moved));
    assert_true(strstr(logged, "integrity check") || strstr(logged, "malformed"));
    assert_fresh_and_usable(f, s);
    store_close(s);
}

/* SQLite ignores a WAL whose header fails its checksum: the database is fine and holds
 * acknowledged work, so it must be kept, not moved aside. */
static void test_valid_db_with_garbage_wal_keeps_its_rows(void **state)
{
    fixture *f = *state;
    store_t *s = open_ok(f);
    q_entry e = make_entry(11, "/tv/Keep", ENTRY_WAITING);
    store_stage_entry_put(s, &e);
    commit_ok(s);
    store_close(s);
    char wal[700], shm[700];
    snprintf(wal, sizeof wal, "%s-wal", f->db);
    snprintf(shm, sizeof shm, "%s-shm", f->db);
    write_random(wal, 16384);
    write_random(shm, 32768);

    s = open_ok(f);
    char moved[1024];
    find_moved(f, moved, sizeof moved);
    assert_string_equal(moved, "");
    loaded l;
    load_all(s, &l);
    assert_int_equal(l.n_entries, 1);
    assert_int_equal(l.last_entry.id, 11);
    store_close(s);
    loaded_free(&l);
}

static void test_newer_schema_is_refused_and_left_untouched(void **state)
{
    fixture *f = *state;
    assert_int_equal(mkdir(f->state, 0750), 0);
    sql_exec(f->db, "CREATE TABLE future (x); INSERT INTO future VALUES (1);"
                    " PRAGMA user_version = 4;");
    store_t *s = (store_t *)1;
    char err[512] = "";
    assert_int_equal(store_open(&s, f->state, 1, err, sizeof err), -EPROTO);
    assert_null(s);
    char want[1024];
    snprintf(want, sizeof want,
             "%s was written by a newer version of plex-servarr-sync (schema 4 > 3); refusing to "
             "start so no acknowledged work is lost",
             f->db);
    assert_string_equal(err, want);
    assert_int_equal(sql_int(f->db, "PRAGMA user_version"), 4);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM future"), 1);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM sqlite_schema WHERE name = 'entries'"),
                     0);
    char moved[1024];
    find_moved(f, moved, sizeof moved);
    assert_string_equal(moved, "");
}

static void test_state_dir_that_cannot_be_created_is_refused(void **state)
{
    fixture *f = *state;
    char file[300];
    snprintf(file, sizeof file, "%s/file", f->tmp);
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fclose(fp);
    snprintf(f->state, sizeof f->state, "%s/file/state", f->tmp);
    store_t *s = (store_t *)1;
    char err[512] = "";
    assert_int_equal(store_open(&s, f->state, 0, err, sizeof err), -ENOTDIR);
    assert_null(s);
    assert_non_null(strstr(err, f->state));
    assert_non_null(strstr(err, strerror(ENOTDIR)));

    /* a file where the directory should be */
    assert_int_equal(store_open(&s, file, 0, err, sizeof err), -ENOTDIR);
    assert_non_null(strstr(err, file));
}

static void test_prune_deletes_only_old_rows_and_at_most_max(void **state)
{
    fixture *f = *state;
    store_t *s = open_ok(f);
    for (int i = 0; i < 10; i++)
        stage_hist(s, "/tv/Old", 1000 + (uint64_t)i, HIST_OK, 1);
    for (int i = 0; i < 5; i++)
        stage_hist(s, "/tv/New", 5000 + (uint64_t)i, HIST_OK, 1);
    commit_ok(s);
    assert_int_equal(store_prune(s, 5000, 4), 4);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM history"), 11);
    /* the oldest go first */
    assert_int_equal(sql_int(f->db, "SELECT min(started) FROM history"), 1004);
    assert_int_equal(store_prune(s, 5000, 1000), 6);
    assert_int_equal(store_prune(s, 5000, 1000), 0);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM history WHERE started >= 5000"), 5);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM history"), 5);
    store_close(s);
}

static void test_history_pages_newest_first_with_search_and_status(void **state)
{
    fixture *f = *state;
    store_t *s = open_ok(f);
    /* ids 1..12; every third failed */
    for (int i = 1; i <= 12; i++) {
        char p[64];
        snprintf(p, sizeof p, "/tv/Show %d", i);
        stage_hist(s, p, 100 * (uint64_t)i, i % 3 == 0 ? HIST_FAILED : HIST_OK, 1);
    }
    stage_hist(s, "/tv/100% Real", 2000, HIST_OK, 1);   /* id 13 */
    stage_hist(s, "/tv/a_b", 2100, HIST_SKIPPED, 1);     /* id 14 */
    stage_hist(s, "/tv/axb", 2200, HIST_PARKED, 1);      /* id 15 */
    commit_ok(s);

    hlist l;
    list(s, NULL, -1, 0, 5, &l);
    assert_int_equal(l.n, 5);
    assert_int_equal(l.ids[0], 15);
    assert_int_equal(l.ids[4], 11);
    list(s, NULL, -1, l.ids[4], 5, &l); /* next page */
    assert_int_equal(l.n, 5);
    assert_int_equal(l.ids[0], 10);
    assert_int_equal(l.ids[4], 6);
    list(s, NULL, -1, 3, 500, &l);
    assert_int_equal(l.n, 2);

    list(s, NULL, HIST_FAILED, 0, 500, &l);
    assert_int_equal(l.n, 4);
    assert_int_equal(l.ids[0], 12);
    assert_int_equal(l.st[0], HIST_FAILED);
    list(s, NULL, HIST_FAILED, 12, 2, &l);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.ids[0], 9);
    assert_int_equal(l.ids[1], 6);

    list(s, "Show 1", -1, 0, 500, &l); /* Show 1, 10, 11, 12 */
    assert_int_equal(l.n, 4);
    list(s, "show 1", HIST_OK, 0, 500, &l); /* case-insensitive; 12 failed */
    assert_int_equal(l.n, 3);
    /* % and _ are literal in a search */
    list(s, "100%", -1, 0, 500, &l);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.paths[0], "/tv/100% Real");
    list(s, "a_b", -1, 0, 500, &l);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.paths[0], "/tv/a_b");
    assert_int_equal(l.st[0], HIST_SKIPPED);
    list(s, "%", -1, 0, 500, &l);
    assert_int_equal(l.n, 1);
    list(s, "\\", -1, 0, 500, &l);
    assert_int_equal(l.n, 0);
    list(s, "", -1, 0, 500, &l); /* empty search = all */
    assert_int_equal(l.n, 15);
    store_close(s);
}

static void test_history_stats_count_each_status(void **state)
{
    fixture *f = *state;
    store_t *s = open_ok(f);
    store_stats st;
    assert_int_equal(store_history_stats(s, &st), 0);
    assert_int_equal(st.total, 0);
    assert_int_equal(st.last_sync, 0);
    assert_int_equal(st.last_sync_id, 0);
    assert_int_equal(st.avg_duration_ms, 0);

    stage_hist(s, "/a", 100, HIST_OK, 100);
    stage_hist(s, "/a", 200, HIST_OK, 301);
    stage_hist(s, "/a", 300, HIST_FAILED, 9999);
    stage_hist(s, "/a", 400, HIST_PARKED, 0);
    stage_hist(s, "/a", 500, HIST_SKIPPED, 0);
    stage_hist(s, "/a", 450, HIST_SKIPPED, 0);
    stage_hist(s, "/a", 600, HIST_RETRYING, 7);
    commit_ok(s);
    assert_int_equal(store_history_stats(s, &st), 0);
    assert_int_equal(st.total, 7);
    assert_int_equal(st.ok, 2);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.parked, 1);
    assert_int_equal(st.skipped, 2);
    assert_int_equal(st.retrying, 1);
    assert_int_equal(st.avg_duration_ms, 201); /* (100 + 301) / 2, rounded */
    /* the newest ok round, and when it ended */
    assert_int_equal(st.last_sync_id, 2);
    assert_int_equal(st.last_sync, 501);
    assert_string_equal(hist_status_name(HIST_PARKED), "parked");
    assert_string_equal(hist_status_name(HIST_RETRYING), "retrying");
    store_close(s);
}

static void test_two_thousand_snapshots_commit_in_one_call(void **state)
{
    fixture *f = *state;
    store_t *s = open_ok(f);
    for (int i = 0; i < 2000; i++) {
        char p[64];
        snprintf(p, sizeof p, "/tv/Show %d", i);
        /* many entry snapshots, each id put several times (events merging into it) */
        q_entry e = make_entry(1 + i % 700, p, ENTRY_WAITING);
        e.events = (unsigned)i;
        store_stage_entry_put(s, &e);
    }
    commit_ok(s);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM entries"), 700);
    /* the last snapshot of each id won */
    assert_int_equal(sql_int(f->db, "SELECT events FROM entries WHERE id = 1"), 1400);
    assert_int_equal(sql_int(f->db, "SELECT events FROM entries WHERE id = 700"), 1399);
    assert_int_equal(store_max_entry_id(s), 700);
    store_close(s);
}

static void test_close_discards_staged_rows(void **state)
{
    fixture *f = *state;
    store_t *s = open_ok(f);
    q_entry e = make_entry(1, "/tv/Lost", ENTRY_WAITING);
    store_stage_entry_put(s, &e);
    stage_hist(s, "/tv/Lost", 1, HIST_OK, 1);
    assert_int_equal(store_max_entry_id(s), 1); /* staged ids count */
    store_close(s);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM entries"), 0);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM history"), 0);
}

/* ---- files replaced under the running store ---- */

typedef struct refill_src {
    q_entry e[3];
    size_t n;
    size_t calls;
} refill_src;

static void refill(void *ud, store_t *s)
{
    refill_src *r = ud;
    r->calls++;
    for (size_t i = 0; i < r->n; i++)
        store_stage_entry_put(s, &r->e[i]);
}

/* A store holding entries 1 and 2 and two history rows, with entry 3 staged (not committed). */
static store_t *store_with_work(const fixture *f, refill_src *r)
{
    store_t *s = open_ok(f);
    memset(r, 0, sizeof *r);
    r->e[0] = make_entry(1, "/tv/One", ENTRY_WAITING);
    r->e[1] = make_entry(2, "/tv/Two", ENTRY_RETRY);
    r->e[2] = make_entry(3, "/tv/Three", ENTRY_WAITING);
    r->n = 3;
    store_stage_entry_put(s, &r->e[0]);
    store_stage_entry_put(s, &r->e[1]);
    stage_hist(s, "/tv/Done", 5000, HIST_OK, 10);
    stage_hist(s, "/tv/Bad", 6000, HIST_FAILED, 10);
    commit_ok(s);
    store_stage_entry_put(s, &r->e[2]);
    return s;
}

/* What the fresh database holds once renewed: every refilled entry, the old history (ids kept),
 * the cooldown of the ok row; and the files moved aside. */
static void assert_renewed(const fixture *f, store_t *s, refill_src *r)
{
    char err[512] = "";
    int rc = store_renew(s, refill, r, err, sizeof err);
    if (rc != 0)
        print_error("store_renew: %d %s\n", rc, err);
    assert_int_equal(rc, 0);
    assert_false(store_replaced(s));
    assert_false(store_has_staged(s));
    assert_non_null(strstr(logged, "STATE FILES REPLACED"));
    assert_non_null(strstr(logged, "3 queued folders"));
    assert_non_null(strstr(logged, "2 history rows"));
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM entries"), 3);
    assert_int_equal(sql_int(f->db, "SELECT group_concat(id) FROM history WHERE status = 'ok'"), 1);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM history"), 2);
    char moved[700];
    snprintf(moved, sizeof moved, "%s.replaced-", f->db);
    DIR *d = opendir(f->state);
    assert_non_null(d);
    bool found = false;
    for (struct dirent *de; (de = readdir(d));)
        found |= strncmp(de->d_name, DB_NAME ".replaced-", strlen(DB_NAME ".replaced-")) == 0;
    closedir(d);
    assert_true(found);
    /* commits work again, into the fresh files, and a reopen sees it all */
    q_entry e = make_entry(4, "/tv/Four", ENTRY_WAITING);
    store_stage_entry_put(s, &e);
    commit_ok(s);
    store_close(s);
    s = open_ok(f);
    loaded l;
    load_all(s, &l);
    assert_int_equal(l.n_entries, 4);
    assert_int_equal(l.n_success, 1);
    assert_non_null(strstr(l.log, "S:/tv/Done@5010;"));
    loaded_free(&l);
    store_close(s);
}

static void test_removed_wal_is_noticed_and_renewed_from_memory(void **state)
{
    fixture *f = *state;
    refill_src r;
    store_t *s = store_with_work(f, &r);
    char wal[700];
    snprintf(wal, sizeof wal, "%s-wal", f->db);
    assert_int_equal(unlink(wal), 0);

    char err[512] = "";
    assert_int_equal(store_commit(s, err, sizeof err), -ESTALE);
    assert_non_null(strstr(err, wal));
    assert_non_null(strstr(err, "removed"));
    assert_true(store_replaced(s));
    /* refused without writing until renewed */
    assert_int_equal(store_commit(s, err, sizeof err), -ESTALE);
    assert_renewed(f, s, &r);
    assert_int_equal(r.calls, 1);
}

static void test_wal_replaced_by_a_copy_is_noticed_and_renewed(void **state)
{
    fixture *f = *state;
    refill_src r;
    store_t *s = store_with_work(f, &r);
    char wal[700], tmp[720];
    snprintf(wal, sizeof wal, "%s-wal", f->db);
    snprintf(tmp, sizeof tmp, "%s.copy", wal);
    unsigned char buf[4096];
    int in = open(wal, O_RDONLY), out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(in >= 0 && out >= 0);
    for (ssize_t n; (n = read(in, buf, sizeof buf)) > 0;)
        assert_int_equal(write(out, buf, (size_t)n), n);
    close(in);
    close(out);
    assert_int_equal(rename(tmp, wal), 0);

    char err[512] = "";
    assert_int_equal(store_commit(s, err, sizeof err), -ESTALE);
    assert_non_null(strstr(err, "replaced by another file"));
    assert_renewed(f, s, &r);
}

static void test_removed_database_is_noticed_and_renewed(void **state)
{
    fixture *f = *state;
    refill_src r;
    store_t *s = store_with_work(f, &r);
    assert_int_equal(unlink(f->db), 0);
    char err[512] = "";
    assert_int_equal(store_commit(s, err, sizeof err), -ESTALE);
    assert_non_null(strstr(err, f->db));
    assert_renewed(f, s, &r);
}

static void test_renewal_that_cannot_write_is_retried_and_the_store_stays_readable(void **state)
{
    fixture *f = *state;
    refill_src r;
    store_t *s = store_with_work(f, &r);
    char wal[700];
    snprintf(wal, sizeof wal, "%s-wal", f->db);
    assert_int_equal(unlink(wal), 0);
    char err[512] = "";
    assert_int_equal(store_commit(s, err, sizeof err), -ESTALE);
    /* A file-size limit of 0 (SIGXFSZ ignored) makes every write fail with EFBIG, as a full or
     * read-only disk would, whoever runs the test: the files are moved aside, the fresh
     * database cannot be made. */
    struct rlimit was;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &was), 0);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    struct rlimit none = {.rlim_cur = 0, .rlim_max = was.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &none), 0);
    int rc1 = store_renew(s, refill, &r, err, sizeof err);
    char err1[512];
    snprintf(err1, sizeof err1, "%s", err);
    bool replaced1 = store_replaced(s);
    store_stats st;
    int stats_rc = store_history_stats(s, &st); /* still readable */
    int rc2 = store_renew(s, refill, &r, err, sizeof err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &was), 0);
    signal(SIGXFSZ, prev);
    assert_true(rc1 < 0);
    assert_true(rc2 < 0);
    assert_non_null(strstr(err1, "removed"));
    assert_non_null(strstr(err1, "no fresh database yet"));
    assert_true(replaced1);
    assert_null(strstr(logged, "STATE FILES REPLACED"));
    assert_int_equal(stats_rc, 0);
    assert_renewed(f, s, &r);
}

static void test_unchanged_files_cost_no_renewal(void **state)
{
    fixture *f = *state;
    refill_src r;
    store_t *s = store_with_work(f, &r);
    commit_ok(s);
    char err[64];
    assert_int_equal(store_renew(s, refill, &r, err, sizeof err), 0);
    assert_int_equal(r.calls, 0);
    assert_false(store_replaced(s));
    store_close(s);
}

/* ---- schema 2: migration, round rows, deliveries ---- */

/* The version-1 schema, exactly as the store created it (the migration starts from this). */
static const char v1_schema[] =
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

/* A value computed by SQLite from a JSON text (?1 in sql), for looking into history deliveries. */
static int64_t json_int(const char *json, const char *sql)
{
    sqlite3 *c = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(":memory:", &c), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(c, sql, -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_text(st, 1, json, -1, SQLITE_TRANSIENT);
    int64_t v = -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(c);
    return v;
}

typedef struct hrow {
    int64_t id;
    char path[128];
    char deliveries[1024];
    char error[128];
    bool has_error;
    hist_status status;
    unsigned attempts, kinds, sources, events;
    uint64_t started, duration_ms;
} hrow;

typedef struct hrows {
    hrow v[32];
    size_t n;
} hrows;

static void hr_add(void *ud, const store_history *h)
{
    hrows *l = ud;
    assert_true(l->n < ARRAY_SIZE(l->v));
    hrow *r = &l->v[l->n++];
    memset(r, 0, sizeof *r);
    r->id = h->id;
    snprintf(r->path, sizeof r->path, "%s", h->path);
    snprintf(r->deliveries, sizeof r->deliveries, "%s", h->deliveries);
    r->has_error = h->error != NULL;
    snprintf(r->error, sizeof r->error, "%s", h->error ? h->error : "");
    r->status = h->status;
    r->attempts = h->attempts;
    r->kinds = h->kinds;
    r->sources = h->sources;
    r->events = h->events;
    r->started = h->started;
    r->duration_ms = h->duration_ms;
}

static void rows_all(store_t *s, hrows *out)
{
    memset(out, 0, sizeof *out);
    store_history_query q = {.status = -1, .limit = 500};
    assert_int_equal(store_history_list(s, &q, hr_add, out), 0);
}

static const hrow *row_id(const hrows *l, int64_t id)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].id == id)
            return &l->v[i];
    fail_msg("no history row %lld", (long long)id);
    return NULL;
}

/* Every entry a load gives, and each handed to a real queue as the daemon's loader does. */
typedef struct erow {
    int64_t id;
    char path[128];
    entry_state state;
    unsigned attempts, events;
    size_t n_deliv, n_files;
    char file0[128];
    bool park_reason;
    char last_error[128];
    uint64_t due;
    int restore_rc;
} erow;

typedef struct erows {
    erow v[16];
    size_t n;
    queue_t *q;
} erows;

static void er_add(void *ud, const q_entry *e)
{
    erows *l = ud;
    assert_true(l->n < ARRAY_SIZE(l->v));
    erow *r = &l->v[l->n++];
    memset(r, 0, sizeof *r);
    r->id = e->id;
    snprintf(r->path, sizeof r->path, "%s", e->path);
    r->state = e->state;
    r->attempts = e->attempts;
    r->events = e->events;
    r->n_deliv = e->n_deliv;
    r->n_files = e->n_files;
    if (e->n_files)
        snprintf(r->file0, sizeof r->file0, "%s", e->files[0]);
    r->park_reason = e->park_reason != NULL;
    snprintf(r->last_error, sizeof r->last_error, "%s", e->last_error ? e->last_error : "");
    r->due = e->due;
    r->restore_rc = queue_restore(l->q, e, 100000);
}

static const erow *entry_id(const erows *l, int64_t id)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].id == id)
            return &l->v[i];
    fail_msg("no entry %lld", (long long)id);
    return NULL;
}

static void test_version_1_database_is_migrated_keeping_entries_inbox_and_history(void **state)
{
    fixture *f = *state;
    assert_int_equal(mkdir(f->state, 0750), 0);
    sql_exec(f->db, v1_schema);
    sql_exec(f->db,
             "PRAGMA journal_mode=WAL; PRAGMA user_version=1;"
             "INSERT INTO entries (id, section, plex_path, arr_path, first_seen, last_event, due, state, attempts,"
             " files, sources, events, park_reason, last_error) VALUES"
             " (1, 2, '/plex/tv/Show', '/data/tv/Show', 1000, 2000, 32000, 'waiting', 0,"
             "  CAST('/data/tv/Show/a.mkv' AS BLOB) || X'00', 1, 2, NULL, NULL),"
             " (2, 2, '/plex/tv/Retry', '/data/tv/Retry', 1000, 1000, 90000, 'retry', 3, NULL, 1, 1, NULL, 'timeout'),"
             " (3, 2, '/plex/tv/Parked', '/data/tv/Parked', 1000, 1000, 31000, 'parked', 1, NULL, 1, 1,"
             "  'PLEX_TOKEN: Plex answered 401', 'Plex answered 401'),"
             " (4, -1, '/data/new/Thing', '/data/new/Thing', 1000, 1000, 31000, 'unresolved', 0, NULL, 2, 1, NULL, NULL),"
             " (5, 2, '/plex/both/Film', '/data/both/Film', 1000, 1000, 31000, 'waiting', 0, NULL, 2, 1, NULL, NULL),"
             " (6, 3, '/plex/both/Film', '/data/both/Film', 1500, 1500, 31500, 'waiting', 0, NULL, 2, 1, NULL, NULL);"
             "INSERT INTO inbox (section, plex_path, arr_path, files, source_bit, manual, at) VALUES"
             " (2, '/plex/tv/Inbox', '/data/tv/Inbox', CAST('/data/tv/Inbox/x.mkv' AS BLOB) || X'00', 2, 0, 77);"
             "INSERT INTO history (id, section, plex_path, arr_path, sources, events, started, duration_ms, status,"
             " rclone, plex, error, attempt) VALUES"
             " (1, 2, '/plex/tv/Show', '/data/tv/Show', 1, 2, 5000, 10, 'ok', 'ok', 'ok', NULL, 1),"
             " (2, 3, '/plex/movies/Film', '/data/movies/Film', 2, 1, 6000, 20, 'failed', 'ok', 'failed',"
             "  'Plex answered 500', 4),"
             " (3, -1, '/data/x', '/data/x', 1, 1, 7000, 0, 'skipped', 'skipped', 'skipped', 'no section holds it', 0),"
             " (4, 2, '/plex/tv/Show', '/data/tv/Show', 1, 1, 8000, 5, 'ok', 'ok', 'ok', NULL, 1),"
             " (5, 2, '/plex/tv/Gone', '/data/tv/Gone', 1, 1, 9000, 5, 'ok', 'ok', 'ok', NULL, 1);"
             "DELETE FROM history WHERE id = 5;" /* pruned: the table's sequence still says 5 */);
    assert_int_equal(sql_int(f->db, "PRAGMA user_version"), 1);

    store_t *s = open_ok(f);
    assert_int_equal(sql_int(f->db, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM pragma_journal_mode WHERE journal_mode = 'wal'"), 1);
    /* through version 3 too: no title, the sender when one *arr app sent it all */
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM entries WHERE title IS NULL AND event = 'other'"), 6);
    assert_int_equal(sql_int(f->db, "SELECT app FROM entries WHERE id = 1"), 0);
    assert_int_equal(sql_int(f->db, "SELECT app FROM entries WHERE id = 4"), 1);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM history WHERE title IS NULL AND app IS NOT NULL"), 4);

    /* entries: keyed by the arr path, no deliveries yet (the daemon maps them at start) */
    queue_params qp = {.delay_ms = 30000, .max_delay_ms = 600000, .retry_max_ms = 300000, .max_concurrent = 4,
                       .max_pending = 100000};
    erows er = {.q = queue_new(&qp, NULL, NULL)};
    loaded l;
    memset(&l, 0, sizeof l);
    store_loader ld_entries = {.ud = &er, .entry = er_add};
    store_loader ld_rest = {.ud = &l, .event = ld_event, .last_success = ld_success};
    assert_int_equal(store_load(s, &ld_entries), 0);
    assert_int_equal(store_load(s, &ld_rest), 0);
    assert_int_equal(er.n, 6);
    for (size_t i = 0; i < er.n; i++)
        assert_int_equal(er.v[i].n_deliv, 0);
    const erow *e1 = entry_id(&er, 1);
    assert_string_equal(e1->path, "/data/tv/Show");
    assert_int_equal(e1->state, ENTRY_WAITING);
    assert_int_equal(e1->events, 2);
    assert_int_equal(e1->n_files, 1);
    assert_string_equal(e1->file0, "/data/tv/Show/a.mkv");
    assert_int_equal(e1->due, 32000);
    const erow *e2 = entry_id(&er, 2);
    assert_string_equal(e2->path, "/data/tv/Retry");
    assert_int_equal(e2->state, ENTRY_RETRY);
    assert_int_equal(e2->attempts, 3);
    assert_string_equal(e2->last_error, "timeout");
    const erow *e3 = entry_id(&er, 3);
    assert_string_equal(e3->path, "/data/tv/Parked");
    assert_int_equal(e3->state, ENTRY_WAITING); /* parked waits no more */
    assert_false(e3->park_reason);
    assert_string_equal(e3->last_error, "Plex answered 401");
    const erow *e4 = entry_id(&er, 4);
    assert_string_equal(e4->path, "/data/new/Thing");
    assert_int_equal(e4->state, ENTRY_WAITING); /* unresolved comes back as waiting */
    /* One folder in two sections was two entries; both come back, for one key. The queue takes
     * the first and refuses the second (-EEXIST): the loader's caller must handle it. */
    const erow *e5 = entry_id(&er, 5), *e6 = entry_id(&er, 6);
    assert_string_equal(e5->path, "/data/both/Film");
    assert_string_equal(e6->path, "/data/both/Film");
    assert_int_equal(e5->restore_rc, 0);
    assert_int_equal(e6->restore_rc, -EEXIST);
    for (int64_t id = 1; id <= 4; id++)
        assert_int_equal(entry_id(&er, id)->restore_rc, 0);
    /* restored with no deliveries: unresolved until the re-map */
    assert_int_equal(queue_count(er.q), 5);
    assert_int_equal(queue_count_state(er.q, ENTRY_UNRESOLVED), 5);
    queue_free(er.q);

    /* the inbox row is replayed by its arr path */
    assert_int_equal(l.n_events, 1);
    assert_int_equal(l.event_at, 77);
    assert_int_equal(l.event_source, 2);
    assert_int_equal(l.n_event_files, 1);
    assert_string_equal(l.event_files[0], "/data/tv/Inbox/x.mkv");

    /* last success per arr path */
    assert_int_equal(l.n_success, 1);
    assert_string_equal(strstr(l.log, "S:"), "S:/data/tv/Show@8005;V1;");

    /* history: rounds with one plex delivery (library = the old section), none when skipped */
    hrows h;
    rows_all(s, &h);
    assert_int_equal(h.n, 4);
    assert_int_equal(h.v[0].id, 4); /* newest first */
    const hrow *r1 = row_id(&h, 1);
    assert_string_equal(r1->path, "/data/tv/Show");
    assert_int_equal(r1->status, HIST_OK);
    assert_int_equal(r1->started, 5000);
    assert_int_equal(r1->duration_ms, 10);
    assert_int_equal(r1->attempts, 1);
    assert_int_equal(r1->events, 2);
    assert_int_equal(json_int(r1->deliveries, "SELECT json_array_length(?1)"), 1);
    assert_int_equal(json_int(r1->deliveries, "SELECT json_extract(?1, '$[0].target') = 'plex'"
                                              " AND json_extract(?1, '$[0].kind') = 'plex'"
                                              " AND json_extract(?1, '$[0].library') = '2'"
                                              " AND json_extract(?1, '$[0].path') = '/plex/tv/Show'"
                                              " AND json_extract(?1, '$[0].result') = 'ok'"
                                              " AND json_type(?1, '$[0].error') = 'null'"),
                     1);
    const hrow *r2 = row_id(&h, 2);
    assert_int_equal(r2->status, HIST_FAILED);
    assert_string_equal(r2->path, "/data/movies/Film");
    assert_int_equal(r2->attempts, 4);
    assert_string_equal(r2->error, "Plex answered 500");
    assert_int_equal(json_int(r2->deliveries, "SELECT json_array_length(?1)"), 1);
    assert_int_equal(json_int(r2->deliveries, "SELECT json_extract(?1, '$[0].library') = '3'"
                                              " AND json_extract(?1, '$[0].path') = '/plex/movies/Film'"
                                              " AND json_extract(?1, '$[0].result') = 'failed'"
                                              " AND json_extract(?1, '$[0].error') = 'Plex answered 500'"),
                     1);
    const hrow *r3 = row_id(&h, 3);
    assert_int_equal(r3->status, HIST_SKIPPED);
    assert_int_equal(json_int(r3->deliveries, "SELECT json_array_length(?1)"), 0);
    assert_string_equal(r3->error, "no section holds it");
    /* the search looks into the deliveries' paths too */
    hlist found;
    list(s, "/plex/movies", -1, 0, 500, &found);
    assert_int_equal(found.n, 1);
    assert_int_equal(found.ids[0], 2);

    /* the next round's row never takes an id a version-1 row had, pruned ones included */
    int64_t next = stage_hist(s, "/data/tv/New", 10000, HIST_OK, 1);
    assert_true(next > 5);
    commit_ok(s);
    store_close(s);

    /* a second open migrates nothing again */
    s = open_ok(f);
    rows_all(s, &h);
    assert_int_equal(h.n, 5);
    store_close(s);
    loaded_free(&l);
}

static void test_history_ids_never_repeat_after_pruning(void **state)
{
    fixture *f = *state;
    store_t *s = open_ok(f);
    int64_t max = 0;
    for (int i = 0; i < 5; i++) {
        int64_t id = stage_hist(s, "/tv/Old", 1000 + (uint64_t)i, HIST_OK, 1);
        assert_true(id > max);
        max = id;
    }
    commit_ok(s);
    assert_int_equal(store_prune(s, 5000, 1000), 5);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM history"), 0);
    int64_t id = stage_hist(s, "/tv/New", 6000, HIST_OK, 1);
    assert_true(id > max);
    max = id;
    commit_ok(s);
    assert_int_equal(store_prune(s, 7000, 1000), 1);
    store_close(s);
    /* nor after a restart with an empty table */
    s = open_ok(f);
    id = stage_hist(s, "/tv/Newer", 8000, HIST_OK, 1);
    assert_true(id > max);
    commit_ok(s);
    assert_int_equal(sql_int(f->db, "SELECT max(id) FROM history"), id);
    store_close(s);
}

static void test_a_round_row_is_updated_in_place_keeping_its_start(void **state)
{
    fixture *f = *state;
    store_t *s = open_ok(f);
    store_history h = {.path = "/tv/Show", .sources = 1, .events = 1, .kinds = QKIND_IMPORT, .started = 1000,
                       .duration_ms = 200, .status = HIST_RETRYING, .rclone = "ok",
                       .deliveries = "[{\"target\":\"plex\",\"result\":\"failed\"}]", .error = "Plex answered 503",
                       .attempts = 1};
    int64_t id = store_stage_history(s, &h);
    assert_true(id > 0);
    commit_ok(s);
    /* a retrying round is never pruned */
    assert_int_equal(store_prune(s, 5000, 1000), 0);

    /* the next attempt ends the round: same id, one row, `started` kept */
    h.id = id;
    h.started = 4000; /* the later attempt's start: not the round's */
    h.duration_ms = 500;
    h.status = HIST_OK;
    h.events = 3;
    h.kinds = QKIND_IMPORT | QKIND_UPGRADE;
    h.deliveries = "[{\"target\":\"plex\",\"result\":\"ok\"}]";
    h.error = NULL;
    h.attempts = 2;
    assert_int_equal(store_stage_history(s, &h), id);
    commit_ok(s);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM history"), 1);
    hrows rows;
    rows_all(s, &rows);
    assert_int_equal(rows.n, 1);
    const hrow *r = &rows.v[0];
    assert_int_equal(r->id, id);
    assert_int_equal(r->started, 1000);
    assert_int_equal(r->duration_ms, 3500); /* from the round's start to the end of the latest attempt */
    assert_int_equal(r->status, HIST_OK);
    assert_int_equal(r->attempts, 2);
    assert_int_equal(r->events, 3);
    assert_int_equal(r->kinds, QKIND_IMPORT | QKIND_UPGRADE);
    assert_false(r->has_error);
    assert_int_equal(json_int(r->deliveries, "SELECT json_extract(?1, '$[0].result') = 'ok'"), 1);

    /* two stages of one id in one turn: the last one is written */
    h.status = HIST_PARKED;
    h.attempts = 3;
    store_stage_history(s, &h);
    h.attempts = 4;
    store_stage_history(s, &h);
    commit_ok(s);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM history"), 1);
    assert_int_equal(sql_int(f->db, "SELECT attempts FROM history"), 4);
    assert_int_equal(sql_int(f->db, "SELECT status = 'parked' FROM history"), 1);

    /* a row pruned meanwhile is written anew under its id */
    assert_int_equal(store_prune(s, 2000, 10), 1);
    h.status = HIST_OK;
    assert_int_equal(store_stage_history(s, &h), id);
    commit_ok(s);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM history"), 1);
    assert_int_equal(sql_int(f->db, "SELECT id FROM history"), id);
    store_close(s);
}

static void test_entry_deliveries_round_trip(void **state)
{
    fixture *f = *state;
    store_t *s = open_ok(f);
    q_delivery d[] = {
        {.target = "plex", .library = "1", .state = DELIVERY_DONE},
        {.target = "jellyfin", .library = "abc-123", .state = DELIVERY_RETRY, .error = (char *)(uintptr_t)"Jellyfin answered 503"},
        {.target = "emby", .library = "", .state = DELIVERY_UNRESOLVED},
        {.target = "plex", .library = "7", .state = DELIVERY_PARKED, .error = (char *)(uintptr_t)"PLEX_TOKEN: Plex answered 401"},
        {.target = "plex2", .library = "10", .state = DELIVERY_PENDING},
    };
    q_entry e = make_entry(12, "/data/tv/Show", ENTRY_RETRY);
    e.deliv = d;
    e.n_deliv = ARRAY_SIZE(d);
    e.rclone_done = true;
    e.round_id = 42;
    e.kinds = QKIND_IMPORT | QKIND_DELETE;
    e.attempts = 2;
    q_entry bare = make_entry(13, "/data/tv/Bare", ENTRY_UNRESOLVED);
    store_stage_entry_put(s, &bare);
    store_stage_entry_put(s, &e);
    commit_ok(s);
    store_close(s);

    s = open_ok(f);
    loaded l;
    load_all(s, &l);
    assert_int_equal(l.n_entries, 2);
    assert_int_equal(l.last_entry.id, 13); /* by id */
    assert_int_equal(l.n_deliv, 0);
    assert_int_equal(l.last_entry.state, ENTRY_UNRESOLVED);
    loaded_free(&l);

    /* only the one with deliveries: delete the other */
    store_stage_entry_del(s, 13);
    commit_ok(s);
    load_all(s, &l);
    assert_int_equal(l.n_entries, 1);
    assert_int_equal(l.n_deliv, 5);
    assert_string_equal(l.deliv, "plex/1/done/-;jellyfin/abc-123/retry/Jellyfin answered 503;emby//unresolved/-;"
                                 "plex/7/parked/PLEX_TOKEN: Plex answered 401;plex2/10/pending/-;");
    assert_true(l.last_entry.rclone_done);
    assert_int_equal(l.last_entry.round_id, 42);
    assert_int_equal(l.last_entry.kinds, QKIND_IMPORT | QKIND_DELETE);
    assert_int_equal(l.last_entry.attempts, 2);
    assert_int_equal(l.last_entry.state, ENTRY_RETRY);
    assert_string_equal(l.entry_paths[0], "/data/tv/Show");
    loaded_free(&l);

    /* a later snapshot replaces the deliveries */
    d[1].state = DELIVERY_DONE;
    d[1].error = NULL;
    e.n_deliv = 2;
    e.rclone_done = false;
    e.round_id = 0;
    store_stage_entry_put(s, &e);
    commit_ok(s);
    load_all(s, &l);
    assert_string_equal(l.deliv, "plex/1/done/-;jellyfin/abc-123/done/-;");
    assert_false(l.last_entry.rclone_done);
    assert_int_equal(l.last_entry.round_id, 0);
    store_close(s);
    loaded_free(&l);
}

/* ---- schema 3: what entries and rounds are about, the senders ---- */

/* The version-2 schema as a version-2 store left it (the migration from 2 starts from this). */
static const char v2_schema[] =
    "CREATE TABLE entries ("
    " id INTEGER PRIMARY KEY, path TEXT NOT NULL, first_seen INTEGER NOT NULL, last_event INTEGER NOT NULL,"
    " due INTEGER NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
    " dirty INTEGER NOT NULL DEFAULT 0, dirty_first INTEGER NOT NULL DEFAULT 0, manual INTEGER NOT NULL DEFAULT 0,"
    " files BLOB, sources INTEGER NOT NULL DEFAULT 0, events INTEGER NOT NULL DEFAULT 0,"
    " kinds INTEGER NOT NULL DEFAULT 0, park_reason TEXT, last_error TEXT, hold_reason TEXT, deliveries BLOB,"
    " rclone_done INTEGER NOT NULL DEFAULT 0, round_id INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE inbox ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, section INTEGER NOT NULL, plex_path TEXT NOT NULL,"
    " arr_path TEXT NOT NULL, files BLOB, source_bit INTEGER NOT NULL DEFAULT 0,"
    " manual INTEGER NOT NULL DEFAULT 0, at INTEGER NOT NULL);"
    "CREATE TABLE history ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT NOT NULL, sources INTEGER NOT NULL DEFAULT 0,"
    " events INTEGER NOT NULL DEFAULT 0, kinds INTEGER NOT NULL DEFAULT 0, started INTEGER NOT NULL,"
    " duration_ms INTEGER NOT NULL DEFAULT 0, status TEXT NOT NULL, rclone TEXT NOT NULL,"
    " deliveries TEXT NOT NULL DEFAULT '[]', error TEXT, attempts INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX history_started ON history (started);"
    "CREATE INDEX history_status_id ON history (status, id);"
    "CREATE INDEX history_ok_path ON history (path, started) WHERE status = 'ok';";

typedef struct about_rows {
    int64_t id[8];
    char title[8][64];
    bool has_title[8];
    q_event_kind event[8];
    unsigned app[8];
    hist_status status[8];
    char rclone[8][16];
    size_t n;
} about_rows;

static void about_add(void *ud, const store_history *h)
{
    about_rows *r = ud;
    assert_true(r->n < 8);
    r->id[r->n] = h->id;
    r->has_title[r->n] = h->title != NULL;
    snprintf(r->title[r->n], sizeof r->title[0], "%s", h->title ? h->title : "");
    r->event[r->n] = h->event;
    r->app[r->n] = h->app;
    r->status[r->n] = h->status;
    snprintf(r->rclone[r->n], sizeof r->rclone[0], "%s", h->rclone);
    r->n++;
}

static void about_list(store_t *s, const char *search, about_rows *out)
{
    memset(out, 0, sizeof *out);
    store_history_query q = {.search = search, .status = -1, .limit = 8};
    assert_int_equal(store_history_list(s, &q, about_add, out), 0);
}

static void test_version_2_database_is_migrated_with_events_read_from_old_rows(void **state)
{
    fixture *f = *state;
    assert_int_equal(mkdir(f->state, 0750), 0);
    sql_exec(f->db, v2_schema);
    /* kinds: 1 import, 3 import+upgrade, 4 rename, 8 delete; sources: 1 sonarr, 2 radarr,
     * 16 manual, 3 sonarr and radarr */
    sql_exec(f->db,
             "PRAGMA journal_mode=WAL; PRAGMA user_version=2;"
             "INSERT INTO entries (id, path, first_seen, last_event, due, state, sources, events, kinds) VALUES"
             " (1, '/tv/A', 1000, 1000, 31000, 'waiting', 1, 1, 3),"
             " (2, '/tv/B', 1000, 1000, 31000, 'waiting', 16, 1, 0),"
             " (3, '/movies/C', 1000, 1000, 31000, 'waiting', 2, 2, 8),"
             " (4, '/tv/D', 1000, 1000, 31000, 'waiting', 3, 2, 4);"
             "INSERT INTO history (id, path, sources, events, kinds, started, duration_ms, status, rclone) VALUES"
             " (1, '/tv/A', 1, 1, 1, 5000, 10, 'ok', 'ok'),"
             " (2, '/tv/B', 16, 1, 0, 6000, 10, 'ok', 'ok');");
    store_t *s = open_ok(f);
    assert_int_equal(sql_int(f->db, "PRAGMA user_version"), 3);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM sources"), 0);
    /* entries: the event their kinds say, the sender when one *arr app sent them, no title */
    queue_params qp = {.delay_ms = 30000, .max_delay_ms = 600000, .retry_max_ms = 300000, .max_concurrent = 4,
                       .max_pending = 100000};
    erows er = {.q = queue_new(&qp, NULL, NULL)};
    store_loader ld = {.ud = &er, .entry = er_add};
    assert_int_equal(store_load(s, &ld), 0);
    assert_int_equal(er.n, 4);
    static const struct {
        int64_t id;
        q_event_kind event;
        unsigned app;
    } want[] = {{1, QEVENT_UPGRADE, 1}, {2, QEVENT_MANUAL, 0}, {3, QEVENT_DELETE, 2}, {4, QEVENT_RENAME, 0}};
    for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
        const q_entry *e = queue_find_id(er.q, want[i].id);
        assert_non_null(e);
        assert_null(e->title);
        assert_int_equal(e->event, want[i].event);
        assert_int_equal(e->last_app, want[i].app);
    }
    queue_free(er.q);
    /* history rows too */
    about_rows h;
    about_list(s, NULL, &h);
    assert_int_equal(h.n, 2);
    assert_int_equal(h.id[1], 1);
    assert_false(h.has_title[1]);
    assert_int_equal(h.event[1], QEVENT_IMPORT);
    assert_int_equal(h.app[1], 1);
    assert_int_equal(h.event[0], QEVENT_MANUAL);
    assert_int_equal(h.app[0], 0);
    store_close(s);
    /* a second open migrates nothing again */
    s = open_ok(f);
    assert_int_equal(sql_int(f->db, "PRAGMA user_version"), 3);
    store_close(s);
}

static void test_titles_events_and_senders_round_trip(void **state)
{
    fixture *f = *state;
    store_t *s = open_ok(f);
    q_entry e = make_entry(5, "/tv/Show/Season 02", ENTRY_WAITING);
    e.title = "The Expanse S02E05 \xc2\xb7 Doors & Corners";
    e.event = QEVENT_UPGRADE;
    e.last_app = 1;
    store_stage_entry_put(s, &e);
    store_history h = {.path = "/tv/Show/Season 02", .sources = 1, .events = 1, .started = 1000,
                       .status = HIST_RETRYING, .rclone = "failed", .deliveries = "[]", .attempts = 1,
                       .title = e.title, .event = QEVENT_UPGRADE, .app = 1};
    int64_t round = store_stage_history(s, &h);
    store_history other = {.path = "/movies/Film", .sources = 16, .events = 1, .started = 2000, .status = HIST_OK,
                           .rclone = "ok", .deliveries = "[]", .attempts = 1, .event = QEVENT_MANUAL, .app = 5};
    store_stage_history(s, &other);
    commit_ok(s);
    store_close(s);

    s = open_ok(f);
    loaded l;
    load_all(s, &l);
    assert_int_equal(l.n_entries, 1);
    assert_string_equal(l.entry_title, e.title);
    assert_int_equal(l.last_entry.event, QEVENT_UPGRADE);
    assert_int_equal(l.last_entry.last_app, 1);
    loaded_free(&l);
    about_rows r;
    about_list(s, NULL, &r);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.title[1], e.title);
    assert_int_equal(r.event[1], QEVENT_UPGRADE);
    assert_int_equal(r.app[1], 1);
    assert_false(r.has_title[0]);
    assert_int_equal(r.event[0], QEVENT_MANUAL);
    assert_int_equal(r.app[0], 5);
    /* the history's search finds a round by what it is */
    about_list(s, "doors &", &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.id[0], round);

    /* a round closed as cancelled keeps the rclone outcome its last attempt wrote */
    h.id = round;
    h.status = HIST_CANCELLED;
    h.rclone = "skipped";
    h.error = "cancelled from the page";
    store_stage_history(s, &h);
    commit_ok(s);
    about_list(s, "Expanse", &r);
    assert_int_equal(r.status[0], HIST_CANCELLED);
    assert_string_equal(r.rclone[0], "failed");
    store_stats st;
    assert_int_equal(store_history_stats(s, &st), 0);
    assert_int_equal(st.cancelled, 1);
    assert_int_equal(st.ok, 1);
    assert_string_equal(hist_status_name(HIST_CANCELLED), "cancelled");
    store_close(s);
}

typedef struct srcs {
    char app[8][16], type[8][32], title[8][64];
    uint64_t events[8], at[8], test_at[8];
    size_t n;
} srcs;

static void src_add(void *ud, const store_source *src)
{
    srcs *l = ud;
    assert_true(l->n < 8);
    snprintf(l->app[l->n], sizeof l->app[0], "%s", src->app);
    snprintf(l->type[l->n], sizeof l->type[0], "%s", src->last_type ? src->last_type : "-");
    snprintf(l->title[l->n], sizeof l->title[0], "%s", src->last_title ? src->last_title : "-");
    l->events[l->n] = src->events;
    l->at[l->n] = src->last_at;
    l->test_at[l->n] = src->last_test_at;
    l->n++;
}

static const size_t *src_find(const srcs *l, const char *app, size_t *i)
{
    for (*i = 0; *i < l->n; (*i)++)
        if (strcmp(l->app[*i], app) == 0)
            return i;
    fail_msg("no source %s", app);
    return NULL;
}

static void test_senders_rows_are_written_with_the_commit_and_loaded_at_start(void **state)
{
    fixture *f = *state;
    store_t *s = open_ok(f);
    store_stage_source(s, &(store_source){.app = "sonarr", .events = 1, .last_type = "Test",
                                          .last_title = "Test Title S01E01", .last_at = 100, .last_test_at = 100});
    /* a later row of the same sender replaces the staged one */
    store_stage_source(s, &(store_source){.app = "sonarr", .events = 2, .last_type = "Download",
                                          .last_title = "Show S01E01", .last_at = 200, .last_test_at = 100});
    store_stage_source(s, &(store_source){.app = "manual", .events = 1, .last_type = "autoscan", .last_at = 150});
    assert_true(store_has_staged(s));
    /* a failed commit keeps them for the next one */
    store_test_fail_next_commit(s);
    char err[256];
    assert_true(store_commit(s, err, sizeof err) < 0);
    assert_true(store_has_staged(s));
    commit_ok(s);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM sources"), 2);
    store_close(s);

    s = open_ok(f);
    srcs l = {0};
    store_loader ld = {.ud = &l, .source = src_add};
    assert_int_equal(store_load(s, &ld), 0);
    assert_int_equal(l.n, 2);
    size_t i;
    src_find(&l, "sonarr", &i);
    assert_int_equal(l.events[i], 2);
    assert_string_equal(l.type[i], "Download");
    assert_string_equal(l.title[i], "Show S01E01");
    assert_int_equal(l.at[i], 200);
    assert_int_equal(l.test_at[i], 100);
    src_find(&l, "manual", &i);
    assert_string_equal(l.title[i], "-");
    assert_int_equal(l.test_at[i], 0);
    store_close(s);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_open_creates_state_dir_and_schema),
        T(test_bad_arguments_are_refused),
        T(test_owner_synced_store_hands_out_its_wal),
        T(test_reopen_keeps_entries_inbox_and_history),
        T(test_replayed_inbox_rows_are_deleted_with_the_entries_they_became),
        T(test_group_commit_writes_entries_deletions_and_history_together),
        T(test_failed_commit_writes_nothing_and_keeps_everything_staged),
        T(test_put_then_del_cancels_the_put),
        T(test_same_id_put_twice_keeps_the_last_snapshot),
        T(test_load_gives_entries_then_successes_then_events_oldest_first),
        T(test_last_success_is_the_latest_ok_row_per_key),
        T(test_random_bytes_db_is_moved_aside_with_wal_and_shm),
        T(test_damaged_pages_found_by_quick_check_are_moved_aside),
        T(test_valid_db_with_garbage_wal_keeps_its_rows),
        T(test_newer_schema_is_refused_and_left_untouched),
        T(test_version_2_database_is_migrated_with_events_read_from_old_rows),
        T(test_titles_events_and_senders_round_trip),
        T(test_senders_rows_are_written_with_the_commit_and_loaded_at_start),
        T(test_state_dir_that_cannot_be_created_is_refused),
        T(test_prune_deletes_only_old_rows_and_at_most_max),
        T(test_history_pages_newest_first_with_search_and_status),
        T(test_history_stats_count_each_status),
        T(test_two_thousand_snapshots_commit_in_one_call),
        T(test_close_discards_staged_rows),
        T(test_removed_wal_is_noticed_and_renewed_from_memory),
        T(test_wal_replaced_by_a_copy_is_noticed_and_renewed),
        T(test_removed_database_is_noticed_and_renewed),
        T(test_renewal_that_cannot_write_is_retried_and_the_store_stays_readable),
        T(test_unchanged_files_cost_no_renewal),
        T(test_version_1_database_is_migrated_keeping_entries_inbox_and_history),
        T(test_history_ids_never_repeat_after_pruning),
        T(test_a_round_row_is_updated_in_place_keeping_its_start),
        T(test_entry_deliveries_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
