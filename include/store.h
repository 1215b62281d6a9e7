/* store.h: durable state in SQLite (WAL), touched from the loop thread only.
 *
 * Acknowledgement model (group commit): the owner applies a loop turn's webhook events to the
 * in-memory queue, which stages a snapshot of every entry they create or change; one commit per
 * loop turn (store_commit from a uv_check handle) writes all staged rows in one transaction, and
 * only then are the turn's requests answered 2xx. So an acknowledged event is always part of an
 * entry row (or of a history row once scanned): one row write per changed entry, whatever the
 * number of events merged into it.
 *
 * The inbox table is what earlier builds acknowledged events into (a row per event, applied
 * later). Nothing writes it now; start-up replays and deletes rows such a build left behind. */
#ifndef PSS_STORE_H
#define PSS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue.h"

#define STORE_SCHEMA_VERSION 3

typedef struct store store_t;

/* How a commit reaches stable storage (store_open's `durability`). */
enum {
    STORE_SYNC_COMMIT = 0, /* synchronous=FULL: SQLite syncs the WAL inside every commit */
    STORE_SYNC_NONE = 1,   /* synchronous=NORMAL: survives a crash of the process, not of the OS */
    /* synchronous=NORMAL, and the owner syncs the WAL itself (store_wal_fd): a commit is on
     * stable storage once an fdatasync of that descriptor that began after it has returned. The
     * owner can so sync off its loop and cover many commits with one sync. */
    STORE_SYNC_OWNER = 2,
};

/* Open (creating) STATE_DIR/plex-servarr-sync.db. WAL mode; synchronous per `durability`
 * (STORE_SYNC_*); busy timeout; schema created or migrated by PRAGMA user_version.
 * A corrupt file (SQLITE_CORRUPT / SQLITE_NOTADB on open or on quick_check) is renamed to
 * "<db>.corrupt-<unix time>" with its -wal and -shm, logged loudly (log_error), and a fresh one
 * created. A user_version newer than STORE_SCHEMA_VERSION is refused: -EPROTO with err saying
 * so (it may hold acknowledged work). A state dir that cannot be created or written: -errno,
 * err naming it. */
int store_open(store_t **out, const char *state_dir, int durability, char *err, size_t errlen);
void store_close(store_t *s);   /* commits nothing; discards staged rows */
const char *store_path(const store_t *s);

/* STORE_SYNC_OWNER: a descriptor of the WAL file SQLite writes, for fdatasync(2), or -ENOENT
 * without a WAL. Opened with the database (and again by store_renew); owned by the store.
 * Checkpoints (which copy the WAL into the database) sync both files themselves, as SQLite
 * always does. */
int store_wal_fd(store_t *s);

/* ---- a leftover inbox row (see above), as start-up replays it ---- */
typedef struct store_event {
    int64_t id;
    const char *arr_path;
    const char *const *files;
    size_t n_files;
    unsigned source_bit;
    bool manual;
    uint64_t at;
} store_event;

/* Stage a snapshot of an entry (copied now; a later snapshot of the same id replaces it) or
 * its deletion. */
void store_stage_entry_put(store_t *s, const q_entry *e);
void store_stage_entry_del(store_t *s, int64_t entry_id);
/* Stage deletion of a replayed inbox row whose event has been applied to the queue. */
void store_stage_event_done(store_t *s, int64_t event_id);

/* ---- history: one row per round (DESIGN.md "History") ---- */
typedef enum {
    HIST_OK = 0,
    HIST_FAILED,
    HIST_PARKED,
    HIST_SKIPPED,
    HIST_RETRYING,
    HIST_CANCELLED,
    HIST_STATUS_COUNT
} hist_status;
/* "ok", "failed" (an attempt of a version before rounds), "parked", "skipped", "retrying",
 * "cancelled" (a person removed the entry from the queue) */
const char *hist_status_name(hist_status s);

typedef struct store_history {
    int64_t id;              /* the round's row; 0 = a new row (store_stage_history gives its id) */
    const char *path;        /* the folder's arr path */
    unsigned sources;
    unsigned events;
    unsigned kinds;          /* QKIND_* */
    uint64_t started;        /* wall ms when the round's first attempt started */
    uint64_t duration_ms;    /* from started to the end of the latest attempt */
    hist_status status;
    const char *rclone;      /* "ok", "absent", "skipped", "failed", "config_error" */
    const char *deliveries;  /* JSON text: [{"target","kind","library","library_title","path",
                                "result","error"}, ...] */
    const char *error;       /* may be NULL */
    unsigned attempts;
    const char *title;       /* what the folder is (q_entry.title), may be NULL */
    q_event_kind event;      /* the latest event's kind */
    unsigned app;            /* the latest event's sender, as q_entry.last_app: arr_app + 1, 0 unknown */
} store_history;
/* Stage a round's row: a new one when h->id is 0 (its id is returned: ids are given here, not by
 * the commit, so the round can be updated before it is written), else an update of row h->id
 * that keeps its `started` (a row pruned meanwhile is written anew). An update to `cancelled`
 * keeps the row's rclone outcome: the entry does not remember its last attempt's. */
int64_t store_stage_history(store_t *s, const store_history *h);

/* ---- the senders: what each *arr app (and the manual trigger) last sent ---- */
typedef struct store_source {
    const char *app;         /* "sonarr", "radarr", "lidarr", "readarr", "manual" (the key) */
    uint64_t events;         /* requests received from it */
    const char *last_type;   /* the last one's event type ("Download", "Test"), NULL before any */
    const char *last_title;  /* what it was about, may be NULL */
    uint64_t last_at;        /* wall ms, 0 = never */
    uint64_t last_test_at;   /* the last Test event (or autoscan's probe), 0 = never */
} store_source;
#define STORE_SOURCES_MAX 8
/* Stage a sender's row (copied; a later one for the same app replaces it), written with the
 * next commit. At most STORE_SOURCES_MAX different apps: more is a bug, stopped by assert(). */
void store_stage_source(store_t *s, const store_source *src);

bool store_has_staged(const store_t *s);

/* Write everything staged in one transaction. On success returns 0 and clears the staging.
 * On failure returns a negative code (err says why), rolls back and KEEPS everything staged for
 * the next commit (the in-memory queue already holds those changes; the turn's requests get
 * 503, since nothing of theirs is on disk yet).
 *
 * Before it returns 0 it checks that the database and its -wal at their paths are still the
 * files SQLite has open (device and inode, two stat calls): removed or replaced under the
 * running daemon, what SQLite writes would be gone at the next crash. Then it returns -ESTALE
 * (err says which file and how), and so does every later commit, writing nothing, until
 * store_renew has made a fresh database. */
int store_commit(store_t *s, char *err, size_t errlen);
/* Whether the files were found replaced and store_renew has not yet made a fresh database. */
bool store_replaced(const store_t *s);

/* store_renew calls this to stage a snapshot of everything the owner holds (store_stage_*). */
typedef void (*store_refill_fn)(void *ud, store_t *s);
/* After store_commit said -ESTALE: move what is at the paths aside ("<db>.replaced-<unix time>"
 * with its -wal and -shm), open a fresh database there, and write into it in one transaction
 * what refill stages and the history the replaced database held (read through the connection
 * that still has its files open; STORE_SYNC_OWNER: then synced). Logs one loud line when done
 * and returns 0: commits work again. On failure (a directory that cannot be written) returns a
 * negative code with err saying why, logs nothing, and may be called again (each commit's turn,
 * say); the store stays readable meanwhile. 0 at once when nothing was replaced. */
int store_renew(store_t *s, store_refill_fn refill, void *ud, char *err, size_t errlen);


/* ---- start-up ---- */
typedef struct store_loader {
    void *ud;
    /* each entry row; e is only valid during the call */
    void (*entry)(void *ud, const q_entry *e);
    /* each leftover inbox row, oldest first */
    void (*event)(void *ud, const store_event *ev);
    /* latest successful round per folder (for cooldown) */
    void (*last_success)(void *ud, const char *path, uint64_t at);
    /* each sender's row (src is only valid during the call) */
    void (*source)(void *ud, const store_source *src);
} store_loader;
int store_load(store_t *s, const store_loader *l);
int64_t store_max_entry_id(store_t *s);

/* ---- reading for the API (store_history.c, the pss_store_history library) ---- */
typedef struct store_history_query {
    const char *search;   /* substring of the path or of any delivery's path, NULL = all */
    int status;           /* -1 = all, else hist_status */
    int64_t before_id;    /* paging: rows with id < before_id; 0 = newest */
    int limit;            /* 1..500 */
} store_history_query;
typedef void (*store_history_fn)(void *ud, const store_history *h);
int store_history_list(store_t *s, const store_history_query *q, store_history_fn fn, void *ud);

typedef struct store_stats {
    uint64_t total, ok, failed, parked, skipped, retrying, cancelled; /* rows by status */
    uint64_t avg_duration_ms;   /* over ok rows */
    uint64_t last_sync;         /* wall ms of the newest ok round, 0 if none */
    int64_t last_sync_id;
} store_stats;
int store_history_stats(store_t *s, store_stats *out);

/* Delete history rows older than `before` (wall ms), at most max_rows; returns rows deleted
 * or a negative code. */
int store_prune(store_t *s, uint64_t before, int max_rows);

#endif
