/* tell.c: what a person hears of the daemon (see tell.h): which events become notifications,
 * and when (a folder failing for 30 minutes, a server down for 5), written for a person. */
#include "tell.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

struct tell {
    notify_out *nout;
    const targets *targets;
    const char *env_file;        /* for the advice ("set PLEX_TOKEN in <file> and reload") */
    struct notify_watch **watch; /* per folder: when its round began failing, whether it is held */
    char **down_told;            /* targets told unreachable (target_down), until they answer */
    size_t n_down_told;
    uv_timer_t timer;            /* looks for targets down for 5 minutes, and back */
};

#define FAILING_AFTER_MS (30u * 60000u)     /* a round failing this long is told (once) */
#define TARGET_DOWN_AFTER_MS (5u * 60000u)  /* a target unreachable this long is told */
#define NOTIFY_CHECK_MS 15000u
#define WATCH_BUCKETS 1024u

/* A folder whose round is failing or that is held (a chained hash by path; dropped when its
 * round ends or its entry goes). */
struct notify_watch {
    struct notify_watch *next;
    uint64_t first_fail; /* wall ms of the round's first failed attempt, 0 = none */
    bool told_failing;
    bool held;
    char path[];
};

static struct notify_watch **watch_slot(tell_t *tl, const char *path)
{
    struct notify_watch **w = &tl->watch[hash_str(path) % WATCH_BUCKETS];
    while (*w && strcmp((*w)->path, path) != 0)
        w = &(*w)->next;
    return w;
}

static struct notify_watch *watch_get(tell_t *tl, const char *path)
{
    struct notify_watch **w = watch_slot(tl, path);
    if (!*w) {
        size_t n = strlen(path) + 1;
        *w = xcalloc(1, sizeof **w + n);
        memcpy((*w)->path, path, n);
    }
    return *w;
}

static void watch_drop(tell_t *tl, const char *path)
{
    struct notify_watch **w = watch_slot(tl, path), *x = *w;
    if (!x)
        return;
    *w = x->next;
    free(x);
}

void tell_forget(tell_t *tl, const char *path)
{
    if (tl && path)
        watch_drop(tl, path);
}

static void watch_free_all(tell_t *tl)
{
    for (size_t i = 0; tl->watch && i < WATCH_BUCKETS; i++) {
        while (tl->watch[i]) {
            struct notify_watch *x = tl->watch[i];
            tl->watch[i] = x->next;
            free(x);
        }
    }
    free(tl->watch);
    tl->watch = NULL;
}

/* The one way an event reaches the destinations: logged as it is sent (never a URL or token),
 * and only built when some destination listens to its kind. */
void tell_event(tell_t *tl, cfg_notify_event kind, const char *folder, const char *target, const char *fmt,
                         ...)
{
    if (!notify_out_wants(tl->nout, kind))
        return;
    char reason[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    log_debug("notify %s: folder=%s target=%s reason=%s", cfg_notify_event_name(kind), folder ? log_esc(folder) : "-",
              target ? target : "-", log_esc(reason));
    notify_out_event(tl->nout, kind, folder, target, reason, false);
}

/* What a person does about a parked round: a refused token names its variable and the file. */
static void notify_parked(tell_t *tl, const sync_report *r)
{
    const q_entry *e = r->entry;
    const char *target = NULL;
    for (size_t i = 0; e && i < e->n_deliv && !target; i++)
        if (e->deliv[i].state == DELIVERY_PARKED)
            target = e->deliv[i].target;
    const target_rt *t = target ? targets_find(tl->targets, target) : NULL;
    const char *why = e && e->park_reason ? e->park_reason : "parked";
    if (t && t->refused && t->cfg)
        tell_event(tl, NEV_PARKED, r->path, target, "%s. To do: set %s in %s and reload", why, t->cfg->token_var,
                     tl->env_file ? tl->env_file : "the .env file");
    else
        tell_event(tl, NEV_PARKED, r->path, target, "%s. To do: fix it, then reload or press Retry on the page", why);
}

/* Held and released (a mount's anchor), failing (30 minutes of retries), parked and scan (a
 * round's end), from one attempt's report. */
void tell_report(tell_t *tl, const sync_report *r)
{
    if (!r->path)
        return;
    struct notify_watch *w = *watch_slot(tl, r->path);
    if (r->held) {
        w = watch_get(tl, r->path);
        if (!w->held)
            tell_event(tl, NEV_HELD, r->path, NULL, "%s. It waits, checked again every 30 s: make sure the mount "
                         "is up", r->hold_reason ? r->hold_reason : "an anchor file is missing");
        w->held = true;
        return;
    }
    if (w && w->held) {
        w->held = false;
        tell_event(tl, NEV_RELEASED, r->path, NULL, "its anchor is back; it syncs again");
    }
    uint64_t now = wall_ms();
    if (r->failed && !r->round_over) {
        w = watch_get(tl, r->path);
        if (!w->first_fail)
            w->first_fail = now;
        else if (!w->told_failing && now - w->first_fail >= FAILING_AFTER_MS) {
            w->told_failing = true;
            tell_event(tl, NEV_FAILING, r->path, NULL, "not delivered after %llu minutes of retries: %s. To do: "
                         "check the media servers and rclone on the page",
                         (unsigned long long)((now - w->first_fail) / 60000u),
                         r->entry && r->entry->last_error ? r->entry->last_error : "it keeps failing");
        }
    }
    if (r->round_over) {
        if (r->parked)
            notify_parked(tl, r);
        tell_event(tl, NEV_SCAN, r->path, NULL, "%s", r->parked ? "the round ended parked" : "scanned");
    }
    if (r->round_over || !r->entry)
        watch_drop(tl, r->path);
}

/* Targets unreachable for TARGET_DOWN_AFTER_MS are told once, and again when they answer. */
static bool down_told(const tell_t *tl, const char *name, size_t *at)
{
    for (size_t i = 0; i < tl->n_down_told; i++) {
        if (strcmp(tl->down_told[i], name) == 0) {
            *at = i;
            return true;
        }
    }
    return false;
}

static void on_timer(uv_timer_t *h)
{
    tell_t *tl = h->data;
    uint64_t now = wall_ms();
    for (size_t i = 0; i < tl->targets->n; i++) {
        const target_rt *t = &tl->targets->v[i];
        size_t at;
        if (!t->cfg || !t->down_since || now - t->down_since < TARGET_DOWN_AFTER_MS || down_told(tl, t->name, &at))
            continue;
        tl->down_told = xrealloc(tl->down_told, (tl->n_down_told + 1) * sizeof *tl->down_told);
        tl->down_told[tl->n_down_told++] = xstrdup(t->name);
        tell_event(tl, NEV_TARGET_DOWN, NULL, t->name, "unreachable for %llu minutes: %s. To do: check that it runs "
                     "and that %s is right", (unsigned long long)((now - t->down_since) / 60000u),
                     t->error ? t->error : "no answer", t->cfg->origin);
    }
    for (size_t i = 0; i < tl->n_down_told;) {
        const target_rt *t = targets_find(tl->targets, tl->down_told[i]);
        if (t && t->down_since) {
            i++;
            continue;
        }
        if (t)
            tell_event(tl, NEV_TARGET_UP, NULL, t->name, "answers again; its deliveries go on");
        free(tl->down_told[i]);
        tl->down_told[i] = tl->down_told[--tl->n_down_told];
    }
}

void tell_log_destinations(const tell_t *tl)
{
    for (size_t i = 0; i < notify_out_count(tl->nout); i++) {
        nout_view v;
        notify_out_view(tl->nout, i, &v);
        char events[256] = "";
        for (int k = 0; k < NEV_COUNT; k++)
            if (v.events & (1u << k))
                snprintf(events + strlen(events), sizeof events - strlen(events), "%s%s", *events ? ", " : "",
                         cfg_notify_event_name((cfg_notify_event)k));
        log_info("notifications to %s at %s: %s", cfg_notify_type_name(v.type), v.origin, events);
    }
}


size_t tell_test(tell_t *tl, const char *source)
{
    if (source) {
        tell_event(tl, NEV_TEST, NULL, NULL, "%s sent a Test event: notifications from plex-servarr-sync reach you",
                     source);
    } else {
        log_info("a test notification was asked from the page");
        notify_out_event(tl->nout, NEV_TEST, NULL, NULL,
                         "sent from the page: notifications from plex-servarr-sync reach you", true);
    }
    return notify_out_count(tl->nout);
}

tell_t *tell_new(uv_loop_t *loop, notify_out *nout, const targets *ts, const char *env_file)
{
    tell_t *tl = xcalloc(1, sizeof *tl);
    tl->nout = nout;
    tl->targets = ts;
    tl->env_file = env_file;
    tl->watch = xcalloc(WATCH_BUCKETS, sizeof *tl->watch);
    uv_timer_init(loop, &tl->timer);
    tl->timer.data = tl;
    uv_timer_start(&tl->timer, on_timer, NOTIFY_CHECK_MS, NOTIFY_CHECK_MS);
    return tl;
}

static void on_closed(uv_handle_t *h)
{
    tell_t *tl = h->data;
    watch_free_all(tl);
    for (size_t i = 0; i < tl->n_down_told; i++)
        free(tl->down_told[i]);
    free(tl->down_told);
    free(tl);
}

void tell_stop(tell_t *tl)
{
    if (!tl)
        return;
    uv_timer_stop(&tl->timer);
    uv_close((uv_handle_t *)&tl->timer, on_closed);
}
