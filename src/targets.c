/* targets.c: what the daemon knows of each media server while it runs (see targets.h). */
#include "targets.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

#define TICK_MS 5000u              /* how often lists and probes are looked at */
#define MISS_INTERVAL_MS 60000u    /* a list re-read on a miss, at most once a minute */
#define PROBE_INTERVAL_MS 60000u   /* a refused token is tried again every minute */
#define FIRST_RETRY_MS 15000u      /* a list never read is asked again this often */

static void set_error(target_rt *t, const char *msg)
{
    free(t->error);
    t->error = msg ? xstrdup(msg) : NULL;
}

/* What stays put while target_rt moves (the array is re-made by reloads): the name a list
 * answer finds its target by, and the scan requests in flight and waiting. */
typedef struct list_ctx {
    targets *ts;
    char *name;
    unsigned in_flight;
    list_node waiting;  /* target_slot.link */
} list_ctx;

static void wake_all(list_ctx *c)
{
    list_node *n;
    while ((n = list_pop(&c->waiting)) != NULL) {
        target_slot *w = container_of(n, target_slot, link);
        w->waiting = false;
        w->go(w->ud);
    }
}

static void rt_clear(target_rt *t)
{
    if (t->list_op)
        target_cancel(t->list_op);
    t->list_op = NULL;
    if (t->ctx) {
        list_ctx *c = t->ctx;
        t->ctx = NULL;
        wake_all(c); /* they find no target any more */
        free(c->name);
        free(c);
    }
    media_libraries_free(&t->libs);
    free(t->name);
    free(t->error);
    memset(t, 0, sizeof *t);
}

void targets_seen(targets *ts, target_rt *t, target_seen what, const char *error)
{
    (void)ts;
    t->answered = true;
    t->checked = wall_ms();
    switch (what) {
    case TARGET_SEEN_UP:
        t->reachable = true;
        t->down_since = 0;
        if (!t->refused)
            set_error(t, NULL);
        break;
    case TARGET_SEEN_DOWN:
        if (t->reachable || !t->down_since)
            t->down_since = t->checked;
        t->reachable = false;
        set_error(t, error);
        break;
    case TARGET_SEEN_REFUSED:
        t->reachable = true;
        t->down_since = 0;
        if (!t->refused)
            log_error("%s refused its token: fix %s and reload (it is asked again every minute): %s", t->name,
                      t->cfg ? t->cfg->token_var : "its token", log_esc(error));
        t->refused = true;
        set_error(t, error);
        break;
    }
}

static void log_list(const target_rt *t, bool first)
{
    if (!first && log_get_level() < LOG_LVL_DEBUG)
        return;
    log_info("%s (%s) has %zu librar%s", t->name, target_kind_name(t->cfg->kind), t->libs.n,
             t->libs.n == 1 ? "y" : "ies");
    for (size_t i = 0; i < t->libs.n; i++)
        for (size_t k = 0; k < t->libs.v[i].n_locations; k++)
            log_info("  %s library %s '%s' (%s): %s", t->name, log_esc(t->libs.v[i].id), log_esc(t->libs.v[i].title),
                     log_esc(t->libs.v[i].type ? t->libs.v[i].type : "?"), log_esc(t->libs.v[i].locations[k]));
}

static bool str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Whether two lists map folders the same way (ids and locations; titles only show). */
static bool libs_same(const media_libraries *a, const media_libraries *b)
{
    if (!a->fetched_at || a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        const media_library *x = &a->v[i], *y = &b->v[i];
        if (!str_eq(x->id, y->id) || !str_eq(x->title, y->title) || x->n_locations != y->n_locations)
            return false;
        for (size_t k = 0; k < x->n_locations; k++)
            if (!str_eq(x->locations[k], y->locations[k]))
                return false;
    }
    return true;
}

/* Whether a list read asked at or after `since` (mono ms) is out. */
static bool lists_in_flight(const targets *ts, uint64_t since)
{
    for (size_t i = 0; i < ts->n; i++)
        if (ts->v[i].list_op && ts->v[i].list_attempt >= since)
            return true;
    return false;
}

/* A list read ended (or the daemon stops): each waiter with nothing of its own left out is
 * told. They are taken off first, so one that asks again from its callback is not told twice. */
static void settle_check(targets *ts)
{
    list_node done;
    list_init(&done);
    list_for_each_safe(n, tmp, &ts->settle_waiters) {
        targets_waiter *w = container_of(n, targets_waiter, link);
        if (ts->stopping || !lists_in_flight(ts, w->since)) {
            list_del(n);
            list_push(&done, n);
        }
    }
    list_node *n;
    while ((n = list_pop(&done)) != NULL) {
        targets_waiter *w = container_of(n, targets_waiter, link);
        w->waiting = false;
        w->settled(w->ud);
    }
}

static void list_answered(targets *ts, target_rt *t, const target_result *r, media_libraries *libs)
{
    t->list_op = NULL;
    if (r->status != TARGET_RES_OK || !libs) {
        char msg[600];
        snprintf(msg, sizeof msg, "reading libraries: %s", r->message);
        bool was_up = t->reachable || !t->answered;
        if (r->status == TARGET_RES_AUTH) {
            snprintf(msg, sizeof msg, "%s: %s answered HTTP %ld to its library list%s", target_fix_for(t->cfg, r->status),
                     t->name, r->http_status,
                     t->cfg->kind == TARGET_PLEX ? "" : " (an administrator's API key is needed)");
            targets_seen(ts, t, TARGET_SEEN_REFUSED, msg);
        } else {
            targets_seen(ts, t, r->http_status ? TARGET_SEEN_UP : TARGET_SEEN_DOWN, msg);
            set_error(t, msg);
            if (was_up || !t->libs.fetched_at)
                log_warn("cannot read %s's libraries: %s%s", t->name, log_esc(r->message),
                         t->libs.fetched_at ? "" : "; its deliveries wait as unresolved");
        }
        return;
    }
    bool first = t->libs.fetched_at == 0, was_refused = t->refused;
    bool same = libs_same(&t->libs, libs);
    /* An old list decided nothing for a folder it does not hold (DESIGN.md): a fresh one does,
     * even when it says the same. */
    uint64_t every = ts->cfg->section_refresh_ms ? ts->cfg->section_refresh_ms : 900000u;
    bool was_stale = !first && wall_ms() - t->libs.fetched_at >= every;
    t->refused = false;
    targets_seen(ts, t, TARGET_SEEN_UP, NULL);
    media_libraries_free(&t->libs);
    t->libs = *libs;
    memset(libs, 0, sizeof *libs);
    t->libs.fetched_at = wall_ms();
    if (!same)
        log_list(t, first);
    if (was_refused) {
        log_info("%s accepts its token again: its parked deliveries resume", t->name);
        ts->hooks->accepted(ts->ud, t->name);
    }
    /* The same list again (the periodic read, a probe) changes no mapping: only an age. A
     * re-map of the whole queue is for a list that says something new. */
    if (!same || was_stale)
        ts->hooks->lists_changed(ts->ud);
}

static void on_list(void *ud, const target_result *r, media_libraries *libs)
{
    list_ctx *c = ud;
    targets *ts = c->ts;
    target_rt *t = targets_find(ts, c->name);
    if (t)
        list_answered(ts, t, r, libs);
    settle_check(ts);
}

static void fetch(targets *ts, target_rt *t)
{
    if (t->list_op || ts->stopping || !t->cfg)
        return;
    t->list_attempt = mono_ms();
    if (!t->list_attempt)
        t->list_attempt = 1;
    if (target_list(ts->httpc, t->cfg, ts->cfg->plex_identifier, on_list, t->ctx, &t->list_op) < 0)
        t->list_op = NULL;
}

/* Whether t's list is due: never read (every FIRST_RETRY_MS), refused (a probe every minute),
 * or older than SECTION_REFRESH. */
static bool list_due(const targets *ts, const target_rt *t, uint64_t mono)
{
    uint64_t since = t->list_attempt ? mono - t->list_attempt : UINT64_MAX;
    if (t->refused)
        return since >= PROBE_INTERVAL_MS;
    if (!t->libs.fetched_at)
        return since >= FIRST_RETRY_MS;
    uint64_t every = ts->cfg->section_refresh_ms ? ts->cfg->section_refresh_ms : 900000u;
    return since >= every;
}

static void on_tick(uv_timer_t *h)
{
    targets *ts = h->data;
    uint64_t mono = mono_ms();
    for (size_t i = 0; i < ts->n; i++)
        if (list_due(ts, &ts->v[i], mono))
            fetch(ts, &ts->v[i]);
}

static void add_target(targets *ts, const cfg_target *c)
{
    ts->v = xrealloc(ts->v, (ts->n + 1) * sizeof *ts->v);
    target_rt *t = &ts->v[ts->n++];
    memset(t, 0, sizeof *t);
    t->name = xstrdup(c->name);
    t->cfg = c;
    t->ctx = xcalloc(1, sizeof *t->ctx);
    t->ctx->ts = ts;
    t->ctx->name = xstrdup(c->name);
    list_init(&t->ctx->waiting);
}

int targets_start(targets *ts, uv_loop_t *loop, httpc_t *h, const config_t *c, const targets_hooks *hooks, void *ud)
{
    memset(ts, 0, sizeof *ts);
    list_init(&ts->settle_waiters);
    ts->httpc = h;
    ts->cfg = c;
    ts->hooks = hooks;
    ts->ud = ud;
    for (size_t i = 0; i < c->n_targets; i++)
        add_target(ts, &c->targets[i]);
    int rc = uv_timer_init(loop, &ts->timer);
    if (rc < 0)
        return rc;
    ts->timer.data = ts;
    uv_timer_start(&ts->timer, on_tick, TICK_MS, TICK_MS);
    for (size_t i = 0; i < ts->n; i++)
        fetch(ts, &ts->v[i]);
    return 0;
}

static bool same_server(const cfg_target *a, const cfg_target *b)
{
    /* A new CA file is a new server: what was learnt (a certificate refused) is learnt again. */
    return a->kind == b->kind && strcmp(a->url, b->url) == 0 && strcmp(a->token, b->token) == 0 &&
           (a->ca_file ? b->ca_file && strcmp(a->ca_file, b->ca_file) == 0 : !b->ca_file);
}

void targets_reload(targets *ts, const config_t *c)
{
    target_rt *old = ts->v;
    size_t n_old = ts->n;
    ts->v = NULL;
    ts->n = 0;
    ts->cfg = c;
    for (size_t i = 0; i < c->n_targets; i++) {
        const cfg_target *nc = &c->targets[i];
        target_rt *keep = NULL;
        for (size_t k = 0; k < n_old && !keep; k++)
            if (old[k].name && strcmp(old[k].name, nc->name) == 0 && same_server(old[k].cfg, nc))
                keep = &old[k];
        if (keep) {
            ts->v = xrealloc(ts->v, (ts->n + 1) * sizeof *ts->v);
            ts->v[ts->n] = *keep;
            ts->v[ts->n++].cfg = nc;
            memset(keep, 0, sizeof *keep);
            continue;
        }
        add_target(ts, nc);
        fetch(ts, &ts->v[ts->n - 1]);
    }
    /* What is left was removed or changed: its list request is cancelled, its state forgotten. */
    for (size_t k = 0; k < n_old; k++)
        if (old[k].name)
            rt_clear(&old[k]);
    free(old);
    settle_check(ts); /* the reads of removed targets were cancelled */
}

target_rt *targets_find(const targets *ts, const char *name)
{
    for (size_t i = 0; name && i < ts->n; i++)
        if (strcmp(ts->v[i].name, name) == 0)
            return &ts->v[i];
    return NULL;
}

void targets_miss(targets *ts, target_rt *t)
{
    uint64_t mono = mono_ms();
    for (size_t i = 0; i < ts->n; i++) {
        target_rt *x = &ts->v[i];
        if ((t && x != t) || x->refused)
            continue;
        if (x->list_attempt && mono - x->list_attempt < MISS_INTERVAL_MS)
            continue;
        fetch(ts, x);
    }
}

static unsigned slot_limit(const targets *ts)
{
    return ts->cfg->max_concurrent_syncs > 0 ? (unsigned)ts->cfg->max_concurrent_syncs : 1u;
}

bool targets_acquire(targets *ts, target_rt *t, target_slot *w)
{
    list_ctx *c = t->ctx;
    if (c->in_flight < slot_limit(ts) && list_empty(&c->waiting)) {
        c->in_flight++;
        return true;
    }
    w->waiting = true;
    list_push(&c->waiting, &w->link);
    return false;
}

void targets_release(targets *ts, const char *name)
{
    target_rt *t = targets_find(ts, name);
    if (!t || !t->ctx)
        return;
    list_ctx *c = t->ctx;
    if (c->in_flight)
        c->in_flight--;
    list_node *n;
    if (c->in_flight < slot_limit(ts) && (n = list_pop(&c->waiting)) != NULL) {
        target_slot *w = container_of(n, target_slot, link);
        w->waiting = false;
        c->in_flight++;
        w->go(w->ud);
    }
}

void targets_cancel_wait(target_slot *w)
{
    if (w->waiting) {
        list_del(&w->link);
        w->waiting = false;
    }
}

void targets_mark_refused(targets *ts, const char *name)
{
    target_rt *t = targets_find(ts, name);
    if (t)
        t->refused = true;
}

void targets_probe(targets *ts, target_rt *t)
{
    fetch(ts, t);
}

bool targets_probe_stale(targets *ts, uint64_t older_than_ms, targets_waiter *w)
{
    uint64_t mono = mono_ms(), now = wall_ms();
    for (size_t i = 0; i < ts->n; i++) {
        target_rt *t = &ts->v[i];
        bool heard = t->checked && now >= t->checked && now - t->checked < older_than_ms;
        bool asked = t->list_attempt && mono - t->list_attempt < older_than_ms;
        if (!heard && !asked)
            fetch(ts, t);
    }
    /* A read asked earlier and still out counts too: its answer is the freshest fact to come. */
    if (!w || ts->stopping || !lists_in_flight(ts, w->since))
        return false;
    assert(!w->waiting);
    w->waiting = true;
    list_push(&ts->settle_waiters, &w->link);
    return true;
}

void targets_cancel_settle(targets_waiter *w)
{
    if (w->waiting) {
        list_del(&w->link);
        w->waiting = false;
    }
}

void targets_shift_time(targets *ts, int64_t delta)
{
    for (size_t i = 0; i < ts->n; i++) {
        target_rt *t = &ts->v[i];
        if (t->libs.fetched_at) {
            int64_t at = (int64_t)t->libs.fetched_at + delta;
            t->libs.fetched_at = at > 0 ? (uint64_t)at : 1;
        }
    }
}

typedef struct close_ctx {
    void (*closed)(void *ud);
    void *ud;
} close_ctx;

static void on_timer_closed(uv_handle_t *h)
{
    close_ctx *c = h->data;
    if (c) {
        if (c->closed)
            c->closed(c->ud);
        free(c);
    }
}

void targets_stop(targets *ts, void (*closed)(void *ud), void *ud)
{
    ts->stopping = true;
    for (size_t i = 0; i < ts->n; i++) {
        if (ts->v[i].list_op)
            target_cancel(ts->v[i].list_op);
        ts->v[i].list_op = NULL;
    }
    settle_check(ts); /* nothing is out any more: the waiters are told now */
    uv_timer_stop(&ts->timer);
    close_ctx *c = xcalloc(1, sizeof *c);
    c->closed = closed;
    c->ud = ud;
    ts->timer.data = c;
    uv_close((uv_handle_t *)&ts->timer, on_timer_closed);
}

void targets_free(targets *ts)
{
    for (size_t i = 0; i < ts->n; i++)
        rt_clear(&ts->v[i]);
    free(ts->v);
    ts->v = NULL;
    ts->n = 0;
}
