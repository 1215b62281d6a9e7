/* fuzz_plex.c: Plex's /library/sections answer (JSON or XML) -> plex_media_libraries_parse(), as
 * plex_target_list_sections() reads it, and plex_classify() on the status in byte 0. Checked: the
 * documented bounds (LIBRARIES_MAX libraries, LIBRARIES_MAX_LOCATIONS each), every id a section
 * key in canonical decimal (what plex_target_scan() accepts), title and type never NULL,
 * normalized locations without repeats, an explained one-line refusal that leaves
 * nothing behind. */
#include <stdint.h>

#include "fuzz_common.h"
#include "libraries.h"
#include "plex.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet();
    return 0;
}

/* Decimal digits, no leading zero, at most 15 of them. */
static bool canonical_key(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > 15 || id[0] == '0')
        return false;
    for (size_t i = 0; i < n; i++)
        if (id[i] < '0' || id[i] > '9')
            return false;
    return true;
}

static void check_library(const media_library *lib)
{
    if (!canonical_key(lib->id) || !lib->title || !lib->type)
        abort();
    if (lib->n_locations > LIBRARIES_MAX_LOCATIONS)
        abort();
    for (size_t k = 0; k < lib->n_locations; k++) {
        const char *loc = lib->locations[k];
        if (!path_is_normal(loc))
            abort();
        for (size_t j = 0; j < k; j++)
            if (strcmp(lib->locations[j], loc) == 0)
                abort(); /* repeats are dropped */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    httpc_result res = {.error = HTTPC_OK, .status = 100 + data[0] * 2, .body = "", .message = "ok"};
    (void)plex_classify(&res);
    res.error = (httpc_error)(data[0] % (HTTPC_ERR_TLS + 1));
    (void)plex_classify(&res);

    /* The body exactly as received (httpc adds a NUL after it). */
    char *body = fuzz_cstr(data + 1, size - 1);
    media_libraries libs;
    char err[256];
    err[0] = '\0';
    if (plex_media_libraries_parse(body, size - 1, &libs, err, sizeof err) == 0) {
        if (libs.n > LIBRARIES_MAX || !libs.fetched_at || (libs.n && !libs.v))
            abort();
        for (size_t i = 0; i < libs.n; i++)
            check_library(&libs.v[i]);
        media_libraries_free(&libs);
        if (libs.n || libs.v || libs.fetched_at)
            abort();
    } else {
        if (libs.n || libs.v || libs.fetched_at || !err[0])
            abort();
        fuzz_check_line(err, sizeof err);
    }
    free(body);
    return 0;
}
