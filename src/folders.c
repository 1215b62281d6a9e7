/* folders.c: the one rule for what a scan of a folder means (see folders.h). */
#include "folders.h"

#include <errno.h>
#include <string.h>

#include "util.h"

/* A library list that holds nothing for a folder may only drop it when the list is fresh: read
 * at most SECTION_REFRESH ago. An old one (or none) makes the folder wait for the next list. */
static bool list_is_fresh(const config_t *c, const folder_libs *l)
{
    return l->libs->fetched_at && l->now - l->libs->fetched_at < c->section_refresh_ms;
}

int folders_plan(const config_t *c, const folder_libs *l, const char *arr_path, folder_plan *out,
                 const char **why)
{
    memset(out, 0, sizeof *out);
    *why = NULL;
    if (paths_resolve(c, arr_path, &out->fp, why) < 0) {
        if (!*why)
            *why = "path maps to no absolute Plex path";
        return -EINVAL;
    }
    out->library_root = paths_is_library_root_or_above(c, out->fp.plex, l->roots, l->n_roots);
    sections_result r = sections_match(c, l->libs, out->fp.plex, out->sections, FOLDERS_MAX_SECTIONS,
                                       &out->n_sections);
    if (r == SECTIONS_MATCHED) {
        out->verdict = FOLDER_MATCHED;
    } else if (r == SECTIONS_NO_MATCH && list_is_fresh(c, l)) {
        out->verdict = FOLDER_NO_MATCH;
        out->n_sections = 0;
    } else {
        out->verdict = FOLDER_UNRESOLVED;
        out->stale_list = r == SECTIONS_NO_MATCH;
        out->n_sections = 0;
    }
    return 0;
}

void folder_plan_free(folder_plan *p)
{
    folder_paths_free(&p->fp);
    p->n_sections = 0;
}

char *folders_skip_reason(const folder_plan *p)
{
    return xasprintf("no Plex library holds '%s' (arr path '%s', host path '%s')", p->fp.plex, p->fp.arr,
                     p->fp.host);
}
