/* fuzz_libraries.c: Jellyfin's and Emby's /Library/VirtualFolders answer -> mb_libraries_parse().
 * Checked: the documented bounds (LIBRARIES_MAX libraries, LIBRARIES_MAX_LOCATIONS each), every
 * library has an id, every location is normalized and absolute, an explained one-line refusal
 * that leaves nothing behind. */
#include <stdint.h>

#include "fuzz_common.h"
#include "libraries.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet();
    return 0;
}

static void check_library(const media_library *lib)
{
    if (!lib->id || !lib->id[0] || !lib->title || lib->refreshing)
        abort();
    if (lib->n_locations > LIBRARIES_MAX_LOCATIONS)
        abort();
    for (size_t k = 0; k < lib->n_locations; k++) {
        if (lib->locations[k][0] != '/' || !path_is_normal(lib->locations[k]))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The body exactly as received (httpc adds a NUL after it). */
    char *body = fuzz_cstr(data, size);
    media_libraries libs;
    char err[256];
    err[0] = '\0';
    if (mb_libraries_parse(body, size, &libs, err, sizeof err) == 0) {
        if (libs.n > LIBRARIES_MAX || !libs.fetched_at)
            abort();
        for (size_t i = 0; i < libs.n; i++)
            check_library(&libs.v[i]);
        media_libraries_free(&libs);
    } else {
        if (libs.n || libs.v || libs.fetched_at || !err[0])
            abort();
        fuzz_check_line(err, sizeof err);
    }
    free(body);
    return 0;
}
