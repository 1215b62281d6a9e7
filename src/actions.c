/* actions.c: what a person asks of the queue from the page or the API (actions.h). The queue
 * applies each rule (queue_unpark, queue_cancel, queue_run_now); this says who asked, tells the
 * notifications, closes a cancelled round's history row and re-arms the queue's timer. */
#include "actions.h"

#include "app_internal.h"

#include <errno.h>
#include <stdlib.h>

#include "log.h"
#include "tell.h"
#include "util.h"

/* One parked entry: a delivery parked by a refused token waits for the probe (it resumes, with
 * every other one parked for that target, once the token is accepted); the rest runs again now.
 * Never frees e. */
static void retry_one(app_t *a, q_entry *e)
{
    int probed = 0;
    for (size_t i = 0; i < e->n_deliv; i++) {
        target_rt *t = targets_find(&a->targets, e->deliv[i].target);
        if (e->deliv[i].state == DELIVERY_PARKED && t && t->refused) {
            targets_probe(&a->targets, t);
            probed++;
        }
    }
    if (!probed) {
        char *path = xstrdup(e->path);
        queue_unpark(a->q, e, wall_ms());
        tell_event(a->tell, NEV_RESUMED, path, NULL, "retried from the page");
        free(path);
    }
}

int actions_retry(app_t *a, int64_t id, const char *who)
{
    q_entry *e = queue_find_id(a->q, id);
    if (!e)
        return -ENOENT;
    if (e->state != ENTRY_PARKED)
        return -EINVAL;
    log_info("retry of '%s' (entry %lld) asked by %s", log_esc(e->path), (long long)id, who);
    retry_one(a, e);
    app_schedule(a);
    return 0;
}

typedef struct ids {
    int64_t *v;
    size_t n;
} ids;

static void collect_parked(void *ud, const q_entry *e)
{
    ids *l = ud;
    if (e->state != ENTRY_PARKED)
        return;
    l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
    l->v[l->n++] = e->id;
}

size_t actions_retry_parked(app_t *a, const char *who)
{
    ids l = {0};
    queue_foreach(a->q, collect_parked, &l); /* first: retrying changes the queue */
    log_info("retry of every parked folder (%zu) asked by %s", l.n, who);
    for (size_t i = 0; i < l.n; i++) {
        q_entry *e = queue_find_id(a->q, l.v[i]);
        if (e && e->state == ENTRY_PARKED) /* retrying one never frees another */
            retry_one(a, e);
    }
    free(l.v);
    app_schedule(a);
    return l.n;
}

/* The round's history row (its own, when an attempt wrote one; else a new one), closed as
 * cancelled with what the entry knows now. */
static void stage_cancelled(app_t *a, const q_entry *e, const char *who)
{
    uint64_t now = wall_ms();
    char *deliv = sync_entry_deliveries(&a->targets, e);
    char *why = xasprintf("cancelled by %s", who);
    store_history h = {
        .id = e->round_id,
        .path = e->path,
        .sources = e->sources,
        .events = e->events,
        .kinds = e->kinds,
        /* a row of its own keeps its start (and its last attempt's rclone outcome) */
        .started = e->round_id ? now : e->first_seen,
        .duration_ms = e->round_id || now < e->first_seen ? 0 : now - e->first_seen,
        .status = HIST_CANCELLED,
        .rclone = "skipped",
        .deliveries = deliv,
        .error = why,
        .attempts = e->attempts,
        .title = e->title,
        .event = (q_event_kind)e->event,
        .app = e->last_app,
    };
    store_stage_history(a->store, &h);
    free(deliv);
    free(why);
}

int actions_cancel(app_t *a, int64_t id, const char *who, const char **why)
{
    q_entry *e = queue_find_id(a->q, id);
    *why = NULL;
    if (!e)
        return -ENOENT;
    if (e->state == ENTRY_CHECKING || e->state == ENTRY_SYNCING) {
        *why = "the folder is being scanned right now; it cannot be cancelled (it leaves the queue by itself "
               "when the scan ends)";
        return -EBUSY;
    }
    char *path = xstrdup(e->path);
    entry_state was = e->state;
    stage_cancelled(a, e, who);
    int rc = queue_cancel(a->q, e); /* e is freed */
    if (rc == 0) {
        log_info("cancelled '%s' (entry %lld, %s) by %s: removed from the queue", log_esc(path), (long long)id,
                 entry_state_name(was), who);
        tell_forget(a->tell, path);
        app_schedule(a);
    }
    free(path);
    return rc;
}

int actions_run_now(app_t *a, int64_t id, const char *who, uint64_t *due, const char **why)
{
    q_entry *e = queue_find_id(a->q, id);
    *why = NULL;
    if (!e)
        return -ENOENT;
    int rc = queue_run_now(a->q, e, wall_ms());
    if (rc == -EBUSY)
        *why = "the folder is being scanned right now";
    else if (rc == -EPERM)
        *why = "the folder is parked: fix what its park_reason names, then retry it (POST /api/queue/{id}/retry)";
    else if (rc == -ENODATA)
        *why = "the folder waits for a media server's library list: there is nothing to send yet";
    if (rc < 0)
        return rc;
    *due = e->due;
    log_info("scan of '%s' (entry %lld, %s) asked now by %s", log_esc(e->path), (long long)id,
             entry_state_name(e->state), who);
    app_schedule(a);
    return 0;
}
