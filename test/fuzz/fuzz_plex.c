/* fuzz_plex.c: Plex's /library/sections answer (JSON or XML) -> plex_libraries_parse(), then
 * section matching over what it read, and plex_classify() on the status in byte 0. Checked: the
 * documented bounds (1024 libraries, 64 locations each), normalized locations, an explained
 * refusal that leaves nothing behind. */
#include <stdint.h>

#include "fuzz_common.h"
#include "paths.h"
#include "util.h"
#include "plex.h"
#include "sections.h"

static config_t cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet();
    static const char *const kv[] = {"SECTION_MAPPING", "{\"/data/tv\": 1, \"/data/movies\": 7}", NULL};
    fuzz_config(&cfg, kv);
    return 0;
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
    plex_libraries libs;
    char err[256];
    err[0] = '\0';
    if (plex_libraries_parse(body, size - 1, &libs, err, sizeof err) == 0) {
        if (libs.n > 1024 || !libs.fetched_at)
            abort();
        for (size_t i = 0; i < libs.n; i++) {
            if (libs.v[i].n_locations > 64)
                abort();
            for (size_t k = 0; k < libs.v[i].n_locations; k++) {
                char *again = path_normalize(libs.v[i].locations[k]);
                if (strcmp(again, libs.v[i].locations[k]) != 0)
                    abort();
                free(again);
            }
        }
        section_match m[16];
        size_t nm = 0;
        const char *probe = libs.n && libs.v[0].n_locations ? libs.v[0].locations[0] : "/data/tv/Show";
        (void)sections_match(&cfg, &libs, probe, m, 16, &nm);
        if (nm > 16)
            abort();
        size_t nr = 0;
        free(sections_all_roots(&cfg, &libs, &nr));
        plex_libraries_free(&libs);
    } else {
        if (libs.n || libs.v || libs.fetched_at || !err[0])
            abort();
        fuzz_check_line(err, sizeof err);
    }
    free(body);
    return 0;
}
