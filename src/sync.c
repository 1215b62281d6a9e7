/* sync.c: one attempt of one queue entry, as a chain of async steps: minimum age, anchors,
 * rclone (forget + refresh, once per round), anchors again, then the round's deliveries that are
 * not done yet, all at once; then the round's history row and the outcome told to the queue.
 * No target is called before the rclone step has finished. */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "sync.h"
#include "folders.h"
#include "log.h"
#include "paths.h"
#include "rclone.h"
#include "util.h"

typedef struct sync_job sync_job;

/* One delivery in flight. */
typedef struct job_call {
    sync_job *job;
    size_t idx;            /* the entry's delivery index */
    target_op *op;         /* the request in flight */
    target_slot slot;      /* waiting for the target's turn */
    bool has_slot;         /* holds one of the target's request slots */
} job_call;

struct sync_job {
    sync_env *env;
    const sync_hooks *hooks;
    void *ud;            /* the hooks' */
    q_entry *e;          /* stable while CHECKING/SYNCING, until the job reports back to the queue
                          * (queue_age_checked, queue_hold, queue_sync_done may free it) */
    folder_paths fp;
    cfg_mount mount;     /* private copy: a reload may free the configuration mid-flight */
    bool has_mount;
    char **host_files;
    size_t n_host_files;
    fscheck_op *fs_op;
    rclone_op *rc_op;
    job_call *calls;     /* one per delivery of the entry (op NULL when not in flight) */
    size_t n_calls, in_flight;
    bool transient;      /* a step failed transiently: the attempt retries */
    char *error;         /* the first failure of the attempt */
    uint64_t started;    /* wall ms */
    uint64_t t0;         /* uv_hrtime() ns at the start: durations below a millisecond count */
    bool synced;         /* reached queue_sync_started */
    bool host_absent;    /* without rclone: the host path is missing */
    const char *rclone_outcome;
    list_node link;      /* env->jobs */
};

static void step_anchors_before_rclone(sync_job *j);
static void step_rclone(sync_job *j);
static void step_deliveries(sync_job *j);

static void job_free(sync_job *j)
{
    folder_paths_free(&j->fp);
    free(j->mount.root);
    free(j->mount.url);
    free(j->mount.fs);
    free(j->mount.user);
    free(j->mount.pass);
    for (size_t i = 0; i < j->n_host_files; i++)
        free(j->host_files[i]);
    free(j->host_files);
    free(j->calls);
    free(j->error);
    free(j);
}

static void note_error(sync_job *j, const char *msg)
{
    if (!j->error && msg)
        j->error = xstrdup(msg);
}

/* End of the job: the queue already knows; let go and tell the owner. */
static void job_release(sync_job *j, const sync_report *r)
{
    const sync_hooks *hooks = j->hooks;
    void *ud = j->ud;
    list_del(&j->link);
    job_free(j);
    hooks->ended(ud, r);
}

static void job_release_quiet(sync_job *j)
{
    sync_report r = {0};
    job_release(j, &r);
}

/* An anchor check failed: the queue holds the folder (or hands it to a waiting ancestor, freeing
 * j->e), and the job ends. */
static void job_hold(sync_job *j, const char *reason)
{
    int64_t id = j->e->id;
    char *path = xstrdup(j->e->path);
    q_entry *next = queue_hold(j->env->q, j->e, reason, wall_ms());
    j->e = NULL;
    if (next->id != id)
        log_info("'%s' taken over by '%s'", log_esc(path), log_esc(next->path));
    sync_report r = {.entry = next->id == id ? next : NULL, .path = path, .held = true, .hold_reason = reason};
    job_release(j, &r);
    free(path);
}

/* The minimum-age answer. When the folder is too young the queue sends it back to wait (or hands
 * it to a waiting ancestor, freeing j->e): say so, end the job and return false. */
static bool job_age_checked(sync_job *j, uint64_t newest)
{
    uint64_t now = wall_ms();
    int64_t id = j->e->id;
    char *path = xstrdup(j->e->path);
    bool old_enough;
    q_entry *next = queue_age_checked(j->env->q, j->e, newest, now, &old_enough);
    if (old_enough) {
        free(path);
        return true;
    }
    j->e = NULL;
    double wait = (double)(next->due > now ? next->due - now : 0) / 1000.0;
    if (next->id == id)
        log_info("'%s' is younger than MINIMUM_AGE; waiting %.1f s more", log_esc(path), wait);
    else
        log_info("'%s' is younger than MINIMUM_AGE; taken over by '%s', which runs in %.1f s",
                 log_esc(path), log_esc(next->path), wait);
    free(path);
    job_release_quiet(j);
    return false;
}

/* ---- the round's history row ---- */

static const char *delivery_result(delivery_state s)
{
    return s == DELIVERY_DONE ? "ok" : delivery_state_name(s);
}

/* The deliveries as the history keeps them (JSON text, new string). */
/* One delivery as the history keeps it: target, kind, library (null when unknown), its title,
 * the path the target is (or would be) sent, result, error. */
static cJSON *history_delivery(const targets *ts, const char *target, const char *library, const char *arr_path,
                               const char *result, const char *error)
{
    const target_rt *t = targets_find(ts, target);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "target", target);
    cJSON_AddStringToObject(o, "kind", t && t->cfg ? target_kind_name(t->cfg->kind) : "");
    if (library)
        cJSON_AddStringToObject(o, "library", library);
    else
        cJSON_AddNullToObject(o, "library");
    const media_library *lib = t && library ? media_libraries_find(&t->libs, library) : NULL;
    if (lib && lib->title)
        cJSON_AddStringToObject(o, "library_title", lib->title);
    char *tp = t && t->cfg ? folders_target_path(t->cfg, arr_path) : NULL;
    cJSON_AddStringToObject(o, "path", tp ? tp : "");
    free(tp);
    cJSON_AddStringToObject(o, "result", result);
    if (error)
        cJSON_AddStringToObject(o, "error", error);
    else
        cJSON_AddNullToObject(o, "error");
    return o;
}

static char *json_text(cJSON *arr)
{
    char *txt = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    char *out = xstrdup(txt ? txt : "[]");
    cJSON_free(txt);
    return out;
}

/* The deliveries as the history keeps them (JSON text, new string). */
char *sync_entry_deliveries(const targets *ts, const q_entry *e)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < e->n_deliv; i++) {
        const q_delivery *d = &e->deliv[i];
        cJSON_AddItemToArray(arr, history_delivery(ts, d->target, d->library, e->path, delivery_result(d->state),
                                                   d->error));
    }
    return json_text(arr);
}

char *sync_skipped_deliveries(const targets *ts, const char *arr_path)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < ts->n; i++) {
        const target_rt *t = &ts->v[i];
        char *tp = t->cfg ? folders_target_path(t->cfg, arr_path) : NULL;
        if (tp)
            cJSON_AddItemToArray(arr, history_delivery(ts, t->name, NULL, arr_path, "skipped", NULL));
        free(tp);
    }
    return json_text(arr);
}

/* Before the queue hears of the attempt: one row per round, updated by each attempt. */
static void stage_round(sync_job *j, sync_outcome o, uint64_t dur)
{
    q_entry *e = j->e;
    bool parked = o == SYNC_PARKED || (o == SYNC_OK && q_entry_count_deliveries(e, DELIVERY_PARKED) > 0);
    bool pending = o == SYNC_TRANSIENT || q_entry_count_deliveries(e, DELIVERY_UNRESOLVED) > 0;
    char *deliv = sync_entry_deliveries(j->env->targets, e);
    store_history h = {
        .id = e->round_id,
        .path = e->path,
        .sources = e->sources,
        .events = e->events,
        .kinds = e->kinds,
        .started = j->started,
        .duration_ms = dur,
        .status = pending ? HIST_RETRYING : parked ? HIST_PARKED : HIST_OK,
        .rclone = j->rclone_outcome ? j->rclone_outcome : "skipped",
        .deliveries = deliv,
        .error = j->error,
        .attempts = e->attempts + 1,
        .title = e->title,
        .event = (q_event_kind)e->event,
        .app = e->last_app,
    };
    int64_t id = store_stage_history(j->env->store, &h);
    free(deliv);
    if (id > 0 && id != e->round_id)
        queue_set_round(j->env->q, e, id);
}

/* After queue_sync_done: when the folder's work runs again, and as part of which entry (a
 * waiting ancestor may have taken it over). `next` is what the queue returned. */
static void log_next_run(int64_t id, const char *path, unsigned attempt, sync_outcome o, const char *error,
                         const q_entry *next, uint64_t now)
{
    if (!next)
        return;
    double wait = (double)(next->due > now ? next->due - now : 0) / 1000.0;
    bool same = next->id == id;
    if (o == SYNC_TRANSIENT && same)
        log_warn("sync of '%s' failed (attempt %u): %s; retry in %.1f s", log_esc(path), attempt,
                 log_esc(error), wait);
    else if (o == SYNC_TRANSIENT)
        log_warn("sync of '%s' failed (attempt %u): %s; taken over by '%s', which runs in %.1f s",
                 log_esc(path), attempt, log_esc(error), log_esc(next->path), wait);
    else if (!same)
        log_info("'%s' taken over by '%s', which runs in %.1f s", log_esc(path), log_esc(next->path), wait);
    else if (next->state == ENTRY_PARKED)
        log_error("parked '%s': %s", log_esc(path), log_esc(next->park_reason));
    else if (next->state == ENTRY_UNRESOLVED)
        log_info("'%s': waiting for a media server's library list for the rest", log_esc(path));
}

static void count_outcome(sync_env *env, sync_outcome o, bool parked_deliv, uint64_t dur_us)
{
    metrics_count_sync(env->m, dur_us);
    if (o == SYNC_TRANSIENT)
        env->m->scans_failed++;
    else if (o == SYNC_PARKED || parked_deliv)
        env->m->scans_parked++;
    else
        env->m->scans_ok++;
}

/* The attempt ended: the round's row, counters, a log line, then the queue decides what is
 * next. An entry parked as a whole (entry_park) is o == SYNC_PARKED. */
static void job_finish(sync_job *j, sync_outcome o)
{
    sync_env *env = j->env;
    q_entry *e = j->e;
    uint64_t now = wall_ms();
    uint64_t dur_us = (uv_hrtime() - j->t0) / 1000u, dur = dur_us / 1000u;
    if (o == SYNC_OK && j->transient)
        o = SYNC_TRANSIENT;
    stage_round(j, o, dur);
    bool parked_deliv = q_entry_count_deliveries(e, DELIVERY_PARKED) > 0;
    count_outcome(env, o, parked_deliv, dur_us);
    if (o == SYNC_OK && !parked_deliv && !q_entry_count_deliveries(e, DELIVERY_UNRESOLVED))
        log_info("scanned '%s' on %zu librar%s (%u event%s, rclone %s) in %llu ms", log_esc(e->path),
                 (size_t)e->n_deliv, e->n_deliv == 1 ? "y" : "ies", e->events, e->events == 1 ? "" : "s",
                 j->rclone_outcome ? j->rclone_outcome : "skipped", (unsigned long long)dur);

    /* queue_sync_done may free e: keep what the log line and the report need. */
    int64_t id = e->id;
    char *path = xstrdup(e->path);
    unsigned attempt = e->attempts + 1, kinds = e->kinds;
    q_delivery done[QUEUE_MAX_DELIVERIES];
    size_t n_done = 0;
    for (size_t i = 0; i < e->n_deliv && n_done < QUEUE_MAX_DELIVERIES; i++)
        if (e->deliv[i].state == DELIVERY_DONE)
            done[n_done++] = (q_delivery){.target = e->deliv[i].target, .library = e->deliv[i].library};
    bool over = false;
    q_entry *next = queue_sync_done(env->q, e, o, j->error, now, &over);
    j->e = e = NULL;
    log_next_run(id, path, attempt, o, j->error, next, now);
    sync_report r = {
        .entry = next && next->id == id ? next : NULL,
        .path = path,
        .round_over = over,
        .parked = over && (o == SYNC_PARKED || parked_deliv),
        .failed = o == SYNC_TRANSIENT,
        .kinds = kinds,
        .done = done,
        .n_done = n_done,
    };
    const sync_hooks *hooks = j->hooks;
    void *ud = j->ud;
    list_del(&j->link);
    job_free(j);
    hooks->ended(ud, &r);
    free(path);
}

/* The entry as a whole cannot go on as configured (rclone refused, a path that cannot map). */
static void job_park(sync_job *j, const char *msg)
{
    free(j->error);
    j->error = xstrdup(msg);
    job_finish(j, SYNC_PARKED);
}

/* ---- deliveries ---- */

static void delivery_log(const sync_job *j, const target_rt *t, const q_delivery *d, const target_result *r,
                         const char *tpath)
{
    if (r->status == TARGET_RES_OK && t->cfg->kind == TARGET_PLEX)
        log_info("%s: scanned section %s '%s'", d->target, log_esc(d->library), log_esc(tpath));
    else if (r->status == TARGET_RES_OK)
        log_info("%s: scan of '%s' accepted (%s)", d->target, log_esc(tpath), r->via ? r->via : "scan");
    else
        log_warn("%s: scan of '%s' failed: %s", d->target, log_esc(tpath), log_esc(r->message));
    (void)j;
}

/* A library 404 parks only if it persists after re-reading the list: with a list read after the
 * failure that still lacks the id, the mapping is wrong. Else the list may be stale. */
static delivery_state not_found(sync_job *j, target_rt *t, const q_delivery *d, char *msg, size_t n)
{
    if (t->libs.fetched_at && !media_libraries_find(&t->libs, d->library) && j->e->attempts > 0) {
        snprintf(msg, n, "%s: %s has no library %s (HTTP 404)", t->cfg->kind == TARGET_PLEX ? "SECTION_MAPPING" : t->cfg->origin,
                 t->name, d->library);
        return DELIVERY_PARKED;
    }
    targets_miss(j->env->targets, t);
    snprintf(msg, n, "%s answered HTTP 404 for library %s; re-reading its libraries", t->name, d->library);
    return DELIVERY_RETRY;
}

/* What one answer means for its delivery, and for what the daemon knows of the target. */
static delivery_state judge(sync_job *j, target_rt *t, const q_delivery *d, const target_result *r, char *msg, size_t n)
{
    targets *ts = j->env->targets;
    switch (r->status) {
    case TARGET_RES_OK:
        targets_seen(ts, t, TARGET_SEEN_UP, NULL);
        return DELIVERY_DONE;
    case TARGET_RES_AUTH:
        snprintf(msg, n, "%s: %s answered HTTP %ld; fix it and reload (retried every minute)",
                 target_fix_for(t->cfg, r->status), t->name, r->http_status);
        targets_seen(ts, t, TARGET_SEEN_REFUSED, msg);
        return DELIVERY_PARKED;
    case TARGET_RES_NOT_FOUND:
        targets_seen(ts, t, TARGET_SEEN_UP, NULL);
        return not_found(j, t, d, msg, n);
    case TARGET_RES_BAD:
        targets_seen(ts, t, TARGET_SEEN_UP, NULL);
        snprintf(msg, n, "%s: the scan request to %s cannot succeed as it is: %s", target_fix_for(t->cfg, r->status),
                 t->name, r->message);
        return DELIVERY_PARKED;
    case TARGET_RES_TRANSIENT:
    default:
        /* An HTTP answer (a 5xx) still says the server is there; no answer says it is not. */
        targets_seen(ts, t, r->http_status ? TARGET_SEEN_UP : TARGET_SEEN_DOWN, r->message);
        snprintf(msg, n, "%s: %s", t->name, r->message);
        return DELIVERY_RETRY;
    }
}

/* One delivery's end: its target's slot goes on, the queue hears its state, and the last one
 * ends the attempt. */
static void call_finished(job_call *c, delivery_state st, const char *msg)
{
    sync_job *j = c->job;
    const char *target = j->e->deliv[c->idx].target; /* interned: outlives the entry */
    if (c->has_slot) {
        c->has_slot = false;
        targets_release(j->env->targets, target);
    }
    if (st == DELIVERY_RETRY)
        j->transient = true;
    if (st != DELIVERY_DONE)
        note_error(j, msg);
    queue_delivery_set(j->env->q, j->e, c->idx, st, st == DELIVERY_DONE ? NULL : msg);
    if (--j->in_flight == 0)
        job_finish(j, SYNC_OK);
}

static void count_delivery(sync_job *j, target_rt *t, delivery_state st)
{
    if (t->cfg->kind == TARGET_PLEX && st == DELIVERY_DONE)
        j->env->m->plex_calls_ok++;
    else if (t->cfg->kind == TARGET_PLEX)
        j->env->m->plex_calls_failed++;
    if (st == DELIVERY_DONE)
        t->sent_ok++;
    else if (st == DELIVERY_PARKED)
        t->sent_parked++;
    else
        t->sent_failed++;
}

static void on_delivered(void *ud, const target_result *r)
{
    job_call *c = ud;
    sync_job *j = c->job;
    c->op = NULL;
    const q_delivery *d = &j->e->deliv[c->idx];
    target_rt *t = targets_find(j->env->targets, d->target);
    char msg[640] = "";
    delivery_state st = DELIVERY_RETRY;
    if (t && t->cfg) {
        char *tp = folders_target_path(t->cfg, j->e->path);
        delivery_log(j, t, d, r, tp ? tp : j->e->path);
        free(tp);
        st = judge(j, t, d, r, msg, sizeof msg);
        count_delivery(j, t, st);
    } else {
        snprintf(msg, sizeof msg, "target '%s' is no longer configured", d->target);
    }
    call_finished(c, st, msg);
}

static target_update update_type(const sync_job *j)
{
    bool absent = (j->rclone_outcome && strcmp(j->rclone_outcome, "absent") == 0) || j->host_absent;
    if (absent)
        return TARGET_UPDATE_DELETED;
    return j->e->kinds & QKIND_IMPORT ? TARGET_UPDATE_CREATED : TARGET_UPDATE_MODIFIED;
}

/* The request of a delivery whose target slot is taken (its target looked up again: a reload
 * may have removed it, or found its token refused, while it waited). */
static void call_send(job_call *c)
{
    sync_job *j = c->job;
    const q_delivery *d = &j->e->deliv[c->idx];
    target_rt *t = targets_find(j->env->targets, d->target);
    char msg[512];
    if (!t || !t->cfg) {
        /* a reload dropped it: the re-map after this attempt drops the delivery too */
        snprintf(msg, sizeof msg, "target '%s' is no longer configured", d->target);
        call_finished(c, DELIVERY_RETRY, msg);
        return;
    }
    if (t->refused) {
        snprintf(msg, sizeof msg, "%s: %s refused the token; fix it and reload (retried every minute)",
                 target_fix_for(t->cfg, TARGET_RES_AUTH), t->name);
        call_finished(c, DELIVERY_PARKED, t->error ? t->error : msg);
        return;
    }
    char *tp = folders_target_path(t->cfg, j->e->path);
    if (!tp) {
        snprintf(msg, sizeof msg, "%s: '%s' maps to no absolute path for %s", t->cfg->origin, j->e->path, t->name);
        call_finished(c, DELIVERY_PARKED, msg);
        return;
    }
    log_debug("%s: asking to scan '%s' (library %s)", t->name, log_esc(tp), log_esc(d->library));
    int rc = target_scan(j->env->httpc, t->cfg, j->env->cfg->plex_identifier, d->library, tp, update_type(j),
                         on_delivered, c, &c->op);
    free(tp);
    if (rc < 0)
        call_finished(c, DELIVERY_RETRY, "could not start a scan request");
}

static void on_turn(void *ud)
{
    job_call *c = ud;
    c->has_slot = targets_find(c->job->env->targets, c->job->e->deliv[c->idx].target) != NULL;
    call_send(c);
}

/* Delivery i: sent now, or once its target has a slot free. */
static void deliver(sync_job *j, size_t i)
{
    job_call *c = &j->calls[i];
    c->job = j;
    c->idx = i;
    c->slot = (target_slot){.go = on_turn, .ud = c};
    j->in_flight++;
    target_rt *t = targets_find(j->env->targets, j->e->deliv[i].target);
    if (!t || targets_acquire(j->env->targets, t, &c->slot)) {
        c->has_slot = t != NULL;
        call_send(c);
    }
}

static void step_deliveries(sync_job *j)
{
    q_entry *e = j->e;
    /* Past the rclone step the folder gives its sync slot back: what is left waits on the
     * targets, each bounding its own requests, so a slow server holds up no other folder. */
    queue_release_slot(j->env->q, e);
    j->hooks->slot_freed(j->ud);
    j->calls = xcalloc(e->n_deliv ? e->n_deliv : 1, sizeof *j->calls);
    j->n_calls = e->n_deliv;
    j->in_flight = 1; /* held while starting: no answer can end the attempt early */
    for (size_t i = 0; i < e->n_deliv; i++)
        if (e->deliv[i].state == DELIVERY_PENDING || e->deliv[i].state == DELIVERY_RETRY)
            deliver(j, i);
    if (--j->in_flight == 0)
        job_finish(j, SYNC_OK);
}

/* ---- anchors right before the targets ---- */

static void on_anchors_before_targets(void *ud, bool ok, const char *reason)
{
    sync_job *j = ud;
    j->fs_op = NULL;
    if (!ok) {
        /* The rclone step ran, but no server may scan a folder whose mount just failed: it
         * would see the folder empty and drop the items. Hold, and start over later. */
        log_warn("holding '%s' before the scans: %s", log_esc(j->e->path), log_esc(reason));
        job_hold(j, reason);
        return;
    }
    step_deliveries(j);
}

static void on_host_exists(void *ud, bool exists, const char *why)
{
    sync_job *j = ud;
    (void)why;
    j->fs_op = NULL;
    j->host_absent = !exists;
    const config_t *c = j->env->cfg;
    if (c->n_anchors == 0 || fscheck_anchors(j->env->fs, (const char *const *)c->anchors, c->n_anchors, j->fp.host,
                                             on_anchors_before_targets, j, &j->fs_op) < 0)
        step_deliveries(j);
}

static void step_anchors_before_targets(sync_job *j)
{
    /* Without rclone, a folder missing on the host is a delete (Jellyfin's and Emby's UpdateType). */
    if (!j->has_mount && fscheck_exists(j->env->fs, j->fp.host, on_host_exists, j, &j->fs_op) == 0)
        return;
    on_host_exists(j, true, NULL);
}

/* ---- rclone ---- */

static void on_rclone(void *ud, const rclone_result *r)
{
    sync_job *j = ud;
    sync_env *env = j->env;
    j->rc_op = NULL;
    char msg[640];
    switch (r->status) {
    case RCLONE_RES_OK:
    case RCLONE_RES_ABSENT:
        env->m->rclone_calls_ok++;
        j->hooks->news(j->ud, SYNC_NEWS_RCLONE_OK, NULL);
        j->rclone_outcome = r->status == RCLONE_RES_OK ? "ok" : "absent";
        if (r->status == RCLONE_RES_OK)
            log_info("rclone refreshed '%s' (%s)", log_esc(j->fp.vfs_dir), log_esc(j->mount.url));
        else
            log_info("rclone: '%s' does not exist (removed?); the servers scan it so they notice",
                     log_esc(j->fp.vfs_dir));
        queue_rclone_done(env->q, j->e);
        step_anchors_before_targets(j);
        return;
    case RCLONE_RES_CONFIG:
        env->m->rclone_calls_failed++;
        j->rclone_outcome = "config_error";
        snprintf(msg, sizeof msg, "%s: %s", r->variable ? r->variable : "RCLONE_RC_URL",
                 r->message ? r->message : "rclone refused the call");
        j->hooks->news(j->ud, SYNC_NEWS_RCLONE_REFUSED, msg);
        job_park(j, msg);
        return;
    case RCLONE_RES_TRANSIENT:
    default:
        env->m->rclone_calls_failed++;
        j->rclone_outcome = "failed";
        j->hooks->news(j->ud, SYNC_NEWS_RCLONE_FAILED, r->message ? r->message : "rclone failed");
        snprintf(msg, sizeof msg, "rclone: %s", r->message ? r->message : "failed");
        j->transient = true;
        note_error(j, msg);
        job_finish(j, SYNC_TRANSIENT);
        return;
    }
}

static void step_rclone(sync_job *j)
{
    sync_env *env = j->env;
    queue_sync_started(env->q, j->e, wall_ms());
    j->synced = true;
    if (!j->has_mount || j->e->rclone_done) {
        /* No mount holds it, or this round's rclone step already succeeded (a retry of the
         * deliveries only): no second forget + refresh. */
        j->rclone_outcome = j->has_mount ? "ok" : "skipped";
        step_anchors_before_targets(j);
        return;
    }
    log_debug("rclone: forget + refresh '%s' on %s", log_esc(j->fp.vfs_dir), log_esc(j->mount.url));
    if (rclone_refresh_folder(env->httpc, &j->mount, j->fp.vfs_dir, env->cfg->rclone_timeout_ms, on_rclone, j,
                              &j->rc_op) < 0) {
        j->rclone_outcome = "failed";
        j->transient = true;
        note_error(j, "could not start the rclone request");
        job_finish(j, SYNC_TRANSIENT);
    }
}

/* ---- anchors before anything ---- */

static void on_anchors_before_rclone(void *ud, bool ok, const char *reason)
{
    sync_job *j = ud;
    j->fs_op = NULL;
    if (!ok) {
        log_warn("holding '%s': %s; re-checked every 30 s", log_esc(j->e->path), log_esc(reason));
        job_hold(j, reason);
        return;
    }
    step_rclone(j);
}

static void step_anchors_before_rclone(sync_job *j)
{
    const config_t *c = j->env->cfg;
    if (c->n_anchors == 0) {
        step_rclone(j);
        return;
    }
    if (fscheck_anchors(j->env->fs, (const char *const *)c->anchors, c->n_anchors, j->fp.host,
                        on_anchors_before_rclone, j, &j->fs_op) < 0)
        step_rclone(j);
}

/* ---- minimum age ---- */

static void on_age(void *ud, uint64_t newest)
{
    sync_job *j = ud;
    j->fs_op = NULL;
    if (job_age_checked(j, newest))
        step_anchors_before_rclone(j);
}

/* The host forms of the entry's event files, for the minimum age. */
static void host_files(sync_job *j)
{
    const q_entry *e = j->e;
    j->host_files = xcalloc(e->n_files ? e->n_files : 1, sizeof *j->host_files);
    for (size_t i = 0; i < e->n_files; i++) {
        folder_paths f;
        char *arr = queue_file_path(e, i);
        int rc = paths_resolve(j->env->cfg, arr, &f, NULL);
        free(arr);
        if (rc == 0) {
            j->host_files[j->n_host_files++] = f.host;
            f.host = NULL;
            folder_paths_free(&f);
        }
    }
}

static void keep_mount(sync_job *j)
{
    if (j->fp.mount && j->env->cfg->use_rclone) {
        j->has_mount = true;
        j->mount.root = xstrdup(j->fp.mount->root);
        j->mount.url = xstrdup(j->fp.mount->url);
        j->mount.fs = xstrdup(j->fp.mount->fs);
        j->mount.user = xstrdup(j->fp.mount->user);
        j->mount.pass = xstrdup(j->fp.mount->pass);
    }
    j->fp.mount = NULL; /* points into the configuration; the copy above is what we use */
}

void sync_start(sync_env *env, q_entry *e, bool needs_age, const sync_hooks *hooks, void *ud)
{
    sync_job *j = xcalloc(1, sizeof *j);
    j->env = env;
    j->hooks = hooks;
    j->ud = ud;
    j->e = e;
    j->started = wall_ms();
    j->t0 = uv_hrtime();
    list_push(&env->jobs, &j->link);

    const char *why = NULL;
    if (paths_resolve(env->cfg, e->path, &j->fp, &why) < 0) {
        char msg[512];
        snprintf(msg, sizeof msg, "PATH_REPLACEMENTS: '%s' maps to no usable path (%s)", e->path,
                 why ? why : "invalid");
        job_park(j, msg);
        return;
    }
    keep_mount(j);
    if (needs_age && e->n_files > 0) {
        host_files(j);
        if (fscheck_newest_mtime(env->fs, (const char *const *)j->host_files, j->n_host_files, on_age, j,
                                 &j->fs_op) == 0)
            return;
    } else if (needs_age) {
        /* No file to stat: the event time alone decides. */
        if (!job_age_checked(j, 0))
            return;
    }
    step_anchors_before_rclone(j);
}

void sync_cancel_all(sync_env *env)
{
    list_node *n;
    while ((n = list_pop(&env->jobs)) != NULL) {
        sync_job *j = container_of(n, sync_job, link);
        if (j->fs_op)
            fscheck_cancel(j->fs_op);
        if (j->rc_op)
            rclone_cancel(j->rc_op);
        for (size_t i = 0; i < j->n_calls; i++) {
            job_call *c = &j->calls[i];
            targets_cancel_wait(&c->slot);
            if (c->op)
                target_cancel(c->op);
            if (c->has_slot)
                targets_release(env->targets, j->e->deliv[c->idx].target);
        }
        job_free(j);
    }
}

size_t sync_count(const sync_env *env)
{
    size_t n = 0;
    list_for_each(l, &env->jobs) n++;
    return n;
}

bool sync_busy_library(const sync_env *env, const char *target, const char *library_id)
{
    list_for_each(l, &env->jobs) {
        const sync_job *j = container_of(l, sync_job, link);
        for (size_t i = 0; j->e && i < j->e->n_deliv; i++)
            if (strcmp(j->e->deliv[i].target, target) == 0 && strcmp(j->e->deliv[i].library, library_id) == 0)
                return true;
    }
    return false;
}
