/* fuzz_dotenv.c: a dotenv file's text -> dotenv_parse(), then every variable it sets through
 * config_build() (as the environment, and as the file under an empty environment), and the
 * duration syntax on the first line. Checked: an error names a line or a variable in one line
 * and leaves the map empty; config_build never crashes or leaks whatever the values. */
#include <stdint.h>

#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    env_map m = {0};
    char err[512];
    err[0] = '\0';
    int rc = dotenv_parse((const char *)data, size, &m, err, sizeof err);
    if (rc == 0) {
        config_t c;
        if (config_build(&c, &m, NULL, err, sizeof err) == 0)
            config_free(&c);
        else
            fuzz_check_line(err, sizeof err);
        env_map empty = {0};
        if (config_build(&c, &empty, &m, err, sizeof err) == 0)
            config_free(&c);
    } else {
        if (m.n != 0 || !err[0])
            abort();
        fuzz_check_line(err, sizeof err);
    }
    env_map_free(&m);

    size_t line = 0;
    while (line < size && line < 64 && data[line] != '\n')
        line++;
    char *d = fuzz_cstr(data, line);
    uint64_t ms = 0;
    parse_duration_ms(d, &ms);
    free(d);
    return 0;
}
