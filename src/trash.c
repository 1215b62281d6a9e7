/* trash.c: Plex's "empty trash", made safe (see trash.h). One small state machine per section:
 * idle -> (cooldown) -> wait while a folder of it syncs -> poll until Plex no longer refreshes
 * it -> check the anchors of every location -> PUT emptyTrash -> idle. */
#include "trash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "list.h"
#include "log.h"
#include "paths.h"
#include "util.h"

#define TRASH_COOLDOWN_MS (5u * 60u * 1000u) /* at most one call per section per 5 minutes */
#define TRASH_POLL_MS 5000u                   /* Plex's `refreshing`, and a busy section, looked at again */
#define TRASH_MAX_POLLS 120u                  /* 10 minutes of polling, then this round gives up */

/* ---- the guard on paths (pure) ---- */

/* t's path of a location back to an arr path: the longest replacement whose target side is a
 * component prefix of it, undone; a location no replacement reaches is already an arr path. */
static char *arr_of(const cfg_target *t, const char *loc)
{
    const cfg_replacement *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < t->path_repl.n; i++) {
        const cfg_replacement *r = &t->path_repl.v[i];
        size_t l = strlen(r->to);
        if (l >= best_len && paths_has_prefix(loc, r->to, true)) {
            best = r;
            best_len = l;
        }
    }
    if (!best)
        return xstrdup(loc);
    const char *rest = loc + best_len;
    if (strcmp(best->to, "/") == 0)
        rest = loc;
    return paths_join(best->from, rest[0] == '/' ? rest + 1 : rest);
}

static char *host_of(const config_t *c, const char *arr)
{
    return paths_replace(arr, c->local_path_repl_set ? &c->local_path_repl : &c->path_repl, NULL);
}

/* The anchor guarding a host path (an anchor guards the directory that holds it), or NULL. */
static const char *anchor_for(const config_t *c, const char *host)
{
    for (size_t i = 0; i < c->n_anchors; i++) {
        char *dir = paths_dirname(c->anchors[i]);
        bool hit = paths_has_prefix(host, dir, false);
        free(dir);
        if (hit)
            return c->anchors[i];
    }
    return NULL;
}

bool trash_guarded(const config_t *c, const cfg_target *t, const media_library *lib, char *why, size_t n)
{
    if (lib->n_locations == 0) {
        snprintf(why, n, "it lists no location");
        return false;
    }
    size_t used = 0;
    why[0] = '\0';
    for (size_t i = 0; i < lib->n_locations; i++) {
        char *arr = arr_of(t, lib->locations[i]);
        char *host = host_of(c, arr);
        const char *a = anchor_for(c, host);
        if (!a) {
            snprintf(why, n, "location %s (host path %s) is under no anchor: add an ANCHOR_FILES entry in that "
                     "mount (and keep Plex's own \"empty trash automatically\" off)", lib->locations[i], host);
            free(arr);
            free(host);
            return false;
        }
        if (used < n)
            used += (size_t)snprintf(why + used, n - used, "%s%s guarded by %s", i ? "; " : "", host, a);
        free(arr);
        free(host);
    }
    return true;
}

/* ---- the state machine ---- */

typedef enum { PH_IDLE, PH_COOLDOWN, PH_BUSY, PH_POLL, PH_ANCHORS, PH_CALL } phase;

typedef struct trash_sec {
    trash_t *tr;
    char *target, *library;
    uint64_t last;        /* mono ms of the last call, 0 = never */
    bool pending;         /* a round asked while this one was under way: one more call after */
    int said;             /* the guard's verdict last logged: 0 none, 1 guarded, 2 never emptied */
    phase ph;
    unsigned polls;
    size_t next_loc;      /* the anchors of which location are checked next */
    uv_timer_t timer;
    target_op *op;
    fscheck_op *fs_op;
    list_node link;
} trash_sec;

struct trash {
    uv_loop_t *loop;
    trash_env env;
    list_node secs;
    uint64_t emptied, refused;
    bool stopping;
};

static void step(trash_sec *s);

trash_t *trash_new(uv_loop_t *loop, const trash_env *env)
{
    trash_t *tr = xcalloc(1, sizeof *tr);
    tr->loop = loop;
    tr->env = *env;
    list_init(&tr->secs);
    return tr;
}

void trash_counts(const trash_t *tr, uint64_t *emptied, uint64_t *refused)
{
    *emptied = tr ? tr->emptied : 0;
    *refused = tr ? tr->refused : 0;
}

static trash_sec *sec_get(trash_t *tr, const char *target, const char *library)
{
    list_for_each(n, &tr->secs) {
        trash_sec *s = container_of(n, trash_sec, link);
        if (strcmp(s->target, target) == 0 && strcmp(s->library, library) == 0)
            return s;
    }
    trash_sec *s = xcalloc(1, sizeof *s);
    s->tr = tr;
    s->target = xstrdup(target);
    s->library = xstrdup(library);
    uv_timer_init(tr->loop, &s->timer);
    s->timer.data = s;
    list_push(&tr->secs, &s->link);
    return s;
}

/* The section as the target's latest list has it, and the target's configuration. */
static const media_library *sec_library(const trash_sec *s, const cfg_target **cfg)
{
    target_rt *t = targets_find(s->tr->env.targets, s->target);
    *cfg = t ? t->cfg : NULL;
    return t ? media_libraries_find(&t->libs, s->library) : NULL;
}

/* Whether the section's trash may be emptied, logged when the verdict is new (at the start, once
 * the list is read; after a list or configuration change; before a round's attempt). */
static void say_guard(trash_sec *s, const media_library *lib, bool ok, const char *why)
{
    int verdict = ok ? 1 : 2;
    if (s->said == verdict)
        return;
    s->said = verdict;
    if (ok)
        log_info("%s: the trash of section %s '%s' may be emptied after a delete, rename or upgrade (%s)",
                 s->target, log_esc(s->library), log_esc(lib && lib->title ? lib->title : ""), why);
    else
        log_warn("%s: the trash of section %s is never emptied: %s", s->target, log_esc(s->library),
                 log_esc(why));
}

/* This round's attempt ends (done or refused); a round that came meanwhile gets its turn. */
static void finish(trash_sec *s, bool refused)
{
    if (refused)
        s->tr->refused++;
    s->ph = PH_IDLE;
    s->polls = 0;
    s->next_loc = 0;
    if (s->pending && !s->tr->stopping) {
        s->pending = false;
        step(s);
    }
}

static void on_timer(uv_timer_t *h)
{
    step(h->data);
}

static void wait_then(trash_sec *s, phase ph, uint64_t ms)
{
    s->ph = ph;
    uv_timer_start(&s->timer, on_timer, ms, 0);
}

static void on_emptied(void *ud, const target_result *r)
{
    trash_sec *s = ud;
    s->op = NULL;
    s->last = mono_ms();
    if (r->status == TARGET_RES_OK) {
        s->tr->emptied++;
        log_info("%s: emptied the trash of section %s", s->target, log_esc(s->library));
        finish(s, false);
    } else {
        log_warn("%s: emptying the trash of section %s failed: %s (not retried; the next qualifying round "
                 "tries again)", s->target, log_esc(s->library), log_esc(r->message));
        finish(s, true);
    }
}

static void call(trash_sec *s, const cfg_target *t)
{
    s->ph = PH_CALL;
    if (target_empty_trash(s->tr->env.httpc, t, s->tr->env.cfg->plex_identifier, s->library, on_emptied, s,
                           &s->op) < 0) {
        log_warn("%s: cannot send the empty-trash request for section %s", s->target, log_esc(s->library));
        finish(s, true);
    }
}

static void check_next_anchor(trash_sec *s);

static void on_anchors(void *ud, bool ok, const char *reason)
{
    trash_sec *s = ud;
    s->fs_op = NULL;
    if (!ok) {
        log_warn("%s: not emptying the trash of section %s: %s", s->target, log_esc(s->library), log_esc(reason));
        finish(s, true);
        return;
    }
    s->next_loc++;
    check_next_anchor(s);
}

/* Every location's anchors, one after the other, right before the call. */
static void check_next_anchor(trash_sec *s)
{
    const cfg_target *t;
    const media_library *lib = sec_library(s, &t);
    const config_t *c = s->tr->env.cfg;
    if (!lib || !t) {
        finish(s, true);
        return;
    }
    if (s->next_loc >= lib->n_locations) {
        call(s, t);
        return;
    }
    s->ph = PH_ANCHORS;
    char *arr = arr_of(t, lib->locations[s->next_loc]);
    char *host = host_of(c, arr);
    int rc = fscheck_anchors(s->tr->env.fs, (const char *const *)c->anchors, c->n_anchors, host, on_anchors, s,
                             &s->fs_op);
    free(arr);
    free(host);
    if (rc < 0) {
        log_warn("%s: not emptying the trash of section %s: its anchors cannot be checked", s->target,
                 log_esc(s->library));
        finish(s, true);
    }
}

static void on_polled(void *ud, const target_result *r, media_libraries *libs)
{
    trash_sec *s = ud;
    s->op = NULL;
    const media_library *lib = r->status == TARGET_RES_OK ? media_libraries_find(libs, s->library) : NULL;
    bool refreshing = !lib || lib->refreshing;
    if (r->status != TARGET_RES_OK) {
        log_warn("%s: not emptying the trash of section %s: its library list failed: %s", s->target,
                 log_esc(s->library), log_esc(r->message));
        finish(s, true);
    } else if (!refreshing) {
        s->next_loc = 0;
        check_next_anchor(s);
    } else if (++s->polls >= TRASH_MAX_POLLS) {
        log_warn("%s: not emptying the trash of section %s: Plex still reports it refreshing after 10 minutes",
                 s->target, log_esc(s->library));
        finish(s, true);
    } else {
        wait_then(s, PH_POLL, TRASH_POLL_MS);
    }
}

static void poll(trash_sec *s, const cfg_target *t)
{
    s->ph = PH_POLL;
    if (target_list(s->tr->env.httpc, t, s->tr->env.cfg->plex_identifier, on_polled, s, &s->op) < 0)
        finish(s, true);
}

/* Where the section's attempt goes next, from what holds now. */
static void step(trash_sec *s)
{
    if (s->tr->stopping)
        return;
    const cfg_target *t;
    const media_library *lib = sec_library(s, &t);
    if (!t || t->kind != TARGET_PLEX || !t->empty_trash) {
        s->ph = PH_IDLE;
        return;
    }
    char why[700];
    if (!lib || !trash_guarded(s->tr->env.cfg, t, lib, why, sizeof why)) {
        say_guard(s, lib, false, lib ? why : "the section is not in Plex's list");
        finish(s, true);
        return;
    }
    uint64_t now = mono_ms();
    if (s->last && now - s->last < TRASH_COOLDOWN_MS) {
        wait_then(s, PH_COOLDOWN, TRASH_COOLDOWN_MS - (now - s->last));
        return;
    }
    if (sync_busy_library(s->tr->env.sync, s->target, s->library)) {
        wait_then(s, PH_BUSY, TRASH_POLL_MS);
        return;
    }
    poll(s, t);
}

void trash_after_round(trash_t *tr, const char *target, const char *library_id, unsigned kinds)
{
    if (!tr || tr->stopping || !(kinds & (QKIND_DELETE | QKIND_RENAME | QKIND_UPGRADE)))
        return;
    target_rt *t = targets_find(tr->env.targets, target);
    if (!t || !t->cfg || t->cfg->kind != TARGET_PLEX || !t->cfg->empty_trash)
        return;
    trash_sec *s = sec_get(tr, target, library_id);
    if (s->ph == PH_ANCHORS || s->ph == PH_CALL) {
        s->pending = true; /* the call under way may miss what this round marked: one more after */
        return;
    }
    if (s->ph != PH_IDLE)
        return; /* the call planned (cooldown, busy, refreshing) comes after this round: it covers it */
    step(s);
}

void trash_lists_changed(trash_t *tr)
{
    if (!tr || tr->stopping)
        return;
    const targets *ts = tr->env.targets;
    for (size_t i = 0; i < ts->n; i++) {
        const target_rt *t = &ts->v[i];
        if (!t->cfg || t->cfg->kind != TARGET_PLEX || !t->cfg->empty_trash || !t->libs.fetched_at)
            continue;
        for (size_t k = 0; k < t->libs.n; k++) {
            char why[700];
            bool ok = trash_guarded(tr->env.cfg, t->cfg, &t->libs.v[k], why, sizeof why);
            say_guard(sec_get(tr, t->name, t->libs.v[k].id), &t->libs.v[k], ok, why);
        }
    }
}

static void on_sec_closed(uv_handle_t *h)
{
    trash_sec *s = h->data;
    free(s->target);
    free(s->library);
    free(s);
}

void trash_stop(trash_t *tr, void (*closed)(void *ud), void *ud)
{
    if (!tr)
        return;
    tr->stopping = true;
    list_node *n;
    while ((n = list_pop(&tr->secs)) != NULL) {
        trash_sec *s = container_of(n, trash_sec, link);
        if (s->op)
            target_cancel(s->op);
        if (s->fs_op)
            fscheck_cancel(s->fs_op);
        uv_timer_stop(&s->timer);
        uv_close((uv_handle_t *)&s->timer, on_sec_closed);
    }
    free(tr);
    if (closed)
        closed(ud);
}
