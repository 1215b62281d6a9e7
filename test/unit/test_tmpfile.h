/* test_tmpfile.h: a file with the given bytes in $TMPDIR (or /tmp), for the tests that read
 * files (the .env, secrets). Include after cmocka.h. The caller unlinks and frees the path. */
#ifndef PSS_TEST_TMPFILE_H
#define PSS_TEST_TMPFILE_H

#include <ftw.h>
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

/* A fresh directory $TMPDIR/<name>.<random> (mkdtemp fills in the random part) into out. */
static inline void make_temp_dir(char *out, size_t n, const char *name)
{
    const char *dir = getenv("TMPDIR");
    snprintf(out, n, "%s/%s.XXXXXX", dir && *dir ? dir : "/tmp", name);
    assert_non_null(mkdtemp(out));
}

static inline int remove_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

/* Remove dir and everything below it. */
static inline void remove_tree(const char *dir)
{
    nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
