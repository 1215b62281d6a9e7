/* check.c: `--check`: the outside world the configuration points at, tried with the daemon's own
 * clients on a private loop, one line per check with what to fix. */
#include "check.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "dotenv.h"
#include "folders.h"
#include "fscheck.h"
#include "hostpaths.h"
#include "http_client.h"
#include "log.h"
#include "mapping.h"
#include "paths.h"
#include "rclone.h"
#include "target.h"
#include "trash.h"
#include "util.h"

#define CHECK_RCLONE_TIMEOUT_MS 15000u /* a check should not wait RCLONE_TIMEOUT (10 min) */
#define CHECK_MAX_RESPONSE (1024u * 1024u)

/* Three levels: OK; WARN, the daemon works as configured but something deserves a look (a
 * setup that a later rclone refuses, a place rclone or this host does not see the way the
 * configuration says); FAIL, it does not work. Only a FAIL makes the exit status 1. SKIP: a check
 * that needs an earlier one to pass. */
typedef enum { CK_OK, CK_WARN, CK_FAIL, CK_SKIP } result_kind;

typedef struct checker {
    uv_loop_t loop;
    httpc_t *h;
    fscheck_t *fs;
    const config_t *cfg;
    FILE *out;
    unsigned n_ok, n_warn, n_fail, n_skip;
    map_roots roots;   /* the places the configuration names, with the libraries as read */
    bool *mount_ok;    /* per mount: rclone answers the VFS calls */
} checker;

static void say(checker *c, result_kind k, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void say(checker *c, result_kind k, const char *name, const char *fmt, ...)
{
    static const char *const tag[] = {"OK", "WARN", "FAIL", "SKIP"};
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    /* One line per check, whatever the text holds. */
    for (char *p = text; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    fprintf(c->out, "%-5s %-16s %s\n", tag[k], name, text);
    fflush(c->out);
    if (k == CK_OK)
        c->n_ok++;
    else if (k == CK_WARN)
        c->n_warn++;
    else if (k == CK_FAIL)
        c->n_fail++;
    else
        c->n_skip++;
}

/* ---- files ----------------------------------------------------------------------------- */

const char *check_env_file_path(const char *env_file)
{
    if (env_file)
        return env_file;
    return access("./.env", F_OK) == 0 ? "./.env" : NULL;
}

bool check_world_readable(const char *path)
{
    struct stat st;
    return path && stat(path, &st) == 0 && (st.st_mode & S_IROTH);
}

/* The package's group exists only where the .deb (or the README's steps for a plain install) made
 * it; from a clone the daemon runs as whoever owns the file, or reads it through a group. */
const char *check_env_file_fix(const char *path, char *buf, size_t n)
{
    struct stat st;
    if (getgrnam("plex-servarr-sync"))
        snprintf(buf, n, "chown root:plex-servarr-sync and chmod 0640 it (the service's group reads it)");
    else if (path && stat(path, &st) == 0 && st.st_uid == geteuid())
        snprintf(buf, n, "chmod 0600 it (its owner, uid %u, runs the daemon and still reads it)", (unsigned)st.st_uid);
    else
        snprintf(buf, n, "chmod 0640 it, with a group of the user that runs the daemon (uid %u) as its group",
                 (unsigned)geteuid());
    return buf;
}

static void check_env_file(checker *c, const char *env_file)
{
    const char *path = check_env_file_path(env_file);
    if (!path) {
        say(c, CK_OK, "env-file", "no env file (variables come from the environment only)");
        return;
    }
    if (!check_world_readable(path)) {
        say(c, CK_OK, "env-file", "%s is not readable by other users", log_esc(path));
        return;
    }
    static const char *const secrets[] = {"PLEX_TOKEN", "JELLYFIN_TOKEN", "EMBY_TOKEN", "MEDIA_SERVERS",
                                          "RCLONE_RC_PASS", "RCLONE_MOUNTS", "WEBHOOK_PASS", "MANUAL_PASS"};
    env_map vars = {0};
    char err[256];
    const char *secret = NULL;
    if (dotenv_load(path, &vars, err, sizeof err) == 0)
        for (size_t i = 0; i < ARRAY_SIZE(secrets) && !secret; i++) {
            const char *v = env_map_get(&vars, secrets[i]);
            if (v && *v)
                secret = secrets[i];
        }
    env_map_free(&vars);
    if (secret) {
        /* It works, and the daemon reads it: a warning, with the fix that fits this host. */
        char fix[256];
        say(c, CK_WARN, "env-file", "%s is readable by every user and sets %s: %s", log_esc(path), secret,
            check_env_file_fix(path, fix, sizeof fix));
    } else
        say(c, CK_OK, "env-file", "%s is readable by every user, but sets no secret", log_esc(path));
}

/* ---- synchronous HTTP on the private loop -------------------------------------------------- */

typedef struct answer {
    bool done;
    httpc_error error;
    httpc_tls tls;
    long status;
    char *body;
    size_t body_len;
    char *message;
} answer;

static void answer_free(answer *a)
{
    free(a->body);
    free(a->message);
    memset(a, 0, sizeof *a);
}

static void on_answer(void *ud, const httpc_result *r)
{
    answer *a = ud;
    a->done = true;
    a->error = r->error;
    a->tls = r->tls;
    a->status = r->status;
    a->body = xstrndup(r->body ? r->body : "", r->body ? r->body_len : 0);
    a->body_len = r->body ? r->body_len : 0;
    a->message = xstrdup(r->message ? r->message : "");
}

/* Run the loop until *done (or nothing is left that could set it). */
static void run_until(checker *c, const bool *done)
{
    while (!*done)
        if (uv_run(&c->loop, UV_RUN_ONCE) == 0 && !*done)
            break;
}

static int http_sync(checker *c, const httpc_opts *o, answer *a)
{
    memset(a, 0, sizeof *a);
    httpc_req *req = NULL;
    int rc = httpc_request(c->h, o, on_answer, a, &req);
    if (rc < 0)
        return rc;
    run_until(c, &a->done);
    if (!a->done) {
        httpc_cancel(req);
        return -EIO;
    }
    return 0;
}

/* A URL for display: no user:password@ part. */
static char *url_shown(const char *url)
{
    const char *scheme = strstr(url, "://");
    const char *host = scheme ? scheme + 3 : url;
    const char *slash = strchr(host, '/');
    const char *at = strchr(host, '@');
    if (at && (!slash || at < slash))
        return xasprintf("%.*s%s", (int)(host - url), url, at + 1);
    return xstrdup(url);
}

/* ---- media servers --------------------------------------------------------------------- */

/* The check's name for one of t's checks: the `plex` target of PLEX_URL keeps the names older
 * versions printed ("plex", "plex-token", "plex-libraries", "mapping"); others are prefixed by
 * their own name. */
static const char *check_name(const cfg_target *t, const char *what, char *buf, size_t n)
{
    bool legacy = strcmp(t->origin, "PLEX_URL") == 0;
    if (!*what)
        snprintf(buf, n, "%s", t->name);
    else if (legacy && strcmp(what, "mapping") == 0)
        snprintf(buf, n, "mapping");
    else
        snprintf(buf, n, "%s-%s", t->name, what);
    return buf;
}

/* GET /identity: no token needed, so it tells "wrong URL" apart from "wrong token". */
static bool check_plex_identity(checker *c, const cfg_target *t, const char *shown)
{
    const config_t *cfg = c->cfg;
    char nm[64];
    const char *name = check_name(t, "", nm, sizeof nm);
    char *url = xasprintf("%s/identity", t->url);
    char *hid = xasprintf("X-Plex-Client-Identifier: %s",
                          cfg->plex_identifier && *cfg->plex_identifier ? cfg->plex_identifier : "plex-servarr-sync");
    const char *headers[] = {"Accept: application/json", hid, "X-Plex-Product: plex-servarr-sync", NULL};
    httpc_opts o = {.method = "GET", .url = url, .headers = headers, .timeout_ms = t->timeout_ms,
                    .max_response_bytes = 64u * 1024u, .ca_file = t->ca_file};
    answer a;
    int rc = http_sync(c, &o, &a);
    free(url);
    free(hid);
    bool ok = false;
    if (rc < 0) {
        say(c, CK_FAIL, name, "cannot send a request to %s (%s): check %s", log_esc(shown), strerror(-rc), t->origin);
    } else if (a.error == HTTPC_ERR_TLS) {
        char fix[400];
        httpc_tls_advice(&(httpc_result){.error = a.error, .tls = a.tls}, t->url, t->origin, t->ca_file, t->ca_var,
                         fix, sizeof fix);
        say(c, CK_FAIL, name, "no answer from %s (%s: %s): %s", log_esc(shown), httpc_error_name(a.error),
            log_esc(a.message), fix);
    } else if (a.error != HTTPC_OK) {
        say(c, CK_FAIL, name, "no answer from %s (%s: %s): check %s and that Plex is running and reachable "
            "from this host", log_esc(shown), httpc_error_name(a.error), log_esc(a.message), t->origin);
    } else if (a.status >= 300 && a.status < 400) {
        say(c, CK_FAIL, name, "%s answered HTTP %ld (a redirect, which the daemon does not follow): set %s "
            "to the address it redirects to (https?)", log_esc(shown), a.status, t->origin);
    } else if (a.status < 200 || a.status >= 300) {
        say(c, CK_FAIL, name, "%s answered HTTP %ld on /identity, which Plex answers without a token: %s "
            "does not point at Plex Media Server (a proxy? a wrong port?)", log_esc(shown), a.status, t->origin);
    } else {
        cJSON *j = cJSON_ParseWithLength(a.body, a.body_len);
        const cJSON *mc = cJSON_GetObjectItemCaseSensitive(j, "MediaContainer");
        const cJSON *ver = cJSON_GetObjectItemCaseSensitive(mc, "version");
        const cJSON *mid = cJSON_GetObjectItemCaseSensitive(mc, "machineIdentifier");
        if (cJSON_IsObject(mc)) {
            say(c, CK_OK, name, "%s is Plex Media Server %s (machine %s)", log_esc(shown),
                cJSON_IsString(ver) ? log_esc(ver->valuestring) : "(version not given)",
                cJSON_IsString(mid) ? log_esc(mid->valuestring) : "?");
            ok = true;
        } else if (strstr(a.body, "<MediaContainer")) {
            say(c, CK_OK, name, "%s is Plex Media Server (it answered in XML)", log_esc(shown));
            ok = true;
        } else {
            say(c, CK_FAIL, name, "%s answered /identity with something that is not Plex's: %s does not "
                "point at Plex Media Server", log_esc(shown), t->origin);
        }
        cJSON_Delete(j);
    }
    answer_free(&a);
    return ok;
}

typedef struct list_answer {
    bool done;
    target_result r;
    char *message;
    media_libraries libs;
} list_answer;

static void on_list(void *ud, const target_result *r, media_libraries *libs)
{
    list_answer *s = ud;
    s->done = true;
    s->r = *r;
    s->message = xstrdup(r->message ? r->message : "");
    s->r.message = s->message;
    if (libs) {
        s->libs = *libs;
        memset(libs, 0, sizeof *libs);
    }
}

/* The wording of a refused library list, per kind. */
static void say_list_refused(checker *c, const cfg_target *t, const char *name, const list_answer *s)
{
    bool no_token = !*t->token;
    if (t->kind == TARGET_PLEX && no_token)
        say(c, CK_FAIL, name, "Plex answered HTTP %ld on /library/sections: %s is not set; set it to a token of "
            "the server's owner (Plex Web: any item > Get Info > View XML: X-Plex-Token in the URL)",
            s->r.http_status, t->token_var);
    else if (t->kind == TARGET_PLEX)
        say(c, CK_FAIL, name, "Plex answered HTTP %ld on /library/sections: %s is wrong, expired or has no access "
            "to this server; set it to a token of the server's owner", s->r.http_status, t->token_var);
    else if (s->r.http_status == 403)
        say(c, CK_FAIL, name, "%s answered HTTP 403 on /Library/VirtualFolders: the key in %s is not an "
            "administrator's; create one under Dashboard > API Keys", target_kind_name(t->kind), t->token_var);
    else
        say(c, CK_FAIL, name, "%s answered HTTP %ld on /Library/VirtualFolders: %s is wrong; create a key under "
            "Dashboard > API Keys", target_kind_name(t->kind), s->r.http_status, t->token_var);
}

/* The token on the library list; on success *libs holds the list. */
static bool check_target_token(checker *c, const cfg_target *t, media_libraries *libs)
{
    char nm[64];
    const char *name = check_name(t, "token", nm, sizeof nm);
    list_answer s = {0};
    target_op *op = NULL;
    if (target_list(c->h, t, c->cfg->plex_identifier, on_list, &s, &op) < 0) {
        say(c, CK_FAIL, name, "cannot send the request: %s, its token or PLEXAPI_HEADER_IDENTIFIER holds "
            "characters a request cannot carry", t->origin);
        return false;
    }
    run_until(c, &s.done);
    if (!s.done) {
        target_cancel(op);
        say(c, CK_FAIL, name, "the request to %s never ended", t->name);
        return false;
    }
    bool ok = false;
    switch (s.r.status) {
    case TARGET_RES_OK:
        if (t->kind == TARGET_PLEX && !*t->token)
            say(c, CK_OK, name, "Plex lists its libraries without a token (%s is not set)", t->token_var);
        else
            say(c, CK_OK, name, "%s accepted %s on its library list", t->name, t->token_var);
        *libs = s.libs;
        memset(&s.libs, 0, sizeof s.libs);
        ok = true;
        break;
    case TARGET_RES_AUTH:
        say_list_refused(c, t, name, &s);
        break;
    case TARGET_RES_BAD:
        if (s.r.http_status >= 200 && s.r.http_status < 300)
            say(c, CK_FAIL, name, "the library list could not be read (%s): is %s really %s?", log_esc(s.message),
                t->origin, target_kind_name(t->kind));
        else
            say(c, CK_FAIL, name, "%s refused the library list: %s", t->name, log_esc(s.message));
        break;
    default:
        say(c, CK_FAIL, name, "reading the library list failed: %s (check %s)", log_esc(s.message), t->origin);
        break;
    }
    free(s.message);
    media_libraries_free(&s.libs);
    return ok;
}

static void check_target_libraries(checker *c, const cfg_target *t, const media_libraries *libs)
{
    char nm[64];
    const char *name = check_name(t, "libraries", nm, sizeof nm);
    if (libs->n == 0) {
        say(c, CK_FAIL, name, "%s has no libraries: add the media folders as libraries there first", t->name);
        return;
    }
    buf_t b;
    buf_init(&b, 1500);
    buf_printf(&b, "%zu librar%s:", libs->n, libs->n == 1 ? "y" : "ies");
    for (size_t i = 0; i < libs->n; i++) {
        const media_library *l = &libs->v[i];
        if (buf_printf(&b, "%s %s '%s' (%s)", i ? ";" : "", log_esc(l->id), log_esc(l->title),
                       log_esc(l->type ? l->type : "?")) < 0)
            break;
        for (size_t k = 0; k < l->n_locations; k++)
            if (buf_printf(&b, " %s", log_esc(l->locations[k])) < 0)
                break;
    }
    say(c, CK_OK, name, "%s", b.data);
    buf_free(&b);
}

/* Where a target path prefix lands: inside library locations (in), above some (holds), or
 * neither. Writes the library ids to ids (for the message). */
static void prefix_place(const media_libraries *libs, const char *prefix, const char *only_id, bool *in, bool *holds,
                         char *ids, size_t idslen)
{
    *in = *holds = false;
    ids[0] = '\0';
    size_t o = 0;
    for (size_t i = 0; i < libs->n; i++) {
        const media_library *l = &libs->v[i];
        if (only_id && strcmp(l->id, only_id) != 0)
            continue;
        bool hit = false;
        for (size_t k = 0; k < l->n_locations; k++) {
            if (paths_has_prefix(prefix, l->locations[k], false)) {
                *in = true;
                hit = true;
            } else if (paths_has_prefix(l->locations[k], prefix, false)) {
                *holds = true;
                hit = true;
            }
        }
        if (hit && o + strlen(l->id) + 4 < idslen)
            o += (size_t)snprintf(ids + o, idslen - o, "%s%s", o ? ", " : "", l->id);
    }
}


static void check_section_mapping(checker *c, const cfg_target *t, const media_libraries *libs, const char *name)
{
    char ids[256], id[24];
    for (size_t i = 0; i < t->n_section_map; i++) {
        const cfg_section_map *m = &t->section_map[i];
        snprintf(id, sizeof id, "%ld", m->section);
        if (!media_libraries_find(libs, id)) {
            say(c, CK_FAIL, name, "SECTION_MAPPING sends '%s' to section %ld, which %s does not have: use a key "
                "listed under its libraries", log_esc(m->prefix), m->section, t->name);
            continue;
        }
        bool in, holds;
        prefix_place(libs, m->prefix, id, &in, &holds, ids, sizeof ids);
        if (in || holds)
            say(c, CK_OK, name, "SECTION_MAPPING '%s' -> section %ld matches its folders", log_esc(m->prefix),
                m->section);
        else
            say(c, CK_FAIL, name, "SECTION_MAPPING sends '%s' to section %ld, but that library's folders do not "
                "hold it: Plex ignores such scans; fix SECTION_MAPPING (or PATH_REPLACEMENTS)",
                log_esc(m->prefix), m->section);
    }
}

static void check_mapping(checker *c, const cfg_target *t, const media_libraries *libs)
{
    char nm[64], ids[256];
    const char *name = check_name(t, "mapping", nm, sizeof nm);
    const char *var = folders_replacements_var(t);
    if (t->path_repl.n == 0 && t->n_section_map == 0) {
        say(c, CK_OK, name, "no path replacements: *arr paths are sent to %s as they are", t->name);
        return;
    }
    for (size_t i = 0; i < t->path_repl.n; i++) {
        const cfg_replacement *r = &t->path_repl.v[i];
        bool in, holds;
        prefix_place(libs, r->to, NULL, &in, &holds, ids, sizeof ids);
        /* Plex calls its libraries sections */
        const char *lib = t->kind == TARGET_PLEX ? "section" : "library";
        if (in)
            say(c, CK_OK, name, "%s '%s' -> '%s' lies in %s %s of %s", var, log_esc(r->from), log_esc(r->to), lib,
                ids, t->name);
        else if (holds)
            say(c, CK_OK, name, "%s '%s' -> '%s' holds %s %s of %s", var, log_esc(r->from), log_esc(r->to), lib,
                ids, t->name);
        else
            say(c, CK_FAIL, name, "%s '%s' -> '%s' falls in no library of %s: folders mapped there are not sent "
                "to it; make the target the path %s shows for those files (see its libraries)", var,
                log_esc(r->from), log_esc(r->to), t->name, t->name);
    }
    check_section_mapping(c, t, libs, name);
}

/* PLEX_EMPTY_TRASH (or empty_trash): per section, whether its trash could be emptied. */
static void check_trash(checker *c, const cfg_target *t, const media_libraries *libs)
{
    char nm[64];
    const char *name = check_name(t, "trash", nm, sizeof nm);
    if (!t->empty_trash)
        return;
    for (size_t i = 0; i < libs->n; i++) {
        char why[600];
        if (trash_guarded(c->cfg, t, &libs->v[i], why, sizeof why))
            say(c, CK_OK, name, "section %s '%s': trash may be emptied after a delete, rename or upgrade (%s)",
                log_esc(libs->v[i].id), log_esc(libs->v[i].title), why);
        else
            say(c, CK_OK, name, "section %s '%s': trash is never emptied: %s", log_esc(libs->v[i].id),
                log_esc(libs->v[i].title), why);
    }
}

static void check_target(checker *c, const cfg_target *t)
{
    char nm[64];
    char *shown = url_shown(t->url);
    bool up = t->kind != TARGET_PLEX || check_plex_identity(c, t, shown);
    free(shown);
    if (!up) {
        say(c, CK_SKIP, check_name(t, "token", nm, sizeof nm), "needs %s to answer", t->name);
        return;
    }
    media_libraries libs = {0};
    if (!check_target_token(c, t, &libs)) {
        say(c, CK_SKIP, check_name(t, "mapping", nm, sizeof nm), "needs %s's library list", t->name);
        return;
    }
    check_target_libraries(c, t, &libs);
    check_mapping(c, t, &libs);
    check_trash(c, t, &libs);
    map_roots_add_libraries(&c->roots, t, &libs); /* for the rclone and host checks below */
    media_libraries_free(&libs);
}

static void check_targets(checker *c)
{
    const config_t *cfg = c->cfg;
    if (cfg->n_targets == 0) {
        say(c, CK_FAIL, "plex", "no media server is configured: set PLEX_URL (e.g. http://127.0.0.1:32400) and "
            "PLEX_TOKEN, or JELLYFIN_URL, EMBY_URL or MEDIA_SERVERS");
        say(c, CK_SKIP, "plex-token", "needs PLEX_URL");
        return;
    }
    for (size_t i = 0; i < cfg->n_targets; i++)
        check_target(c, &cfg->targets[i]);
}

/* ---- rclone ---------------------------------------------------------------------------- */

/* One RC call; body NULL sends "{}". */
static int rc_call(checker *c, const cfg_mount *m, const char *method, const char *body, answer *a)
{
    char *url = xasprintf("%s/%s", m->url, method);
    const char *headers[] = {"Content-Type: application/json", NULL};
    uint64_t t = c->cfg->rclone_timeout_ms;
    if (!body)
        body = "{}";
    httpc_opts o = {.method = "POST", .url = url, .headers = headers, .body = body, .body_len = strlen(body),
                    .user = m->user, .pass = m->user ? (m->pass ? m->pass : "") : NULL,
                    .timeout_ms = t && t < CHECK_RCLONE_TIMEOUT_MS ? t : CHECK_RCLONE_TIMEOUT_MS,
                    .max_response_bytes = CHECK_MAX_RESPONSE};
    int rc = http_sync(c, &o, a);
    free(url);
    return rc;
}

/* rclone's own error text from an answer, escaped. */
static const char *rc_error(const answer *a)
{
    cJSON *j = cJSON_ParseWithLength(a->body, a->body_len);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    const char *s = log_esc(cJSON_IsString(e) ? e->valuestring : a->body);
    cJSON_Delete(j);
    return s;
}

static const char *auth_fix(const cfg_mount *m)
{
    return m->user ? "RCLONE_RC_USER/RCLONE_RC_PASS do not match rclone's --rc-user/--rc-pass"
                   : "rclone wants credentials: set RCLONE_RC_USER/RCLONE_RC_PASS to its --rc-user/--rc-pass";
}

/* The "version" rclone's core/version gives (which needs no credentials), or "" (new string). */
static char *rclone_version(checker *c, const cfg_mount *m)
{
    answer a;
    char *v = NULL;
    if (rc_call(c, m, "core/version", NULL, &a) == 0 && a.error == HTTPC_OK && a.status == 200) {
        cJSON *j = cJSON_ParseWithLength(a.body, a.body_len);
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "version");
        if (cJSON_IsString(s))
            v = xstrdup(log_esc(s->valuestring));
        cJSON_Delete(j);
    }
    answer_free(&a);
    return v ? v : xstrdup("");
}


/* A VFS call of mount m about dir ("" = none: the whole VFS), with the mount's fs= when set. */
static int rc_vfs_call(checker *c, const cfg_mount *m, const char *method, const char *dir, answer *a)
{
    cJSON *o = cJSON_CreateObject();
    if (*dir)
        cJSON_AddStringToObject(o, "dir", dir);
    if (m->fs)
        cJSON_AddStringToObject(o, "fs", m->fs);
    char *body = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    int rc = rc_call(c, m, method, body, a);
    cJSON_free(body);
    return rc;
}
/* rclone refused rc/noopauth with 403: it runs with --rc alone, neither --rc-user/--rc-pass nor
 * --rc-no-auth. rclone before 1.74 still lets the VFS calls through, so the daemon works until
 * rclone is upgraded: a vfs/forget of a name nothing has cached (a no-op) tells which. `why` is
 * rclone's text. Returns whether the VFS calls work. */
static bool check_rclone_bare(checker *c, const cfg_mount *m, const char *where, const char *why)
{
    static const char fix[] = "start rclone with --rc-no-auth (the RC address is then open to every local user), "
                              "or with --rc-user/--rc-pass and set RCLONE_RC_USER/RCLONE_RC_PASS";
    char *shown_why = xstrdup(why);
    answer a;
    int rc = rc_vfs_call(c, m, "vfs/forget", ".plex-servarr-sync-check", &a);
    /* Anything but a 401/403 got past rclone's authentication (a 500 naming the fs included). */
    bool works = rc == 0 && a.error == HTTPC_OK && a.status != 401 && a.status != 403;
    answer_free(&a);
    if (works) {
        char *v = rclone_version(c, m);
        say(c, CK_WARN, "rclone", "%s: rclone%s%s runs with --rc alone (no --rc-user/--rc-pass, no --rc-no-auth): "
            "it still accepts the VFS calls, but rclone 1.74 and later refuse them (HTTP 403); %s", where,
            *v ? " " : "", v, fix);
        free(v);
    } else {
        say(c, CK_FAIL, "rclone", "%s: HTTP 403 to rc/noopauth and to vfs/forget (%s): rclone runs with neither "
            "--rc-user/--rc-pass nor --rc-no-auth, and refuses the VFS calls then (rclone 1.74 and later); %s",
            where, shown_why, fix);
    }
    free(shown_why);
    return works;
}

/* rc/noopauth needs authentication, so an OK proves the credentials (or --rc-no-auth). `where`
 * names the mount and its URL. */
static bool check_rclone_auth(checker *c, const cfg_mount *m, const char *where, bool *reached)
{
    answer a;
    *reached = false;
    if (rc_call(c, m, "rc/noopauth", NULL, &a) < 0) {
        say(c, CK_FAIL, "rclone", "%s: cannot send a request: check RCLONE_RC_URL", where);
        return false;
    }
    bool ok = false;
    if (a.error != HTTPC_OK) {
        say(c, CK_FAIL, "rclone", "%s: no answer (%s: %s): check RCLONE_RC_URL and that rclone runs with --rc "
            "--rc-addr", where, httpc_error_name(a.error), log_esc(a.message));
    } else if (a.status >= 200 && a.status < 300) {
        *reached = true;
        ok = true;
        if (m->user)
            say(c, CK_OK, "rclone", "%s: rclone accepts RCLONE_RC_USER/RCLONE_RC_PASS (rc/noopauth)", where);
        else
            say(c, CK_OK, "rclone", "%s: rclone runs with --rc-no-auth (rc/noopauth answered without credentials)",
                where);
    } else if (a.status == 401) {
        *reached = true;
        say(c, CK_FAIL, "rclone", "%s: HTTP 401 to rc/noopauth: %s", where, auth_fix(m));
    } else if (a.status == 403) {
        *reached = true;
        ok = check_rclone_bare(c, m, where, rc_error(&a));
    } else if (a.status == 404) {
        *reached = true;
        say(c, CK_FAIL, "rclone", "%s: HTTP 404 to rc/noopauth: not rclone's remote control; set RCLONE_RC_URL to "
            "the address given to --rc-addr", where);
    } else {
        *reached = true;
        say(c, CK_FAIL, "rclone", "%s: HTTP %ld to rc/noopauth: %s", where, a.status, rc_error(&a));
    }
    answer_free(&a);
    return ok;
}

/* vfs/list: the VFSes this rclone runs, and whether the configured fs (or none) picks one. */
static void check_rclone_vfs(checker *c, const cfg_mount *m, const char *where)
{
    answer a;
    if (rc_call(c, m, "vfs/list", NULL, &a) < 0 || a.error != HTTPC_OK) {
        say(c, CK_FAIL, "rclone-vfs", "%s: no answer to vfs/list: check RCLONE_RC_URL", where);
        answer_free(&a);
        return;
    }
    if (a.status == 401 || a.status == 403) {
        say(c, CK_FAIL, "rclone-vfs", "%s: HTTP %ld to vfs/list: %s", where, a.status, auth_fix(m));
        answer_free(&a);
        return;
    }
    cJSON *j = a.status >= 200 && a.status < 300 ? cJSON_ParseWithLength(a.body, a.body_len) : NULL;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "vfses");
    if (!cJSON_IsArray(list)) {
        say(c, CK_FAIL, "rclone-vfs", "%s: vfs/list answered HTTP %ld and no list: %s", where, a.status,
            rc_error(&a));
        cJSON_Delete(j);
        answer_free(&a);
        return;
    }
    buf_t names;
    buf_init(&names, 1200);
    size_t n = 0;
    bool found = false;
    const cJSON *it;
    cJSON_ArrayForEach(it, list)
    {
        if (!cJSON_IsString(it))
            continue;
        buf_printf(&names, "%s'%s'", n ? ", " : "", log_esc(it->valuestring));
        if (m->fs && strcmp(m->fs, it->valuestring) == 0)
            found = true;
        n++;
    }
    static const char fs_var[] = "RCLONE_FS (or this mount's \"fs\" in RCLONE_MOUNTS)";
    if (n == 0)
        say(c, CK_FAIL, "rclone-vfs", "%s: no VFS active (an rclone rcd without a mount?): set RCLONE_RC_URL to the "
            "--rc-addr of the rclone mount that serves this path", where);
    else if (m->fs && found)
        say(c, CK_OK, "rclone-vfs", "%s: VFS '%s' is active (vfs/list)", where, log_esc(m->fs));
    else if (m->fs)
        say(c, CK_FAIL, "rclone-vfs", "%s: %s = '%s' is not active in this rclone; set it to one of: %s", where,
            fs_var, log_esc(m->fs), names.data);
    else if (n == 1)
        say(c, CK_OK, "rclone-vfs", "%s: one VFS active, %s (vfs/list); RCLONE_FS may stay unset", where,
            names.data);
    else
        say(c, CK_FAIL, "rclone-vfs", "%s: %zu VFSes active (%s): set %s to the one mounted here", where, n,
            names.data, fs_var);
    buf_free(&names);
    cJSON_Delete(j);
    answer_free(&a);
}

static void check_rclone(checker *c)
{
    const config_t *cfg = c->cfg;
    if (!cfg->use_rclone) {
        say(c, CK_OK, "rclone", "USE_RCLONE=false: the rclone step is skipped");
        return;
    }
    if (cfg->n_mounts == 0) {
        say(c, CK_OK, "rclone", "no mount configured (RCLONE_RC_URL / RCLONE_MOUNTS): the rclone step is skipped");
        return;
    }
    for (size_t i = 0; i < cfg->n_mounts; i++) {
        const cfg_mount *m = &cfg->mounts[i];
        char *shown = url_shown(m->url);
        /* With several mounts, every line says which one it is about. */
        char *where = xasprintf("mount %s (%s)", log_esc(m->root), log_esc(shown));
        bool reached = false;
        bool ok = check_rclone_auth(c, m, where, &reached);
        c->mount_ok[i] = ok;
        if (ok || reached)
            check_rclone_vfs(c, m, where);
        else
            say(c, CK_SKIP, "rclone-vfs", "%s: needs rclone to answer", where);
        free(shown);
        free(where);
    }
}

/* ---- rclone's view of the configured places ------------------------------------------------ */

/* A non-recursive vfs/refresh of dir ("" = the VFS root, sent without a dir). Returns 1 when
 * rclone lists it, 0 when it says "file does not exist", -1 otherwise (*err: why, new string). */
static int vfs_refresh(checker *c, const cfg_mount *m, const char *dir, char **err)
{
    answer a;
    int rc = rc_vfs_call(c, m, "vfs/refresh", dir, &a);
    if (rc < 0) {
        *err = xstrdup("cannot send the request");
        return -1;
    }
    httpc_result res = {.error = a.error, .status = a.status, .body = a.body, .body_len = a.body_len,
                        .message = a.message};
    char msg[600];
    int missing = 0;
    rclone_status st = rclone_classify(&res, dir, &missing, msg, sizeof msg, NULL);
    answer_free(&a);
    if (st == RCLONE_RES_OK)
        return 1;
    if (missing)
        return 0;
    *err = xstrdup(msg);
    return -1;
}

/* Whether rclone's VFS has dir: refreshed alone first; when a parent's cached listing lacks it,
 * the root and each ancestor from the top down, then dir again (the daemon's own walk, without
 * recursion). */
static int vfs_has(checker *c, const cfg_mount *m, const char *dir, char **err)
{
    int r = vfs_refresh(c, m, dir, err);
    if (r != 0 || !*dir)
        return r;
    r = vfs_refresh(c, m, "", err);
    char *up = xstrdup(dir);
    for (char *p = strchr(up, '/'); r == 1 && p; p = strchr(p + 1, '/')) {
        *p = '\0';
        r = vfs_refresh(c, m, up, err);
        *p = '/';
    }
    free(up);
    return r == 1 ? vfs_refresh(c, m, dir, err) : r;
}

/* dir is missing from m's VFS: when a shorter tail of it is there ("media/tv" missing, "tv"
 * there), the mount root is that many components too high. Returns the hint naming the tail and
 * the likely root, or "" (new string). */
static char *likely_root(checker *c, const cfg_mount *m, const char *dir)
{
    for (const char *tail = strchr(dir, '/'); tail; tail = strchr(tail + 1, '/')) {
        char *err = NULL;
        int has = vfs_has(c, m, tail + 1, &err);
        free(err);
        if (has == 1)
            return xasprintf(" (rclone does have '%s': the mount root is likely %s/%.*s)", tail + 1,
                             strcmp(m->root, "/") == 0 ? "" : m->root, (int)(tail - dir), dir);
        if (has < 0)
            break;
    }
    return xstrdup("");
}

static void check_rclone_place(checker *c, const map_root *r)
{
    const config_t *cfg = c->cfg;
    folder_paths fp;
    if (paths_resolve(cfg, r->arr, &fp, NULL) < 0)
        return; /* the mapping checks name a path that cannot map */
    const char *roots_var = mapping_mount_var(cfg);
    char *roots = mapping_mount_roots(cfg);
    if (!fp.mount && r->kind == MAP_ROOT_RCLONE)
        say(c, CK_FAIL, "rclone-map", "%s lies outside every rclone mount root (%s): its folders would skip the "
            "rclone step; make the target a path under a mount root, or fix %s", log_esc(r->what),
            log_esc(roots), roots_var);
    else if (!fp.mount)
        say(c, CK_WARN, "rclone-map", "'%s' (%s) is '%s' for rclone, outside every rclone mount root (%s): its "
            "folders skip the rclone step; right for a local disk, else check %s / RCLONE_PATH_REPLACEMENTS",
            log_esc(r->arr), log_esc(r->what), log_esc(fp.rclone), log_esc(roots), roots_var);
    else if (!c->mount_ok[fp.mount - cfg->mounts])
        say(c, CK_SKIP, "rclone-map", "'%s': needs rclone at mount %s to answer", log_esc(r->arr),
            log_esc(fp.mount->root));
    else {
        char *err = NULL;
        int has = vfs_has(c, fp.mount, fp.vfs_dir, &err);
        if (has == 1)
            say(c, CK_OK, "rclone-map", "'%s' (%s) is '%s' in rclone's VFS of mount %s, which rclone lists",
                log_esc(r->arr), log_esc(r->what), *fp.vfs_dir ? log_esc(fp.vfs_dir) : "its root",
                log_esc(fp.mount->root));
        else if (has == 0) {
            char *hint = likely_root(c, fp.mount, fp.vfs_dir);
            say(c, CK_FAIL, "rclone-map", "'%s' (%s) is '%s' in rclone's VFS of mount %s, which rclone does not "
                "have: %s must be where rclone mounts the remote's root%s, and RCLONE_PATH_REPLACEMENTS must turn "
                "*arr paths into paths under it; check %s / RCLONE_PATH_REPLACEMENTS", log_esc(r->arr),
                log_esc(r->what), log_esc(fp.vfs_dir), log_esc(fp.mount->root), roots_var, log_esc(hint),
                roots_var);
            free(hint);
        } else
            say(c, CK_FAIL, "rclone-map", "'%s' (%s): vfs/refresh of '%s' on mount %s failed: %s", log_esc(r->arr),
                log_esc(r->what), log_esc(fp.vfs_dir), log_esc(fp.mount->root), log_esc(err));
        free(err);
    }
    free(roots);
    folder_paths_free(&fp);
}

/* Every configured place that a mount root holds must exist in that mount's VFS: a wrong
 * RCLONE_MOUNT_ROOT turns every folder into a dir rclone does not have. */
static void check_rclone_map(checker *c)
{
    if (!c->cfg->use_rclone || c->cfg->n_mounts == 0)
        return;
    for (size_t i = 0; i < c->roots.n; i++)
        check_rclone_place(c, &c->roots.v[i]);
}

/* ---- what this host sees (MINIMUM_AGE, ANCHOR_FILES) ------------------------------------------ */

typedef struct host_seen {
    checker *c;
    bool done;
    buf_t seen; /* the places this host sees, for the one OK line */
    size_t n_seen;
} host_seen;

static void on_host_place(void *ud, const hostpath_seen *s)
{
    host_seen *h = ud;
    if (!s->exists) {
        char *msg = hostpaths_advice(s);
        say(h->c, CK_WARN, "host-paths", "%s", log_esc(msg));
        free(msg);
    } else if (h->n_seen++ < 8) {
        buf_printf(&h->seen, "%s'%s' as '%s'", h->n_seen > 1 ? ", " : "", log_esc(s->arr), log_esc(s->host));
    }
}

static void on_host_done(void *ud) { ((host_seen *)ud)->done = true; }

static void check_host_paths(checker *c)
{
    if (!hostpaths_wanted(c->cfg) || c->roots.n == 0)
        return;
    host_seen h = {.c = c};
    buf_init(&h.seen, 2000);
    hostpaths_op *op = NULL;
    if (hostpaths_probe(c->fs, c->cfg, &c->roots, on_host_place, on_host_done, &h, &op) < 0) {
        say(c, CK_FAIL, "host-paths", "the host paths cannot be checked");
        buf_free(&h.seen);
        return;
    }
    run_until(c, &h.done);
    if (!h.done)
        hostpaths_cancel(op);
    if (h.n_seen)
        say(c, CK_OK, "host-paths", "this host sees the configured places (MINIMUM_AGE and ANCHOR_FILES stat "
            "them there): %s%s", h.seen.data, h.n_seen > 8 ? ", ..." : "");
    buf_free(&h.seen);
}

/* ---- state directory ---------------------------------------------------------------------- */

static void check_state_dir(checker *c)
{
    const char *dir = c->cfg->state_dir;
    bool fallback = strcmp(dir, "./state") == 0 && !getenv("STATE_DIRECTORY");
    const char *hint = fallback ? " (the default without STATE_DIR; under systemd it is StateDirectory=, "
                                  "/var/lib/plex-servarr-sync)"
                                : "";
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            say(c, CK_FAIL, "state-dir", "STATE_DIR %s is not a directory: point STATE_DIR at a directory%s",
                log_esc(dir), hint);
            return;
        }
        char *tmpl = xasprintf("%s/.check-XXXXXX", dir);
        int fd = mkstemp(tmpl);
        if (fd < 0) {
            say(c, CK_FAIL, "state-dir", "STATE_DIR %s cannot be written (%s): give the daemon's user write access "
                "or set STATE_DIR%s", log_esc(dir), strerror(errno), hint);
        } else {
            close(fd);
            unlink(tmpl);
            say(c, CK_OK, "state-dir", "STATE_DIR %s is writable%s", log_esc(dir), hint);
        }
        free(tmpl);
        return;
    }
    if (errno != ENOENT) {
        say(c, CK_FAIL, "state-dir", "STATE_DIR %s: %s%s", log_esc(dir), strerror(errno), hint);
        return;
    }
    /* Missing: the daemon creates it (with its parents); the nearest existing ancestor must let it. */
    char *p = xstrdup(dir);
    for (;;) {
        char *slash = strrchr(p, '/');
        if (!slash) {
            strcpy(p, ".");
            break;
        }
        if (slash == p) {
            p[1] = '\0';
            break;
        }
        *slash = '\0';
        if (access(p, F_OK) == 0)
            break;
    }
    if (access(p, W_OK | X_OK) == 0)
        say(c, CK_OK, "state-dir", "STATE_DIR %s does not exist yet; the daemon will create it in %s%s", log_esc(dir),
            log_esc(p), hint);
    else
        say(c, CK_FAIL, "state-dir", "STATE_DIR %s does not exist and %s is not writable (%s): create it or set "
            "STATE_DIR%s", log_esc(dir), log_esc(p), strerror(errno), hint);
    free(p);
}

/* ---- anchors ---------------------------------------------------------------------------- */

typedef struct exists_answer {
    bool done;
    bool exists;
    char *why;
} exists_answer;

static void on_exists(void *ud, bool exists, const char *why)
{
    exists_answer *e = ud;
    e->done = true;
    e->exists = exists;
    e->why = xstrdup(why);
}

/* The same mount serialization as the daemon: a hung mount delays only the stats below it. */
static void set_fs_mounts(checker *c)
{
    const config_t *cfg = c->cfg;
    size_t n = cfg->n_anchors + cfg->n_mounts;
    const char **roots = xcalloc(n, sizeof *roots);
    char **dirs = xcalloc(cfg->n_anchors, sizeof *dirs);
    size_t k = 0;
    for (size_t i = 0; i < cfg->n_anchors; i++)
        roots[k++] = dirs[i] = paths_dirname(cfg->anchors[i]);
    for (size_t i = 0; i < cfg->n_mounts; i++)
        roots[k++] = cfg->mounts[i].root;
    fscheck_set_mounts(c->fs, roots, k);
    for (size_t i = 0; i < cfg->n_anchors; i++)
        free(dirs[i]);
    free(dirs);
    free(roots);
}

static void check_anchors(checker *c)
{
    const config_t *cfg = c->cfg;
    for (size_t i = 0; i < cfg->n_anchors; i++) {
        const char *path = cfg->anchors[i];
        exists_answer e = {0};
        fscheck_op *op = NULL;
        if (fscheck_exists(c->fs, path, on_exists, &e, &op) < 0) {
            say(c, CK_FAIL, "anchor", "%s cannot be checked: fix ANCHOR_FILES", log_esc(path));
            continue;
        }
        run_until(c, &e.done);
        if (!e.done) {
            fscheck_cancel(op);
            say(c, CK_FAIL, "anchor", "%s: the check never ended", log_esc(path));
        } else if (e.exists) {
            say(c, CK_OK, "anchor", "%s is present", log_esc(path));
        } else if (e.why && strstr(e.why, "hung")) {
            say(c, CK_FAIL, "anchor", "%s: %s: the mount is stuck; restart it (folders on it wait meanwhile)",
                log_esc(path), log_esc(e.why));
        } else {
            say(c, CK_FAIL, "anchor", "%s is missing (%s): the mount is down, or the file was never created; "
                "mount it, or create the file on the remote, or fix ANCHOR_FILES",
                log_esc(path), e.why ? log_esc(e.why) : "not found");
        }
        free(e.why);
    }
}

/* ---- all of it ---------------------------------------------------------------------------- */

static void on_closed(void *ud) { *(bool *)ud = true; }

int check_run(const config_t *cfg, const char *env_file, FILE *out)
{
    checker c = {.cfg = cfg, .out = out};
    if (uv_loop_init(&c.loop) != 0) {
        fprintf(out, "FAIL  %-16s cannot create an event loop\n", "check");
        return 1;
    }
    c.h = httpc_new(&c.loop);
    c.fs = fscheck_new(&c.loop, 10000);
    if (!c.h || !c.fs) {
        fprintf(out, "FAIL  %-16s cannot start the HTTP client\n", "check");
        return 1;
    }
    const char *path = check_env_file_path(env_file);
    if (path)
        say(&c, CK_OK, "config", "the configuration from %s (and the environment) is valid", log_esc(path));
    else
        say(&c, CK_OK, "config", "the configuration from the environment is valid");
    check_env_file(&c, env_file);
    map_roots_from_config(cfg, &c.roots);
    c.mount_ok = xcalloc(cfg->n_mounts, sizeof *c.mount_ok);
    check_targets(&c);
    check_rclone(&c);
    check_rclone_map(&c);
    check_state_dir(&c);
    set_fs_mounts(&c);
    check_anchors(&c);
    check_host_paths(&c);
    map_roots_free(&c.roots);
    free(c.mount_ok);

    bool h_closed = false, fs_closed = false;
    httpc_close(c.h, on_closed, &h_closed);
    fscheck_close(c.fs, on_closed, &fs_closed);
    run_until(&c, &h_closed);
    run_until(&c, &fs_closed);
    /* A stat stuck on a hung mount keeps the loop busy; the process exits anyway. */
    if (uv_loop_close(&c.loop) != 0)
        log_debug("a filesystem check is still stuck; exiting without waiting for it");

    unsigned total = c.n_ok + c.n_warn + c.n_fail + c.n_skip;
    if (c.n_fail)
        fprintf(out, "%u of %u checks failed%s\n", c.n_fail, total,
                c.n_warn ? ", and some gave a warning" : "");
    else if (c.n_warn)
        fprintf(out, "no check failed: %u passed, %u gave a warning (the daemon works as configured; read the "
                "WARN lines)\n", c.n_ok, c.n_warn);
    else
        fprintf(out, "all %u checks passed\n", c.n_ok);
    return c.n_fail ? 1 : 0;
}
