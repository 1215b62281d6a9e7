/* test_queue.c: the queue's rules (DESIGN.md "The queue"), driven by a fake clock and a fixed
 * random number. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "queue.h"
#include "util.h"

#define SEC 1000ULL
#define MIN (60 * SEC)
#define HOUR_MS (60 * MIN)
#define T0 (1700000000000ULL) /* a wall-clock start far from 0 */
#define SONARR (1u << 0)
#define RADARR (1u << 1)

/* ---- fixture: change recorder, fixed random ---- */

typedef struct rec {
    unsigned puts, dels;
    int64_t last_put_id, last_del_id;
    entry_state last_put_state;
    int64_t del_ids[64];
    size_t n_del;
} rec;

typedef struct fx {
    queue_t *q;
    queue_params p;
    rec r;
    double rnd;
} fx;

static void on_change(void *ud, const q_entry *e, q_change what)
{
    rec *r = ud;
    assert_non_null(e);
    assert_true(e->id > 0);
    if (what == QCHANGE_PUT) {
        r->puts++;
        r->last_put_id = e->id;
        r->last_put_state = e->state;
    } else {
        r->dels++;
        r->last_del_id = e->id;
        if (r->n_del < 64)
            r->del_ids[r->n_del++] = e->id;
    }
}

static double fixed_rand(void *ud)
{
    return *(double *)ud;
}

static void params_default(fx *f)
{
    memset(&f->p, 0, sizeof f->p);
    f->p.delay_ms = 30 * SEC;
    f->p.max_delay_ms = 10 * MIN;
    f->p.min_age_ms = 0;
    f->p.cooldown_ms = 0;
    f->p.retry_max_ms = 5 * MIN;
    f->p.hold_recheck_ms = 30 * SEC;
    f->p.clamp_future_ms = 24 * 60 * MIN;
    f->p.max_concurrent = 4;
    f->p.max_pending = 100000;
    f->p.rand01 = fixed_rand;
    f->p.rand_ud = &f->rnd;
    f->rnd = 0.5;
}

static void fx_open(fx *f)
{
    f->q = queue_new(&f->p, on_change, &f->r);
    assert_non_null(f->q);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    params_default(f);
    fx_open(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    queue_free(f->q);
    free(f);
    return 0;
}

/* Re-create the queue with changed params (call after editing f->p). */
static void fx_reopen(fx *f)
{
    queue_free(f->q);
    memset(&f->r, 0, sizeof f->r);
    fx_open(f);
}

/* One pending delivery to library "1" of the target "plex": what most events carry. */
static const q_delivery PLEX1[] = {{.target = "plex", .library = "1", .state = DELIVERY_PENDING}};

/* An event for `path` with the deliveries given (n may be 0). */
/* For q_entry literals given to queue_restore (which copies them). */
#define DELIV_PLEX1 .deliv = (q_delivery *)(uintptr_t)PLEX1, .n_deliv = 1

static q_add_result add_ev_d(fx *f, const char *path, const q_delivery *deliv, size_t n, const char *file, uint64_t at,
                             bool manual, unsigned src)
{
    const char *files[1] = {file};
    q_event ev = {
        .path = path,
        .deliv = deliv,
        .n_deliv = n,
        .kinds = QKIND_IMPORT,
        .files = file ? files : NULL,
        .n_files = file ? 1 : 0,
        .source_bit = src,
        .manual = manual,
        .at = at,
    };
    q_add_result res;
    memset(&res, 0, sizeof res);
    assert_int_equal(queue_add(f->q, &ev, at, &res), 0);
    assert_non_null(res.entry);
    return res;
}

static q_add_result add_ev(fx *f, const char *path, const char *file, uint64_t at, bool manual, unsigned src)
{
    return add_ev_d(f, path, PLEX1, 1, file, at, manual, src);
}

static q_entry *add(fx *f, const char *path, uint64_t at)
{
    return add_ev(f, path, NULL, at, false, SONARR).entry;
}

static bool has_file(const q_entry *e, const char *file)
{
    for (size_t i = 0; i < e->n_files; i++) {
        char *p = queue_file_path(e, i);
        bool hit = strcmp(p, file) == 0;
        free(p);
        if (hit)
            return true;
    }
    return false;
}

/* Takes the next entry, asserting it is `path`; starts its sync. */
static q_entry *take(fx *f, uint64_t now, const char *path)
{
    bool needs_age = true;
    q_entry *e = queue_take_ready(f->q, now, &needs_age);
    assert_non_null(e);
    assert_string_equal(e->path, path);
    assert_int_equal(e->state, ENTRY_CHECKING);
    return e;
}

static q_entry *take_and_sync(fx *f, uint64_t now, const char *path)
{
    q_entry *e = take(f, now, path);
    queue_sync_started(f->q, e, now);
    assert_int_equal(e->state, ENTRY_SYNCING);
    return e;
}

/* What the owner does for an attempt where every step succeeded: each delivery still to send is
 * reported done (one change each), then the attempt ends OK. Returns what queue_sync_done does. */
static void deliver_all(fx *f, q_entry *e)
{
    for (size_t i = 0; i < e->n_deliv; i++)
        if (e->deliv[i].state == DELIVERY_PENDING || e->deliv[i].state == DELIVERY_RETRY)
            queue_delivery_set(f->q, e, i, DELIVERY_DONE, NULL);
}

static q_entry *sync_ok(fx *f, q_entry *e, uint64_t now)
{
    deliver_all(f, e);
    return queue_sync_done(f->q, e, SYNC_OK, NULL, now, NULL);
}

/* queue_age_checked, asserting what it returns: e itself while it is old enough. */
static q_entry *age_check(fx *f, q_entry *e, uint64_t newest, uint64_t now, bool *old_enough)
{
    q_entry *next = queue_age_checked(f->q, e, newest, now, old_enough);
    assert_non_null(next);
    if (*old_enough) {
        assert_ptr_equal(next, e);
        assert_int_equal(next->state, ENTRY_CHECKING);
    }
    return next;
}

/* ---- debounce ---- */

static void test_burst_for_one_folder_is_one_entry_due_at_last_event_plus_delay(void **state)
{
    fx *f = *state;
    uint64_t t = T0;
    for (int i = 0; i < 25; i++) {
        char file[64];
        snprintf(file, sizeof file, "/tv/Show/Season 1/E%02d.mkv", i + 1);
        q_add_result r = add_ev(f, "/tv/Show/Season 1", file, t, false, SONARR);
        assert_int_equal(r.kind, i == 0 ? QADD_NEW : QADD_MERGED);
        if (i < 24)
            t += SEC;
    }
    assert_int_equal(queue_count(f->q), 1);
    q_entry *e = queue_find(f->q, "/tv/Show/Season 1");
    assert_non_null(e);
    assert_int_equal(e->events, 25);
    assert_int_equal(e->n_files, 25);
    assert_int_equal(e->first_seen, T0);
    assert_int_equal(e->last_event, t);
    assert_int_equal(e->due, t + 30 * SEC);
    assert_int_equal(e->state, ENTRY_WAITING);
    assert_int_equal(queue_next_wakeup(f->q), t + 30 * SEC);
    assert_int_equal(f->r.puts, 25);
    assert_int_equal(f->r.dels, 0);

    bool age = true;
    assert_null(queue_take_ready(f->q, t + 30 * SEC - 1, &age));
    assert_false(age);
    take(f, t + 30 * SEC, "/tv/Show/Season 1");
}

static void test_max_delay_caps_a_steady_stream(void **state)
{
    fx *f = *state;
    f->p.max_delay_ms = 2 * MIN;
    fx_reopen(f);
    for (uint64_t t = T0; t <= T0 + 5 * MIN; t += 10 * SEC) {
        add(f, "/tv/Busy", t);
        if (t >= T0 + 2 * MIN)
            break;
    }
    q_entry *e = queue_find(f->q, "/tv/Busy");
    assert_int_equal(e->due, T0 + 2 * MIN);
    take(f, T0 + 2 * MIN, "/tv/Busy");
}

static void test_files_are_capped_at_queue_max_files(void **state)
{
    fx *f = *state;
    for (int i = 0; i < QUEUE_MAX_FILES + 10; i++) {
        char file[64];
        snprintf(file, sizeof file, "/tv/Big/f%03d.mkv", i);
        add_ev(f, "/tv/Big", file, T0 + (uint64_t)i, false, SONARR);
    }
    q_entry *e = queue_find(f->q, "/tv/Big");
    assert_int_equal(e->n_files, QUEUE_MAX_FILES);
    assert_int_equal(e->events, QUEUE_MAX_FILES + 10);
    /* a file already present is not stored twice */
    add_ev(f, "/tv/Big", "/tv/Big/f000.mkv", T0 + 100, false, SONARR);
    assert_int_equal(e->n_files, QUEUE_MAX_FILES);
}

/* ---- merge and absorb ---- */

static void test_event_below_a_waiting_folder_merges_into_it(void **state)
{
    fx *f = *state;
    q_entry *show = add_ev(f, "/tv/Show", "/tv/Show/a.mkv", T0, false, SONARR).entry;
    q_add_result r = add_ev(f, "/tv/Show/Season 1", "/tv/Show/Season 1/b.mkv", T0 + 5 * SEC, false, RADARR);
    assert_int_equal(r.kind, QADD_MERGED);
    assert_ptr_equal(r.entry, show);
    assert_int_equal(queue_count(f->q), 1);
    assert_true(has_file(show, "/tv/Show/a.mkv"));
    assert_true(has_file(show, "/tv/Show/Season 1/b.mkv")); /* files kept even when merged upward */
    assert_int_equal(show->sources, SONARR | RADARR);
    assert_int_equal(show->events, 2);
    assert_int_equal(show->due, T0 + 35 * SEC);

    /* a top folder is above everything under it, not beside it */
    q_entry *movies = add_ev(f, "/movies", NULL, T0, false, RADARR).entry;
    r = add_ev(f, "/movies/Film (2020)", NULL, T0 + SEC, false, RADARR);
    assert_int_equal(r.kind, QADD_MERGED);
    assert_ptr_equal(r.entry, movies);
    r = add_ev(f, "/tv/Other", NULL, T0 + SEC, false, SONARR);
    assert_int_equal(r.kind, QADD_NEW);
    assert_int_equal(queue_count(f->q), 3);
    /* the root folder is above every other folder: it absorbs them all, then takes every event */
    r = add_ev(f, "/", NULL, T0 + 2 * SEC, false, RADARR);
    assert_int_equal(r.kind, QADD_NEW);
    assert_int_equal(r.absorbed, 3);
    q_entry *root = r.entry;
    assert_int_equal(queue_count(f->q), 1);
    r = add_ev(f, "/music/Artist", NULL, T0 + 3 * SEC, false, SONARR);
    assert_int_equal(r.kind, QADD_MERGED);
    assert_ptr_equal(r.entry, root);
}

static void test_folder_with_common_prefix_is_not_nested(void **state)
{
    fx *f = *state;
    add(f, "/tv/Show 2/Season 1", T0);
    add(f, "/tv/Show2", T0);
    q_add_result r = add_ev(f, "/tv/Show", NULL, T0 + SEC, false, SONARR);
    assert_int_equal(r.kind, QADD_NEW);
    assert_int_equal(r.absorbed, 0);
    r = add_ev(f, "/tv/Show 2", NULL, T0 + SEC, false, SONARR);
    assert_int_equal(r.kind, QADD_NEW);
    assert_int_equal(r.absorbed, 1); /* "/tv/Show 2/Season 1" */
    r = add_ev(f, "/tv/Show/x", NULL, T0 + SEC, false, SONARR);
    assert_int_equal(r.kind, QADD_MERGED);
    assert_string_equal(r.entry->path, "/tv/Show");
    assert_int_equal(queue_count(f->q), 3);
    assert_non_null(queue_find(f->q, "/tv/Show2"));
}

static void test_new_entry_absorbs_descendants_with_their_files_attempts_and_backoff(void **state)
{
    fx *f = *state;
    f->rnd = 0.999;
    /* S1 fails once: RETRY, attempts 1, backoff about 5 s */
    add_ev(f, "/tv/Show/S1", "/tv/Show/S1/e1.mkv", T0, false, SONARR);
    q_entry *s1 = take_and_sync(f, T0 + 30 * SEC, "/tv/Show/S1");
    int64_t s1_id = s1->id;
    queue_sync_done(f->q, s1, SYNC_TRANSIENT, "connection refused", T0 + 40 * SEC, NULL);
    assert_int_equal(s1->state, ENTRY_RETRY);
    assert_int_equal(s1->attempts, 1);
    uint64_t backoff_end = s1->due;
    assert_true(backoff_end > T0 + 40 * SEC);
    /* push the backoff well beyond the ancestor's own window for the test: fail a few more */
    for (int i = 0; i < 4; i++) {
        q_entry *e = take_and_sync(f, s1->due, "/tv/Show/S1");
        queue_sync_done(f->q, e, SYNC_TRANSIENT, "refused", e->due, NULL);
    }
    assert_int_equal(s1->attempts, 5);
    backoff_end = s1->due;
    uint64_t now = backoff_end - 60 * SEC; /* the backoff ends 60 s from now */
    q_entry *s2 = add_ev(f, "/tv/Show/S2", "/tv/Show/S2/e1.mkv", now - 10 * SEC, false, RADARR).entry;
    int64_t s2_id = s2->id;

    memset(&f->r, 0, sizeof f->r);
    q_add_result r = add_ev(f, "/tv/Show", "/tv/Show/poster.jpg", now, false, SONARR);
    assert_int_equal(r.kind, QADD_NEW);
    assert_int_equal(r.absorbed, 2);
    q_entry *show = r.entry;
    assert_int_equal(queue_count(f->q), 1);
    assert_null(queue_find_id(f->q, s1_id));
    assert_null(queue_find_id(f->q, s2_id));
    assert_int_equal(show->first_seen, T0);
    assert_int_equal(show->attempts, 5);
    assert_int_equal(show->state, ENTRY_WAITING);
    assert_int_equal(show->sources, SONARR | RADARR);
    assert_int_equal(show->n_files, 3);
    assert_true(has_file(show, "/tv/Show/S1/e1.mkv"));
    assert_true(has_file(show, "/tv/Show/S2/e1.mkv"));
    assert_true(has_file(show, "/tv/Show/poster.jpg"));
    assert_int_equal(show->events, 3); /* retries are not events */
    assert_int_equal(show->due, backoff_end); /* max(own window, absorbed backoff) */
    /* two DELs (absorbed), then the PUT of the new entry */
    assert_int_equal(f->r.dels, 2);
    assert_int_equal(f->r.puts, 1);
    assert_int_equal(f->r.last_put_id, show->id);

    /* a later event recomputes the window but never shortens the absorbed backoff */
    add_ev(f, "/tv/Show/S3", NULL, now + SEC, false, SONARR);
    assert_int_equal(show->due, backoff_end);
    assert_null(queue_take_ready(f->q, backoff_end - 1, NULL));
    take(f, backoff_end, "/tv/Show");
}

static void test_absorbed_parked_entry_leaves_the_new_entry_waiting(void **state)
{
    fx *f = *state;
    add(f, "/tv/Show/S1", T0);
    q_entry *e = take_and_sync(f, T0 + 30 * SEC, "/tv/Show/S1");
    queue_sync_done(f->q, e, SYNC_PARKED, "PLEX_TOKEN: Plex answered 401", T0 + 31 * SEC, NULL);
    assert_int_equal(e->state, ENTRY_PARKED);
    q_add_result r = add_ev(f, "/tv/Show", NULL, T0 + MIN, false, SONARR);
    assert_int_equal(r.absorbed, 1);
    assert_int_equal(r.entry->state, ENTRY_WAITING);
    assert_null(r.entry->park_reason);
    assert_int_equal(r.entry->due, T0 + MIN + 30 * SEC);
}

/* ---- syncing entries ---- */

static void test_event_during_sync_sets_dirty_and_reruns_after_cooldown(void **state)
{
    fx *f = *state;
    f->p.cooldown_ms = 5 * MIN;
    fx_reopen(f);
    add(f, "/tv/Show/S1", T0);
    q_entry *e = take_and_sync(f, T0 + 30 * SEC, "/tv/Show/S1");
    q_add_result r = add_ev(f, "/tv/Show/S1", "/tv/Show/S1/new.mkv", T0 + 40 * SEC, false, RADARR);
    assert_int_equal(r.kind, QADD_DIRTY);
    assert_ptr_equal(r.entry, e);
    r = add_ev(f, "/tv/Show/S1/extras", NULL, T0 + 50 * SEC, false, SONARR);
    assert_int_equal(r.kind, QADD_DIRTY);
    assert_true(e->dirty);
    assert_int_equal(e->dirty_first, T0 + 40 * SEC);
    assert_int_equal(e->last_event, T0 + 50 * SEC);
    assert_true(has_file(e, "/tv/Show/S1/new.mkv"));
    assert_int_equal(queue_count(f->q), 1);
    assert_int_equal(queue_next_wakeup(f->q), UINT64_MAX);

    uint64_t end = T0 + 60 * SEC;
    sync_ok(f, e, end);
    assert_int_equal(e->state, ENTRY_WAITING);
    assert_false(e->dirty);
    assert_int_equal(e->attempts, 0);
    assert_int_equal(e->first_seen, T0 + 40 * SEC);
    assert_int_equal(e->due, end + 5 * MIN); /* max(debounce due, end + cooldown) */
    assert_int_equal(f->r.last_put_id, e->id);
    assert_int_equal(f->r.last_put_state, ENTRY_WAITING);
    assert_null(queue_take_ready(f->q, end + 5 * MIN - 1, NULL));
    take(f, end + 5 * MIN, "/tv/Show/S1");
}

static void test_event_during_checking_counts_as_dirty(void **state)
{
    fx *f = *state;
    add(f, "/tv/Show/S1", T0);
    q_entry *e = take(f, T0 + 30 * SEC, "/tv/Show/S1");
    q_add_result r = add_ev(f, "/tv/Show/S1", NULL, T0 + 31 * SEC, false, SONARR);
    assert_int_equal(r.kind, QADD_DIRTY);
    assert_true(e->dirty);
    queue_sync_started(f->q, e, T0 + 32 * SEC);
    sync_ok(f, e, T0 + 40 * SEC);
    assert_int_equal(e->state, ENTRY_WAITING);
    assert_int_equal(e->due, T0 + 61 * SEC);
}

static void test_clean_sync_removes_the_entry(void **state)
{
    fx *f = *state;
    add(f, "/tv/Show/S1", T0);
    q_entry *e = take_and_sync(f, T0 + 30 * SEC, "/tv/Show/S1");
    int64_t id = e->id;
    deliver_all(f, e);
    assert_int_equal(e->deliv[0].state, DELIVERY_DONE);
    unsigned puts = f->r.puts;
    bool over = false;
    assert_null(queue_sync_done(f->q, e, SYNC_OK, NULL, T0 + 31 * SEC, &over));
    assert_true(over);
    assert_int_equal(queue_count(f->q), 0);
    assert_int_equal(f->r.dels, 1);
    assert_int_equal(f->r.last_del_id, id);
    assert_int_equal(f->r.puts, puts);
    assert_int_equal(queue_next_wakeup(f->q), UINT64_MAX);
}

static void test_ancestor_waits_for_nested_sync_then_absorbs_its_retry(void **state)
{
    fx *f = *state;
    f->rnd = 0.5;
    add_ev(f, "/tv/Show/S1", "/tv/Show/S1/a.mkv", T0, false, SONARR);
    q_entry *s1 = take_and_sync(f, T0 + 30 * SEC, "/tv/Show/S1");
    int64_t s1_id = s1->id;
    q_add_result r = add_ev(f, "/tv/Show", "/tv/Show/b.mkv", T0 + 35 * SEC, false, SONARR);
    assert_int_equal(r.kind, QADD_NEW);
    assert_int_equal(r.absorbed, 0); /* a syncing entry is never absorbed */
    q_entry *show = r.entry;
    /* a later event below the syncing entry goes to the waiting ancestor: merge wins */
    r = add_ev(f, "/tv/Show/S1", "/tv/Show/S1/c.mkv", T0 + 36 * SEC, false, SONARR);
    assert_int_equal(r.kind, QADD_MERGED);
    assert_ptr_equal(r.entry, show);
    assert_false(s1->dirty);

    /* due, but nested with a syncing entry: READY, not started, no busy wake-up */
    assert_null(queue_take_ready(f->q, T0 + 70 * SEC, NULL));
    assert_int_equal(show->state, ENTRY_READY);
    assert_int_equal(queue_next_wakeup(f->q), UINT64_MAX);

    memset(&f->r, 0, sizeof f->r);
    uint64_t end = T0 + 80 * SEC;
    assert_ptr_equal(queue_sync_done(f->q, s1, SYNC_TRANSIENT, "Plex answered 503", end, NULL), show);
    assert_null(queue_find_id(f->q, s1_id));
    assert_int_equal(queue_count(f->q), 1);
    assert_int_equal(f->r.dels, 1);
    assert_int_equal(f->r.del_ids[0], s1_id);
    assert_int_equal(f->r.last_put_id, show->id);
    assert_int_equal(show->attempts, 1);
    assert_true(has_file(show, "/tv/Show/S1/a.mkv"));
    assert_string_equal(show->last_error, "Plex answered 503");
    uint64_t backoff_end = end + 2500; /* 0.5 * 5 s */
    assert_int_equal(show->due, backoff_end);
    assert_int_equal(queue_next_wakeup(f->q), backoff_end);
    assert_null(queue_take_ready(f->q, backoff_end - 1, NULL));
    take(f, backoff_end, "/tv/Show");
}

static void test_ancestor_absorbs_the_dirty_rerun_of_a_nested_sync(void **state)
{
    fx *f = *state;
    add(f, "/tv/Show/S1", T0);
    q_entry *s1 = take_and_sync(f, T0 + 30 * SEC, "/tv/Show/S1");
    add_ev(f, "/tv/Show/S1", "/tv/Show/S1/late.mkv", T0 + 31 * SEC, false, SONARR); /* dirty */
    q_entry *show = add(f, "/tv/Show", T0 + 32 * SEC);
    assert_null(queue_take_ready(f->q, T0 + 62 * SEC, NULL));
    assert_ptr_equal(sync_ok(f, s1, T0 + 70 * SEC), show);
    assert_int_equal(queue_count(f->q), 1);
    assert_true(has_file(show, "/tv/Show/S1/late.mkv"));
    assert_int_equal(show->first_seen, T0 + 31 * SEC);
    take(f, T0 + 70 * SEC, "/tv/Show");
}

static void test_ancestor_starts_when_nested_sync_ends_cleanly(void **state)
{
    fx *f = *state;
    add(f, "/tv/Show/S1", T0);
    q_entry *s1 = take_and_sync(f, T0 + 30 * SEC, "/tv/Show/S1");
    add(f, "/tv/Show", T0 + 32 * SEC);
    add(f, "/tv/Other", T0 + 33 * SEC);
    /* the blocked ancestor does not stop unrelated work */
    take(f, T0 + 70 * SEC, "/tv/Other");
    assert_int_equal(queue_count_state(f->q, ENTRY_READY), 1);
    assert_null(sync_ok(f, s1, T0 + 80 * SEC)); /* nothing left of s1 */
    assert_true(queue_next_wakeup(f->q) <= T0 + 80 * SEC);
    bool age = true;
    q_entry *e = queue_take_ready(f->q, T0 + 80 * SEC, &age);
    assert_non_null(e);
    assert_string_equal(e->path, "/tv/Show");
    assert_false(age); /* MINIMUM_AGE is 0 */
}

static void test_ancestor_absorbs_a_nested_entry_sent_back_to_age(void **state)
{
    fx *f = *state;
    f->p.min_age_ms = 5 * MIN;
    fx_reopen(f);
    add_ev(f, "/tv/Show/S1", "/tv/Show/S1/a.mkv", T0, false, SONARR);
    bool age = false;
    q_entry *s1 = queue_take_ready(f->q, T0 + 30 * SEC, &age);
    assert_true(age);
    int64_t s1_id = s1->id;
    q_entry *show = add(f, "/tv/Show", T0 + 31 * SEC);
    assert_null(queue_take_ready(f->q, T0 + 61 * SEC, NULL)); /* blocked by the checking S1 */
    bool old_enough = true;
    assert_ptr_equal(age_check(f, s1, T0 + 60 * SEC, T0 + 62 * SEC, &old_enough), show);
    assert_false(old_enough);
    assert_null(queue_find_id(f->q, s1_id));
    assert_int_equal(f->r.last_del_id, s1_id);
    assert_true(has_file(show, "/tv/Show/S1/a.mkv"));
    assert_int_equal(queue_count(f->q), 1);
    q_entry *e = queue_take_ready(f->q, T0 + 62 * SEC, &age);
    assert_ptr_equal(e, show);
    assert_true(age); /* the ancestor checks the age of every file it carries */
}

static void test_restored_nested_entries_become_one_scan(void **state)
{
    fx *f = *state;
    uint64_t now = T0 + MIN;
    q_entry show = {.id = 1, .path = "/tv/Show", DELIV_PLEX1, .first_seen = T0,
                    .last_event = T0, .due = T0, .state = ENTRY_READY, .events = 1};
    q_entry s1 = {.id = 2, .path = "/tv/Show/S1", DELIV_PLEX1, .first_seen = T0,
                  .last_event = T0, .due = T0, .state = ENTRY_SYNCING, .events = 2};
    assert_int_equal(queue_restore(f->q, &show, now), 0);
    assert_int_equal(queue_restore(f->q, &s1, now), 0);
    q_entry *e = take(f, now, "/tv/Show");
    assert_int_equal(e->events, 3);
    assert_null(queue_find_id(f->q, 2));
    assert_int_equal(f->r.dels, 1);
    assert_null(queue_take_ready(f->q, now, NULL));
}

/* ---- take_ready ---- */

static void test_concurrency_limit_keeps_extra_entries_ready(void **state)
{
    fx *f = *state;
    f->p.max_concurrent = 2;
    fx_reopen(f);
    add(f, "/tv/A", T0);
    add(f, "/tv/B", T0 + 1);
    add(f, "/tv/C", T0 + 2);
    add(f, "/tv/D", T0 + 10 * MIN);
    uint64_t now = T0 + MIN;
    q_entry *a = take(f, now, "/tv/A");
    take(f, now, "/tv/B");
    assert_null(queue_take_ready(f->q, now, NULL));
    q_entry *c = queue_find(f->q, "/tv/C");
    assert_int_equal(c->state, ENTRY_READY);
    assert_int_equal(queue_count_state(f->q, ENTRY_CHECKING), 2);
    /* full: nothing can start before a slot frees, so no wake-up (not C's past due) */
    assert_int_equal(queue_next_wakeup(f->q), UINT64_MAX);
    queue_sync_started(f->q, a, now);
    sync_ok(f, a, now + SEC);
    assert_int_equal(queue_next_wakeup(f->q), c->due);
    take(f, now + SEC, "/tv/C");
}

static void test_a_folder_past_its_rclone_step_gives_its_slot_back(void **state)
{
    fx *f = *state;
    f->p.max_concurrent = 1;
    fx_reopen(f);
    add(f, "/tv/A/S1", T0);
    add(f, "/tv/B", T0 + 1);
    uint64_t now = T0 + MIN;
    q_entry *s1 = take_and_sync(f, now, "/tv/A/S1");
    add(f, "/tv/A", now); /* an ancestor of a syncing folder: it waits for it */
    assert_null(queue_take_ready(f->q, now, NULL)); /* the one slot is S1's */
    assert_int_equal(queue_next_wakeup(f->q), UINT64_MAX);
    queue_release_slot(f->q, s1);
    queue_release_slot(f->q, s1); /* twice is once */
    assert_int_equal(s1->state, ENTRY_SYNCING);
    assert_true(queue_next_wakeup(f->q) <= now);
    /* B is not nested with S1: it starts while S1's deliveries are still out */
    q_entry *b = take(f, now, "/tv/B");
    assert_null(queue_take_ready(f->q, now, NULL)); /* B holds the slot */
    queue_sync_started(f->q, b, now);
    queue_release_slot(f->q, b);
    /* a slot is free, but /tv/A is above syncing S1 (nested folders never sync at once) */
    assert_null(queue_take_ready(f->q, now + 10 * MIN, NULL));
    /* S1's end gives back no slot (it gave it already) and lets /tv/A go */
    sync_ok(f, s1, now + 10 * MIN);
    q_entry *a = take(f, now + 10 * MIN, "/tv/A");
    assert_null(queue_take_ready(f->q, now + 10 * MIN, NULL)); /* /tv/A holds the slot */
    queue_sync_started(f->q, a, now + 10 * MIN);
    sync_ok(f, a, now + 11 * MIN);
    sync_ok(f, b, now + 11 * MIN);
    assert_int_equal(queue_count(f->q), 0);
}

static void test_files_are_kept_relative_to_the_folder_and_rebased_when_folded(void **state)
{
    fx *f = *state;
    add_ev(f, "/tv/A/S1", "/tv/A/S1/x.mkv", T0, false, 1);
    q_entry *s1 = queue_find(f->q, "/tv/A/S1");
    assert_int_equal(s1->n_files, 1);
    assert_string_equal(s1->files[0], "x.mkv"); /* the folder's path is not kept twice */
    /* the ancestor absorbs S1: its file is now named from /tv/A */
    add_ev(f, "/tv/A", "/tv/A/y.mkv", T0 + 1, false, 1);
    q_entry *a = queue_find(f->q, "/tv/A");
    assert_null(queue_find(f->q, "/tv/A/S1"));
    assert_int_equal(a->n_files, 2);
    assert_string_equal(a->files[0], "y.mkv");
    assert_string_equal(a->files[1], "S1/x.mkv");
    assert_true(has_file(a, "/tv/A/S1/x.mkv"));
    /* the same file again is the same file */
    add_ev(f, "/tv/A/S1", "/tv/A/S1/x.mkv", T0 + 2, false, 1);
    assert_int_equal(queue_find(f->q, "/tv/A")->n_files, 2);
}

static void test_entries_are_taken_in_due_order(void **state)
{
    fx *f = *state;
    add(f, "/tv/Late", T0 + 20 * SEC);
    add(f, "/tv/Early", T0);
    add(f, "/tv/Middle", T0 + 10 * SEC);
    uint64_t now = T0 + 2 * MIN;
    take(f, now, "/tv/Early");
    take(f, now, "/tv/Middle");
    take(f, now, "/tv/Late");
    assert_null(queue_take_ready(f->q, now, NULL));
}

static void test_minimum_age_rearms_for_the_remainder(void **state)
{
    fx *f = *state;
    f->p.min_age_ms = 2 * MIN;
    fx_reopen(f);
    add(f, "/tv/Show/S1", T0);
    bool age = false;
    q_entry *e = queue_take_ready(f->q, T0 + 30 * SEC, &age);
    assert_non_null(e);
    assert_true(age);
    /* newest file written 20 s ago: 100 s to go */
    uint64_t now = T0 + 30 * SEC;
    bool old_enough = true;
    assert_ptr_equal(age_check(f, e, now - 20 * SEC, now, &old_enough), e); /* nothing took it over */
    assert_false(old_enough);
    assert_int_equal(e->state, ENTRY_AGING);
    assert_int_equal(e->due, now + 100 * SEC);
    assert_int_equal(f->r.last_put_state, ENTRY_AGING);
    assert_int_equal(queue_count_state(f->q, ENTRY_CHECKING), 0);
    assert_int_equal(queue_next_wakeup(f->q), now + 100 * SEC);
    /* an event while aging keeps the due (the age check sees it next time) */
    add(f, "/tv/Show/S1", now + SEC);
    assert_int_equal(e->due, now + 100 * SEC);
    e = queue_take_ready(f->q, now + 100 * SEC, &age);
    assert_non_null(e);
    assert_true(age);
    /* an mtime from the future (clock skew) counts as unknown: the last event decides */
    age_check(f, e, now + 10 * MIN, now + 200 * SEC, &old_enough);
    assert_true(old_enough);
}

static void test_an_age_with_no_file_read_is_counted_from_the_event_and_says_so(void **state)
{
    fx *f = *state;
    f->p.min_age_ms = 2 * MIN;
    fx_reopen(f);
    add(f, "/tv/Show/S1", T0);
    bool age = false, old_enough = true;
    q_entry *e = queue_take_ready(f->q, T0 + 30 * SEC, &age);
    /* no file could be read on this host: the event time decides, and the entry says so */
    age_check(f, e, 0, T0 + 30 * SEC, &old_enough);
    assert_false(old_enough);
    assert_int_equal(e->state, ENTRY_AGING);
    assert_int_equal(e->due, T0 + 2 * MIN);
    assert_true(e->age_unseen);
    /* the files are seen at the next check */
    e = queue_take_ready(f->q, T0 + 2 * MIN, &age);
    age_check(f, e, T0 + 90 * SEC, T0 + 2 * MIN, &old_enough);
    assert_false(old_enough);
    assert_false(e->age_unseen);
}

static void test_manual_event_skips_debounce_age_and_cooldown(void **state)
{
    fx *f = *state;
    f->p.min_age_ms = 5 * MIN;
    f->p.cooldown_ms = 10 * MIN;
    fx_reopen(f);
    queue_note_success(f->q, "/tv/Show", T0);
    q_add_result r = add_ev(f, "/tv/Show", NULL, T0 + SEC, true, 0);
    assert_int_equal(r.kind, QADD_NEW);
    assert_true(r.entry->manual);
    assert_int_equal(r.entry->due, T0 + SEC);
    bool age = true;
    q_entry *e = queue_take_ready(f->q, T0 + SEC, &age);
    assert_ptr_equal(e, r.entry);
    assert_false(age);

    /* a manual event into a waiting entry brings it forward */
    add(f, "/tv/Other", T0);
    r = add_ev(f, "/tv/Other/x", NULL, T0 + 2 * SEC, true, 0);
    assert_int_equal(r.kind, QADD_MERGED);
    assert_int_equal(r.entry->due, T0 + 2 * SEC);
}

static void test_cooldown_delays_a_new_entry_but_never_drops_it(void **state)
{
    fx *f = *state;
    f->p.cooldown_ms = 10 * MIN;
    fx_reopen(f);
    queue_note_success(f->q, "/tv/Show", T0);
    q_entry *e = add(f, "/tv/Show", T0 + MIN);
    assert_int_equal(e->due, T0 + 10 * MIN);
    /* another event recomputes the window, still not before the cooldown */
    add(f, "/tv/Show", T0 + 2 * MIN);
    assert_int_equal(e->due, T0 + 10 * MIN);
    /* a different key is not affected */
    assert_int_equal(add(f, "/tv/Other", T0 + MIN)->due, T0 + MIN + 30 * SEC);
    take(f, T0 + 10 * MIN - 1, "/tv/Other");
    assert_null(queue_take_ready(f->q, T0 + 10 * MIN - 1, NULL));
    take(f, T0 + 10 * MIN, "/tv/Show");
    /* a success older than the cooldown is forgotten and no longer delays */
    queue_note_success(f->q, "/tv/Old", T0 - 20 * MIN);
    assert_int_equal(add(f, "/tv/Old", T0 + MIN)->due, T0 + MIN + 30 * SEC);
}

static void test_success_older_than_cooldown_no_longer_delays(void **state)
{
    fx *f = *state;
    f->p.cooldown_ms = MIN;
    fx_reopen(f);
    char path[64];
    for (int i = 0; i < 10000; i++) {
        snprintf(path, sizeof path, "/tv/S%d", i);
        queue_note_success(f->q, path, T0 + (uint64_t)i * SEC);
    }
    /* successes more than a minute old are gone: the oldest no longer delays anything */
    assert_int_equal(add(f, "/tv/S0", T0 + 10000 * SEC)->due, T0 + 10030 * SEC);
    assert_int_equal(add(f, "/tv/S9999", T0 + 10000 * SEC)->due, T0 + 9999 * SEC + MIN);
}

/* ---- failures ---- */

static void test_retry_backoff_grows_with_full_jitter_bounded_by_retry_max(void **state)
{
    fx *f = *state;
    f->p.retry_max_ms = 60 * SEC;
    f->p.min_age_ms = MIN;
    fx_reopen(f);
    f->rnd = 1.0 - 1e-12; /* the top of the jitter range */
    add(f, "/tv/Flaky", T0);
    uint64_t now = T0 + MIN;
    q_entry *e = queue_take_ready(f->q, now, NULL);
    assert_non_null(e);
    bool old_enough = false;
    age_check(f, e, 0, now, &old_enough);
    assert_true(old_enough);
    uint64_t expect[] = {5000, 10000, 20000, 40000, 60000, 60000, 60000};
    for (size_t i = 0; i < ARRAY_SIZE(expect); i++) {
        queue_sync_started(f->q, e, now);
        queue_sync_done(f->q, e, SYNC_TRANSIENT, "timeout", now, NULL);
        assert_int_equal(e->state, ENTRY_RETRY);
        assert_int_equal(e->attempts, i + 1);
        assert_true(e->due >= now + expect[i] - 1 && e->due <= now + expect[i]);
        now = e->due;
        bool age = true;
        e = queue_take_ready(f->q, now, &age);
        assert_non_null(e);
        assert_false(age); /* retries skip the age check */
    }
    /* jitter at 0 retries at once; attempts far past 64 do not overflow the shift */
    f->rnd = 0.0;
    for (int i = 0; i < 100; i++) {
        queue_sync_started(f->q, e, now);
        queue_sync_done(f->q, e, SYNC_TRANSIENT, "timeout", now, NULL);
        assert_int_equal(e->due, now);
        e = queue_take_ready(f->q, now, NULL);
        assert_non_null(e);
    }
    f->rnd = 0.5;
    queue_sync_done(f->q, e, SYNC_TRANSIENT, NULL, now, NULL);
    assert_int_equal(e->due, now + 30 * SEC);
    assert_string_equal(e->last_error, "timeout"); /* NULL error keeps the previous text */
    /* events never reset the attempt count nor shorten the backoff */
    unsigned attempts = e->attempts;
    add(f, "/tv/Flaky", now + SEC);
    assert_int_equal(e->attempts, attempts);
    assert_int_equal(e->due, now + 30 * SEC);
    assert_int_equal(e->state, ENTRY_RETRY);
}

static void test_parked_entry_waits_until_unparked(void **state)
{
    fx *f = *state;
    add(f, "/tv/A", T0);
    add(f, "/tv/B", T0);
    q_entry *a = take_and_sync(f, T0 + MIN, "/tv/A");
    q_entry *b = take_and_sync(f, T0 + MIN, "/tv/B");
    queue_sync_done(f->q, a, SYNC_PARKED, "PLEX_TOKEN: Plex answered 401", T0 + MIN, NULL);
    queue_sync_done(f->q, b, SYNC_PARKED, "RCLONE_RC_USER: rclone answered 401", T0 + MIN, NULL);
    assert_int_equal(a->state, ENTRY_PARKED);
    assert_string_equal(a->park_reason, "PLEX_TOKEN: Plex answered 401");
    assert_int_equal(queue_count_state(f->q, ENTRY_PARKED), 2);
    assert_int_equal(queue_next_wakeup(f->q), UINT64_MAX);
    /* events still join it; it stays parked */
    q_add_result r = add_ev(f, "/tv/A", "/tv/A/x.mkv", T0 + 2 * MIN, false, SONARR);
    assert_int_equal(r.kind, QADD_MERGED);
    assert_int_equal(a->state, ENTRY_PARKED);
    assert_null(queue_take_ready(f->q, T0 + 60 * MIN, NULL));

    assert_int_equal(queue_unpark(f->q, a, T0 + 61 * MIN), 1);
    assert_int_equal(a->state, ENTRY_WAITING);
    assert_null(a->park_reason);
    assert_int_equal(a->due, T0 + 61 * MIN);
    assert_int_equal(queue_unpark(f->q, a, T0 + 61 * MIN), 0);
    assert_int_equal(queue_unpark_all(f->q, T0 + 61 * MIN), 1);
    assert_int_equal(b->state, ENTRY_WAITING);
    assert_int_equal(queue_count_state(f->q, ENTRY_PARKED), 0);
    take(f, T0 + 61 * MIN, "/tv/A");
    take(f, T0 + 61 * MIN, "/tv/B");
}

static void test_hold_rechecks_later_without_age(void **state)
{
    fx *f = *state;
    f->p.min_age_ms = MIN;
    fx_reopen(f);
    add(f, "/tv/Show", T0);
    q_entry *e = queue_take_ready(f->q, T0 + 2 * MIN, NULL);
    bool old_enough = false;
    age_check(f, e, 0, T0 + 2 * MIN, &old_enough);
    assert_true(old_enough);
    assert_ptr_equal(queue_hold(f->q, e, "anchor /mnt/media/.anchor missing", T0 + 2 * MIN), e);
    assert_int_equal(e->state, ENTRY_HELD);
    assert_string_equal(e->hold_reason, "anchor /mnt/media/.anchor missing");
    assert_int_equal(e->due, T0 + 2 * MIN + 30 * SEC);
    bool age = true;
    e = queue_take_ready(f->q, T0 + 2 * MIN + 30 * SEC, &age);
    assert_non_null(e);
    assert_false(age);
    queue_sync_started(f->q, e, T0 + 3 * MIN);
    sync_ok(f, e, T0 + 3 * MIN);
    assert_int_equal(queue_count(f->q), 0);
}

/* ---- lifetimes: what a report on a taken entry returns ---- */

/* ---- the wall clock stepping ---- */

static void test_a_clock_step_moves_every_wait_with_it(void **state)
{
    fx *f = *state;
    const uint64_t T = 10ull * 24 * 60 * MIN, DAY = 24ull * 60 * MIN;
    q_entry *e = add(f, "/tv/A", T);
    assert_true(e->due == T + 30 * SEC);
    queue_shift_time(f->q, -(int64_t)DAY);
    assert_true(e->first_seen == T - DAY);
    assert_true(e->due == T - DAY + 30 * SEC);
    bool needs_age;
    assert_null(queue_take_ready(f->q, T - DAY + 29 * SEC, &needs_age));
    take(f, T - DAY + 30 * SEC, "/tv/A"); /* what was left of the wait, no more */
    /* a step forward: a waiting folder is not made due by it */
    q_entry *b = add(f, "/tv/B", T - DAY);
    queue_shift_time(f->q, (int64_t)DAY);
    assert_true(b->due == T + 30 * SEC);
    assert_null(queue_take_ready(f->q, T + 29 * SEC, &needs_age));
}

/* ---- MAX_PENDING ---- */

static void test_a_full_queue_still_takes_events_that_add_no_entry(void **state)
{
    fx *f = *state;
    f->p.max_pending = 3;
    fx_reopen(f);
    add(f, "/tv/A", 0);
    add(f, "/tv/B", 0);
    add(f, "/tv/C", 0);
    q_entry *a = take_and_sync(f, 31 * SEC, "/tv/A");
    /* Full: a new folder is refused, and nothing changes. */
    assert_false(queue_takes_without_growing(f->q, "/tv/D"));
    q_event d = {.path = "/tv/D", DELIV_PLEX1, .source_bit = SONARR, .at = SEC};
    assert_int_equal(queue_add(f->q, &d, SEC, NULL), -ENOSPC);
    assert_int_equal(queue_count(f->q), 3);
    /* The same folder, one below a waiting folder, one below a syncing folder: all taken. */
    assert_true(queue_takes_without_growing(f->q, "/tv/B"));
    assert_true(queue_takes_without_growing(f->q, "/tv/C/Season 01"));
    assert_true(queue_takes_without_growing(f->q, "/tv/A/Season 02"));
    assert_int_equal(add_ev(f, "/tv/B", NULL, 32 * SEC, false, SONARR).kind, QADD_MERGED);
    assert_int_equal(add_ev(f, "/tv/C/Season 01", NULL, 32 * SEC, false, SONARR).kind, QADD_MERGED);
    q_add_result r = add_ev(f, "/tv/A/Season 02", "/tv/A/Season 02/e.mkv", 32 * SEC, false, SONARR);
    assert_int_equal(r.kind, QADD_DIRTY);
    assert_ptr_equal(r.entry, a);
    assert_true(a->dirty);
    assert_int_equal(queue_count(f->q), 3);
}

static void test_sync_done_returns_the_entry_while_it_carries_its_own_work(void **state)
{
    fx *f = *state;
    add(f, "/tv/Show/S1", T0);
    q_entry *e = take_and_sync(f, T0 + MIN, "/tv/Show/S1");
    int64_t id = e->id;

    assert_ptr_equal(queue_sync_done(f->q, e, SYNC_TRANSIENT, "Plex answered 503", T0 + MIN, NULL), e);
    assert_int_equal(e->state, ENTRY_RETRY);
    assert_ptr_equal(queue_find_id(f->q, id), e);

    e = take_and_sync(f, e->due, "/tv/Show/S1");
    assert_ptr_equal(queue_sync_done(f->q, e, SYNC_PARKED, "PLEX_TOKEN: Plex answered 401", T0 + 2 * MIN, NULL), e);
    assert_int_equal(e->state, ENTRY_PARKED);

    assert_int_equal(queue_unpark(f->q, e, T0 + 3 * MIN), 1);
    e = take_and_sync(f, T0 + 3 * MIN, "/tv/Show/S1");
    add(f, "/tv/Show/S1", T0 + 3 * MIN + SEC); /* dirty: it runs again */
    assert_ptr_equal(sync_ok(f, e, T0 + 4 * MIN), e);
    assert_int_equal(e->state, ENTRY_WAITING);

    e = take_and_sync(f, e->due, "/tv/Show/S1");
    assert_null(sync_ok(f, e, T0 + 5 * MIN)); /* clean: freed */
    assert_null(queue_find_id(f->q, id));
    assert_int_equal(f->r.last_del_id, id);
    assert_int_equal(queue_count(f->q), 0);
}

typedef enum { END_TRANSIENT, END_PARKED, END_DIRTY_OK, END_HOLD_CHECKING, END_HOLD_SYNCING, END_TOO_YOUNG } end_kind;

/* Ends the sync (or check) of s1 as `how`; returns what the queue answered. */
static q_entry *end_nested(fx *f, q_entry *s1, end_kind how, uint64_t now)
{
    bool old_enough = true;
    switch (how) {
    case END_TRANSIENT:
        return queue_sync_done(f->q, s1, SYNC_TRANSIENT, "Plex answered 503", now, NULL);
    case END_PARKED:
        return queue_sync_done(f->q, s1, SYNC_PARKED, "PLEX_TOKEN: Plex answered 401", now, NULL);
    case END_DIRTY_OK:
        return sync_ok(f, s1, now);
    case END_HOLD_CHECKING:
    case END_HOLD_SYNCING:
        return queue_hold(f->q, s1, "anchor /mnt/media/.anchor missing", now);
    case END_TOO_YOUNG:
    default: {
        q_entry *next = age_check(f, s1, now, now, &old_enough);
        assert_false(old_enough);
        return next;
    }
    }
}

static void test_waiting_ancestor_takes_over_a_nested_entry_and_is_what_the_report_returns(void **state)
{
    fx *f = *state;
    for (end_kind how = END_TRANSIENT; how <= END_TOO_YOUNG; how++) {
        f->p.min_age_ms = how == END_TOO_YOUNG ? 5 * MIN : 0;
        fx_reopen(f);
        add_ev(f, "/tv/Show/S1", "/tv/Show/S1/a.mkv", T0, false, SONARR);
        q_entry *s1 = queue_take_ready(f->q, T0 + 30 * SEC, NULL);
        assert_non_null(s1);
        if (how != END_HOLD_CHECKING && how != END_TOO_YOUNG)
            queue_sync_started(f->q, s1, T0 + 30 * SEC);
        if (how == END_DIRTY_OK)
            add_ev(f, "/tv/Show/S1", "/tv/Show/S1/late.mkv", T0 + 31 * SEC, false, SONARR);
        int64_t s1_id = s1->id;
        q_entry *show = add(f, "/tv/Show", T0 + 32 * SEC);
        int64_t show_id = show->id;
        assert_null(queue_take_ready(f->q, T0 + 70 * SEC, NULL)); /* it waits for S1 */

        q_entry *next = end_nested(f, s1, how, T0 + 80 * SEC);
        s1 = NULL; /* freed: only `next` may be touched now */
        assert_ptr_equal(next, show);
        assert_int_equal(next->id, show_id);
        assert_null(queue_find_id(f->q, s1_id));
        assert_int_equal(f->r.last_del_id, s1_id);
        assert_int_equal(queue_count(f->q), 1);
        assert_true(has_file(next, "/tv/Show/S1/a.mkv"));
        if (how == END_DIRTY_OK)
            assert_true(has_file(next, "/tv/Show/S1/late.mkv"));
        if (how == END_TRANSIENT)
            assert_int_equal(next->attempts, 1);
        /* the returned entry is the one that runs next, for both folders */
        q_entry *e = queue_take_ready(f->q, next->due > T0 + 80 * SEC ? next->due : T0 + 80 * SEC, NULL);
        assert_ptr_equal(e, next);
        assert_string_equal(e->path, "/tv/Show");
    }
}

#ifndef NDEBUG /* the asserts are compiled in */
/* Runs fn(f) in a child; true when the child stopped with SIGABRT (a failed assert). */
static bool aborts(fx *f, void (*fn)(fx *f))
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGABRT, SIG_DFL);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, STDERR_FILENO); /* the assert's message is expected */
        fn(f);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

static q_entry *waiting_entry(fx *f)
{
    q_entry *e = queue_find(f->q, "/tv/Waiting");
    assert_non_null(e);
    assert_int_equal(e->state, ENTRY_WAITING);
    return e;
}

static void done_on_waiting(fx *f)
{
    queue_sync_done(f->q, waiting_entry(f), SYNC_TRANSIENT, "x", T0, NULL);
}

static void hold_on_waiting(fx *f)
{
    queue_hold(f->q, waiting_entry(f), "x", T0);
}

static void started_on_waiting(fx *f)
{
    queue_sync_started(f->q, waiting_entry(f), T0);
}

static void age_on_syncing(fx *f)
{
    bool old_enough;
    queue_age_checked(f->q, queue_find(f->q, "/tv/Syncing"), 0, T0 + MIN, &old_enough);
}

static void started_twice(fx *f)
{
    queue_sync_started(f->q, queue_find(f->q, "/tv/Syncing"), T0 + MIN);
}

static void test_report_on_an_entry_in_the_wrong_state_stops_at_an_assert(void **state)
{
    fx *f = *state;
    add(f, "/tv/Syncing", T0);
    take_and_sync(f, T0 + MIN, "/tv/Syncing");
    add(f, "/tv/Waiting", T0 + MIN);
    assert_true(aborts(f, done_on_waiting));
    assert_true(aborts(f, hold_on_waiting));
    assert_true(aborts(f, started_on_waiting));
    assert_true(aborts(f, age_on_syncing));
    assert_true(aborts(f, started_twice));
    /* nothing changed here: the children had their own copy */
    assert_int_equal(waiting_entry(f)->state, ENTRY_WAITING);
    assert_int_equal(queue_count_state(f->q, ENTRY_SYNCING), 1);
}
#else
static void test_report_on_an_entry_in_the_wrong_state_stops_at_an_assert(void **state)
{
    (void)state;
    skip(); /* NDEBUG: asserts are compiled out (release build) */
}
#endif

/* ---- remap, restore, limits ---- */

/* What the fake map function answers for one path: rc 0 with the deliveries, 1 (no target holds
 * it) or negative (keep as it is). Paths without a rule answer -ENOENT. */
typedef struct map_rule {
    const char *path;
    int rc;
    q_delivery d[3];
    size_t n;
} map_rule;

typedef struct map_ctx {
    const map_rule *rules;
    char called[16][64]; /* the paths asked about */
    size_t n_called;
} map_ctx;

static int map_fn(void *ud, const char *path, q_delivery *out, size_t max, size_t *n)
{
    map_ctx *c = ud;
    if (c->n_called < 16)
        snprintf(c->called[c->n_called++], sizeof c->called[0], "%s", path);
    *n = 0;
    for (const map_rule *r = c->rules; r->path; r++) {
        if (strcmp(r->path, path) != 0)
            continue;
        for (size_t i = 0; i < r->n && i < max; i++)
            out[(*n)++] = r->d[i];
        return r->rc;
    }
    return -ENOENT; /* unknown: leave as it is */
}

static bool was_asked(const map_ctx *c, const char *path)
{
    for (size_t i = 0; i < c->n_called; i++)
        if (strcmp(c->called[i], path) == 0)
            return true;
    return false;
}

static const q_delivery UNRES_PLEX[] = {{.target = "plex", .library = "", .state = DELIVERY_UNRESOLVED}};

static void test_remap_resolves_unresolved_entries_removes_unheld_ones_and_keeps_unknown_ones(void **state)
{
    fx *f = *state;
    /* unresolved entries: no timer */
    q_add_result r1 = add_ev_d(f, "/data/tv/Show", UNRES_PLEX, 1, "/data/tv/Show/a.mkv", T0, false, SONARR);
    assert_int_equal(r1.entry->state, ENTRY_UNRESOLVED);
    assert_int_equal(queue_next_wakeup(f->q), UINT64_MAX);
    add_ev_d(f, "/data/tv/Show", UNRES_PLEX, 1, "/data/tv/Show/b.mkv", T0 + SEC, false, RADARR);
    add_ev_d(f, "/data/both/Film", UNRES_PLEX, 1, NULL, T0 + 2 * SEC, false, RADARR);
    add_ev_d(f, "/data/gone", UNRES_PLEX, 1, NULL, T0 + 2 * SEC, false, RADARR);
    add_ev_d(f, "/data/unknown", UNRES_PLEX, 1, NULL, T0 + 2 * SEC, false, RADARR);
    add(f, "/tv/Kept", T0 + 2 * SEC);
    assert_int_equal(queue_count(f->q), 5);
    assert_int_equal(queue_count_state(f->q, ENTRY_UNRESOLVED), 4);

    map_rule rules[] = {
        {"/data/tv/Show", 0, {{.target = "plex", .library = "1"}}, 1},
        /* two libraries hold it: two deliveries */
        {"/data/both/Film", 0, {{.target = "plex", .library = "1"}, {.target = "plex", .library = "2"}}, 2},
        {"/data/gone", 1, {{0}}, 0},
        {"/tv/Kept", 0, {{.target = "plex", .library = "1"}}, 1},
        {NULL, 0, {{0}}, 0},
    };
    map_ctx c = {.rules = rules};
    memset(&f->r, 0, sizeof f->r);
    uint64_t now = T0 + MIN;
    assert_int_equal(queue_remap(f->q, map_fn, &c, now), 3); /* two resolved, one removed */
    assert_int_equal(queue_count(f->q), 4);
    q_entry *show = queue_find(f->q, "/data/tv/Show");
    assert_non_null(show);
    assert_int_equal(show->state, ENTRY_WAITING);
    assert_int_equal(show->due, T0 + SEC + 30 * SEC); /* the window from its own events */
    assert_int_equal(show->events, 2);
    assert_int_equal(show->sources, SONARR | RADARR);
    assert_true(has_file(show, "/data/tv/Show/a.mkv"));
    assert_true(has_file(show, "/data/tv/Show/b.mkv"));
    assert_int_equal(show->n_deliv, 1);
    assert_string_equal(show->deliv[0].library, "1");
    assert_int_equal(show->deliv[0].state, DELIVERY_PENDING);
    q_entry *film = queue_find(f->q, "/data/both/Film");
    assert_non_null(film);
    assert_int_equal(film->n_deliv, 2);
    assert_int_equal(q_entry_count_deliveries(film, DELIVERY_PENDING), 2);
    assert_int_equal(film->state, ENTRY_WAITING);
    assert_null(queue_find(f->q, "/data/gone"));
    assert_int_equal(queue_find(f->q, "/data/unknown")->state, ENTRY_UNRESOLVED);
    assert_int_equal(queue_find(f->q, "/tv/Kept")->state, ENTRY_WAITING);
    assert_int_equal(queue_count_state(f->q, ENTRY_UNRESOLVED), 1);
    assert_int_equal(f->r.dels, 1); /* the removed one */
    assert_int_equal(queue_next_wakeup(f->q), T0 + 31 * SEC);

    /* nothing changes on a second pass */
    memset(&f->r, 0, sizeof f->r);
    map_ctx again = {.rules = rules};
    assert_int_equal(queue_remap(f->q, map_fn, &again, now), 0);
    assert_int_equal(f->r.puts + f->r.dels, 0);
    assert_int_equal(queue_count(f->q), 4);
}

static void test_remap_puts_nested_entries_together_and_never_touches_syncing_entries(void **state)
{
    fx *f = *state;
    add(f, "/tv/Show/S1", T0);
    q_entry *busy = take_and_sync(f, T0 + MIN, "/tv/Show/S1");
    add(f, "/tv/Show", T0 + 2 * MIN); /* waits for the syncing one */
    /* restored entries may be nested: a remap folds them into one */
    q_entry low = {.id = 50, .path = "/tv/Low", DELIV_PLEX1, .first_seen = T0, .last_event = T0,
                   .due = T0 + 10 * MIN, .state = ENTRY_WAITING, .events = 1};
    q_entry low_s2 = {.id = 51, .path = "/tv/Low/S2", DELIV_PLEX1, .first_seen = T0 - MIN, .last_event = T0,
                      .due = T0 + 10 * MIN, .state = ENTRY_WAITING, .events = 2};
    assert_int_equal(queue_restore(f->q, &low, T0), 0);
    assert_int_equal(queue_restore(f->q, &low_s2, T0), 0);
    assert_int_equal(queue_count(f->q), 4);

    map_rule rules[] = {
        {"/tv/Show/S1", 1, {{0}}, 0}, /* would remove it, were it asked */
        {"/tv/Show", 0, {{.target = "plex", .library = "1"}, {.target = "jellyfin", .library = "abc"}}, 2},
        {NULL, 0, {{0}}, 0},
    };
    map_ctx c = {.rules = rules};
    int changed = queue_remap(f->q, map_fn, &c, T0 + 3 * MIN);
    assert_true(changed >= 2);
    assert_false(was_asked(&c, "/tv/Show/S1"));
    assert_true(was_asked(&c, "/tv/Show"));
    assert_int_equal(busy->state, ENTRY_SYNCING);
    assert_int_equal(busy->n_deliv, 1);
    assert_ptr_equal(queue_find(f->q, "/tv/Show/S1"), busy);
    assert_int_equal(queue_find(f->q, "/tv/Show")->n_deliv, 2);
    /* /tv/Low and /tv/Low/S2 are one entry now */
    q_entry *lowe = queue_find(f->q, "/tv/Low");
    assert_non_null(lowe);
    assert_null(queue_find(f->q, "/tv/Low/S2"));
    assert_int_equal(lowe->events, 3);
    assert_int_equal(lowe->first_seen, T0 - MIN);
    assert_int_equal(queue_count(f->q), 3);
}

/* ---- rounds: one delivery per target library ---- */

static const q_delivery PLEX_JF[] = {
    {.target = "plex", .library = "1", .state = DELIVERY_PENDING},
    {.target = "jellyfin", .library = "abc", .state = DELIVERY_PENDING},
};

static const q_delivery PLEX_JF_EMBY[] = {
    {.target = "plex", .library = "1", .state = DELIVERY_PENDING},
    {.target = "jellyfin", .library = "abc", .state = DELIVERY_PENDING},
    {.target = "emby", .library = "e1", .state = DELIVERY_PENDING},
};

static const q_delivery PLEX_EMBY_UNRES[] = {
    {.target = "plex", .library = "1", .state = DELIVERY_PENDING},
    {.target = "emby", .library = "", .state = DELIVERY_UNRESOLVED},
};

/* Index of the delivery to `target` in e (asserted present). */
static size_t deliv_of(const q_entry *e, const char *target)
{
    for (size_t i = 0; i < e->n_deliv; i++)
        if (strcmp(e->deliv[i].target, target) == 0)
            return i;
    fail_msg("no delivery to %s", target);
    return 0;
}

static delivery_state dstate(const q_entry *e, const char *target)
{
    return e->deliv[deliv_of(e, target)].state;
}

/* Deliveries that the next attempt sends. */
static size_t runnable(const q_entry *e)
{
    return q_entry_count_deliveries(e, DELIVERY_PENDING) + q_entry_count_deliveries(e, DELIVERY_RETRY);
}

/* An entry for /tv/Show with deliveries to plex and jellyfin whose first attempt delivered to plex
 * and failed transiently for jellyfin (rclone succeeded). Now RETRY. */
static q_entry *plex_done_jellyfin_retry(fx *f)
{
    add_ev_d(f, "/tv/Show", PLEX_JF, 2, "/tv/Show/a.mkv", T0, false, SONARR);
    q_entry *e = take_and_sync(f, T0 + 30 * SEC, "/tv/Show");
    assert_int_equal(runnable(e), 2);
    assert_false(e->rclone_done);
    queue_rclone_done(f->q, e, false);
    queue_delivery_set(f->q, e, deliv_of(e, "plex"), DELIVERY_DONE, "ignored for done");
    queue_delivery_set(f->q, e, deliv_of(e, "jellyfin"), DELIVERY_RETRY, "Jellyfin answered 503");
    bool over = true;
    assert_ptr_equal(queue_sync_done(f->q, e, SYNC_TRANSIENT, "Jellyfin answered 503", T0 + 31 * SEC, &over), e);
    assert_false(over);
    return e;
}

static void test_a_transient_failure_retries_only_what_is_not_done(void **state)
{
    fx *f = *state;
    q_entry *e = plex_done_jellyfin_retry(f);
    assert_int_equal(e->state, ENTRY_RETRY);
    assert_int_equal(e->attempts, 1);
    assert_int_equal(e->due, T0 + 31 * SEC + 2500); /* 0.5 * 5 s */
    assert_int_equal(dstate(e, "plex"), DELIVERY_DONE);
    assert_null(e->deliv[deliv_of(e, "plex")].error);
    assert_int_equal(dstate(e, "jellyfin"), DELIVERY_RETRY);
    assert_string_equal(e->deliv[deliv_of(e, "jellyfin")].error, "Jellyfin answered 503");
    assert_string_equal(e->last_error, "Jellyfin answered 503");
    assert_true(e->rclone_done); /* a retry does not repeat a successful rclone step */

    bool age = true;
    assert_null(queue_take_ready(f->q, e->due - 1, NULL));
    q_entry *again = queue_take_ready(f->q, T0 + 31 * SEC + 2500, &age);
    assert_ptr_equal(again, e);
    assert_false(age);
    queue_sync_started(f->q, e, T0 + 32 * SEC);
    assert_int_equal(runnable(e), 1); /* jellyfin only */
    assert_int_equal(dstate(e, "plex"), DELIVERY_DONE);
    assert_true(e->rclone_done);
    queue_delivery_set(f->q, e, deliv_of(e, "jellyfin"), DELIVERY_DONE, NULL);
    assert_null(e->deliv[deliv_of(e, "jellyfin")].error);
    bool over = false;
    assert_null(queue_sync_done(f->q, e, SYNC_OK, NULL, T0 + 33 * SEC, &over));
    assert_true(over);
    assert_int_equal(queue_count(f->q), 0);
}

static void test_a_new_event_renews_done_deliveries_and_the_rclone_step(void **state)
{
    fx *f = *state;
    q_entry *e = plex_done_jellyfin_retry(f);
    uint64_t backoff_end = e->due;
    /* an event below the folder merges into it: what was delivered is sent again */
    q_add_result r = add_ev(f, "/tv/Show/Season 1", "/tv/Show/Season 1/b.mkv", T0 + 32 * SEC, false, RADARR);
    assert_int_equal(r.kind, QADD_MERGED);
    assert_ptr_equal(r.entry, e);
    assert_int_equal(dstate(e, "plex"), DELIVERY_PENDING);
    assert_int_equal(dstate(e, "jellyfin"), DELIVERY_RETRY);
    assert_false(e->rclone_done);
    assert_int_equal(e->state, ENTRY_RETRY);
    assert_int_equal(e->due, backoff_end); /* the backoff is not shortened */
    assert_int_equal(e->attempts, 1);      /* nor the attempt count reset */
    assert_int_equal(e->n_deliv, 2);       /* the event's own delivery was already there */
    q_entry *t = take_and_sync(f, backoff_end, "/tv/Show");
    assert_int_equal(runnable(t), 2);

    /* the same for an event at the folder itself while it waits, and for rclone's "absent" */
    queue_rclone_done(f->q, t, true);
    assert_true(t->rclone_done);
    assert_true(t->rclone_absent); /* a retry of the deliveries still knows the folder is absent */
    queue_delivery_set(f->q, t, deliv_of(t, "plex"), DELIVERY_DONE, NULL);
    queue_delivery_set(f->q, t, deliv_of(t, "jellyfin"), DELIVERY_RETRY, "Jellyfin answered 502");
    queue_sync_done(f->q, t, SYNC_TRANSIENT, NULL, backoff_end + SEC, NULL);
    add_ev_d(f, "/tv/Show", PLEX_JF, 2, NULL, backoff_end + 2 * SEC, false, SONARR);
    assert_int_equal(dstate(t, "plex"), DELIVERY_PENDING);
    assert_int_equal(dstate(t, "jellyfin"), DELIVERY_RETRY);
    assert_false(t->rclone_done);
    assert_false(t->rclone_absent);
}

static void test_every_delivery_done_ends_the_round_and_starts_the_cooldown(void **state)
{
    fx *f = *state;
    f->p.cooldown_ms = 10 * MIN;
    fx_reopen(f);
    add_ev_d(f, "/tv/Show", PLEX_JF_EMBY, 3, NULL, T0, false, SONARR);
    add(f, "/tv/Other", T0);
    q_entry *e = take_and_sync(f, T0 + 30 * SEC, "/tv/Show");
    int64_t id = e->id;
    for (size_t i = 0; i < e->n_deliv; i++) {
        queue_delivery_set(f->q, e, i, DELIVERY_DONE, NULL);
        assert_int_equal(queue_count(f->q), 2); /* nothing ends before the attempt does */
    }
    bool over = false;
    uint64_t end = T0 + 40 * SEC;
    assert_null(queue_sync_done(f->q, e, SYNC_OK, NULL, end, &over));
    assert_true(over);
    assert_null(queue_find_id(f->q, id));
    assert_int_equal(f->r.last_del_id, id);
    /* the next event for that folder waits out the cooldown; another folder does not */
    assert_int_equal(add(f, "/tv/Show", end + SEC)->due, end + 10 * MIN);
    assert_int_equal(queue_find(f->q, "/tv/Other")->due, T0 + 30 * SEC);
}

static void test_a_parked_delivery_with_the_rest_done_parks_the_entry_with_its_error(void **state)
{
    fx *f = *state;
    add_ev_d(f, "/tv/Show", PLEX_JF_EMBY, 3, NULL, T0, false, SONARR);
    q_entry *e = take_and_sync(f, T0 + 30 * SEC, "/tv/Show");
    queue_delivery_set(f->q, e, deliv_of(e, "plex"), DELIVERY_DONE, NULL);
    queue_delivery_set(f->q, e, deliv_of(e, "jellyfin"), DELIVERY_PARKED, "JELLYFIN_TOKEN: Jellyfin answered 401");
    queue_delivery_set(f->q, e, deliv_of(e, "emby"), DELIVERY_DONE, NULL);
    bool over = false;
    assert_ptr_equal(queue_sync_done(f->q, e, SYNC_OK, NULL, T0 + 31 * SEC, &over), e);
    assert_true(over);
    assert_int_equal(e->state, ENTRY_PARKED);
    assert_string_equal(e->park_reason, "JELLYFIN_TOKEN: Jellyfin answered 401");
    assert_int_equal(dstate(e, "jellyfin"), DELIVERY_PARKED);
    assert_string_equal(e->deliv[deliv_of(e, "jellyfin")].error, "JELLYFIN_TOKEN: Jellyfin answered 401");
    assert_int_equal(q_entry_count_deliveries(e, DELIVERY_DONE), 2);
    assert_int_equal(f->r.last_put_state, ENTRY_PARKED);
    assert_int_equal(queue_count_state(f->q, ENTRY_PARKED), 1);
    assert_int_equal(queue_next_wakeup(f->q), UINT64_MAX);
    assert_null(queue_take_ready(f->q, T0 + HOUR_MS, NULL));
}

static void test_an_unresolved_delivery_left_keeps_the_round_open(void **state)
{
    fx *f = *state;
    q_entry *e = add_ev_d(f, "/tv/Show", PLEX_EMBY_UNRES, 2, NULL, T0, false, SONARR).entry;
    assert_int_equal(e->state, ENTRY_WAITING); /* plex can go now */
    e = take_and_sync(f, T0 + 30 * SEC, "/tv/Show");
    assert_int_equal(runnable(e), 1);
    queue_delivery_set(f->q, e, deliv_of(e, "plex"), DELIVERY_DONE, NULL);
    bool over = true;
    assert_ptr_equal(queue_sync_done(f->q, e, SYNC_OK, NULL, T0 + 31 * SEC, &over), e);
    assert_false(over);
    assert_int_equal(e->state, ENTRY_UNRESOLVED);
    assert_int_equal(dstate(e, "plex"), DELIVERY_DONE);
    assert_int_equal(dstate(e, "emby"), DELIVERY_UNRESOLVED);
    assert_int_equal(queue_count(f->q), 1);
    assert_int_equal(queue_count_state(f->q, ENTRY_UNRESOLVED), 1);
    assert_int_equal(queue_next_wakeup(f->q), UINT64_MAX);
    assert_null(queue_take_ready(f->q, T0 + HOUR_MS, NULL));
}

static void test_remap_resolving_a_placeholder_moves_the_entry_from_unresolved_to_waiting(void **state)
{
    fx *f = *state;
    add_ev_d(f, "/tv/Show", PLEX_EMBY_UNRES, 2, NULL, T0, false, SONARR);
    q_entry *e = take_and_sync(f, T0 + 30 * SEC, "/tv/Show");
    queue_delivery_set(f->q, e, deliv_of(e, "plex"), DELIVERY_DONE, NULL);
    queue_sync_done(f->q, e, SYNC_OK, NULL, T0 + 31 * SEC, NULL);
    assert_int_equal(e->state, ENTRY_UNRESOLVED);

    /* Emby's list arrives: the folder is in its library e9 */
    map_rule rules[] = {
        {"/tv/Show", 0, {{.target = "plex", .library = "1"}, {.target = "emby", .library = "e9"}}, 2},
        {NULL, 0, {{0}}, 0},
    };
    map_ctx c = {.rules = rules};
    memset(&f->r, 0, sizeof f->r);
    uint64_t now = T0 + 5 * MIN;
    assert_int_equal(queue_remap(f->q, map_fn, &c, now), 1);
    assert_int_equal(f->r.puts, 1);
    assert_int_equal(f->r.last_put_state, ENTRY_WAITING);
    assert_int_equal(e->state, ENTRY_WAITING);
    assert_int_equal(e->n_deliv, 2);
    assert_int_equal(dstate(e, "plex"), DELIVERY_DONE); /* delivered in this round: not again */
    assert_int_equal(dstate(e, "emby"), DELIVERY_PENDING);
    assert_string_equal(e->deliv[deliv_of(e, "emby")].library, "e9");
    assert_int_equal(q_entry_count_deliveries(e, DELIVERY_UNRESOLVED), 0);
    assert_int_equal(queue_next_wakeup(f->q), T0 + 30 * SEC); /* its window is long closed */
    q_entry *t = take_and_sync(f, now, "/tv/Show");
    assert_int_equal(runnable(t), 1);
    assert_int_equal(t->deliv[deliv_of(t, "emby")].state, DELIVERY_PENDING);
}

static void test_remap_answer_one_removes_and_a_negative_answer_keeps_the_entry(void **state)
{
    fx *f = *state;
    q_entry *gone = add(f, "/tv/Gone", T0);
    int64_t gone_id = gone->id;
    q_entry *kept = add(f, "/tv/Kept", T0 + SEC);
    map_rule rules[] = {
        {"/tv/Gone", 1, {{0}}, 0},
        /* a failed mapping: whatever it wrote does not count */
        {"/tv/Kept", -EIO, {{.target = "emby", .library = "x"}}, 1},
        {NULL, 0, {{0}}, 0},
    };
    map_ctx c = {.rules = rules};
    memset(&f->r, 0, sizeof f->r);
    assert_int_equal(queue_remap(f->q, map_fn, &c, T0 + MIN), 1);
    assert_null(queue_find(f->q, "/tv/Gone"));
    assert_null(queue_find_id(f->q, gone_id));
    assert_int_equal(f->r.dels, 1);
    assert_int_equal(f->r.last_del_id, gone_id);
    assert_int_equal(f->r.puts, 0); /* the kept one did not change */
    assert_ptr_equal(queue_find(f->q, "/tv/Kept"), kept);
    assert_int_equal(kept->state, ENTRY_WAITING);
    assert_int_equal(kept->due, T0 + 31 * SEC);
    assert_int_equal(kept->n_deliv, 1);
    assert_string_equal(kept->deliv[0].target, "plex");
    assert_int_equal(kept->deliv[0].state, DELIVERY_PENDING);
    assert_int_equal(queue_next_wakeup(f->q), T0 + 31 * SEC);
}

/* Runs one attempt of `path` with the given delivery results (NULL = done) and outcome. */
static q_entry *attempt(fx *f, const char *path, uint64_t now, const char *const *results, sync_outcome o,
                        const char *error)
{
    q_entry *e = take_and_sync(f, now, path);
    for (size_t i = 0; i < e->n_deliv; i++) {
        if (!results[i])
            queue_delivery_set(f->q, e, i, DELIVERY_DONE, NULL);
        else if (strncmp(results[i], "retry:", 6) == 0)
            queue_delivery_set(f->q, e, i, DELIVERY_RETRY, results[i] + 6);
        else if (strncmp(results[i], "park:", 5) == 0)
            queue_delivery_set(f->q, e, i, DELIVERY_PARKED, results[i] + 5);
        /* else: left as it is */
    }
    return queue_sync_done(f->q, e, o, error, now + SEC, NULL);
}

static void test_unpark_target_resumes_only_that_targets_deliveries(void **state)
{
    fx *f = *state;
    uint64_t t1 = T0 + 30 * SEC;
    /* X waits only for jellyfin */
    add_ev_d(f, "/tv/X", PLEX_JF, 2, NULL, T0, false, SONARR);
    q_entry *x = attempt(f, "/tv/X", t1, (const char *const[]){NULL, "park:JELLYFIN_TOKEN: 401"}, SYNC_OK, NULL);
    /* Y waits only for plex */
    add_ev_d(f, "/tv/Y", PLEX_JF, 2, NULL, T0, false, SONARR);
    q_entry *y = attempt(f, "/tv/Y", t1, (const char *const[]){"park:PLEX_TOKEN: 401", NULL}, SYNC_OK, NULL);
    /* Z is parked as a whole (rclone refused); its jellyfin delivery was never parked */
    add_ev_d(f, "/tv/Z", PLEX_JF + 1, 1, NULL, T0, false, SONARR);
    q_entry *z = attempt(f, "/tv/Z", t1, (const char *const[]){"keep"}, SYNC_PARKED, "RCLONE_RC_USER: rclone answered 401");
    /* V retries plex while its jellyfin delivery is parked */
    add_ev_d(f, "/tv/V", PLEX_JF, 2, NULL, T0, false, SONARR);
    q_entry *v = attempt(f, "/tv/V", t1, (const char *const[]){"retry:Plex answered 503", "park:JELLYFIN_TOKEN: 401"},
                         SYNC_TRANSIENT, "Plex answered 503");
    /* W has nothing parked */
    q_entry *w = add_ev_d(f, "/tv/W", PLEX_JF, 2, NULL, T0 + MIN, false, SONARR).entry;
    assert_int_equal(x->state, ENTRY_PARKED);
    assert_string_equal(x->park_reason, "JELLYFIN_TOKEN: 401");
    assert_int_equal(y->state, ENTRY_PARKED);
    assert_int_equal(z->state, ENTRY_PARKED);
    assert_int_equal(v->state, ENTRY_RETRY);
    uint64_t v_due = v->due, w_due = w->due;

    uint64_t now = t1 + 2 * SEC; /* before V's backoff ends */
    assert_true(now < v_due);
    memset(&f->r, 0, sizeof f->r);
    assert_int_equal(queue_unpark_target(f->q, "jellyfin", now), 2); /* X and V */
    assert_int_equal(f->r.puts, 2);
    assert_int_equal(x->state, ENTRY_WAITING);
    assert_int_equal(x->due, now);
    assert_null(x->park_reason);
    assert_int_equal(dstate(x, "jellyfin"), DELIVERY_PENDING);
    assert_null(x->deliv[deliv_of(x, "jellyfin")].error);
    assert_int_equal(dstate(x, "plex"), DELIVERY_DONE);
    assert_int_equal(v->state, ENTRY_RETRY); /* its backoff goes on */
    assert_int_equal(v->due, v_due);
    assert_int_equal(dstate(v, "jellyfin"), DELIVERY_PENDING);
    assert_int_equal(dstate(v, "plex"), DELIVERY_RETRY);
    assert_int_equal(y->state, ENTRY_PARKED);
    assert_int_equal(dstate(y, "plex"), DELIVERY_PARKED);
    assert_string_equal(y->park_reason, "PLEX_TOKEN: 401");
    assert_int_equal(z->state, ENTRY_PARKED);
    assert_string_equal(z->park_reason, "RCLONE_RC_USER: rclone answered 401");
    assert_int_equal(w->state, ENTRY_WAITING);
    assert_int_equal(w->due, w_due);
    /* nothing more to resume for jellyfin */
    assert_int_equal(queue_unpark_target(f->q, "jellyfin", now), 0);
    q_entry *tx = take_and_sync(f, now, "/tv/X");
    assert_int_equal(runnable(tx), 1);
    assert_int_equal(queue_count_state(f->q, ENTRY_PARKED), 2);
}

static void test_unpark_resumes_every_parked_delivery_of_the_entry(void **state)
{
    fx *f = *state;
    add_ev_d(f, "/tv/Show", PLEX_JF_EMBY, 3, NULL, T0, false, SONARR);
    q_entry *e = attempt(f, "/tv/Show", T0 + 30 * SEC,
                         (const char *const[]){"park:PLEX_TOKEN: 401", "park:JELLYFIN_TOKEN: 403", NULL}, SYNC_OK, NULL);
    assert_int_equal(e->state, ENTRY_PARKED);
    assert_string_equal(e->park_reason, "PLEX_TOKEN: 401"); /* the first one's */
    assert_int_equal(queue_unpark(f->q, e, T0 + 2 * MIN), 1);
    assert_int_equal(e->state, ENTRY_WAITING);
    assert_int_equal(e->due, T0 + 2 * MIN);
    assert_int_equal(dstate(e, "plex"), DELIVERY_PENDING);
    assert_int_equal(dstate(e, "jellyfin"), DELIVERY_PENDING);
    assert_int_equal(dstate(e, "emby"), DELIVERY_DONE);
    assert_int_equal(q_entry_count_deliveries(e, DELIVERY_PARKED), 0);
    for (size_t i = 0; i < e->n_deliv; i++)
        assert_null(e->deliv[i].error);
    q_entry *t = take_and_sync(f, T0 + 2 * MIN, "/tv/Show");
    assert_int_equal(runnable(t), 2);
}

static void test_dirty_round_restarts_every_delivery_but_the_parked_ones(void **state)
{
    fx *f = *state;
    f->p.cooldown_ms = 2 * MIN;
    fx_reopen(f);
    add_ev_d(f, "/tv/Show", PLEX_JF_EMBY, 3, NULL, T0, false, SONARR);
    q_entry *e = take_and_sync(f, T0 + 30 * SEC, "/tv/Show");
    queue_set_round(f->q, e, 42);
    assert_int_equal(e->round_id, 42);
    queue_rclone_done(f->q, e, false);
    assert_int_equal(add_ev(f, "/tv/Show", "/tv/Show/new.mkv", T0 + 35 * SEC, false, RADARR).kind, QADD_DIRTY);
    /* an event during the attempt does not touch the deliveries of the attempt running */
    assert_int_equal(runnable(e), 3);
    queue_delivery_set(f->q, e, deliv_of(e, "plex"), DELIVERY_DONE, NULL);
    queue_delivery_set(f->q, e, deliv_of(e, "jellyfin"), DELIVERY_DONE, NULL);
    queue_delivery_set(f->q, e, deliv_of(e, "emby"), DELIVERY_PARKED, "EMBY_TOKEN: Emby answered 401");
    bool over = false;
    uint64_t end = T0 + 40 * SEC;
    assert_ptr_equal(queue_sync_done(f->q, e, SYNC_OK, NULL, end, &over), e);
    assert_true(over);
    assert_int_equal(e->state, ENTRY_WAITING);
    assert_int_equal(e->round_id, 0);
    assert_false(e->rclone_done);
    assert_false(e->dirty);
    assert_int_equal(e->attempts, 0);
    assert_null(e->park_reason);
    assert_int_equal(e->first_seen, T0 + 35 * SEC);
    assert_int_equal(e->due, end + 2 * MIN); /* max(debounce due, end + cooldown) */
    assert_int_equal(dstate(e, "plex"), DELIVERY_PENDING);
    assert_int_equal(dstate(e, "jellyfin"), DELIVERY_PENDING);
    assert_int_equal(dstate(e, "emby"), DELIVERY_PARKED);
    assert_true(has_file(e, "/tv/Show/new.mkv"));
    q_entry *t = take_and_sync(f, end + 2 * MIN, "/tv/Show");
    assert_int_equal(runnable(t), 2);
}

static void test_intern_gives_one_pointer_per_string(void **state)
{
    fx *f = *state;
    char a[] = "plex", b[] = "plex", c[] = "jellyfin";
    const char *pa = queue_intern(f->q, a), *pb = queue_intern(f->q, b), *pc = queue_intern(f->q, c);
    assert_ptr_equal(pa, pb);
    assert_ptr_not_equal(pa, a); /* a copy: the caller's buffer may go */
    assert_string_equal(pa, "plex");
    assert_ptr_not_equal(pa, pc);
    assert_string_equal(pc, "jellyfin");
    a[0] = 'X';
    assert_string_equal(pa, "plex");
    assert_ptr_equal(queue_intern(f->q, NULL), queue_intern(f->q, ""));
    /* the queue's own deliveries use the same strings */
    q_entry *e1 = add(f, "/tv/A", T0), *e2 = add(f, "/tv/B", T0);
    assert_ptr_equal(e1->deliv[0].target, pa);
    assert_ptr_equal(e2->deliv[0].target, pa);
    assert_ptr_equal(e1->deliv[0].library, e2->deliv[0].library);
    assert_ptr_not_equal(e1->deliv[0].target, PLEX1[0].target);
}

static void test_restore_keeps_delivery_states_and_an_entry_without_deliveries_is_unresolved(void **state)
{
    fx *f = *state;
    uint64_t now = T0 + MIN;
    char err_retry[] = "Jellyfin answered 503", err_park[] = "EMBY_TOKEN: Emby answered 401";
    q_delivery d[] = {
        {.target = "plex", .library = "1", .state = DELIVERY_DONE},
        {.target = "jellyfin", .library = "abc", .state = DELIVERY_RETRY, .error = err_retry},
        {.target = "emby", .library = "e1", .state = DELIVERY_PARKED, .error = err_park},
    };
    q_entry full = {.id = 5, .path = "/tv/Show", .first_seen = T0, .last_event = T0, .due = now + 10 * SEC,
                    .state = ENTRY_RETRY, .attempts = 2, .events = 1, .kinds = QKIND_IMPORT | QKIND_RENAME,
                    .deliv = d, .n_deliv = 3, .rclone_done = true, .round_id = 77};
    q_entry bare = {.id = 6, .path = "/tv/Old", .first_seen = T0, .last_event = T0, .due = T0, .state = ENTRY_WAITING,
                    .events = 1};
    q_delivery unres[] = {{.target = "emby", .library = "", .state = DELIVERY_UNRESOLVED}};
    q_entry waiting_unres = {.id = 8, .path = "/tv/U", .first_seen = T0, .last_event = T0, .due = T0,
                             .state = ENTRY_WAITING, .events = 1, .deliv = unres, .n_deliv = 1};
    q_entry unres_runnable = {.id = 9, .path = "/tv/R", DELIV_PLEX1, .first_seen = T0, .last_event = T0,
                              .due = now + 20 * SEC, .state = ENTRY_UNRESOLVED, .events = 1};
    assert_int_equal(queue_restore(f->q, &full, now), 0);
    assert_int_equal(queue_restore(f->q, &bare, now), 0);
    assert_int_equal(queue_restore(f->q, &waiting_unres, now), 0);
    assert_int_equal(queue_restore(f->q, &unres_runnable, now), 0);
    err_retry[0] = err_park[0] = 'X'; /* copied */

    q_entry *e = queue_find_id(f->q, 5);
    assert_int_equal(e->state, ENTRY_RETRY);
    assert_int_equal(e->n_deliv, 3);
    assert_int_equal(dstate(e, "plex"), DELIVERY_DONE);
    assert_int_equal(dstate(e, "jellyfin"), DELIVERY_RETRY);
    assert_string_equal(e->deliv[deliv_of(e, "jellyfin")].error, "Jellyfin answered 503");
    assert_int_equal(dstate(e, "emby"), DELIVERY_PARKED);
    assert_string_equal(e->deliv[deliv_of(e, "emby")].error, "EMBY_TOKEN: Emby answered 401");
    assert_string_equal(e->deliv[deliv_of(e, "emby")].library, "e1");
    assert_ptr_equal(e->deliv[0].target, queue_intern(f->q, "plex"));
    assert_true(e->rclone_done);
    assert_int_equal(e->round_id, 77);
    assert_int_equal(e->kinds, QKIND_IMPORT | QKIND_RENAME);
    assert_int_equal(e->attempts, 2);
    assert_int_equal(queue_find_id(f->q, 6)->state, ENTRY_UNRESOLVED);
    assert_int_equal(queue_find_id(f->q, 6)->n_deliv, 0);
    assert_int_equal(queue_find_id(f->q, 8)->state, ENTRY_UNRESOLVED);
    assert_int_equal(queue_find_id(f->q, 9)->state, ENTRY_WAITING);
    assert_int_equal(queue_count_state(f->q, ENTRY_UNRESOLVED), 2);
    /* the retry runs at its due with only its retry delivery; then /tv/R */
    assert_int_equal(queue_next_wakeup(f->q), now + 10 * SEC);
    q_entry *t = take_and_sync(f, now + 10 * SEC, "/tv/Show");
    assert_int_equal(runnable(t), 1);
    assert_true(t->rclone_done);
    assert_null(queue_take_ready(f->q, now + 20 * SEC - 1, NULL));
    take(f, now + 20 * SEC, "/tv/R");
    assert_null(queue_take_ready(f->q, now + HOUR_MS, NULL));
}

static void test_restore_reverts_syncing_and_clamps_future_due(void **state)
{
    fx *f = *state;
    uint64_t now = T0 + 60 * MIN;
    char *files[] = {"/tv/A/a.mkv"};
    q_entry syncing = {.id = 7, .path = "/data/tv/A", DELIV_PLEX1,
                       .first_seen = T0, .last_event = T0, .due = T0, .state = ENTRY_SYNCING,
                       .files = files, .n_files = 1, .sources = SONARR, .events = 3};
    q_entry future = {.id = 9, .path = "/tv/B", DELIV_PLEX1, .first_seen = T0,
                      .last_event = T0, .due = now + 30ULL * 24 * 60 * MIN, .state = ENTRY_RETRY, .attempts = 2,
                      .events = 1, .last_error = "timeout"};
    q_entry parked = {.id = 3, .path = "/tv/C", DELIV_PLEX1, .state = ENTRY_PARKED,
                      .park_reason = "PLEX_TOKEN: 401", .events = 1};
    assert_int_equal(queue_restore(f->q, &syncing, now), 0);
    assert_int_equal(queue_restore(f->q, &future, now), 0);
    assert_int_equal(queue_restore(f->q, &parked, now), 0);
    assert_int_equal(queue_restore(f->q, &syncing, now), -EEXIST);
    assert_int_equal(f->r.puts + f->r.dels, 0); /* no callbacks */

    q_entry *a = queue_find_id(f->q, 7);
    assert_int_equal(a->state, ENTRY_READY);
    assert_int_equal(a->due, now);
    assert_string_equal(a->path, "/data/tv/A");
    assert_true(has_file(a, "/tv/A/a.mkv"));
    q_entry *b = queue_find_id(f->q, 9);
    assert_int_equal(b->due, now + 30 * SEC);
    assert_string_equal(b->last_error, "timeout");
    assert_string_equal(queue_find_id(f->q, 3)->park_reason, "PLEX_TOKEN: 401");
    assert_int_equal(queue_count_state(f->q, ENTRY_READY), 1);
    assert_int_equal(queue_next_wakeup(f->q), now);

    /* new ids continue after the restored ones and after queue_set_next_id */
    assert_true(add(f, "/tv/D", now)->id > 9);
    queue_set_next_id(f->q, 100);
    assert_int_equal(add(f, "/tv/E", now)->id, 100);
    queue_set_next_id(f->q, 50); /* never goes back */
    assert_int_equal(add(f, "/tv/F", now)->id, 101);

    bool age = true;
    q_entry *e = queue_take_ready(f->q, now, &age);
    assert_ptr_equal(e, a);
    assert_false(age);
}

static void test_full_queue_refuses_new_entries_but_still_merges(void **state)
{
    fx *f = *state;
    f->p.max_pending = 2;
    fx_reopen(f);
    add(f, "/tv/A", T0);
    add(f, "/tv/B/S1", T0);
    q_event ev = {.path = "/tv/C", DELIV_PLEX1, .source_bit = SONARR, .at = T0};
    q_add_result r;
    unsigned puts = f->r.puts;
    assert_int_equal(queue_add(f->q, &ev, T0, &r), -ENOSPC);
    assert_int_equal(queue_count(f->q), 2);
    assert_int_equal(f->r.puts, puts);
    /* merges still work */
    assert_int_equal(add_ev(f, "/tv/A/x", NULL, T0 + SEC, false, SONARR).kind, QADD_MERGED);
    /* a new entry that absorbs one does not grow the queue */
    q_add_result ab = add_ev(f, "/tv/B", NULL, T0 + SEC, false, SONARR);
    assert_int_equal(ab.kind, QADD_NEW);
    assert_int_equal(ab.absorbed, 1);
    assert_int_equal(queue_count(f->q), 2);
}

typedef struct count_ctx {
    size_t n, waiting;
} count_ctx;

static void count_fn(void *ud, const q_entry *e)
{
    count_ctx *c = ud;
    c->n++;
    if (e->state == ENTRY_WAITING)
        c->waiting++;
}

static void test_hundred_thousand_entries_insert_and_absorb(void **state)
{
    fx *f = *state;
    f->p.max_pending = 200000;
    fx_reopen(f);
    char path[128], file[192];
    for (int i = 0; i < 100000; i++) {
        snprintf(path, sizeof path, "/data/media/tv/Show Number %04d (2020)/Season %02d", i / 100, i % 100);
        snprintf(file, sizeof file, "%s/Show - S%02dE01 - Episode Title WEBDL-1080p.mkv", path, i % 100);
        q_add_result r = add_ev(f, path, file, T0 + (uint64_t)i, false, SONARR);
        assert_int_equal(r.kind, QADD_NEW);
    }
    assert_int_equal(queue_count(f->q), 100000);
    assert_int_equal(queue_count_state(f->q, ENTRY_WAITING), 100000);
    assert_int_equal(queue_next_wakeup(f->q), T0 + 30 * SEC);
    count_ctx c = {0};
    queue_foreach(f->q, count_fn, &c);
    assert_int_equal(c.n, 100000);
    assert_int_equal(c.waiting, 100000);
    assert_non_null(queue_find(f->q, "/data/media/tv/Show Number 0500 (2020)/Season 42"));

    /* a series-level event absorbs exactly its hundred seasons */
    q_add_result r = add_ev(f, "/data/media/tv/Show Number 0500 (2020)", NULL, T0 + 200 * SEC, false, SONARR);
    assert_int_equal(r.kind, QADD_NEW);
    assert_int_equal(r.absorbed, 100);
    assert_int_equal(r.entry->n_files, QUEUE_MAX_FILES);
    assert_int_equal(queue_count(f->q), 100000 - 100 + 1);
    /* the next series was not absorbed */
    assert_non_null(queue_find(f->q, "/data/media/tv/Show Number 0501 (2020)/Season 00"));

    /* drain it all */
    size_t taken = 0;
    uint64_t now = T0 + 60 * MIN;
    q_entry *e;
    while ((e = queue_take_ready(f->q, now, NULL)) != NULL) {
        queue_sync_started(f->q, e, now);
        sync_ok(f, e, now);
        taken++;
    }
    assert_int_equal(taken, 100000 - 100 + 1);
    assert_int_equal(queue_count(f->q), 0);
}

static void test_change_callbacks_follow_every_mutation(void **state)
{
    fx *f = *state;
    q_entry *e = add(f, "/tv/Show", T0);
    assert_int_equal(f->r.puts, 1);
    assert_int_equal(f->r.last_put_state, ENTRY_WAITING);
    add(f, "/tv/Show/S1", T0 + SEC);
    assert_int_equal(f->r.puts, 2);
    take(f, T0 + MIN, "/tv/Show");
    assert_int_equal(f->r.puts, 3);
    assert_int_equal(f->r.last_put_state, ENTRY_CHECKING);
    queue_sync_started(f->q, e, T0 + MIN);
    assert_int_equal(f->r.puts, 4);
    assert_int_equal(f->r.last_put_state, ENTRY_SYNCING);
    add(f, "/tv/Show", T0 + MIN); /* dirty */
    assert_int_equal(f->r.puts, 5);
    queue_sync_done(f->q, e, SYNC_TRANSIENT, "x", T0 + MIN, NULL);
    assert_int_equal(f->r.puts, 6);
    assert_int_equal(f->r.last_put_state, ENTRY_RETRY);
    assert_true(e->dirty); /* stays set until the retry starts */
    e = queue_take_ready(f->q, e->due, NULL);
    assert_false(e->dirty);
    queue_sync_started(f->q, e, T0 + 2 * MIN);
    assert_int_equal(f->r.puts, 8);
    queue_delivery_set(f->q, e, 0, DELIVERY_DONE, NULL); /* each step's result is a change */
    assert_int_equal(f->r.puts, 9);
    queue_sync_done(f->q, e, SYNC_OK, NULL, T0 + 2 * MIN, NULL);
    assert_int_equal(f->r.dels, 1);
    assert_int_equal(f->r.puts, 9);
    add(f, "/tv/Last", T0);
    unsigned puts = f->r.puts, dels = f->r.dels;
    queue_free(f->q); /* emits nothing */
    f->q = NULL;
    assert_int_equal(f->r.puts, puts);
    assert_int_equal(f->r.dels, dels);
    fx_open(f);
}

static void test_reload_follows_new_delay_but_never_shortens_backoff(void **state)
{
    fx *f = *state;
    f->rnd = 0.999;
    q_entry *w = add(f, "/tv/W", T0 + MIN);
    add(f, "/tv/R", T0);
    q_entry *r = take_and_sync(f, T0 + 30 * SEC, "/tv/R");
    queue_sync_done(f->q, r, SYNC_TRANSIENT, "x", T0 + 30 * SEC, NULL);
    uint64_t backoff = r->due;
    assert_true(backoff > T0 + 30 * SEC);
    queue_params p = f->p;
    p.delay_ms = 10 * SEC;
    p.retry_max_ms = 1;
    memset(&f->r, 0, sizeof f->r);
    queue_set_params(f->q, &p);
    assert_int_equal(w->due, T0 + MIN + 10 * SEC);
    assert_int_equal(r->due, backoff);
    assert_int_equal(f->r.puts, 1); /* only the entry whose due moved */
}

/* ---- what an entry is about: its title, its latest event ---- */

#define MANUAL_BIT (1u << 4) /* APP_MANUAL's source bit */

static q_entry *add_about(fx *f, const char *path, const char *title, q_event_kind kind, uint64_t at, unsigned src)
{
    q_event ev = {.path = path, DELIV_PLEX1, .source_bit = src, .manual = kind == QEVENT_MANUAL, .at = at,
                  .title = title, .event = kind};
    q_add_result res;
    assert_int_equal(queue_add(f->q, &ev, at, &res), 0);
    return res.entry;
}

static void test_an_entry_shows_its_latest_events_title_kind_and_sender(void **state)
{
    fx *f = *state;
    q_entry *e = add_about(f, "/tv/Show/Season 01", "Show S01E01 \xc2\xb7 A", QEVENT_IMPORT, T0, SONARR);
    assert_string_equal(e->title, "Show S01E01 \xc2\xb7 A");
    assert_int_equal(e->event, QEVENT_IMPORT);
    assert_int_equal(e->last_app, 1);
    /* the next event's title and kind replace them */
    assert_ptr_equal(add_about(f, "/tv/Show/Season 01", "Show S01E02", QEVENT_UPGRADE, T0 + SEC, SONARR), e);
    assert_string_equal(e->title, "Show S01E02");
    assert_int_equal(e->event, QEVENT_UPGRADE);
    assert_int_equal(e->events, 2);
    /* a manual scan names nothing: the folder is still what Sonarr said */
    add_about(f, "/tv/Show/Season 01", NULL, QEVENT_MANUAL, T0 + 2 * SEC, MANUAL_BIT);
    assert_string_equal(e->title, "Show S01E02");
    assert_int_equal(e->event, QEVENT_MANUAL);
    assert_int_equal(e->last_app, 5);
    /* one copy of a title, whoever holds it */
    q_entry *other = add_about(f, "/tv/Other", "Show S01E02", QEVENT_IMPORT, T0, RADARR);
    assert_ptr_equal(other->title, e->title);
    assert_int_equal(other->last_app, 2);
    /* an event during a sync shows at once */
    q_entry *s = take_and_sync(f, T0 + MIN, "/tv/Show/Season 01");
    add_about(f, "/tv/Show/Season 01/x.mkv", "Show S01E03", QEVENT_RENAME, T0 + MIN, SONARR);
    assert_true(s->dirty);
    assert_string_equal(s->title, "Show S01E03");
    assert_int_equal(s->event, QEVENT_RENAME);
    /* the names the API uses */
    assert_string_equal(q_event_kind_name(QEVENT_UPGRADE), "upgrade");
    assert_string_equal(q_event_kind_name(QEVENT_COUNT), "other");
    assert_int_equal(q_event_kind_parse("manual"), QEVENT_MANUAL);
    assert_int_equal(q_event_kind_parse("test"), -1);
    assert_int_equal(q_event_kind_parse(NULL), -1);
    assert_int_equal(q_event_kind_of(QKIND_IMPORT | QKIND_UPGRADE, false), QEVENT_UPGRADE);
    assert_int_equal(q_event_kind_of(QKIND_DELETE, false), QEVENT_DELETE);
    assert_int_equal(q_event_kind_of(0, false), QEVENT_OTHER);
    assert_int_equal(q_event_kind_of(QKIND_IMPORT, true), QEVENT_MANUAL);
}

static void test_a_folder_taken_in_keeps_the_newer_events_title(void **state)
{
    fx *f = *state;
    add_about(f, "/tv/Show/Season 01", "Show S01E01", QEVENT_IMPORT, T0, SONARR);
    add_about(f, "/tv/Show/Season 02", "Show S02E01", QEVENT_IMPORT, T0 + SEC, SONARR);
    /* a newer event for the series folder absorbs both and says what it is itself */
    q_entry *e = add_about(f, "/tv/Show", "Show", QEVENT_RENAME, T0 + 2 * SEC, SONARR);
    assert_int_equal(queue_count(f->q), 1);
    assert_string_equal(e->title, "Show");
    assert_int_equal(e->event, QEVENT_RENAME);
    /* one without a title takes an absorbed folder's */
    add_about(f, "/movies/Film/extras", "Film (2010)", QEVENT_DELETE, T0, RADARR);
    q_entry *m = add_about(f, "/movies/Film", NULL, QEVENT_MANUAL, T0 + SEC, MANUAL_BIT);
    assert_string_equal(m->title, "Film (2010)");
    assert_int_equal(m->event, QEVENT_MANUAL);
    /* an ancestor that came while a nested folder synced takes its work over, and keeps its
     * own newer event */
    add_about(f, "/tv/B/Season 01", "B S01E01", QEVENT_IMPORT, T0, SONARR);
    q_entry *n = take_and_sync(f, T0 + MIN, "/movies/Film");
    q_entry *nested = take_and_sync(f, T0 + MIN, "/tv/B/Season 01");
    (void)n;
    q_entry *anc = add_about(f, "/tv/B", "B", QEVENT_DELETE, T0 + MIN + SEC, SONARR);
    q_entry *next = queue_sync_done(f->q, nested, SYNC_TRANSIENT, "timeout", T0 + MIN + 2 * SEC, NULL);
    assert_ptr_equal(next, anc);
    assert_string_equal(anc->title, "B");
    assert_int_equal(anc->event, QEVENT_DELETE);
}

static void test_cancel_removes_an_entry_unless_it_is_under_way(void **state)
{
    fx *f = *state;
    q_entry *a = add(f, "/tv/A", T0 + 10 * SEC);
    int64_t a_id = a->id;
    add(f, "/tv/B", T0);
    q_entry *c = add(f, "/tv/C", T0);
    q_entry *b = take_and_sync(f, T0 + 35 * SEC, "/tv/B");
    q_entry *taken_c = take(f, T0 + 35 * SEC, "/tv/C");
    assert_ptr_equal(taken_c, c);
    unsigned dels = f->r.dels;
    assert_int_equal(queue_cancel(f->q, a), 0);
    assert_int_equal(f->r.dels, dels + 1);
    assert_int_equal(f->r.last_del_id, a_id);
    assert_null(queue_find_id(f->q, a_id));
    assert_null(queue_find(f->q, "/tv/A"));
    /* syncing or being checked: refused, nothing changes */
    assert_int_equal(queue_cancel(f->q, b), -EBUSY);
    assert_int_equal(queue_cancel(f->q, c), -EBUSY);
    assert_int_equal(queue_count(f->q), 2);
    assert_int_equal(f->r.dels, dels + 1);
    /* parked, retrying: gone too */
    queue_sync_done(f->q, b, SYNC_PARKED, "PLEX_TOKEN: Plex answered 401", T0 + MIN, NULL);
    queue_sync_started(f->q, c, T0 + MIN);
    queue_sync_done(f->q, c, SYNC_TRANSIENT, "timeout", T0 + MIN, NULL);
    assert_int_equal(b->state, ENTRY_PARKED);
    assert_int_equal(c->state, ENTRY_RETRY);
    assert_int_equal(queue_cancel(f->q, b), 0);
    assert_int_equal(queue_cancel(f->q, c), 0);
    assert_int_equal(queue_count(f->q), 0);
    assert_int_equal(queue_count_state(f->q, ENTRY_PARKED), 0);
    assert_int_equal(queue_next_wakeup(f->q), UINT64_MAX);
}

static void test_run_now_skips_delay_and_backoff_but_not_the_minimum_age(void **state)
{
    fx *f = *state;
    f->p.min_age_ms = MIN;
    fx_reopen(f);
    q_entry *a = add(f, "/tv/A", T0);
    assert_int_equal(a->due, T0 + 30 * SEC);
    unsigned puts = f->r.puts;
    assert_int_equal(queue_run_now(f->q, a, T0 + SEC), 0);
    assert_int_equal(a->due, T0 + SEC);
    assert_int_equal(f->r.puts, puts + 1);
    assert_int_equal(queue_next_wakeup(f->q), T0 + SEC);
    bool needs_age = false;
    assert_ptr_equal(queue_take_ready(f->q, T0 + SEC, &needs_age), a);
    assert_true(needs_age); /* the minimum age is still checked */
    bool old_enough = true;
    q_entry *next = queue_age_checked(f->q, a, 0, T0 + SEC, &old_enough);
    assert_false(old_enough);
    assert_int_equal(next->state, ENTRY_AGING);
    assert_int_equal(next->due, T0 + MIN);
    /* a retry's backoff is skipped */
    add(f, "/tv/B", T0);
    q_entry *b = take_and_sync(f, T0 + 2 * MIN, "/tv/B");
    queue_sync_done(f->q, b, SYNC_TRANSIENT, "timeout", T0 + 2 * MIN, NULL);
    assert_int_equal(b->state, ENTRY_RETRY);
    assert_true(b->due > T0 + 2 * MIN);
    assert_int_equal(queue_run_now(f->q, b, T0 + 2 * MIN), 0);
    assert_int_equal(b->due, T0 + 2 * MIN);
    /* a due entry stays as it is */
    puts = f->r.puts;
    assert_int_equal(queue_run_now(f->q, b, T0 + 3 * MIN), 0);
    assert_int_equal(b->due, T0 + 2 * MIN);
    assert_int_equal(f->r.puts, puts);
    /* what it cannot do */
    q_entry *s = take_and_sync(f, T0 + 3 * MIN, "/tv/A");
    assert_int_equal(queue_run_now(f->q, s, T0 + 3 * MIN), -EBUSY);
    queue_sync_done(f->q, s, SYNC_PARKED, "PLEX_TOKEN: Plex answered 401", T0 + 3 * MIN, NULL);
    assert_int_equal(queue_run_now(f->q, s, T0 + 3 * MIN), -EPERM);
    q_entry *u = add_ev_d(f, "/music/U", UNRES_PLEX, 1, NULL, T0, false, SONARR).entry;
    assert_int_equal(queue_run_now(f->q, u, T0 + 3 * MIN), -ENODATA);
}

static void test_restore_keeps_what_an_entry_is_about(void **state)
{
    fx *f = *state;
    q_entry in = {.id = 7, .path = "/tv/S", .first_seen = T0, .last_event = T0, .due = T0 + SEC,
                  .state = ENTRY_WAITING, DELIV_PLEX1, .title = "S S01E01", .event = QEVENT_UPGRADE,
                  .last_app = 1};
    assert_int_equal(queue_restore(f->q, &in, T0), 0);
    q_entry *e = queue_find_id(f->q, 7);
    assert_string_equal(e->title, "S S01E01");
    assert_ptr_not_equal(e->title, in.title); /* the queue's own copy */
    assert_int_equal(e->event, QEVENT_UPGRADE);
    assert_int_equal(e->last_app, 1);
    in.id = 8;
    in.path = "/tv/T";
    in.title = NULL;
    assert_int_equal(queue_restore(f->q, &in, T0), 0);
    assert_null(queue_find_id(f->q, 8)->title);
}

static void test_unresolved_event_and_bad_input(void **state)
{
    fx *f = *state;
    q_event ev = {.path = "", DELIV_PLEX1, .at = T0};
    assert_int_equal(queue_add(f->q, &ev, T0, NULL), -EINVAL);
    ev.path = NULL;
    assert_int_equal(queue_add(f->q, &ev, T0, NULL), -EINVAL);
    assert_int_equal(queue_count(f->q), 0);
    assert_string_equal(entry_state_name(ENTRY_RETRY), "retry");
    assert_string_equal(entry_state_name(ENTRY_UNRESOLVED), "unresolved");
    assert_string_equal(entry_state_name(ENTRY_PARKED), "parked");
    assert_string_equal(entry_state_name(ENTRY_STATE_COUNT), "unknown");
    assert_string_equal(delivery_state_name(DELIVERY_PENDING), "pending");
    assert_string_equal(delivery_state_name(DELIVERY_PARKED), "parked");
    assert_string_equal(delivery_state_name(DELIVERY_STATE_COUNT), "unknown");
    /* the same folder name under two top folders is two entries; keys are byte-exact */
    add_ev(f, "/tv/Mixed", NULL, T0, false, SONARR);
    add_ev(f, "/movies/Mixed", NULL, T0, false, RADARR);
    assert_int_equal(add_ev(f, "/tv/mixed", NULL, T0, false, RADARR).kind, QADD_NEW);
    assert_int_equal(queue_count(f->q), 3);
    /* an event whose only target has no library list yet: unresolved, no timer */
    q_add_result r = add_ev_d(f, "/music/A", UNRES_PLEX, 1, NULL, T0, false, SONARR);
    assert_int_equal(r.kind, QADD_NEW);
    assert_int_equal(r.entry->state, ENTRY_UNRESOLVED);
    assert_int_equal(r.entry->n_deliv, 1);
    assert_int_equal(r.entry->deliv[0].state, DELIVERY_UNRESOLVED);
    /* and one with no delivery at all */
    r = add_ev_d(f, "/music/B", NULL, 0, NULL, T0, false, SONARR);
    assert_int_equal(r.entry->state, ENTRY_UNRESOLVED);
    assert_int_equal(queue_count_state(f->q, ENTRY_UNRESOLVED), 2);
    assert_int_equal(queue_next_wakeup(f->q), T0 + 30 * SEC); /* only the three waiting ones */
    size_t taken = 0;
    while (queue_take_ready(f->q, T0 + HOUR_MS, NULL))
        taken++;
    assert_int_equal(taken, 3); /* never the unresolved ones */
    assert_int_equal(queue_count_state(f->q, ENTRY_UNRESOLVED), 2);
}

/* An entry's counters are 16 bits: a flood of events for one folder stops the count at
 * QUEUE_COUNT_MAX instead of wrapping to a small number. */
static void test_counters_stop_at_their_maximum(void **state)
{
    fx *f = *state;
    q_entry *e = NULL;
    for (unsigned i = 0; i < QUEUE_COUNT_MAX + 10u; i++)
        e = add(f, "/tv/Flood", T0 + i);
    assert_int_equal(e->events, QUEUE_COUNT_MAX);
    assert_int_equal(queue_count(f->q), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_burst_for_one_folder_is_one_entry_due_at_last_event_plus_delay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_delay_caps_a_steady_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_files_are_capped_at_queue_max_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_below_a_waiting_folder_merges_into_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_folder_with_common_prefix_is_not_nested, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_entry_absorbs_descendants_with_their_files_attempts_and_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_absorbed_parked_entry_leaves_the_new_entry_waiting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_during_sync_sets_dirty_and_reruns_after_cooldown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_during_checking_counts_as_dirty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clean_sync_removes_the_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ancestor_waits_for_nested_sync_then_absorbs_its_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ancestor_absorbs_the_dirty_rerun_of_a_nested_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ancestor_starts_when_nested_sync_ends_cleanly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ancestor_absorbs_a_nested_entry_sent_back_to_age, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restored_nested_entries_become_one_scan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrency_limit_keeps_extra_entries_ready, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_folder_past_its_rclone_step_gives_its_slot_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_files_are_kept_relative_to_the_folder_and_rebased_when_folded, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_entries_are_taken_in_due_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_minimum_age_rearms_for_the_remainder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_age_with_no_file_read_is_counted_from_the_event_and_says_so, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_manual_event_skips_debounce_age_and_cooldown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cooldown_delays_a_new_entry_but_never_drops_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_success_older_than_cooldown_no_longer_delays, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_backoff_grows_with_full_jitter_bounded_by_retry_max, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parked_entry_waits_until_unparked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hold_rechecks_later_without_age, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_full_queue_still_takes_events_that_add_no_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_clock_step_moves_every_wait_with_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_done_returns_the_entry_while_it_carries_its_own_work, setup, teardown),
        cmocka_unit_test_setup_teardown(test_waiting_ancestor_takes_over_a_nested_entry_and_is_what_the_report_returns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_on_an_entry_in_the_wrong_state_stops_at_an_assert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remap_resolves_unresolved_entries_removes_unheld_ones_and_keeps_unknown_ones, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remap_puts_nested_entries_together_and_never_touches_syncing_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_reverts_syncing_and_clamps_future_due, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_queue_refuses_new_entries_but_still_merges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hundred_thousand_entries_insert_and_absorb, setup, teardown),
        cmocka_unit_test_setup_teardown(test_change_callbacks_follow_every_mutation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_follows_new_delay_but_never_shortens_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_transient_failure_retries_only_what_is_not_done, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_new_event_renews_done_deliveries_and_the_rclone_step, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_delivery_done_ends_the_round_and_starts_the_cooldown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_parked_delivery_with_the_rest_done_parks_the_entry_with_its_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_unresolved_delivery_left_keeps_the_round_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remap_resolving_a_placeholder_moves_the_entry_from_unresolved_to_waiting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remap_answer_one_removes_and_a_negative_answer_keeps_the_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unpark_target_resumes_only_that_targets_deliveries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unpark_resumes_every_parked_delivery_of_the_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dirty_round_restarts_every_delivery_but_the_parked_ones, setup, teardown),
        cmocka_unit_test_setup_teardown(test_intern_gives_one_pointer_per_string, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_keeps_delivery_states_and_an_entry_without_deliveries_is_unresolved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_entry_shows_its_latest_events_title_kind_and_sender, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_folder_taken_in_keeps_the_newer_events_title, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_removes_an_entry_unless_it_is_under_way, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_now_skips_delay_and_backoff_but_not_the_minimum_age, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_keeps_what_an_entry_is_about, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unresolved_event_and_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counters_stop_at_their_maximum, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
