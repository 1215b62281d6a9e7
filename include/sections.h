/* sections.h: which Plex library sections a Plex path belongs to: SECTION_MAPPING first, then
 * the library list read from Plex (GET /library/sections). Pure data; the fetching lives in
 * plex.c and the schedule in app.c. */
#ifndef PSS_SECTIONS_H
#define PSS_SECTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

typedef struct plex_library {
    long key;            /* section id */
    char *title;
    char *type;          /* movie | show | artist | photo */
    char **locations;    /* normalized Location paths */
    size_t n_locations;
} plex_library;

typedef struct plex_libraries {
    plex_library *v;
    size_t n;
    uint64_t fetched_at; /* wall ms when read; 0 = never read */
} plex_libraries;

void plex_libraries_free(plex_libraries *l);

/* Parse Plex's /library/sections answer, JSON ({"MediaContainer":{"Directory":[...]}}, key as a
 * string or number) or XML (<MediaContainer><Directory key=".."><Location path=".."/>...).
 * Returns 0 or -EINVAL with err set. Bounded: at most 1024 libraries, 64 locations each. */
int plex_libraries_parse(const char *body, size_t len, plex_libraries *out, char *err, size_t errlen);
/* (Added) On success out->fetched_at = wall_ms() (the caller may overwrite it); on failure *out
 * is left empty (n = 0, fetched_at = 0), so plex_libraries_free is safe but not needed. */

typedef enum { SECTION_FROM_MAPPING = 1, SECTION_FROM_LIBRARY = 2 } section_source;

typedef struct section_match {
    long section;
    section_source source;
    bool outside_locations; /* mapped by SECTION_MAPPING, but not under any of that library's
                               known locations (Plex would silently ignore the scan) */
    const plex_library *library; /* NULL when the list is unknown or lacks this key */
} section_match;

typedef enum {
    SECTIONS_MATCHED = 0,   /* n_out >= 1 */
    SECTIONS_UNRESOLVED,    /* no mapping matches and no library list has been read yet */
    SECTIONS_NO_MATCH,      /* a library list exists and nothing matches */
} sections_result;

/* Match plex_path. SECTION_MAPPING: longest prefix by whole component, case-insensitive; one
 * result. Else every library with a Location equal to or a component prefix of plex_path (one
 * result each, case-sensitive compare as Plex is). Writes up to max results. */
sections_result sections_match(const config_t *c, const plex_libraries *libs, const char *plex_path,
                               section_match *out, size_t max, size_t *n_out);

/* Every library location plus every SECTION_MAPPING prefix, for paths_is_library_root_or_above.
 * The returned array points into c/libs (free only the array). */
const char **sections_all_roots(const config_t *c, const plex_libraries *libs, size_t *n);

#endif
