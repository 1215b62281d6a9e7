/* sections.c: which Plex library sections a Plex path belongs to: SECTION_MAPPING first, then
 * the library list Plex answered on GET /library/sections (parsed by libraries.c). */
#include "sections.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libraries.h"
#include "paths.h"
#include "util.h"

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

/* The old shape of the list, kept until every caller reads media_libraries: the one parser
 * (libraries.c) fills a media_libraries, moved here with each id read back as a number. */
int plex_libraries_parse(const char *body, size_t len, plex_libraries *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    media_libraries m;
    int rc = plex_media_libraries_parse(body, len, &m, err, errlen);
    if (rc)
        return rc;
    out->v = xcalloc(m.n ? m.n : 1, sizeof(*out->v));
    for (size_t i = 0; i < m.n; i++) {
        media_library *from = &m.v[i];
        plex_library *to = &out->v[out->n++];
        long long key = 0;
        /* The parser wrote a positive decimal of at most 15 digits. */
        (void)parse_positive(from->id, strlen(from->id), 999999999999999LL, &key);
        to->key = (long)key;
        to->title = from->title;
        to->type = from->type;
        to->locations = from->locations;
        to->n_locations = from->n_locations;
        from->title = from->type = NULL;
        from->locations = NULL;
        from->n_locations = 0;
    }
    out->fetched_at = m.fetched_at;
    media_libraries_free(&m);
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
