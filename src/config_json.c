/* config_json.c: the JSON-valued variables: their text bounded (size, depth, string length),
 * parsed with cJSON and turned into normalized tables sorted longest prefix first. */
#include "config_json.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "log.h"
#include "util.h"

#define CFG_JSON_TEXT_MAX (64 * 1024) /* longest JSON variable (a map of many prefixes) */
#define CFG_JSON_DEPTH_MAX 16
#define WHY_SUB_MAX 384 /* a nested reason, prefixed with the item */

/* ---------------------------------------------------------------- URLs */

const char *cfg_url_check(char *u)
{
    size_t skip;
    if (ascii_strncasecmp(u, "http://", 7) == 0)
        skip = 7;
    else if (ascii_strncasecmp(u, "https://", 8) == 0)
        skip = 8;
    else
        return "must start with http:// or https://";
    for (const char *p = u; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return "must not contain spaces or control characters";
    if (u[skip] == '\0' || u[skip] == '/')
        return "has no host";
    size_t n = strlen(u);
    while (n > skip && u[n - 1] == '/')
        u[--n] = '\0';
    return NULL;
}

/* Where the path of u (after scheme and host) starts; NULL when it has none. */
static char *url_path(char *u)
{
    char *host = strstr(u, "://");
    if (!host)
        return NULL;
    host += 3;
    char *p = host + strcspn(host, "/?#");
    return *p ? p : NULL;
}

bool cfg_url_web_strip(char *u)
{
    static const char *const tails[] = {"/web", "/web/", "/web/index.html"};
    char *path = url_path(u);
    if (!path)
        return false;
    /* A fragment or a query is the web app's page ("#!/server/..."), never sent as an API's. */
    size_t n = strcspn(path, "?#");
    for (size_t i = 0; i < ARRAY_SIZE(tails); i++) {
        size_t t = strlen(tails[i]);
        if (n >= t && ascii_strncasecmp(path + n - t, tails[i], t) == 0) {
            path[n - t] = '\0';
            return true;
        }
    }
    return false;
}

static bool url_base_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

const char *cfg_url_base_normalize(char **u)
{
    const char *in = *u;
    if (strstr(in, "://"))
        return "only the path of the address, such as /pss (not the scheme and host)";
    size_t n = strlen(in);
    while (n > 0 && in[n - 1] == '/')
        n--;
    const char *p = in;
    while (*p == '/' && p < in + n)
        p++;
    char *out = xasprintf("%s%.*s", p < in + n ? "/" : "", (int)(in + n - p), p);
    const char *why = NULL;
    if (strlen(out) > CFG_URL_BASE_MAX)
        why = "longer than 200 bytes";
    for (const char *seg = out; !why && *seg; ) {
        seg++; /* past its '/' */
        size_t len = strcspn(seg, "/");
        if (len == 0 || (len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
            why = "must be a path such as /pss, without empty, '.' or '..' segments";
        for (size_t i = 0; !why && i < len; i++)
            if (!url_base_char(seg[i]))
                why = "must be a path such as /pss or /media/sync: letters, digits, '-', '.', '_' and '~' "
                      "between slashes";
        seg += len;
    }
    if (why) {
        free(out);
        return why;
    }
    free(*u);
    *u = out;
    return NULL;
}

/* ---------------------------------------------------------------- bounded JSON */

/* From s, past every double-quoted string of a JSON text (escapes inside them too): the next
 * byte outside a string, or the end. */
static const char *skip_strings(const char *s)
{
    while (*s == '"') {
        for (s++; *s && *s != '"'; s++)
            if (*s == '\\' && s[1])
                s++;
        if (*s)
            s++;
    }
    return s;
}

/* Deepest bracket nesting of a JSON text, strings skipped. */
static int json_depth(const char *s)
{
    int depth = 0, max = 0;
    for (s = skip_strings(s); *s; s = skip_strings(s + 1)) {
        if (*s == '{' || *s == '[') {
            if (++depth > max)
                max = depth;
        } else if (*s == '}' || *s == ']') {
            depth--;
        }
    }
    return max;
}

/* Every key and string no longer than CFG_VALUE_MAX. */
static bool json_strings_ok(const cJSON *j)
{
    for (; j; j = j->next) {
        if (j->string && strlen(j->string) > CFG_VALUE_MAX)
            return false;
        if (cJSON_IsString(j) && strlen(j->valuestring) > CFG_VALUE_MAX)
            return false;
        if (!json_strings_ok(j->child))
            return false;
    }
    return true;
}

/* Whether a JSON text that did not parse uses single quotes where JSON needs double ones
 * ({'a': 'b'}, as Python prints a dict): a ' outside every double-quoted string. */
static bool json_single_quoted(const char *s)
{
    for (s = skip_strings(s); *s; s = skip_strings(s + 1))
        if (*s == '\'')
            return true;
    return false;
}

/* The JSON tree of a variable's text, an object or a list as `object` asks; *out is NULL on
 * failure. `example` is the right form, shown when the text is not JSON or not of that kind. */
static int json_value(const char *v, bool object, const char *example, cJSON **out, char *why, size_t whylen)
{
    *out = NULL;
    if (strlen(v) > CFG_JSON_TEXT_MAX) {
        errbuf_set(why, whylen, "longer than %d bytes", CFG_JSON_TEXT_MAX);
        return -EINVAL;
    }
    /* The script's .env wrote maps as '{...}' and its reader stripped one more layer of single
     * quotes: a value that still carries them (set in the environment as is) means the same. */
    char *t = str_trim_dup(v);
    size_t n = strlen(t);
    const char *text = t;
    if (n >= 2 && t[0] == '\'' && t[n - 1] == '\'') {
        t[n - 1] = '\0';
        text = t + 1;
    }
    int rc = -EINVAL;
    cJSON *j = NULL;
    if (json_depth(text) > CFG_JSON_DEPTH_MAX) {
        errbuf_set(why, whylen, "JSON nested deeper than %d levels", CFG_JSON_DEPTH_MAX);
        goto out;
    }
    const char *end = NULL;
    j = cJSON_ParseWithOpts(text, &end, true);
    if (!j) {
        size_t at = end ? (size_t)(end - text) : 0;
        if (json_single_quoted(text))
            errbuf_set(why, whylen, "not valid JSON (error at byte %zu): use double quotes around keys and strings, "
                       "as in %s", at, example);
        else
            errbuf_set(why, whylen, "not valid JSON (error at byte %zu): the right form is %s", at, example);
        goto out;
    }
    if (!json_strings_ok(j)) {
        errbuf_set(why, whylen, "a JSON string is longer than %d bytes", CFG_VALUE_MAX);
        goto out;
    }
    if (object && !cJSON_IsObject(j)) {
        errbuf_set(why, whylen, "must be a JSON object such as %s", example);
        goto out;
    }
    if (!object && !cJSON_IsArray(j)) {
        errbuf_set(why, whylen, "must be a JSON list such as %s", example);
        goto out;
    }
    *out = j;
    j = NULL;
    rc = 0;
out:
    cJSON_Delete(j);
    free(t);
    return rc;
}

/* ---------------------------------------------------------------- converters */

static int cmp_repl(const void *a, const void *b)
{
    const cfg_replacement *x = a, *y = b;
    size_t lx = strlen(x->from), ly = strlen(y->from);
    if (lx != ly)
        return lx > ly ? -1 : 1;
    return strcmp(x->from, y->from);
}

static int cmp_section(const void *a, const void *b)
{
    const cfg_section_map *x = a, *y = b;
    size_t lx = strlen(x->prefix), ly = strlen(y->prefix);
    if (lx != ly)
        return lx > ly ? -1 : 1;
    return strcmp(x->prefix, y->prefix);
}

static int cmp_mount(const void *a, const void *b)
{
    const cfg_mount *x = a, *y = b;
    size_t lx = strlen(x->root), ly = strlen(y->root);
    if (lx != ly)
        return lx > ly ? -1 : 1;
    return strcmp(x->root, y->root);
}

static int replacements_from(const char *name, const cJSON *j, cfg_replacements *r, char *why, size_t whylen)
{
    r->v = xcalloc((size_t)cJSON_GetArraySize(j), sizeof *r->v);
    const cJSON *it;
    cJSON_ArrayForEach(it, j) {
        const char *key = it->string;
        if (!key || !*key) {
            log_debug("%s: ignoring an entry with an empty key", name);
            continue;
        }
        if (!cJSON_IsString(it)) {
            errbuf_set(why, whylen, "the value of '%s' must be a string", log_esc(key));
            return -EINVAL;
        }
        if (str_has_ctl(key) || str_has_ctl(it->valuestring)) {
            errbuf_set(why, whylen, "the entry '%s' contains a control character", log_esc(key));
            return -EINVAL;
        }
        char *from = path_normalize(key);
        char *to = path_normalize(it->valuestring);
        bool dup = false;
        for (size_t i = 0; i < r->n && !dup; i++) {
            if (!str_eq_ci(r->v[i].from, from))
                continue;
            if (strcmp(r->v[i].to, to) != 0) {
                errbuf_set(why, whylen,
                        "'%s' is given twice (ignoring case and slashes) with different targets",
                        log_esc(from));
                free(from);
                free(to);
                return -EINVAL;
            }
            dup = true;
        }
        if (dup) {
            free(from);
            free(to);
            continue;
        }
        r->v[r->n].from = from;
        r->v[r->n].to = to;
        r->n++;
    }
    qsort(r->v, r->n, sizeof *r->v, cmp_repl);
    return 0;
}

/* A section id: a JSON number or a numeric string, 1..INT_MAX. */
static int section_id(const cJSON *it, long *out)
{
    if (cJSON_IsNumber(it)) {
        double d = it->valuedouble;
        if (!(d >= 1 && d <= INT_MAX) || d != (double)(long)d)
            return -EINVAL;
        *out = (long)d;
        return 0;
    }
    if (cJSON_IsString(it)) {
        char *t = str_trim_dup(it->valuestring);
        uint64_t u = 0;
        int rc = str_parse_u64(t, &u);
        free(t);
        if (rc || u < 1 || u > INT_MAX)
            return -EINVAL;
        *out = (long)u;
        return 0;
    }
    return -EINVAL;
}

static int sections_from(const char *name, const cJSON *j, cfg_section_map **out, size_t *n, char *why,
                         size_t whylen)
{
    (*out) = xcalloc((size_t)cJSON_GetArraySize(j), sizeof *(*out));
    const cJSON *it;
    cJSON_ArrayForEach(it, j) {
        const char *key = it->string;
        long id;
        if (!key || !*key) {
            log_debug("%s: ignoring an entry with an empty key", name);
            continue;
        }
        if (str_has_ctl(key)) {
            errbuf_set(why, whylen, "the entry '%s' contains a control character", log_esc(key));
            return -EINVAL;
        }
        if (section_id(it, &id) != 0) {
            errbuf_set(why, whylen, "the section of '%s' must be a positive whole number", log_esc(key));
            return -EINVAL;
        }
        char *prefix = path_normalize(key);
        bool dup = false;
        for (size_t i = 0; i < (*n) && !dup; i++) {
            if (!str_eq_ci((*out)[i].prefix, prefix))
                continue;
            if ((*out)[i].section != id) {
                errbuf_set(why, whylen,
                        "'%s' is given twice (ignoring case and slashes) with different sections",
                        log_esc(prefix));
                free(prefix);
                return -EINVAL;
            }
            dup = true;
        }
        if (dup) {
            free(prefix);
            continue;
        }
        (*out)[(*n)].prefix = prefix;
        (*out)[(*n)].section = id;
        (*n)++;
    }
    qsort((*out), (*n), sizeof *(*out), cmp_section);
    return 0;
}

static int anchors_from(const cJSON *j, char ***out, size_t *n, char *why, size_t whylen)
{
    (*out) = xcalloc((size_t)cJSON_GetArraySize(j), sizeof *(*out));
    const cJSON *it;
    size_t idx = 0;
    cJSON_ArrayForEach(it, j) {
        idx++;
        if (!cJSON_IsString(it) || !*it->valuestring) {
            errbuf_set(why, whylen, "item %zu must be a non-empty string", idx);
            return -EINVAL;
        }
        if (str_has_ctl(it->valuestring)) {
            errbuf_set(why, whylen, "item %zu contains a control character", idx);
            return -EINVAL;
        }
        char *p = path_normalize(it->valuestring);
        if (p[0] != '/') {
            errbuf_set(why, whylen, "item %zu ('%s') must be an absolute path", idx, log_esc(p));
            free(p);
            return -EINVAL;
        }
        bool dup = false;
        for (size_t i = 0; i < (*n) && !dup; i++)
            dup = strcmp((*out)[i], p) == 0;
        if (dup) {
            free(p);
            continue;
        }
        (*out)[(*n)++] = p;
    }
    return 0;
}

void cfg_mount_free(cfg_mount *m)
{
    free(m->root);
    free(m->url);
    free(m->fs);
    free(m->user);
    free(m->pass);
}

/* One RCLONE_MOUNTS item. RCLONE_MOUNTS is secret (it holds passwords): reasons never quote
 * a value other than the root. */
static int mount_from_json(const cJSON *item, size_t idx, cfg_mount *m, char *why, size_t whylen)
{
    static const char *const keys[] = {"root", "url", "fs", "user", "pass"};
    char **dst[] = {&m->root, &m->url, &m->fs, &m->user, &m->pass};
    if (!cJSON_IsObject(item)) {
        errbuf_set(why, whylen, "item %zu must be an object {root, url, fs, user, pass}", idx);
        return -EINVAL;
    }
    const cJSON *f;
    cJSON_ArrayForEach(f, item) {
        size_t k = 0;
        while (k < ARRAY_SIZE(keys) && strcmp(f->string, keys[k]) != 0)
            k++;
        if (k == ARRAY_SIZE(keys)) {
            errbuf_set(why, whylen, "item %zu has an unknown key (allowed: root, url, fs, user, pass)", idx);
            return -EINVAL;
        }
        if (cJSON_IsNull(f))
            continue;
        if (!cJSON_IsString(f)) {
            errbuf_set(why, whylen, "item %zu: %s must be a string", idx, keys[k]);
            return -EINVAL;
        }
        if (str_has_ctl(f->valuestring)) {
            errbuf_set(why, whylen, "item %zu: %s contains a control character", idx, keys[k]);
            return -EINVAL;
        }
        free(*dst[k]);
        *dst[k] = *f->valuestring ? xstrdup(f->valuestring) : NULL;
    }
    if (!m->root) {
        errbuf_set(why, whylen, "item %zu: root is required", idx);
        return -EINVAL;
    }
    char *root = path_normalize(m->root);
    free(m->root);
    m->root = root;
    if (root[0] != '/') {
        errbuf_set(why, whylen, "item %zu: root must be an absolute path", idx);
        return -EINVAL;
    }
    if (!m->url) {
        errbuf_set(why, whylen, "item %zu: url is required", idx);
        return -EINVAL;
    }
    const char *r = cfg_url_check(m->url);
    if (r) {
        errbuf_set(why, whylen, "item %zu: url %s", idx, r);
        return -EINVAL;
    }
    return 0;
}

static int mounts_from(const cJSON *j, cfg_mount **out, size_t *n, char *why, size_t whylen)
{
    (*out) = xcalloc((size_t)cJSON_GetArraySize(j), sizeof *(*out));
    const cJSON *it;
    size_t idx = 0;
    cJSON_ArrayForEach(it, j) {
        idx++;
        cfg_mount *m = &(*out)[(*n)++];
        if (mount_from_json(it, idx, m, why, whylen) != 0)
            return -EINVAL;
        for (size_t i = 0; i + 1 < (*n); i++) {
            if (str_eq_ci((*out)[i].root, m->root)) {
                errbuf_set(why, whylen, "item %zu: root '%s' is listed twice", idx, log_esc(m->root));
                return -EINVAL;
            }
        }
    }
    qsort((*out), (*n), sizeof *(*out), cmp_mount);
    return 0;
}

/* ---------------------------------------------------------------- the parsers */

int cfg_json_replacements(const char *name, const char *text, cfg_replacements *out, char *why,
                          size_t whylen)
{
    cJSON *j;
    int rc = json_value(text, true, "{\"/from\": \"/to\"}", &j, why, whylen);
    if (rc == 0)
        rc = replacements_from(name, j, out, why, whylen);
    cJSON_Delete(j);
    return rc;
}

int cfg_json_sections(const char *name, const char *text, cfg_section_map **out, size_t *n, char *why,
                      size_t whylen)
{
    cJSON *j;
    int rc = json_value(text, true, "{\"/data/tv\": 2}", &j, why, whylen);
    if (rc == 0)
        rc = sections_from(name, j, out, n, why, whylen);
    cJSON_Delete(j);
    return rc;
}

int cfg_json_anchors(const char *text, char ***out, size_t *n, char *why, size_t whylen)
{
    cJSON *j;
    int rc = json_value(text, false, "[\"/mnt/media/.anchor\"]", &j, why, whylen);
    if (rc == 0)
        rc = anchors_from(j, out, n, why, whylen);
    cJSON_Delete(j);
    return rc;
}

int cfg_json_mounts(const char *text, cfg_mount **out, size_t *n, char *why, size_t whylen)
{
    cJSON *j;
    int rc = json_value(text, false, "[{\"root\": \"/mnt/media\", \"url\": \"http://127.0.0.1:5572\"}]", &j,
                        why, whylen);
    if (rc == 0)
        rc = mounts_from(j, out, n, why, whylen);
    cJSON_Delete(j);
    return rc;
}

/* ---------------------------------------------------------------- durations */

int parse_duration_ms(const char *s, uint64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {{"", 1000},      {"ms", 1},        {"s", 1000},
                 {"m", 60000},    {"h", 3600000},   {"d", 86400000}};
    if (!s)
        return -EINVAL;
    while (*s && strchr(" \t\r\n\f\v", *s))
        s++;
    if (*s < '0' || *s > '9')
        return -EINVAL;
    uint64_t n = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (n > (UINT64_MAX - d) / 10)
            return -EINVAL;
        n = n * 10 + d;
    }
    const char *u = s;
    while (*s && !strchr(" \t\r\n\f\v", *s))
        s++;
    size_t ulen = (size_t)(s - u);
    while (*s && strchr(" \t\r\n\f\v", *s))
        s++;
    if (*s)
        return -EINVAL;
    for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
        if (strlen(units[i].unit) == ulen && ascii_strncasecmp(u, units[i].unit, ulen) == 0) {
            if (n > UINT64_MAX / units[i].ms)
                return -EINVAL;
            *out = n * units[i].ms;
            return 0;
        }
    }
    return -EINVAL;
}

/* ---------------------------------------------------------------- targets (MEDIA_SERVERS) */

const char *target_kind_name(target_kind k)
{
    switch (k) {
    case TARGET_PLEX:
        return "plex";
    case TARGET_JELLYFIN:
        return "jellyfin";
    case TARGET_EMBY:
        return "emby";
    }
    return "unknown";
}

bool cfg_target_name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > TARGET_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

void cfg_replacements_free(cfg_replacements *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].from);
        free(r->v[i].to);
    }
    free(r->v);
    r->v = NULL;
    r->n = 0;
}

void cfg_replacements_copy(const cfg_replacements *from, cfg_replacements *to)
{
    to->n = from->n;
    to->v = xcalloc(from->n ? from->n : 1, sizeof *to->v);
    for (size_t i = 0; i < from->n; i++) {
        to->v[i].from = xstrdup(from->v[i].from);
        to->v[i].to = xstrdup(from->v[i].to);
    }
}

void cfg_section_map_copy(const cfg_section_map *from, size_t n, cfg_section_map **to, size_t *n_to)
{
    *to = xcalloc(n ? n : 1, sizeof **to);
    for (size_t i = 0; i < n; i++) {
        (*to)[i].prefix = xstrdup(from[i].prefix);
        (*to)[i].section = from[i].section;
    }
    *n_to = n;
}

void cfg_target_free(cfg_target *t)
{
    free(t->name);
    free(t->url);
    free(t->token);
    free(t->token_var);
    free(t->origin);
    free(t->ca_file);
    free(t->ca_var);
    cfg_replacements_free(&t->path_repl);
    for (size_t i = 0; i < t->n_section_map; i++)
        free(t->section_map[i].prefix);
    free(t->section_map);
    memset(t, 0, sizeof *t);
}

/* The keys a MEDIA_SERVERS item may hold, and where each lands while the item is read. */
typedef struct item_keys {
    const cJSON *name, *type, *url, *token, *token_file, *path_replacements, *section_mapping, *timeout,
        *empty_trash, *scan_path, *ca_file;
} item_keys;

static const struct {
    const char *key;
    size_t off;
} item_key_table[] = {
    {"name", offsetof(item_keys, name)},
    {"type", offsetof(item_keys, type)},
    {"url", offsetof(item_keys, url)},
    {"token", offsetof(item_keys, token)},
    {"token_file", offsetof(item_keys, token_file)},
    {"path_replacements", offsetof(item_keys, path_replacements)},
    {"section_mapping", offsetof(item_keys, section_mapping)},
    {"timeout", offsetof(item_keys, timeout)},
    {"empty_trash", offsetof(item_keys, empty_trash)},
    {"scan_path", offsetof(item_keys, scan_path)},
    {"ca_file", offsetof(item_keys, ca_file)},
};

/* Sort the item's members into *k; an unknown or repeated key is an error. */
static int item_sort_keys(const cJSON *item, const char *label, item_keys *k, char *why, size_t whylen)
{
    memset(k, 0, sizeof *k);
    const cJSON *f;
    cJSON_ArrayForEach(f, item) {
        size_t i = 0;
        while (i < ARRAY_SIZE(item_key_table) && strcmp(f->string, item_key_table[i].key) != 0)
            i++;
        if (i == ARRAY_SIZE(item_key_table)) {
            const char *names[ARRAY_SIZE(item_key_table)];
            for (size_t j = 0; j < ARRAY_SIZE(names); j++)
                names[j] = item_key_table[j].key;
            const char *hint = str_nearest(f->string, names, ARRAY_SIZE(names));
            char esc[96] = "";
            str_append_escaped(esc, sizeof esc, f->string, strlen(f->string), 40);
            errbuf_set(why, whylen, "%s: unknown key '%s'%s%s%s", label, esc, hint ? " (did you mean '" : "",
                       hint ? hint : "", hint ? "'?)" : "");
            return -EINVAL;
        }
        const cJSON **slot = (const cJSON **)((char *)k + item_key_table[i].off);
        if (*slot) {
            errbuf_set(why, whylen, "%s: key '%s' is given twice", label, item_key_table[i].key);
            return -EINVAL;
        }
        *slot = cJSON_IsNull(f) ? NULL : f;
    }
    return 0;
}

/* "item 2 (family)", or "item 2" while the item has no valid name. */
static void item_label(const cJSON *item, size_t idx, char *label, size_t labellen)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(item, "name");
    if (cJSON_IsString(n) && cfg_target_name_ok(n->valuestring))
        snprintf(label, labellen, "item %zu (%s)", idx, n->valuestring);
    else
        snprintf(label, labellen, "item %zu", idx);
}

/* A note on an item, when there is a sink to hear it. */
static void sink_warn(const cfg_json_sink *sink, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sink_warn(const cfg_json_sink *sink, const char *fmt, ...)
{
    if (!sink || !sink->warn)
        return;
    char text[WHY_SUB_MAX * 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    sink->warn(sink->ud, text);
}

/* url ending in /web (the web app's address): the address without it, and a note giving it
 * (not quoting a url with a user:password@, as the list is secret). */
static void item_url_web(const cJSON *url, const cfg_json_sink *sink, const char *label, cfg_target *t)
{
    if (!cfg_url_web_strip(t->url))
        return;
    const char *host = strstr(t->url, "://") + 3;
    if (memchr(host, '@', strcspn(host, "/?#"))) {
        sink_warn(sink, "%s: url ends in /web, the address of the server's web app, not of its API: using it "
                  "without /web (write it so to drop this warning)", label);
        return;
    }
    char given[160] = "", fixed[160] = "";
    str_append_escaped(given, sizeof given, url->valuestring, strlen(url->valuestring), 120);
    str_append_escaped(fixed, sizeof fixed, t->url, strlen(t->url), 120);
    sink_warn(sink, "%s: url '%s' is the address of the server's web app, not of its API: using '%s' (write that "
              "as the url to drop this warning)", label, given, fixed);
}

static int item_identity(const item_keys *k, const cfg_target_defaults *d, const char *label, cfg_target *t,
                         char *why, size_t whylen)
{
    if (!cJSON_IsString(k->name) || !cfg_target_name_ok(k->name->valuestring)) {
        char esc[96] = "";
        if (cJSON_IsString(k->name))
            str_append_escaped(esc, sizeof esc, k->name->valuestring, strlen(k->name->valuestring), 40);
        errbuf_set(why, whylen, "%s: name must be 1 to %d of a-z, 0-9, '_' and '-' (got '%s')", label,
                   TARGET_NAME_MAX, esc);
        return -EINVAL;
    }
    t->name = xstrdup(k->name->valuestring);
    t->origin = xasprintf("MEDIA_SERVERS (%s)", t->name);
    static const target_kind kinds[] = {TARGET_PLEX, TARGET_JELLYFIN, TARGET_EMBY};
    size_t i = 0;
    while (cJSON_IsString(k->type) && i < ARRAY_SIZE(kinds) && !str_eq_ci(k->type->valuestring, target_kind_name(kinds[i])))
        i++;
    if (!cJSON_IsString(k->type) || i == ARRAY_SIZE(kinds)) {
        errbuf_set(why, whylen, "%s: type must be plex, jellyfin or emby", label);
        return -EINVAL;
    }
    t->kind = kinds[i];
    if (!cJSON_IsString(k->url)) {
        errbuf_set(why, whylen, "%s: url is required (a string)", label);
        return -EINVAL;
    }
    t->url = str_trim_dup(k->url->valuestring);
    const char *r = cfg_url_check(t->url);
    if (r) {
        errbuf_set(why, whylen, "%s: url %s", label, r);
        return -EINVAL;
    }
    item_url_web(k->url, d->sink, label, t);
    return 0;
}

/* ca_file: an absolute path to a PEM file, checked as PLEX_CA_FILE is. */
static int item_ca_file(const item_keys *k, const cfg_target_defaults *d, const char *label, cfg_target *t,
                        char *why, size_t whylen)
{
    t->ca_var = xasprintf("%s: ca_file", t->origin);
    if (!k->ca_file)
        return 0;
    if (!cJSON_IsString(k->ca_file) || k->ca_file->valuestring[0] != '/' || str_has_ctl(k->ca_file->valuestring)) {
        errbuf_set(why, whylen, "%s: ca_file must be an absolute path", label);
        return -EINVAL;
    }
    char var[96];
    snprintf(var, sizeof var, "%s: ca_file", label);
    if (d->check_ca_file && d->check_ca_file(var, k->ca_file->valuestring, why, whylen) != 0)
        return -EINVAL;
    t->ca_file = xstrdup(k->ca_file->valuestring);
    if (ascii_strncasecmp(t->url, "https://", 8) != 0)
        sink_warn(d->sink, "%s: ca_file is used only with an https:// url", label);
    return 0;
}

/* token or token_file (read as the X_FILE secrets are); Jellyfin and Emby always need one. */
static int item_token(const item_keys *k, const cfg_target_defaults *d, const char *label, cfg_target *t,
                      char *why, size_t whylen)
{
    if (k->token && k->token_file) {
        errbuf_set(why, whylen, "%s: set token or token_file, not both", label);
        return -EINVAL;
    }
    t->token_var = xasprintf("%s: %s", t->origin, k->token_file ? "token_file" : "token");
    if (k->token) {
        if (!cJSON_IsString(k->token) || str_has_ctl(k->token->valuestring)) {
            errbuf_set(why, whylen, "%s: token must be a string without control characters", label);
            return -EINVAL;
        }
        t->token = xstrdup(k->token->valuestring);
    } else if (k->token_file) {
        if (!cJSON_IsString(k->token_file) || k->token_file->valuestring[0] != '/' ||
            str_has_ctl(k->token_file->valuestring)) {
            errbuf_set(why, whylen, "%s: token_file must be an absolute path", label);
            return -EINVAL;
        }
        char var[96];
        snprintf(var, sizeof var, "%s: token_file", label);
        if (d->read_secret(var, k->token_file->valuestring, &t->token, why, whylen) != 0)
            return -EINVAL;
    } else {
        t->token = xstrdup("");
    }
    if (t->kind != TARGET_PLEX && !t->token[0]) {
        errbuf_set(why, whylen, "%s: a %s server needs token or token_file (its API always needs a key)", label,
                   target_kind_name(t->kind));
        return -EINVAL;
    }
    return 0;
}

/* timeout: a duration string ("30s") or a number of seconds; the range of PLEX_TIMEOUT. */
static int item_timeout(const cJSON *j, const char *label, uint64_t *out, char *why, size_t whylen)
{
    uint64_t ms = 0;
    bool ok;
    if (cJSON_IsNumber(j))
        ok = j->valuedouble >= 1 && j->valuedouble <= 3600 && j->valuedouble == (double)(long)j->valuedouble &&
             (ms = (uint64_t)j->valuedouble * 1000) > 0;
    else
        ok = cJSON_IsString(j) && parse_duration_ms(j->valuestring, &ms) == 0;
    if (!ok || ms < 1000 || ms > 3600000) {
        errbuf_set(why, whylen, "%s: timeout must be a duration between 1s and 1h (\"30s\", or 30 seconds)", label);
        return -EINVAL;
    }
    *out = ms;
    return 0;
}

static int item_bool(const cJSON *j, const char *label, const char *key, bool *out, char *why, size_t whylen)
{
    if (!cJSON_IsBool(j)) {
        errbuf_set(why, whylen, "%s: %s must be true or false", label, key);
        return -EINVAL;
    }
    *out = cJSON_IsTrue(j);
    return 0;
}

/* path_replacements, section_mapping, timeout, empty_trash, scan_path, each checked against
 * the kind; what is not given comes from the defaults. */
static int item_options(const item_keys *k, const cfg_target_defaults *d, const char *label, cfg_target *t,
                        char *why, size_t whylen)
{
    bool plex = t->kind == TARGET_PLEX;
    const char *only = k->section_mapping && !plex ? "section_mapping" : k->empty_trash && !plex ? "empty_trash"
                                                                       : k->scan_path && plex  ? "scan_path"
                                                                                               : NULL;
    if (only) {
        errbuf_set(why, whylen, "%s: %s is for %s servers only", label, only, plex ? "jellyfin and emby" : "plex");
        return -EINVAL;
    }
    char sub[WHY_SUB_MAX];
    if (k->path_replacements) {
        if (!cJSON_IsObject(k->path_replacements)) {
            errbuf_set(why, whylen, "%s: path_replacements must be a JSON object such as {\"/from\": \"/to\"}", label);
            return -EINVAL;
        }
        if (replacements_from("MEDIA_SERVERS", k->path_replacements, &t->path_repl, sub, sizeof sub) != 0) {
            errbuf_set(why, whylen, "%s: path_replacements: %s", label, sub);
            return -EINVAL;
        }
        t->path_repl_own = true;
    } else {
        cfg_replacements_copy(d->path_repl, &t->path_repl);
    }
    if (k->section_mapping) {
        if (!cJSON_IsObject(k->section_mapping)) {
            errbuf_set(why, whylen, "%s: section_mapping must be a JSON object such as {\"/data/tv\": 2}", label);
            return -EINVAL;
        }
        if (sections_from("MEDIA_SERVERS", k->section_mapping, &t->section_map, &t->n_section_map, sub, sizeof sub)) {
            errbuf_set(why, whylen, "%s: section_mapping: %s", label, sub);
            return -EINVAL;
        }
    }
    t->timeout_ms = d->timeout_ms;
    if (k->timeout && item_timeout(k->timeout, label, &t->timeout_ms, why, whylen))
        return -EINVAL;
    t->empty_trash = plex && d->empty_trash;
    if (k->empty_trash && item_bool(k->empty_trash, label, "empty_trash", &t->empty_trash, why, whylen))
        return -EINVAL;
    if (k->scan_path && item_bool(k->scan_path, label, "scan_path", &t->scan_path, why, whylen))
        return -EINVAL;
    return 0;
}

static int target_from_json(const cJSON *item, size_t idx, const cfg_target_defaults *d, cfg_target *t, char *why,
                            size_t whylen)
{
    char label[64];
    if (!cJSON_IsObject(item)) {
        errbuf_set(why, whylen, "item %zu must be an object {name, type, url, token, ...}", idx);
        return -EINVAL;
    }
    item_label(item, idx, label, sizeof label);
    item_keys k;
    if (item_sort_keys(item, label, &k, why, whylen) || item_identity(&k, d, label, t, why, whylen) ||
        item_token(&k, d, label, t, why, whylen) || item_options(&k, d, label, t, why, whylen) ||
        item_ca_file(&k, d, label, t, why, whylen))
        return -EINVAL;
    return 0;
}

/* A bad item's reason: to the sink when there is one (and the reading goes on), else into why,
 * the first one only. */
static void item_failed(const cfg_json_sink *sink, const char *item_why, bool *any, char *why, size_t whylen)
{
    if (sink && sink->error)
        sink->error(sink->ud, item_why);
    else if (!*any)
        errbuf_set(why, whylen, "%s", item_why);
    *any = true;
}

int cfg_json_targets(const char *text, const cfg_target_defaults *d, cfg_target **out, size_t *n, char *why,
                     size_t whylen)
{
    cJSON *j;
    static const char example[] =
        "[{\"name\": \"plex2\", \"type\": \"plex\", \"url\": \"http://10.0.0.5:32400\", \"token\": \"...\"}]";
    int rc = json_value(text, false, example, &j, why, whylen);
    if (rc)
        return rc;
    int count = cJSON_GetArraySize(j);
    if (count > CFG_TARGETS_MAX) {
        errbuf_set(why, whylen, "more than %d media servers", CFG_TARGETS_MAX);
        cJSON_Delete(j);
        return -EINVAL;
    }
    *out = xcalloc(count ? (size_t)count : 1, sizeof **out);
    const cJSON *it;
    size_t idx = 0;
    bool any = false;
    if (why && whylen)
        why[0] = '\0';
    cJSON_ArrayForEach(it, j) {
        cfg_target *t = &(*out)[(*n)++];
        char item_why[WHY_SUB_MAX * 2];
        if (target_from_json(it, ++idx, d, t, item_why, sizeof item_why) == 0)
            continue;
        cfg_target_free(t); /* zeroed: its name is NULL */
        item_failed(d->sink, item_why, &any, why, whylen);
        if (!d->sink)
            break;
    }
    cJSON_Delete(j);
    return any ? -EINVAL : 0;
}

/* ---------------------------------------------------------------- notifications (NOTIFY) */

static const char *const notify_type_names[NOTIFY_TYPE_COUNT] = {
    [NOTIFY_DISCORD] = "discord", [NOTIFY_NTFY] = "ntfy", [NOTIFY_APPRISE] = "apprise",
    [NOTIFY_GOTIFY] = "gotify", [NOTIFY_JSON] = "json",
};

static const char *const notify_event_names[NEV_COUNT] = {
    [NEV_PARKED] = "parked", [NEV_RESUMED] = "resumed", [NEV_FAILING] = "failing",
    [NEV_HELD] = "held", [NEV_RELEASED] = "released", [NEV_TARGET_DOWN] = "target_down",
    [NEV_TARGET_UP] = "target_up", [NEV_SCAN] = "scan", [NEV_TEST] = "test",
};

static const char *const notify_keys[] = {"type", "url", "token", "token_file", "events"};

const char *cfg_notify_type_name(cfg_notify_type t)
{
    return (unsigned)t < NOTIFY_TYPE_COUNT ? notify_type_names[t] : "unknown";
}

const char *cfg_notify_event_name(cfg_notify_event e)
{
    return (unsigned)e < NEV_COUNT ? notify_event_names[e] : "unknown";
}

void cfg_notify_free(cfg_notify *d)
{
    free(d->url);
    free(d->token);
    memset(d, 0, sizeof *d);
}

/* "unknown <what> 'x' (did you mean 'y'?)", the typo escaped and cut short. */
static void unknown_word(char *why, size_t whylen, const char *label, const char *what, const char *typo,
                         const char *const *words, size_t n)
{
    const char *hint = str_nearest(typo, words, n);
    char esc[96] = "";
    str_append_escaped(esc, sizeof esc, typo, strlen(typo), 40);
    errbuf_set(why, whylen, "%s: unknown %s '%s'%s%s%s", label, what, esc, hint ? " (did you mean '" : "",
               hint ? hint : "", hint ? "'?)" : "");
}

/* The members of one item by key (NULL when absent or null); an unknown or repeated key is an error. */
static int notify_sort_keys(const cJSON *item, const char *label, const cJSON *k[ARRAY_SIZE(notify_keys)],
                            char *why, size_t whylen)
{
    for (size_t i = 0; i < ARRAY_SIZE(notify_keys); i++)
        k[i] = NULL;
    const cJSON *f;
    cJSON_ArrayForEach(f, item) {
        size_t i = 0;
        while (i < ARRAY_SIZE(notify_keys) && strcmp(f->string, notify_keys[i]) != 0)
            i++;
        if (i == ARRAY_SIZE(notify_keys)) {
            unknown_word(why, whylen, label, "key", f->string, notify_keys, ARRAY_SIZE(notify_keys));
            return -EINVAL;
        }
        if (k[i]) {
            errbuf_set(why, whylen, "%s: key '%s' is given twice", label, notify_keys[i]);
            return -EINVAL;
        }
        k[i] = cJSON_IsNull(f) ? NULL : f;
    }
    return 0;
}

static int notify_events(const cJSON *j, const char *label, unsigned *out, char *why, size_t whylen)
{
    if (!j) {
        *out = NOTIFY_EVENTS_DEFAULT;
        return 0;
    }
    if (!cJSON_IsArray(j) || cJSON_GetArraySize(j) == 0) {
        errbuf_set(why, whylen, "%s: events must be a non-empty JSON list such as [\"parked\", \"resumed\"]", label);
        return -EINVAL;
    }
    *out = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, j) {
        if (!cJSON_IsString(it)) {
            errbuf_set(why, whylen, "%s: each event must be a string", label);
            return -EINVAL;
        }
        size_t e = 0;
        while (e < NEV_COUNT && !str_eq_ci(it->valuestring, notify_event_names[e]))
            e++;
        if (e == NEV_COUNT) {
            unknown_word(why, whylen, label, "event", it->valuestring, notify_event_names, NEV_COUNT);
            return -EINVAL;
        }
        *out |= 1u << e;
    }
    return 0;
}

/* token or token_file; gotify needs one (its API key), discord takes none (the URL holds it). */
static int notify_token(const cJSON *token, const cJSON *file, const char *label,
                        int (*read_secret)(const char *, const char *, char **, char *, size_t), cfg_notify *d,
                        char *why, size_t whylen)
{
    if (token && file) {
        errbuf_set(why, whylen, "%s: set token or token_file, not both", label);
        return -EINVAL;
    }
    if (token) {
        if (!cJSON_IsString(token) || str_has_ctl(token->valuestring)) {
            errbuf_set(why, whylen, "%s: token must be a string without control characters", label);
            return -EINVAL;
        }
        d->token = xstrdup(token->valuestring);
    } else if (file) {
        if (!cJSON_IsString(file) || file->valuestring[0] != '/' || str_has_ctl(file->valuestring)) {
            errbuf_set(why, whylen, "%s: token_file must be an absolute path", label);
            return -EINVAL;
        }
        char var[96];
        snprintf(var, sizeof var, "%s: token_file", label);
        if (read_secret(var, file->valuestring, &d->token, why, whylen) != 0)
            return -EINVAL;
        if (str_has_ctl(d->token)) {
            errbuf_set(why, whylen, "%s: token_file holds a control character", label);
            return -EINVAL;
        }
    } else {
        d->token = xstrdup("");
    }
    if (d->type == NOTIFY_GOTIFY && !d->token[0]) {
        errbuf_set(why, whylen, "%s: a gotify destination needs token or token_file (its application token)", label);
        return -EINVAL;
    }
    if (d->type == NOTIFY_DISCORD && d->token[0]) {
        errbuf_set(why, whylen, "%s: a discord destination takes no token (its webhook URL holds the key)", label);
        return -EINVAL;
    }
    return 0;
}

static int notify_from_json(const cJSON *item, size_t idx,
                            int (*read_secret)(const char *, const char *, char **, char *, size_t), cfg_notify *d,
                            char *why, size_t whylen)
{
    char label[64];
    if (!cJSON_IsObject(item)) {
        errbuf_set(why, whylen, "item %zu must be an object {type, url, token, events}", idx);
        return -EINVAL;
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(item, "type");
    size_t t = 0;
    while (cJSON_IsString(type) && t < NOTIFY_TYPE_COUNT && !str_eq_ci(type->valuestring, notify_type_names[t]))
        t++;
    bool typed = cJSON_IsString(type) && t < NOTIFY_TYPE_COUNT;
    if (typed)
        snprintf(label, sizeof label, "item %zu (%s)", idx, notify_type_names[t]);
    else
        snprintf(label, sizeof label, "item %zu", idx);
    const cJSON *k[ARRAY_SIZE(notify_keys)];
    if (notify_sort_keys(item, label, k, why, whylen))
        return -EINVAL;
    if (!typed && cJSON_IsString(type)) {
        unknown_word(why, whylen, label, "type", type->valuestring, notify_type_names, NOTIFY_TYPE_COUNT);
        return -EINVAL;
    }
    if (!typed) {
        errbuf_set(why, whylen, "%s: type must be discord, ntfy, apprise, gotify or json", label);
        return -EINVAL;
    }
    d->type = (cfg_notify_type)t;
    if (!cJSON_IsString(k[1])) {
        errbuf_set(why, whylen, "%s: url is required (a string)", label);
        return -EINVAL;
    }
    d->url = str_trim_dup(k[1]->valuestring);
    const char *r = cfg_url_check(d->url);
    if (r) {
        errbuf_set(why, whylen, "%s: url %s", label, r);
        return -EINVAL;
    }
    if (notify_token(k[2], k[3], label, read_secret, d, why, whylen))
        return -EINVAL;
    return notify_events(k[4], label, &d->events, why, whylen);
}

int cfg_json_notify(const char *text,
                    int (*read_secret)(const char *var, const char *path, char **out, char *why, size_t whylen),
                    const cfg_json_sink *sink, cfg_notify **out, size_t *n, char *why, size_t whylen)
{
    cJSON *j;
    int rc = json_value(text, false, "[{\"type\": \"ntfy\", \"url\": \"https://ntfy.sh/my-topic\"}]", &j, why, whylen);
    if (rc)
        return rc;
    int count = cJSON_GetArraySize(j);
    if (count > CFG_NOTIFY_MAX) {
        errbuf_set(why, whylen, "more than %d destinations", CFG_NOTIFY_MAX);
        cJSON_Delete(j);
        return -EINVAL;
    }
    *out = xcalloc(count ? (size_t)count : 1, sizeof **out);
    const cJSON *it;
    size_t idx = 0;
    bool any = false;
    if (why && whylen)
        why[0] = '\0';
    cJSON_ArrayForEach(it, j) {
        cfg_notify *d = &(*out)[*n];
        char item_why[WHY_SUB_MAX * 2];
        if (notify_from_json(it, ++idx, read_secret, d, item_why, sizeof item_why) == 0) {
            (*n)++;
            continue;
        }
        cfg_notify_free(d);
        item_failed(sink, item_why, &any, why, whylen);
        if (!sink)
            break;
    }
    cJSON_Delete(j);
    return any ? -EINVAL : 0;
}
