/* folders.c: the one rule for what a scan of a folder means (see folders.h). */
#include "folders.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* A library list that holds nothing for a folder may only drop it when the list is fresh: read
 * at most SECTION_REFRESH ago. An old one (or none) makes the folder wait for the next list. */
static bool list_is_fresh(const config_t *c, const media_libraries *libs, uint64_t now)
{
    return libs && libs->fetched_at && now - libs->fetched_at < c->section_refresh_ms;
}

char *folders_target_path(const cfg_target *t, const char *arr_path)
{
    char *p = paths_replace(arr_path, &t->path_repl, NULL);
    /* Plex on Windows sees drive paths ("D:/TV/Show"); every other form must be absolute. */
    bool drive = t->kind == TARGET_PLEX && p && ((p[0] | 0x20) >= 'a' && (p[0] | 0x20) <= 'z') && p[1] == ':';
    if (!p || (p[0] != '/' && !drive)) {
        free(p);
        return NULL;
    }
    return p;
}

bool folders_library_holds(const media_library *lib, const char *path)
{
    for (size_t i = 0; lib && i < lib->n_locations; i++)
        if (paths_has_prefix(path, lib->locations[i], false))
            return true;
    return false;
}

/* SECTION_MAPPING (or the item's section_mapping): the longest prefix by whole component,
 * case-insensitively, as the Python script matched. */
static const cfg_section_map *mapping_for(const cfg_target *t, const char *path)
{
    const cfg_section_map *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < t->n_section_map; i++) {
        size_t l = strlen(t->section_map[i].prefix);
        if ((!best || l > best_len) && paths_has_prefix(path, t->section_map[i].prefix, true)) {
            best = &t->section_map[i];
            best_len = l;
        }
    }
    return best;
}

/* Whether tpath (t's form of the folder) or the arr path is a library location of t, one of
 * its replacement prefixes or mapping prefixes, or above one. */
static bool root_or_above(const folder_target *ft, const char *tpath, const char *arr)
{
    const cfg_target *t = ft->cfg;
    if (strcmp(tpath, "/") == 0)
        return true;
    for (size_t i = 0; ft->libs && i < ft->libs->n; i++)
        for (size_t k = 0; k < ft->libs->v[i].n_locations; k++)
            if (paths_at_or_above(tpath, ft->libs->v[i].locations[k]))
                return true;
    /* Both sides of the replacements: the target side is a library-like root in its terms, and
     * a folder that no replacement matched is still in arr terms, where `from` is the root. */
    for (size_t i = 0; i < t->path_repl.n; i++)
        if (paths_at_or_above(tpath, t->path_repl.v[i].to) || paths_at_or_above(arr, t->path_repl.v[i].from))
            return true;
    for (size_t i = 0; i < t->n_section_map; i++)
        if (paths_at_or_above(tpath, t->section_map[i].prefix))
            return true;
    return false;
}

static folder_delivery *add(folder_plan *p, size_t target, const char *tpath)
{
    if (p->n_deliv >= FOLDERS_MAX_DELIVERIES)
        return NULL;
    folder_delivery *d = &p->deliv[p->n_deliv++];
    memset(d, 0, sizeof *d);
    d->target = target;
    d->library_id = xstrdup("");
    d->path = xstrdup(tpath);
    return d;
}

/* The deliveries to one target; returns how many libraries of it hold the folder. */
static size_t plan_target(folder_plan *p, const folder_libs *l, size_t ti, const char *tpath, bool fresh)
{
    const folder_target *ft = &l->targets[ti];
    const media_libraries *libs = ft->libs;
    bool known = libs && libs->fetched_at;
    const cfg_section_map *m = ft->cfg->kind == TARGET_PLEX ? mapping_for(ft->cfg, tpath) : NULL;
    if (m) {
        char id[24];
        snprintf(id, sizeof id, "%ld", m->section);
        const media_library *lib = media_libraries_find(libs, id);
        folder_delivery *d = add(p, ti, tpath);
        if (!d)
            return 0;
        d->library = lib;
        free(d->library_id);
        d->library_id = xstrdup(id); /* the mapping's id stands even when the list lacks it */
        d->mapped = true;
        d->outside_locations = known && !folders_library_holds(lib, tpath);
        return 1;
    }
    if (!known) {
        folder_delivery *d = add(p, ti, tpath);
        if (d)
            d->unresolved = true;
        return 0;
    }
    size_t hits = 0;
    for (size_t i = 0; i < libs->n; i++) {
        if (!folders_library_holds(&libs->v[i], tpath))
            continue;
        hits++;
        /* Jellyfin and Emby scan by path: two libraries sharing a location get one request. */
        if (ft->cfg->kind != TARGET_PLEX && hits > 1)
            continue;
        folder_delivery *d = add(p, ti, tpath);
        if (d) {
            d->library = &libs->v[i];
            free(d->library_id);
            d->library_id = xstrdup(libs->v[i].id);
        }
    }
    if (!hits && !fresh) {
        /* An old list that holds nothing decides nothing yet: marked, kept only when no other
         * target holds the folder (see folders_plan). */
        folder_delivery *d = add(p, ti, tpath);
        if (d)
            d->unresolved = true;
    }
    return hits;
}

/* Unresolved deliveries for old lists are dropped once another target holds the folder. */
static void drop_stale(folder_plan *p, const folder_libs *l)
{
    size_t k = 0;
    for (size_t i = 0; i < p->n_deliv; i++) {
        folder_delivery *d = &p->deliv[i];
        const media_libraries *libs = l->targets[d->target].libs;
        if (d->unresolved && libs && libs->fetched_at) {
            free(d->path);
            free(d->library_id);
            continue;
        }
        p->deliv[k++] = *d;
    }
    p->n_deliv = k;
}

int folders_plan(const config_t *c, const folder_libs *l, const char *arr_path, folder_plan *out,
                 const char **why)
{
    memset(out, 0, sizeof *out);
    *why = NULL;
    if (paths_resolve(c, arr_path, &out->fp, why) < 0) {
        if (!*why)
            *why = "path maps to no absolute path";
        return -EINVAL;
    }
    size_t matched = 0;
    for (size_t i = 0; i < l->n_targets; i++) {
        char *tp = folders_target_path(l->targets[i].cfg, out->fp.arr);
        if (!tp)
            continue; /* this target cannot see the folder */
        if (root_or_above(&l->targets[i], tp, out->fp.arr))
            out->library_root = true;
        matched += plan_target(out, l, i, tp, list_is_fresh(c, l->targets[i].libs, l->now));
        free(tp);
    }
    if (matched) {
        drop_stale(out, l);
        out->verdict = FOLDER_MATCHED;
    } else if (out->n_deliv || l->n_targets == 0) {
        out->verdict = FOLDER_UNRESOLVED;
    } else {
        out->verdict = FOLDER_NO_MATCH;
    }
    return 0;
}

void folder_plan_free(folder_plan *p)
{
    folder_paths_free(&p->fp);
    for (size_t i = 0; i < p->n_deliv; i++) {
        free(p->deliv[i].path);
        free(p->deliv[i].library_id);
    }
    p->n_deliv = 0;
}

const char *folders_replacements_var(const cfg_target *t)
{
    if (!t->path_repl_own)
        return strncmp(t->origin, "MEDIA_SERVERS", 13) == 0 ? "PATH_REPLACEMENTS (its default path_replacements)"
                                                           : "PATH_REPLACEMENTS";
    if (strcmp(t->origin, "JELLYFIN_URL") == 0)
        return "JELLYFIN_PATH_REPLACEMENTS";
    if (strcmp(t->origin, "EMBY_URL") == 0)
        return "EMBY_PATH_REPLACEMENTS";
    return "its path_replacements";
}

char *folders_skip_reason(const folder_libs *l, const folder_plan *p)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (!f)
        return xstrdup("no library of any media server holds the folder");
    fprintf(f, "no library of any media server holds '%s' (host path '%s')", p->fp.arr, p->fp.host);
    for (size_t i = 0; i < l->n_targets; i++) {
        const folder_target *ft = &l->targets[i];
        char *tp = folders_target_path(ft->cfg, p->fp.arr);
        fprintf(f, "; %s sees '%s' (check %s), its libraries:", ft->cfg->name, tp ? tp : "(no absolute path)",
                folders_replacements_var(ft->cfg));
        free(tp);
        size_t shown = 0;
        for (size_t k = 0; ft->libs && k < ft->libs->n; k++)
            for (size_t j = 0; j < ft->libs->v[k].n_locations && shown < 8; j++, shown++)
                fprintf(f, " '%s'", ft->libs->v[k].locations[j]);
        if (!shown)
            fputs(" none", f);
    }
    fclose(f);
    return out ? out : xstrdup("");
}
