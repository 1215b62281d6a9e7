/* check.c: `--check`: the outside world the configuration points at, tried with the daemon's own
 * clients on a private loop, one line per check with what to fix. */
#include "check.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "dotenv.h"
#include "fscheck.h"
#include "http_client.h"
#include "log.h"
#include "paths.h"
#include "plex.h"
#include "sections.h"
#include "util.h"

#define CHECK_RCLONE_TIMEOUT_MS 15000u /* a check should not wait RCLONE_TIMEOUT (10 min) */
#define CHECK_MAX_RESPONSE (1024u * 1024u)

typedef enum { CK_OK, CK_FAIL, CK_SKIP } result_kind;

typedef struct checker {
    uv_loop_t loop;
    httpc_t *h;
    fscheck_t *fs;
    const config_t *cfg;
    FILE *out;
    unsigned n_ok, n_fail, n_skip;
} checker;

static void say(checker *c, result_kind k, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void say(checker *c, result_kind k, const char *name, const char *fmt, ...)
{
    static const char *const tag[] = {"OK", "FAIL", "SKIP"};
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
    static const char *const secrets[] = {"PLEX_TOKEN", "RCLONE_RC_PASS", "RCLONE_MOUNTS", "WEBHOOK_PASS",
                                          "MANUAL_PASS"};
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
    if (secret)
        say(c, CK_FAIL, "env-file",
            "%s is readable by every user and sets %s: chown root:plex-servarr-sync and chmod 0640 it "
            "(or chmod 0600 when the daemon runs as its owner)",
            log_esc(path), secret);
    else
        say(c, CK_OK, "env-file", "%s is readable by every user, but sets no secret", log_esc(path));
}

/* ---- synchronous HTTP on the private loop -------------------------------------------------- */

typedef struct answer {
    bool done;
    httpc_error error;
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

/* ---- Plex ------------------------------------------------------------------------------ */

/* GET /identity: no token needed, so it tells "wrong URL" apart from "wrong token". */
static bool check_plex_identity(checker *c, const char *shown)
{
    const config_t *cfg = c->cfg;
    char *url = xasprintf("%s/identity", cfg->plex_url);
    char *hid = xasprintf("X-Plex-Client-Identifier: %s",
                          cfg->plex_identifier && *cfg->plex_identifier ? cfg->plex_identifier : "plex-servarr-sync");
    const char *headers[] = {"Accept: application/json", hid, "X-Plex-Product: plex-servarr-sync", NULL};
    httpc_opts o = {.method = "GET", .url = url, .headers = headers, .timeout_ms = cfg->plex_timeout_ms,
                    .max_response_bytes = 64u * 1024u};
    answer a;
    int rc = http_sync(c, &o, &a);
    free(url);
    free(hid);
    bool ok = false;
    if (rc < 0) {
        say(c, CK_FAIL, "plex", "cannot send a request to %s (%s): check PLEX_URL", log_esc(shown), strerror(-rc));
    } else if (a.error != HTTPC_OK) {
        say(c, CK_FAIL, "plex", "no answer from %s (%s: %s): check PLEX_URL and that Plex is running and reachable "
            "from this host", log_esc(shown), httpc_error_name(a.error), log_esc(a.message));
    } else if (a.status >= 300 && a.status < 400) {
        say(c, CK_FAIL, "plex", "%s answered HTTP %ld (a redirect, which the daemon does not follow): set PLEX_URL "
            "to the address it redirects to (https?)", log_esc(shown), a.status);
    } else if (a.status < 200 || a.status >= 300) {
        say(c, CK_FAIL, "plex", "%s answered HTTP %ld on /identity, which Plex answers without a token: PLEX_URL "
            "does not point at Plex Media Server (a proxy? a wrong port?)", log_esc(shown), a.status);
    } else {
        cJSON *j = cJSON_ParseWithLength(a.body, a.body_len);
        const cJSON *mc = cJSON_GetObjectItemCaseSensitive(j, "MediaContainer");
        const cJSON *ver = cJSON_GetObjectItemCaseSensitive(mc, "version");
        const cJSON *mid = cJSON_GetObjectItemCaseSensitive(mc, "machineIdentifier");
        if (cJSON_IsObject(mc)) {
            say(c, CK_OK, "plex", "%s is Plex Media Server %s (machine %s)", log_esc(shown),
                cJSON_IsString(ver) ? log_esc(ver->valuestring) : "(version not given)",
                cJSON_IsString(mid) ? log_esc(mid->valuestring) : "?");
            ok = true;
        } else if (strstr(a.body, "<MediaContainer")) {
            say(c, CK_OK, "plex", "%s is Plex Media Server (it answered in XML)", log_esc(shown));
            ok = true;
        } else {
            say(c, CK_FAIL, "plex", "%s answered /identity with something that is not Plex's: PLEX_URL does not "
                "point at Plex Media Server", log_esc(shown));
        }
        cJSON_Delete(j);
    }
    answer_free(&a);
    return ok;
}

typedef struct sections_answer {
    bool done;
    plex_status status;
    long http_status;
    char *message;
    plex_libraries libs;
} sections_answer;

static void on_sections(void *ud, const plex_result *r, plex_libraries *libs)
{
    sections_answer *s = ud;
    s->done = true;
    s->status = r->status;
    s->http_status = r->http_status;
    s->message = xstrdup(r->message ? r->message : "");
    if (libs) {
        s->libs = *libs;
        memset(libs, 0, sizeof *libs);
    }
}

/* The token on /library/sections; on success *libs holds the list. */
static bool check_plex_token(checker *c, plex_libraries *libs)
{
    const config_t *cfg = c->cfg;
    sections_answer s = {0};
    httpc_req *req = NULL;
    if (plex_list_sections(c->h, cfg, on_sections, &s, &req) < 0) {
        say(c, CK_FAIL, "plex-token", "cannot send the request: PLEX_URL or PLEXAPI_HEADER_IDENTIFIER holds "
            "characters a header cannot carry");
        return false;
    }
    run_until(c, &s.done);
    if (!s.done) {
        httpc_cancel(req);
        say(c, CK_FAIL, "plex-token", "the request to Plex never ended");
        return false;
    }
    bool no_token = !cfg->plex_token || !*cfg->plex_token;
    bool ok = false;
    switch (s.status) {
    case PLEX_RES_OK:
        say(c, CK_OK, "plex-token", no_token ? "Plex lists its libraries without a token (PLEX_TOKEN is not set)"
                                            : "Plex accepted PLEX_TOKEN on /library/sections");
        *libs = s.libs;
        memset(&s.libs, 0, sizeof s.libs);
        ok = true;
        break;
    case PLEX_RES_AUTH:
        if (no_token)
            say(c, CK_FAIL, "plex-token", "Plex answered HTTP %ld on /library/sections: PLEX_TOKEN is not set; set it "
                "to a token of the server's owner (Plex Web: any item > Get Info > View XML: X-Plex-Token in "
                "the URL)", s.http_status);
        else
            say(c, CK_FAIL, "plex-token", "Plex answered HTTP %ld on /library/sections: PLEX_TOKEN is wrong, expired "
                "or has no access to this server; set it to a token of the server's owner", s.http_status);
        break;
    case PLEX_RES_BAD:
        if (s.http_status >= 200 && s.http_status < 300)
            say(c, CK_FAIL, "plex-token", "Plex's library list could not be read (%s): is PLEX_URL really Plex?",
                log_esc(s.message));
        else
            say(c, CK_FAIL, "plex-token", "Plex refused /library/sections: %s", log_esc(s.message));
        break;
    default:
        say(c, CK_FAIL, "plex-token", "reading the library list failed: %s", log_esc(s.message));
        break;
    }
    free(s.message);
    plex_libraries_free(&s.libs);
    return ok;
}

static void check_plex_libraries(checker *c, const plex_libraries *libs)
{
    if (libs->n == 0) {
        say(c, CK_FAIL, "plex-libraries", "Plex has no libraries: add the media folders as libraries in Plex first");
        return;
    }
    buf_t b;
    buf_init(&b, 1500);
    buf_printf(&b, "%zu librar%s:", libs->n, libs->n == 1 ? "y" : "ies");
    for (size_t i = 0; i < libs->n; i++) {
        const plex_library *l = &libs->v[i];
        if (buf_printf(&b, "%s %ld '%s' (%s)", i ? ";" : "", l->key, log_esc(l->title), log_esc(l->type)) < 0)
            break;
        for (size_t k = 0; k < l->n_locations; k++)
            if (buf_printf(&b, " %s", log_esc(l->locations[k])) < 0)
                break;
    }
    say(c, CK_OK, "plex-libraries", "%s", b.data);
    buf_free(&b);
}

/* Where a Plex path prefix lands: inside library locations (in), above some (holds), or neither.
 * Writes the section ids to ids (for the message). */
static void prefix_place(const plex_libraries *libs, const char *prefix, long only_section, bool *in, bool *holds,
                         char *ids, size_t idslen)
{
    *in = *holds = false;
    ids[0] = '\0';
    size_t o = 0;
    for (size_t i = 0; i < libs->n; i++) {
        const plex_library *l = &libs->v[i];
        if (only_section >= 0 && l->key != only_section)
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
        if (hit && o + 24 < idslen)
            o += (size_t)snprintf(ids + o, idslen - o, "%s%ld", o ? ", " : "", l->key);
    }
}

static void check_mapping(checker *c, const plex_libraries *libs)
{
    const config_t *cfg = c->cfg;
    if (cfg->path_repl.n == 0 && cfg->n_section_map == 0) {
        say(c, CK_OK, "mapping", "no PATH_REPLACEMENTS or SECTION_MAPPING: *arr paths are used as Plex paths");
        return;
    }
    char ids[256];
    for (size_t i = 0; i < cfg->path_repl.n; i++) {
        const cfg_replacement *r = &cfg->path_repl.v[i];
        bool in, holds;
        prefix_place(libs, r->to, -1, &in, &holds, ids, sizeof ids);
        if (in)
            say(c, CK_OK, "mapping", "PATH_REPLACEMENTS '%s' -> '%s' lies in section %s", log_esc(r->from),
                log_esc(r->to), ids);
        else if (holds)
            say(c, CK_OK, "mapping", "PATH_REPLACEMENTS '%s' -> '%s' holds section %s", log_esc(r->from),
                log_esc(r->to), ids);
        else
            say(c, CK_FAIL, "mapping", "PATH_REPLACEMENTS '%s' -> '%s' falls in no Plex library: folders mapped "
                "there are skipped; make the target the path Plex shows for those files (see plex-libraries)",
                log_esc(r->from), log_esc(r->to));
    }
    for (size_t i = 0; i < cfg->n_section_map; i++) {
        const cfg_section_map *m = &cfg->section_map[i];
        bool known = false;
        for (size_t k = 0; k < libs->n; k++)
            if (libs->v[k].key == m->section)
                known = true;
        if (!known) {
            say(c, CK_FAIL, "mapping", "SECTION_MAPPING sends '%s' to section %ld, which this Plex does not have: "
                "use a key listed under plex-libraries", log_esc(m->prefix), m->section);
            continue;
        }
        bool in, holds;
        prefix_place(libs, m->prefix, m->section, &in, &holds, ids, sizeof ids);
        if (in || holds)
            say(c, CK_OK, "mapping", "SECTION_MAPPING '%s' -> section %ld matches its folders", log_esc(m->prefix),
                m->section);
        else
            say(c, CK_FAIL, "mapping", "SECTION_MAPPING sends '%s' to section %ld, but that library's folders do not "
                "hold it: Plex ignores such scans; fix SECTION_MAPPING (or PATH_REPLACEMENTS)",
                log_esc(m->prefix), m->section);
    }
}

static void check_plex(checker *c)
{
    const config_t *cfg = c->cfg;
    if (!cfg->plex_url || !*cfg->plex_url) {
        say(c, CK_FAIL, "plex", "PLEX_URL is not set: set it to Plex's address, e.g. http://127.0.0.1:32400");
        say(c, CK_SKIP, "plex-token", "needs PLEX_URL");
        return;
    }
    char *shown = url_shown(cfg->plex_url);
    bool up = check_plex_identity(c, shown);
    free(shown);
    if (!up) {
        say(c, CK_SKIP, "plex-token", "needs Plex to answer");
        return;
    }
    plex_libraries libs = {0};
    if (!check_plex_token(c, &libs)) {
        say(c, CK_SKIP, "mapping", "needs Plex's library list");
        return;
    }
    check_plex_libraries(c, &libs);
    check_mapping(c, &libs);
    plex_libraries_free(&libs);
}

/* ---- rclone ---------------------------------------------------------------------------- */

static int rc_call(checker *c, const cfg_mount *m, const char *method, answer *a)
{
    char *url = xasprintf("%s/%s", m->url, method);
    const char *headers[] = {"Content-Type: application/json", NULL};
    uint64_t t = c->cfg->rclone_timeout_ms;
    httpc_opts o = {.method = "POST", .url = url, .headers = headers, .body = "{}", .body_len = 2,
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

/* rc/noopauth needs authentication, so an OK proves the credentials (or --rc-no-auth). `where`
 * names the mount and its URL. */
static bool check_rclone_auth(checker *c, const cfg_mount *m, const char *where, bool *reached)
{
    answer a;
    *reached = false;
    if (rc_call(c, m, "rc/noopauth", &a) < 0) {
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
        say(c, CK_FAIL, "rclone", "%s: HTTP 403 to rc/noopauth (%s): rclone runs with neither --rc-user/--rc-pass "
            "nor --rc-no-auth, and rclone 1.74 and later then refuse the VFS calls; start it with --rc-user/--rc-pass "
            "(and set RCLONE_RC_USER/RCLONE_RC_PASS) or with --rc-no-auth", where, rc_error(&a));
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
    if (rc_call(c, m, "vfs/list", &a) < 0 || a.error != HTTPC_OK) {
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
        if (ok || reached)
            check_rclone_vfs(c, m, where);
        else
            say(c, CK_SKIP, "rclone-vfs", "%s: needs rclone to answer", where);
        free(shown);
        free(where);
    }
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

static void check_anchors(checker *c)
{
    const config_t *cfg = c->cfg;
    if (cfg->n_anchors == 0)
        return;
    /* The same mount serialization as the daemon: a hung mount delays only its own anchors. */
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
    check_plex(&c);
    check_rclone(&c);
    check_state_dir(&c);
    check_anchors(&c);

    bool h_closed = false, fs_closed = false;
    httpc_close(c.h, on_closed, &h_closed);
    fscheck_close(c.fs, on_closed, &fs_closed);
    run_until(&c, &h_closed);
    run_until(&c, &fs_closed);
    /* A stat stuck on a hung mount keeps the loop busy; the process exits anyway. */
    if (uv_loop_close(&c.loop) != 0)
        log_debug("a filesystem check is still stuck; exiting without waiting for it");

    if (c.n_fail)
        fprintf(out, "%u of %u checks failed\n", c.n_fail, c.n_ok + c.n_fail + c.n_skip);
    else
        fprintf(out, "all %u checks passed\n", c.n_ok);
    return c.n_fail ? 1 : 0;
}
