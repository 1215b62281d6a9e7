/* sync.c: one queue entry's work, as a chain of async steps: minimum age, anchors, rclone
 * (forget + refresh), anchors again, Plex partial scan; then one history row and the outcome
 * reported to the queue. The Plex call is never sent before the rclone step has finished. */
#include <stdlib.h>
#include <string.h>

#include "sync.h"
#include "log.h"
#include "paths.h"
#include "plex.h"
#include "rclone.h"
#include "util.h"

typedef struct sync_job sync_job;

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
    httpc_req *plex_req;
    uint64_t started;    /* wall ms */
    uint64_t t0;         /* uv_hrtime() ns at the start: durations below a millisecond count */
    bool synced;         /* reached queue_sync_started */
    const char *rclone_outcome;
    const char *plex_outcome;
    list_node link;      /* env->jobs */
};

static void step_anchors_before_rclone(sync_job *j);
static void step_rclone(sync_job *j);
static void step_plex(sync_job *j);

static void job_unlink(sync_job *j)
{
    list_del(&j->link);
}

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
    free(j);
}

static const char *section_text(long section, char *buf, size_t n)
{
    snprintf(buf, n, "%ld", section);
    return buf;
}

/* End of the job without a sync (age wait, hold): the queue already knows; just let go. */
static void job_release(sync_job *j)
{
    const sync_hooks *hooks = j->hooks;
    void *ud = j->ud;
    job_unlink(j);
    job_free(j);
    hooks->ended(ud);
}

/* An anchor check failed: the queue holds the folder (or hands it to a waiting ancestor, freeing
 * j->e), and the job ends. */
static void job_hold(sync_job *j, const char *reason)
{
    int64_t id = j->e->id;
    char *path = xstrdup(j->e->plex_path);
    q_entry *next = queue_hold(j->env->q, j->e, reason, wall_ms());
    j->e = NULL;
    if (next->id != id)
        log_info("'%s' taken over by '%s'", log_esc(path), log_esc(next->plex_path));
    free(path);
    job_release(j);
}

/* The minimum-age answer. When the folder is too young the queue sends it back to wait (or hands
 * it to a waiting ancestor, freeing j->e): say so, end the job and return false. */
static bool job_age_checked(sync_job *j, uint64_t newest)
{
    uint64_t now = wall_ms();
    int64_t id = j->e->id;
    char *path = xstrdup(j->e->plex_path);
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
                 log_esc(path), log_esc(next->plex_path), wait);
    free(path);
    job_release(j);
    return false;
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
                 log_esc(path), attempt, log_esc(error), log_esc(next->plex_path), wait);
    else if (!same)
        log_info("'%s' taken over by '%s', which runs in %.1f s", log_esc(path),
                 log_esc(next->plex_path), wait);
}

/* The sync ended: one history row, counters, log line, then the queue decides what is next. */
static void job_finish(sync_job *j, sync_outcome o, const char *error)
{
    sync_env *env = j->env;
    q_entry *e = j->e;
    uint64_t now = wall_ms();
    uint64_t dur_us = (uv_hrtime() - j->t0) / 1000u, dur = dur_us / 1000u;
    char sbuf[32];

    store_history h = {
        .section = e->section,
        .plex_path = e->plex_path,
        .arr_path = e->arr_path,
        .sources = e->sources,
        .events = e->events,
        .started = j->started,
        .duration_ms = dur,
        .status = o == SYNC_OK ? HIST_OK : o == SYNC_PARKED ? HIST_PARKED : HIST_FAILED,
        .rclone = j->rclone_outcome ? j->rclone_outcome : "skipped",
        .plex = j->plex_outcome ? j->plex_outcome : "skipped",
        .error = error,
        .attempt = e->attempts + 1,
    };
    store_stage_history(env->store, &h);
    metrics_count_sync(env->m, dur_us);

    switch (o) {
    case SYNC_OK:
        env->m->scans_ok++;
        log_info("scanned section %s '%s' (%u event%s, rclone %s) in %llu ms",
                 section_text(e->section, sbuf, sizeof sbuf), log_esc(e->plex_path), e->events,
                 e->events == 1 ? "" : "s", h.rclone, (unsigned long long)dur);
        break;
    case SYNC_TRANSIENT:
        env->m->scans_failed++;
        break;
    case SYNC_PARKED:
        env->m->scans_parked++;
        log_error("parked '%s': %s", log_esc(e->plex_path), log_esc(error));
        break;
    }

    /* queue_sync_done may free e: keep what the log line needs, then use only its answer. */
    int64_t id = e->id;
    char *path = xstrdup(e->plex_path);
    q_entry *next = queue_sync_done(env->q, e, o, error, now);
    j->e = e = NULL;
    log_next_run(id, path, h.attempt, o, error, next, now);
    free(path);
    job_release(j);
}

/* ---- Plex ---- */

/* A section 404 parks only if it persists after re-reading the sections: with a list read after
 * the failure that still lacks the id, the mapping is wrong. Else the list may be stale. */
static void plex_not_found(sync_job *j)
{
    const plex_libraries *libs = j->env->libs;
    char msg[512];
    bool known = false;
    for (size_t i = 0; i < libs->n; i++)
        if (libs->v[i].key == j->e->section)
            known = true;
    if (libs->fetched_at && !known && j->e->attempts > 0) {
        snprintf(msg, sizeof msg, "SECTION_MAPPING: Plex has no library section %ld (HTTP 404)", j->e->section);
        job_finish(j, SYNC_PARKED, msg);
        return;
    }
    j->hooks->sections_stale(j->ud);
    snprintf(msg, sizeof msg, "Plex answered HTTP 404 for section %ld; re-reading its libraries", j->e->section);
    job_finish(j, SYNC_TRANSIENT, msg);
}


static void on_plex(void *ud, const plex_result *r)
{
    sync_job *j = ud;
    sync_env *env = j->env;
    j->plex_req = NULL;
    char msg[512];
    if (r->status == PLEX_RES_OK)
        env->m->plex_calls_ok++;
    else
        env->m->plex_calls_failed++;
    switch (r->status) {
    case PLEX_RES_OK:
        j->hooks->news(j->ud, SYNC_NEWS_PLEX_OK, NULL);
        j->plex_outcome = "ok";
        job_finish(j, SYNC_OK, NULL);
        return;
    case PLEX_RES_AUTH:
        snprintf(msg, sizeof msg, "Plex answered HTTP %ld: PLEX_TOKEN is wrong or lacks access", r->http_status);
        j->hooks->news(j->ud, SYNC_NEWS_PLEX_REFUSED, msg);
        log_error("Plex answered HTTP %ld to a scan: fix PLEX_TOKEN; no Plex calls until a reload",
                  r->http_status);
        j->plex_outcome = "unauthorized";
        snprintf(msg, sizeof msg, "PLEX_TOKEN: Plex answered HTTP %ld", r->http_status);
        job_finish(j, SYNC_PARKED, msg);
        return;
    case PLEX_RES_NOT_FOUND:
        j->hooks->news(j->ud, SYNC_NEWS_PLEX_OK, NULL);
        j->plex_outcome = "not_found";
        plex_not_found(j);
        return;
    case PLEX_RES_BAD:
        j->hooks->news(j->ud, SYNC_NEWS_PLEX_OK, NULL);
        j->plex_outcome = "rejected";
        snprintf(msg, sizeof msg, "PLEX_URL: the scan request failed and cannot succeed as it is: %s",
                 r->message ? r->message : "");
        job_finish(j, SYNC_PARKED, msg);
        return;
    case PLEX_RES_TRANSIENT:
    default:
        /* An HTTP answer (a 5xx) still says Plex is there; no answer says it is not. */
        if (r->http_status == 0)
            j->hooks->news(j->ud, SYNC_NEWS_PLEX_DOWN, r->message ? r->message : "Plex did not answer");
        j->plex_outcome = "failed";
        snprintf(msg, sizeof msg, "Plex: %s", r->message ? r->message : "failed");
        job_finish(j, SYNC_TRANSIENT, msg);
        return;
    }
}

static void step_plex(sync_job *j)
{
    const config_t *c = j->env->cfg;
    if (!c->plex_url || !*c->plex_url) {
        job_finish(j, SYNC_PARKED, "PLEX_URL: not set, so nothing can be scanned");
        return;
    }
    if (j->hooks->plex_refused(j->ud)) {
        job_finish(j, SYNC_PARKED, "PLEX_TOKEN: Plex refused the token; fix it and reload");
        return;
    }
    log_debug("asking Plex to scan section %ld '%s'", j->e->section, log_esc(j->e->plex_path));
    int rc = plex_scan(j->env->httpc, c, j->e->section, j->e->plex_path, on_plex, j, &j->plex_req);
    if (rc < 0) {
        j->plex_outcome = "failed";
        job_finish(j, SYNC_TRANSIENT, "could not start the Plex request");
    }
}

/* ---- anchors right before Plex ---- */

static void on_anchors_before_plex(void *ud, bool ok, const char *reason)
{
    sync_job *j = ud;
    j->fs_op = NULL;
    if (!ok) {
        /* The rclone step ran, but Plex must not scan a folder whose mount just failed: it
         * would see the folder empty and drop the items. Hold, and start over later. */
        log_warn("holding '%s' before the Plex call: %s", log_esc(j->e->plex_path), log_esc(reason));
        job_hold(j, reason);
        return;
    }
    step_plex(j);
}

static void step_anchors_before_plex(sync_job *j)
{
    const config_t *c = j->env->cfg;
    if (c->n_anchors == 0) {
        step_plex(j);
        return;
    }
    if (fscheck_anchors(j->env->fs, (const char *const *)c->anchors, c->n_anchors, j->fp.host,
                        on_anchors_before_plex, j, &j->fs_op) < 0)
        step_plex(j);
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
        env->m->rclone_calls_ok++;
        j->hooks->news(j->ud, SYNC_NEWS_RCLONE_OK, NULL);
        j->rclone_outcome = "ok";
        log_info("rclone refreshed '%s' (%s)", log_esc(j->fp.vfs_dir), log_esc(j->mount.url));
        step_anchors_before_plex(j);
        return;
    case RCLONE_RES_ABSENT:
        env->m->rclone_calls_ok++;
        j->hooks->news(j->ud, SYNC_NEWS_RCLONE_OK, NULL);
        j->rclone_outcome = "absent";
        log_info("rclone: '%s' does not exist (removed?); Plex scans it so it notices",
                 log_esc(j->fp.vfs_dir));
        step_anchors_before_plex(j);
        return;
    case RCLONE_RES_CONFIG:
        env->m->rclone_calls_failed++;
        j->rclone_outcome = "config_error";
        snprintf(msg, sizeof msg, "%s: %s", r->variable ? r->variable : "RCLONE_RC_URL",
                 r->message ? r->message : "");
        j->hooks->news(j->ud, SYNC_NEWS_RCLONE_REFUSED, msg);
        snprintf(msg, sizeof msg, "%s: %s", r->variable ? r->variable : "RCLONE_RC_URL",
                 r->message ? r->message : "rclone refused the call");
        job_finish(j, SYNC_PARKED, msg);
        return;
    case RCLONE_RES_TRANSIENT:
    default:
        env->m->rclone_calls_failed++;
        j->rclone_outcome = "failed";
        j->hooks->news(j->ud, SYNC_NEWS_RCLONE_FAILED, r->message ? r->message : "rclone failed");
        snprintf(msg, sizeof msg, "rclone: %s", r->message ? r->message : "failed");
        job_finish(j, SYNC_TRANSIENT, msg);
        return;
    }
}

static void step_rclone(sync_job *j)
{
    sync_env *env = j->env;
    queue_sync_started(env->q, j->e, wall_ms());
    j->synced = true;
    if (!j->has_mount) {
        j->rclone_outcome = "skipped";
        step_anchors_before_plex(j);
        return;
    }
    log_debug("rclone: forget + refresh '%s' on %s", log_esc(j->fp.vfs_dir), log_esc(j->mount.url));
    if (rclone_refresh_folder(env->httpc, &j->mount, j->fp.vfs_dir, env->cfg->rclone_timeout_ms, on_rclone, j,
                              &j->rc_op) < 0) {
        j->rclone_outcome = "failed";
        job_finish(j, SYNC_TRANSIENT, "could not start the rclone request");
    }
}

/* ---- anchors before anything ---- */

static void on_anchors_before_rclone(void *ud, bool ok, const char *reason)
{
    sync_job *j = ud;
    j->fs_op = NULL;
    if (!ok) {
        log_warn("holding '%s': %s; re-checked every 30 s", log_esc(j->e->plex_path), log_esc(reason));
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

void sync_start(sync_env *env, q_entry *e, bool needs_age, const sync_hooks *hooks, void *ud)
{
    sync_job *j = xcalloc(1, sizeof *j);
    j->env = env;
    j->hooks = hooks;
    j->ud = ud;
    const config_t *c = env->cfg;
    j->e = e;
    j->started = wall_ms();
    j->t0 = uv_hrtime();
    list_push(&env->jobs, &j->link);

    const char *why = NULL;
    if (paths_resolve(c, e->arr_path, &j->fp, &why) < 0) {
        char msg[512];
        snprintf(msg, sizeof msg, "PATH_REPLACEMENTS: '%s' maps to no usable path (%s)", e->arr_path,
                 why ? why : "invalid");
        j->started = wall_ms();
        job_finish(j, SYNC_PARKED, msg);
        return;
    }
    if (j->fp.mount && c->use_rclone) {
        j->has_mount = true;
        j->mount.root = xstrdup(j->fp.mount->root);
        j->mount.url = xstrdup(j->fp.mount->url);
        j->mount.fs = xstrdup(j->fp.mount->fs);
        j->mount.user = xstrdup(j->fp.mount->user);
        j->mount.pass = xstrdup(j->fp.mount->pass);
    }
    j->fp.mount = NULL; /* points into the configuration; the copy above is what we use */

    if (needs_age && e->n_files > 0) {
        j->host_files = xcalloc(e->n_files, sizeof *j->host_files);
        for (size_t i = 0; i < e->n_files; i++) {
            folder_paths f;
            if (paths_resolve(c, e->files[i], &f, NULL) == 0) {
                j->host_files[j->n_host_files++] = f.host;
                f.host = NULL;
                folder_paths_free(&f);
            }
        }
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
        if (j->plex_req)
            httpc_cancel(j->plex_req);
        job_free(j);
    }
}

size_t sync_count(const sync_env *env)
{
    size_t n = 0;
    list_for_each(l, &env->jobs) n++;
    return n;
}
