/* api.c: the JSON API behind the UI, /health and /metrics. Read-only views of the queue, the
 * history and the counters, plus the path preview. Label values in /metrics come from fixed
 * lists only (states, apps, outcomes), never from paths or client input. */
#include <cjson/cJSON.h>

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api.h"
#include "http_json.h"
#include "json_arena.h"
#include "log.h"
#include "paths.h"
#include "util.h"

static cJSON *sources_array(unsigned bits)
{
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < APP_COUNT; i++)
        if (bits & (1u << i))
            cJSON_AddItemToArray(arr, cJSON_CreateString(arr_app_name((arr_app)i)));
    return arr;
}

/* ---- reachability probes: do Plex and rclone answer right now? ---- */

#define PROBE_EVERY_MS 5000u
#define PROBE_TIMEOUT_MS 5000u

typedef struct probe_round {
    app_t *a;
    unsigned pending;
    bool aborted;       /* a call was dropped without an answer (shutdown) */
    bool plex_asked, plex_up;
    unsigned rc_mounts, rc_up;
} probe_round;

typedef struct probe_call {
    probe_round *round;
    bool plex;
} probe_call;

static void probe_round_release(probe_round *pr)
{
    if (--pr->pending)
        return;
    app_t *a = pr->a;
    if (!pr->aborted) {
        uint64_t now = wall_ms();
        a->probes.in_flight = false;
        if (pr->plex_asked) {
            a->probes.plex_done = true;
            a->probes.plex_up = pr->plex_up;
            a->probes.plex_checked = now;
        }
        if (pr->rc_mounts) {
            a->probes.rclone_done = true;
            a->probes.rclone_mounts = pr->rc_mounts;
            a->probes.rclone_up = pr->rc_up;
            a->probes.rclone_checked = now;
        }
        /* Plex is back and its library list was never read: read it now (rate-limited), so
         * unresolved folders need not wait for SECTION_REFRESH. */
        if (pr->plex_up && !a->libs.fetched_at && !a->plex_auth_failed && !a->stopping)
            app_sections_miss(a);
    }
    free(pr);
}

static void on_probe(void *ud, const httpc_result *res)
{
    probe_call *c = ud;
    probe_round *pr = c->round;
    bool up = res->error == HTTPC_OK && res->status > 0 && res->status < 500;
    if (c->plex)
        pr->plex_up = up;
    else if (up)
        pr->rc_up++;
    free(c);
    probe_round_release(pr);
}

static void on_probe_dropped(void *ud)
{
    probe_call *c = ud;
    probe_round *pr = c->round;
    pr->aborted = true;
    free(c);
    probe_round_release(pr);
}

static bool probe_start(probe_round *pr, bool plex, const char *method, const char *url, const char *user,
                        const char *pass)
{
    static const char *const json_headers[] = {"Accept: application/json", "Content-Type: application/json",
                                               NULL};
    static const char *const get_headers[] = {"Accept: application/json", NULL};
    bool post = strcmp(method, "POST") == 0;
    httpc_opts o = {.method = method,
                    .url = url,
                    .headers = post ? json_headers : get_headers,
                    .body = post ? "{}" : NULL,
                    .body_len = post ? 2 : 0,
                    .user = user,
                    .pass = user ? (pass ? pass : "") : NULL,
                    .timeout_ms = PROBE_TIMEOUT_MS,
                    .max_response_bytes = 64 * 1024};
    probe_call *c = xcalloc(1, sizeof *c);
    c->round = pr;
    c->plex = plex;
    pr->pending++;
    httpc_req *req;
    if (httpc_request_ex(pr->a->httpc, &o, on_probe, c, on_probe_dropped, &req) < 0) {
        pr->pending--;
        free(c);
        return false;
    }
    return true;
}

/* Start a round when the last one is older than PROBE_EVERY_MS; answers use the last finished
 * round (or what the syncs saw, before any). */
static void probes_maybe_start(app_t *a)
{
    if (a->stopping || !a->httpc || a->probes.in_flight)
        return;
    uint64_t now = mono_ms();
    if (a->probes.started && now - a->probes.started < PROBE_EVERY_MS)
        return;
    a->probes.started = now;
    probe_round *pr = xcalloc(1, sizeof *pr);
    pr->a = a;
    pr->pending = 1; /* held while starting, so no answer can finish the round early */
    if (a->cfg.plex_url && *a->cfg.plex_url) {
        char *url = xasprintf("%s/identity", a->cfg.plex_url);
        pr->plex_asked = probe_start(pr, true, "GET", url, NULL, NULL);
        free(url);
    }
    for (size_t i = 0; a->cfg.use_rclone && i < a->cfg.n_mounts; i++) {
        const cfg_mount *m = &a->cfg.mounts[i];
        if (!m->url || !*m->url)
            continue;
        char *url = xasprintf("%s/rc/noop", m->url);
        pr->rc_mounts++;
        probe_start(pr, false, "POST", url, m->user, m->pass);
        free(url);
    }
    a->probes.in_flight = pr->pending > 1;
    if (!pr->plex_asked && !pr->rc_mounts)
        pr->aborted = true; /* nothing to ask: leave the last results as they are */
    probe_round_release(pr);
}

static bool plex_configured(const app_t *a) { return a->cfg.plex_url && *a->cfg.plex_url; }

static bool plex_answers(const app_t *a)
{
    return a->probes.plex_done ? a->probes.plex_up : a->plex_reachable;
}

static bool rclone_enabled(const app_t *a) { return a->cfg.use_rclone && a->cfg.n_mounts > 0; }

static bool rclone_answers(const app_t *a)
{
    if (!rclone_enabled(a))
        return true;
    if (a->probes.rclone_done)
        return a->probes.rclone_up == a->probes.rclone_mounts;
    return !a->rclone_error || a->rclone_reachable;
}

static const char *library_title(const app_t *a, long section)
{
    for (size_t i = 0; i < a->libs.n; i++)
        if (a->libs.v[i].key == section)
            return a->libs.v[i].title;
    return NULL;
}

static void add_section(cJSON *o, const app_t *a, long section)
{
    if (section == QUEUE_SECTION_UNRESOLVED) {
        cJSON_AddNullToObject(o, "section");
        return;
    }
    json_add_int(o, "section", section);
    const char *title = library_title(a, section);
    if (title)
        cJSON_AddStringToObject(o, "section_title", title);
}

static void add_time(cJSON *o, const char *name, uint64_t wall)
{
    if (wall)
        json_add_int(o, name, wall);
    else
        cJSON_AddNullToObject(o, name);
}

/* SECTION_MAPPING prefixes that lie outside every location of their library (Plex ignores a
 * scan there). Only known once the library list has been read. */
static size_t mappings_outside(const app_t *a)
{
    size_t n = 0;
    for (size_t i = 0; a->libs.fetched_at && i < a->cfg.n_section_map; i++) {
        section_match m;
        size_t nm = 0;
        if (sections_match(&a->cfg, &a->libs, a->cfg.section_map[i].prefix, &m, 1, &nm) == SECTIONS_MATCHED &&
            nm == 1 && m.library && m.outside_locations)
            n++;
    }
    return n;
}

/* ---- /health ---- */

void api_health(app_t *a, http_request *r)
{
    probes_maybe_start(a);
    cJSON *j = cJSON_CreateObject();
    cJSON *degraded = cJSON_CreateArray();
    bool plex_conf = plex_configured(a);
    if (!plex_conf)
        cJSON_AddItemToArray(degraded, cJSON_CreateString("plex: PLEX_URL is not set"));
    else if (a->plex_auth_failed)
        cJSON_AddItemToArray(degraded, cJSON_CreateString("plex: token refused (PLEX_TOKEN)"));
    else if (!plex_answers(a))
        cJSON_AddItemToArray(degraded, cJSON_CreateString("plex: not reachable"));
    else if (!a->libs.fetched_at && a->cfg.n_section_map == 0)
        cJSON_AddItemToArray(degraded, cJSON_CreateString("plex: library list not read yet"));
    if (!rclone_answers(a))
        cJSON_AddItemToArray(degraded, cJSON_CreateString("rclone: not reachable"));
    /* From the first failed commit (or WAL sync) until one succeeds, webhooks are answered 503:
     * a monitor must see it. */
    if (a->commit_fail_streak || a->sync_fail_streak) {
        char line[96];
        snprintf(line, sizeof line, "state database: cannot be written (%llu failed commit%s); webhooks "
                 "are refused", (unsigned long long)(a->commit_fail_streak + a->sync_fail_streak),
                 a->commit_fail_streak + a->sync_fail_streak == 1 ? "" : "s");
        cJSON_AddItemToArray(degraded, cJSON_CreateString(line));
    }
    const char *failed[16];
    size_t nf = fscheck_failed_mounts(a->fs, failed, ARRAY_SIZE(failed));
    for (size_t i = 0; i < nf && i < ARRAY_SIZE(failed); i++) {
        char line[600];
        snprintf(line, sizeof line, "mount %s: stat hung", failed[i]);
        cJSON_AddItemToArray(degraded, cJSON_CreateString(line));
    }
    size_t parked = queue_count_state(a->q, ENTRY_PARKED);
    size_t held = queue_count_state(a->q, ENTRY_HELD);
    if (parked) {
        char line[64];
        snprintf(line, sizeof line, "%zu parked folder%s", parked, parked == 1 ? "" : "s");
        cJSON_AddItemToArray(degraded, cJSON_CreateString(line));
    }
    if (held) {
        char line[64];
        snprintf(line, sizeof line, "%zu folder%s held by anchors", held, held == 1 ? "" : "s");
        cJSON_AddItemToArray(degraded, cJSON_CreateString(line));
    }
    size_t outside = mappings_outside(a);
    if (outside) {
        char line[128];
        snprintf(line, sizeof line, "SECTION_MAPPING: %zu prefix%s outside its library's locations (Plex ignores "
                 "scans there)", outside, outside == 1 ? "" : "es");
        cJSON_AddItemToArray(degraded, cJSON_CreateString(line));
    }
    int n_degraded = cJSON_GetArraySize(degraded);
    cJSON_AddStringToObject(j, "status", n_degraded ? "degraded" : "ok");
    cJSON_AddStringToObject(j, "version", PSS_VERSION);
    json_add_int(j, "uptime_s", ((wall_ms() - a->started_at) / 1000));
    cJSON_AddItemToObject(j, "degraded", degraded);
    cJSON *q = cJSON_AddObjectToObject(j, "queue");
    json_add_int(q, "depth", queue_count(a->q));
    json_add_int(q, "syncing", sync_count(&a->sync));
    json_add_int(q, "parked", parked);
    json_add_int(q, "held", held);
    json_add_int(q, "unresolved", queue_count_state(a->q, ENTRY_UNRESOLVED));
    cJSON *plex = cJSON_AddObjectToObject(j, "plex");
    cJSON_AddBoolToObject(plex, "configured", plex_conf);
    cJSON_AddBoolToObject(plex, "reachable", plex_conf && plex_answers(a));
    json_add_int(plex, "libraries", a->libs.n);
    cJSON *rc = cJSON_AddObjectToObject(j, "rclone");
    json_add_int(rc, "mounts", (a->cfg.use_rclone ? a->cfg.n_mounts : 0));
    cJSON_AddBoolToObject(rc, "reachable", rclone_answers(a));
    bool strict = false;
    char *s = http_query_get(r->query, "strict");
    if (s && (strcmp(s, "1") == 0 || strcmp(s, "true") == 0))
        strict = true;
    free(s);
    http_respond_cjson(r, strict && n_degraded ? 503 : 200, j);
}

/* ---- /api/stats (keeps the Python script's shape for dashboard widgets) ---- */

static cJSON *states_object(const app_t *a)
{
    cJSON *o = cJSON_CreateObject();
    for (int s = 0; s < ENTRY_STATE_COUNT; s++)
        json_add_int(o, entry_state_name((entry_state)s), queue_count_state(a->q, (entry_state)s));
    return o;
}

void api_stats(app_t *a, http_request *r)
{
    probes_maybe_start(a);
    store_stats st;
    if (store_history_stats(a->store, &st) < 0) {
        http_respond_json_error(r, 500, "cannot read the history");
        return;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON *syncs = cJSON_AddObjectToObject(j, "syncs");
    json_add_int(syncs, "total", st.total);
    json_add_int(syncs, "ok", st.ok);
    json_add_int(syncs, "failed", (st.failed + st.parked));
    json_add_int(syncs, "parked", st.parked);
    json_add_int(syncs, "skipped", st.skipped);
    json_add_int(syncs, "avg_duration_ms", st.avg_duration_ms);
    cJSON *q = cJSON_AddObjectToObject(j, "queue");
    json_add_int(q, "depth", queue_count(a->q));
    json_add_int(q, "syncing", sync_count(&a->sync));
    json_add_int(q, "parked", queue_count_state(a->q, ENTRY_PARKED));
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
    bool plex_conf = plex_configured(a);
    cJSON_AddBoolToObject(j, "plex_reachable", plex_conf && plex_answers(a));
    cJSON_AddBoolToObject(j, "rclone_reachable", rclone_answers(a));
    cJSON *plex = cJSON_AddObjectToObject(j, "plex");
    cJSON_AddBoolToObject(plex, "configured", plex_conf);
    cJSON_AddBoolToObject(plex, "reachable", plex_conf && plex_answers(a));
    cJSON_AddBoolToObject(plex, "token_refused", a->plex_auth_failed);
    add_time(plex, "checked_at", a->probes.plex_done ? a->probes.plex_checked : 0);
    json_add_int(plex, "libraries", a->libs.n);
    add_time(plex, "libraries_read_at", a->libs.fetched_at);
    if (a->plex_error)
        cJSON_AddStringToObject(plex, "error", a->plex_error);
    else
        cJSON_AddNullToObject(plex, "error");
    cJSON *rc = cJSON_AddObjectToObject(j, "rclone");
    cJSON_AddBoolToObject(rc, "enabled", rclone_enabled(a));
    json_add_int(rc, "mounts", (a->cfg.use_rclone ? a->cfg.n_mounts : 0));
    cJSON_AddBoolToObject(rc, "reachable", rclone_answers(a));
    if (a->probes.rclone_done)
        json_add_int(rc, "mounts_answering", a->probes.rclone_up);
    else
        cJSON_AddNullToObject(rc, "mounts_answering");
    add_time(rc, "checked_at", a->probes.rclone_done ? a->probes.rclone_checked : 0);
    if (a->rclone_error)
        cJSON_AddStringToObject(rc, "error", a->rclone_error);
    else
        cJSON_AddNullToObject(rc, "error");
    cJSON_AddStringToObject(j, "version", PSS_VERSION);
    json_add_int(j, "uptime_s", ((wall_ms() - a->started_at) / 1000));
    http_respond_cjson(r, 200, j);
}

/* ---- /api/queue ---- */

#define QUEUE_VIEW_DEFAULT 200
#define QUEUE_VIEW_MAX 1000

typedef struct queue_view {
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

static void collect_entry(void *ud, const q_entry *e)
{
    queue_view *v = ud;
    if (v->state >= 0 && (int)e->state != v->state)
        return;
    if (v->search && !ci_contains(e->plex_path, v->search) && !(e->arr_path && ci_contains(e->arr_path, v->search)))
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

static cJSON *entry_json(const app_t *a, const q_entry *e, uint64_t now)
{
    cJSON *o = cJSON_CreateObject();
    json_add_int(o, "id", e->id);
    add_section(o, a, e->section);
    cJSON_AddStringToObject(o, "plex_path", e->plex_path);
    cJSON_AddStringToObject(o, "arr_path", e->arr_path ? e->arr_path : "");
    cJSON_AddStringToObject(o, "state", entry_state_name(e->state));
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
    cJSON_AddItemToObject(o, "sources", sources_array(e->sources));
    if (e->state == ENTRY_PARKED && e->park_reason)
        cJSON_AddStringToObject(o, "park_reason", e->park_reason);
    if (e->state == ENTRY_HELD && e->hold_reason)
        cJSON_AddStringToObject(o, "hold_reason", e->hold_reason);
    if (e->last_error)
        cJSON_AddStringToObject(o, "last_error", e->last_error);
    cJSON_AddBoolToObject(o, "can_retry", e->state == ENTRY_PARKED);
    return o;
}

void api_queue(app_t *a, http_request *r)
{
    queue_view v = {.state = -1};
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
    queue_foreach(a->q, collect_entry, &v);
    if (v.n > 1)
        qsort(v.v, v.n, sizeof *v.v, cmp_entries);
    cJSON *j = cJSON_CreateObject();
    json_add_int(j, "depth", queue_count(a->q));
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

static void dump_history(void *ud, const store_history *h)
{
    history_dump *d = ud;
    cJSON *o = cJSON_CreateObject();
    d->last_id = h->id;
    json_add_int(o, "id", h->id);
    add_section(o, d->a, h->section);
    cJSON_AddStringToObject(o, "plex_path", h->plex_path ? h->plex_path : "");
    cJSON_AddStringToObject(o, "arr_path", h->arr_path ? h->arr_path : "");
    cJSON_AddStringToObject(o, "status", hist_status_name(h->status));
    json_add_int(o, "started", h->started);
    json_add_int(o, "duration_ms", h->duration_ms);
    cJSON_AddItemToObject(o, "sources", sources_array(h->sources));
    json_add_int(o, "events", h->events);
    cJSON_AddStringToObject(o, "rclone", h->rclone ? h->rclone : "");
    cJSON_AddStringToObject(o, "plex", h->plex ? h->plex : "");
    json_add_int(o, "attempt", h->attempt);
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
        for (int i = HIST_OK; i <= HIST_SKIPPED; i++)
            if (strcmp(status, hist_status_name((hist_status)i)) == 0)
                q.status = i;
        if (q.status < 0)
            bad = "status must be ok, failed, parked, skipped or all";
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
    int rc = store_history_list(a->store, &q, dump_history, &d);
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

/* The preview's sections, each with where it came from; a warning for one whose library's
 * locations do not hold the folder. */
static cJSON *resolve_sections(const folder_plan *p, cJSON *warnings)
{
    cJSON *secs = cJSON_CreateArray();
    for (size_t i = 0; i < p->n_sections; i++) {
        const section_match *m = &p->sections[i];
        cJSON *o = cJSON_CreateObject();
        json_add_int(o, "section", m->section);
        cJSON_AddStringToObject(o, "source", m->source == SECTION_FROM_MAPPING ? "SECTION_MAPPING" : "plex");
        if (m->library)
            cJSON_AddStringToObject(o, "title", m->library->title ? m->library->title : "");
        else
            cJSON_AddNullToObject(o, "title");
        cJSON_AddBoolToObject(o, "outside_locations", m->outside_locations);
        if (m->outside_locations) {
            char line[160];
            snprintf(line, sizeof line, "the folder lies outside the locations of section %ld: Plex will "
                     "ignore the scan (check SECTION_MAPPING)", m->section);
            cJSON_AddItemToArray(warnings, cJSON_CreateString(line));
        }
        cJSON_AddItemToArray(secs, o);
    }
    return secs;
}

/* What the preview says a webhook would do: queue it (matched or unresolved) or skip it. */
static void resolve_verdict(const folder_plan *p, cJSON *j, cJSON *warnings)
{
    static const char *const names[] = {[FOLDER_MATCHED] = "matched", [FOLDER_UNRESOLVED] = "unresolved",
                                        [FOLDER_NO_MATCH] = "no_match"};
    cJSON_AddStringToObject(j, "resolution", names[p->verdict]);
    cJSON_AddBoolToObject(j, "will_queue", p->verdict != FOLDER_NO_MATCH);
    const char *w = NULL;
    if (p->verdict == FOLDER_UNRESOLVED && p->stale_list)
        w = "Plex's library list is older than SECTION_REFRESH and holds no library for this folder: the "
            "folder would wait as unresolved until a fresh list decides";
    else if (p->verdict == FOLDER_UNRESOLVED)
        w = "Plex's library list has not been read yet: the folder would wait as unresolved";
    else if (p->verdict == FOLDER_NO_MATCH)
        w = "no Plex library holds this folder: it would be skipped (check PATH_REPLACEMENTS)";
    if (w)
        cJSON_AddItemToArray(warnings, cJSON_CreateString(w));
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
    if (folders_plan(&a->cfg, &libs, norm, &p, &why) < 0) {
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
    cJSON_AddItemToObject(j, "sections", resolve_sections(&p, warnings));
    resolve_verdict(&p, j, warnings);
    bool lib_root = p.library_root;
    cJSON_AddBoolToObject(j, "library_root", lib_root);
    if (lib_root)
        cJSON_AddItemToArray(warnings, cJSON_CreateString("this is a library root (or above one): Plex "
                                                          "will scan the whole library"));
    cJSON *host = cJSON_AddObjectToObject(j, "host");
    cJSON_AddStringToObject(host, "path", fp->host);
    cJSON_AddNullToObject(host, "exists");
    cJSON_AddItemToObject(j, "rclone", resolve_rclone(&a->cfg, fp));
    cJSON_AddItemToObject(j, "warnings", warnings);
    resolve_ctx *c = xcalloc(1, sizeof *c);
    c->r = r;
    c->j = j;
    fscheck_op *op;
    if (fscheck_exists(a->fs, fp->host, on_resolve_exists, c, &op) < 0) {
        http_respond_cjson(r, 200, j);
        free(c);
    }
    folder_plan_free(&p);
}

void api_retry(app_t *a, http_request *r, int64_t id)
{
    int rc = app_retry_entry(a, id);
    if (rc == -ENOENT)
        http_respond_json_error(r, 404, "no such queue entry");
    else if (rc < 0)
        http_respond_json_error(r, 409, "only a parked entry can be retried");
    else {
        static const char body[] = "{\"status\":\"retrying\"}";
        http_respond(r, 202, "application/json", body, sizeof body - 1, NULL);
    }
}

/* ---- /metrics ---- */

void api_metrics(app_t *a, http_request *r)
{
    buf_t b;
    buf_init(&b, 0);
    metrics_render_requests(&a->counters, &b);
    buf_appends(&b, "# HELP pss_queue_entries Queued folders, by state.\n# TYPE pss_queue_entries gauge\n");
    for (int s = 0; s < ENTRY_STATE_COUNT; s++)
        buf_printf(&b, "pss_queue_entries{state=\"%s\"} %zu\n", entry_state_name((entry_state)s),
                   queue_count_state(a->q, (entry_state)s));
    metrics_render_work(&a->counters, &b);
    buf_printf(&b, "# HELP pss_plex_up Whether Plex answers.\n# TYPE pss_plex_up gauge\npss_plex_up %d\n",
               plex_configured(a) && plex_answers(a) ? 1 : 0);
    buf_printf(&b, "# HELP pss_rclone_up Whether every rclone mount answers (1 when rclone is off).\n"
                   "# TYPE pss_rclone_up gauge\npss_rclone_up %d\n",
               rclone_answers(a) ? 1 : 0);
    http_respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len, NULL);
    buf_free(&b);
}
