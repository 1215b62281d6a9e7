/* fuzz_webhook.c: *arr webhook bodies -> webhook_parse(), for each app and both scan scopes.
 * Input: one byte choosing the app (low 3 bits) and SCAN_SCOPE=root (0x80), then the body.
 * Checked: an accepted event's folders and files all pass paths_check() and stay within
 * MAX_FOLDERS_PER_EVENT and WEBHOOK_MAX_FILES; a refusal leaves the event zeroed and explains
 * itself in one line. */
#include <stdint.h>

#include "fuzz_common.h"
#include "paths.h"
#include "webhook.h"

static config_t folder_cfg, root_cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet();
    static const char *const folder_kv[] = {
        "PATH_REPLACEMENTS", "{\"C:\\\\Media\": \"/media\", \"/data\": \"/mnt/data\", \"D:\\\\\": \"/d\"}",
        "MAX_FOLDERS_PER_EVENT", "8", NULL};
    static const char *const root_kv[] = {"SCAN_SCOPE", "root", "MAX_FOLDERS_PER_EVENT", "3", NULL};
    fuzz_config(&folder_cfg, folder_kv);
    fuzz_config(&root_cfg, root_kv);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    arr_app app = (arr_app)(data[0] & 7);
    if (app >= APP_COUNT)
        app = APP_SONARR;
    const config_t *cfg = (data[0] & 0x80) ? &root_cfg : &folder_cfg;
    /* Exactly the body's bytes, not NUL-terminated: the parser must honour the length. */
    size_t len = size - 1;
    char *body = malloc(len ? len : 1);
    if (!body)
        abort();
    if (len)
        memcpy(body, data + 1, len);
    wh_event ev;
    char err[256];
    err[0] = '\0';
    int rc = webhook_parse(cfg, app, body, len, &ev, err, sizeof err);
    if (rc == 0) {
        size_t max = (size_t)cfg->max_folders_per_event;
        if (ev.n_folders > max)
            abort();
        for (size_t i = 0; i < ev.n_folders; i++) {
            if (!ev.folders[i].path || paths_check(ev.folders[i].path))
                abort();
            if (ev.folders[i].n_files > WEBHOOK_MAX_FILES)
                abort();
            for (size_t k = 0; k < ev.folders[i].n_files; k++)
                if (paths_check(ev.folders[i].files[k]))
                    abort();
        }
        if (ev.root && paths_check(ev.root))
            abort();
        wh_event_free(&ev);
    } else {
        if (ev.n_folders || ev.folders || ev.root || !err[0])
            abort();
        fuzz_check_line(err, sizeof err);
    }
    free(body);
    return 0;
}
