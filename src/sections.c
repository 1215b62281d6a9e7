/* sections.c: which Plex library sections a Plex path belongs to: SECTION_MAPPING first, then
 * the library list Plex answered on GET /library/sections (JSON or XML, parsed here with hard
 * bounds: the answer comes over the network). */
#include "sections.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "paths.h"
#include "util.h"

#define SECTIONS_MAX_LIBRARIES 1024
#define SECTIONS_MAX_LOCATIONS 64
#define XML_MAX_DEPTH 64
#define XML_MAX_VALUE 8192 /* decoded bytes of one attribute value */

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

static void library_free(plex_library *lib)
{
    free(lib->title);
    free(lib->type);
    for (size_t i = 0; i < lib->n_locations; i++)
        free(lib->locations[i]);
    free(lib->locations);
    memset(lib, 0, sizeof(*lib));
}

void plex_libraries_free(plex_libraries *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        library_free(&l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

/* A section id: decimal digits only, positive, small enough to never overflow. */
static bool parse_key(const char *s, size_t n, long *out)
{
    long v = 0;
    if (n == 0 || n > 15)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v <= 0)
        return false;
    *out = v;
    return true;
}

/* Appends an empty library; the caller fills it. -EINVAL past the bound. */
static int library_add(plex_libraries *l, long key, const char *title, const char *type,
                       char *err, size_t errlen)
{
    if (l->n >= SECTIONS_MAX_LIBRARIES)
        return fail(err, errlen, "more than %d libraries", SECTIONS_MAX_LIBRARIES);
    l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
    plex_library *lib = &l->v[l->n++];
    memset(lib, 0, sizeof(*lib));
    lib->key = key;
    lib->title = xstrdup(title ? title : "");
    lib->type = xstrdup(type ? type : "");
    return 0;
}

/* Adds a normalized location to the last library; empty paths and repeats are dropped. */
static int location_add(plex_libraries *l, const char *path, char *err, size_t errlen)
{
    plex_library *lib = &l->v[l->n - 1];
    if (!path || !path[0])
        return 0;
    char *norm = path_normalize(path);
    for (size_t i = 0; i < lib->n_locations; i++) {
        if (strcmp(lib->locations[i], norm) == 0) {
            free(norm);
            return 0;
        }
    }
    if (lib->n_locations >= SECTIONS_MAX_LOCATIONS) {
        free(norm);
        return fail(err, errlen, "library %ld has more than %d locations", lib->key,
                    SECTIONS_MAX_LOCATIONS);
    }
    lib->locations = xrealloc(lib->locations, (lib->n_locations + 1) * sizeof(char *));
    lib->locations[lib->n_locations++] = norm;
    return 0;
}

/* ---- JSON ---------------------------------------------------------------------------- */

static const char *json_string(const cJSON *obj, const char *name)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

static bool json_key(const cJSON *d, long *out)
{
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(d, "key");
    if (cJSON_IsString(k))
        return parse_key(k->valuestring, strlen(k->valuestring), out);
    if (cJSON_IsNumber(k)) {
        double v = k->valuedouble;
        if (!(v >= 1 && v <= 1e15) || v != (double)(long)v)
            return false;
        *out = (long)v;
        return true;
    }
    return false;
}

static int parse_json(const char *body, size_t len, plex_libraries *out, char *err, size_t errlen)
{
    int rc = 0;
    cJSON *root = cJSON_ParseWithLength(body, len);
    if (!root)
        return fail(err, errlen, "answer is not valid JSON");

    const cJSON *mc = cJSON_GetObjectItemCaseSensitive(root, "MediaContainer");
    if (!cJSON_IsObject(mc)) {
        rc = fail(err, errlen, "JSON answer has no MediaContainer object");
        goto out;
    }
    const cJSON *dirs = cJSON_GetObjectItemCaseSensitive(mc, "Directory");
    if (!dirs || cJSON_IsNull(dirs))
        goto out; /* a server with no libraries */
    if (!cJSON_IsArray(dirs)) {
        rc = fail(err, errlen, "MediaContainer.Directory is not an array");
        goto out;
    }
    size_t i = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, dirs) {
        long key;
        if (!cJSON_IsObject(d) || !json_key(d, &key)) {
            rc = fail(err, errlen, "Directory[%zu] has no valid section key", i);
            goto out;
        }
        rc = library_add(out, key, json_string(d, "title"), json_string(d, "type"), err, errlen);
        if (rc)
            goto out;
        const cJSON *locs = cJSON_GetObjectItemCaseSensitive(d, "Location");
        const cJSON *loc;
        if (cJSON_IsArray(locs)) {
            cJSON_ArrayForEach(loc, locs) {
                rc = location_add(out, json_string(loc, "path"), err, errlen);
                if (rc)
                    goto out;
            }
        }
        i++;
    }
out:
    cJSON_Delete(root);
    return rc;
}

/* ---- XML ----------------------------------------------------------------------------- */
/* Just enough XML for Plex's answer: elements, attributes in ' or ", the five named entities
 * and numeric references; comments, processing instructions, DOCTYPE and CDATA are skipped;
 * text is ignored. Everything is bounded by the input length, XML_MAX_DEPTH and XML_MAX_VALUE. */

typedef struct xml_in {
    const char *p, *end;
} xml_in;

typedef struct xml_attr {
    const char *name;
    char *value; /* decoded, NULL when the tag lacks it */
} xml_attr;

static bool xml_starts(const xml_in *x, const char *s)
{
    size_t n = strlen(s);
    return (size_t)(x->end - x->p) >= n && memcmp(x->p, s, n) == 0;
}

static bool xml_skip_past(xml_in *x, const char *s)
{
    const char *hit = memmem(x->p, (size_t)(x->end - x->p), s, strlen(s));
    if (!hit)
        return false;
    x->p = hit + strlen(s);
    return true;
}

static bool xml_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void xml_skip_ws(xml_in *x)
{
    while (x->p < x->end && xml_space(*x->p))
        x->p++;
}

static bool xml_name_char(char c)
{
    unsigned char u = (unsigned char)c;
    return (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') ||
           u == '_' || u == ':' || u == '-' || u == '.' || u >= 0x80;
}

static size_t xml_name(xml_in *x, const char **name)
{
    *name = x->p;
    while (x->p < x->end && xml_name_char(*x->p))
        x->p++;
    return (size_t)(x->p - *name);
}

static bool name_is(const char *name, size_t n, const char *want)
{
    return strlen(want) == n && memcmp(name, want, n) == 0;
}

static size_t utf8_encode(unsigned long cp, char u[4])
{
    if (cp < 0x80) {
        u[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    u[0] = (char)(0xF0 | (cp >> 18));
    u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The code point of one entity body (between '&' and ';'); -1 when unknown or invalid
 * (&#0;, surrogates and values past U+10FFFF are refused). */
static long xml_entity(const char *e, size_t n)
{
    static const struct {
        const char *name;
        char ch;
    } named[] = {{"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}};
    for (size_t i = 0; i < ARRAY_SIZE(named); i++) {
        if (name_is(e, n, named[i].name))
            return named[i].ch;
    }
    if (n < 2 || e[0] != '#')
        return -1;
    bool hex = e[1] == 'x';
    size_t i = hex ? 2 : 1;
    if (i == n || n - i > 8)
        return -1;
    long cp = 0;
    for (; i < n; i++) {
        char c = e[i];
        int d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (hex && c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (hex && c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        cp = cp * (hex ? 16 : 10) + d;
    }
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
    return cp;
}

static int xml_decode(const char *s, size_t n, char **out, char *err, size_t errlen)
{
    buf_t b;
    buf_init(&b, XML_MAX_VALUE);
    size_t i = 0;
    while (i < n) {
        const char *amp = memchr(s + i, '&', n - i);
        size_t plain = amp ? (size_t)(amp - (s + i)) : n - i;
        if (buf_append(&b, s + i, plain))
            goto too_long;
        i += plain;
        if (i == n)
            break;
        const char *semi = memchr(s + i, ';', n - i < 12 ? n - i : 12);
        long cp = semi ? xml_entity(s + i + 1, (size_t)(semi - (s + i + 1))) : -1;
        if (cp < 0) {
            buf_free(&b);
            return fail(err, errlen, "XML has an unknown or invalid entity");
        }
        char u[4];
        if (buf_append(&b, u, utf8_encode((unsigned long)cp, u)))
            goto too_long;
        i = (size_t)(semi - s) + 1;
    }
    *out = buf_steal(&b);
    return 0;
too_long:
    buf_free(&b);
    return fail(err, errlen, "XML attribute value longer than %d bytes", XML_MAX_VALUE);
}

/* Parses the attributes of a start tag up to and including '>' or '/>'. Only the attributes
 * named in `want` are decoded (into want[i].value, owned by the caller). */
static int xml_attrs(xml_in *x, xml_attr *want, size_t n_want, bool *self_closing, char *err,
                     size_t errlen)
{
    for (;;) {
        xml_skip_ws(x);
        if (x->p >= x->end)
            return fail(err, errlen, "XML ends inside a tag");
        if (*x->p == '>') {
            x->p++;
            *self_closing = false;
            return 0;
        }
        if (xml_starts(x, "/>")) {
            x->p += 2;
            *self_closing = true;
            return 0;
        }
        const char *name;
        size_t nlen = xml_name(x, &name);
        if (nlen == 0)
            return fail(err, errlen, "XML has a malformed attribute");
        xml_skip_ws(x);
        if (x->p >= x->end || *x->p != '=')
            return fail(err, errlen, "XML attribute without a value");
        x->p++;
        xml_skip_ws(x);
        if (x->p >= x->end || (*x->p != '"' && *x->p != '\''))
            return fail(err, errlen, "XML attribute value is not quoted");
        char q = *x->p++;
        const char *v = x->p;
        const char *close = memchr(v, q, (size_t)(x->end - v));
        if (!close)
            return fail(err, errlen, "XML ends inside an attribute value");
        if (memchr(v, '<', (size_t)(close - v)))
            return fail(err, errlen, "XML attribute value contains '<'");
        x->p = close + 1;
        for (size_t i = 0; i < n_want; i++) {
            if (!want[i].value && name_is(name, nlen, want[i].name)) {
                int rc = xml_decode(v, (size_t)(close - v), &want[i].value, err, errlen);
                if (rc)
                    return rc;
            }
        }
    }
}

static void xml_attrs_free(xml_attr *a, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(a[i].value);
        a[i].value = NULL;
    }
}

/* Skips markup that is not an element: comments, CDATA, <!DOCTYPE>, <?...?>. Returns 1 when it
 * skipped something, 0 when x is at an element tag, -EINVAL when the markup is unterminated. */
static int xml_skip_markup(xml_in *x, char *err, size_t errlen)
{
    static const struct {
        const char *open, *close;
    } kinds[] = {{"<!--", "-->"}, {"<![CDATA[", "]]>"}, {"<?", "?>"}, {"<!", ">"}};
    for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
        if (xml_starts(x, kinds[i].open)) {
            x->p += strlen(kinds[i].open);
            if (!xml_skip_past(x, kinds[i].close))
                return fail(err, errlen, "XML ends inside %s", kinds[i].open);
            return 1;
        }
    }
    return 0;
}

/* One start tag at depth `depth` (0 = root). Updates the library being filled. */
static int xml_element(xml_in *x, const char *name, size_t nlen, int depth, bool *in_dir,
                       bool *self_closing, plex_libraries *out, char *err, size_t errlen)
{
    xml_attr a[] = {{"key", NULL}, {"type", NULL}, {"title", NULL}, {"path", NULL}};
    int rc = xml_attrs(x, a, ARRAY_SIZE(a), self_closing, err, errlen);
    if (rc)
        goto out;
    if (depth == 0) {
        if (!name_is(name, nlen, "MediaContainer"))
            rc = fail(err, errlen, "XML root element is not MediaContainer");
    } else if (depth == 1 && name_is(name, nlen, "Directory")) {
        long key;
        if (!a[0].value || !parse_key(a[0].value, strlen(a[0].value), &key)) {
            rc = fail(err, errlen, "Directory %zu has no valid section key", out->n);
            goto out;
        }
        rc = library_add(out, key, a[2].value, a[1].value, err, errlen);
        *in_dir = rc == 0 && !*self_closing;
    } else if (depth == 2 && *in_dir && name_is(name, nlen, "Location")) {
        rc = location_add(out, a[3].value, err, errlen);
    }
out:
    xml_attrs_free(a, ARRAY_SIZE(a));
    return rc;
}

static int parse_xml(const char *body, size_t len, plex_libraries *out, char *err, size_t errlen)
{
    xml_in x = {body, body + len};
    int depth = 0;
    bool root_seen = false, in_dir = false;

    for (;;) {
        const char *lt = memchr(x.p, '<', (size_t)(x.end - x.p));
        if (!lt)
            break;
        x.p = lt;
        int rc = xml_skip_markup(&x, err, errlen);
        if (rc < 0)
            return rc;
        if (rc > 0)
            continue;
        if (xml_starts(&x, "</")) {
            if (depth == 0 || !xml_skip_past(&x, ">"))
                return fail(err, errlen, "XML has an unbalanced closing tag");
            depth--;
            if (depth < 2)
                in_dir = false;
            continue;
        }
        x.p++;
        const char *name;
        size_t nlen = xml_name(&x, &name);
        if (nlen == 0)
            return fail(err, errlen, "XML has a malformed tag");
        if (depth == 0 && root_seen)
            return fail(err, errlen, "XML has more than one root element");
        bool self_closing = false;
        rc = xml_element(&x, name, nlen, depth, &in_dir, &self_closing, out, err, errlen);
        if (rc)
            return rc;
        if (depth == 0)
            root_seen = true;
        if (!self_closing && ++depth > XML_MAX_DEPTH)
            return fail(err, errlen, "XML nested deeper than %d", XML_MAX_DEPTH);
    }
    if (!root_seen)
        return fail(err, errlen, "XML answer has no MediaContainer");
    if (depth != 0)
        return fail(err, errlen, "XML answer is truncated");
    return 0;
}

int plex_libraries_parse(const char *body, size_t len, plex_libraries *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (!body)
        return fail(err, errlen, "empty answer");
    size_t i = 0;
    if (len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0)
        i = 3; /* a UTF-8 byte order mark */
    while (i < len && xml_space(body[i]))
        i++;
    if (i == len)
        return fail(err, errlen, "empty answer");

    int rc;
    if (body[i] == '{')
        rc = parse_json(body + i, len - i, out, err, errlen);
    else if (body[i] == '<')
        rc = parse_xml(body + i, len - i, out, err, errlen);
    else
        rc = fail(err, errlen, "answer is neither JSON nor XML");
    if (rc) {
        plex_libraries_free(out);
        return rc;
    }
    out->fetched_at = wall_ms();
    return 0;
}

/* ---- matching ------------------------------------------------------------------------ */

static const plex_library *library_by_key(const plex_libraries *libs, long key)
{
    if (!libs || libs->fetched_at == 0)
        return NULL;
    for (size_t i = 0; i < libs->n; i++) {
        if (libs->v[i].key == key)
            return &libs->v[i];
    }
    return NULL;
}

static bool under_any_location(const plex_library *lib, const char *plex_path)
{
    for (size_t i = 0; lib && i < lib->n_locations; i++) {
        if (paths_has_prefix(plex_path, lib->locations[i], false))
            return true;
    }
    return false;
}

static const cfg_section_map *mapping_for(const config_t *c, const char *plex_path)
{
    const cfg_section_map *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < c->n_section_map; i++) {
        const char *prefix = c->section_map[i].prefix;
        if (!prefix || !prefix[0])
            continue;
        size_t len = strlen(prefix);
        if ((!best || len > best_len) && paths_has_prefix(plex_path, prefix, true)) {
            best = &c->section_map[i];
            best_len = len;
        }
    }
    return best;
}

sections_result sections_match(const config_t *c, const plex_libraries *libs, const char *plex_path,
                               section_match *out, size_t max, size_t *n_out)
{
    size_t n = 0;
    const cfg_section_map *m = mapping_for(c, plex_path);
    if (m) {
        if (max > 0) {
            const plex_library *lib = library_by_key(libs, m->section);
            bool known = libs && libs->fetched_at != 0;
            out[n++] = (section_match){
                .section = m->section,
                .source = SECTION_FROM_MAPPING,
                .outside_locations = known && !under_any_location(lib, plex_path),
                .library = lib,
            };
        }
        *n_out = n;
        return SECTIONS_MATCHED;
    }

    if (!libs || libs->fetched_at == 0) {
        *n_out = 0;
        return SECTIONS_UNRESOLVED;
    }
    bool any = false;
    for (size_t i = 0; i < libs->n; i++) {
        const plex_library *lib = &libs->v[i];
        if (!under_any_location(lib, plex_path))
            continue;
        bool dup = false;
        for (size_t j = 0; j < n; j++)
            dup = dup || out[j].section == lib->key;
        if (dup)
            continue;
        any = true;
        if (n < max) {
            out[n++] = (section_match){
                .section = lib->key,
                .source = SECTION_FROM_LIBRARY,
                .outside_locations = false,
                .library = lib,
            };
        }
    }
    *n_out = n;
    return any ? SECTIONS_MATCHED : SECTIONS_NO_MATCH;
}

const char **sections_all_roots(const config_t *c, const plex_libraries *libs, size_t *n)
{
    size_t total = c->n_section_map;
    for (size_t i = 0; libs && i < libs->n; i++)
        total += libs->v[i].n_locations;
    const char **v = xcalloc(total ? total : 1, sizeof(*v));
    size_t k = 0;
    for (size_t i = 0; libs && i < libs->n; i++) {
        for (size_t j = 0; j < libs->v[i].n_locations; j++)
            v[k++] = libs->v[i].locations[j];
    }
    for (size_t i = 0; i < c->n_section_map; i++)
        v[k++] = c->section_map[i].prefix;
    *n = k;
    return v;
}
