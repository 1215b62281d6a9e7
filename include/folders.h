/* folders.h: what a scan of one folder means (folders.c), the one rule that the webhooks, the
 * manual trigger, the re-map after a reload or a new library list, and the /api/resolve preview
 * all apply, so a preview always says what a webhook would do.
 *
 * arr path -> its forms (host path, rclone mount and VFS dir: paths.c) -> for each target, its
 * path through that target's replacements and the libraries that hold it (a delivery each) ->
 * a verdict. Pure: no app, no I/O; the clock and the library lists are passed in. */
#ifndef PSS_FOLDERS_H
#define PSS_FOLDERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "libraries.h"
#include "paths.h"

#define FOLDERS_MAX_DELIVERIES 64

typedef enum {
    FOLDER_MATCHED,    /* at least one library of one target holds it (deliveries may also hold
                          unresolved ones, for targets whose list was never read) */
    FOLDER_UNRESOLVED, /* no target with a fresh list holds it, and some target's list is missing
                          or old: wait for one */
    FOLDER_NO_MATCH,   /* every target has a fresh list and none holds it: it is skipped */
} folder_verdict;

/* One target as the rule sees it. */
typedef struct folder_target {
    const cfg_target *cfg;
    const media_libraries *libs; /* fetched_at == 0: never read */
} folder_target;

/* What the owner knows of the targets. */
typedef struct folder_libs {
    const folder_target *targets;
    size_t n_targets;
    uint64_t now;                /* wall ms, to tell a stale list */
} folder_libs;

typedef struct folder_delivery {
    size_t target;               /* index into folder_libs.targets */
    char *library_id;            /* "" while unresolved */
    const media_library *library;/* NULL when unresolved or the list lacks the mapped id */
    char *path;                  /* the folder as this target sees it */
    bool unresolved;             /* the target's list was never read (or is old and holds nothing
                                    while no other target holds the folder) */
    bool mapped;                 /* from SECTION_MAPPING (Plex) */
    bool outside_locations;      /* mapped, but outside that library's locations: Plex would
                                    silently ignore the scan */
} folder_delivery;

typedef struct folder_plan {
    folder_paths fp;
    folder_verdict verdict;
    bool library_root;           /* for some target, a library location or above one (or a
                                    replacement prefix): a scan covers whole libraries */
    folder_delivery deliv[FOLDERS_MAX_DELIVERIES];
    size_t n_deliv;
} folder_plan;

/* Plan a scan of arr_path (validated and normalized by the caller). Returns 0, or -EINVAL with
 * *why set (a static string) when the path maps to no usable path; *out is then empty. */
int folders_plan(const config_t *c, const folder_libs *l, const char *arr_path, folder_plan *out,
                 const char **why);
void folder_plan_free(folder_plan *p);
/* The skip message for FOLDER_NO_MATCH: the folder's paths per target, the replacements to
 * check and the library locations known (new string). */
char *folders_skip_reason(const folder_libs *l, const folder_plan *p);
/* Whether one of lib's locations is path or a component prefix of it (case-sensitive, as the
 * servers compare); false for NULL. */
bool folders_library_holds(const media_library *lib, const char *path);
/* The variable that holds t's path replacements, for messages ("PATH_REPLACEMENTS",
 * "JELLYFIN_PATH_REPLACEMENTS", "its path_replacements", ...). */
const char *folders_replacements_var(const cfg_target *t);
/* The target path of arr_path for t (new string), or NULL when it maps to no absolute path. */
char *folders_target_path(const cfg_target *t, const char *arr_path);

#endif
