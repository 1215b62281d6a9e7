/* probes.c: are the media servers and rclone answering right now? The probes, and the /health
 * asks that wait for them (see probes.h). Only what is old is asked: each rclone mount's rc/noop
 * when rclone's last answer is older than PROBES_FRESH_MS, and (through targets.c) the library
 * list of each server nothing was heard of for as long, the one call every kind answers and the
 * one that proves the token. The two go on independently: a server that hangs does not keep
 * rclone from being asked again, nor rclone's answer from being heard.
 *
 * Asks that come while others wait join them (one wait at a time, one timer): the wait ends when
 * nothing it waits for is out any more, or PROBES_WAIT_MS after it began. It waits only for calls
 * asked at most PROBES_WAIT_MS before it began: one that has hung longer is not waited for again
 * (its fact's age says it is old). */
#include "probes.h"

#include <stdlib.h>

#include "util.h"

#define RC_NOOP_TIMEOUT_MS 5000u /* one rc/noop: what rclone's answer may take at most */

/* One batch of rc/noop calls, one per mount. */
typedef struct rc_batch {
    app_t *a;
    unsigned pending;   /* calls out, plus one while starting */
    bool aborted;       /* a call was dropped without an answer (shutdown) */
    unsigned mounts, up;
} rc_batch;

/* The /health asks waiting, and the bound of their wait (the timer). */
typedef struct probe_wait {
    uv_timer_t timer;
    app_t *a;
    uint64_t since;     /* mono ms: calls asked at or after this are waited for */
    targets_waiter tw;  /* waiting for the list reads out */
    list_node asks;     /* probe_ask.link */
} probe_wait;

typedef struct probe_ask {
    list_node link;
    probes_done_fn done;
    void *ud;
} probe_ask;

/* The rounds' state, this file's own: the app only holds it (app_probes_attach) and frees it. */
struct probes {
    bool rclone_in_flight;   /* rc/noop calls are out */
    uint64_t rclone_started; /* mono ms when they were asked */
    probes_rclone rclone;    /* what the last batch that answered heard */
    probe_wait *wait;        /* the /health asks waiting for answers, or NULL */
};

static void probes_free(struct probes *p) { free(p); }

/* a's probe state, made on first use. */
static struct probes *state(app_t *a)
{
    struct probes *p = app_probes(a);
    if (!p) {
        p = xcalloc(1, sizeof *p);
        app_probes_attach(a, p, probes_free);
    }
    return p;
}

probes_rclone probes_rclone_of(const app_t *a)
{
    const struct probes *p = app_probes(a);
    return p ? p->rclone : (probes_rclone){0};
}

static void on_wait_closed(uv_handle_t *h)
{
    free(h->data);
}

/* The wait is over: every ask is answered, after w is detached and its timer closing, so an
 * ask's callback may ask again. */
static void wait_end(probe_wait *w)
{
    struct probes *p = state(w->a);
    if (p->wait == w)
        p->wait = NULL;
    targets_cancel_settle(&w->tw);
    list_node asks;
    list_init(&asks);
    list_take(&asks, &w->asks);
    uv_timer_stop(&w->timer);
    uv_close((uv_handle_t *)&w->timer, on_wait_closed);
    list_node *n;
    while ((n = list_pop(&asks)) != NULL) {
        probe_ask *x = container_of(n, probe_ask, link);
        x->done(x->ud);
        free(x);
    }
}

static bool rclone_out_for(app_t *a, uint64_t since)
{
    const struct probes *p = state(a);
    return p->rclone_in_flight && p->rclone_started >= since;
}

/* Something the wait was for ended: the wait ends once nothing of it is out. */
static void wait_check(app_t *a)
{
    probe_wait *w = state(a)->wait;
    if (w && !w->tw.waiting && !rclone_out_for(a, w->since))
        wait_end(w);
}

static void on_wait_timer(uv_timer_t *t)
{
    wait_end(t->data);
}

static void on_lists_settled(void *ud)
{
    probe_wait *w = ud;
    wait_check(w->a);
}

/* ---- rclone ---- */

static void batch_release(rc_batch *b)
{
    if (--b->pending)
        return;
    app_t *a = b->a;
    struct probes *p = state(a);
    p->rclone_in_flight = false;
    if (!b->aborted)
        p->rclone = (probes_rclone){.done = true, .mounts = b->mounts, .up = b->up, .checked = wall_ms()};
    free(b);
    wait_check(a);
}

static void on_noop(void *ud, const httpc_result *res)
{
    rc_batch *b = ud;
    if (res->error == HTTPC_OK && res->status > 0 && res->status < 500)
        b->up++;
    batch_release(b);
}

static void on_noop_dropped(void *ud)
{
    rc_batch *b = ud;
    b->aborted = true;
    batch_release(b);
}

static void noop_start(rc_batch *b, const cfg_mount *m)
{
    static const char *const json_headers[] = {"Accept: application/json", "Content-Type: application/json",
                                               NULL};
    char *url = xasprintf("%s/rc/noop", m->url);
    httpc_opts o = {.method = "POST",
                    .url = url,
                    .headers = json_headers,
                    .body = "{}",
                    .body_len = 2,
                    .user = m->user,
                    .pass = m->user ? (m->pass ? m->pass : "") : NULL,
                    .timeout_ms = RC_NOOP_TIMEOUT_MS,
                    .max_response_bytes = 64 * 1024};
    b->mounts++;
    b->pending++;
    httpc_req *req;
    if (httpc_request_ex(app_io_of(b->a).httpc, &o, on_noop, b, on_noop_dropped, &req) < 0)
        b->pending--; /* counted as not answering */
    free(url);
}

/* rclone's last answer is older than PROBES_FRESH_MS (or there was none, or the clock went back). */
static bool rclone_stale(app_t *a)
{
    const config_t *cfg = app_config(a);
    if (!cfg->use_rclone || cfg->n_mounts == 0)
        return false;
    const probes_rclone *heard = &state(a)->rclone;
    uint64_t now = wall_ms(), at = heard->checked;
    return !heard->done || now < at || now - at >= PROBES_FRESH_MS;
}

static void rclone_renew(app_t *a)
{
    struct probes *p = state(a);
    if (p->rclone_in_flight || !rclone_stale(a))
        return;
    rc_batch *b = xcalloc(1, sizeof *b);
    b->a = a;
    b->pending = 1; /* held while starting, so no answer can end the batch early */
    p->rclone_in_flight = true;
    p->rclone_started = mono_ms();
    const config_t *cfg = app_config(a);
    for (size_t i = 0; i < cfg->n_mounts; i++)
        if (cfg->mounts[i].url && *cfg->mounts[i].url)
            noop_start(b, &cfg->mounts[i]);
    batch_release(b);
}

/* ---- the API ---- */

void probes_renew(app_t *a)
{
    if (app_stopping(a) || !app_io_of(a).httpc)
        return;
    rclone_renew(a);
    targets_probe_stale(app_targets_probed(a), PROBES_FRESH_MS, NULL);
}

/* A new wait (NULL when nothing is out to wait for): what is old is asked first, and the list
 * reads are waited for through targets_probe_stale. */
static probe_wait *wait_get(app_t *a)
{
    uint64_t now = mono_ms();
    probe_wait *w = xcalloc(1, sizeof *w);
    w->a = a;
    w->since = now > PROBES_WAIT_MS ? now - PROBES_WAIT_MS : 0;
    w->tw.since = w->since;
    w->tw.settled = on_lists_settled;
    w->tw.ud = w;
    list_init(&w->asks);
    rclone_renew(a);
    targets_probe_stale(app_targets_probed(a), PROBES_FRESH_MS, &w->tw);
    if (!w->tw.waiting && !rclone_out_for(a, w->since)) {
        free(w);
        return NULL;
    }
    uv_timer_init(app_io_of(a).loop, &w->timer);
    w->timer.data = w;
    uv_timer_start(&w->timer, on_wait_timer, PROBES_WAIT_MS, 0);
    state(a)->wait = w;
    return w;
}

void probes_wait(app_t *a, probes_done_fn done, void *ud)
{
    probe_wait *w = state(a)->wait;
    if (app_stopping(a) || !app_io_of(a).httpc) {
        w = NULL;
    } else if (w) {
        /* join the wait under way; what grew old since it began is asked, and waited for */
        rclone_renew(a);
        targets_probe_stale(app_targets_probed(a), PROBES_FRESH_MS, w->tw.waiting ? NULL : &w->tw);
    } else {
        w = wait_get(a);
    }
    if (!w) {
        done(ud);
        return;
    }
    probe_ask *x = xcalloc(1, sizeof *x);
    x->done = done;
    x->ud = ud;
    list_push(&w->asks, &x->link);
}
