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

/* ---------------------------------------------------------------- bounded JSON */

/* Deepest bracket nesting of a JSON text, strings skipped. */
static int json_depth(const char *s)
{
    int depth = 0, max = 0;
    bool in_str = false;
    for (; *s; s++) {
        if (in_str) {
            if (*s == '\\' && s[1])
                s++;
            else if (*s == '"')
                in_str = false;
        } else if (*s == '"') {
            in_str = true;
        } else if (*s == '{' || *s == '[') {
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

/* The JSON tree of a variable's text, an object or a list as `object` asks; *out is NULL on
 * failure. */
static int json_value(const char *v, bool object, cJSON **out, char *why, size_t whylen)
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
        errbuf_set(why, whylen, "not valid JSON (error at byte %zu)", at);
        goto out;
    }
    if (!json_strings_ok(j)) {
        errbuf_set(why, whylen, "a JSON string is longer than %d bytes", CFG_VALUE_MAX);
        goto out;
    }
    if (object && !cJSON_IsObject(j)) {
        errbuf_set(why, whylen, "must be a JSON object such as {\"/from\": \"/to\"}");
        goto out;
    }
    if (!object && !cJSON_IsArray(j)) {
        errbuf_set(why, whylen, "must be a JSON list such as [...]");
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
    int rc = json_value(text, true, &j, why, whylen);
    if (rc == 0)
        rc = replacements_from(name, j, out, why, whylen);
    cJSON_Delete(j);
    return rc;
}

int cfg_json_sections(const char *name, const char *text, cfg_section_map **out, size_t *n, char *why,
                      size_t whylen)
{
    cJSON *j;
    int rc = json_value(text, true, &j, why, whylen);
    if (rc == 0)
        rc = sections_from(name, j, out, n, why, whylen);
    cJSON_Delete(j);
    return rc;
}

int cfg_json_anchors(const char *text, char ***out, size_t *n, char *why, size_t whylen)
{
    cJSON *j;
    int rc = json_value(text, false, &j, why, whylen);
    if (rc == 0)
        rc = anchors_from(j, out, n, why, whylen);
    cJSON_Delete(j);
    return rc;
}

int cfg_json_mounts(const char *text, cfg_mount **out, size_t *n, char *why, size_t whylen)
{
    cJSON *j;
    int rc = json_value(text, false, &j, why, whylen);
    if (rc == 0)
        rc = mounts_from(j, out, n, why, whylen);
    cJSON_Delete(j);
    return rc;
}
