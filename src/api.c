/* api.c: the JSON API behind the UI, /health and /metrics. Read-only views of the queue, the
 * history and the counters, plus the path preview. Label values in /metrics come from fixed
 * lists only (states, apps, outcomes), never from paths or client input. */
#include <cjson/cJSON.h>

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api.h"
#include "api_page.h"
#include "http_json.h"
#include "json_arena.h"
#include "log.h"
#include "paths.h"
#include "probes.h"
#include "util.h"

static cJSON *sources_array(unsigned bits)
{
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < APP_COUNT; i++)
        if (bits & (1u << i))
            cJSON_AddItemToArray(arr, cJSON_CreateString(arr_app_name((arr_app)i)));
    return arr;
}

/* ---- what is known of the targets and rclone (probes.c renews it) ---- */

/* A target answers: its last call got an HTTP answer (before any call: unknown, taken as not). */
static bool target_answers(const target_rt *t)
{
    return t->answered && t->reachable;
}

/* The `plex` keys the Python script's dashboards read: the target named plex (PLEX_URL), else
 * the first Plex target. */
static const target_rt *main_plex(const app_t *a)
{
    const targets *ts = app_targets(a);
    const target_rt *first = NULL;
    for (size_t i = 0; i < ts->n; i++) {
        const target_rt *t = &ts->v[i];
        if (!t->cfg || t->cfg->kind != TARGET_PLEX)
            continue;
        if (strcmp(t->name, "plex") == 0)
            return t;
        if (!first)
            first = t;
    }
    return first;
}

static bool rclone_enabled(const app_t *a)
{
    const config_t *cfg = app_config(a);
    return cfg->use_rclone && cfg->n_mounts > 0;
}

static bool rclone_answers(const app_t *a)
{
    if (!rclone_enabled(a))
        return true;
    probes_rclone heard = probes_rclone_of(a);
    if (heard.done)
        return heard.up == heard.mounts;
    app_status st = app_status_of(a);
    return !st.rclone_error || st.rclone_reachable;
}

static const char *library_title(const app_t *a, const char *target, const char *library)
{
    const target_rt *t = targets_find(app_targets(a), target);
    const media_library *lib = t ? media_libraries_find(&t->libs, library) : NULL;
    return lib ? lib->title : NULL;
}

/* The Python script's `section` and `plex_path` keys: the first delivery to a Plex target. */
static void add_legacy_plex(cJSON *o, const app_t *a, const char *target, const char *library, const char *path)
{
    if (!target) {
        cJSON_AddNullToObject(o, "section");
        cJSON_AddStringToObject(o, "plex_path", path ? path : "");
        return;
    }
    char *end = NULL;
    long section = strtol(library, &end, 10);
    if (*library && end && !*end)
        json_add_int(o, "section", section);
    else
        cJSON_AddNullToObject(o, "section");
    const char *title = library_title(a, target, library);
    if (title)
        cJSON_AddStringToObject(o, "section_title", title);
    cJSON_AddStringToObject(o, "plex_path", path ? path : "");
}

/* How long ago a fact was learnt (wall ms), null when never: a monitor sees how old each is. */
static void add_age(cJSON *o, uint64_t wall)
{
    uint64_t now = wall_ms();
    if (wall)
        json_add_int(o, "checked_ms_ago", now > wall ? (long long)(now - wall) : 0);
    else
        cJSON_AddNullToObject(o, "checked_ms_ago");
}

static void add_time(cJSON *o, const char *name, uint64_t wall)
{
    if (wall)
        json_add_int(o, name, wall);
    else
        cJSON_AddNullToObject(o, name);
}

/* SECTION_MAPPING prefixes (of each Plex target) that lie outside every location of their
 * library (Plex ignores a scan there). Only known once the library list has been read. */
static size_t mappings_outside(const app_t *a)
{
    const targets *ts = app_targets(a);
    size_t n = 0;
    for (size_t i = 0; i < ts->n; i++) {
        const target_rt *t = &ts->v[i];
        if (!t->cfg || !t->libs.fetched_at)
            continue;
        for (size_t k = 0; k < t->cfg->n_section_map; k++) {
            char id[24];
            snprintf(id, sizeof id, "%ld", t->cfg->section_map[k].section);
            const media_library *lib = media_libraries_find(&t->libs, id);
            n += lib && !folders_library_holds(lib, t->cfg->section_map[k].prefix);
        }
    }
    return n;
}

static void degraded_line(cJSON *arr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void degraded_line(cJSON *arr, const char *fmt, ...)
{
    char line[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    cJSON_AddItemToArray(arr, cJSON_CreateString(line));
}

/* Each target that is not fine, by name. */
static void degraded_targets(const app_t *a, cJSON *degraded)
{
    const targets *ts = app_targets(a);
    if (ts->n == 0)
        degraded_line(degraded, "targets: no media server configured (PLEX_URL, JELLYFIN_URL, EMBY_URL or "
                                "MEDIA_SERVERS)");
    for (size_t i = 0; i < ts->n; i++) {
        const target_rt *t = &ts->v[i];
        if (!t->cfg)
            continue;
        if (t->refused)
            degraded_line(degraded, "%s: token refused (%s)", t->name, t->cfg->token_var);
        else if (t->answered && !t->reachable)
            degraded_line(degraded, "%s: not reachable", t->name);
        else if (!t->libs.fetched_at && !(t->cfg->kind == TARGET_PLEX && t->cfg->n_section_map))
            degraded_line(degraded, "%s: library list not read yet", t->name);
    }
}

static cJSON *targets_json(const app_t *a)
{
    const targets *ts = app_targets(a);
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < ts->n; i++) {
        const target_rt *t = &ts->v[i];
        if (!t->cfg)
            continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", t->name);
        cJSON_AddStringToObject(o, "kind", target_kind_name(t->cfg->kind));
        cJSON_AddBoolToObject(o, "answered", t->answered);
        cJSON_AddBoolToObject(o, "reachable", target_answers(t));
        /* a Plex server whose folders all go by SECTION_MAPPING can scan without its list */
        cJSON_AddBoolToObject(o, "list_needed", !(t->cfg->kind == TARGET_PLEX && t->cfg->n_section_map));
        cJSON_AddBoolToObject(o, "token_refused", t->refused);
        json_add_int(o, "libraries", t->libs.n);
        add_time(o, "libraries_read_at", t->libs.fetched_at);
        add_time(o, "checked_at", t->checked);
        add_age(o, t->checked);
        add_time(o, "down_since", t->down_since);
        if (t->error)
            cJSON_AddStringToObject(o, "error", t->error);
        else
            cJSON_AddNullToObject(o, "error");
        cJSON *d = cJSON_AddObjectToObject(o, "deliveries");
        json_add_int(d, "ok", t->sent_ok);
        json_add_int(d, "failed", t->sent_failed);
        json_add_int(d, "parked", t->sent_parked);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

/* ---- /health ---- */

/* Everything a monitor should hear of, one line each, naming what it is about. */
static cJSON *health_degraded(const app_t *a, size_t parked, size_t held)
{
    cJSON *degraded = cJSON_CreateArray();
    degraded_targets(a, degraded);
    if (!rclone_answers(a))
        degraded_line(degraded, "rclone: not reachable");
    /* From the first failed commit (or WAL sync) until one succeeds, webhooks are answered 503:
     * a monitor must see it. */
    app_status st = app_status_of(a);
    uint64_t failed_commits = st.commit_fail_streak + st.sync_fail_streak;
    if (failed_commits)
        degraded_line(degraded, "state database: cannot be written (%llu failed commit%s); webhooks are refused",
                      (unsigned long long)failed_commits, failed_commits == 1 ? "" : "s");
    const char *failed[16];
    size_t nf = fscheck_failed_mounts(app_io_of(a).fs, failed, ARRAY_SIZE(failed));
    for (size_t i = 0; i < nf && i < ARRAY_SIZE(failed); i++)
        degraded_line(degraded, "mount %s: stat hung", failed[i]);
    if (parked)
        degraded_line(degraded, "%zu parked folder%s", parked, parked == 1 ? "" : "s");
    if (held)
        degraded_line(degraded, "%zu folder%s held by anchors", held, held == 1 ? "" : "s");
    size_t outside = mappings_outside(a);
    if (outside)
        degraded_line(degraded, "SECTION_MAPPING: %zu prefix%s outside its library's locations (Plex ignores "
                                "scans there)", outside, outside == 1 ? "" : "es");
    return degraded;
}

/* rclone in words: "not configured" (no RCLONE_RC_URL / RCLONE_MOUNTS, or USE_RCLONE=false) and
 * "unknown" (never heard: its first rc/noop still out) are neither up nor down, so `reachable`
 * is null then. */
static cJSON *health_rclone(const app_t *a)
{
    cJSON *rc = cJSON_CreateObject();
    bool on = rclone_enabled(a);
    probes_rclone heard = probes_rclone_of(a);
    app_status st = app_status_of(a);
    bool known = heard.done || st.rclone_reachable || st.rclone_error;
    cJSON_AddBoolToObject(rc, "configured", on);
    cJSON_AddStringToObject(rc, "state", !on      ? "not configured"
                                         : !known ? "unknown"
                                         : rclone_answers(a) ? "reachable" : "not reachable");
    json_add_int(rc, "mounts", on ? app_config(a)->n_mounts : 0);
    if (on && known)
        cJSON_AddBoolToObject(rc, "reachable", rclone_answers(a));
    else
        cJSON_AddNullToObject(rc, "reachable");
    if (on && heard.done)
        json_add_int(rc, "mounts_answering", heard.up);
    else
        cJSON_AddNullToObject(rc, "mounts_answering");
    add_age(rc, on && heard.done ? heard.checked : 0);
    return rc;
}

static cJSON *health_json(const app_t *a, bool fresh, uint64_t waited_ms, int *n_degraded)
{
    cJSON *j = cJSON_CreateObject();
    size_t parked = queue_count_state(app_queue(a), ENTRY_PARKED);
    size_t held = queue_count_state(app_queue(a), ENTRY_HELD);
    cJSON *degraded = health_degraded(a, parked, held);
    *n_degraded = cJSON_GetArraySize(degraded);
    cJSON_AddStringToObject(j, "status", *n_degraded ? "degraded" : "ok");
    cJSON_AddStringToObject(j, "version", PSS_VERSION);
    json_add_int(j, "uptime_s", ((wall_ms() - app_status_of(a).started_at) / 1000));
    cJSON_AddItemToObject(j, "degraded", degraded);
    /* Whether every fact of the targets and rclone below is younger than 5 s (false: one did not
     * answer within the wait's bound, or never did; its checked_ms_ago says how old it is). */
    cJSON *probe = cJSON_AddObjectToObject(j, "probe");
    cJSON_AddBoolToObject(probe, "fresh", fresh);
    json_add_int(probe, "waited_ms", (long long)waited_ms);
    cJSON *q = cJSON_AddObjectToObject(j, "queue");
    json_add_int(q, "depth", queue_count(app_queue(a)));
    json_add_int(q, "syncing", app_status_of(a).syncing);
    json_add_int(q, "parked", parked);
    json_add_int(q, "held", held);
    json_add_int(q, "unresolved", queue_count_state(app_queue(a), ENTRY_UNRESOLVED));
    const target_rt *px = main_plex(a);
    cJSON *plex = cJSON_AddObjectToObject(j, "plex");
    cJSON_AddBoolToObject(plex, "configured", px != NULL);
    cJSON_AddBoolToObject(plex, "reachable", px && target_answers(px));
    json_add_int(plex, "libraries", px ? px->libs.n : 0);
    add_age(plex, px ? px->checked : 0);
    cJSON_AddItemToObject(j, "targets", targets_json(a));
    cJSON_AddItemToObject(j, "rclone", health_rclone(a));
    return j;
}

/* One /health ask, answered once the probes it waits for have answered (or its bound comes). */
typedef struct health_ask {
    app_t *a;
    http_request *r;
    uint64_t asked; /* mono ms */
} health_ask;

/* Whether every fact /health gives of the targets and rclone is younger than PROBES_FRESH_MS. */
static bool facts_fresh(const app_t *a)
{
    uint64_t now = wall_ms();
    const targets *ts = app_targets(a);
    for (size_t i = 0; i < ts->n; i++) {
        uint64_t at = ts->v[i].checked;
        if (ts->v[i].cfg && (!at || (now > at && now - at >= PROBES_FRESH_MS)))
            return false;
    }
    probes_rclone heard = probes_rclone_of(a);
    uint64_t at = heard.checked;
    return !rclone_enabled(a) || (heard.done && !(now > at && now - at >= PROBES_FRESH_MS));
}

static void health_answer(void *ud)
{
    health_ask *h = ud;
    app_t *a = h->a;
    http_request *r = h->r;
    uint64_t waited = mono_ms() - h->asked;
    free(h);
    if (app_status_of(a).stop_done) { /* the state it describes is being closed */
        http_respond_json_error(r, 503, "stopping");
        return;
    }
    int n_degraded;
    cJSON *j = health_json(a, facts_fresh(a), waited, &n_degraded);
    bool strict = false;
    char *s = http_query_get(r->query, "strict");
    if (s && (strcmp(s, "1") == 0 || strcmp(s, "true") == 0))
        strict = true;
    free(s);
    http_respond_cjson(r, strict && n_degraded ? 503 : 200, j);
}

void api_health(app_t *a, http_request *r)
{
    health_ask *h = xcalloc(1, sizeof *h);
    h->a = a;
    h->r = r;
    h->asked = mono_ms();
    probes_wait(a, health_answer, h);
}

static cJSON *notify_json(const app_t *a);

/* ---- /api/stats (keeps the Python script's shape for dashboard widgets) ---- */

static cJSON *states_object(const app_t *a)
{
    cJSON *o = cJSON_CreateObject();
    for (int s = 0; s < ENTRY_STATE_COUNT; s++)
        json_add_int(o, entry_state_name((entry_state)s), queue_count_state(app_queue(a), (entry_state)s));
    return o;
}

void api_stats(app_t *a, http_request *r)
{
    probes_renew(a);
    store_stats st;
    if (store_history_stats(app_store(a), &st) < 0) {
        http_respond_json_error(r, 500, "cannot read the history");
        return;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON *syncs = cJSON_AddObjectToObject(j, "syncs");
    /* Rounds: `failed` counts the rounds that ended parked (waiting for a person), not the
     * attempts that were retried; rows of older versions (one per failed attempt) are left out. */
    json_add_int(syncs, "total", st.ok + st.parked + st.skipped);
    json_add_int(syncs, "ok", st.ok);
    json_add_int(syncs, "warning", st.warning); /* of ok: rounds with something to fix */
    json_add_int(syncs, "failed", st.parked);
    json_add_int(syncs, "parked", st.parked);
    json_add_int(syncs, "skipped", st.skipped);
    json_add_int(syncs, "retrying", st.retrying);
    json_add_int(syncs, "cancelled", st.cancelled);
    json_add_int(syncs, "avg_duration_ms", st.avg_duration_ms);
    cJSON *q = cJSON_AddObjectToObject(j, "queue");
    json_add_int(q, "depth", queue_count(app_queue(a)));
    json_add_int(q, "syncing", app_status_of(a).syncing);
    json_add_int(q, "parked", queue_count_state(app_queue(a), ENTRY_PARKED));
    cJSON_AddItemToObject(q, "by_state", states_object(a));
    if (st.last_sync) {
        char iso[32];
        time_t t = (time_t)(st.last_sync / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
        cJSON_AddStringToObject(j, "last_sync", iso);
    } else {
        cJSON_AddNullToObject(j, "last_sync");
    }
    const target_rt *px = main_plex(a);
    cJSON_AddBoolToObject(j, "plex_reachable", px && target_answers(px));
    cJSON_AddBoolToObject(j, "rclone_reachable", rclone_answers(a));
    cJSON *plex = cJSON_AddObjectToObject(j, "plex");
    cJSON_AddBoolToObject(plex, "configured", px != NULL);
    cJSON_AddBoolToObject(plex, "reachable", px && target_answers(px));
    cJSON_AddBoolToObject(plex, "token_refused", px && px->refused);
    add_time(plex, "checked_at", px ? px->checked : 0);
    json_add_int(plex, "libraries", px ? px->libs.n : 0);
    add_time(plex, "libraries_read_at", px ? px->libs.fetched_at : 0);
    if (px && px->error)
        cJSON_AddStringToObject(plex, "error", px->error);
    else
        cJSON_AddNullToObject(plex, "error");
    cJSON_AddItemToObject(j, "targets", targets_json(a));
    cJSON *rc = cJSON_AddObjectToObject(j, "rclone");
    cJSON_AddBoolToObject(rc, "enabled", rclone_enabled(a));
    json_add_int(rc, "mounts", (app_config(a)->use_rclone ? app_config(a)->n_mounts : 0));
    cJSON_AddBoolToObject(rc, "reachable", rclone_answers(a));
    probes_rclone heard = probes_rclone_of(a);
    if (heard.done)
        json_add_int(rc, "mounts_answering", heard.up);
    else
        cJSON_AddNullToObject(rc, "mounts_answering");
    add_time(rc, "checked_at", heard.done ? heard.checked : 0);
    app_status own = app_status_of(a);
    if (own.rclone_error)
        cJSON_AddStringToObject(rc, "error", own.rclone_error);
    else
        cJSON_AddNullToObject(rc, "error");
    cJSON_AddItemToObject(j, "notifications", notify_json(a));
    cJSON_AddItemToObject(j, "setup", api_setup_json(a));
    cJSON_AddStringToObject(j, "version", PSS_VERSION);
    json_add_int(j, "uptime_s", ((wall_ms() - own.started_at) / 1000));
    http_respond_cjson(r, 200, j);
}

/* ---- /api/queue ---- */

#define QUEUE_VIEW_DEFAULT 200
#define QUEUE_VIEW_MAX 1000

typedef struct queue_view {
    const app_t *a;
    const q_entry **v;
    size_t n, cap;
    int state;          /* -1 = all */
    const char *search; /* NULL = all */
} queue_view;

/* ASCII case-insensitive substring test (paths are compared this way elsewhere too). */
static bool ci_contains(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    if (n == 0)
        return true;
    for (; *hay; hay++)
        if (ascii_strncasecmp(hay, needle, n) == 0)
            return true;
    return false;
}

/* A search also finds an entry by the path one of its targets sees. */
static bool deliveries_contain(const app_t *a, const q_entry *e, const char *needle)
{
    for (size_t i = 0; i < e->n_deliv; i++) {
        const target_rt *t = targets_find(app_targets(a), e->deliv[i].target);
        char *tp = t && t->cfg ? folders_target_path(t->cfg, e->path) : NULL;
        bool hit = tp && ci_contains(tp, needle);
        free(tp);
        if (hit)
            return true;
    }
    return false;
}

static void collect_entry(void *ud, const q_entry *e)
{
    queue_view *v = ud;
    if (v->state >= 0 && (int)e->state != v->state)
        return;
    if (v->search && !ci_contains(e->path, v->search) && !(e->title && ci_contains(e->title, v->search)) &&
        !deliveries_contain(v->a, e, v->search))
        return;
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 64;
        v->v = xrealloc(v->v, v->cap * sizeof *v->v);
    }
    v->v[v->n++] = e;
}

/* Display order: what runs now, then what needs a person (parked), then what waits by due time,
 * then what waits for Plex's library list. */
static int state_rank(entry_state s)
{
    switch (s) {
    case ENTRY_SYNCING: return 0;
    case ENTRY_CHECKING: return 1;
    case ENTRY_READY: return 2;
    case ENTRY_PARKED: return 3;
    case ENTRY_UNRESOLVED: return 5;
    default: return 4;
    }
}

static int cmp_entries(const void *pa, const void *pb)
{
    const q_entry *a = *(const q_entry *const *)pa, *b = *(const q_entry *const *)pb;
    int ra = state_rank(a->state), rb = state_rank(b->state);
    if (ra != rb)
        return ra < rb ? -1 : 1;
    uint64_t ka = ra == 4 ? a->due : a->first_seen, kb = rb == 4 ? b->due : b->first_seen;
    if (ka != kb)
        return ka < kb ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* An entry's deliveries: target, kind, library, the path that target is sent, state, error. */
static cJSON *deliveries_json(const app_t *a, const q_entry *e, const char **plex_target, const char **plex_lib,
                              char **plex_path)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < e->n_deliv; i++) {
        const q_delivery *d = &e->deliv[i];
        const target_rt *t = targets_find(app_targets(a), d->target);
        char *tp = t && t->cfg ? folders_target_path(t->cfg, e->path) : NULL;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "target", d->target);
        cJSON_AddStringToObject(o, "kind", t && t->cfg ? target_kind_name(t->cfg->kind) : "");
        if (*d->library)
            cJSON_AddStringToObject(o, "library", d->library);
        else
            cJSON_AddNullToObject(o, "library");
        const char *title = library_title(a, d->target, d->library);
        if (title)
            cJSON_AddStringToObject(o, "library_title", title);
        else
            cJSON_AddNullToObject(o, "library_title");
        cJSON_AddStringToObject(o, "path", tp ? tp : "");
        cJSON_AddStringToObject(o, "state", delivery_state_name(d->state));
        if (d->error)
            cJSON_AddStringToObject(o, "error", d->error);
        else
            cJSON_AddNullToObject(o, "error");
        cJSON_AddItemToArray(arr, o);
        if (!*plex_target && t && t->cfg && t->cfg->kind == TARGET_PLEX) {
            *plex_target = d->target;
            *plex_lib = d->library;
            *plex_path = tp;
            tp = NULL;
        }
        free(tp);
    }
    return arr;
}

/* What an entry or a round is about: its title (null when no event said), its latest event's
 * kind, and the *arr app that sent it (null for a person or a trigger). */
static void add_about(cJSON *o, const char *title, q_event_kind event, unsigned last_app)
{
    if (title)
        cJSON_AddStringToObject(o, "title", title);
    else
        cJSON_AddNullToObject(o, "title");
    cJSON_AddStringToObject(o, "event", q_event_kind_name(event));
    if (last_app && ARR_APP_HAS_PAYLOAD(last_app - 1))
        cJSON_AddStringToObject(o, "app", arr_app_name((arr_app)(last_app - 1)));
    else
        cJSON_AddNullToObject(o, "app");
}

static cJSON *entry_json(const app_t *a, const q_entry *e, uint64_t now)
{
    cJSON *o = cJSON_CreateObject();
    json_add_int(o, "id", e->id);
    add_about(o, e->title, (q_event_kind)e->event, e->last_app);
    const char *pt = NULL, *pl = NULL;
    char *pp = NULL;
    cJSON *deliv = deliveries_json(a, e, &pt, &pl, &pp);
    add_legacy_plex(o, a, pt, pl, pp ? pp : e->path);
    free(pp);
    cJSON_AddStringToObject(o, "arr_path", e->path);
    cJSON_AddStringToObject(o, "path", e->path);
    cJSON_AddStringToObject(o, "state", entry_state_name(e->state));
    cJSON_AddItemToObject(o, "deliveries", deliv);
    json_add_int(o, "first_seen", e->first_seen);
    json_add_int(o, "last_event", e->last_event);
    bool timed = e->state == ENTRY_WAITING || e->state == ENTRY_AGING || e->state == ENTRY_HELD ||
                 e->state == ENTRY_RETRY || e->state == ENTRY_READY;
    if (timed) {
        json_add_int(o, "due", e->due);
        json_add_int(o, "due_in_ms", (e->due > now ? e->due - now : 0));
    } else {
        cJSON_AddNullToObject(o, "due");
        cJSON_AddNullToObject(o, "due_in_ms");
    }
    json_add_int(o, "attempts", e->attempts);
    json_add_int(o, "events", e->events);
    json_add_int(o, "files", e->n_files);
    cJSON_AddBoolToObject(o, "dirty", e->dirty);
    cJSON_AddBoolToObject(o, "manual", e->manual);
    cJSON_AddBoolToObject(o, "rclone_done", e->rclone_done);
    cJSON_AddItemToObject(o, "sources", sources_array(e->sources));
    if (e->state == ENTRY_PARKED && e->park_reason)
        cJSON_AddStringToObject(o, "park_reason", e->park_reason);
    if (e->state == ENTRY_HELD && e->hold_reason)
        cJSON_AddStringToObject(o, "hold_reason", e->hold_reason);
    if (e->state == ENTRY_AGING) {
        /* What MINIMUM_AGE counts from: the files' times, or the event's when none could be read. */
        cJSON_AddStringToObject(o, "age_from", e->age_unseen ? "event" : "files");
        if (e->age_unseen)
            cJSON_AddStringToObject(o, "age_reason", e->n_files ? "files not visible on this host"
                                                                : "the events name no file");
    }
    if (e->last_error)
        cJSON_AddStringToObject(o, "last_error", e->last_error);
    cJSON_AddBoolToObject(o, "can_retry", e->state == ENTRY_PARKED);
    return o;
}

void api_queue(app_t *a, http_request *r)
{
    queue_view v = {.a = a, .state = -1};
    char *state = http_query_get(r->query, "state");
    char *search = http_query_get(r->query, "search");
    char *limit = http_query_get(r->query, "limit");
    long lim = QUEUE_VIEW_DEFAULT;
    const char *bad = NULL;
    if (state && *state) {
        for (int s = 0; s < ENTRY_STATE_COUNT; s++)
            if (strcmp(state, entry_state_name((entry_state)s)) == 0)
                v.state = s;
        if (v.state < 0)
            bad = "unknown state; use unresolved, waiting, aging, held, ready, checking, syncing, retry or parked";
    }
    long long ll;
    if (limit && *limit) {
        if (parse_positive(limit, strlen(limit), QUEUE_VIEW_MAX, &ll) < 0)
            bad = "limit must be a positive number";
        else
            lim = (long)ll;
    }
    if (search && *search)
        v.search = search;
    if (bad) {
        free(state);
        free(search);
        free(limit);
        http_respond_json_error(r, 400, bad);
        return;
    }
    uint64_t now = wall_ms();
    queue_foreach(app_queue(a), collect_entry, &v);
    if (v.n > 1)
        qsort(v.v, v.n, sizeof *v.v, cmp_entries);
    cJSON *j = cJSON_CreateObject();
    json_add_int(j, "depth", queue_count(app_queue(a)));
    json_add_int(j, "matching", v.n);
    json_add_int(j, "now", now);
    cJSON_AddItemToObject(j, "by_state", states_object(a));
    cJSON *arr = cJSON_AddArrayToObject(j, "entries");
    for (size_t i = 0; i < v.n && i < (size_t)lim; i++)
        cJSON_AddItemToArray(arr, entry_json(a, v.v[i], now));
    cJSON_AddBoolToObject(j, "truncated", v.n > (size_t)lim);
    free(v.v);
    free(state);
    free(search);
    free(limit);
    http_respond_cjson(r, 200, j);
}

/* ---- /api/history ---- */

typedef struct history_dump {
    const app_t *a;
    cJSON *arr;
    long long last_id; /* the last row's, for next_before */
} history_dump;

/* The round's deliveries as stored (JSON text written by sync.c, or by the migration of an
 * older row); the first Plex one also fills the Python script's keys. */
static void history_deliveries(cJSON *o, const app_t *a, const store_history *h)
{
    cJSON *arr = cJSON_Parse(h->deliveries ? h->deliveries : "[]");
    if (!cJSON_IsArray(arr)) {
        cJSON_Delete(arr);
        arr = cJSON_CreateArray();
    }
    const cJSON *plex = NULL, *d;
    cJSON_ArrayForEach(d, arr) {
        const cJSON *kind = cJSON_GetObjectItem(d, "kind");
        if (!plex && cJSON_IsString(kind) && strcmp(kind->valuestring, "plex") == 0)
            plex = d;
    }
    const char *lib = plex ? cJSON_GetStringValue(cJSON_GetObjectItem(plex, "library")) : NULL;
    const char *path = plex ? cJSON_GetStringValue(cJSON_GetObjectItem(plex, "path")) : NULL;
    const char *target = plex ? cJSON_GetStringValue(cJSON_GetObjectItem(plex, "target")) : NULL;
    const char *res = plex ? cJSON_GetStringValue(cJSON_GetObjectItem(plex, "result")) : NULL;
    add_legacy_plex(o, a, target && lib ? target : NULL, lib ? lib : "", path ? path : h->path);
    cJSON_AddStringToObject(o, "plex", res ? res : "skipped");
    cJSON_AddItemToObject(o, "deliveries", arr);
}

static void dump_history(void *ud, const store_history *h)
{
    history_dump *d = ud;
    cJSON *o = cJSON_CreateObject();
    d->last_id = h->id;
    json_add_int(o, "id", h->id);
    add_about(o, h->title, h->event, h->app);
    history_deliveries(o, d->a, h);
    cJSON_AddStringToObject(o, "arr_path", h->path ? h->path : "");
    cJSON_AddStringToObject(o, "path", h->path ? h->path : "");
    cJSON_AddStringToObject(o, "status", hist_status_name(h->status));
    json_add_int(o, "started", h->started);
    json_add_int(o, "duration_ms", h->duration_ms);
    cJSON_AddItemToObject(o, "sources", sources_array(h->sources));
    json_add_int(o, "events", h->events);
    cJSON_AddStringToObject(o, "rclone", h->rclone ? h->rclone : "");
    json_add_int(o, "attempt", h->attempts);
    json_add_int(o, "attempts", h->attempts);
    if (h->error)
        cJSON_AddStringToObject(o, "error", h->error);
    else
        cJSON_AddNullToObject(o, "error");
    cJSON_AddItemToArray(d->arr, o);
}

void api_history(app_t *a, http_request *r)
{
    store_history_query q = {.status = -1, .limit = 50};
    char *search = http_query_get(r->query, "search");
    char *status = http_query_get(r->query, "status");
    char *before = http_query_get(r->query, "before");
    char *limit = http_query_get(r->query, "limit");
    const char *bad = NULL;
    if (search && *search)
        q.search = search;
    if (status && *status && strcmp(status, "all") != 0) {
        for (int i = HIST_OK; i < HIST_STATUS_COUNT; i++)
            if (strcmp(status, hist_status_name((hist_status)i)) == 0)
                q.status = i;
        if (q.status < 0)
            bad = "status must be ok, warning, failed, parked, skipped, retrying, cancelled or all";
    }
    long long v;
    if (before && *before) {
        if (parse_positive(before, strlen(before), LLONG_MAX, &v) < 0)
            bad = "before must be a history id";
        else
            q.before_id = v;
    }
    if (limit && *limit) {
        if (parse_positive(limit, strlen(limit), 500, &v) < 0)
            bad = "limit must be a positive number";
        else
            q.limit = (int)v;
    }
    if (bad) {
        free(search);
        free(status);
        free(before);
        free(limit);
        http_respond_json_error(r, 400, bad);
        return;
    }
    cJSON *j = cJSON_CreateObject();
    history_dump d = {.a = a, .arr = cJSON_CreateArray()};
    int rc = store_history_list(app_store(a), &q, dump_history, &d);
    free(search);
    free(status);
    free(before);
    free(limit);
    if (rc < 0) {
        cJSON_Delete(d.arr);
        cJSON_Delete(j);
        http_respond_json_error(r, 500, "cannot read the history");
        return;
    }
    int n = cJSON_GetArraySize(d.arr);
    cJSON_AddItemToObject(j, "items", d.arr);
    if (n == q.limit && n > 0)
        json_add_int(j, "next_before", d.last_id);
    else
        cJSON_AddNullToObject(j, "next_before");
    http_respond_cjson(r, 200, j);
}

/* ---- /api/resolve: what the daemon would do with a path ---- */

typedef struct resolve_ctx {
    http_request *r;
    cJSON *j;
} resolve_ctx;

static void on_resolve_exists(void *ud, bool exists, const char *why)
{
    resolve_ctx *c = ud;
    cJSON *host = cJSON_GetObjectItem(c->j, "host");
    cJSON_ReplaceItemInObject(host, "exists", cJSON_CreateBool(exists));
    if (!exists) {
        cJSON_AddStringToObject(host, "error", why ? why : "not found");
        char line[200];
        snprintf(line, sizeof line, "the host path does not exist on this machine (%s): the minimum age "
                 "falls back to the event time", why ? why : "not found");
        cJSON_AddItemToArray(cJSON_GetObjectItem(c->j, "warnings"), cJSON_CreateString(line));
    }
    http_respond_cjson(c->r, 200, c->j);
    free(c);
}

/* An RC URL without any user:password@ part, for display. */
static char *url_without_userinfo(const char *url)
{
    const char *s = strstr(url, "://");
    if (!s)
        return xstrdup(url);
    s += 3;
    size_t auth_len = strcspn(s, "/?#");
    const char *at = memchr(s, '@', auth_len);
    if (!at)
        return xstrdup(url);
    return xasprintf("%.*s%s", (int)(s - url), url, at + 1);
}

/* The preview's deliveries: what each target would receive; a warning for a mapped library
 * whose locations do not hold the folder. */
static cJSON *resolve_deliveries(const folder_libs *l, const folder_plan *p, cJSON *warnings)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < p->n_deliv; i++) {
        const folder_delivery *d = &p->deliv[i];
        const cfg_target *t = l->targets[d->target].cfg;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "target", t->name);
        cJSON_AddStringToObject(o, "kind", target_kind_name(t->kind));
        if (d->unresolved)
            cJSON_AddNullToObject(o, "library");
        else
            cJSON_AddStringToObject(o, "library", d->library_id);
        if (d->library && d->library->title)
            cJSON_AddStringToObject(o, "library_title", d->library->title);
        else
            cJSON_AddNullToObject(o, "library_title");
        cJSON_AddStringToObject(o, "path", d->path);
        cJSON_AddStringToObject(o, "source", d->mapped ? "SECTION_MAPPING" : d->unresolved ? "unresolved" : "library");
        cJSON_AddBoolToObject(o, "outside_locations", d->outside_locations);
        if (d->outside_locations) {
            char line[200];
            snprintf(line, sizeof line, "%s: the folder lies outside the locations of section %s: Plex will "
                     "ignore the scan (check SECTION_MAPPING)", t->name, d->library_id);
            cJSON_AddItemToArray(warnings, cJSON_CreateString(line));
        }
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

/* The Python script's `sections` key: the deliveries to Plex targets. */
static cJSON *resolve_sections(const folder_libs *l, const folder_plan *p)
{
    cJSON *secs = cJSON_CreateArray();
    for (size_t i = 0; i < p->n_deliv; i++) {
        const folder_delivery *d = &p->deliv[i];
        if (d->unresolved || l->targets[d->target].cfg->kind != TARGET_PLEX)
            continue;
        cJSON *o = cJSON_CreateObject();
        json_add_int(o, "section", strtol(d->library_id, NULL, 10));
        cJSON_AddStringToObject(o, "source", d->mapped ? "SECTION_MAPPING" : "plex");
        if (d->library)
            cJSON_AddStringToObject(o, "title", d->library->title ? d->library->title : "");
        else
            cJSON_AddNullToObject(o, "title");
        cJSON_AddBoolToObject(o, "outside_locations", d->outside_locations);
        cJSON_AddItemToArray(secs, o);
    }
    return secs;
}

/* What the preview says a webhook would do: queue it (matched or unresolved) or skip it. */
static void resolve_verdict(const folder_libs *l, const folder_plan *p, cJSON *j, cJSON *warnings)
{
    static const char *const names[] = {[FOLDER_MATCHED] = "matched", [FOLDER_UNRESOLVED] = "unresolved",
                                        [FOLDER_NO_MATCH] = "no_match"};
    cJSON_AddStringToObject(j, "resolution", names[p->verdict]);
    cJSON_AddBoolToObject(j, "will_queue", p->verdict != FOLDER_NO_MATCH);
    for (size_t i = 0; i < p->n_deliv; i++) {
        const folder_delivery *d = &p->deliv[i];
        const folder_target *ft = &l->targets[d->target];
        if (!d->unresolved)
            continue;
        char line[300];
        if (ft->libs && ft->libs->fetched_at)
            snprintf(line, sizeof line, "%s's library list is older than SECTION_REFRESH and holds no library for "
                     "this folder: the folder would wait as unresolved until a fresh list decides", ft->cfg->name);
        else
            snprintf(line, sizeof line, "%s's library list has not been read yet: its delivery would wait as "
                     "unresolved", ft->cfg->name);
        cJSON_AddItemToArray(warnings, cJSON_CreateString(line));
    }
    if (l->n_targets == 0)
        cJSON_AddItemToArray(warnings, cJSON_CreateString("no media server is configured: the folder would wait "
                                                          "as unresolved"));
    if (p->verdict == FOLDER_NO_MATCH) {
        char *why = folders_skip_reason(l, p);
        char *line = xasprintf("it would be skipped: %s", why);
        cJSON_AddItemToArray(warnings, cJSON_CreateString(line));
        free(line);
        free(why);
    }
}

/* The preview's rclone step: the mount, its RC URL without credentials, the VFS dir. */
static cJSON *resolve_rclone(const config_t *c, const folder_paths *fp)
{
    cJSON *rc = cJSON_CreateObject();
    cJSON_AddBoolToObject(rc, "enabled", c->use_rclone);
    if (fp->mount && c->use_rclone) {
        char *url = url_without_userinfo(fp->mount->url);
        cJSON_AddStringToObject(rc, "mount", fp->mount->root);
        cJSON_AddStringToObject(rc, "url", url);
        cJSON_AddStringToObject(rc, "vfs_dir", fp->vfs_dir);
        cJSON_AddBoolToObject(rc, "recursive", paths_depth(fp->vfs_dir) >= 2);
        free(url);
    } else {
        cJSON_AddNullToObject(rc, "mount");
        cJSON_AddNullToObject(rc, "vfs_dir");
        cJSON_AddStringToObject(rc, "reason", c->use_rclone ? "outside every rclone mount root: the rclone "
                                                              "step is skipped"
                                                            : "USE_RCLONE is off");
    }
    return rc;
}

void api_resolve(app_t *a, http_request *r)
{
    char *raw = http_query_get(r->query, "path");
    if (!raw || !*raw) {
        free(raw);
        http_respond_json_error(r, 400, "give ?path=/folder/as/arr/sees/it");
        return;
    }
    char *norm = path_normalize(raw);
    free(raw);
    const char *bad = paths_check(norm);
    if (bad) {
        http_respond_json_error(r, 400, bad);
        free(norm);
        return;
    }
    folder_libs libs;
    app_folder_libs(a, &libs);
    folder_plan p;
    const char *why = NULL;
    if (folders_plan(app_config(a), &libs, norm, &p, &why) < 0) {
        http_respond_json_error(r, 400, why);
        free(norm);
        return;
    }
    free(norm);
    const folder_paths *fp = &p.fp;
    cJSON *j = cJSON_CreateObject();
    cJSON *warnings = cJSON_CreateArray();
    cJSON_AddStringToObject(j, "arr_path", fp->arr);
    cJSON_AddStringToObject(j, "plex_path", fp->plex);
    cJSON_AddItemToObject(j, "deliveries", resolve_deliveries(&libs, &p, warnings));
    cJSON_AddItemToObject(j, "sections", resolve_sections(&libs, &p));
    resolve_verdict(&libs, &p, j, warnings);
    bool lib_root = p.library_root;
    cJSON_AddBoolToObject(j, "library_root", lib_root);
    if (lib_root)
        cJSON_AddItemToArray(warnings, cJSON_CreateString("this is a library root (or above one): the "
                                                          "servers will scan the whole library"));
    cJSON *host = cJSON_AddObjectToObject(j, "host");
    cJSON_AddStringToObject(host, "path", fp->host);
    cJSON_AddNullToObject(host, "exists");
    cJSON_AddItemToObject(j, "rclone", resolve_rclone(app_config(a), fp));
    cJSON_AddItemToObject(j, "warnings", warnings);
    resolve_ctx *c = xcalloc(1, sizeof *c);
    c->r = r;
    c->j = j;
    fscheck_op *op;
    if (fscheck_exists(app_io_of(a).fs, fp->host, on_resolve_exists, c, &op) < 0) {
        http_respond_cjson(r, 200, j);
        free(c);
    }
    folder_plan_free(&p);
}

/* ---- notifications ---- */

static cJSON *notify_json(const app_t *a)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < notify_out_count(app_notify_out(a)); i++) {
        nout_view v;
        notify_out_view(app_notify_out(a), i, &v);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "type", cfg_notify_type_name(v.type));
        cJSON_AddStringToObject(o, "url", v.origin); /* scheme://host only: the rest is a secret */
        cJSON *ev = cJSON_AddArrayToObject(o, "events");
        for (int k = 0; k < NEV_COUNT; k++)
            if (v.events & (1u << k))
                cJSON_AddItemToArray(ev, cJSON_CreateString(cfg_notify_event_name((cfg_notify_event)k)));
        json_add_int(o, "pending", v.pending);
        cJSON_AddBoolToObject(o, "sending", v.sending);
        if (v.has_result) {
            cJSON *last = cJSON_AddObjectToObject(o, "last");
            cJSON_AddBoolToObject(last, "ok", v.last_ok);
            add_time(last, "at", v.last_at);
            if (v.last_ok)
                cJSON_AddNullToObject(last, "error");
            else
                cJSON_AddStringToObject(last, "error", v.last_error);
        } else {
            cJSON_AddNullToObject(o, "last");
        }
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

void api_notify(app_t *a, http_request *r)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddItemToObject(j, "destinations", notify_json(a));
    http_respond_cjson(r, 200, j);
}

void api_notify_test(app_t *a, http_request *r)
{
    size_t n = app_notify_test(a, NULL);
    if (n == 0) {
        http_respond_json_error(r, 409, "no notification destination is configured (NOTIFY)");
        return;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "status", "queued");
    json_add_int(j, "destinations", n);
    http_respond_cjson(r, 202, j);
}

/* ---- /metrics ---- */

void api_metrics(app_t *a, http_request *r)
{
    /* Answered at once; the up gauges of the next scrape are renewed meanwhile, so they stay
     * right with no page or /health being asked. */
    probes_renew(a);
    buf_t b;
    buf_init(&b, 0);
    metrics_render_requests(app_metrics(a), &b);
    buf_appends(&b, "# HELP pss_queue_entries Queued folders, by state.\n# TYPE pss_queue_entries gauge\n");
    for (int s = 0; s < ENTRY_STATE_COUNT; s++)
        buf_printf(&b, "pss_queue_entries{state=\"%s\"} %zu\n", entry_state_name((entry_state)s),
                   queue_count_state(app_queue(a), (entry_state)s));
    metrics_render_work(app_metrics(a), &b);
    const target_rt *px = main_plex(a);
    buf_printf(&b, "# HELP pss_plex_up Whether Plex (PLEX_URL) answers.\n# TYPE pss_plex_up gauge\npss_plex_up %d\n",
               px && target_answers(px) ? 1 : 0);
    /* Target names are the configuration's ([a-z0-9_-]{1,32}): safe as label values. */
    buf_appends(&b, "# HELP pss_target_up Whether a media server answers.\n# TYPE pss_target_up gauge\n");
    const targets *ts = app_targets(a);
    for (size_t i = 0; i < ts->n; i++)
        if (ts->v[i].cfg)
            buf_printf(&b, "pss_target_up{target=\"%s\",kind=\"%s\"} %d\n", ts->v[i].name,
                       target_kind_name(ts->v[i].cfg->kind), target_answers(&ts->v[i]) ? 1 : 0);
    buf_appends(&b, "# HELP pss_deliveries_total Scan requests to media servers, by target and outcome.\n"
                    "# TYPE pss_deliveries_total counter\n");
    for (size_t i = 0; i < ts->n; i++) {
        const target_rt *t = &ts->v[i];
        buf_printf(&b, "pss_deliveries_total{target=\"%s\",outcome=\"ok\"} %llu\n", t->name,
                   (unsigned long long)t->sent_ok);
        buf_printf(&b, "pss_deliveries_total{target=\"%s\",outcome=\"failed\"} %llu\n", t->name,
                   (unsigned long long)t->sent_failed);
        buf_printf(&b, "pss_deliveries_total{target=\"%s\",outcome=\"parked\"} %llu\n", t->name,
                   (unsigned long long)t->sent_parked);
    }
    notify_out_render_metrics(app_notify_out(a), &b);
    buf_printf(&b, "# HELP pss_rclone_up Whether every rclone mount answers (1 when rclone is off).\n"
                   "# TYPE pss_rclone_up gauge\npss_rclone_up %d\n",
               rclone_answers(a) ? 1 : 0);
    metrics_render_process(&b);
    http_respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len, NULL);
    buf_free(&b);
}
