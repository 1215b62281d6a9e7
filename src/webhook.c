/* webhook.c: an *arr webhook body -> the folders it asks to scan (in arr terms), following
 * DESIGN.md's table ("Which folders an event asks for"). Pure: no I/O, no loop. */
#include "webhook.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "json_arena.h"
#include "paths.h"
#include "test_hooks.h"
#include "util.h"

#define WEBHOOK_MAX_DEPTH 64
#define WEBHOOK_DEFAULT_MAX_FOLDERS 100 /* when the config leaves max_folders_per_event at 0 */

static const char *const app_names[APP_COUNT] = {"sonarr", "radarr", "lidarr", "readarr",
                                                 "manual", "autoscan", "manual-trigger"};

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
    const char *label_part;  /* the top-level object or array the label adds to the title */
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
                    "renamedEpisodeFiles", false, sonarr_files, sonarr_root, "episodes"},
    [APP_RADARR] = {"movie", "folderPath", "movie.folderPath", "title", "movieFile", NULL,
                    "renamedMovieFiles", true, radarr_files, radarr_root, NULL},
    [APP_LIDARR] = {"artist", "path", "artist.path", "name", "trackFile", "trackFiles",
                    "renamedTrackFiles", false, lidarr_files, lidarr_root, "album"},
    [APP_READARR] = {"author", "path", "author.path", "name", "bookFile", "bookFiles",
                     "renamedBookFiles", false, readarr_files, readarr_root, "book"},
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

/* What the event did: a Download is an import (an upgrade when isUpgrade is true or it
 * replaced files), a *Delete a delete, a Rename a rename; Retag changes files in place. */
static unsigned event_kinds(ev_kind kind, const char *type, const cJSON *json)
{
    if (kind == EV_RENAME)
        return WH_KIND_RENAME;
    if (kind == EV_ROOT_DELETE)
        return WH_KIND_DELETE;
    size_t n = strlen(type);
    if (n >= 6 && ieq(type + n - 6, "Delete"))
        return WH_KIND_DELETE;
    if (!ieq(type, "Download"))
        return 0;
    const cJSON *up = cJSON_GetObjectItemCaseSensitive(json, "isUpgrade");
    const cJSON *del = cJSON_GetObjectItemCaseSensitive(json, "deletedFiles");
    bool upgrade = cJSON_IsTrue(up) || (cJSON_IsArray(del) && cJSON_GetArraySize(del) > 0);
    return WH_KIND_IMPORT | (upgrade ? WH_KIND_UPGRADE : 0u);
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

static void slots_insert(size_t *slots, size_t n_slots, const char *path, size_t value)
{
    size_t i = (size_t)hash_str(path) & (n_slots - 1);
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
        for (size_t i = (size_t)hash_str(path) & mask; x->slots[i]; i = (i + 1) & mask) {
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

/* ---- reading fields ------------------------------------------------------------------ */

static const cJSON *field(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNull(it) ? NULL : it; /* Newtonsoft omits nulls; treat a null as absent */
}

/* A string field; *out = NULL when absent, null or "". */
static int get_str(wh_ctx *x, const cJSON *obj, const char *where, const char *key, const char **out)
{
    const cJSON *it = field(obj, key);
    *out = NULL;
    if (!it)
        return 0;
    if (!cJSON_IsString(it))
        return werr(x, "%s%s%s: must be a string", where, where[0] ? "." : "", key);
    if (it->valuestring[0])
        *out = it->valuestring;
    return 0;
}

static int get_obj(wh_ctx *x, const cJSON *obj, const char *key, const cJSON **out)
{
    *out = field(obj, key);
    if (*out && !cJSON_IsObject(*out))
        return werr(x, "%s: must be an object", key);
    return 0;
}

static int get_array(wh_ctx *x, const cJSON *obj, const char *key, const cJSON **out)
{
    *out = field(obj, key);
    if (*out && !cJSON_IsArray(*out))
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
    char *p = path_normalize(raw);
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
static int entry_path(wh_ctx *x, const cJSON *entry, const char *where, const char *rel_key,
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
static int take_file(wh_ctx *x, const cJSON *entry, const char *where)
{
    if (!cJSON_IsObject(entry))
        return werr(x, "%s: must be an object", where);
    char *p;
    int rc = entry_path(x, entry, where, "relativePath", "path", false, &p);
    if (rc == 0 && p)
        want_file(x, p);
    free(p);
    return rc;
}

static int take_file_array(wh_ctx *x, const cJSON *root, const char *key)
{
    const cJSON *arr, *it;
    int rc = get_array(x, root, key, &arr);
    size_t i = 0;
    if (rc || !arr)
        return rc;
    cJSON_ArrayForEach(it, arr) {
        char where[96];
        snprintf(where, sizeof(where), "%s[%zu]", key, i++);
        if ((rc = take_file(x, it, where)))
            return rc;
    }
    return 0;
}

/* Download, *FileDelete, Retag: the folders of the listed files and of deletedFiles[]. */
static int take_files(wh_ctx *x, const cJSON *root)
{
    const app_shape *s = x->shape;
    const cJSON *one;
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
static int take_renamed(wh_ctx *x, const cJSON *root)
{
    const app_shape *s = x->shape;
    const cJSON *arr, *it;
    int rc = get_array(x, root, s->renamed, &arr);
    size_t i = 0;
    if (rc || !arr)
        return rc;
    bool new_is_root = s->rename_new_is_root && x->ev->root;
    if (new_is_root)
        want(x, x->ev->root, NULL);
    cJSON_ArrayForEach(it, arr) {
        char where[96];
        char *old_p = NULL, *new_p = NULL;
        snprintf(where, sizeof(where), "%s[%zu]", s->renamed, i++);
        if (!cJSON_IsObject(it))
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
static int take_root_delete(wh_ctx *x, const cJSON *root)
{
    const cJSON *del = field(root, "deletedFiles");
    if (del && !cJSON_IsBool(del))
        return werr(x, "deletedFiles: must be a boolean");
    if (!cJSON_IsTrue(del)) {
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

/* ---- what the event is about, for people --------------------------------------------- */

/* The page and the history lead with this: "Breaking Bad S01E01 · Pilot", "Amélie (2001)",
 * "Sigur Rós – Ágætis byrjun", "Brandon Sanderson – The Way of Kings". Only cosmetic: a field of
 * an unexpected type is left out, never an error. The fields read are in member_wanted(), so
 * the selective read and the whole-body parse give the same label. */

#define WH_LABEL_MAX 300 /* bytes; a longer label is cut at a character boundary */

/* A string member, or NULL when absent, not a string or empty. */
static const char *label_str(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    return cJSON_IsString(it) && it->valuestring[0] ? it->valuestring : NULL;
}

/* A whole-number member in [0, max], or -1. */
static long label_num(const cJSON *obj, const char *key, long max)
{
    const cJSON *it = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    if (!cJSON_IsNumber(it) || !(it->valuedouble >= 0 && it->valuedouble <= (double)max))
        return -1;
    long v = (long)it->valuedouble;
    return (double)v == it->valuedouble ? v : -1;
}

/* Sonarr's episodes as " S02E05", " S02E05-E06" (one season), " S01E10-S02E01" (more), with
 * " · <episode title>" when there is one episode and it has a title. */
static void label_episodes(buf_t *b, const cJSON *episodes)
{
    long lo_s = 0, lo_e = 0, hi_s = 0, hi_e = 0;
    size_t n = 0;
    const char *title = NULL;
    const cJSON *ep, *list = cJSON_IsArray(episodes) ? episodes : NULL;
    cJSON_ArrayForEach(ep, list) {
        long s = label_num(ep, "seasonNumber", 9999), e = label_num(ep, "episodeNumber", 99999);
        if (s < 0 || e < 0)
            continue;
        if (n == 0 || s < lo_s || (s == lo_s && e < lo_e)) {
            lo_s = s;
            lo_e = e;
            title = label_str(ep, "title");
        }
        if (n++ == 0 || s > hi_s || (s == hi_s && e > hi_e)) {
            hi_s = s;
            hi_e = e;
        }
    }
    if (n == 0)
        return;
    buf_printf(b, " S%02ldE%02ld", lo_s, lo_e);
    if (hi_s != lo_s)
        buf_printf(b, "-S%02ldE%02ld", hi_s, hi_e);
    else if (hi_e != lo_e)
        buf_printf(b, "-E%02ld", hi_e);
    else if (title)
        buf_printf(b, " \xC2\xB7 %s", title); /* U+00B7 MIDDLE DOT */
}

/* One line of at most WH_LABEL_MAX bytes: control bytes become spaces, a cut never splits a
 * UTF-8 sequence. Takes b's text. */
static char *label_finish(buf_t *b)
{
    size_t n = b->len;
    if (n > WH_LABEL_MAX) {
        n = WH_LABEL_MAX;
        while (n > 0 && ((unsigned char)b->data[n] & 0xC0) == 0x80)
            n--;
    }
    b->data[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)b->data[i] < 0x20 || b->data[i] == 0x7f)
            b->data[i] = ' ';
    return buf_steal(b);
}

/* The label of an event, or NULL when the payload names nothing (a Health event). */
static char *event_label(const wh_ctx *x, const cJSON *json, const cJSON *root_obj)
{
    const char *name = label_str(root_obj, x->shape->title_key);
    if (!name)
        return NULL;
    buf_t b;
    buf_init(&b, 0);
    buf_appends(&b, name);
    long year;
    const char *part;
    switch (x->ev->app) {
    case APP_SONARR:
        label_episodes(&b, cJSON_GetObjectItemCaseSensitive(json, "episodes"));
        break;
    case APP_RADARR:
        if ((year = label_num(root_obj, "year", 9999)) > 0)
            buf_printf(&b, " (%ld)", year);
        break;
    case APP_LIDARR:
    case APP_READARR:
        part = label_str(cJSON_GetObjectItemCaseSensitive(json, x->ev->app == APP_LIDARR ? "album" : "book"),
                         "title");
        if (part)
            buf_printf(&b, " \xE2\x80\x93 %s", part); /* U+2013 EN DASH */
        break;
    default:
        break;
    }
    return label_finish(&b);
}

/* ---- the body ------------------------------------------------------------------------ */

/* Whether the four characters after "\u" make cJSON write a NUL: "0000", and also any that are
 * not four hex digits (cJSON reads those as 0 instead of refusing them). */
static bool escape_is_nul(const char *h)
{
    for (int i = 0; i < 4; i++) {
        char ch = h[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F')))
            return true;
    }
    return memcmp(h, "0000", 4) == 0;
}

/* One pass over the raw body outside cJSON: the nesting depth (cJSON allows 1000), and NULs.
 * A NUL, raw or as \u0000 (or a \u escape without four hex digits, which cJSON reads as 0),
 * would silently cut a cJSON string short and so hide what follows it from paths_check; when
 * `fix` (a copy of the body) is given, each becomes U+0001, which paths_check then refuses as a
 * control character naming the field. */
static bool json_prescan(const char *b, size_t n, char *fix, bool *has_nul)
{
    /* Inside a string only these bytes matter; the rest of a string is skipped in a tight loop
     * (most of a payload is string text). */
    static const bool string_stop[256] = {['"'] = true, ['\\'] = true, [0] = true};
    int depth = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        if (in_str) {
            while (i < n && !string_stop[(unsigned char)b[i]])
                i++;
            if (i == n)
                break;
        }
        char c = b[i];
        if (c == '\0') {
            *has_nul = true;
            if (fix)
                fix[i] = '\x01';
        }
        if (in_str) {
            if (c == '\\') {
                if (i + 5 < n && b[i + 1] == 'u' && escape_is_nul(b + i + 2)) {
                    *has_nul = true;
                    if (fix)
                        memcpy(fix + i + 2, "0001", 4);
                }
                i++;
            } else if (c == '"') {
                in_str = false;
            }
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            if (++depth > WEBHOOK_MAX_DEPTH)
                return false;
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
    }
    return true;
}

/* Whether json_prescan can find nothing: too few brackets to nest past the limit, no NUL and no
 * escape cJSON would read as one. memchr is vectorized, so the usual payload costs a fraction of
 * the byte-by-byte scan. */
static bool json_surely_plain(const char *b, size_t n)
{
    size_t opens = 0;
    for (const char *p = b, *end = b + n; (p = memchr(p, '{', (size_t)(end - p))) != NULL; p++)
        if (++opens > WEBHOOK_MAX_DEPTH)
            return false;
    for (const char *p = b, *end = b + n; (p = memchr(p, '[', (size_t)(end - p))) != NULL; p++)
        if (++opens > WEBHOOK_MAX_DEPTH)
            return false;
    if (memchr(b, '\0', n))
        return false;
    /* Backslashes are rare in a payload (escapes only): found with memchr, and the escape after
     * each checked. */
    for (const char *p = b, *end = b + n; (p = memchr(p, '\\', (size_t)(end - p))) != NULL; p += 2) {
        if (end - p >= 6 && p[1] == 'u' && escape_is_nul(p + 2))
            return false;
        if (end - p < 2)
            break;
    }
    return true;
}

/* ---- reading only the members interpret() uses ---------------------------------------- */

/* A payload is mostly fields nothing here reads ("episodes", "release", images, genres, media
 * info): building cJSON nodes for them was the largest cost of a webhook. So the body is
 * walked here, two levels deep: a field interpret() reads is parsed by cJSON from where its
 * value starts (cJSON says where it ended); any other field is only checked to be valid JSON,
 * with rules at least as strict as cJSON's. Whatever this walk is not sure of (an escape in a
 * key, a BOM, a value it would refuse) sends the body to the whole-body parse instead, so the
 * outcome is always the one parsing everything would give; a unit test and the fuzzer check
 * exactly that. */

bool webhook_selective = true;
unsigned long webhook_whole_parses;

typedef struct jwalk {
    const char *p, *end;
} jwalk;

static void jw_space(jwalk *w)
{
    while (w->p < w->end && (*w->p == ' ' || *w->p == '\t' || *w->p == '\n' || *w->p == '\r'))
        w->p++;
}

static bool jw_hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char ch = p[i];
        unsigned d = ch >= '0' && ch <= '9'   ? (unsigned)(ch - '0')
                     : ch >= 'a' && ch <= 'f' ? (unsigned)(ch - 'a' + 10)
                     : ch >= 'A' && ch <= 'F' ? (unsigned)(ch - 'A' + 10)
                                              : 16u;
        if (d == 16)
            return false;
        v = v << 4 | d;
    }
    *out = v;
    return true;
}

/* At '"': past the closing quote. As lenient as cJSON with the bytes of a string (it takes
 * control bytes as they are) and stricter with escapes (it reads bad hex digits and some lone
 * surrogates instead of refusing them): those are refused here. The closing quote is searched
 * once per escaped quote, so the walk stays linear. */
static bool jw_string(jwalk *w)
{
    const char *p = w->p + 1, *end = w->end;
    const char *quote = memchr(p, '"', (size_t)(end - p));
    for (;;) {
        if (!quote)
            return false;
        const char *bs = memchr(p, '\\', (size_t)(quote - p));
        if (!bs) {
            w->p = quote + 1;
            return true;
        }
        p = bs;
        if (end - p < 2)
            return false;
        char e = p[1];
        if (e == 'u') {
            unsigned u, lo;
            if (end - p < 6 || !jw_hex4(p + 2, &u) || (u >= 0xDC00 && u <= 0xDFFF))
                return false;
            p += 6;
            if (u >= 0xD800 && u <= 0xDBFF) {
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || !jw_hex4(p + 2, &lo) ||
                    lo < 0xDC00 || lo > 0xDFFF)
                    return false;
                p += 6;
            }
        } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' ||
                   e == 'r' || e == 't') {
            p += 2;
        } else {
            return false;
        }
        if (p > quote)
            quote = memchr(p, '"', (size_t)(end - p));
    }
}

static bool jw_digits(jwalk *w)
{
    const char *s = w->p;
    while (w->p < w->end && *w->p >= '0' && *w->p <= '9')
        w->p++;
    return w->p > s;
}

/* RFC 8259 number, and at most 63 characters: cJSON reads no more than that. */
static bool jw_number(jwalk *w)
{
    const char *s = w->p;
    if (w->p < w->end && *w->p == '-')
        w->p++;
    if (w->p < w->end && *w->p == '0')
        w->p++;
    else if (!jw_digits(w))
        return false;
    if (w->p < w->end && *w->p == '.') {
        w->p++;
        if (!jw_digits(w))
            return false;
    }
    if (w->p < w->end && (*w->p == 'e' || *w->p == 'E')) {
        w->p++;
        if (w->p < w->end && (*w->p == '+' || *w->p == '-'))
            w->p++;
        if (!jw_digits(w))
            return false;
    }
    return w->p - s <= 63;
}

static bool jw_word(jwalk *w, const char *word, size_t n)
{
    if ((size_t)(w->end - w->p) < n || memcmp(w->p, word, n) != 0)
        return false;
    w->p += n;
    return true;
}

/* At an opening bracket: past it; true when the container is empty (past its close, too). */
static bool jw_open_empty(jwalk *w, char close)
{
    w->p++;
    jw_space(w);
    if (w->p < w->end && *w->p == close) {
        w->p++;
        return true;
    }
    return false;
}

/* After a member or element: 1 past the closing bracket, 0 past a comma, -1 for anything else. */
static int jw_next(jwalk *w, char close)
{
    jw_space(w);
    if (w->p >= w->end || (*w->p != close && *w->p != ','))
        return -1;
    return *w->p++ == close ? 1 : 0;
}

/* A value, after any whitespace; past it. Depth is bounded by the caller's bracket count. */
static bool jw_value(jwalk *w)
{
    jw_space(w);
    if (w->p >= w->end)
        return false;
    char open = *w->p;
    switch (open) {
    case '"':
        return jw_string(w);
    case 't':
        return jw_word(w, "true", 4);
    case 'f':
        return jw_word(w, "false", 5);
    case 'n':
        return jw_word(w, "null", 4);
    case '{':
    case '[': {
        char close = open == '{' ? '}' : ']';
        if (jw_open_empty(w, close))
            return true;
        for (;;) {
            if (open == '{') {
                jw_space(w);
                if (w->p >= w->end || *w->p != '"' || !jw_string(w))
                    return false;
                jw_space(w);
                if (w->p >= w->end || *w->p != ':')
                    return false;
                w->p++;
            }
            if (!jw_value(w))
                return false;
            int next = jw_next(w, close);
            if (next)
                return next > 0;
        }
    }
    default:
        return (open == '-' || (open >= '0' && open <= '9')) && jw_number(w);
    }
}

static bool key_in(const char *const *names, size_t n_names, const char *key, size_t n)
{
    for (size_t i = 0; i < n_names; i++)
        if (names[i] && names[i][0] == key[0] && strncmp(names[i], key, n) == 0 && !names[i][n])
            return true;
    return false;
}

/* Top level: the members interpret() reads. Inside them (in an object, or in each object of an
 * array): the fields read from the root object and from file objects. */
static bool member_wanted(const app_shape *s, int level, const char *key, size_t n)
{
    if (level == 0) {
        const char *const top[] = {"eventType", s->root_obj, s->file_one, s->file_many, s->renamed,
                                   "deletedFiles", s->label_part};
        return key_in(top, ARRAY_SIZE(top), key, n);
    }
    /* the label's fields (event_label) too: a movie's year, an episode's numbers and title */
    const char *const inner[] = {s->root_key, s->title_key, "relativePath", "path",
                                 "previousRelativePath", "previousPath", "title", "year",
                                 "seasonNumber", "episodeNumber"};
    return key_in(inner, ARRAY_SIZE(inner), key, n);
}

/* One value parsed by cJSON from where it starts; cJSON says where it ended. The first byte
 * must begin a value: cJSON would skip a BOM or control bytes there, which a whole-body parse
 * refuses. */
static cJSON *jw_cjson(jwalk *w)
{
    char c0 = w->p < w->end ? *w->p : '\0';
    if (!(c0 == '{' || c0 == '[' || c0 == '"' || c0 == 't' || c0 == 'f' || c0 == 'n' ||
          c0 == '-' || (c0 >= '0' && c0 <= '9')))
        return NULL;
    const char *vend = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(w->p, (size_t)(w->end - w->p), &vend, false);
    if (v)
        w->p = vend;
    return v;
}

static cJSON *jw_object(jwalk *w, const app_shape *s, int level);

/* A top-level member's value: an object or an array of objects keeps only their wanted
 * fields; anything else is parsed whole. */
static cJSON *jw_kept(jwalk *w, const app_shape *s)
{
    if (w->p < w->end && *w->p == '{')
        return jw_object(w, s, 1);
    if (w->p >= w->end || *w->p != '[')
        return jw_cjson(w);
    cJSON *arr = cJSON_CreateArray();
    if (!arr || jw_open_empty(w, ']'))
        return arr;
    for (;;) {
        jw_space(w);
        cJSON *item = w->p < w->end && *w->p == '{' ? jw_object(w, s, 1) : jw_cjson(w);
        if (!item)
            break;
        cJSON_AddItemToArray(arr, item);
        int next = jw_next(w, ']');
        if (next > 0)
            return arr;
        if (next < 0)
            break;
    }
    cJSON_Delete(arr);
    return NULL;
}

/* At '{': the object with only its wanted members, in order (so cJSON's lookup finds the same
 * first one), the others checked and skipped. NULL: parse the whole body instead. */
static cJSON *jw_object(jwalk *w, const app_shape *s, int level)
{
    cJSON *obj = cJSON_CreateObject();
    if (!obj || jw_open_empty(w, '}'))
        return obj;
    for (;;) {
        jw_space(w);
        const char *key = w->p + 1;
        if (w->p >= w->end || *w->p != '"' || !jw_string(w))
            break;
        size_t key_len = (size_t)(w->p - 1 - key);
        if (memchr(key, '\\', key_len)) /* cJSON would read the escapes: let it */
            break;
        jw_space(w);
        if (w->p >= w->end || *w->p != ':')
            break;
        w->p++;
        jw_space(w);
        if (member_wanted(s, level, key, key_len)) {
            cJSON *v = level == 0 ? jw_kept(w, s) : jw_cjson(w);
            if (!v)
                break;
            char name[32];
            memcpy(name, key, key_len); /* wanted names are short */
            name[key_len] = '\0';
            cJSON_AddItemToObject(obj, name, v);
        } else if (!jw_value(w)) {
            break;
        }
        int next = jw_next(w, '}');
        if (next > 0)
            return obj;
        if (next < 0)
            break;
    }
    cJSON_Delete(obj);
    return NULL;
}

/* The body's object with only what interpret() reads, or NULL: parse it all instead. Called
 * inside the arena scope. */
static cJSON *parse_selected(const app_shape *shape, const char *body, size_t len)
{
    jwalk w = {body, body + len};
    jw_space(&w);
    if (w.p >= w.end || *w.p != '{')
        return NULL;
    cJSON *root = jw_object(&w, shape, 0);
    if (!root)
        return NULL;
    jw_space(&w);
    if (w.p != w.end) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

static cJSON *parse_body(wh_ctx *x, const char *body, size_t len)
{
    bool has_nul = false;
    char *copy = NULL;
    if (!body)
        len = 0;
    if (len && !json_surely_plain(body, len) && !json_prescan(body, len, NULL, &has_nul)) {
        werr(x, "JSON nested too deeply");
        return NULL;
    }
    if (has_nul) {
        copy = xmalloc(len + 1);
        memcpy(copy, body, len);
        copy[len] = '\0';
        json_prescan(body, len, copy, &has_nul);
        body = copy;
    }
    cJSON *root = NULL;
    if (webhook_selective && !copy && len)
        root = parse_selected(x->shape, body, len);
    if (root)
        return root;
    webhook_whole_parses++;
    const char *end = NULL;
    root = len ? cJSON_ParseWithLengthOpts(body, len, &end, false) : NULL;
    if (root) {
        /* cJSON stops after the first value; anything but whitespace after it is an error. */
        size_t off = (size_t)(end - body);
        while (off < len && (body[off] == ' ' || body[off] == '\t' || body[off] == '\r' ||
                             body[off] == '\n'))
            off++;
        if (off != len) {
            cJSON_Delete(root);
            root = NULL;
        }
    }
    free(copy);
    if (!root)
        werr(x, "body is not valid JSON");
    else if (!cJSON_IsObject(root)) {
        werr(x, "body is not a JSON object");
        cJSON_Delete(root);
        root = NULL;
    }
    return root;
}

static int interpret(wh_ctx *x, const cJSON *json)
{
    wh_event *ev = x->ev;
    const cJSON *type = field(json, "eventType");
    if (type && !cJSON_IsString(type))
        return werr(x, "eventType must be a string");
    ev->event_type = xstrdup(type ? type->valuestring : "");

    const cJSON *root_obj = field(json, x->shape->root_obj);
    const cJSON *title = cJSON_IsObject(root_obj) ? field(root_obj, x->shape->title_key) : NULL;
    if (cJSON_IsString(title))
        ev->title = xstrdup(title->valuestring);
    ev->label = event_label(x, json, root_obj);

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

    ev->kinds = event_kinds(kind, ev->event_type, json);
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
    if (!ARR_APP_HAS_PAYLOAD(app))
        return werr(&x, "no webhook payload format for '%s'", arr_app_name(app));
    x.shape = &shapes[app];
    x.max_folders = c->max_folders_per_event > 0 ? (size_t)c->max_folders_per_event
                                                 : WEBHOOK_DEFAULT_MAX_FOLDERS;

    /* The tree lives only in this call (everything taken from it is copied): it is left to the
     * arena, which takes it back whole, instead of being deleted node by node. */
    json_arena_begin();
    cJSON *json = parse_body(&x, body, len);
    int rc = json ? interpret(&x, json) : -EINVAL;
    json_arena_end();
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
    free(e->label);
    memset(e, 0, sizeof(*e));
}
