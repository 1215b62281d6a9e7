/* fuzz_rclone.c: rclone RC answers -> rclone_classify(). Input: byte 0 picks the HTTP status
 * (or a transport error), byte 1 the dir key and the message buffer size, the rest is the body.
 * Checked: the message is one bounded line whatever the body holds; a configuration error
 * always names a variable; "file does not exist" is only reported for a refresh. */
#include <stdint.h>

#include "fuzz_common.h"
#include "rclone.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const long statuses[] = {200, 201, 204, 301, 302, 307, 400, 401, 403, 404,
                                    408, 429, 500, 502, 503, 599, 100, 0};
    static const char *const keys[] = {NULL, "", "tv", "tv/Show/Season 01", "Am\xc3\xa9lie"};
    if (size < 2)
        return 0;
    long status = statuses[data[0] % (sizeof statuses / sizeof *statuses)];
    const char *key = keys[data[1] % (sizeof keys / sizeof *keys)];
    size_t msglen = (data[1] & 0x80) ? 16 : 1024;
    char *body = fuzz_cstr(data + 2, size - 2); /* httpc NUL-terminates every body */
    httpc_result res = {
        .error = status ? HTTPC_OK : (httpc_error)(1 + data[1] % HTTPC_ERR_TLS),
        .status = status,
        .body = body,
        .body_len = size - 2,
        .message = status ? "ok" : body,
    };
    char *msg = malloc(msglen);
    if (!msg)
        abort();
    int missing = 0;
    const char *variable = NULL;
    rclone_status st = rclone_classify(&res, key, &missing, msg, msglen, &variable);
    fuzz_check_line(msg, msglen);
    if (st == RCLONE_RES_CONFIG && !variable)
        abort();
    if (missing && !key)
        abort();
    free(msg);
    free(body);
    return 0;
}
