/* fuzz_paths.c: path mapping and validation. Input: "<path>\n<other>" (either may hold any
 * bytes). Checked: normalizing is idempotent; a path paths_check() accepts resolves to all four
 * forms or fails with a reason; a root at or above which a path lies by the exact compare is so
 * by paths_at_or_above(), which normalizes the root first; prefix, replace, dirname, join and
 * the library-root test never crash or leak. */
#include <stdint.h>

#include "fuzz_common.h"
#include "paths.h"
#include "util.h"

static config_t cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet();
    static const char *const kv[] = {
        "PATH_REPLACEMENTS", "{\"/data/tv\": \"/tv\", \"C:\\\\Media\": \"D:/Media\", \"/data\": \"/plex\"}",
        "RCLONE_PATH_REPLACEMENTS", "{\"/data\": \"/mnt/remote\"}",
        "LOCAL_PATH_REPLACEMENTS", "{\"/data\": \"/srv/data\"}",
        "RCLONE_MOUNTS",
        "[{\"root\": \"/mnt/remote\", \"url\": \"http://127.0.0.1:5572\"}, "
        "{\"root\": \"/mnt/remote/tv\", \"url\": \"http://127.0.0.1:5573\", \"fs\": \"tv:\"}]",
        "SECTION_MAPPING", "{\"/tv\": 1, \"/plex/movies\": 2}",
        NULL};
    fuzz_config(&cfg, kv);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = fuzz_cstr(data, size);
    char *other = strchr(in, '\n');
    if (other)
        *other++ = '\0';
    else
        other = "";

    char *n = path_normalize(in);
    char *n2 = path_normalize(n);
    if (strcmp(n, n2) != 0)
        abort();
    free(n2);
    const char *bad = paths_check(n);
    (void)paths_check(in);
    char *no = path_normalize(other);
    if (paths_has_prefix(n, no, false) && !paths_has_prefix(n, no, true))
        abort(); /* case-insensitive accepts whatever the exact compare does */
    bool matched = false;
    char *rep = paths_replace(n, &cfg.path_repl, &matched);
    if (!matched && strcmp(rep, n) != 0)
        abort();
    free(rep);
    if (!bad) {
        folder_paths fp;
        const char *why = NULL;
        if (paths_resolve(&cfg, n, &fp, &why) == 0) {
            if (!fp.arr || !fp.plex || !fp.host || !fp.rclone)
                abort();
            if (fp.mount && !fp.vfs_dir)
                abort();
            folder_paths_free(&fp);
        } else if (!why) {
            abort();
        }
    }
    /* The library-root test as folders.c makes it: against a location (the other input), the
     * replacement prefixes and the SECTION_MAPPING prefixes. */
    if (paths_has_prefix(no, n, false) && no[0] && !paths_at_or_above(n, no))
        abort(); /* at or above by the exact compare is at or above */
    if (paths_at_or_above(n, other) != paths_at_or_above(n, no))
        abort(); /* a root is normalized before the compare */
    for (size_t i = 0; i < cfg.path_repl.n; i++) {
        (void)paths_at_or_above(n, cfg.path_repl.v[i].to);
        (void)paths_at_or_above(n, cfg.path_repl.v[i].from);
    }
    for (size_t i = 0; i < cfg.n_section_map; i++)
        (void)paths_at_or_above(n, cfg.section_map[i].prefix);
    free(paths_dirname(n));
    free(paths_join(n, other));
    (void)paths_depth(other);
    free(no);
    free(n);
    free(in);
    return 0;
}
