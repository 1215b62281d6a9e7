/* app_view.c: the narrow view of the owner the request handlers get (app.h). The owner's state
 * (app_internal.h) stays the owner's: the handlers read it through these, const wherever they
 * only read, and write only what is theirs to write (the counters, what each sender sent, the
 * history rows of a request's skipped folders). Part of the owner's library (pss_app). */
#include "app_internal.h"

#include <stdlib.h>

#include "util.h"

app_t *app_new(void) { return xcalloc(1, sizeof(app_t)); }

void app_delete(app_t *a) { free(a); }

int app_exit_code(const app_t *a) { return a->exit_code; }

/* ---- the narrow interface the request handlers see (app.h) ---- */

const config_t *app_config(const app_t *a) { return &a->cfg; }

const env_map *app_env(const app_t *a, const char **env_file)
{
    *env_file = a->env_file;
    return &a->env;
}

const char *app_manual_pass(const app_t *a) { return a->manual_pass; }

const queue_t *app_queue(const app_t *a) { return a->q; }

const targets *app_targets(const app_t *a) { return &a->targets; }

app_status app_status_of(const app_t *a)
{
    return (app_status){.started_at = a->started_at,
                        .commit_fail_streak = a->commit_fail_streak,
                        .sync_fail_streak = a->sync_fail_streak,
                        .stopping = a->stopping,
                        .stop_done = a->stop_done,
                        .rclone_reachable = a->rclone_reachable,
                        .rclone_error = a->rclone_error,
                        .staged_events = a->staged_events,
                        .syncing = sync_count(&a->sync)};
}

bool app_stopping(const app_t *a) { return a->stopping; }

metrics *app_metrics(app_t *a) { return &a->counters; }

sources *app_sources(app_t *a) { return &a->sources; }

store_t *app_store(app_t *a) { return a->store; }

app_io app_io_of(const app_t *a) { return (app_io){.loop = a->loop, .httpc = a->httpc, .fs = a->fs}; }

targets *app_targets_probed(app_t *a) { return &a->targets; }

const notify_out *app_notify_out(const app_t *a) { return a->nout; }

struct probes *app_probes(const app_t *a) { return a->probes; }

void app_probes_attach(app_t *a, struct probes *p, void (*free_fn)(struct probes *p))
{
    a->probes = p;
    a->probes_free = free_fn;
}
