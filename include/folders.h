/* folders.h: what a scan of one folder means (folders.c), the one rule that the webhooks, the
 * manual trigger, the re-map after a reload or a new library list, and the /api/resolve preview
 * all apply, so a preview always says what a webhook would do.
 *
 * arr path -> its four forms (Plex path, host path, rclone mount and VFS dir: paths.c) -> the
 * library sections that hold it (sections.c) -> a verdict. Pure: no app, no I/O; the clock and
 * the library list are passed in. */
#ifndef PSS_FOLDERS_H
#define PSS_FOLDERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "paths.h"
#include "sections.h"

#define FOLDERS_MAX_SECTIONS 16

typedef enum {
    FOLDER_MATCHED,    /* the sections in `sections` hold it */
    FOLDER_UNRESOLVED, /* no library list yet, or a stale one that holds nothing: wait for one */
    FOLDER_NO_MATCH,   /* a fresh library list holds nothing for it: it is skipped */
} folder_verdict;

/* What the owner knows of the libraries. */
typedef struct folder_libs {
    const plex_libraries *libs;
    const char *const *roots; /* every library location and SECTION_MAPPING prefix */
    size_t n_roots;
    uint64_t now;             /* wall ms, to tell a stale list */
} folder_libs;

typedef struct folder_plan {
    folder_paths fp;
    folder_verdict verdict;
    bool stale_list;          /* UNRESOLVED only because the list is old (SECTION_REFRESH) */
    bool library_root;        /* a library location or above one: a scan covers whole libraries */
    section_match sections[FOLDERS_MAX_SECTIONS];
    size_t n_sections;        /* FOLDER_MATCHED: at least 1 */
} folder_plan;

/* Plan a scan of arr_path (validated and normalized by the caller). Returns 0, or -EINVAL with
 * *why set (a static string) when the path maps to no usable path; *out is then empty. */
int folders_plan(const config_t *c, const folder_libs *l, const char *arr_path, folder_plan *out,
                 const char **why);
void folder_plan_free(folder_plan *p);
/* The skip message for FOLDER_NO_MATCH, naming the three forms (new string). */
char *folders_skip_reason(const folder_plan *p);

#endif
