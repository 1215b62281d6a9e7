/* test_tmpfile.h: a file with the given bytes in $TMPDIR (or /tmp), for the tests that read
 * files (the .env, secrets). Include after cmocka.h. The caller unlinks and frees the path. */
#ifndef PSS_TEST_TMPFILE_H
#define PSS_TEST_TMPFILE_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline char *write_temp(const char *text, size_t len)
{
    const char *dir = getenv("TMPDIR");
    char *path = NULL;
    if (asprintf(&path, "%s/pss-test-XXXXXX", dir && *dir ? dir : "/tmp") < 0)
        fail_msg("asprintf");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

#endif
