/* fuzz_common.h: helpers shared by the libFuzzer targets: a quiet log and a config built from
 * KEY, VALUE pairs (a target that cannot build its fixed config aborts: that is a bug in the
 * target, not a finding). */
#ifndef PSS_FUZZ_COMMON_H
#define PSS_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dotenv.h"
#include "log.h"
#include "test_hooks.h"

/* libFuzzer's entry points. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline void fuzz_log_sink(log_level_t lvl, const char *line)
{
    (void)lvl;
    (void)line;
}

/* Log output costs time and says nothing to the fuzzer. */
static inline void fuzz_quiet(void)
{
    log_set_sink(fuzz_log_sink);
    log_set_level(LOG_LVL_ERROR);
}

/* kv: NULL-terminated KEY, VALUE list. */
static inline void fuzz_config(config_t *c, const char *const *kv)
{
    env_map env = {0};
    for (size_t i = 0; kv && kv[i]; i += 2)
        env_map_set(&env, kv[i], kv[i + 1]);
    char err[512];
    if (config_build(c, &env, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz target config refused: %s\n", err);
        abort();
    }
    env_map_free(&env);
}

/* A NUL-terminated copy of the input (the parsers under test take C strings). */
static inline char *fuzz_cstr(const unsigned char *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* A message meant for one log line: NUL-terminated within its buffer, no raw line breaks. */
static inline void fuzz_check_line(const char *msg, size_t cap)
{
    size_t n = strnlen(msg, cap);
    if (n == cap)
        abort();
    for (size_t i = 0; i < n; i++)
        if (msg[i] == '\n' || msg[i] == '\r')
            abort();
}

#endif
