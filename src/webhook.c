/* webhook.c: an *arr webhook body -> the folders it asks to scan (in arr terms), following
 * DESIGN.md's table ("Which folders an event asks for"). Pure: no I/O, no loop. */
#include "webhook.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paths.h"
#include "util.h"

#define WEBHOOK_MAX_DEPTH 64
#define WEBHOOK_DEFAULT_MAX_FOLDERS 100 /* when the config leaves max_folders_per_event at 0 */

static const char *const app_names[APP_COUNT] = {"sonarr", "radarr", "lidarr", "readarr", "manual"};

const char *arr_app_name(arr_app a)
{
    return (unsigned)a < APP_COUNT ? app_names[a] : "unknown";
}

static bool ieq(const char *a, const char *b)
{
    size_t n = strlen(a);
    return n == strlen(b) && ascii_strncasecmp(a, b, n) == 0;
}

int arr_app_parse(const char *s, arr_app *out)
{
    for (int i = 0; s && i < APP_COUNT; i++) {
        if (ieq(s, app_names[i])) {
            *out = (arr_app)i;
            return 0;
        }
    }
    return -EINVAL;
}

/* ---- what each app sends ------------------------------------------------------------- */

typedef enum { EV_IGNORED, EV_TEST, EV_FILES, EV_RENAME, EV_ROOT_DELETE } ev_kind;

typedef struct app_shape {
    const char *root_obj;    /* object holding the root folder and the title */
    const char *root_key;    /* its path field */
    const char *root_field;  /* "series.path", for error messages */
    const char *title_key;
    const char *file_one;    /* one file object (Download, *FileDelete, Retag) */
    const char *file_many;   /* an array of file objects (Import Complete, Lidarr/Readarr), or NULL */
    const char *renamed;     /* Rename: array of files with previousPath / previousRelativePath */
    bool rename_new_is_root; /* Radarr: the movie folder stands for the new names */
    const char *const *file_events;
    const char *const *root_delete_events;
} app_shape;

static const char *const sonarr_files[] = {"Download", "EpisodeFileDelete", NULL};
static const char *const sonarr_root[] = {"SeriesDelete", NULL};
static const char *const radarr_files[] = {"Download", "MovieFileDelete", NULL};
static const char *const radarr_root[] = {"MovieDelete", NULL};
static const char *const lidarr_files[] = {"Download", "Retag", NULL};
static const char *const lidarr_root[] = {"AlbumDelete", "ArtistDelete", NULL};
static const char *const readarr_files[] = {"Download", "Retag", "BookFileDelete", NULL};
static const char *const readarr_root[] = {"BookDelete", "AuthorDelete", NULL};

static const app_shape shapes[] = {
    [APP_SONARR] = {"series", "path", "series.path", "title", "episodeFile", "episodeFiles",
                    "renamedEpisodeFiles", false, sonarr_files, sonarr_root},
    [APP_RADARR] = {"movie", "folderPath", "movie.folderPath", "title", "movieFile", NULL,
                    "renamedMovieFiles", true, radarr_files, radarr_root},
    [APP_LIDARR] = {"artist", "path", "artist.path", "name", "trackFile", "trackFiles",
                    "renamedTrackFiles", false, lidarr_files, lidarr_root},
    [APP_READARR] = {"author", "path", "author.path", "name", "bookFile", "bookFiles",
                     "renamedBookFiles", false, readarr_files, readarr_root},
};

static bool in_list(const char *const *list, const char *s)
{
    for (; *list; list++) {
        if (ieq(*list, s))
            return true;
    }
    return false;
}

static ev_kind classify(const app_shape *shape, const char *type)
{
    if (ieq(type, "Test"))
        return EV_TEST;
    if (ieq(type, "Rename"))
        return EV_RENAME;
    if (in_list(shape->file_events, type))
        return EV_FILES;
    if (in_list(shape->root_delete_events, type))
        return EV_ROOT_DELETE;
    return EV_IGNORED;
}

/* ---- building the folder list -------------------------------------------------------- */

typedef struct wh_ctx {
    const config_t *c;
    const app_shape *shape;
    wh_event *ev;
    char *err;
    size_t errlen;
    size_t max_folders;
    size_t cap_folders;
    size_t *slots;  /* open-addressing index of ev->folders by path: folder index + 1, 0 = free */
    size_t n_slots; /* a power of two, at least twice the folder count */
    char **all_files; /* every event file (up to WEBHOOK_MAX_FILES), for a root folder */
    size_t n_all;
    struct arena *arena; /* the body's tree and decoded strings */
} wh_ctx;

static int werr(wh_ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int werr(wh_ctx *x, const char *fmt, ...)
{
    if (x->err && x->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(x->err, x->errlen, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

static size_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (size_t)h;
}

static void slots_insert(size_t *slots, size_t n_slots, const char *path, size_t value)
{
    size_t i = str_hash(path) & (n_slots - 1);
    while (slots[i])
        i = (i + 1) & (n_slots - 1);
    slots[i] = value;
}

static void slots_grow(wh_ctx *x)
{
    size_t n = x->n_slots ? x->n_slots * 2 : 16;
    size_t *slots = xcalloc(n, sizeof(*slots));
    for (size_t i = 0; i < x->ev->n_folders; i++)
        slots_insert(slots, n, x->ev->folders[i].path, i + 1);
    free(x->slots);
    x->slots = slots;
    x->n_slots = n;
}

/* The folder for `path`, added when new. NULL once the event has more folders than it may
 * keep: it collapses to its root at the end, so the rest need not be remembered. */
static wh_folder *folder_get(wh_ctx *x, const char *path)
{
    wh_event *ev = x->ev;
    if (x->n_slots) {
        size_t mask = x->n_slots - 1;
        for (size_t i = str_hash(path) & mask; x->slots[i]; i = (i + 1) & mask) {
            if (strcmp(ev->folders[x->slots[i] - 1].path, path) == 0)
                return &ev->folders[x->slots[i] - 1];
        }
    }
    if (ev->n_folders > x->max_folders)
        return NULL;
    if ((ev->n_folders + 1) * 2 > x->n_slots)
        slots_grow(x);
    if (ev->n_folders == x->cap_folders) {
        x->cap_folders = x->cap_folders ? x->cap_folders * 2 : 4;
        ev->folders = xrealloc(ev->folders, x->cap_folders * sizeof(*ev->folders));
    }
    wh_folder *f = &ev->folders[ev->n_folders++];
    *f = (wh_folder){.path = xstrdup(path)};
    slots_insert(x->slots, x->n_slots, path, ev->n_folders);
    return f;
}

/* Adds s to a bounded, de-duplicated list of owned strings (up to WEBHOOK_MAX_FILES). */
static void list_add(char ***v, size_t *n, const char *s)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*v)[i], s) == 0)
            return;
    }
    if (*n >= WEBHOOK_MAX_FILES)
        return;
    *v = xrealloc(*v, (*n + 1) * sizeof(**v));
    (*v)[(*n)++] = xstrdup(s);
}

static void list_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Asks for `folder`, and remembers `file` (may be NULL) as an event file in it. */
static void want(wh_ctx *x, const char *folder, const char *file)
{
    wh_folder *f = folder_get(x, folder);
    if (!file)
        return;
    if (f)
        list_add(&f->files, &f->n_files, file);
    list_add(&x->all_files, &x->n_all, file);
}

/* Asks for the folder holding `file`. */
static void want_file(wh_ctx *x, const char *file)
{
    char *dir = paths_dirname(file);
    want(x, dir, file);
    free(dir);
}

/* ---- the body: a small JSON reader --------------------------------------------------- */

/* The body is read by a small, strict JSON reader made for this: one pass over the bytes builds
 * a tree whose strings still point into the body, and a field is decoded (into the same arena)
 * only when it is read. Everything lives in one arena per call. A general-purpose parser spent
 * five times the instructions on the same payload, most of them allocating and copying fields
 * nobody reads (images, mediaInfo, customFormatInfo, ...).
 *
 * What it accepts is RFC 8259 JSON, with the allowances of the parser it replaces: any byte up
 * to 0x20 counts as whitespace between tokens, a UTF-8 byte order mark may start the body, and
 * numbers are read as strtod reads them (see scan_number). A NUL, raw or as \u0000, would cut a C string short and so hide what follows it
 * from paths_check: it decodes as U+0001, which paths_check refuses as a control character
 * naming the field. Nesting deeper than WEBHOOK_MAX_DEPTH is refused. */

typedef enum { JV_NULL, JV_FALSE, JV_TRUE, JV_NUMBER, JV_STRING, JV_ARRAY, JV_OBJECT } jv_type;

typedef struct jv jv;
struct jv {
    jv *next;        /* next member or element */
    jv *child;       /* array, object: the first element or member */
    const char *key; /* object member: its name, raw (between the quotes) */
    const char *raw; /* string: its contents, raw (between the quotes) */
    char *str;       /* string: decoded and NUL-terminated, once read */
    uint32_t key_len, raw_len;
    unsigned char type;
    bool key_esc, raw_esc; /* a backslash or a NUL inside: needs decoding */
};

#define ARENA_BLOCK ((size_t)64 * 1024)

typedef struct ablock {
    struct ablock *next;
    void *pad; /* keeps what follows the header 16-byte aligned */
} ablock;

typedef struct arena {
    unsigned char *p;
    size_t left;
    ablock *extra; /* blocks taken from malloc once the first is full */
} arena;

/* The first block: one payload's tree almost always fits. The loop runs on one thread. */
static _Alignas(16) unsigned char arena_first[ARENA_BLOCK];

static void arena_init(arena *a)
{
    a->p = arena_first;
    a->left = sizeof arena_first;
    a->extra = NULL;
}

static void *arena_alloc(arena *a, size_t n)
{
    n = (n + 15u) & ~(size_t)15u;
    if (n > a->left) {
        size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
        ablock *b = xmalloc(sizeof *b + cap);
        b->next = a->extra;
        a->extra = b;
        a->p = (unsigned char *)(b + 1);
        a->left = cap;
    }
    void *r = a->p;
    a->p += n;
    a->left -= n;
    return r;
}

static void arena_free(arena *a)
{
    for (ablock *b = a->extra, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    a->extra = NULL;
}

typedef struct jparser {
    const unsigned char *p, *end;
    arena *a;
    int depth;
    bool too_deep;
} jparser;

static jv *jv_new(jparser *j)
{
    jv *v = arena_alloc(j->a, sizeof *v);
    memset(v, 0, sizeof *v);
    return v;
}

#define ONES ((uint64_t)0x0101010101010101ULL)

/* Eight bytes at p, whatever their alignment. */
static uint64_t load8(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof w);
    return w;
}

static void skip_ws(jparser *j)
{
    /* pretty-printed payloads indent with runs of spaces: eight at a time */
    while (j->end - j->p >= 8 && load8(j->p) == ONES * ' ')
        j->p += 8;
    while (j->p < j->end && *j->p <= 0x20)
        j->p++;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Four hex digits at p (end bounds the input): the code unit, or -1. */
static long hex4(const unsigned char *p, const unsigned char *end)
{
    if (end - p < 4)
        return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* The string whose opening quote is at j->p: its raw contents, checked (escapes, surrogate
 * pairs); j->p ends after the closing quote. */
static bool scan_string(jparser *j, const char **raw, uint32_t *len, bool *esc)
{
    static const unsigned char stop[256] = {[0] = 1, ['"'] = 1, ['\\'] = 1};
    const unsigned char *start = j->p + 1, *p = start, *end = j->end;
    bool e = false;
    for (;;) {
        while (p < end && !stop[*p])
            p++;
        if (p >= end)
            return false;
        if (*p == '"')
            break;
        e = true;
        if (*p == '\0') {
            p++;
            continue;
        }
        if (end - p < 2)
            return false;
        switch (p[1]) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            p += 2;
            break;
        case 'u': {
            long cp = hex4(p + 2, end);
            if (cp < 0 || (cp >= 0xdc00 && cp <= 0xdfff))
                return false;
            p += 6;
            if (cp >= 0xd800 && cp <= 0xdbff) { /* a high surrogate: its low half must follow */
                long lo = end - p >= 2 && p[0] == '\\' && p[1] == 'u' ? hex4(p + 2, end) : -1;
                if (lo < 0xdc00 || lo > 0xdfff)
                    return false;
                p += 6;
            }
            break;
        }
        default:
            return false;
        }
    }
    if ((size_t)(p - start) > UINT32_MAX)
        return false;
    *raw = (const char *)start;
    *len = (uint32_t)(p - start);
    *esc = e;
    j->p = p + 1;
    return true;
}

/* A checked string's contents, decoded: escapes resolved, NUL (raw or \u0000) as U+0001.
 * Decoding never grows the text, so len + 1 bytes hold it. */
static char *decode_string(arena *a, const char *raw, uint32_t len, bool esc)
{
    char *out = arena_alloc(a, (size_t)len + 1);
    if (!esc) {
        memcpy(out, raw, len);
        out[len] = '\0';
        return out;
    }
    const unsigned char *p = (const unsigned char *)raw, *end = p + len;
    unsigned char *o = (unsigned char *)out;
    while (p < end) {
        if (*p != '\\') {
            *o++ = *p ? *p : 0x01;
            p++;
            continue;
        }
        unsigned char c = p[1];
        p += 2;
        switch (c) {
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned long cp = (unsigned long)hex4(p, end);
            p += 4;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                unsigned long lo = (unsigned long)hex4(p + 2, end);
                p += 6;
                cp = 0x10000 + (((cp & 0x3ff) << 10) | (lo & 0x3ff));
            }
            if (cp == 0)
                cp = 1;
            if (cp < 0x80) {
                *o++ = (unsigned char)cp;
            } else if (cp < 0x800) {
                *o++ = (unsigned char)(0xc0 | (cp >> 6));
                *o++ = (unsigned char)(0x80 | (cp & 0x3f));
            } else if (cp < 0x10000) {
                *o++ = (unsigned char)(0xe0 | (cp >> 12));
                *o++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
                *o++ = (unsigned char)(0x80 | (cp & 0x3f));
            } else {
                *o++ = (unsigned char)(0xf0 | (cp >> 18));
                *o++ = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
                *o++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
                *o++ = (unsigned char)(0x80 | (cp & 0x3f));
            }
            break;
        }
        default: *o++ = c; break; /* '"', '\\', '/' */
        }
    }
    *o = '\0';
    return out;
}

static size_t scan_digits(jparser *j)
{
    const unsigned char *s = j->p;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
        j->p++;
    return (size_t)(j->p - s);
}

/* A number as strtod reads one, which is what the *arr apps' payloads have always been held to:
 * -? (digits (. digits*)? | . digits) ([eE] [+-]? digits)?, the exponent only when whole, and
 * no longer than 63 characters (parse_value sees to the first character: '-' or a digit). */
static bool scan_number(jparser *j)
{
    const unsigned char *s = j->p;
    if (*j->p == '-')
        j->p++;
    size_t digits = scan_digits(j);
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        digits += scan_digits(j);
    }
    if (!digits)
        return false;
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        const unsigned char *e = j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
            j->p++;
        if (!scan_digits(j))
            j->p = e; /* not an exponent: the number ends before the 'e' */
    }
    return j->p - s <= 63;
}

static bool scan_literal(jparser *j, const char *word, size_t n)
{
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
        return false;
    j->p += n;
    return true;
}

static bool parse_value(jparser *j, jv *v);

static bool enter(jparser *j)
{
    if (++j->depth > WEBHOOK_MAX_DEPTH) {
        j->too_deep = true;
        return false;
    }
    j->p++;
    skip_ws(j);
    return true;
}

static bool parse_array(jparser *j, jv *v)
{
    v->type = JV_ARRAY;
    if (!enter(j))
        return false;
    if (j->p < j->end && *j->p == ']') {
        j->p++;
        j->depth--;
        return true;
    }
    jv **tail = &v->child;
    for (;;) {
        jv *e = jv_new(j);
        if (!parse_value(j, e))
            return false;
        *tail = e;
        tail = &e->next;
        skip_ws(j);
        if (j->p >= j->end)
            return false;
        if (*j->p == ']') {
            j->p++;
            j->depth--;
            return true;
        }
        if (*j->p++ != ',')
            return false;
    }
}

static bool parse_object(jparser *j, jv *v)
{
    v->type = JV_OBJECT;
    if (!enter(j))
        return false;
    if (j->p < j->end && *j->p == '}') {
        j->p++;
        j->depth--;
        return true;
    }
    jv **tail = &v->child;
    for (;;) {
        skip_ws(j);
        if (j->p >= j->end || *j->p != '"')
            return false;
        jv *m = jv_new(j);
        if (!scan_string(j, &m->key, &m->key_len, &m->key_esc))
            return false;
        skip_ws(j);
        if (j->p >= j->end || *j->p++ != ':')
            return false;
        if (!parse_value(j, m))
            return false;
        *tail = m;
        tail = &m->next;
        skip_ws(j);
        if (j->p >= j->end)
            return false;
        if (*j->p == '}') {
            j->p++;
            j->depth--;
            return true;
        }
        if (*j->p++ != ',')
            return false;
    }
}

static bool parse_value(jparser *j, jv *v)
{
    skip_ws(j);
    if (j->p >= j->end)
        return false;
    switch (*j->p) {
    case '{':
        return parse_object(j, v);
    case '[':
        return parse_array(j, v);
    case '"':
        v->type = JV_STRING;
        return scan_string(j, &v->raw, &v->raw_len, &v->raw_esc);
    case 't':
        v->type = JV_TRUE;
        return scan_literal(j, "true", 4);
    case 'f':
        v->type = JV_FALSE;
        return scan_literal(j, "false", 5);
    case 'n':
        v->type = JV_NULL;
        return scan_literal(j, "null", 4);
    default:
        v->type = JV_NUMBER;
        return (*j->p == '-' || (*j->p >= '0' && *j->p <= '9')) && scan_number(j);
    }
}

static const jv *parse_body(wh_ctx *x, const char *body, size_t len)
{
    jparser j = {.p = (const unsigned char *)(body ? body : ""), .a = x->arena};
    j.end = j.p + (body ? len : 0);
    if (j.end - j.p >= 3 && memcmp(j.p, "\xef\xbb\xbf", 3) == 0)
        j.p += 3;
    jv *root = jv_new(&j);
    bool ok = parse_value(&j, root);
    /* after the value, only whitespace */
    while (ok && j.p < j.end && (*j.p == ' ' || *j.p == '\t' || *j.p == '\r' || *j.p == '\n'))
        j.p++;
    if (j.too_deep) {
        werr(x, "JSON nested too deeply");
        return NULL;
    }
    if (!ok || j.p != j.end) {
        werr(x, "body is not valid JSON");
        return NULL;
    }
    if (root->type != JV_OBJECT) {
        werr(x, "body is not a JSON object");
        return NULL;
    }
    return root;
}

/* ---- reading fields ------------------------------------------------------------------ */

static bool key_is(wh_ctx *x, jv *m, const char *key)
{
    if (!m->key_esc) {
        size_t n = strlen(key);
        return n == m->key_len && memcmp(m->key, key, n) == 0;
    }
    return strcmp(decode_string(x->arena, m->key, m->key_len, true), key) == 0;
}

/* The first member named key, NULL when there is none or it is null (Newtonsoft omits nulls;
 * a null is absent). */
static jv *field(wh_ctx *x, const jv *obj, const char *key)
{
    if (!obj || obj->type != JV_OBJECT)
        return NULL;
    for (jv *m = obj->child; m; m = m->next)
        if (key_is(x, m, key))
            return m->type == JV_NULL ? NULL : m;
    return NULL;
}

static const char *jv_str(wh_ctx *x, jv *v)
{
    if (!v->str)
        v->str = decode_string(x->arena, v->raw, v->raw_len, v->raw_esc);
    return v->str;
}

/* A string field; *out = NULL when absent, null or "". */
static int get_str(wh_ctx *x, const jv *obj, const char *where, const char *key, const char **out)
{
    jv *it = field(x, obj, key);
    *out = NULL;
    if (!it)
        return 0;
    if (it->type != JV_STRING)
        return werr(x, "%s%s%s: must be a string", where, where[0] ? "." : "", key);
    const char *s = jv_str(x, it);
    if (s[0])
        *out = s;
    return 0;
}

static int get_obj(wh_ctx *x, const jv *obj, const char *key, const jv **out)
{
    *out = field(x, obj, key);
    if (*out && (*out)->type != JV_OBJECT)
        return werr(x, "%s: must be an object", key);
    return 0;
}

static int get_array(wh_ctx *x, const jv *obj, const char *key, const jv **out)
{
    *out = field(x, obj, key);
    if (*out && (*out)->type != JV_ARRAY)
        return werr(x, "%s: must be an array", key);
    return 0;
}

static bool is_drive_path(const char *p)
{
    char c0 = p[0];
    return ((c0 >= 'A' && c0 <= 'Z') || (c0 >= 'a' && c0 <= 'z')) && p[1] == ':' &&
           (p[2] == '\0' || p[2] == '/');
}

/* An absolute path as the app sent it: normalized, a Windows drive path mapped through
 * PATH_REPLACEMENTS, then checked. */
static int abs_path(wh_ctx *x, const char *raw, const char *where, const char *key, char **out)
{
    char *p = paths_normalize(raw);
    if (is_drive_path(p)) {
        char *mapped = paths_replace(p, &x->c->path_repl, NULL);
        free(p);
        p = mapped;
    }
    const char *why = paths_check(p);
    if (why) {
        free(p);
        return werr(x, "%s%s%s: %s", where, where[0] ? "." : "", key, why);
    }
    *out = p;
    return 0;
}

/* The path of one file entry: root + entry[rel_key], or entry[abs_key] when the root or the
 * relative path is missing (or first, when prefer_abs). *out = NULL when it has neither. */
static int entry_path(wh_ctx *x, const jv *entry, const char *where, const char *rel_key,
                      const char *abs_key, bool prefer_abs, char **out)
{
    const char *rel, *abs;
    int rc;
    *out = NULL;
    if ((rc = get_str(x, entry, where, rel_key, &rel)) || (rc = get_str(x, entry, where, abs_key, &abs)))
        return rc;
    bool use_rel = x->ev->root && rel && !(prefer_abs && abs);
    if (!use_rel)
        return abs ? abs_path(x, abs, where, abs_key, out) : 0;

    char *p = paths_join(x->ev->root, rel);
    const char *why = paths_check(p);
    if (why) {
        free(p);
        return werr(x, "%s.%s: %s", where, rel_key, why);
    }
    *out = p;
    return 0;
}

/* One file object: the folder holding it. */
static int take_file(wh_ctx *x, const jv *entry, const char *where)
{
    if (entry->type != JV_OBJECT)
        return werr(x, "%s: must be an object", where);
    char *p;
    int rc = entry_path(x, entry, where, "relativePath", "path", false, &p);
    if (rc == 0 && p)
        want_file(x, p);
    free(p);
    return rc;
}

static int take_file_array(wh_ctx *x, const jv *root, const char *key)
{
    const jv *arr, *it;
    int rc = get_array(x, root, key, &arr);
    size_t i = 0;
    if (rc || !arr)
        return rc;
    for (it = arr->child; it; it = it->next) {
        char where[96];
        snprintf(where, sizeof(where), "%s[%zu]", key, i++);
        if ((rc = take_file(x, it, where)))
            return rc;
    }
    return 0;
}

/* Download, *FileDelete, Retag: the folders of the listed files and of deletedFiles[]. */
static int take_files(wh_ctx *x, const jv *root)
{
    const app_shape *s = x->shape;
    const jv *one;
    int rc = get_obj(x, root, s->file_one, &one);
    if (rc == 0 && one)
        rc = take_file(x, one, s->file_one);
    if (rc == 0 && s->file_many)
        rc = take_file_array(x, root, s->file_many);
    if (rc == 0)
        rc = take_file_array(x, root, "deletedFiles");
    return rc;
}

/* Rename: the old and new folder of each renamed file; for Radarr the movie folder and the
 * old folders. */
static int take_renamed(wh_ctx *x, const jv *root)
{
    const app_shape *s = x->shape;
    const jv *arr, *it;
    int rc = get_array(x, root, s->renamed, &arr);
    size_t i = 0;
    if (rc || !arr)
        return rc;
    bool new_is_root = s->rename_new_is_root && x->ev->root;
    if (new_is_root)
        want(x, x->ev->root, NULL);
    for (it = arr->child; it; it = it->next) {
        char where[96];
        char *old_p = NULL, *new_p = NULL;
        snprintf(where, sizeof(where), "%s[%zu]", s->renamed, i++);
        if (it->type != JV_OBJECT)
            return werr(x, "%s: must be an object", where);
        rc = entry_path(x, it, where, "previousRelativePath", "previousPath", true, &old_p);
        if (rc == 0)
            rc = entry_path(x, it, where, "relativePath", "path", false, &new_p);
        if (rc == 0 && old_p)
            want_file(x, old_p);
        if (rc == 0 && new_p) {
            if (new_is_root)
                want(x, x->ev->root, new_p);
            else
                want_file(x, new_p);
        }
        free(old_p);
        free(new_p);
        if (rc)
            return rc;
    }
    return 0;
}

/* SeriesDelete & co: the root folder, only when the files were deleted. */
static int take_root_delete(wh_ctx *x, const jv *root)
{
    const jv *del = field(x, root, "deletedFiles");
    if (del && del->type != JV_TRUE && del->type != JV_FALSE)
        return werr(x, "deletedFiles: must be a boolean");
    if (!del || del->type != JV_TRUE) {
        x->ev->ignored = true; /* the folder is still there, unchanged: nothing to scan */
        return 0;
    }
    if (!x->ev->root)
        return werr(x, "%s: %s", x->shape->root_field, paths_check(NULL));
    want(x, x->ev->root, NULL);
    return 0;
}

/* SCAN_SCOPE=root, or more folders than MAX_FOLDERS_PER_EVENT: one folder, the root, with
 * every event file. */
static int collapse_to_root(wh_ctx *x)
{
    wh_event *ev = x->ev;
    bool overflow = ev->n_folders > x->max_folders;
    bool scope_root = x->c->scan_scope == SCAN_SCOPE_ROOT;
    if (!overflow && !scope_root)
        return 0;
    if (!ev->root) {
        if (overflow)
            return werr(x, "more than %zu folders and no %s to collapse to", x->max_folders,
                        x->shape->root_field);
        return 0; /* SCAN_SCOPE=root without a root in the payload: keep the file folders */
    }
    for (size_t i = 0; i < ev->n_folders; i++) {
        free(ev->folders[i].path);
        list_free(ev->folders[i].files, ev->folders[i].n_files);
    }
    ev->folders = xrealloc(ev->folders, sizeof(*ev->folders));
    ev->folders[0] = (wh_folder){.path = xstrdup(ev->root), .files = x->all_files,
                                 .n_files = x->n_all};
    ev->n_folders = 1;
    x->all_files = NULL;
    x->n_all = 0;
    return 0;
}

/* ---- the event ----------------------------------------------------------------------- */

static int interpret(wh_ctx *x, const jv *json)
{
    wh_event *ev = x->ev;
    jv *type = field(x, json, "eventType");
    if (type && type->type != JV_STRING)
        return werr(x, "eventType must be a string");
    ev->event_type = xstrdup(type ? jv_str(x, type) : "");

    const jv *root_obj = field(x, json, x->shape->root_obj);
    jv *title = field(x, root_obj, x->shape->title_key); /* NULL unless root_obj is an object */
    if (title && title->type == JV_STRING)
        ev->title = xstrdup(jv_str(x, title));

    ev_kind kind = classify(x->shape, ev->event_type);
    if (kind == EV_TEST) {
        ev->is_test = true; /* its paths are placeholders ("C:\\testpath"): never looked at */
        return 0;
    }
    if (kind == EV_IGNORED) {
        ev->ignored = true;
        return 0;
    }

    int rc = get_obj(x, json, x->shape->root_obj, &root_obj);
    const char *root_raw = NULL;
    if (rc == 0 && root_obj)
        rc = get_str(x, root_obj, x->shape->root_obj, x->shape->root_key, &root_raw);
    if (rc == 0 && root_raw)
        rc = abs_path(x, root_raw, x->shape->root_obj, x->shape->root_key, &ev->root);
    if (rc)
        return rc;

    switch (kind) {
    case EV_FILES:
        rc = take_files(x, json);
        break;
    case EV_RENAME:
        rc = take_renamed(x, json);
        break;
    case EV_ROOT_DELETE:
        return take_root_delete(x, json);
    case EV_TEST:
    case EV_IGNORED:
        break;
    }
    if (rc)
        return rc;
    if (ev->n_folders == 0)
        return werr(x, "no file path in payload");
    return collapse_to_root(x);
}

int webhook_parse(const config_t *c, arr_app app, const char *body, size_t len, wh_event *out,
                  char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    out->app = app;
    wh_ctx x = {.c = c, .ev = out, .err = err, .errlen = errlen};
    if (err && errlen)
        err[0] = '\0';
    if ((unsigned)app >= APP_MANUAL)
        return werr(&x, "no webhook payload format for '%s'", arr_app_name(app));
    x.shape = &shapes[app];
    x.max_folders = c->max_folders_per_event > 0 ? (size_t)c->max_folders_per_event
                                                 : WEBHOOK_DEFAULT_MAX_FOLDERS;

    arena a;
    arena_init(&a);
    x.arena = &a;
    const jv *json = parse_body(&x, body, len);
    int rc = json ? interpret(&x, json) : -EINVAL;
    arena_free(&a);
    free(x.slots);
    list_free(x.all_files, x.n_all);
    if (rc) {
        wh_event_free(out);
        out->app = app;
    }
    return rc;
}

void wh_event_free(wh_event *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n_folders; i++) {
        free(e->folders[i].path);
        list_free(e->folders[i].files, e->folders[i].n_files);
    }
    free(e->folders);
    free(e->event_type);
    free(e->root);
    free(e->title);
    memset(e, 0, sizeof(*e));
}
