/* libraries.c: a media server's library list read from its answer, into the one shape every kind
 * shares (libraries.h): Plex's GET /library/sections (JSON or XML, with each section's
 * `refreshing`) and Jellyfin's and Emby's GET /Library/VirtualFolders. The answers come over the
 * network: every parser is bounded (libraries, locations, depth, value length). */
#include "libraries.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "util.h"

#define XML_MAX_DEPTH 64
#define XML_MAX_VALUE 8192 /* decoded bytes of one attribute value */
#define LIBRARY_ID_MAX 256 /* bytes of one id (an ItemId is 32 hex digits) */

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

static void library_free(media_library *lib)
{
    free(lib->id);
    free(lib->title);
    free(lib->type);
    for (size_t i = 0; i < lib->n_locations; i++)
        free(lib->locations[i]);
    free(lib->locations);
    memset(lib, 0, sizeof(*lib));
}

const media_library *media_libraries_find(const media_libraries *l, const char *id)
{
    for (size_t i = 0; l && id && i < l->n; i++)
        if (strcmp(l->v[i].id, id) == 0)
            return &l->v[i];
    return NULL;
}

void media_libraries_free(media_libraries *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        library_free(&l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

/* Appends a library without locations; the caller adds them. -EINVAL past the bound. type may
 * be NULL (kept NULL). */
static media_library *library_add(media_libraries *l, const char *id, const char *title, const char *type,
                                  char *err, size_t errlen)
{
    if (l->n >= LIBRARIES_MAX) {
        fail(err, errlen, "more than %d libraries", LIBRARIES_MAX);
        return NULL;
    }
    l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
    media_library *lib = &l->v[l->n++];
    memset(lib, 0, sizeof(*lib));
    lib->id = xstrdup(id);
    lib->title = xstrdup(title ? title : "");
    lib->type = xstrdup(type);
    return lib;
}

/* Adds a normalized location to lib; empty paths and repeats are dropped. */
static int location_add(media_library *lib, const char *path, char *err, size_t errlen)
{
    if (!path || !path[0])
        return 0;
    char *norm = path_normalize(path);
    for (size_t i = 0; i < lib->n_locations; i++) {
        if (strcmp(lib->locations[i], norm) == 0) {
            free(norm);
            return 0;
        }
    }
    if (lib->n_locations >= LIBRARIES_MAX_LOCATIONS) {
        free(norm);
        return fail(err, errlen, "library %s has more than %d locations", lib->id, LIBRARIES_MAX_LOCATIONS);
    }
    lib->locations = xrealloc(lib->locations, (lib->n_locations + 1) * sizeof(char *));
    lib->locations[lib->n_locations++] = norm;
    return 0;
}

/* The answer's first significant byte (after a UTF-8 byte order mark and blanks); len when none. */
static size_t body_start(const char *body, size_t len)
{
    size_t i = 0;
    if (len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0)
        i = 3;
    while (i < len && strchr(" \t\r\n", body[i]) && body[i])
        i++;
    return i;
}

/* ---- Plex: section keys and flags ---------------------------------------------------- */

/* A section key: decimal digits only, positive, small enough to never overflow; *out gets its
 * canonical decimal spelling (the id). */
static bool plex_key_text(const char *s, size_t n, char out[24])
{
    long long v = 0;
    if (n == 0 || n > 15)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v <= 0)
        return false;
    snprintf(out, 24, "%lld", v);
    return true;
}

static const char *json_string(const cJSON *obj, const char *name)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

static bool plex_json_key(const cJSON *d, char out[24])
{
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(d, "key");
    if (cJSON_IsString(k))
        return plex_key_text(k->valuestring, strlen(k->valuestring), out);
    if (cJSON_IsNumber(k)) {
        double v = k->valuedouble;
        if (!(v >= 1 && v <= 1e15) || v != (double)(long long)v)
            return false;
        snprintf(out, 24, "%lld", (long long)v);
        return true;
    }
    return false;
}

/* `refreshing`: JSON true/false, 1/0 or "1"/"0" (what Plex versions have sent); anything else
 * reads as not refreshing. */
static bool plex_json_refreshing(const cJSON *d)
{
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(d, "refreshing");
    if (cJSON_IsBool(r))
        return cJSON_IsTrue(r);
    if (cJSON_IsNumber(r))
        return r->valuedouble == 1;
    if (cJSON_IsString(r))
        return strcmp(r->valuestring, "1") == 0 || strcmp(r->valuestring, "true") == 0;
    return false;
}

/* ---- Plex: JSON ---------------------------------------------------------------------- */

static int plex_json_directory(const cJSON *d, size_t i, media_libraries *out, char *err, size_t errlen)
{
    char key[24];
    if (!cJSON_IsObject(d) || !plex_json_key(d, key))
        return fail(err, errlen, "Directory[%zu] has no valid section key", i);
    media_library *lib = library_add(out, key, json_string(d, "title"), json_string(d, "type"), err, errlen);
    if (!lib)
        return -EINVAL;
    if (!lib->type)
        lib->type = xstrdup("");
    lib->refreshing = plex_json_refreshing(d);
    const cJSON *locs = cJSON_GetObjectItemCaseSensitive(d, "Location");
    const cJSON *loc;
    if (cJSON_IsArray(locs)) {
        cJSON_ArrayForEach(loc, locs) {
            int rc = location_add(lib, json_string(loc, "path"), err, errlen);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int plex_parse_json(const char *body, size_t len, media_libraries *out, char *err, size_t errlen)
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
        rc = plex_json_directory(d, i++, out, err, errlen);
        if (rc)
            goto out;
    }
out:
    cJSON_Delete(root);
    return rc;
}

/* ---- Plex: XML ----------------------------------------------------------------------------- */
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

/* One start tag at depth `depth` (0 = root). *dir is the library being filled (NULL outside a
 * Directory). */
static int xml_element(xml_in *x, const char *name, size_t nlen, int depth, media_library **dir,
                       bool *self_closing, media_libraries *out, char *err, size_t errlen)
{
    xml_attr a[] = {{"key", NULL}, {"type", NULL}, {"title", NULL}, {"path", NULL}, {"refreshing", NULL}};
    int rc = xml_attrs(x, a, ARRAY_SIZE(a), self_closing, err, errlen);
    if (rc)
        goto out;
    if (depth == 0) {
        if (!name_is(name, nlen, "MediaContainer"))
            rc = fail(err, errlen, "XML root element is not MediaContainer");
    } else if (depth == 1 && name_is(name, nlen, "Directory")) {
        char key[24];
        if (!a[0].value || !plex_key_text(a[0].value, strlen(a[0].value), key)) {
            rc = fail(err, errlen, "Directory %zu has no valid section key", out->n);
            goto out;
        }
        media_library *lib = library_add(out, key, a[2].value, a[1].value ? a[1].value : "", err, errlen);
        if (!lib) {
            rc = -EINVAL;
            goto out;
        }
        lib->refreshing = a[4].value && strcmp(a[4].value, "1") == 0;
        *dir = *self_closing ? NULL : lib;
    } else if (depth == 2 && *dir && name_is(name, nlen, "Location")) {
        rc = location_add(*dir, a[3].value, err, errlen);
    }
out:
    xml_attrs_free(a, ARRAY_SIZE(a));
    return rc;
}

static int plex_parse_xml(const char *body, size_t len, media_libraries *out, char *err, size_t errlen)
{
    xml_in x = {body, body + len};
    int depth = 0;
    bool root_seen = false;
    media_library *dir = NULL; /* points into out->v: re-read after each library_add */

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
                dir = NULL;
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
        rc = xml_element(&x, name, nlen, depth, &dir, &self_closing, out, err, errlen);
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

int plex_media_libraries_parse(const char *body, size_t len, media_libraries *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (!body)
        return fail(err, errlen, "empty answer");
    size_t i = body_start(body, len);
    if (i == len)
        return fail(err, errlen, "empty answer");
    int rc;
    if (body[i] == '{')
        rc = plex_parse_json(body + i, len - i, out, err, errlen);
    else if (body[i] == '<')
        rc = plex_parse_xml(body + i, len - i, out, err, errlen);
    else
        rc = fail(err, errlen, "answer is neither JSON nor XML");
    if (rc) {
        media_libraries_free(out);
        return rc;
    }
    out->fetched_at = wall_ms();
    return 0;
}

/* ---- Jellyfin and Emby: /Library/VirtualFolders --------------------------------------- */

/* One item: {"Name", "Locations": [...], "ItemId", "CollectionType"}. Relative locations (a
 * Windows drive, a share name) cannot match an absolute target path: skipped. */
static int mb_folder(const cJSON *f, size_t i, media_libraries *out, char *err, size_t errlen)
{
    if (!cJSON_IsObject(f))
        return fail(err, errlen, "VirtualFolders[%zu] is not an object", i);
    const char *name = json_string(f, "Name");
    const char *id = json_string(f, "ItemId");
    if (!id || !*id)
        id = name;
    if (!id || !*id)
        return fail(err, errlen, "VirtualFolders[%zu] has neither ItemId nor Name", i);
    if (strlen(id) > LIBRARY_ID_MAX)
        return fail(err, errlen, "VirtualFolders[%zu] has an id longer than %d bytes", i, LIBRARY_ID_MAX);
    media_library *lib = library_add(out, id, name, json_string(f, "CollectionType"), err, errlen);
    if (!lib)
        return -EINVAL;
    const cJSON *locs = cJSON_GetObjectItemCaseSensitive(f, "Locations");
    const cJSON *loc;
    if (!cJSON_IsArray(locs))
        return 0;
    cJSON_ArrayForEach(loc, locs) {
        if (!cJSON_IsString(loc) || loc->valuestring[0] != '/')
            continue;
        int rc = location_add(lib, loc->valuestring, err, errlen);
        if (rc)
            return rc;
    }
    return 0;
}

int mb_libraries_parse(const char *body, size_t len, media_libraries *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (!body || body_start(body, len) == len)
        return fail(err, errlen, "empty answer");
    size_t skip = body_start(body, len);
    cJSON *root = cJSON_ParseWithLength(body + skip, len - skip);
    if (!root)
        return fail(err, errlen, "answer is not valid JSON");
    int rc = 0;
    if (!cJSON_IsArray(root)) {
        rc = fail(err, errlen, "answer is not a JSON list of libraries");
        goto out;
    }
    size_t i = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, root) {
        rc = mb_folder(f, i++, out, err, errlen);
        if (rc)
            goto out;
    }
    out->fetched_at = wall_ms();
out:
    cJSON_Delete(root);
    if (rc)
        media_libraries_free(out);
    return rc;
}
