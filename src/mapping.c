/* mapping.c: the places the configuration says media lives (replacement prefixes, library
 * locations mapped back to *arr paths), and the prefixes run-time warnings are said once for. */
#include "mapping.h"

#include <stdlib.h>
#include <string.h>

#include "paths.h"
#include "util.h"

static bool roots_have(const map_roots *r, const char *arr)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->v[i].arr, arr) == 0)
            return true;
    return false;
}

/* Takes `what`. An *arr path already listed keeps its first (most specific) description. */
static void roots_add(map_roots *r, const char *arr, char *what, map_root_kind kind)
{
    char *norm = path_normalize(arr);
    if (norm[0] != '/' || roots_have(r, norm) || r->n >= MAP_ROOTS_MAX) {
        free(norm);
        free(what);
        return;
    }
    r->v = xrealloc(r->v, (r->n + 1) * sizeof *r->v);
    r->v[r->n++] = (map_root){.arr = norm, .what = what, .kind = kind};
}

static void roots_add_map(map_roots *r, const cfg_replacements *m, const char *var, map_root_kind kind)
{
    for (size_t i = 0; i < m->n; i++)
        roots_add(r, m->v[i].from, xasprintf("%s '%s' -> '%s'", var, m->v[i].from, m->v[i].to), kind);
}

void map_roots_from_config(const config_t *c, map_roots *out)
{
    memset(out, 0, sizeof *out);
    roots_add_map(out, &c->rclone_path_repl, "RCLONE_PATH_REPLACEMENTS", MAP_ROOT_RCLONE);
    roots_add_map(out, &c->local_path_repl, "LOCAL_PATH_REPLACEMENTS", MAP_ROOT_REPLACEMENT);
    roots_add_map(out, &c->path_repl, "PATH_REPLACEMENTS", MAP_ROOT_REPLACEMENT);
    for (size_t i = 0; i < c->n_targets; i++) {
        const cfg_target *t = &c->targets[i];
        if (!t->path_repl_own)
            continue; /* PATH_REPLACEMENTS again */
        char *var = xasprintf("%s's path replacements", t->name);
        roots_add_map(out, &t->path_repl, var, MAP_ROOT_REPLACEMENT);
        free(var);
    }
}

char *mapping_arr_of(const cfg_target *t, const char *target_path)
{
    const cfg_replacement *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < t->path_repl.n; i++) {
        const cfg_replacement *r = &t->path_repl.v[i];
        char *to = path_normalize(r->to);
        size_t len = strlen(to);
        if ((!best || len > best_len) && paths_has_prefix(target_path, to, false)) {
            best = r;
            best_len = len;
        }
        free(to);
    }
    char *arr;
    if (best) {
        const char *rest = target_path + best_len;
        while (*rest == '/')
            rest++;
        arr = paths_join(best->from, rest);
    } else {
        arr = path_normalize(target_path);
    }
    /* Another, longer `from` may catch the reversed path and send it elsewhere. */
    char *back = paths_replace(arr, &t->path_repl, NULL);
    char *want = path_normalize(target_path);
    bool same = strcmp(back, want) == 0;
    free(back);
    free(want);
    if (!same || arr[0] != '/') {
        free(arr);
        return NULL;
    }
    return arr;
}

void map_roots_add_libraries(map_roots *r, const cfg_target *t, const media_libraries *libs)
{
    for (size_t i = 0; libs && i < libs->n; i++) {
        const media_library *l = &libs->v[i];
        for (size_t k = 0; k < l->n_locations; k++) {
            char *arr = mapping_arr_of(t, l->locations[k]);
            if (arr)
                roots_add(r, arr, xasprintf("%s library %s '%s' (%s)", t->name, l->id, l->title ? l->title : "",
                                            l->locations[k]), MAP_ROOT_LIBRARY);
            free(arr);
        }
    }
}

void map_roots_free(map_roots *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].arr);
        free(r->v[i].what);
    }
    free(r->v);
    memset(r, 0, sizeof *r);
}

char *mapping_prefix(const cfg_replacements *r, const char *arr_path, const char *fallback)
{
    char *norm = path_normalize(arr_path);
    const cfg_replacement *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; r && i < r->n; i++) {
        size_t len = strlen(r->v[i].from);
        if ((!best || len > best_len) && paths_has_prefix(norm, r->v[i].from, true)) {
            best = &r->v[i];
            best_len = len;
        }
    }
    if (best || fallback) {
        free(norm);
        return xstrdup(best ? best->from : fallback);
    }
    char *slash = norm[0] == '/' ? strchr(norm + 1, '/') : NULL;
    if (slash)
        *slash = '\0';
    return norm;
}

const char *mapping_mount_var(const config_t *c)
{
    return c->n_mounts > 1 ? "RCLONE_MOUNTS" : "RCLONE_MOUNT_ROOT";
}

char *mapping_mount_roots(const config_t *c)
{
    buf_t b;
    buf_init(&b, 4096);
    buf_appends(&b, mapping_mount_var(c));
    for (size_t i = 0; i < c->n_mounts; i++)
        if (buf_printf(&b, "%s%s", i ? ", " : " ", c->mounts[i].root) < 0)
            break;
    return buf_steal(&b);
}

const char *mapping_host_via(const config_t *c, const char *arr_path)
{
    if (!c->local_path_repl_set)
        return "the Plex path: PATH_REPLACEMENTS, as LOCAL_PATH_REPLACEMENTS is unset";
    bool matched = false;
    free(paths_replace(arr_path, &c->local_path_repl, &matched));
    return matched ? "LOCAL_PATH_REPLACEMENTS" : "LOCAL_PATH_REPLACEMENTS has no entry for it";
}
