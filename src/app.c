/* app.c: the daemon's owner: start-up and shutdown, the group commit, the queue's timer, Plex's
 * library list, reloads and signals. Everything runs on one libuv loop. */
#include "app_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hostpaths.h"
#include "log.h"
#include "notify.h"
#include "paths.h"
#include "plex.h"
#include "folders.h"
#include "tell.h"
#include "trash.h"
#include "util.h"

#define SECTIONS_MISS_INTERVAL_MS 60000u
#define HOLD_RECHECK_MS 30000u
#define PRUNE_INTERVAL_MS 60000u
#define PRUNE_BATCH 1000

static void queue_params_from(const config_t *c, queue_params *p)
{
    memset(p, 0, sizeof *p);
    p->delay_ms = c->webhook_delay_ms;
    p->max_delay_ms = c->webhook_max_delay_ms;
    p->min_age_ms = c->minimum_age_ms;
    p->cooldown_ms = c->sync_cooldown_ms;
    p->retry_max_ms = c->retry_max_delay_ms;
    p->hold_recheck_ms = HOLD_RECHECK_MS;
    p->clamp_future_ms = 86400000u + c->webhook_max_delay_ms + c->retry_max_delay_ms + c->sync_cooldown_ms;
    p->max_concurrent = c->max_concurrent_syncs;
    p->max_pending = c->max_pending;
}

/* ---- queue <-> store ---- */

static void on_queue_change(void *ud, const q_entry *e, q_change what)
{
    app_t *a = ud;
    if (what == QCHANGE_PUT)
        store_stage_entry_put(a->store, e);
    else
        store_stage_entry_del(a->store, e->id);
}

/* ---- notifications: the events and what they need remembered ---- */

size_t app_notify_test(app_t *a, const char *source)
{
    return tell_test(a->tell, source);
}

/* ---- what sync jobs report ---- */

static void replace_text(char **dst, const char *text)
{
    free(*dst);
    *dst = xstrdup(text);
}

static void on_sync_news(void *ud, sync_news_kind kind, const char *error)
{
    app_t *a = ud;
    switch (kind) {
    case SYNC_NEWS_RCLONE_OK:
        a->rclone_reachable = true;
        break;
    case SYNC_NEWS_RCLONE_REFUSED:
        a->rclone_reachable = true;
        replace_text(&a->rclone_error, error);
        break;
    case SYNC_NEWS_RCLONE_FAILED:
        replace_text(&a->rclone_error, error);
        break;
    }
}

static void on_sync_ended(void *ud, const sync_report *r)
{
    app_t *a = ud;
    for (size_t i = 0; r->round_over && i < r->n_done; i++)
        trash_after_round(a->trash, r->done[i].target, r->done[i].library, r->kinds);
    tell_report(a->tell, r);
    app_schedule(a);
}

static void on_sync_slot_freed(void *ud) { app_schedule(ud); }

static const sync_hooks sync_hooks_of_app = {
    .news = on_sync_news,
    .ended = on_sync_ended,
    .slot_freed = on_sync_slot_freed,
};

/* ---- the queue's timer ---- */

/* A gap between the wall clock and the monotonic one larger than this is a step of the wall
 * clock (NTP setting the time on a box without an RTC), not scheduling jitter: both clocks run
 * at the same rate otherwise. */
#define CLOCK_STEP_MS 1000

/* The queue waits in wall ms (its times are stored and shown): a step back of a day would
 * postpone every scan by a day, a step forward would make them all due at once. Each look
 * compares how far each clock moved since the last; on a step, every time the queue holds (and
 * the library list's age) moves with it, so each wait keeps what was left of it. Called before
 * the queue is asked anything: when its timer fires, and every loop turn before the loop waits.
 * Returns whether the clock stepped (the queue's next wakeup moved with it). */
static bool follow_wall_clock(app_t *a)
{
    uint64_t wall = wall_ms(), mono = mono_ms();
    int64_t step = (int64_t)(wall - a->clock_wall) - (int64_t)(mono - a->clock_mono);
    a->clock_wall = wall;
    a->clock_mono = mono;
    if (step > -CLOCK_STEP_MS && step < CLOCK_STEP_MS)
        return false;
    log_warn("the wall clock stepped %s by %.1f s: queued folders keep what was left of their waits",
             step < 0 ? "back" : "forward", (double)(step < 0 ? -step : step) / 1000.0);
    queue_shift_time(a->q, step);
    targets_shift_time(&a->targets, step);
    return true;
}

static void on_queue_timer(uv_timer_t *t)
{
    app_t *a = container_of(t, app_t, queue_timer);
    if (a->stopping)
        return;
    follow_wall_clock(a); /* re-armed below in any case */
    uint64_t now = wall_ms();
    bool needs_age;
    q_entry *e;
    while ((e = queue_take_ready(a->q, now, &needs_age)) != NULL)
        sync_start(&a->sync, e, needs_age, &sync_hooks_of_app, a);
    app_schedule(a);
}

static void stop_when_idle(app_t *a);

void app_schedule(app_t *a)
{
    if (a->stopping) {
        /* A sync ended during the shutdown grace time: the last one lets the stop finish. */
        stop_when_idle(a);
        return;
    }
    uint64_t next = queue_next_wakeup(a->q);
    if (next == UINT64_MAX) {
        uv_timer_stop(&a->queue_timer);
        return;
    }
    uint64_t now = wall_ms();
    uint64_t delay = next > now ? next - now : 0;
    uv_timer_start(&a->queue_timer, on_queue_timer, delay, 0);
}

/* ---- the targets' library lists ---- */

/* A skipped folder ends with one "skipped" history row, so the history shows where it went. */
static void record_skipped(app_t *a, const char *path, const char *reason)
{
    char *deliv = sync_skipped_deliveries(&a->targets, path);
    store_history h = {
        .path = path,
        .started = wall_ms(),
        .status = HIST_SKIPPED,
        .rclone = "skipped",
        .deliveries = deliv,
        .error = reason,
    };
    store_stage_history(a->store, &h);
    free(deliv);
    a->counters.scans_skipped++;
}

static int remap_fn(void *ud, const char *arr_path, q_delivery *out, size_t max, size_t *n)
{
    app_t *a = ud;
    *n = 0;
    folder_libs libs;
    app_folder_libs(a, &libs);
    folder_plan p;
    const char *why;
    /* A path the new configuration cannot map keeps its entry unchanged (negative = keep): a bad
     * reload must never drop acknowledged work. Nor do no targets at all: it waits for one. */
    if (folders_plan(&a->cfg, &libs, arr_path, &p, &why) < 0)
        return -1;
    if (p.verdict == FOLDER_NO_MATCH) {
        char *reason = folders_skip_reason(&libs, &p);
        log_warn("skipped: %s", log_esc(reason));
        record_skipped(a, arr_path, reason);
        free(reason);
        folder_plan_free(&p);
        return 1;
    }
    int rc = p.n_deliv ? 0 : -1;
    for (size_t i = 0; i < p.n_deliv && i < max; i++)
        out[(*n)++] = (q_delivery){
            .target = queue_intern(a->q, libs.targets[p.deliv[i].target].cfg->name),
            .library = queue_intern(a->q, p.deliv[i].library_id),
            .state = p.deliv[i].unresolved ? DELIVERY_UNRESOLVED : DELIVERY_PENDING,
        };
    folder_plan_free(&p);
    return rc;
}

static void remap_all(app_t *a)
{
    int changed = queue_remap(a->q, remap_fn, a, wall_ms());
    if (changed > 0)
        log_info("re-mapped %d queued folder%s", changed, changed == 1 ? "" : "s");
    app_schedule(a);
}

static void on_lists_changed(void *ud)
{
    app_t *a = ud;
    free(a->ftargets);
    a->ftargets = NULL;
    trash_lists_changed(a->trash);
    remap_all(a);
}

static void on_target_accepted(void *ud, const char *target)
{
    app_t *a = ud;
    int n = queue_unpark_target(a->q, target, wall_ms());
    if (n > 0)
        log_info("%s: %d parked folder%s resume", target, n, n == 1 ? "" : "s");
    tell_event(a->tell, NEV_RESUMED, NULL, target, "accepts its token again; %d parked folder%s resume%s", n,
                 n == 1 ? "" : "s", n == 1 ? "s" : "");
    app_schedule(a);
}

static const targets_hooks targets_hooks_of_app = {
    .lists_changed = on_lists_changed,
    .accepted = on_target_accepted,
};

void app_sections_miss(app_t *a)
{
    targets_miss(&a->targets, NULL);
}

/* ---- mapping a requested folder ---- */

static size_t pow2_ceil(size_t n)
{
    size_t p = 1;
    if (n == 0)
        return 0;
    while (p < n)
        p <<= 1;
    return p;
}

void app_folder_free(app_folder *f)
{
    free(f->arr_path);
    free(f->plex_path);
    free(f->carrier_path);
    free(f->deliv);
    for (size_t i = 0; i < f->n_files; i++)
        free(f->files[i]);
    free(f->files);
}

void app_folder_libs(app_t *a, folder_libs *out)
{
    if (!a->ftargets && a->targets.n) {
        a->ftargets = xcalloc(a->targets.n, sizeof *a->ftargets);
        for (size_t i = 0; i < a->targets.n; i++)
            a->ftargets[i] = (folder_target){.cfg = a->targets.v[i].cfg, .libs = &a->targets.v[i].libs};
    }
    *out = (folder_libs){.targets = a->ftargets, .n_targets = a->targets.n, .now = wall_ms()};
}

static void warn_outside(const folder_libs *l, const folder_plan *p)
{
    for (size_t i = 0; i < p->n_deliv; i++)
        if (p->deliv[i].outside_locations)
            log_warn("%s: '%s' is mapped to section %s but lies outside that library's locations; Plex will "
                     "ignore the scan (check SECTION_MAPPING / PATH_REPLACEMENTS)",
                     l->targets[p->deliv[i].target].cfg->name, log_esc(p->deliv[i].path), p->deliv[i].library_id);
}

/* The staged folder of one plan. */
static void add_folder(app_t *a, const folder_libs *l, const folder_plan *p, const char *const *files,
                       size_t n_files, unsigned kinds, app_folder **out, size_t *n_out)
{
    /* The array's capacity is the power of two at or above its count: growing by doubling keeps
     * an event with thousands of folders linear. */
    size_t have = pow2_ceil(*n_out), need = *n_out + 1;
    if (need > have)
        *out = xrealloc(*out, pow2_ceil(need) * sizeof **out);
    app_folder *f = &(*out)[(*n_out)++];
    memset(f, 0, sizeof *f);
    f->arr_path = xstrdup(p->fp.arr);
    f->kinds = kinds;
    for (size_t i = 0; i < p->n_deliv && !f->plex_path; i++)
        if (l->targets[p->deliv[i].target].cfg->kind == TARGET_PLEX && !p->deliv[i].unresolved) {
            f->plex_path = xstrdup(p->deliv[i].path);
            f->plex_section = queue_intern(a->q, p->deliv[i].library_id);
        }
    if (!f->plex_path)
        f->plex_path = xstrdup(p->fp.plex);
    f->deliv = xcalloc(p->n_deliv ? p->n_deliv : 1, sizeof *f->deliv);
    for (size_t i = 0; i < p->n_deliv; i++)
        f->deliv[f->n_deliv++] = (q_delivery){
            .target = queue_intern(a->q, l->targets[p->deliv[i].target].cfg->name),
            .library = queue_intern(a->q, p->deliv[i].library_id),
            .state = p->deliv[i].unresolved ? DELIVERY_UNRESOLVED : DELIVERY_PENDING,
        };
    f->files = xcalloc(n_files ? n_files : 1, sizeof *f->files);
    for (size_t j = 0; j < n_files; j++)
        f->files[f->n_files++] = xstrdup(files[j]);
}

int app_map_folder(app_t *a, const char *arr_path, const char *const *files, size_t n_files, unsigned kinds,
                   bool allow_library_root, app_folder **out, size_t *n_out, const char **err,
                   char **skip_reason)
{
    *skip_reason = NULL;
    folder_libs libs;
    app_folder_libs(a, &libs);
    folder_plan p;
    if (folders_plan(&a->cfg, &libs, arr_path, &p, err) < 0)
        return -1;
    if (!allow_library_root && p.library_root) {
        folder_plan_free(&p);
        *err = "folder is a library location or above one; a webhook never scans a whole library";
        return -1;
    }
    if (p.verdict != FOLDER_MATCHED)
        app_sections_miss(a);
    if (p.verdict == FOLDER_NO_MATCH) {
        *skip_reason = folders_skip_reason(&libs, &p);
        log_warn("skipped: %s", log_esc(*skip_reason));
        folder_plan_free(&p);
        return 0;
    }
    warn_outside(&libs, &p);
    add_folder(a, &libs, &p, files, n_files, kinds, out, n_out);
    folder_plan_free(&p);
    return 1;
}

/* ---- group commit ---- */

static void on_flush_idle(uv_idle_t *h) { (void)h; }

void app_stage(app_t *a, staged_req *s)
{
    /* The commit runs after the loop's poll: keep the loop from sleeping in it, or a request
     * parsed from bytes already read (the next of a pipelined batch, parsed when the previous
     * answer went out) would wait for whatever wakes the loop next. */
    if (!a->stop_done)
        uv_idle_start(&a->flush_idle, on_flush_idle);
    a->staged_events += s->n_folders;
    s->next = NULL;
    if (a->staged_tail)
        a->staged_tail->next = s;
    else
        a->staged_head = s;
    a->staged_tail = s;
}

/* Apply a request's folders to the queue, which stages the entry snapshots the commit writes. */
static void log_applied(const char *src, const app_folder *f, const q_add_result *res)
{
    if (res->kind == QADD_NEW && res->entry->state == ENTRY_UNRESOLVED)
        log_info("%s: '%s' unresolved (no library list of a media server yet); queued until one arrives", src,
                 log_esc(f->arr_path));
    else if (res->kind == QADD_NEW)
        log_info("%s: queued '%s' for %zu librar%s%s", src, log_esc(f->arr_path), f->n_deliv,
                 f->n_deliv == 1 ? "y" : "ies", res->absorbed ? " (absorbed nested folders)" : "");
    else if (res->kind == QADD_MERGED)
        log_info("%s: merged '%s' into queued '%s' (%u events)", src, log_esc(f->arr_path),
                 log_esc(res->entry->path), res->entry->events);
    else
        log_info("%s: '%s' is syncing now; it runs again afterwards", src, log_esc(res->entry->path));
}

/* Apply a request's folders to the queue, which stages the entry snapshots the commit writes. */
_Static_assert(APP_COUNT <= 16, "an entry's sources keep one bit per arr_app in 16 bits");
static void apply_staged(app_t *a, staged_req *s)
{
    uint64_t now = wall_ms();
    const char *src = arr_app_name(s->app);
    for (size_t i = 0; i < s->n_folders; i++) {
        app_folder *f = &s->folders[i];
        q_event ev = {
            .path = f->arr_path,
            .deliv = f->deliv,
            .n_deliv = f->n_deliv,
            .kinds = f->kinds,
            .files = (const char *const *)f->files,
            .n_files = f->n_files,
            .source_bit = 1u << s->app,
            .manual = s->manual,
            .at = s->at,
            .title = s->title,
            .event = q_event_kind_of(f->kinds, s->manual || !ARR_APP_HAS_PAYLOAD(s->app)),
        };
        q_add_result res;
        if (queue_add(a->q, &ev, now, &res) < 0) {
            /* Not reached while the request's MAX_PENDING check holds; answered 503 if it is. */
            log_error("queue is full (MAX_PENDING=%ld): '%s' is not queued", a->cfg.max_pending,
                      log_esc(f->arr_path));
            s->queue_full = true;
            continue;
        }
        f->applied = true;
        f->entry_id = res.entry->id;
        f->state = res.entry->state;
        f->kind = res.kind;
        f->carrier_path = xstrdup(res.entry->path);
        log_applied(src, f, &res);
    }
}

static void on_log_prepare(uv_prepare_t *h)
{
    app_t *a = container_of(h, app_t, log_prepare);
    if (a->q && !a->stopping) {
        if (follow_wall_clock(a))
            app_schedule(a); /* the queue's next wakeup moved with the step */
    }
    log_flush();
}

/* ---- acknowledging (DURABILITY=full: after the WAL is on stable storage) ---- */

/* A write of the state database that fails the same way turn after turn (a full disk) is logged
 * once when the streak begins and once when it ends; the count is in /metrics and each refused
 * request carries the reason in its 503. `verb` says what failed to happen ("write", "make
 * durable"), `what` names one try ("commit", "sync"). */
static void note_write(uint64_t *streak, int rc, const char *verb, const char *what, const char *err)
{
    if (rc < 0) {
        if ((*streak)++ == 0)
            log_error("could not %s the state database: %s; webhooks are answered 503 (and their "
                      "scans kept in memory only) until it works again",
                      verb, log_esc(err));
        else
            log_debug("%s of the state database failed again: %s", what, log_esc(err));
    } else if (*streak) {
        log_info("the state database can be written again (after %llu failed %s%s)",
                 (unsigned long long)*streak, what, *streak == 1 ? "" : "s");
        *streak = 0;
    }
}

/* Each staged request's own completion callback says what its commit came to. */
static void answer_all(staged_req *list, bool ok, const char *err)
{
    for (staged_req *s = list, *next; s; s = next) {
        next = s->next;
        s->done(s->done_ud, s, ok, err);
    }
}

/* Answer the requests a WAL sync covered: 2xx when it worked (rc 0), else 503 with the reason
 * (`step` names the call that failed). */
static void wal_answer(app_t *a, staged_req *list, int rc, const char *step)
{
    char err[320] = "";
    if (rc < 0) {
        a->counters.commit_failures++;
        snprintf(err, sizeof err, "%s-wal: %s%s%s", store_path(a->store), step, *step ? ": " : "",
                 uv_strerror(rc));
    }
    note_write(&a->sync_fail_streak, rc, "make durable", "sync", err);
    answer_all(list, rc == 0, err);
}

static void wal_sync_start(app_t *a);

static void on_wal_synced(uv_fs_t *req)
{
    app_t *a = container_of(req, app_t, wal_sync);
    int rc = req->result < 0 ? (int)req->result : 0;
    uv_fs_req_cleanup(req);
    a->wal_syncing = false;
    staged_req *list = a->syncing;
    a->syncing = NULL;
    wal_answer(a, list, rc, "fdatasync");
    wal_sync_start(a);
}

/* One sync in flight at a time; it covers every commit made before it began, so what commits
 * meanwhile rides on the next one. */
static void wal_sync_start(app_t *a)
{
    if (a->wal_syncing || !a->sync_wait_head)
        return;
    staged_req *list = a->sync_wait_head;
    a->sync_wait_head = a->sync_wait_tail = NULL;
    int fd = store_wal_fd(a->store);
    int rc = fd < 0 ? fd : uv_fs_fdatasync(a->loop, &a->wal_sync, fd, on_wal_synced);
    if (rc < 0) {
        wal_answer(a, list, rc, "");
        return;
    }
    a->syncing = list;
    a->wal_syncing = true;
}

/* At shutdown: sync on the loop (the final state included) and answer everyone still waiting,
 * oldest first (a sync in flight finds nothing left to answer when it ends). */
static void wal_sync_now(app_t *a)
{
    if (a->cfg.durability != DURABILITY_FULL)
        return;
    int fd = store_wal_fd(a->store);
    int rc = fd < 0 ? fd : fdatasync(fd) == 0 ? 0 : -errno;
    staged_req *list = a->syncing;
    staged_req **end = &list;
    while (*end)
        end = &(*end)->next;
    *end = a->sync_wait_head;
    a->syncing = a->sync_wait_head = a->sync_wait_tail = NULL;
    wal_answer(a, list, rc, "fdatasync");
}

static void stage_entry(void *ud, const q_entry *e)
{
    store_stage_entry_put(ud, e);
}

/* The state database's files were removed or replaced under the daemon (store_commit said
 * -ESTALE): the store starts a fresh one holding every entry the queue has. */
static void refill_store(void *ud, store_t *s)
{
    app_t *a = ud;
    queue_foreach(a->q, stage_entry, s);
    sources_stage_all(&a->sources, s);
}

static void on_commit_check(uv_check_t *h)
{
    app_t *a = container_of(h, app_t, commit_check);
    sources_flush(&a->sources, a->store); /* the turn's senders ride along with its commit */
    if (!store_has_staged(a->store) && !a->staged_head) {
        uv_idle_stop(&a->flush_idle);
        return;
    }
    char err[512] = "";
    staged_req *list = a->staged_head;
    a->staged_head = a->staged_tail = NULL;
    a->staged_events = 0;
    for (staged_req *s = list; s; s = s->next)
        apply_staged(a, s);
    int rc = store_commit(a->store, err, sizeof err);
    /* Renewed, the store works again, though this turn's requests still get 503: what they
     * brought was committed into the replaced files. */
    bool renewed = rc == -ESTALE && store_renew(a->store, refill_store, a, err, sizeof err) == 0;
    a->counters.commits++;
    if (rc < 0)
        a->counters.commit_failures++;
    note_write(&a->commit_fail_streak, renewed ? 0 : rc, "write", "commit", err);
    log_flush(); /* the turn's log lines, in one write, before its answers */
    if (rc == 0 && list && a->cfg.durability == DURABILITY_FULL) {
        if (a->sync_wait_tail)
            a->sync_wait_tail->next = list;
        else
            a->sync_wait_head = list;
        while (list->next)
            list = list->next;
        a->sync_wait_tail = list;
        wal_sync_start(a);
    } else {
        answer_all(list, rc == 0, rc == 0 ? NULL : err);
    }
    if (list)
        app_schedule(a);
    /* Applying the events staged entry snapshots: write them on the next turn, without letting
     * the loop sleep first (under load they ride along with the next turn's events). After a
     * failure, what is left waits for a turn something else brings (a request, a sync, the
     * prune timer at least every minute): retrying at once would spin on a full disk. */
    if (((rc == 0 && store_has_staged(a->store)) || a->staged_head) && !a->stopping)
        uv_idle_start(&a->flush_idle, on_flush_idle);
    else
        uv_idle_stop(&a->flush_idle);
}

/* ---- history pruning ---- */

static void on_prune_timer(uv_timer_t *t)
{
    app_t *a = container_of(t, app_t, prune_timer);
    uint64_t keep = (uint64_t)a->cfg.history_days * 86400000u;
    uint64_t now = wall_ms();
    int n = store_prune(a->store, now > keep ? now - keep : 0, PRUNE_BATCH);
    if (n > 0)
        log_debug("pruned %d history row%s older than %d days", n, n == 1 ? "" : "s", a->cfg.history_days);
    /* A full batch means more are waiting: come back on the next turn rather than in a minute. */
    uv_timer_start(&a->prune_timer, on_prune_timer, n == PRUNE_BATCH ? 0 : PRUNE_INTERVAL_MS, 0);
}

/* ---- systemd: watchdog and status ---- */

#define NOTIFY_STATUS_MS 10000u /* STATUS= refresh without a watchdog (with one: every ping) */

static void update_status(app_t *a)
{
    size_t n = queue_count(a->q), syncing = sync_count(&a->sync), parked = queue_count_state(a->q, ENTRY_PARKED);
    const char *note = a->reload_refused ? "Reload refused, previous configuration running (see the log). " : "";
    if (a->stopping)
        notify_status("Stopping: %zu sync%s in flight, %zu folder%s queued", syncing, syncing == 1 ? "" : "s", n,
                      n == 1 ? "" : "s");
    else if (parked)
        notify_status("%sQueue: %zu folder%s (%zu syncing, %zu parked: see the web page)", note, n,
                      n == 1 ? "" : "s", syncing, parked);
    else
        notify_status("%sQueue: %zu folder%s (%zu syncing)", note, n, n == 1 ? "" : "s", syncing);
}

/* A ping from a loop timer: a loop stuck anywhere stops pinging, and systemd restarts it. */
static void on_watchdog(uv_timer_t *t)
{
    app_t *a = container_of(t, app_t, watchdog_timer);
    notify_watchdog();
    update_status(a);
}

/* Under systemd only (NOTIFY_SOCKET): ping at half WATCHDOG_USEC when the watchdog is on, and
 * keep STATUS= current. Without NOTIFY_SOCKET the timer never starts. */
static void start_notify_timer(app_t *a)
{
    if (!notify_enabled())
        return;
    uint64_t wd_us = notify_watchdog_usec();
    uint64_t every = wd_us ? wd_us / 2000u : NOTIFY_STATUS_MS;
    if (every == 0)
        every = 1;
    if (wd_us)
        log_debug("systemd watchdog: %llu ms, pinging every %llu ms", (unsigned long long)(wd_us / 1000u),
                  (unsigned long long)every);
    uv_timer_start(&a->watchdog_timer, on_watchdog, every, every);
}

/* ---- reload ---- */

static bool str_changed(const char *x, const char *y)
{
    if (!x || !y)
        return x != y;
    return strcmp(x, y) != 0;
}

/* The fs checks' mounts: each anchor's directory and each rclone mount root (a stat that hangs
 * there holds the folders below, not the whole queue). At start and after each reload. */
static void apply_mount_roots(app_t *a)
{
    size_t n = a->cfg.n_anchors + a->cfg.n_mounts;
    const char **roots = xcalloc(n ? n : 1, sizeof *roots);
    char **dirs = xcalloc(a->cfg.n_anchors ? a->cfg.n_anchors : 1, sizeof *dirs);
    size_t k = 0;
    for (size_t i = 0; i < a->cfg.n_anchors; i++)
        roots[k++] = dirs[i] = paths_dirname(a->cfg.anchors[i]);
    for (size_t i = 0; i < a->cfg.n_mounts; i++)
        roots[k++] = a->cfg.mounts[i].root;
    fscheck_set_mounts(a->fs, roots, k);
    for (size_t i = 0; i < a->cfg.n_anchors; i++)
        free(dirs[i]);
    free(dirs);
    free(roots);
}

static void on_hostpaths_done(void *ud) { ((app_t *)ud)->hostpaths = NULL; }

/* The configured places as things are now, at start and after each reload: the run-time warnings
 * may be said again, and a host path MINIMUM_AGE or ANCHOR_FILES cannot see is a warning. */
static void recheck_places(app_t *a)
{
    sync_forget_warnings(&a->sync);
    hostpaths_cancel(a->hostpaths);
    hostpaths_warn(a->fs, &a->cfg, on_hostpaths_done, a, &a->hostpaths);
}

static void app_reload(app_t *a)
{
    notify_reloading();
    config_t next;
    config_report rep = {0};
    int rc = config_load(&next, &a->env, a->env_file, &rep);
    config_report_log(&rep, "reload refused, keeping the running configuration");
    config_report_free(&rep);
    if (rc < 0) {
        /* Nothing of the new file is applied: the queue, the connections and the running
         * configuration stay exactly as they were. */
        a->reload_refused = true;
        notify_ready();
        update_status(a);
        return;
    }
    if (next.port != a->cfg.port || str_changed(next.bind_address, a->cfg.bind_address) ||
        str_changed(next.state_dir, a->cfg.state_dir))
        log_warn("PORT, BIND_ADDRESS and STATE_DIR changes take effect only after a restart");
    /* Keep what needs a restart. */
    free(next.bind_address);
    next.bind_address = xstrdup(a->cfg.bind_address);
    free(next.state_dir);
    next.state_dir = xstrdup(a->cfg.state_dir);
    next.port = a->cfg.port;
    bool tz_changed = str_changed(next.tz, a->cfg.tz);
    /* The targets keep what they learnt of the servers that stay the same; they point into the
     * configuration, so they move to the new one before the old is freed. */
    config_t old = a->cfg;
    a->cfg = next;
    free(a->ftargets);
    a->ftargets = NULL;
    targets_reload(&a->targets, &a->cfg);
    config_free(&old);
    log_set_level((log_level_t)a->cfg.log_level);
    if (tz_changed && a->cfg.tz && *a->cfg.tz) {
        setenv("TZ", a->cfg.tz, 1);
        log_init();
    }
    if (a->cfg.manual_pass) {
        free(a->manual_pass);
        a->manual_pass = xstrdup(a->cfg.manual_pass);
    }
    queue_params p;
    queue_params_from(&a->cfg, &p);
    queue_set_params(a->q, &p);
    apply_mount_roots(a);
    recheck_places(a);
    int unparked = queue_unpark_all(a->q, wall_ms());
    log_info("configuration reloaded%s", unparked ? "; parked folders retry now" : "");
    if (unparked) {
        log_info("unparked %d folder%s", unparked, unparked == 1 ? "" : "s");
        tell_event(a->tell, NEV_RESUMED, NULL, NULL, "configuration reloaded: %d parked folder%s retr%s now", unparked,
                     unparked == 1 ? "" : "s", unparked == 1 ? "ies" : "y");
    }
    notify_out_configure(a->nout, a->cfg.notify, a->cfg.n_notify);
    tell_log_destinations(a->tell);
    trash_lists_changed(a->trash);
    remap_all(a);
    a->reload_refused = false;
    notify_ready();
    update_status(a);
}

/* ---- shutdown ---- */

static void close_nothing(uv_handle_t *h) { (void)h; }

static void on_httpc_closed(void *ud) { (void)ud; }
static void on_fs_closed(void *ud) { (void)ud; }
static void on_srv_closed(void *ud) { (void)ud; }

/* Shutdown: stop accepting, let the syncs in flight finish for up to STOP_GRACE_MS, then
 * cancel the rest (their entries are on disk as interrupted and run again at the next start),
 * answer and commit what is staged, and close every handle so uv_run returns. */
#define STOP_GRACE_MS 10000u

static void stop_finish(app_t *a)
{
    if (a->stop_done)
        return;
    a->stop_done = true;
    size_t left = sync_count(&a->sync);
    if (left)
        log_warn("%zu sync%s still in flight: cancelled; %s queued and run%s again at the next start", left,
                 left == 1 ? "" : "s", left == 1 ? "it stays" : "they stay", left == 1 ? "s" : "");
    sync_cancel_all(&a->sync);
    /* Answer what is staged (it commits now), then persist the queue's latest state. */
    on_commit_check(&a->commit_check);
    char err[256];
    if (store_has_staged(a->store) && store_commit(a->store, err, sizeof err) < 0)
        log_error("could not write the final state: %s", log_esc(err));
    wal_sync_now(a);
    log_info("stopped: %zu folder%s stay%s queued for the next start", queue_count(a->q),
             queue_count(a->q) == 1 ? "" : "s", queue_count(a->q) == 1 ? "s" : "");
    log_set_buffered(false);
    uv_timer_stop(&a->queue_timer);
    uv_close((uv_handle_t *)&a->queue_timer, close_nothing);
    uv_close((uv_handle_t *)&a->prune_timer, close_nothing);
    uv_close((uv_handle_t *)&a->hup_timer, close_nothing);
    uv_close((uv_handle_t *)&a->watchdog_timer, close_nothing);
    uv_close((uv_handle_t *)&a->stop_timer, close_nothing);
    tell_stop(a->tell);
    a->tell = NULL;
    notify_out_close(a->nout); /* never durable: what is queued is dropped */
    a->nout = NULL;
    uv_close((uv_handle_t *)&a->commit_check, close_nothing);
    uv_close((uv_handle_t *)&a->flush_idle, close_nothing);
    uv_close((uv_handle_t *)&a->log_prepare, close_nothing);
    uv_close((uv_handle_t *)&a->sig_hup, close_nothing);
    uv_close((uv_handle_t *)&a->sig_term, close_nothing);
    uv_close((uv_handle_t *)&a->sig_int, close_nothing);
    if (a->reaping)
        uv_close((uv_handle_t *)&a->sig_chld, close_nothing);
    if (a->srv) {
        http_server_close(a->srv, on_srv_closed, a);
        a->srv = NULL;
    }
    httpc_close(a->httpc, on_httpc_closed, a);
    a->httpc = NULL;
    hostpaths_cancel(a->hostpaths); /* its stat would never answer once fscheck is closed */
    a->hostpaths = NULL;
    fscheck_close(a->fs, on_fs_closed, a);
    a->fs = NULL;
}

static void on_stop_timer(uv_timer_t *t)
{
    app_t *a = container_of(t, app_t, stop_timer);
    stop_finish(a);
}

/* From app_schedule while stopping: once no sync is left, finish on the next turn (not from
 * inside the sync's own callback, which still holds its request). */
static void stop_when_idle(app_t *a)
{
    if (a->stop_done || sync_count(&a->sync))
        return;
    uv_timer_start(&a->stop_timer, on_stop_timer, 0, 0);
}

static void app_stop(app_t *a, int code)
{
    if (a->stopping) {
        /* A second SIGTERM/SIGINT: do not wait for the syncs in flight. */
        if (!a->stop_done) {
            log_info("asked again: not waiting for the syncs in flight");
            stop_finish(a);
        }
        return;
    }
    a->stopping = true;
    a->exit_code = code;
    notify_stopping();
    if (a->srv)
        http_server_stop_accepting(a->srv);
    uv_timer_stop(&a->queue_timer);
    targets_stop(&a->targets, NULL, NULL); /* no list is asked any more; its timer closes */
    trash_stop(a->trash, NULL, NULL);
    a->trash = NULL;
    size_t n = sync_count(&a->sync);
    update_status(a);
    if (n == 0) {
        stop_finish(a);
        return;
    }
    log_info("stopping: no new connections; waiting up to %u s for %zu sync%s in flight", STOP_GRACE_MS / 1000u,
             n, n == 1 ? "" : "s");
    uv_timer_start(&a->stop_timer, on_stop_timer, STOP_GRACE_MS, 0);
}

static void on_hup_timer(uv_timer_t *t)
{
    app_t *a = container_of(t, app_t, hup_timer);
    unsigned n = a->hup_pending;
    a->hup_pending = 0;
    if (a->stopping)
        return;
    if (n > 1)
        log_info("SIGHUP (%u signals): reloading %s", n, a->env_file ? log_esc(a->env_file) : "./.env");
    else
        log_info("SIGHUP: reloading %s", a->env_file ? log_esc(a->env_file) : "./.env");
    app_reload(a);
}

static void on_signal(uv_signal_t *h, int signum)
{
    app_t *a = h->data;
    if (signum == SIGHUP) {
        if (a->stopping) {
            log_info("SIGHUP ignored: stopping");
            return;
        }
        /* A burst of signals (a loop of `kill -HUP`) is one reload and one log line: the
         * reload runs on the next loop turn, and every SIGHUP until then joins it. */
        if (a->hup_pending++ == 0)
            uv_timer_start(&a->hup_timer, on_hup_timer, 0, 0);
        return;
    }
    log_info("%s received", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    app_stop(a, 0);
}

/* As PID 1 (a container without an init), processes orphaned inside the container (e.g. those
 * of `docker exec` sessions) become our children; reap them so no zombie is left. The daemon
 * itself starts no child process, so no exit status is taken from anyone who waits for it. */
static void on_sigchld(uv_signal_t *h, int signum)
{
    (void)h;
    (void)signum;
    int status;
    while (waitpid(-1, &status, WNOHANG) > 0)
        ;
}

static void start_reaper(app_t *a)
{
    if (getpid() != 1)
        return;
    uv_signal_init(a->loop, &a->sig_chld);
    uv_signal_start(&a->sig_chld, on_sigchld, SIGCHLD);
    uv_unref((uv_handle_t *)&a->sig_chld);
    a->reaping = true;
    on_sigchld(&a->sig_chld, SIGCHLD); /* any orphan that ended before the handler was there */
}

/* The one line for a STATE_DIR this user cannot write: the path, who we run as and the two
 * fixes, worded for a container and for a plain run alike. */
static void log_state_dir_denied(const char *dir, int rc)
{
    unsigned uid = (unsigned)geteuid(), gid = (unsigned)getegid();
    if (rc == -EROFS)
        log_error("STATE_DIR %s is on a read-only file system: mount a writable folder or volume there "
                  "(with --read-only, STATE_DIR must be a volume)",
                  log_esc(dir));
    else
        log_error("STATE_DIR %s is not writable by uid %u gid %u: give that user the folder (chown -R %u:%u it, or "
                  "the host folder mounted there) or run as its owner (user: in compose, --user)",
                  log_esc(dir), uid, gid, uid, gid);
}

/* ---- start-up ---- */

/* MANUAL_PASS unset: use (or create) a random one in STATE_DIR, mode 0600. The log names the
 * file, never the password. */
static char *manual_password(const config_t *c)
{
    if (c->manual_pass && *c->manual_pass)
        return xstrdup(c->manual_pass);
    char *path = xasprintf("%s/manual-password", c->state_dir);
    char buf[128];
    char *pass = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n > 0) {
            buf[n] = '\0';
            buf[strcspn(buf, "\r\n")] = '\0';
            if (*buf)
                pass = xstrdup(buf);
        }
    }
    if (!pass) {
        static const char alphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
        unsigned char rnd[24];
        if (random_bytes(rnd, sizeof rnd) < 0)
            log_fatal("cannot read random bytes for MANUAL_PASS");
        for (size_t i = 0; i < sizeof rnd; i++)
            buf[i] = alphabet[rnd[i] % (sizeof alphabet - 1)];
        buf[sizeof rnd] = '\0';
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || write(fd, buf, strlen(buf)) != (ssize_t)strlen(buf) || write(fd, "\n", 1) != 1) {
            log_error("MANUAL_PASS is not set and '%s' cannot be written: %s", log_esc(path), strerror(errno));
            if (fd >= 0)
                close(fd);
            free(path);
            return NULL;
        }
        fchmod(fd, 0600);
        close(fd);
        pass = xstrdup(buf);
        log_warn("MANUAL_PASS is not set: generated a password for user '%s' in %s", log_esc(c->manual_user),
                 log_esc(path));
    } else {
        log_info("MANUAL_PASS is not set: using the password stored in %s", log_esc(path));
    }
    free(path);
    return pass;
}

typedef struct load_ctx {
    app_t *a;
    size_t entries, events;
    int64_t max_id;
} load_ctx;

static void load_entry(void *ud, const q_entry *e)
{
    load_ctx *l = ud;
    int rc = queue_restore(l->a->q, e, wall_ms());
    if (rc == 0)
        l->entries++;
    else if (rc == -EEXIST && e->id > 0)
        /* An older version kept one entry per Plex section: the folder's other rows are the
         * same folder, which the first row already queues. */
        store_stage_entry_del(l->a->store, e->id);
    if (e->id > l->max_id)
        l->max_id = e->id;
}

static void load_event(void *ud, const store_event *ev)
{
    load_ctx *l = ud;
    /* No deliveries yet: the entry waits unresolved until the re-map after the load. */
    q_event qe = {
        .path = ev->arr_path,
        .files = ev->files,
        .n_files = ev->n_files,
        .source_bit = ev->source_bit,
        .manual = ev->manual,
        .at = ev->at,
    };
    q_add_result res;
    if (queue_add(l->a->q, &qe, wall_ms(), &res) == 0) {
        store_stage_event_done(l->a->store, ev->id);
        l->events++;
    }
}

static void load_last_success(void *ud, const char *path, uint64_t at)
{
    load_ctx *l = ud;
    queue_note_success(l->a->q, path, at);
}

static void load_source(void *ud, const store_source *src)
{
    load_ctx *l = ud;
    sources_load(&l->a->sources, src);
}

static void mark_parked_targets(void *ud, const q_entry *e)
{
    for (size_t i = 0; i < e->n_deliv; i++)
        if (e->deliv[i].state == DELIVERY_PARKED)
            targets_mark_refused(ud, e->deliv[i].target);
}

static bool is_loopback(const char *addr)
{
    return strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0 || strcmp(addr, "localhost") == 0;
}

/* The state: the database opened (or refused, saying why), the web password, the queue loaded
 * with what the last run left. */
static int start_state(app_t *a)
{
    char err[512] = "";
    /* store_open creates STATE_DIR with its parents and checks it can be written; its message
     * names the directory or the file (missing, not a directory, corrupt-and-stuck, newer). */
    int rc = store_open(&a->store, a->cfg.state_dir,
                        a->cfg.durability == DURABILITY_FULL ? STORE_SYNC_OWNER : STORE_SYNC_NONE, err, sizeof err);
    if (rc == -EACCES || rc == -EPERM || rc == -EROFS) {
        log_state_dir_denied(a->cfg.state_dir, rc);
        return -1;
    }
    if (rc < 0) {
        log_error("cannot use STATE_DIR '%s': %s", log_esc(a->cfg.state_dir), log_esc(err));
        return -1;
    }
    a->manual_pass = manual_password(&a->cfg);
    if (!a->manual_pass)
        return -1;
    queue_params p;
    queue_params_from(&a->cfg, &p);
    a->q = queue_new(&p, on_queue_change, a);
    load_ctx lc = {.a = a};
    store_loader ld = {.ud = &lc, .entry = load_entry, .event = load_event, .last_success = load_last_success,
                       .source = load_source};
    if (store_load(a->store, &ld) < 0) {
        log_error("cannot read the state database %s", log_esc(store_path(a->store)));
        return -1;
    }
    int64_t max_id = store_max_entry_id(a->store);
    queue_set_next_id(a->q, (max_id > lc.max_id ? max_id : lc.max_id) + 1);
    if (lc.entries || lc.events)
        log_info("recovered %zu queued folder%s and %zu unapplied event%s from %s", lc.entries,
                 lc.entries == 1 ? "" : "s", lc.events, lc.events == 1 ? "" : "s", log_esc(store_path(a->store)));
    if (store_has_staged(a->store) && store_commit(a->store, err, sizeof err) < 0) {
        log_error("cannot write the state database: %s", err);
        return -1;
    }
    return 0;
}

/* The clients, what sync jobs work with, and the listening socket. */
static int start_io(app_t *a, uv_loop_t *loop, const app_http *http)
{
    a->httpc = httpc_new(loop);
    a->fs = fscheck_new(loop, 10000);
    a->sync = (sync_env){.cfg = &a->cfg, .q = a->q, .store = a->store, .httpc = a->httpc, .fs = a->fs,
                         .targets = &a->targets, .m = &a->counters, .jobs = a->sync.jobs};
    list_init(&a->sync.jobs);
    http_server_opts so = {
        .bind_address = a->cfg.bind_address,
        .port = a->cfg.port,
        .max_header_bytes = a->cfg.max_header_bytes,
        .header_timeout_ms = a->cfg.header_timeout_ms,
        .idle_timeout_ms = a->cfg.idle_timeout_ms,
        .max_connections = a->cfg.max_connections,
        .max_buffered_bytes = a->cfg.max_buffered_bytes,
        .body_limit = http->body_limit,
        .head_check = http->head_check,
        .handler = http->handler,
        .ud = a,
    };
    char err[512] = "";
    int rc = http_server_start(loop, &so, &a->srv, err, sizeof err);
    if (rc == UV_EADDRINUSE) {
        log_error("cannot listen on %s:%d: the port is already in use, most likely by another "
                  "plex-servarr-sync or the Python script it replaces; stop that one (check with: ss -ltnp "
                  "'sport = :%d'), or set PORT to a free port", log_esc(a->cfg.bind_address), a->cfg.port,
                  a->cfg.port);
        return -1;
    }
    if (rc < 0) {
        log_error("%s", err); /* it names the address, the port and the reason */
        return -1;
    }
    return 0;
}

/* The loop's own handles: timers, the group commit's check, the log's prepare, signals. */
static void start_handles(app_t *a, uv_loop_t *loop)
{
    uv_timer_init(loop, &a->queue_timer);
    uv_timer_init(loop, &a->prune_timer);
    uv_timer_init(loop, &a->hup_timer);
    uv_timer_init(loop, &a->watchdog_timer);
    uv_timer_init(loop, &a->stop_timer);
    uv_idle_init(loop, &a->flush_idle);
    uv_check_init(loop, &a->commit_check);
    uv_check_start(&a->commit_check, on_commit_check);
    uv_unref((uv_handle_t *)&a->commit_check);
    uv_prepare_init(loop, &a->log_prepare);
    uv_prepare_start(&a->log_prepare, on_log_prepare);
    uv_unref((uv_handle_t *)&a->log_prepare);
    log_set_buffered(true);
    uv_signal_init(loop, &a->sig_hup);
    uv_signal_init(loop, &a->sig_term);
    uv_signal_init(loop, &a->sig_int);
    a->sig_hup.data = a->sig_term.data = a->sig_int.data = a;
    uv_signal_start(&a->sig_hup, on_signal, SIGHUP);
    uv_signal_start(&a->sig_term, on_signal, SIGTERM);
    uv_signal_start(&a->sig_int, on_signal, SIGINT);
    start_reaper(a);
}

/* What the start tells: where it listens, the servers, the mounts, what is unsafe. */
static void log_start(const app_t *a)
{
    log_info("plex-servarr-sync %s listening on %s:%d, state in %s (DURABILITY=%s)", PSS_VERSION,
             log_esc(a->cfg.bind_address), http_server_port(a->srv), log_esc(store_path(a->store)),
             a->cfg.durability == DURABILITY_FULL ? "full" : "process");
    if (a->cfg.n_targets == 0)
        log_warn("no media server is configured: PLEX_URL, JELLYFIN_URL, EMBY_URL and MEDIA_SERVERS are not set; "
                 "webhooks are accepted and wait as unresolved");
    for (size_t i = 0; i < a->cfg.n_targets; i++) {
        const cfg_target *t = &a->cfg.targets[i];
        log_info("media server %s (%s) at %s", t->name, target_kind_name(t->kind), log_esc(t->url));
        if (!*t->token)
            log_warn("%s is not set: %s will refuse the calls", t->token_var, t->name);
    }
    if (a->cfg.use_rclone && a->cfg.n_mounts == 0)
        log_info("no rclone mount configured (RCLONE_RC_URL / RCLONE_MOUNTS): the rclone step is skipped");
    for (size_t i = 0; i < a->cfg.n_mounts; i++)
        log_info("rclone mount %s via %s%s%s", log_esc(a->cfg.mounts[i].root), log_esc(a->cfg.mounts[i].url),
                 a->cfg.mounts[i].fs ? " fs=" : "", a->cfg.mounts[i].fs ? log_esc(a->cfg.mounts[i].fs) : "");
    if (!a->cfg.webhook_user && !a->cfg.webhook_pass && !is_loopback(a->cfg.bind_address))
        log_warn("webhooks need no credentials and BIND_ADDRESS is %s: anyone who reaches this port can queue "
                 "scans; set WEBHOOK_USER and WEBHOOK_PASS",
                 log_esc(a->cfg.bind_address));
}

/* Notifications, the media servers, the trash; then the queue's first re-map and timer. */
static int start_services(app_t *a, uv_loop_t *loop)
{
    a->nout = notify_out_new(loop, a->httpc, NULL);
    notify_out_configure(a->nout, a->cfg.notify, a->cfg.n_notify);
    a->tell = tell_new(loop, a->nout, &a->targets, a->env_file);
    tell_log_destinations(a->tell);
    if (targets_start(&a->targets, loop, a->httpc, &a->cfg, &targets_hooks_of_app, a) < 0) {
        log_error("cannot start the media servers' timer");
        return -1;
    }
    /* A delivery parked before the restart waits, as it did, for a list read that proves the
     * target's token (the first one is on its way). */
    queue_foreach(a->q, mark_parked_targets, &a->targets);
    trash_env te = {.cfg = &a->cfg, .httpc = a->httpc, .fs = a->fs, .targets = &a->targets, .sync = &a->sync};
    a->trash = trash_new(loop, &te);
    /* Entries from an older version have no deliveries yet: map them now (each target still
     * unresolved until its list arrives). */
    remap_all(a);
    uv_timer_start(&a->prune_timer, on_prune_timer, 1000, 0);
    start_notify_timer(a);
    app_schedule(a);
    return 0;
}

int app_start(app_t *a, uv_loop_t *loop, const env_map *env, const char *env_file, config_t *cfg,
              const app_http *http)
{
    memset(a, 0, sizeof *a);
    a->loop = loop;
    list_init(&a->sync.jobs); /* before anything that may end in app_abort */
    a->cfg = *cfg;
    memset(cfg, 0, sizeof *cfg);
    a->env = *env;
    a->env_file = xstrdup(env_file);
    a->started_at = wall_ms();
    a->clock_wall = a->started_at;
    a->clock_mono = mono_ms();
    log_set_level((log_level_t)a->cfg.log_level);
    if (start_state(a) < 0 || start_io(a, loop, http) < 0)
        return -1;
    start_handles(a, loop);
    apply_mount_roots(a);
    log_start(a);
    recheck_places(a);
    if (start_services(a, loop) < 0)
        return -1;
    /* Listening, state loaded: systemd may now start what comes after us. */
    notify_ready();
    update_status(a);
    return 0;
}

void app_free(app_t *a)
{
    if (a->store && store_has_staged(a->store)) {
        char err[256];
        if (store_commit(a->store, err, sizeof err) < 0)
            log_error("could not write the final state: %s", log_esc(err));
    }
    if (a->q)
        queue_free(a->q);
    if (a->store)
        store_close(a->store);
    targets_free(&a->targets);
    sync_forget_warnings(&a->sync);
    free(a->ftargets);
    config_free(&a->cfg);
    env_map_free(&a->env);
    free(a->env_file);
    free(a->manual_pass);
    free(a->rclone_error);
    sources_free(&a->sources);
    if (a->probes)
        a->probes_free(a->probes);
    a->probes = NULL;
}

void app_abort(app_t *a)
{
    /* app_start fails before any timer or signal is initialized, except for the listen step,
     * which comes after the clients: close those. */
    a->stopping = true;
    notify_out_close(a->nout);
    a->nout = NULL;
    if (a->httpc)
        httpc_close(a->httpc, on_httpc_closed, a);
    a->httpc = NULL;
    hostpaths_cancel(a->hostpaths);
    a->hostpaths = NULL;
    if (a->fs)
        fscheck_close(a->fs, on_fs_closed, a);
    a->fs = NULL;
}
