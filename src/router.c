/* router.c: the HTTP surface: which request goes to which handler, with what authentication,
 * content type and body cap; and the webhook and manual-trigger handlers themselves. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app.h"
#include "json_arena.h"
#include "log.h"
#include "paths.h"
#include "util.h"

static const char queue_full_msg[] = "too many folders are pending (MAX_PENDING); try again later";

static void respond_status(http_request *r, int status, const char *word, const char *message)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "status", word);
    if (message)
        cJSON_AddStringToObject(j, "message", message);
    api_respond_json(r, status, j);
}

static void challenge(app_t *a, http_request *r, const char *realm)
{
    auth_reject(a, r, realm); /* auth.c: failed logins are answered after a delay */
}

static bool is_json_type(const char *ct)
{
    if (!ct)
        return false;
    while (*ct == ' ')
        ct++;
    size_t n = strcspn(ct, "; ");
    return n == 16 && strncasecmp(ct, "application/json", 16) == 0;
}

static bool is_form_type(const char *ct)
{
    if (!ct)
        return false;
    while (*ct == ' ')
        ct++;
    size_t n = strcspn(ct, "; ");
    return n == 33 && strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0;
}

/* State-changing calls from the UI refuse cross-site requests: a page elsewhere must not make a
 * logged-in browser queue scans. Requests without these headers (curl, the *arr apps) pass. */
static bool cross_site(const http_request *r)
{
    const char *sfs = http_header_get(r, "Sec-Fetch-Site");
    if (sfs && strcasecmp(sfs, "cross-site") == 0)
        return true;
    const char *origin = http_header_get(r, "Origin");
    const char *host = http_header_get(r, "Host");
    if (!origin || strcmp(origin, "null") == 0)
        return origin != NULL;
    const char *o = strstr(origin, "://");
    if (!o || !host)
        return true;
    return strcmp(o + 3, host) != 0;
}

static void staged_free(staged_req *s)
{
    for (size_t i = 0; i < s->n_folders; i++)
        app_folder_free(&s->folders[i]);
    free(s->folders);
    free(s->skipped_json);
    free(s);
}

/* ---- webhook ---- */

static void add_skip(cJSON *skipped, const char *arr_path, const char *reason)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "arr_path", arr_path);
    cJSON_AddStringToObject(o, "reason", reason);
    cJSON_AddItemToArray(skipped, o);
}

/* One "skipped" history row per folder no library holds, so the history says why nothing was
 * scanned. Not part of the acknowledgement: nothing durable is promised for a skip, so the
 * answer goes out now and the rows ride along with this turn's group commit. Staged only once
 * the request as a whole is accepted (a 400 for a later folder records nothing). */
static void stage_skipped(app_t *a, arr_app app, uint64_t at, const cJSON *skipped)
{
    const cJSON *o;
    cJSON_ArrayForEach(o, skipped)
    {
        const char *arr = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "arr_path"));
        const char *why = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "reason"));
        if (!arr)
            continue;
        folder_paths fp;
        bool mapped = paths_resolve(&a->cfg, arr, &fp, NULL) == 0;
        store_history h = {
            .section = QUEUE_SECTION_UNRESOLVED,
            .plex_path = mapped ? fp.plex : arr,
            .arr_path = mapped ? fp.arr : arr,
            .sources = 1u << app,
            .events = 1,
            .started = at,
            .status = HIST_SKIPPED,
            .rclone = "skipped",
            .plex = "skipped",
            .error = why,
        };
        store_stage_history(a->store, &h);
        a->counters.scans_skipped++;
        if (mapped)
            folder_paths_free(&fp);
    }
}

static void handle_webhook(app_t *a, http_request *r, arr_app app)
{
    const config_t *c = &a->cfg;
    if ((c->webhook_user || c->webhook_pass) &&
        !auth_basic_ok(r, c->webhook_user ? c->webhook_user : "", c->webhook_pass ? c->webhook_pass : "")) {
        log_warn("webhook from %s refused: bad or missing credentials", log_esc(r->remote_addr));
        a->counters.webhook_errors++;
        challenge(a, r, "plex-servarr-sync webhooks");
        return;
    }
    if (!is_json_type(http_header_get(r, "Content-Type"))) {
        a->counters.webhook_errors++;
        respond_status(r, 415, "unsupported_media_type", "webhooks must be sent with Content-Type: application/json");
        return;
    }
    wh_event ev;
    char err[256];
    int parsed = webhook_parse(c, app, r->body, r->body_len, &ev, err, sizeof err);
    /* What is needed is copied out: the body is not held while the commit (and, with
     * DURABILITY=full, the sync) is waited for. */
    http_request_drop_body(r);
    if (parsed < 0) {
        log_warn("%s webhook from %s refused: %s", arr_app_name(app), log_esc(r->remote_addr), log_esc(err));
        a->counters.webhook_errors++;
        respond_status(r, 400, "bad_request", err);
        return;
    }
    a->counters.webhooks[app]++;
    a->counters.webhook_events[app][api_event_kind(ev.event_type)]++;
    if (ev.is_test) {
        log_info("%s: Test event received", arr_app_name(app));
        respond_status(r, 200, "test_success", "plex-servarr-sync received the test event");
        wh_event_free(&ev);
        return;
    }
    if (ev.ignored || ev.n_folders == 0) {
        log_debug("%s: %s event asks for no scan", arr_app_name(app), log_esc(ev.event_type));
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "status", "ignored");
        cJSON_AddStringToObject(j, "eventType", ev.event_type ? ev.event_type : "");
        api_respond_json(r, 200, j);
        wh_event_free(&ev);
        return;
    }
    log_info("%s: %s event for %s (%zu folder%s)", arr_app_name(app), log_esc(ev.event_type),
             ev.title ? log_esc(ev.title) : "?", ev.n_folders, ev.n_folders == 1 ? "" : "s");

    staged_req *s = xcalloc(1, sizeof *s);
    s->req = r;
    s->app = app;
    s->at = wall_ms();
    cJSON *skipped = cJSON_CreateArray();
    for (size_t i = 0; i < ev.n_folders; i++) {
        const char *ferr = NULL;
        char *skip = NULL;
        int n = app_map_folder(a, ev.folders[i].path, (const char *const *)ev.folders[i].files,
                               ev.folders[i].n_files, false, &s->folders, &s->n_folders, &ferr, &skip);
        if (n < 0) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s: %s", ev.folders[i].path, ferr);
            log_warn("%s webhook refused: %s", arr_app_name(app), log_esc(msg));
            a->counters.webhook_errors++;
            respond_status(r, 400, "bad_request", msg);
            cJSON_Delete(skipped);
            staged_free(s);
            wh_event_free(&ev);
            return;
        }
        if (n == 0)
            add_skip(skipped, ev.folders[i].path, skip ? skip : "no Plex library holds it");
        free(skip);
    }
    wh_event_free(&ev);
    if (s->n_folders == 0) {
        stage_skipped(a, app, s->at, skipped);
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "status", "skipped");
        cJSON_AddItemToObject(j, "skipped", skipped);
        api_respond_json(r, 200, j);
        staged_free(s);
        return;
    }
    if (queue_count(a->q) + a->staged_events + s->n_folders > (size_t)c->max_pending) {
        log_error("queue full (MAX_PENDING=%ld): refusing a %s webhook", c->max_pending, arr_app_name(app));
        respond_status(r, 503, "queue_full", queue_full_msg);
        cJSON_Delete(skipped);
        staged_free(s);
        return;
    }
    if (cJSON_GetArraySize(skipped) > 0) {
        stage_skipped(a, app, s->at, skipped);
        s->skipped_json = cJSON_PrintUnformatted(skipped);
    }
    cJSON_Delete(skipped);
    app_stage(a, s);
}

/* ---- manual trigger (the Python script's form, kept) ---- */

static void html_escape(buf_t *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': buf_appends(b, "&lt;"); break;
        case '>': buf_appends(b, "&gt;"); break;
        case '&': buf_appends(b, "&amp;"); break;
        case '"': buf_appends(b, "&quot;"); break;
        case '\'': buf_appends(b, "&#39;"); break;
        default: buf_append(b, s, 1);
        }
    }
}

static void respond_manual_page(http_request *r, int status, const char *message)
{
    buf_t b;
    buf_init(&b, 0);
    buf_appends(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                    "<title>Manual Plex Sync</title><link rel=\"stylesheet\" href=\"/static/style.css\"></head>"
                    "<body><main class=\"narrow\"><h1>Manual Plex Sync</h1><p class=\"message\">");
    html_escape(&b, message);
    buf_appends(&b, "</p><form method=\"post\" action=\"/webhook/manual\"><label for=\"path\">Folder, as "
                    "Sonarr/Radarr see it</label><input id=\"path\" type=\"text\" name=\"path\">"
                    "<button type=\"submit\">Trigger Sync</button></form><p><a href=\"/\">Back to the "
                    "dashboard</a></p></main></body></html>\n");
    http_respond(r, status, "text/html; charset=utf-8", b.data, b.len, NULL);
    buf_free(&b);
}

/* Queue one folder named by a person (arr terms). Shared by the form and the JSON API. */
static int stage_manual(app_t *a, http_request *r, const char *raw, bool html, char *msg, size_t msglen)
{
    char *norm = path_normalize(raw);
    const char *bad = paths_check(norm);
    if (bad) {
        snprintf(msg, msglen, "%s", bad);
        free(norm);
        return 400;
    }
    staged_req *s = xcalloc(1, sizeof *s);
    s->req = r;
    s->app = APP_MANUAL;
    s->manual = true;
    s->html = html;
    s->at = wall_ms();
    const char *ferr = NULL;
    char *skip = NULL;
    int n = app_map_folder(a, norm, NULL, 0, true, &s->folders, &s->n_folders, &ferr, &skip);
    free(norm);
    if (n <= 0) {
        snprintf(msg, msglen, "%s", n < 0 ? ferr : skip ? skip : "no Plex library holds it");
        free(skip);
        staged_free(s);
        return n < 0 ? 400 : 422;
    }
    a->counters.manual_requests++;
    app_stage(a, s);
    return 0;
}

static void handle_manual_post(app_t *a, http_request *r)
{
    if (cross_site(r)) {
        respond_status(r, 403, "forbidden", "cross-site request refused");
        return;
    }
    if (!is_form_type(http_header_get(r, "Content-Type"))) {
        respond_manual_page(r, 415, "The form must be sent as application/x-www-form-urlencoded.");
        return;
    }
    char *path = http_form_get(r->body, "path");
    if (!path || !*path) {
        free(path);
        respond_manual_page(r, 400, "Enter a folder path.");
        return;
    }
    char msg[600];
    int st = stage_manual(a, r, path, true, msg, sizeof msg);
    if (st) {
        char text[700];
        snprintf(text, sizeof text, "Error: %s", msg);
        respond_manual_page(r, st, text);
    }
    free(path);
}

void api_scans(app_t *a, http_request *r)
{
    if (cross_site(r)) {
        respond_status(r, 403, "forbidden", "cross-site request refused");
        return;
    }
    char *path = NULL;
    if (is_json_type(http_header_get(r, "Content-Type"))) {
        cJSON *j = cJSON_ParseWithLength(r->body, r->body_len);
        const cJSON *p = j ? cJSON_GetObjectItemCaseSensitive(j, "path") : NULL;
        /* cJSON cuts a string at a NUL (raw or \u0000): refuse such a body (400) rather than
         * queue a shorter path than the one named. */
        bool nul = memchr(r->body, '\0', r->body_len) || strstr(r->body, "\\u0000");
        if (cJSON_IsString(p) && !nul)
            path = xstrdup(p->valuestring);
        cJSON_Delete(j);
    } else if (is_form_type(http_header_get(r, "Content-Type"))) {
        path = http_form_get(r->body, "path");
    }
    if (!path || !*path) {
        free(path);
        respond_status(r, 400, "bad_request", "send {\"path\": \"/folder/as/arr/sees/it\"}");
        return;
    }
    char msg[600];
    int st = stage_manual(a, r, path, false, msg, sizeof msg);
    free(path);
    if (st)
        respond_status(r, st, st == 422 ? "skipped" : "bad_request", msg);
}

void router_staged_done(app_t *a, staged_req *s, bool committed, const char *err)
{
    (void)a;
    http_request *r = s->req;
    if (!committed || s->queue_full) {
        char msg[400];
        if (!committed)
            snprintf(msg, sizeof msg,
                     "the request could not be recorded (%s); its scan is queued in memory only and "
                     "is lost if the daemon stops before the database can be written again",
                     err && *err ? err : "state database error");
        else
            snprintf(msg, sizeof msg, "%s", queue_full_msg);
        if (s->html)
            respond_manual_page(r, 503, msg);
        else
            respond_status(r, 503, committed ? "queue_full" : "unavailable", msg);
        staged_free(s);
        return;
    }
    bool all_unresolved = true;
    for (size_t i = 0; i < s->n_folders; i++)
        if (s->folders[i].section != QUEUE_SECTION_UNRESOLVED)
            all_unresolved = false;
    if (s->html) {
        char msg[700];
        snprintf(msg, sizeof msg, "Sync queued for: %s%s", s->folders[0].plex_path,
                 all_unresolved ? " (waiting for Plex's library list)" : "");
        respond_manual_page(r, 200, msg);
        staged_free(s);
        return;
    }
    json_arena_begin(); /* the answer's tree and text live until it is written */
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "status", all_unresolved ? "unresolved" : "queued");
    cJSON *entries = cJSON_AddArrayToObject(j, "entries");
    for (size_t i = 0; i < s->n_folders; i++) {
        app_folder *f = &s->folders[i];
        cJSON *o = cJSON_CreateObject();
        if (f->section == QUEUE_SECTION_UNRESOLVED)
            cJSON_AddNullToObject(o, "section");
        else
            json_add_int(o, "section", f->section);
        cJSON_AddStringToObject(o, "plex_path", f->plex_path);
        cJSON_AddStringToObject(o, "arr_path", f->arr_path);
        if (f->applied) {
            json_add_int(o, "id", f->entry_id);
            cJSON_AddStringToObject(o, "state", entry_state_name(f->state));
            cJSON_AddStringToObject(o, "queued_as",
                                    f->kind == QADD_NEW ? "new" : f->kind == QADD_MERGED ? "merged" : "rerun");
            if (f->carrier_path && strcmp(f->carrier_path, f->plex_path) != 0)
                cJSON_AddStringToObject(o, "merged_into", f->carrier_path);
        }
        cJSON_AddItemToArray(entries, o);
    }
    if (s->skipped_json) {
        cJSON *skipped = cJSON_Parse(s->skipped_json);
        if (skipped)
            cJSON_AddItemToObject(j, "skipped", skipped);
    }
    api_respond_json(r, 202, j);
    json_arena_end();
    staged_free(s);
}

/* ---- dispatch ---- */

size_t router_body_limit(void *ud, const http_request *r)
{
    app_t *a = ud;
    if (strncmp(r->path, "/webhook/", 9) == 0 && strcmp(r->path, "/webhook/manual") != 0)
        return a->cfg.max_webhook_body;
    return a->cfg.max_body;
}

static bool method_is(const http_request *r, const char *m) { return strcmp(r->method, m) == 0; }

static void method_not_allowed(http_request *r, const char *allow)
{
    char hdr[96];
    snprintf(hdr, sizeof hdr, "Allow: %s\r\n", allow);
    static const char body[] = "{\"status\":\"method_not_allowed\",\"message\":\"method not allowed here\"}";
    http_respond(r, 405, "application/json", body, sizeof body - 1, hdr);
}

static bool manual_auth(app_t *a, http_request *r)
{
    if (auth_basic_ok(r, a->cfg.manual_user, a->manual_pass))
        return true;
    if (http_header_get(r, "Authorization"))
        log_warn("%s %s from %s refused: bad credentials", r->method, log_esc(r->path), log_esc(r->remote_addr));
    challenge(a, r, "plex-servarr-sync");
    return false;
}

static bool parse_id(const char *s, int64_t *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || v <= 0)
        return false;
    *out = v;
    return true;
}

void router_handle(void *ud, http_request *r)
{
    app_t *a = ud;
    const char *p = r->path;
    bool get = method_is(r, "GET") || method_is(r, "HEAD");

    if (strncmp(p, "/webhook/", 9) == 0 && strcmp(p, "/webhook/manual") != 0) {
        arr_app app;
        if (arr_app_parse(p + 9, &app) < 0 || app == APP_MANUAL) {
            respond_status(r, 404, "not_found", "unknown webhook; use /webhook/sonarr, radarr, lidarr or readarr");
            return;
        }
        if (!method_is(r, "POST") && !method_is(r, "PUT")) {
            method_not_allowed(r, "POST, PUT");
            return;
        }
        handle_webhook(a, r, app);
        return;
    }
    if (strcmp(p, "/health") == 0) {
        if (!get) {
            method_not_allowed(r, "GET, HEAD");
            return;
        }
        api_health(a, r);
        return;
    }
    if (strcmp(p, "/metrics") == 0) {
        if (!get) {
            method_not_allowed(r, "GET, HEAD");
            return;
        }
        api_metrics(a, r);
        return;
    }
    if (strncmp(p, "/static/", 8) == 0 || strcmp(p, "/favicon.ico") == 0 || strcmp(p, "/favicon.svg") == 0) {
        if (!get) {
            method_not_allowed(r, "GET, HEAD");
            return;
        }
        static_serve_path(a, r, strcmp(p, "/favicon.ico") == 0 ? "/static/favicon.svg" : p);
        return;
    }
    if (strcmp(p, "/") == 0 || strcmp(p, "/webhook/manual") == 0) {
        if (get) {
            if (manual_auth(a, r))
                static_serve(a, r, "index.html");
            return;
        }
        if (method_is(r, "POST") && strcmp(p, "/webhook/manual") == 0) {
            if (manual_auth(a, r))
                handle_manual_post(a, r);
            return;
        }
        method_not_allowed(r, strcmp(p, "/") == 0 ? "GET, HEAD" : "GET, HEAD, POST");
        return;
    }
    if (strncmp(p, "/api/", 5) == 0) {
        const char *name = p + 5;
        static const char *const gets[] = {"queue", "history", "stats", "resolve"};
        bool known_get = false;
        for (size_t i = 0; i < ARRAY_SIZE(gets); i++)
            if (strcmp(name, gets[i]) == 0)
                known_get = true;
        bool scans = strcmp(name, "scans") == 0;
        int64_t id = 0;
        bool retry = strncmp(name, "queue/", 6) == 0 && strlen(name) > 12 &&
                     strcmp(name + strlen(name) - 6, "/retry") == 0;
        if (retry) {
            char idbuf[32];
            size_t len = strlen(name) - 12;
            retry = len < sizeof idbuf;
            if (retry) {
                memcpy(idbuf, name + 6, len);
                idbuf[len] = '\0';
                retry = parse_id(idbuf, &id);
            }
        }
        if (!known_get && !scans && !retry) {
            respond_status(r, 404, "not_found", "no such API endpoint");
            return;
        }
        if (known_get && !get) {
            method_not_allowed(r, "GET, HEAD");
            return;
        }
        if ((scans || retry) && !method_is(r, "POST")) {
            method_not_allowed(r, "POST");
            return;
        }
        if (!manual_auth(a, r))
            return;
        if (scans)
            api_scans(a, r);
        else if (retry) {
            if (cross_site(r))
                respond_status(r, 403, "forbidden", "cross-site request refused");
            else
                api_retry(a, r, id);
        } else if (strcmp(name, "queue") == 0)
            api_queue(a, r);
        else if (strcmp(name, "history") == 0)
            api_history(a, r);
        else if (strcmp(name, "stats") == 0)
            api_stats(a, r);
        else
            api_resolve(a, r);
        return;
    }
    respond_status(r, 404, "not_found", "no such page");
}
