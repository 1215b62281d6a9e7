/* paths.c: the four forms of a folder (arr, Plex, host, VFS dir) and the rules that make and
 * check them: normalization, component-wise prefixes, replacements, input validation. */
#include "paths.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

bool paths_has_prefix(const char *path, const char *prefix, bool ci)
{
    if (!path || !prefix)
        return false;
    size_t n = strlen(prefix);
    if (n == 0)
        return path[0] == '\0';
    if (strlen(path) < n)
        return false;
    if (ci ? ascii_strncasecmp(path, prefix, n) != 0 : memcmp(path, prefix, n) != 0)
        return false;
    /* The match must end on a component boundary: at the end of path, before a '/', or
     * after a prefix that itself ends in '/' (the root "/"). */
    return path[n] == '\0' || path[n] == '/' || prefix[n - 1] == '/';
}

/* The longest `from` that is a case-insensitive component prefix of the normalized path.
 * The config keeps the list sorted longest first, but picking the longest here makes the
 * result independent of how the list was built. */
static const cfg_replacement *replacement_for(const char *norm, const cfg_replacements *r)
{
    const cfg_replacement *best = NULL;
    size_t best_len = 0;
    if (!r)
        return NULL;
    for (size_t i = 0; i < r->n; i++) {
        const char *from = r->v[i].from;
        if (!from || !from[0] || !r->v[i].to)
            continue;
        size_t len = strlen(from);
        if ((!best || len > best_len) && paths_has_prefix(norm, from, true)) {
            best = &r->v[i];
            best_len = len;
        }
    }
    return best;
}

/* dir + '/' + rel, normalized. */
static char *join_normalized(const char *dir, const char *rel)
{
    size_t dl = strlen(dir), rl = strlen(rel);
    char *out = xmalloc(dl + 1 + rl + 1);
    memcpy(out, dir, dl);
    out[dl] = '/';
    memcpy(out + dl + 1, rel, rl + 1);
    path_normalize_in_place(out);
    return out;
}

char *paths_replace(const char *path, const cfg_replacements *r, bool *matched)
{
    char *norm = path_normalize(path);
    const cfg_replacement *m = replacement_for(norm, r);
    if (matched)
        *matched = m != NULL;
    if (!m)
        return norm;

    const char *rest = norm + strlen(m->from);
    while (*rest == '/')
        rest++;
    char *out = rest[0] ? join_normalized(m->to, rest) : path_normalize(m->to);
    free(norm);
    return out;
}

/* A '.' or '..' component, with either separator (the input may not be normalized yet). */
static bool has_dot_component(const char *p)
{
    const char *s = p;
    for (;;) {
        size_t len = strcspn(s, "/\\");
        if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
            return true;
        if (s[len] == '\0')
            return false;
        s += len + 1;
    }
}

/* Well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF). */
static bool valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        unsigned lo = 0x80, hi = 0xbf;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            if (c == 0xe0)
                lo = 0xa0;
            else if (c == 0xed)
                hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            if (c == 0xf0)
                lo = 0x90;
            else if (c == 0xf4)
                hi = 0x8f;
        } else {
            return false;
        }
        if (n - i < len || s[i + 1] < lo || s[i + 1] > hi)
            return false;
        for (size_t k = 2; k < len; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
        i += len;
    }
    return true;
}

const char *paths_check(const char *p)
{
    if (!p || !p[0])
        return "path is empty";
    size_t n = strnlen(p, PATHS_MAX + 1);
    if (n > PATHS_MAX)
        return "path is too long";
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch < 0x20 || ch == 0x7f)
            return "path contains a control character";
    }
    /* The *arr apps send JSON (UTF-8 by definition) and browsers UTF-8 forms; Plex wants UTF-8. */
    if (!valid_utf8((const unsigned char *)p, n))
        return "path is not valid UTF-8";
    if (p[0] != '/' && p[0] != '\\')
        return "path is not absolute";
    if (has_dot_component(p))
        return "path has a '.' or '..' component";
    return NULL;
}

/* "X:/..." (or "X:" alone): a Windows drive path, which Plex on Windows may legitimately see. */
static bool is_drive_path(const char *p)
{
    char c0 = p[0];
    return ((c0 >= 'A' && c0 <= 'Z') || (c0 >= 'a' && c0 <= 'z')) && p[1] == ':' &&
           (p[2] == '\0' || p[2] == '/' || p[2] == '\\');
}

static const cfg_mount *mount_for(const config_t *c, const char *rclone_path)
{
    const cfg_mount *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < c->n_mounts; i++) {
        const char *root = c->mounts[i].root;
        if (!root || !root[0])
            continue;
        size_t len = strlen(root);
        if ((!best || len > best_len) && paths_has_prefix(rclone_path, root, false)) {
            best = &c->mounts[i];
            best_len = len;
        }
    }
    return best;
}

int paths_resolve(const config_t *c, const char *arr, folder_paths *out, const char **why)
{
    const char *reason = NULL;
    memset(out, 0, sizeof(*out));
    out->arr = path_normalize(arr);
    out->plex = paths_replace(out->arr, &c->path_repl, NULL);
    out->host = c->local_path_repl_set ? paths_replace(out->arr, &c->local_path_repl, NULL)
                                       : xstrdup(out->plex);
    out->rclone = paths_replace(out->arr, &c->rclone_path_repl, NULL);

    if (out->arr[0] != '/')
        reason = "path is not absolute";
    else if (out->plex[0] != '/' && !is_drive_path(out->plex))
        reason = "Plex path is not absolute (check PATH_REPLACEMENTS)";
    else if (out->host[0] != '/')
        reason = c->local_path_repl_set
                     ? "host path is not absolute (check LOCAL_PATH_REPLACEMENTS)"
                     : "host path is not absolute (set LOCAL_PATH_REPLACEMENTS)";
    else if (out->rclone[0] != '/')
        reason = "rclone path is not absolute (check RCLONE_PATH_REPLACEMENTS)";
    if (reason) {
        folder_paths_free(out);
        if (why)
            *why = reason;
        return -EINVAL;
    }

    out->mount = mount_for(c, out->rclone);
    if (out->mount) {
        const char *root = out->mount->root;
        size_t len = strlen(root);
        const char *rel = out->rclone + len;
        if (*rel == '/')
            rel++;
        out->vfs_dir = xstrdup(rel);
    }
    if (why)
        *why = NULL;
    return 0;
}

void folder_paths_free(folder_paths *f)
{
    if (!f)
        return;
    free(f->arr);
    free(f->plex);
    free(f->host);
    free(f->rclone);
    free(f->vfs_dir);
    memset(f, 0, sizeof(*f));
}

char *paths_dirname(const char *p)
{
    char *n = path_normalize(p);
    char *slash = strrchr(n, '/');
    if (!slash)
        n[0] = '\0';      /* a bare name has no folder of its own */
    else if (slash == n)
        n[1] = '\0';      /* "/x" -> "/", "/" -> "/" */
    else
        *slash = '\0';
    return n;
}

char *paths_join(const char *dir, const char *rel)
{
    if (!dir || !dir[0])
        return path_normalize(rel);
    if (!rel || !rel[0])
        return path_normalize(dir);
    return join_normalized(dir, rel);
}

int paths_depth(const char *rel)
{
    int depth = 0;
    bool in_component = false;
    for (const char *s = rel ? rel : ""; *s; s++) {
        if (*s == '/' || *s == '\\') {
            in_component = false;
        } else if (!in_component) {
            in_component = true;
            depth++;
        }
    }
    return depth;
}

/* plex_path equals `root` or lies above it (case-insensitively, the cautious direction:
 * refusing a folder a byte-exact compare would let through is the safe mistake here). */
bool paths_at_or_above(const char *plex_path, const char *root)
{
    if (!root || !root[0])
        return false;
    if (path_is_normal(root)) /* configured roots are, Plex's usually are */
        return paths_has_prefix(root, plex_path, true);
    char *n = path_normalize(root);
    bool hit = paths_has_prefix(n, plex_path, true);
    free(n);
    return hit;
}

/* Media and subtitle extensions, without the dot. A folder is rarely named like this; a file the
 * list misses is taken as a folder, which only costs its folder's parent a narrower scan. */
static const char *const media_exts[] = {
    /* video */
    "mkv", "mp4", "m4v", "avi", "ts", "m2ts", "mts", "webm", "mov", "wmv", "mpg", "mpeg", "flv",
    "ogv", "vob", "iso", "3gp", "divx", "rmvb", "asf",
    /* audio */
    "flac", "mp3", "m4a", "m4b", "aac", "ogg", "oga", "opus", "wav", "wma", "ape", "wv", "alac",
    "aiff", "aif", "dsf", "dff", "mka",
    /* books and comics */
    "epub", "mobi", "azw", "azw3", "pdf", "cbz", "cbr", "djvu",
    /* subtitles */
    "srt", "ass", "ssa", "sub", "idx", "vtt", "sup", "smi", "ttml",
};

bool paths_is_media_file(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    if (!dot || dot == base || !dot[1])
        return false; /* ".srt" alone is a hidden name, not an extension */
    for (size_t i = 0; i < ARRAY_SIZE(media_exts); i++)
        if (str_eq_ci(dot + 1, media_exts[i]))
            return true;
    return false;
}
