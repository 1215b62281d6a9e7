/* api.c: the JSON API behind the UI, /health and /metrics. Read-only views of the queue, the
 * history and the counters, plus the path preview. Label values in /metrics come from fixed
 * lists only (states, apps, outcomes), never from paths or client input. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "log.h"
#include "paths.h"
#include "util.h"

static void respond_cjson(http_request *r, int status, cJSON *j)
{
    char *text = cJSON_PrintUnformatted(j);
    http_respond(r, status, "application/json", text, strlen(text), "Cache-Control: no-store\r\n");
    free(text);
    cJSON_Delete(j);
}

static const char *source_names(unsigned bits, char *buf, size_t n)
{
    buf[0] = '\0';
    size_t off = 0;
    for (int i = 0; i < APP_COUNT; i++) {
        if (bits & (1u << i)) {
            int w = snprintf(buf + off, n - off, "%s%s", off ? "," : "", arr_app_name((arr_app)i));
            if (w < 0 || (size_t)w >= n - off)
                break;
            off += (size_t)w;
        }
    }
    return buf;
}

static cJSON *sources_array(unsigned bits)
{
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < APP_COUNT; i++)
        if (bits & (1u << i))
            cJSON_AddItemToArray(arr, cJSON_CreateString(arr_app_name((arr_app)i)));
    return arr;
}

/* ---- /health ---- */

void api_health(app_t *a, http_request *r)
{
    cJSON *j = cJSON_CreateObject();
    cJSON *degraded = cJSON_CreateArray();
    bool plex_configured = a->cfg.plex_url && *a->cfg.plex_url;
    if (!plex_configured)
        cJSON_AddItemToArray(degraded, cJSON_CreateString("plex: PLEX_URL is not set"));
    else if (a->plex_auth_failed)
        cJSON_AddItemToArray(degraded, cJSON_CreateString("plex: token refused (PLEX_TOKEN)"));
    else if (!a->plex_reachable)
        cJSON_AddItemToArray(degraded, cJSON_CreateString("plex: not reachable"));
    if (a->rclone_error && !a->rclone_reachable)
        cJSON_AddItemToArray(degraded, cJSON_CreateString("rclone: not reachable"));
    const char *failed[16];
    size_t nf = fscheck_failed_mounts(a->fs, failed, ARRAY_SIZE(failed));
    for (size_t i = 0; i < nf; i++) {
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
    int n_degraded = cJSON_GetArraySize(degraded);
    cJSON_AddStringToObject(j, "status", n_degraded ? "degraded" : "ok");
    cJSON_AddStringToObject(j, "version", PSS_VERSION);
    cJSON_AddNumberToObject(j, "uptime_s", (double)((wall_ms() - a->started_at) / 1000));
    cJSON_AddItemToObject(j, "degraded", degraded);
    cJSON *q = cJSON_AddObjectToObject(j, "queue");
    cJSON_AddNumberToObject(q, "depth", (double)queue_count(a->q));
    cJSON_AddNumberToObject(q, "syncing", (double)sync_count(a));
    cJSON_AddNumberToObject(q, "parked", (double)parked);
    cJSON_AddNumberToObject(q, "held", (double)held);
    cJSON_AddNumberToObject(q, "unresolved", (double)queue_count_state(a->q, ENTRY_UNRESOLVED));
    cJSON *plex = cJSON_AddObjectToObject(j, "plex");
    cJSON_AddBoolToObject(plex, "configured", plex_configured);
    cJSON_AddBoolToObject(plex, "reachable", a->plex_reachable);
    cJSON_AddNumberToObject(plex, "libraries", (double)a->libs.n);
    cJSON *rc = cJSON_AddObjectToObject(j, "rclone");
    cJSON_AddNumberToObject(rc, "mounts", (double)(a->cfg.use_rclone ? a->cfg.n_mounts : 0));
    bool strict = false;
    char *s = http_query_get(r->query, "strict");
    if (s && (strcmp(s, "1") == 0 || strcmp(s, "true") == 0))
        strict = true;
    free(s);
    respond_cjson(r, strict && n_degraded ? 503 : 200, j);
}

/* ---- /api/stats (keeps the Python script's shape for dashboard widgets) ---- */

void api_stats(app_t *a, http_request *r)
{
    store_stats st;
    if (store_history_stats(a->store, &st) < 0) {
        http_respond_json_error(r, 500, "cannot read the history");
        return;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON *syncs = cJSON_AddObjectToObject(j, "syncs");
    cJSON_AddNumberToObject(syncs, "total", (double)st.total);
    cJSON_AddNumberToObject(syncs, "ok", (double)st.ok);
    cJSON_AddNumberToObject(syncs, "failed", (double)(st.failed + st.parked));
    cJSON_AddNumberToObject(syncs, "avg_duration_ms", (double)st.avg_duration_ms);
    cJSON *q = cJSON_AddObjectToObject(j, "queue");
    cJSON_AddNumberToObject(q, "depth", (double)queue_count(a->q));
    cJSON_AddNumberToObject(q, "syncing", (double)sync_count(a));
    cJSON_AddNumberToObject(q, "parked", (double)queue_count_state(a->q, ENTRY_PARKED));
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
    cJSON_AddBoolToObject(j, "plex_reachable", a->plex_reachable);
    cJSON_AddBoolToObject(j, "rclone_reachable", a->cfg.n_mounts == 0 || !a->rclone_error || a->rclone_reachable);
    respond_cjson(r, 200, j);
}

/* ---- /api/queue ---- */

typedef struct queue_dump {
    cJSON *arr;
    uint64_t now;
} queue_dump;

static void dump_entry(void *ud, const q_entry *e)
{
    queue_dump *d = ud;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)e->id);
    if (e->section == QUEUE_SECTION_UNRESOLVED)
        cJSON_AddNullToObject(o, "section");
    else
        cJSON_AddNumberToObject(o, "section", (double)e->section);
    cJSON_AddStringToObject(o, "plex_path", e->plex_path);
    cJSON_AddStringToObject(o, "arr_path", e->arr_path);
    cJSON_AddStringToObject(o, "state", entry_state_name(e->state));
    cJSON_AddNumberToObject(o, "first_seen", (double)e->first_seen);
    cJSON_AddNumberToObject(o, "last_event", (double)e->last_event);
    bool timed = e->state == ENTRY_WAITING || e->state == ENTRY_AGING || e->state == ENTRY_HELD ||
                 e->state == ENTRY_RETRY || e->state == ENTRY_READY;
    if (timed) {
        cJSON_AddNumberToObject(o, "due", (double)e->due);
        cJSON_AddNumberToObject(o, "due_in_ms", (double)(e->due > d->now ? e->due - d->now : 0));
    }
    cJSON_AddNumberToObject(o, "attempts", e->attempts);
    cJSON_AddNumberToObject(o, "events", e->events);
    cJSON_AddBoolToObject(o, "dirty", e->dirty);
    cJSON_AddBoolToObject(o, "manual", e->manual);
    cJSON_AddItemToObject(o, "sources", sources_array(e->sources));
    if (e->park_reason)
        cJSON_AddStringToObject(o, "park_reason", e->park_reason);
    if (e->hold_reason && e->state == ENTRY_HELD)
        cJSON_AddStringToObject(o, "hold_reason", e->hold_reason);
    if (e->last_error)
        cJSON_AddStringToObject(o, "last_error", e->last_error);
    cJSON_AddItemToArray(d->arr, o);
}

void api_queue(app_t *a, http_request *r)
{
    cJSON *j = cJSON_CreateObject();
    queue_dump d = {.arr = cJSON_CreateArray(), .now = wall_ms()};
    /* The page shows a bounded view; the count says how many there are in all. */
    queue_foreach(a->q, dump_entry, &d);
    cJSON_AddNumberToObject(j, "depth", (double)queue_count(a->q));
    cJSON_AddNumberToObject(j, "now", (double)d.now);
    cJSON_AddItemToObject(j, "entries", d.arr);
    respond_cjson(r, 200, j);
}

/* ---- /api/history ---- */

static void dump_history(void *ud, const store_history *h)
{
    cJSON *arr = ud;
    char srcbuf[64];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)h->id);
    cJSON_AddNumberToObject(o, "section", (double)h->section);
    cJSON_AddStringToObject(o, "plex_path", h->plex_path ? h->plex_path : "");
    cJSON_AddStringToObject(o, "arr_path", h->arr_path ? h->arr_path : "");
    cJSON_AddStringToObject(o, "status", hist_status_name(h->status));
    cJSON_AddNumberToObject(o, "started", (double)h->started);
    cJSON_AddNumberToObject(o, "duration_ms", (double)h->duration_ms);
    cJSON_AddStringToObject(o, "sources", source_names(h->sources, srcbuf, sizeof srcbuf));
    cJSON_AddNumberToObject(o, "events", h->events);
    cJSON_AddStringToObject(o, "rclone", h->rclone ? h->rclone : "");
    cJSON_AddStringToObject(o, "plex", h->plex ? h->plex : "");
    cJSON_AddNumberToObject(o, "attempt", h->attempt);
    if (h->error)
        cJSON_AddStringToObject(o, "error", h->error);
    cJSON_AddItemToArray(arr, o);
}

void api_history(app_t *a, http_request *r)
{
    store_history_query q = {.status = -1, .limit = 50};
    char *search = http_query_get(r->query, "search");
    char *status = http_query_get(r->query, "status");
    char *before = http_query_get(r->query, "before");
    char *limit = http_query_get(r->query, "limit");
    if (search && *search)
        q.search = search;
    if (status && *status) {
        static const char *const names[] = {"ok", "failed", "parked", "skipped"};
        for (int i = 0; i < 4; i++)
            if (strcmp(status, names[i]) == 0)
                q.status = i;
    }
    if (before)
        q.before_id = strtoll(before, NULL, 10);
    if (limit) {
        long l = strtol(limit, NULL, 10);
        q.limit = l < 1 ? 1 : l > 500 ? 500 : (int)l;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON *arr = cJSON_CreateArray();
    int rc = store_history_list(a->store, &q, dump_history, arr);
    free(search);
    free(status);
    free(before);
    free(limit);
    if (rc < 0) {
        cJSON_Delete(arr);
        cJSON_Delete(j);
        http_respond_json_error(r, 500, "cannot read the history");
        return;
    }
    int n = cJSON_GetArraySize(arr);
    cJSON_AddItemToObject(j, "items", arr);
    if (n == q.limit && n > 0) {
        cJSON *last = cJSON_GetArrayItem(arr, n - 1);
        cJSON_AddNumberToObject(j, "next_before", cJSON_GetObjectItem(last, "id")->valuedouble);
    }
    respond_cjson(r, 200, j);
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
    cJSON_AddBoolToObject(host, "exists", exists);
    if (!exists && why)
        cJSON_AddStringToObject(host, "error", why);
    respond_cjson(c->r, 200, c->j);
    free(c);
}

void api_resolve(app_t *a, http_request *r)
{
    char *raw = http_query_get(r->query, "path");
    if (!raw || !*raw) {
        free(raw);
        http_respond_json_error(r, 400, "give ?path=/folder/as/arr/sees/it");
        return;
    }
    char *norm = paths_normalize(raw);
    free(raw);
    const char *bad = paths_check(norm);
    if (bad) {
        http_respond_json_error(r, 400, bad);
        free(norm);
        return;
    }
    folder_paths fp;
    const char *why = NULL;
    if (paths_resolve(&a->cfg, norm, &fp, &why) < 0) {
        http_respond_json_error(r, 400, why ? why : "path maps to no absolute path");
        free(norm);
        return;
    }
    free(norm);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "arr_path", fp.arr);
    cJSON_AddStringToObject(j, "plex_path", fp.plex);
    section_match m[16];
    size_t nm = 0;
    sections_result sr = sections_match(&a->cfg, &a->libs, fp.plex, m, ARRAY_SIZE(m), &nm);
    cJSON *secs = cJSON_AddArrayToObject(j, "sections");
    for (size_t i = 0; sr == SECTIONS_MATCHED && i < nm; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "section", (double)m[i].section);
        cJSON_AddStringToObject(o, "source", m[i].source == SECTION_FROM_MAPPING ? "SECTION_MAPPING" : "plex");
        if (m[i].library)
            cJSON_AddStringToObject(o, "title", m[i].library->title ? m[i].library->title : "");
        cJSON_AddBoolToObject(o, "outside_locations", m[i].outside_locations);
        cJSON_AddItemToArray(secs, o);
    }
    cJSON_AddStringToObject(j, "resolution",
                            sr == SECTIONS_MATCHED ? "matched" : sr == SECTIONS_UNRESOLVED ? "unresolved" : "no_match");
    size_t n_roots = 0;
    const char **roots = sections_all_roots(&a->cfg, &a->libs, &n_roots);
    cJSON_AddBoolToObject(j, "library_root", paths_is_library_root_or_above(&a->cfg, fp.plex, roots, n_roots));
    free(roots);
    cJSON *host = cJSON_AddObjectToObject(j, "host");
    cJSON_AddStringToObject(host, "path", fp.host);
    cJSON *rc = cJSON_AddObjectToObject(j, "rclone");
    if (fp.mount && a->cfg.use_rclone) {
        cJSON_AddStringToObject(rc, "mount", fp.mount->root);
        cJSON_AddStringToObject(rc, "url", fp.mount->url);
        cJSON_AddStringToObject(rc, "vfs_dir", fp.vfs_dir);
        cJSON_AddBoolToObject(rc, "recursive", paths_depth(fp.vfs_dir) >= 2);
    } else {
        cJSON_AddNullToObject(rc, "mount");
    }
    resolve_ctx *c = xcalloc(1, sizeof *c);
    c->r = r;
    c->j = j;
    fscheck_op *op;
    if (fscheck_exists(a->fs, fp.host, on_resolve_exists, c, &op) < 0) {
        respond_cjson(r, 200, j);
        free(c);
    }
    folder_paths_free(&fp);
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
    static const char *const le[] = {"0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30"};
    buf_t b;
    buf_init(&b, 0);
    const app_counters *c = &a->counters;
    buf_appends(&b, "# HELP pss_webhooks_total Webhook requests accepted, by app.\n# TYPE pss_webhooks_total counter\n");
    for (int i = 0; i < APP_COUNT; i++)
        buf_printf(&b, "pss_webhooks_total{app=\"%s\"} %llu\n", arr_app_name((arr_app)i),
                   (unsigned long long)c->webhooks[i]);
    buf_printf(&b, "# HELP pss_webhook_errors_total Webhook requests refused (4xx).\n"
                   "# TYPE pss_webhook_errors_total counter\npss_webhook_errors_total %llu\n",
               (unsigned long long)c->webhook_errors);
    buf_printf(&b, "# HELP pss_scans_total Finished sync attempts, by outcome.\n# TYPE pss_scans_total counter\n"
                   "pss_scans_total{outcome=\"ok\"} %llu\npss_scans_total{outcome=\"failed\"} %llu\n"
                   "pss_scans_total{outcome=\"parked\"} %llu\npss_scans_total{outcome=\"skipped\"} %llu\n",
               (unsigned long long)c->scans_ok, (unsigned long long)c->scans_failed,
               (unsigned long long)c->scans_parked, (unsigned long long)c->scans_skipped);
    buf_appends(&b, "# HELP pss_queue_entries Queued folders, by state.\n# TYPE pss_queue_entries gauge\n");
    for (int s = 0; s < ENTRY_STATE_COUNT; s++)
        buf_printf(&b, "pss_queue_entries{state=\"%s\"} %zu\n", entry_state_name((entry_state)s),
                   queue_count_state(a->q, (entry_state)s));
    buf_printf(&b, "# HELP pss_rclone_calls_total rclone steps, by outcome.\n# TYPE pss_rclone_calls_total counter\n"
                   "pss_rclone_calls_total{outcome=\"ok\"} %llu\npss_rclone_calls_total{outcome=\"failed\"} %llu\n",
               (unsigned long long)c->rclone_calls_ok, (unsigned long long)c->rclone_calls_failed);
    buf_printf(&b, "# HELP pss_plex_calls_total Plex scan calls, by outcome.\n# TYPE pss_plex_calls_total counter\n"
                   "pss_plex_calls_total{outcome=\"ok\"} %llu\npss_plex_calls_total{outcome=\"failed\"} %llu\n",
               (unsigned long long)c->plex_calls_ok, (unsigned long long)c->plex_calls_failed);
    buf_appends(&b, "# HELP pss_sync_duration_seconds Duration of sync attempts.\n"
                    "# TYPE pss_sync_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (size_t i = 0; i < ARRAY_SIZE(le); i++) {
        cum += c->sync_ms_buckets[i];
        buf_printf(&b, "pss_sync_duration_seconds_bucket{le=\"%s\"} %llu\n", le[i], (unsigned long long)cum);
    }
    cum += c->sync_ms_buckets[ARRAY_SIZE(le)];
    buf_printf(&b, "pss_sync_duration_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    buf_printf(&b, "pss_sync_duration_seconds_sum %.3f\npss_sync_duration_seconds_count %llu\n",
               (double)c->sync_ms_sum / 1000.0, (unsigned long long)c->sync_count);
    buf_printf(&b, "# HELP pss_commits_total Group commits of the state database.\n# TYPE pss_commits_total counter\n"
                   "pss_commits_total{outcome=\"ok\"} %llu\npss_commits_total{outcome=\"failed\"} %llu\n",
               (unsigned long long)(c->commits - c->commit_failures), (unsigned long long)c->commit_failures);
    buf_printf(&b, "# HELP pss_plex_up Whether Plex answered the last call.\n# TYPE pss_plex_up gauge\npss_plex_up %d\n",
               a->plex_reachable ? 1 : 0);
    http_respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len, NULL);
    buf_free(&b);
}
