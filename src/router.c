/* router.c: the HTTP surface: which request goes to which handler, with what authentication,
 * content type and body cap; and the webhook and manual-trigger handlers themselves. */
#include <cjson/cJSON.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "router.h"

#include "api.h"
#include "api_page.h"
#include "auth.h"
#include "config_json.h"
#include "http_json.h"
#include "json_arena.h"
#include "static.h"
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
    http_respond_cjson(r, status, j);
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
 * logged-in browser queue scans. A browser says where the request comes from in Sec-Fetch-Site,
 * and that decides when it is there: only "same-origin" (the page itself) and "none" (typed by
 * the person) pass. Behind a reverse proxy that rewrites Host (nginx's default) the Origin/Host
 * comparison would refuse the page's own calls, so it is only the fallback for browsers that
 * send no Sec-Fetch-Site, where PUBLIC_URL names the proxy's origin. Requests with neither header
 * (curl, the *arr apps) pass. */
/* Whether origin ("https://host[:port]") is PUBLIC_URL's scheme and authority. */
static bool is_public_origin(const config_t *c, const char *origin)
{
    const char *u = c->public_url;
    if (!u)
        return false;
    const char *auth = strstr(u, "://");
    if (!auth)
        return false;
    size_t n = (size_t)(auth + 3 - u) + strcspn(auth + 3, "/?#");
    return strlen(origin) == n && ascii_strncasecmp(origin, u, n) == 0;
}

static bool cross_site(const app_t *a, const http_request *r)
{
    const char *sfs = http_header_get(r, "Sec-Fetch-Site");
    if (sfs)
        return strcasecmp(sfs, "same-origin") != 0 && strcasecmp(sfs, "none") != 0;
    const char *origin = http_header_get(r, "Origin");
    const char *host = http_header_get(r, "Host");
    if (!origin || strcmp(origin, "null") == 0)
        return origin != NULL;
    if (is_public_origin(app_config(a), origin))
        return false;
    const char *o = strstr(origin, "://");
    if (!o || !host)
        return true;
    return strcmp(o + 3, host) != 0;
}

static void on_committed(void *ud, staged_req *s, bool committed, const char *err);

static void staged_free(staged_req *s)
{
    for (size_t i = 0; i < s->n_folders; i++)
        app_folder_free(&s->folders[i]);
    free(s->folders);
    for (size_t i = 0; i < s->n_skipped; i++) {
        free(s->skipped[i].arr_path);
        free(s->skipped[i].reason);
    }
    free(s->skipped);
    free(s->title);
    free(s);
}

/* ---- webhook ---- */

static void add_skip(staged_req *s, const char *arr_path, const char *reason)
{
    s->skipped = xrealloc(s->skipped, (s->n_skipped + 1) * sizeof *s->skipped);
    s->skipped[s->n_skipped++] = (skipped_folder){.arr_path = xstrdup(arr_path), .reason = xstrdup(reason)};
}

static cJSON *skipped_json(const staged_req *s)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < s->n_skipped; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "arr_path", s->skipped[i].arr_path);
        cJSON_AddStringToObject(o, "reason", s->skipped[i].reason);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

/* One "skipped" history row per folder no library holds, so the history says why nothing was
 * scanned. Not part of the acknowledgement: nothing durable is promised for a skip, so the
 * answer goes out now and the rows ride along with this turn's group commit. Staged only once
 * the request as a whole is accepted (a 400 for a later folder records nothing). */
static void stage_skipped(app_t *a, const staged_req *s)
{
    for (size_t i = 0; i < s->n_skipped; i++) {
        char *deliv = sync_skipped_deliveries(app_targets(a), s->skipped[i].arr_path);
        store_history h = {
            .path = s->skipped[i].arr_path,
            .sources = 1u << s->app,
            .events = 1,
            .started = s->at,
            .status = HIST_SKIPPED,
            .rclone = "skipped",
            .deliveries = deliv,
            .error = s->skipped[i].reason,
            .title = s->title,
            .event = q_event_kind_of(s->kinds, s->manual || !ARR_APP_HAS_PAYLOAD(s->app)),
            .app = (unsigned)s->app + 1,
        };
        store_stage_history(app_store(a), &h);
        free(deliv);
        app_metrics(a)->scans_skipped++;
    }
}

/* The folders of s that would make new queue entries: only those count toward MAX_PENDING (an
 * event that merges into a queued folder, or marks a syncing one to run again, is always taken:
 * refusing it would lose the scan of a file imported while its folder syncs). */
static size_t growing_folders(const app_t *a, const staged_req *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_folders; i++)
        if (!queue_takes_without_growing(app_queue(a), s->folders[i].arr_path))
            n++;
    return n;
}

/* Every folder of the event to s: staged, or skipped (no library holds it). False when one may
 * not be scanned from a webhook: r has been answered 400. */
static bool map_event_folders(app_t *a, http_request *r, const wh_event *ev, staged_req *s)
{
    for (size_t i = 0; i < ev->n_folders; i++) {
        const char *ferr = NULL;
        char *skip = NULL;
        int n = app_map_folder(a, ev->folders[i].path, (const char *const *)ev->folders[i].files,
                               ev->folders[i].n_files, ev->kinds, false, &s->folders, &s->n_folders, &ferr, &skip);
        if (n < 0) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s: %s", ev->folders[i].path, ferr);
            log_warn("%s webhook refused: %s", arr_app_name(s->app), log_esc(msg));
            app_metrics(a)->webhook_errors++;
            sources_note_refused(app_sources(a), s->app, 400, msg, wall_ms());
            respond_status(r, 400, "bad_request", msg);
            return false;
        }
        if (n == 0)
            add_skip(s, ev->folders[i].path, skip ? skip : "no library of any media server holds it");
        free(skip);
    }
    return true;
}

/* " via /triggers" for an *arr payload sent to autoscan's and autopulse's address (for the logs:
 * it counts as its app), else "". */
static const char *via_triggers(const http_request *r)
{
    return strncmp(r->path, "/triggers/", 10) == 0 ? " via /triggers" : "";
}

/* The mapped folders of s, from a webhook or a trigger: none to queue answers 200 "skipped" now;
 * a queue too full for them 503; else they go to the group commit, which answers (202). Takes s. */
static void stage_mapped(app_t *a, http_request *r, staged_req *s)
{
    const config_t *c = app_config(a);
    if (s->n_folders == 0) {
        stage_skipped(a, s);
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "status", "skipped");
        cJSON_AddItemToObject(j, "skipped", skipped_json(s));
        http_respond_cjson(r, 200, j);
        staged_free(s);
        return;
    }
    size_t pending = queue_count(app_queue(a)) + app_status_of(a).staged_events;
    /* The lookups only when the cap is near: queue_add finds the same ancestors again. */
    if (pending + s->n_folders > (size_t)c->max_pending &&
        pending + growing_folders(a, s) > (size_t)c->max_pending) {
        log_error("queue full (MAX_PENDING=%ld): refusing a %s request", c->max_pending, arr_app_name(s->app));
        respond_status(r, 503, "queue_full", queue_full_msg);
        staged_free(s);
        return;
    }
    stage_skipped(a, s);
    app_stage(a, s);
}

/* A webhook, once authenticated (the route's AUTH_WEBHOOK). */
static void handle_webhook(app_t *a, http_request *r, arr_app app)
{
    const config_t *c = app_config(a);
    if (!is_json_type(http_header_get(r, "Content-Type"))) {
        app_metrics(a)->webhook_errors++;
        sources_note_refused(app_sources(a), app, 415, "not sent as Content-Type: application/json", wall_ms());
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
        log_warn("%s webhook%s from %s refused: %s", arr_app_name(app), via_triggers(r), log_esc(r->remote_addr),
                 log_esc(err));
        app_metrics(a)->webhook_errors++;
        sources_note_refused(app_sources(a), app, 400, err, wall_ms());
        respond_status(r, 400, "bad_request", err);
        return;
    }
    app_metrics(a)->webhooks[app]++;
    sources_note(app_sources(a), app, ev.event_type, ev.label, ev.is_test, wall_ms());
    app_metrics(a)->webhook_events[app][metrics_event_kind(ev.event_type)]++;
    if (ev.is_test) {
        log_info("%s: Test event received", arr_app_name(app));
        app_notify_test(a, arr_app_name(app));
        respond_status(r, 200, "test_success", "plex-servarr-sync received the test event");
        wh_event_free(&ev);
        return;
    }
    if (ev.ignored || ev.n_folders == 0) {
        log_debug("%s: %s event asks for no scan", arr_app_name(app), log_esc(ev.event_type));
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "status", "ignored");
        cJSON_AddStringToObject(j, "eventType", ev.event_type ? ev.event_type : "");
        http_respond_cjson(r, 200, j);
        wh_event_free(&ev);
        return;
    }
    log_info("%s: %s event for %s (%zu folder%s)%s", arr_app_name(app), log_esc(ev.event_type),
             ev.title ? log_esc(ev.title) : "?", ev.n_folders, ev.n_folders == 1 ? "" : "s", via_triggers(r));

    staged_req *s = xcalloc(1, sizeof *s);
    s->done = on_committed;
    s->done_ud = a;
    s->req = r;
    s->app = app;
    s->at = wall_ms();
    s->title = xstrdup(ev.label);
    s->kinds = ev.kinds;
    bool mapped = map_event_folders(a, r, &ev, s);
    wh_event_free(&ev);
    if (!mapped) {
        staged_free(s);
        return;
    }
    stage_mapped(a, r, s);
}

/* ---- /triggers/manual: autoscan's and autopulse's manual trigger ---- */

/* The folders a manual trigger names, grouped: a folder named by several values is one folder,
 * with the files named in it (for MINIMUM_AGE), or none when it was named itself. */
typedef struct trigger_folders {
    wh_folder *v;     /* as a webhook's folders, so they map the same way */
    bool *whole;      /* v[i] was named itself: its files do not narrow the age check */
    size_t n;
} trigger_folders;

static void trigger_folders_free(trigger_folders *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->v[i].path);
        for (size_t k = 0; k < t->v[i].n_files; k++)
            free(t->v[i].files[k]);
        free(t->v[i].files);
    }
    free(t->v);
    free(t->whole);
}

/* Add folder (taken), with file (taken, may be NULL: the folder itself was named). */
static void trigger_folders_add(trigger_folders *t, char *folder, char *file)
{
    size_t i = 0;
    while (i < t->n && strcmp(t->v[i].path, folder) != 0)
        i++;
    if (i == t->n) {
        t->v = xrealloc(t->v, (t->n + 1) * sizeof *t->v);
        t->whole = xrealloc(t->whole, (t->n + 1) * sizeof *t->whole);
        t->v[i] = (wh_folder){.path = folder};
        t->whole[i] = false;
        t->n++;
    } else {
        free(folder);
    }
    if (!file) {
        t->whole[i] = true;
        return;
    }
    if (t->v[i].n_files >= WEBHOOK_MAX_FILES) {
        free(file);
        return;
    }
    t->v[i].files = xrealloc(t->v[i].files, (t->v[i].n_files + 1) * sizeof *t->v[i].files);
    t->v[i].files[t->v[i].n_files++] = file;
}

/* One ?dir= or ?path= value (decoded) to t. A dir is a folder. A path is a file or a folder, and
 * a file means its folder: told apart by its extension only (paths_is_media_file), because
 * whether it is a file on the host would take a stat, which blocks the loop (and the path is in
 * arr terms, not the host's). False with err (a 400's message naming the value). */
static bool trigger_add_value(trigger_folders *t, const char *key, const char *value, char *err, size_t errlen)
{
    char *norm = path_normalize(value);
    const char *bad = paths_check(norm);
    if (bad) {
        snprintf(err, errlen, "%s '%s': %s", key, value, bad);
        free(norm);
        return false;
    }
    if (strcmp(key, "path") == 0 && paths_is_media_file(norm))
        trigger_folders_add(t, paths_dirname(norm), norm);
    else
        trigger_folders_add(t, norm, NULL);
    return true;
}

/* The ?dir= or ?path= values of query (repeatable; other parameters ignored) to t; *by_dir says
 * which. False with err: a value that does not decode or is not a valid absolute path, both
 * kinds at once, or more than max folders. */
static bool trigger_query(const char *query, int max, trigger_folders *t, bool *by_dir, char *err, size_t errlen)
{
    bool dirs = false, paths = false;
    for (const char *p = query; *p;) {
        const char *end = p + strcspn(p, "&");
        const char *eq = memchr(p, '=', (size_t)(end - p));
        char *key = http_url_decode(p, (size_t)((eq ? eq : end) - p), true);
        bool is_dir = key && strcmp(key, "dir") == 0, is_path = key && strcmp(key, "path") == 0;
        free(key);
        if (is_dir || is_path) {
            const char *name = is_dir ? "dir" : "path";
            char *value = eq ? http_url_decode(eq + 1, (size_t)(end - eq - 1), true) : xstrdup("");
            bool ok = value != NULL;
            if (!ok)
                snprintf(err, errlen, "%s: not valid percent-encoding (or an encoded NUL)", name);
            else
                ok = trigger_add_value(t, name, value, err, errlen);
            free(value);
            if (!ok)
                return false;
            dirs |= is_dir;
            paths |= is_path;
        }
        if (dirs && paths) {
            snprintf(err, errlen, "use either ?dir= (autoscan's form) or ?path= (autopulse's), not both");
            return false;
        }
        if (t->n > (size_t)max) {
            snprintf(err, errlen, "more than %d folders in one trigger (MAX_FOLDERS_PER_EVENT)", max);
            return false;
        }
        p = *end ? end + 1 : end;
    }
    *by_dir = dirs;
    return true;
}

/* Stage t's folders for app, as a webhook's: debounced (not manual), mapped by the webhooks'
 * rules (no library root), skipped when no library holds them. Answers r. */
static void trigger_stage(app_t *a, http_request *r, arr_app app, trigger_folders *t)
{
    wh_event ev = {.app = app, .folders = t->v, .n_folders = t->n};
    for (size_t i = 0; i < t->n; i++) {
        if (t->whole[i]) { /* named itself: the whole folder is checked for age */
            for (size_t k = 0; k < t->v[i].n_files; k++)
                free(t->v[i].files[k]);
            t->v[i].n_files = 0;
        }
    }
    staged_req *s = xcalloc(1, sizeof *s);
    s->done = on_committed;
    s->done_ud = a;
    s->req = r;
    s->app = app;
    s->at = wall_ms();
    /* kinds stay 0: a trigger does not say whether files were added or changed */
    if (!map_event_folders(a, r, &ev, s)) {
        staged_free(s);
        return;
    }
    stage_mapped(a, r, s);
}

/* GET, HEAD, POST /triggers/manual, once authenticated (AUTH_WEBHOOK). */
static void route_trigger_manual(app_t *a, http_request *r, const char *rest)
{
    (void)rest;
    /* A body is allowed and ignored: Tdarr and Bazarr send an empty one, some scripts a form. */
    http_request_drop_body(r);
    trigger_folders t = {0};
    bool by_dir = false;
    char err[PATHS_MAX + 200];
    int max = app_config(a)->max_folders_per_event > 0 ? app_config(a)->max_folders_per_event : 100;
    if (!trigger_query(r->query, max, &t, &by_dir, err, sizeof err)) {
        log_warn("manual trigger from %s refused: %s", log_esc(r->remote_addr), log_esc(err));
        app_metrics(a)->webhook_errors++;
        sources_note_refused(app_sources(a), APP_MANUAL, 400, err, wall_ms());
        respond_status(r, 400, "bad_request", err);
        goto out;
    }
    bool post = strcmp(r->method, "POST") == 0;
    if (t.n == 0 && post) {
        static const char nothing[] = "nothing to scan: name folders with ?dir=/folder (repeatable) or a file or "
                                      "folder with ?path=/folder/file.mkv";
        app_metrics(a)->webhook_errors++;
        sources_note_refused(app_sources(a), APP_MANUAL, 400, nothing, wall_ms());
        respond_status(r, 400, "bad_request", nothing);
        goto out;
    }
    if (t.n == 0 || strcmp(r->method, "HEAD") == 0) {
        /* autoscan's "is the target up" probe: nothing is queued; the page shows it as a Test */
        sources_note(app_sources(a), APP_MANUAL, "probe", NULL, true, wall_ms());
        respond_status(r, 200, "ok", "plex-servarr-sync takes manual triggers here: POST with ?dir= or ?path=");
        goto out;
    }
    arr_app app = by_dir ? APP_AUTOSCAN : APP_MANUAL_TRIGGER;
    app_metrics(a)->webhooks[app]++;
    sources_note(app_sources(a), app, arr_app_name(app), t.v[0].path, false, wall_ms());
    log_info("%s: %s trigger for '%s'%s (%zu folder%s) via /triggers/manual", arr_app_name(app), r->method,
             log_esc(t.v[0].path), t.n > 1 ? " and more" : "", t.n, t.n == 1 ? "" : "s");
    trigger_stage(a, r, app, &t);
out:
    trigger_folders_free(&t);
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

/* The Python script's answer page; its addresses go under URL_BASE (its characters need no
 * escaping in HTML). */
static void respond_manual_page(const app_t *a, http_request *r, int status, const char *message)
{
    const char *base = app_config(a)->url_base ? app_config(a)->url_base : "";
    buf_t b;
    buf_init(&b, 0);
    buf_printf(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                   "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                   "<title>Manual Plex Sync</title><link rel=\"stylesheet\" href=\"%s/static/style.css\"></head>"
                   "<body><main class=\"narrow\"><h1>Manual Plex Sync</h1><p class=\"message\">", base);
    html_escape(&b, message);
    buf_printf(&b, "</p><form method=\"post\" action=\"%s/webhook/manual\"><label for=\"path\">Folder, as "
                   "Sonarr/Radarr see it</label><input id=\"path\" type=\"text\" name=\"path\">"
                   "<button type=\"submit\">Trigger Sync</button></form><p><a href=\"%s/\">Back to the "
                   "dashboard</a></p></main></body></html>\n", base, base);
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
    s->done = on_committed;
    s->done_ud = a;
    s->req = r;
    s->app = APP_MANUAL;
    s->manual = true;
    s->html = html;
    s->at = wall_ms();
    const char *ferr = NULL;
    char *skip = NULL;
    int n = app_map_folder(a, norm, NULL, 0, 0, true, &s->folders, &s->n_folders, &ferr, &skip);
    free(norm);
    if (n <= 0) {
        snprintf(msg, msglen, "%s", n < 0 ? ferr : skip ? skip : "no library of any media server holds it");
        free(skip);
        staged_free(s);
        return n < 0 ? 400 : 422;
    }
    app_metrics(a)->manual_requests++;
    app_stage(a, s);
    return 0;
}

/* The Python script's form, once authenticated and checked same-site by its route. */
static void handle_manual_post(app_t *a, http_request *r)
{
    if (!is_form_type(http_header_get(r, "Content-Type"))) {
        respond_manual_page(a, r, 415, "The form must be sent as application/x-www-form-urlencoded.");
        return;
    }
    char *path = http_form_get(r->body, "path");
    if (!path || !*path) {
        free(path);
        respond_manual_page(a, r, 400, "Enter a folder path.");
        return;
    }
    char msg[600];
    int st = stage_manual(a, r, path, true, msg, sizeof msg);
    if (st == 400)
        sources_note_refused(app_sources(a), APP_MANUAL, 400, msg, wall_ms());
    else
        sources_note(app_sources(a), APP_MANUAL, "manual", path, false, wall_ms());
    if (st) {
        char text[700];
        snprintf(text, sizeof text, "Error: %s", msg);
        respond_manual_page(a, r, st, text);
    }
    free(path);
}

/* POST /api/scans, once authenticated and checked same-site by its route. */
void api_scans(app_t *a, http_request *r)
{
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

/* The group commit of a staged request ended: the request's answer. */
static void on_committed(void *ud, staged_req *s, bool committed, const char *err)
{
    const app_t *a = ud;
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
            respond_manual_page(a, r, 503, msg);
        else
            respond_status(r, 503, committed ? "queue_full" : "unavailable", msg);
        staged_free(s);
        return;
    }
    bool all_unresolved = true;
    for (size_t i = 0; i < s->n_folders; i++)
        if (!s->folders[i].applied || s->folders[i].state != ENTRY_UNRESOLVED)
            all_unresolved = false;
    if (s->html) {
        char msg[700];
        snprintf(msg, sizeof msg, "Sync queued for: %s%s", s->folders[0].plex_path,
                 all_unresolved ? " (waiting for a media server's library list)" : "");
        respond_manual_page(a, r, 200, msg);
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
        if (f->plex_section && *f->plex_section)
            json_add_int(o, "section", strtol(f->plex_section, NULL, 10));
        else
            cJSON_AddNullToObject(o, "section");
        cJSON_AddStringToObject(o, "plex_path", f->plex_path);
        cJSON_AddStringToObject(o, "arr_path", f->arr_path);
        cJSON *deliv = cJSON_AddArrayToObject(o, "deliveries");
        for (size_t k = 0; k < f->n_deliv; k++) {
            cJSON *d = cJSON_CreateObject();
            cJSON_AddStringToObject(d, "target", f->deliv[k].target);
            if (f->deliv[k].state == DELIVERY_UNRESOLVED)
                cJSON_AddNullToObject(d, "library");
            else
                cJSON_AddStringToObject(d, "library", f->deliv[k].library);
            cJSON_AddStringToObject(d, "state", delivery_state_name(f->deliv[k].state));
            cJSON_AddItemToArray(deliv, d);
        }
        if (f->applied) {
            json_add_int(o, "id", f->entry_id);
            cJSON_AddStringToObject(o, "state", entry_state_name(f->state));
            cJSON_AddStringToObject(o, "queued_as",
                                    f->kind == QADD_NEW ? "new" : f->kind == QADD_MERGED ? "merged" : "rerun");
            if (f->carrier_path && strcmp(f->carrier_path, f->arr_path) != 0)
                cJSON_AddStringToObject(o, "merged_into", f->carrier_path);
        }
        cJSON_AddItemToArray(entries, o);
    }
    if (s->n_skipped)
        cJSON_AddItemToObject(j, "skipped", skipped_json(s));
    http_respond_cjson(r, 202, j);
    json_arena_end();
    staged_free(s);
}

/* ---- dispatch: the routes as rows ---- */

/* M_GET takes HEAD too (ROUTER_M_* in router.h) */
enum { M_GET = ROUTER_M_GET, M_POST = ROUTER_M_POST, M_PUT = ROUTER_M_PUT };

typedef enum {
    AUTH_NONE,
    AUTH_WEBHOOK, /* WEBHOOK_USER/WEBHOOK_PASS, when set */
    AUTH_MANUAL,  /* MANUAL_USER/MANUAL_PASS, always */
} route_auth;

/* One row of the HTTP surface. A request's path picks its rows: the rows whose `path` equals it,
 * else those with the longest `prefix` it starts with. Then, in this order: a prefix row's
 * `accept` (false: 404 with `miss`), the method (405 naming the rows' methods), authentication
 * (401), the cross-site rule (403), and the handler, which gets the path after the prefix. */
typedef struct route {
    const char *path;   /* exact path, or the prefix when `prefix` */
    bool prefix;
    unsigned methods;   /* M_*; 0: the path exists only to answer 404 with `miss` */
    route_auth auth;
    bool same_site;     /* a state-changing call from the page: cross-site requests refused */
    bool webhook_body;  /* the body cap is MAX_WEBHOOK_BODY (else MAX_BODY) */
    bool (*accept)(const char *rest);
    const char *miss;   /* the 404's message when `accept` refuses, or for methods 0 */
    void (*handle)(app_t *a, http_request *r, const char *rest);
} route;

/* The app a webhook address names: "sonarr", or "sonarr/" (a trailing slash pasted into the
 * *arr app's URL field works too). */
static bool webhook_app_of(const char *rest, arr_app *app)
{
    char name[16];
    size_t n = strlen(rest);
    if (n && rest[n - 1] == '/')
        n--;
    if (n == 0 || n >= sizeof name)
        return false;
    memcpy(name, rest, n);
    name[n] = '\0';
    return arr_app_parse(name, app) == 0 && ARR_APP_HAS_PAYLOAD(*app);
}

static bool webhook_app(const char *rest)
{
    arr_app app;
    return webhook_app_of(rest, &app);
}

static void route_webhook(app_t *a, http_request *r, const char *rest)
{
    arr_app app;
    webhook_app_of(rest, &app); /* accepted by webhook_app */
    handle_webhook(a, r, app);
}

/* What a person may ask of one queue entry: POST /api/queue/<id>/<action>. */
static const struct {
    const char *name;
    void (*handle)(app_t *a, http_request *r, int64_t id);
} entry_actions[] = {{"retry", api_retry}, {"cancel", api_cancel}, {"now", api_run_now}};

/* "<id>/<action>" with a positive decimal id; its action's index, or -1. *id filled when given. */
static int entry_action(const char *rest, int64_t *id)
{
    const char *slash = strchr(rest, '/');
    long long v;
    if (!slash || parse_positive(rest, (size_t)(slash - rest), LLONG_MAX, &v) < 0)
        return -1;
    for (size_t i = 0; i < ARRAY_SIZE(entry_actions); i++) {
        if (strcmp(slash + 1, entry_actions[i].name) == 0) {
            if (id)
                *id = v;
            return (int)i;
        }
    }
    return -1;
}

static bool entry_action_path(const char *rest) { return entry_action(rest, NULL) >= 0; }

static void route_entry_action(app_t *a, http_request *r, const char *rest)
{
    int64_t id = 0;
    int i = entry_action(rest, &id); /* accepted by entry_action_path */
    entry_actions[i].handle(a, r, id);
}

static void route_index(app_t *a, http_request *r, const char *rest)
{
    (void)rest;
    (void)a;
    static_serve(r, "index.html");
}

/* Found at `base` + to (a path that starts with '/'), with a line saying so. */
static void redirect(const app_t *a, http_request *r, const char *to)
{
    const char *base = app_config(a)->url_base;
    base = base ? base : ""; /* URL_BASE's characters need no escaping */
    char *hdr = xasprintf("Location: %s%s\r\n", base, to);
    char *body = xasprintf("{\"status\":\"found\",\"message\":\"the page is at %s%s\"}", base, to);
    http_respond(r, 302, "application/json", body, strlen(body), hdr);
    free(hdr);
    free(body);
}

/* The Python script's manual page is the dashboard now (its form is there): the page's relative
 * addresses work from where it is served, not from /webhook/manual. */
static void route_manual_page(app_t *a, http_request *r, const char *rest)
{
    (void)rest;
    redirect(a, r, "/");
}

static void route_static(app_t *a, http_request *r, const char *rest)
{
    (void)rest;
    (void)a;
    static_serve_path(r, strcmp(r->path, "/favicon.ico") == 0 ? "/static/favicon.svg" : r->path);
}

#define ROUTE_API(fn)                                                                              \
    static void route_##fn(app_t *a, http_request *r, const char *rest)                          \
    {                                                                                              \
        (void)rest;                                                                                \
        fn(a, r);                                                                                  \
    }
ROUTE_API(api_health)
ROUTE_API(api_metrics)
ROUTE_API(api_queue)
ROUTE_API(api_history)
ROUTE_API(api_stats)
ROUTE_API(api_resolve)
ROUTE_API(api_scans)
ROUTE_API(handle_manual_post)
ROUTE_API(api_notify)
ROUTE_API(api_notify_test)
ROUTE_API(api_sources)
ROUTE_API(api_retry_parked)

static const char api_miss[] = "no such API endpoint";

static const route routes[] = {
    /* path              prefix methods        auth          same_site webhook_body */
    {"/webhook/", true, M_POST | M_PUT, AUTH_WEBHOOK, false, true, webhook_app,
     "unknown webhook; use /webhook/sonarr, radarr, lidarr or readarr", route_webhook},
    /* autoscan's and autopulse's addresses: the same webhooks, and their manual trigger */
    {"/triggers/", true, M_POST | M_PUT, AUTH_WEBHOOK, false, true, webhook_app,
     "unknown trigger; use /triggers/sonarr, radarr, lidarr, readarr or manual", route_webhook},
    {"/triggers/manual", false, M_GET | M_POST, AUTH_WEBHOOK, false, false, NULL, NULL, route_trigger_manual},
    {"/webhook/manual", false, M_GET, AUTH_MANUAL, false, false, NULL, NULL, route_manual_page},
    {"/webhook/manual", false, M_POST, AUTH_MANUAL, true, false, NULL, NULL, route_handle_manual_post},
    {"/", false, M_GET, AUTH_MANUAL, false, false, NULL, NULL, route_index},
    {"/health", false, M_GET, AUTH_NONE, false, false, NULL, NULL, route_api_health},
    {"/metrics", false, M_GET, AUTH_NONE, false, false, NULL, NULL, route_api_metrics},
    {"/static/", true, M_GET, AUTH_NONE, false, false, NULL, NULL, route_static},
    {"/favicon.ico", false, M_GET, AUTH_NONE, false, false, NULL, NULL, route_static},
    {"/favicon.svg", false, M_GET, AUTH_NONE, false, false, NULL, NULL, route_static},
    {"/api/queue", false, M_GET, AUTH_MANUAL, false, false, NULL, NULL, route_api_queue},
    {"/api/history", false, M_GET, AUTH_MANUAL, false, false, NULL, NULL, route_api_history},
    {"/api/stats", false, M_GET, AUTH_MANUAL, false, false, NULL, NULL, route_api_stats},
    {"/api/resolve", false, M_GET, AUTH_MANUAL, false, false, NULL, NULL, route_api_resolve},
    {"/api/scans", false, M_POST, AUTH_MANUAL, true, false, NULL, NULL, route_api_scans},
    {"/api/queue/", true, M_POST, AUTH_MANUAL, true, false, entry_action_path, api_miss, route_entry_action},
    {"/api/retry-parked", false, M_POST, AUTH_MANUAL, true, false, NULL, NULL, route_api_retry_parked},
    {"/api/sources", false, M_GET, AUTH_MANUAL, false, false, NULL, NULL, route_api_sources},
    {"/api/notify", false, M_GET, AUTH_MANUAL, false, false, NULL, NULL, route_api_notify},
    {"/api/notify/test", false, M_POST, AUTH_MANUAL, true, false, NULL, NULL, route_api_notify_test},
    {"/api/", true, 0, AUTH_NONE, false, false, NULL, api_miss, NULL},
};

/* The rows a path picks, as routes[*first .. *first + count): the rows of an exact path (a path's
 * rows are adjacent in the table), else the row of the longest prefix the path starts with.
 * 0 when none. */
/* An exact route's path, or it with one trailing slash ("/triggers/manual/"). */
static bool path_is(const char *path, const char *route_path)
{
    size_t n = strlen(route_path);
    return strncmp(path, route_path, n) == 0 && (path[n] == '\0' || (path[n] == '/' && path[n + 1] == '\0' && n > 1));
}

static size_t route_rows(const char *path, size_t *first)
{
    for (size_t i = 0; i < ARRAY_SIZE(routes); i++) {
        if (routes[i].prefix || !path_is(path, routes[i].path))
            continue;
        size_t n = 1;
        while (i + n < ARRAY_SIZE(routes) && !routes[i + n].prefix && path_is(path, routes[i + n].path))
            n++;
        *first = i;
        return n;
    }
    size_t best = 0, n = 0;
    for (size_t i = 0; i < ARRAY_SIZE(routes); i++) {
        size_t len = strlen(routes[i].path);
        if (routes[i].prefix && len > best && strncmp(path, routes[i].path, len) == 0) {
            best = len;
            *first = i;
            n = 1;
        }
    }
    return n;
}

static unsigned method_bit(const char *m)
{
    if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0)
        return M_GET;
    if (strcmp(m, "POST") == 0)
        return M_POST;
    if (strcmp(m, "PUT") == 0)
        return M_PUT;
    return 0;
}

static void method_not_allowed(http_request *r, unsigned allowed)
{
    static const struct {
        unsigned bit;
        const char *names;
    } order[] = {{M_GET, "GET, HEAD"}, {M_POST, "POST"}, {M_PUT, "PUT"}};
    buf_t hdr;
    buf_init(&hdr, 0);
    buf_appends(&hdr, "Allow: ");
    const char *sep = "";
    for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
        if (allowed & order[i].bit) {
            buf_appends(&hdr, sep);
            buf_appends(&hdr, order[i].names);
            sep = ", ";
        }
    }
    buf_appends(&hdr, "\r\n");
    static const char body[] = "{\"status\":\"method_not_allowed\",\"message\":\"method not allowed here\"}";
    http_respond(r, 405, "application/json", body, sizeof body - 1, hdr.data);
    buf_free(&hdr);
}

/* A browser opened a webhook address: say, in words, what it is for and where to set it up. */
static void explain_webhook_address(const app_t *a, http_request *r, arr_app app)
{
    static const char *const apps[] = {[APP_SONARR] = "Sonarr", [APP_RADARR] = "Radarr", [APP_LIDARR] = "Lidarr",
                                       [APP_READARR] = "Readarr"};
    const char *name = (unsigned)app < ARRAY_SIZE(apps) && apps[app] ? apps[app] : "the *arr app";
    buf_t b;
    buf_init(&b, 512);
    buf_printf(&b, "This is the address %s sends its webhooks to: %s POSTs here when it imports, upgrades, "
               "renames or deletes a file, and plex-servarr-sync then has the folder scanned. There is nothing "
               "to see in a browser.\n\nTo set it up, in %s: Settings > Connect > + > Webhook, with this "
               "address as the URL and the method POST (add the username and password of WEBHOOK_USER and "
               "WEBHOOK_PASS if they are set), then press Test.\n\nThe page to watch the queue is at %s/.\n",
               name, name, name, app_config(a)->url_base ? app_config(a)->url_base : "");
    http_respond(r, 405, "text/plain; charset=utf-8", b.data, b.len, "Allow: POST, PUT\r\n");
    buf_free(&b);
}

static bool manual_auth(app_t *a, http_request *r)
{
    if (auth_basic_ok(r, app_config(a)->manual_user, app_manual_pass(a)))
        return true;
    if (http_header_get(r, "Authorization"))
        log_warn("%s %s from %s refused: bad credentials", r->method, log_esc(r->path), log_esc(r->remote_addr));
    challenge(a, r, "plex-servarr-sync");
    return false;
}

static bool webhook_auth(app_t *a, http_request *r)
{
    const config_t *c = app_config(a);
    if (!c->webhook_user && !c->webhook_pass)
        return true;
    if (auth_basic_ok(r, c->webhook_user ? c->webhook_user : "", c->webhook_pass ? c->webhook_pass : ""))
        return true;
    log_warn("webhook from %s refused: bad or missing credentials", log_esc(r->remote_addr));
    app_metrics(a)->webhook_errors++;
    challenge(a, r, "plex-servarr-sync webhooks");
    return false;
}

/* Whether r may go on to its handler; when not, it has been answered (401). */
static bool authenticated(app_t *a, http_request *r, route_auth auth)
{
    switch (auth) {
    case AUTH_NONE: return true;
    case AUTH_WEBHOOK: return webhook_auth(a, r);
    case AUTH_MANUAL: return manual_auth(a, r);
    }
    return false;
}

/* ---- URL_BASE: every address below one path ---- */

/* The part of path below URL_BASE ("/api/queue"; "" for the base itself), NULL when path lies
 * outside it. Without a base, path itself. */
static const char *below_base(const app_t *a, const char *path)
{
    const char *base = app_config(a)->url_base;
    if (!base)
        return path;
    size_t n = strlen(base);
    if (strncmp(path, base, n) != 0 || (path[n] != '/' && path[n] != '\0'))
        return NULL;
    return path + n;
}

/* A request for the base itself, or outside it: the base and the root lead to the page (it
 * must be at "<base>/" for its relative addresses); anything else is not found, saying where
 * everything is. */
static void answer_off_base(const app_t *a, http_request *r, const char *below)
{
    if (method_bit(r->method) == M_GET && (below || strcmp(r->path, "/") == 0)) {
        redirect(a, r, "/");
        return;
    }
    char msg[2 * CFG_URL_BASE_MAX + 100];
    const char *base = app_config(a)->url_base;
    snprintf(msg, sizeof msg, "no such page: every address is below URL_BASE=%s (the page is %s/)", base, base);
    respond_status(r, 404, "not_found", msg);
}

/* The sender a refused request on an AUTH_WEBHOOK row came from: its app, else the manual
 * trigger. */
static arr_app route_sender(const route *rt, const char *path)
{
    arr_app app;
    if (rt->prefix && rt->webhook_body && webhook_app_of(path + strlen(rt->path), &app))
        return app;
    return APP_MANUAL;
}

size_t router_body_limit(void *ud, const http_request *r)
{
    app_t *a = ud;
    const char *path = below_base(a, r->path);
    if (!path)
        return app_config(a)->max_body;
    size_t first = 0, n = route_rows(path, &first);
    for (size_t i = first; i < first + n; i++)
        if (routes[i].webhook_body)
            return app_config(a)->max_webhook_body;
    return app_config(a)->max_body;
}

int router_match(const char *path, const char *method, unsigned *allowed, const char **miss)
{
    size_t first = 0, n = route_rows(path, &first);
    *allowed = 0;
    *miss = "no such page";
    if (n == 0)
        return -404;
    const char *rest = routes[first].prefix ? path + strlen(routes[first].path) : "";
    if (!routes[first].methods || (routes[first].accept && !routes[first].accept(rest))) {
        if (routes[first].miss)
            *miss = routes[first].miss;
        return -404;
    }
    unsigned bit = method_bit(method);
    int found = -405;
    for (size_t i = first; i < first + n; i++) {
        *allowed |= routes[i].methods;
        if (found < 0 && (routes[i].methods & bit))
            found = (int)i;
    }
    return found;
}

void router_handle(void *ud, http_request *r)
{
    app_t *a = ud;
    const char *below = below_base(a, r->path);
    if (!below || !*below) {
        answer_off_base(a, r, below);
        return;
    }
    /* The routes know nothing of the base: from here on, the request's path is what lies below
     * it (the request is complete, so nothing sets the path again). */
    r->path += below - r->path;
    unsigned allowed;
    const char *miss;
    int i = router_match(r->path, r->method, &allowed, &miss);
    if (i == -404) {
        respond_status(r, 404, "not_found", miss);
        return;
    }
    if (i == -405) {
        /* a browser on a webhook address (a row that takes webhook bodies) */
        arr_app app;
        size_t first = 0;
        bool hook = route_rows(r->path, &first) && routes[first].webhook_body && routes[first].prefix;
        if (hook && method_bit(r->method) == M_GET && webhook_app_of(r->path + strlen(routes[first].path), &app))
            explain_webhook_address(a, r, app);
        else
            method_not_allowed(r, allowed);
        return;
    }
    const route *rt = &routes[i];
    if (!authenticated(a, r, rt->auth)) {
        if (rt->auth == AUTH_WEBHOOK)
            sources_note_refused(app_sources(a), route_sender(rt, r->path), 401,
                                 "wrong username or password (WEBHOOK_USER, WEBHOOK_PASS)", wall_ms());
        return;
    }
    if (r->body_skipped) {
        /* Not reached: router_head_check hands over only what authentication refuses. */
        log_error("%s %s was handed over without its body; refusing it", r->method, log_esc(r->path));
        respond_status(r, 400, "bad_request", "request body not read");
        return;
    }
    if (rt->same_site && cross_site(a, r)) {
        respond_status(r, 403, "forbidden", "cross-site request refused");
        return;
    }
    rt->handle(a, r, rt->prefix ? r->path + strlen(rt->path) : "");
}

int router_head_check(void *ud, const http_request *r, const char **extra_headers, const char **message)
{
    app_t *a = ud;
    const config_t *c = app_config(a);
    unsigned allowed;
    const char *miss;
    const char *path = below_base(a, r->path);
    if (!path || !*path)
        return 0; /* router_handle answers it */
    int i = router_match(path, r->method, &allowed, &miss);
    if (i < 0 || routes[i].auth != AUTH_WEBHOOK || (!c->webhook_user && !c->webhook_pass))
        return 0;
    /* Wrong credentials go to the handler without their body, which refuses them as after one
     * (auth.c: the failed-login delay applies); none at all are turned away here. Either way the
     * webhook cannot hold a connection with a body it never finishes. */
    const char *user = c->webhook_user ? c->webhook_user : "";
    const char *pass = c->webhook_pass ? c->webhook_pass : "";
    if (http_header_get(r, "Authorization"))
        return auth_basic_ok(r, user, pass) ? 0 : HTTP_HEAD_WITHOUT_BODY;
    log_warn("webhook from %s refused before its body: no credentials (WEBHOOK_USER is set)",
             log_esc(r->remote_addr));
    app_metrics(a)->webhook_errors++;
    sources_note_refused(app_sources(a), route_sender(&routes[i], path), 401,
                         "sent no username and password (WEBHOOK_USER is set)", wall_ms());
    *extra_headers = "WWW-Authenticate: Basic realm=\"plex-servarr-sync webhooks\", charset=\"UTF-8\"\r\n";
    *message = "Authentication required";
    return 401;
}

const char *router_route_path(int i)
{
    return i >= 0 && (size_t)i < ARRAY_SIZE(routes) ? routes[i].path : NULL;
}
