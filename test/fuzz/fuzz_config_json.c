/* fuzz_config_json.c: the JSON-valued variables (and TRUSTED_PROXIES' list) -> config_build().
 * Input: one byte choosing the variable, then its value. Checked: a refusal names the variable
 * in one line and never echoes a secret (RCLONE_MOUNTS carries passwords); an accepted value
 * gives sorted, normalized tables. */
#include <stdbool.h>
#include <stdint.h>

#include "fuzz_common.h"

static const char *const vars[] = {
    "PATH_REPLACEMENTS", "RCLONE_PATH_REPLACEMENTS", "LOCAL_PATH_REPLACEMENTS", "SECTION_MAPPING",
    "RCLONE_MOUNTS",     "ANCHOR_FILES",             "TRUSTED_PROXIES",
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet();
    return 0;
}

static void check_sorted(const cfg_replacements *r)
{
    for (size_t i = 1; i < r->n; i++)
        if (strlen(r->v[i - 1].from) < strlen(r->v[i].from))
            abort();
}

/* RCLONE_MOUNTS is secret: its refusals quote nothing but a root, and only in the "listed
 * twice" message (a root may itself hold a quote or "(got '", so the shape is what is checked). */
static bool secret_safe(const char *err)
{
    static const char tail[] = "' is listed twice";
    const char *q = strchr(err, '\'');
    if (!q)
        return true;
    size_t n = strlen(err), t = sizeof tail - 1;
    const char *r = strstr(err, ": root '");
    return r && q == r + 7 && n > t && strcmp(err + n - t, tail) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *var = vars[data[0] % (sizeof vars / sizeof *vars)];
    char *value = fuzz_cstr(data + 1, size - 1);
    env_map env = {0};
    env_map_set(&env, var, value);
    if (strcmp(var, "RCLONE_MOUNTS") == 0)
        env_map_set(&env, "USE_RCLONE", (data[0] & 0x80) ? "false" : "true");
    config_t c;
    char err[512];
    err[0] = '\0';
    if (config_build(&c, &env, NULL, err, sizeof err) == 0) {
        check_sorted(&c.path_repl);
        check_sorted(&c.rclone_path_repl);
        check_sorted(&c.local_path_repl);
        for (size_t i = 1; i < c.n_mounts; i++)
            if (strlen(c.mounts[i - 1].root) < strlen(c.mounts[i].root))
                abort();
        for (size_t i = 0; i < c.n_trusted; i++)
            if (c.trusted[i].prefix > 128)
                abort();
        config_free(&c);
    } else {
        fuzz_check_line(err, sizeof err);
        if (strncmp(err, var, strlen(var)) != 0)
            abort();
        if (strcmp(var, "RCLONE_MOUNTS") == 0 && !secret_safe(err))
            abort();
    }
    env_map_free(&env);
    free(value);
    return 0;
}
