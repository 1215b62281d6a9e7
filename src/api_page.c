/* api_page.c: the page's first hour beyond the queue and history views (api_page.h): did each
 * *arr app reach the daemon, what the first run needs to be told, and a person's actions on the
 * queue. */
#include "api_page.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "actions.h"
#include "http_json.h"
#include "json_arena.h"
#include "log.h"
#include "util.h"

/* A wall ms time as ISO 8601 UTC ("2025-11-24T18:03:11Z"), or null for 0 (never). */
static void add_iso(cJSON *o, const char *name, uint64_t ms)
{
    if (!ms) {
        cJSON_AddNullToObject(o, name);
        return;
    }
    char iso[32];
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
    cJSON_AddStringToObject(o, name, iso);
}

static void add_str_or_null(cJSON *o, const char *name, const char *v)
{
    if (v)
        cJSON_AddStringToObject(o, name, v);
    else
        cJSON_AddNullToObject(o, name);
}

/* ---- GET /api/sources ---- */

static cJSON *source_json(const app_t *a, const sources *seen, source_id id)
{
    const source_seen *x = &seen->v[id];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "app", source_name(id));
    if (x->last_at) {
        cJSON *ev = cJSON_AddObjectToObject(o, "last_event");
        cJSON_AddStringToObject(ev, "type", x->last_type ? x->last_type : "");
        add_str_or_null(ev, "title", x->last_title);
        add_iso(ev, "at", x->last_at);
    } else {
        cJSON_AddNullToObject(o, "last_event");
    }
    add_iso(o, "last_test_at", x->last_test_at);
    json_add_int(o, "events", x->events);
    if (x->refused_at) {
        cJSON *rf = cJSON_AddObjectToObject(o, "last_refused");
        add_iso(rf, "at", x->refused_at);
        json_add_int(rf, "status", x->refused_status);
        add_str_or_null(rf, "reason", x->refused_reason);
    } else {
        cJSON_AddNullToObject(o, "last_refused");
    }
    /* where it sends to, below URL_BASE (the page puts the browser's scheme and host before it) */
    const char *base = app_config(a)->url_base ? app_config(a)->url_base : "";
    char *path = id == SOURCE_MANUAL ? xasprintf("%s/triggers/manual", base)
                                     : xasprintf("%s/webhook/%s", base, source_name(id));
    cJSON_AddStringToObject(o, "path", path);
    free(path);
    return o;
}

void api_sources(app_t *a, http_request *r)
{
    cJSON *j = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(j, "sources");
    for (int i = 0; i < SOURCE_COUNT; i++)
        cJSON_AddItemToArray(arr, source_json(a, app_sources(a), (source_id)i));
    http_respond_cjson(r, 200, j);
}

/* ---- /api/stats' setup ---- */

/* The env file this daemon reads, as an absolute path: --env-file, else ./.env when there is
 * one; NULL when it reads none (the environment only). New string. */
static char *env_file_read(const app_t *a)
{
    const char *env_file;
    app_env(a, &env_file);
    const char *p = env_file ? env_file : access(".env", F_OK) == 0 ? ".env" : NULL;
    if (!p)
        return NULL;
    char real[PATH_MAX];
    return xstrdup(realpath(p, real) ? real : p);
}

/* The systemd unit this process runs in ("plex-servarr-sync" from ".../plex-servarr-sync.service"
 * in /proc/self/cgroup), else the package's unit name. New string. */
static char *unit_name(void)
{
    char line[512], *unit = NULL;
    FILE *f = fopen("/proc/self/cgroup", "re");
    while (f && !unit && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *last = strrchr(line, '/');
        size_t n = last ? strlen(last + 1) : 0;
        if (n > 8 && strcmp(last + 1 + n - 8, ".service") == 0)
            unit = xstrndup(last + 1, n - 8);
    }
    if (f)
        fclose(f);
    return unit ? unit : xstrdup("plex-servarr-sync");
}

/* How a person reloads the configuration of this process, where it runs. New string. */
static char *reload_hint(const app_t *a)
{
    const char *env_file;
    const env_map *env = app_env(a, &env_file);
    if (env_map_get(env, "NOTIFY_SOCKET") || env_map_get(env, "INVOCATION_ID")) {
        char *unit = unit_name();
        char *hint = xasprintf("systemctl reload %s", unit);
        free(unit);
        return hint;
    }
    if (access("/run/.containerenv", F_OK) == 0)
        return xstrdup("podman kill -s HUP <container>");
    if (access("/.dockerenv", F_OK) == 0 || getpid() == 1)
        return xstrdup("docker kill -s HUP <container>");
    return xasprintf("kill -HUP %ld", (long)getpid());
}

cJSON *api_setup_json(const app_t *a)
{
    cJSON *o = cJSON_CreateObject();
    char *env = env_file_read(a);
    add_str_or_null(o, "env_file", env);
    free(env);
    json_add_int(o, "targets", app_config(a)->n_targets);
    cJSON_AddStringToObject(o, "url_base", app_config(a)->url_base ? app_config(a)->url_base : "");
    char *hint = reload_hint(a);
    cJSON_AddStringToObject(o, "reload", hint);
    free(hint);
    cJSON_AddBoolToObject(o, "webhook_credentials", app_config(a)->webhook_user || app_config(a)->webhook_pass);
    return o;
}

/* ---- a person's actions on the queue ---- */

/* Who asked, for the log: the page's user and the client's address. */
static void who_asked(const app_t *a, const http_request *r, char *who, size_t len)
{
    snprintf(who, len, "%s from %s", log_esc(app_config(a)->manual_user ? app_config(a)->manual_user : "?"),
             log_esc(r->remote_addr));
}

void api_retry(app_t *a, http_request *r, int64_t id)
{
    char who[200];
    who_asked(a, r, who, sizeof who);
    int rc = actions_retry(a, id, who);
    if (rc == -ENOENT)
        http_respond_json_error(r, 404, "no such queue entry");
    else if (rc < 0)
        http_respond_json_error(r, 409, "only a parked entry can be retried");
    else {
        static const char body[] = "{\"status\":\"retrying\"}";
        http_respond(r, 202, "application/json", body, sizeof body - 1, NULL);
    }
}

void api_cancel(app_t *a, http_request *r, int64_t id)
{
    char who[200];
    who_asked(a, r, who, sizeof who);
    const char *why = NULL;
    int rc = actions_cancel(a, id, who, &why);
    if (rc == -ENOENT) {
        http_respond_json_error(r, 404, "no such queue entry");
        return;
    }
    if (rc < 0) {
        http_respond_json_error(r, 409, why ? why : "the entry cannot be cancelled now");
        return;
    }
    cJSON *j = cJSON_CreateObject();
    json_add_int(j, "cancelled", id);
    http_respond_cjson(r, 200, j);
}

void api_run_now(app_t *a, http_request *r, int64_t id)
{
    char who[200];
    who_asked(a, r, who, sizeof who);
    const char *why = NULL;
    uint64_t due = 0;
    int rc = actions_run_now(a, id, who, &due, &why);
    if (rc == -ENOENT) {
        http_respond_json_error(r, 404, "no such queue entry");
        return;
    }
    if (rc < 0) {
        http_respond_json_error(r, 409, why ? why : "the entry cannot run now");
        return;
    }
    cJSON *j = cJSON_CreateObject();
    json_add_int(j, "id", id);
    add_iso(j, "due", due);
    http_respond_cjson(r, 200, j);
}

void api_retry_parked(app_t *a, http_request *r)
{
    char who[200];
    who_asked(a, r, who, sizeof who);
    size_t n = actions_retry_parked(a, who);
    cJSON *j = cJSON_CreateObject();
    json_add_int(j, "retried", n);
    http_respond_cjson(r, 200, j);
}
