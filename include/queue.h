/* queue.h: pending scans, one entry per folder (its arr path) with one delivery per target
 * library, and the rules that decide when each may run: debounce capped by max delay, merge into ancestors, absorb descendants, dirty
 * re-runs, minimum age, holds, cooldown, retries with full jitter, parking, concurrency.
 *
 * Pure logic: no libuv, no I/O, no clock of its own. Every call takes `now` (wall ms), so tests
 * drive it with a fake clock. The owner (app.c) arms one timer at queue_next_wakeup(), calls
 * queue_take_ready() when it fires, does the async work (fs checks, rclone, Plex) and reports
 * back with queue_age_checked(), queue_hold(), queue_sync_done(). Every change to an entry is
 * reported through the change callback so the owner can persist it.
 *
 * Lifetimes. The queue owns every q_entry. An entry the owner took (CHECKING, then SYNCING) is
 * neither merged, absorbed, re-mapped nor freed until the owner reports on it; any other entry
 * may be freed by the next queue_add(), queue_take_ready() or queue_remap() (absorbed or merged
 * into another), so keep its id (queue_find_id), never its pointer. The calls that end the
 * owner's hold on an entry, queue_age_checked() (when too young), queue_hold() and
 * queue_sync_done(), may free the entry they are given: a clean sync removes it, and an
 * ancestor entry that arrived meanwhile and waited takes its work over. Each returns the entry
 * that now carries the work (the one given, or that ancestor) or NULL when none is left; after
 * the call the caller touches only what was returned. Copy e->id, e->path and whatever
 * else is needed afterwards before the call. Calling one of them for an entry in the wrong
 * state is a bug, stopped by assert(). */
#ifndef PSS_QUEUE_H
#define PSS_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QUEUE_MAX_FILES 64
#define QUEUE_MAX_DELIVERIES 64
#define QUEUE_COUNT_MAX 65535u /* an entry's attempts and events stop there */
_Static_assert(QUEUE_MAX_FILES <= 255 && QUEUE_MAX_DELIVERIES <= 255, "q_entry counts them in a byte");

typedef enum {
    ENTRY_UNRESOLVED = 0, /* nothing to deliver until a library list arrives; no timer */
    ENTRY_WAITING,        /* debounce (or cooldown) window open; due = when it closes */
    ENTRY_AGING,          /* window closed, newest file too young; due = when old enough */
    ENTRY_HELD,           /* anchor missing / mount failing; due = next re-check */
    ENTRY_READY,          /* due passed; waiting for a sync slot or for a nested sync to end */
    ENTRY_CHECKING,       /* taken by the owner: age/anchor checks in flight (not syncing yet) */
    ENTRY_SYNCING,        /* between the first rclone call and the last delivery's answer */
    ENTRY_RETRY,          /* an attempt failed transiently; due = backoff end */
    ENTRY_PARKED,         /* waits for a person: a configuration error (the entry's own, or every
                             delivery left is parked) */
    ENTRY_STATE_COUNT
} entry_state;

const char *entry_state_name(entry_state s); /* "unresolved", "waiting", ... */

/* One delivery: the folder to one library of one target (DESIGN.md "Targets and their
 * libraries"). The target's path of the folder is not kept: it follows from the entry's path
 * and that target's path replacements, and a reload that changes them re-maps the entry. */
typedef enum {
    DELIVERY_PENDING = 0, /* sent at the next attempt */
    DELIVERY_UNRESOLVED,  /* the target's library list was never read: the library is unknown */
    DELIVERY_DONE,        /* delivered in this round: never repeated in it */
    DELIVERY_RETRY,       /* failed transiently: sent again at the next attempt */
    DELIVERY_PARKED,      /* refused as configured (a token, a library gone): waits for a fix */
    DELIVERY_STATE_COUNT
} delivery_state;

const char *delivery_state_name(delivery_state s); /* "pending", "unresolved", ... */

typedef struct q_delivery {
    const char *target;  /* target name; interned by the queue (queue_intern), stable for its life */
    const char *library; /* library id ("" while unresolved); interned */
    char *error;         /* last failure, NULL if none; owned by the entry */
    delivery_state state;
} q_delivery;

/* Event kinds an entry's events were (for Jellyfin's and Emby's UpdateType, and empty trash). */
enum { QKIND_IMPORT = 1u, QKIND_UPGRADE = 2u, QKIND_RENAME = 4u, QKIND_DELETE = 8u };

/* What an entry's latest event was, as the page and the API name it (QKIND_* gathers what all of
 * its events did). A manual scan, a manual trigger and autoscan's trigger are `manual`; an *arr
 * event that adds, changes or removes no file (a Retag) is `other`. */
typedef enum {
    QEVENT_OTHER = 0,
    QEVENT_IMPORT,
    QEVENT_UPGRADE,
    QEVENT_RENAME,
    QEVENT_DELETE,
    QEVENT_MANUAL,
    QEVENT_COUNT
} q_event_kind;

const char *q_event_kind_name(q_event_kind k); /* "other", "import", ... */
int q_event_kind_parse(const char *s);         /* the kind, or -1 for NULL or an unknown name */
/* An event's kind from its QKIND_* (an upgrade is also an import: upgrade wins), or manual. */
q_event_kind q_event_kind_of(unsigned kinds, bool manual);

typedef struct q_entry {
    int64_t id;            /* unique, > 0, assigned by the queue (persisted) */
    char *path;            /* the folder's arr path: the key (byte-exact) */
    uint64_t first_seen;   /* wall ms */
    uint64_t last_event;   /* wall ms */
    uint64_t due;          /* wall ms; meaning depends on state */
    uint64_t dirty_first;  /* wall ms of the first event while syncing (dirty) */
    int64_t round_id;      /* the history row of the current round, 0 before its first attempt ends */
    char **files;          /* event files, at most QUEUE_MAX_FILES (extra ones dropped): relative to
                              path ("x.mkv", "Season 01/x.mkv"), or an absolute arr path for one
                              that is not below it; queue_file_path gives the arr path */
    q_delivery *deliv;     /* its deliveries, at most QUEUE_MAX_DELIVERIES (&deliv_one for one) */
    char *park_reason;     /* ENTRY_PARKED: what to fix ("PLEX_TOKEN: Plex answered 401") */
    char *last_error;      /* last failure text, NULL if none */
    char *hold_reason;     /* ENTRY_HELD: why */
    const char *title;     /* what the folder is, from the latest event that said ("Show S02E05 ·
                              Episode"), NULL when none did: the queue's shared copy, never freed
                              by the caller (queue_restore copies the one it is given) */
    struct q_entry *hnext; /* hash chain, owned by the queue */
    q_delivery deliv_one;  /* the storage of a single delivery (the common case: one server) */
    /* The rest is packed (100,000 queued folders are a memory budget): small counts and flags. */
    uint32_t heap_idx;     /* owned by the queue */
    uint16_t attempts;     /* finished attempts of this round (never reset by events); stops at
                              QUEUE_COUNT_MAX, as events does */
    uint16_t events;       /* events merged into this entry */
    uint16_t sources;      /* bit (1u << arr_app) per app that sent events */
    uint8_t state;         /* entry_state */
    uint8_t n_files;       /* at most QUEUE_MAX_FILES */
    uint8_t n_deliv;       /* at most QUEUE_MAX_DELIVERIES */
    uint8_t kinds;         /* QKIND_* of the events merged so far */
    bool dirty : 1;        /* an event arrived while syncing */
    bool manual : 1;       /* a person asked: skip debounce and minimum age (cleared after a sync) */
    bool keyed : 1;        /* owned by the queue's index: in its key table */
    bool rclone_done : 1;  /* the rclone step succeeded in this round and no event came since */
    bool rclone_absent : 1; /* ... and found the folder absent (a retry's deliveries still say so) */
    bool age_unseen : 1;   /* the last minimum-age check read no file's time: the event time decided
                              (not persisted; shown while AGING) */
    uint8_t event : 4;     /* q_event_kind of the latest event */
    uint8_t last_app : 4;  /* the latest event's sender: its source bit's index + 1 (arr_app + 1),
                              0 when unknown (an entry of an older version) */
} q_entry;

/* The arr path of e->files[i] (new string). */
char *queue_file_path(const q_entry *e, size_t i);

/* How many deliveries of e are in state s. */
size_t q_entry_count_deliveries(const q_entry *e, delivery_state s);

typedef struct queue_params {
    uint64_t delay_ms;        /* WEBHOOK_DELAY */
    uint64_t max_delay_ms;    /* WEBHOOK_MAX_DELAY */
    uint64_t min_age_ms;      /* MINIMUM_AGE */
    uint64_t cooldown_ms;     /* SYNC_COOLDOWN */
    uint64_t retry_max_ms;    /* RETRY_MAX_DELAY */
    uint64_t hold_recheck_ms; /* 30 s */
    uint64_t clamp_future_ms; /* due times later than now + this at load are clamped (e.g. 1 d + max delay) */
    int max_concurrent;       /* MAX_CONCURRENT_SYNCS */
    long max_pending;         /* MAX_PENDING */
    /* random number in [0, 1); NULL = drand48-like default. Tests pass a fixed function. */
    double (*rand01)(void *ud);
    void *rand_ud;
} queue_params;

typedef enum { QCHANGE_PUT = 0, QCHANGE_DEL = 1 } q_change;
/* Called after each change to an entry (PUT: created or modified; DEL: removed, then freed
 * right after the callback returns). Must not call back into the queue. */
typedef void (*queue_change_fn)(void *ud, const q_entry *e, q_change what);

typedef struct queue queue_t;

queue_t *queue_new(const queue_params *p, queue_change_fn on_change, void *ud);
void queue_free(queue_t *q);                     /* frees all entries, no callbacks */
void queue_set_params(queue_t *q, const queue_params *p); /* reload; never shortens a backoff */
/* The next id queue_add (or a split in queue_remap) assigns: max(next_id, current). Call it
 * after loading, with 1 + the highest id the store ever handed out. queue_restore already
 * moves past every id it restores. */
void queue_set_next_id(queue_t *q, int64_t next_id);

/* One folder event. */
typedef struct q_event {
    const char *path;             /* the folder's arr path (the key) */
    const q_delivery *deliv;      /* its deliveries now: PENDING, or UNRESOLVED for a target
                                     whose library list was never read (error ignored) */
    size_t n_deliv;
    unsigned kinds;               /* QKIND_* */
    const char *const *files;     /* arr paths of the event's files in that folder */
    size_t n_files;
    unsigned source_bit;          /* 1u << arr_app */
    bool manual;
    uint64_t at;                  /* wall ms of the event (replays keep their original time) */
    const char *title;            /* what it is (wh_event.label), NULL when it says nothing */
    q_event_kind event;
} q_event;

typedef enum {
    QADD_NEW = 0,       /* a new entry (it may have absorbed descendants: result.absorbed) */
    QADD_MERGED,        /* joined an existing non-syncing entry for the folder or an ancestor */
    QADD_DIRTY,         /* at or below a syncing entry: marked it dirty */
} q_add_kind;

typedef struct q_add_result {
    q_add_kind kind;
    q_entry *entry;     /* the entry that now carries the event */
    unsigned absorbed;  /* descendants absorbed by a new entry */
} q_add_result;

/* Apply one event (DESIGN.md "The queue"). Returns 0, or -ENOSPC when a new entry would exceed
 * max_pending (nothing changed). */
int queue_add(queue_t *q, const q_event *ev, uint64_t now, q_add_result *res);

/* Earliest wall ms at which queue_take_ready() may return something; UINT64_MAX if never (all
 * entries unresolved, parked, checking or syncing). */
/* Also UINT64_MAX while max_concurrent entries hold a slot (CHECKING, or SYNCING before
 * queue_release_slot): nothing can start before one ends or releases it, so ask again after
 * queue_sync_done(), queue_hold(), queue_age_checked() or queue_release_slot(). */
uint64_t queue_next_wakeup(const queue_t *q);

/* Next entry whose due time has passed and that may start now: state WAITING/AGING/HELD/RETRY/
 * READY with due <= now, no syncing or checking entry nested with it (ancestor or descendant),
 * and fewer than max_concurrent entries holding a slot. The entry moves to
 * CHECKING and is returned; NULL when none. Entries that are due but blocked move to READY.
 * *needs_age tells the owner to check the minimum age first (false for manual entries, when
 * MINIMUM_AGE is 0, and for retries/holds whose age was already satisfied). */
q_entry *queue_take_ready(queue_t *q, uint64_t now, bool *needs_age);

/* Minimum-age answer for a CHECKING entry (asserted): newest_mtime is the newest mtime (wall ms)
 * among its event files on the host, 0 when none could be read (then e->age_unseen is set: the
 * event time decides, and the page says so). old_enough must not be NULL.
 * - Old enough (or MINIMUM_AGE is 0): *old_enough = true, e stays CHECKING and is returned; the
 *   owner goes on to the anchor check.
 * - now - max(last_event, newest_mtime) < min_age: *old_enough = false, e goes to AGING with
 *   due = the remainder, and a waiting ancestor may take it over and FREE e. Returns the entry
 *   now carrying e's work (e itself, or that ancestor; never NULL), whose due says when it runs. */
q_entry *queue_age_checked(queue_t *q, q_entry *e, uint64_t newest_mtime, uint64_t now, bool *old_enough);

/* Anchor check failed for a CHECKING or SYNCING entry (asserted): HELD, due = now + hold_recheck,
 * reason kept. A waiting ancestor may take it over and FREE e. Returns the entry now carrying
 * e's work (e itself, or that ancestor; never NULL). */
q_entry *queue_hold(queue_t *q, q_entry *e, const char *reason, uint64_t now);

/* CHECKING (asserted) -> SYNCING (the first rclone call is about to go out). Never frees e. */
void queue_sync_started(queue_t *q, q_entry *e, uint64_t now);

typedef enum { SYNC_OK = 0, SYNC_TRANSIENT, SYNC_PARKED } sync_outcome;

/* An attempt of a CHECKING or SYNCING entry (asserted) ended.
 * - OK: no step failed transiently. What happens next follows from the deliveries: every one
 *   done ends the round: the entry is removed (or, when dirty, starts a new round: first_seen =
 *   dirty_first, every delivery but the parked ones pending again, rclone to be run again, due =
 *   max(debounce due, now + cooldown), WAITING) and the folder's last success is recorded for
 *   cooldown. Unresolved ones left: UNRESOLVED (the round goes on when a list arrives). Parked
 *   ones left (the rest done): PARKED with the first one's error as the reason.
 * - TRANSIENT: attempts++, RETRY with due = now + random(0, min(retry_max, 5 s * 2^(attempts-1))).
 * - PARKED: the entry itself is parked (rclone refused, a path that cannot map), with `error`;
 *   attempts++ (a retry from the UI is the round's next attempt).
 * `error` (may be NULL) is kept as last_error. An entry that is not removed may be taken over
 * by a waiting ancestor, which inherits its files, attempt count and backoff.
 * e may be FREED. Returns the entry now carrying e's work: NULL when nothing is left, else e
 * itself or the ancestor that took it over. *round_over (may be NULL) says whether e's round
 * ended (removed, parked, or restarted for a dirty re-run). */
q_entry *queue_sync_done(queue_t *q, q_entry *e, sync_outcome o, const char *error, uint64_t now,
                         bool *round_over);

/* A SYNCING entry (asserted) is past its rclone step: it no longer counts toward
 * max_concurrent (its deliveries wait on their targets, each target bounding its own requests,
 * so a slow server holds up no other folder's rclone step or scans). It stays SYNCING (nested
 * folders still wait for it) until queue_sync_done. Never frees e. */
void queue_release_slot(queue_t *q, q_entry *e);

/* What one step of a CHECKING or SYNCING entry's attempt (asserted) found; each is reported
 * as a change, so a restart repeats nothing that was done. Never frees e. */
void queue_delivery_set(queue_t *q, q_entry *e, size_t i, delivery_state s, const char *error);
/* absent: rclone found the folder absent (kept with rclone_done for the rest of the round). */
void queue_rclone_done(queue_t *q, q_entry *e, bool absent);
void queue_set_round(queue_t *q, q_entry *e, int64_t round_id);

/* A person cancels an entry that is not CHECKING or SYNCING: it is removed (DEL reported) and
 * freed. 0, or -EBUSY for an entry being checked or synced (its work is under way: an event
 * would make it run again, a cancel cannot take it back). */
int queue_cancel(queue_t *q, q_entry *e);
/* A person asks for an entry now: due now, skipping WEBHOOK_DELAY, SYNC_COOLDOWN and a retry's
 * backoff; MINIMUM_AGE and the anchors are still checked when it is taken. 0, or -EBUSY
 * (checking or syncing), -EPERM (parked: queue_unpark is its way) or -ENODATA (unresolved:
 * nothing to deliver until a library list arrives). Never frees e. */
int queue_run_now(queue_t *q, q_entry *e, uint64_t now);

/* Unpark one entry (UI "retry") or all parked entries (reload that fixed the variable): its
 * parked deliveries pending again, state WAITING, due = now. Returns the number unparked; 0 for
 * an entry that is not parked. Never frees an entry: no ancestor takes an entry over here (it
 * absorbs it when it arrives). */
int queue_unpark(queue_t *q, q_entry *e, uint64_t now);
int queue_unpark_all(queue_t *q, uint64_t now);
/* A target accepts its token again: every parked delivery to it is pending again, and an entry
 * that waited for nothing else runs now. Returns the number of entries that changed. */
int queue_unpark_target(queue_t *q, const char *target, uint64_t now);
/* A stable copy of s for q_delivery.target/.library: equal strings give one pointer, kept until
 * queue_free (target names and library ids are few). */
const char *queue_intern(queue_t *q, const char *s);

/* Re-map every entry that is not CHECKING or SYNCING (after a reload or a new library list):
 * fn gives the deliveries of an arr path now. Returns 0 with *n deliveries (targets and
 * libraries are copied: interned), 1 when no target holds the folder any more (the entry is
 * removed: skipped), or a negative value to keep the entry as it is (a bad reload never drops
 * acknowledged work, and a stale list decides nothing). A delivery the entry already has keeps
 * its state; one to a target that was unresolved becomes pending; a new one is pending; one that
 * is not given any more is dropped. An entry left with nothing pending becomes UNRESOLVED (only
 * unresolved ones), or runs at once to end its round (nothing left to send: its job finds the
 * round complete). Returns the number of entries changed. */
typedef int (*queue_map_fn)(void *ud, const char *path, q_delivery *out, size_t max, size_t *n);
int queue_remap(queue_t *q, queue_map_fn fn, void *ud, uint64_t now);

/* Cooldown memory: last successful round of a folder (rebuilt from history at start). */
void queue_note_success(queue_t *q, const char *path, uint64_t at);

/* Insert an entry loaded from the store verbatim (id, times, state, attempts, files ...); a
 * CHECKING or SYNCING state becomes READY (the work was interrupted); due later than
 * now + clamp_future is clamped to now + delay. No change callback. Returns 0 or -EEXIST. */
int queue_restore(queue_t *q, const q_entry *e, uint64_t now);

q_entry *queue_find(const queue_t *q, const char *path);
q_entry *queue_find_id(const queue_t *q, int64_t id);
size_t queue_count(const queue_t *q);
/* Whether an event for path would be taken by an entry already there (the folder
 * itself or a waiting ancestor merges it; a syncing one is marked to run again) rather than make
 * a new one: such an event adds nothing toward MAX_PENDING and is never refused for it. Changes
 * nothing. */
bool queue_takes_without_growing(const queue_t *q, const char *path);
/* The wall clock stepped by delta ms: every time the queue holds moves with it, so each wait
 * keeps what was left of it (a step back does not postpone a scan by the step, a step forward
 * does not make it due at once). Every entry is reported changed. */
void queue_shift_time(queue_t *q, int64_t delta);
size_t queue_count_state(const queue_t *q, entry_state s);
/* Iterate all entries (order unspecified). Must not modify the queue inside. */
void queue_foreach(const queue_t *q, void (*fn)(void *ud, const q_entry *e), void *ud);

#endif
