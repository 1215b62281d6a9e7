/* fuzz_webhook.c: *arr webhook bodies -> webhook_parse(), for each app and both scan scopes.
 * Input: one byte choosing the app (low 3 bits) and SCAN_SCOPE=root (0x80), then the body.
 * Checked: an accepted event's folders and files all pass paths_check() and stay within
 * MAX_FOLDERS_PER_EVENT and WEBHOOK_MAX_FILES; a refusal leaves the event zeroed and explains
 * itself in one line; and reading only the members the parser uses gives exactly what parsing
 * the whole body gives (the same event, or the same refusal). */
#include <stdint.h>

#include "fuzz_common.h"
#include "paths.h"
#include "webhook.h"
#include "test_hooks.h"

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

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool same_event(const wh_event *a, const wh_event *b)
{
    if (a->app != b->app || !same_str(a->event_type, b->event_type) || !same_str(a->root, b->root) ||
        !same_str(a->title, b->title) || !same_str(a->label, b->label) || a->is_test != b->is_test || a->ignored != b->ignored ||
        a->n_folders != b->n_folders)
        return false;
    for (size_t i = 0; i < a->n_folders; i++) {
        const wh_folder *x = &a->folders[i], *y = &b->folders[i];
        if (!same_str(x->path, y->path) || x->n_files != y->n_files)
            return false;
        for (size_t k = 0; k < x->n_files; k++)
            if (!same_str(x->files[k], y->files[k]))
                return false;
    }
    return true;
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
    /* The reference: cJSON's tree of the whole body. */
    wh_event ref;
    char ref_err[256];
    ref_err[0] = '\0';
    webhook_selective = false;
    int ref_rc = webhook_parse(cfg, app, body, len, &ref, ref_err, sizeof ref_err);
    webhook_selective = true;
    if (rc != ref_rc || strcmp(err, ref_err) != 0 || !same_event(&ev, &ref))
        abort();
    wh_event_free(&ref);
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
