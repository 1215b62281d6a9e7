/* store_files.c: the store's files on disk, apart from SQLite: the state directory made and
 * checked, whether a path still names the file that was opened, and a database with its -wal and
 * -shm moved aside. Below store.c (store_internal.h). */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store_internal.h"
#include "util.h"

/* The database and its -wal/-shm, when they exist, must be writable too: a folder chowned
 * without -R, or a run under another uid, leaves them to their first owner, and SQLite would
 * then only say "unable to open". */
static int state_files_writable(const char *dir, char *err, size_t errlen)
{
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    size_t n = strlen(dir);
    for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++) {
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s%s%s%s", dir, dir[n - 1] == '/' ? "" : "/", STORE_DB_NAME, suffixes[i]);
        if (access(p, R_OK | W_OK) != 0 && errno != ENOENT) {
            int e = errno;
            errbuf_set(err, errlen, "%s is not writable: %s", p, strerror(e));
            return -e;
        }
    }
    return 0;
}

/* mkdir -p with mode 0750, then make sure the result is a directory we can write in. */
int store_dir_ready(const char *dir, char *err, size_t errlen)
{
    char p[PATH_MAX];
    size_t n = strlen(dir);
    if (n >= sizeof p - sizeof STORE_DB_NAME - STORE_SUFFIX_ROOM) {
        errbuf_set(err, errlen, "state directory %s: path too long", dir);
        return -ENAMETOOLONG;
    }
    memcpy(p, dir, n + 1);
    for (char *c = p + 1;; c++) {
        if (*c != '/' && *c != '\0')
            continue;
        char save = *c;
        *c = '\0';
        if (mkdir(p, 0750) != 0 && errno != EEXIST) {
            int e = errno;
            errbuf_set(err, errlen, "cannot create state directory %s: %s", dir, strerror(e));
            return -e;
        }
        *c = save;
        if (save == '\0')
            break;
    }
    struct stat st;
    if (stat(dir, &st) != 0) {
        int e = errno;
        errbuf_set(err, errlen, "cannot use state directory %s: %s", dir, strerror(e));
        return -e;
    }
    if (!S_ISDIR(st.st_mode)) {
        errbuf_set(err, errlen, "cannot use state directory %s: %s", dir, strerror(ENOTDIR));
        return -ENOTDIR;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        int e = errno;
        errbuf_set(err, errlen, "state directory %s is not writable: %s", dir, strerror(e));
        return -e;
    }
    return state_files_writable(dir, err, errlen);
}

store_file_id store_path_id(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return (store_file_id){.present = false};
    return (store_file_id){.dev = st.st_dev, .ino = st.st_ino, .present = true};
}

bool store_same_file(store_file_id a, store_file_id b)
{
    return a.present == b.present && (!a.present || (a.dev == b.dev && a.ino == b.ino));
}

static int rename_if_present(const char *from, const char *to, char *err, size_t errlen)
{
    if (rename(from, to) == 0 || errno == ENOENT)
        return 0;
    int e = errno;
    errbuf_set(err, errlen, "cannot move %s aside to %s: %s", from, to, strerror(e));
    return -e;
}

/* Rename the database to "<db>.<tag>-<unix time>" (dst). The -wal and -shm go first: a fresh
 * database must never meet the old one's WAL. They keep SQLite's naming ("<moved>-wal"), so
 * opening the moved file with sqlite3 sees its WAL. A file that is not there is skipped. */
int store_move_aside(const char *path, const char *tag, char *dst, size_t dstlen, char *err, size_t errlen)
{
    char from[PATH_MAX], to[PATH_MAX];
    long long now = (long long)time(NULL);
    struct stat st;
    snprintf(dst, dstlen, "%s.%s-%lld", path, tag, now);
    for (int n = 1; lstat(dst, &st) == 0 && n < 1000; n++)
        snprintf(dst, dstlen, "%s.%s-%lld.%d", path, tag, now, n);
    static const char *const sidecars[] = {"-wal", "-shm"};
    for (size_t i = 0; i < ARRAY_SIZE(sidecars); i++) {
        snprintf(from, sizeof from, "%s%s", path, sidecars[i]);
        snprintf(to, sizeof to, "%s%s", dst, sidecars[i]);
        int ret = rename_if_present(from, to, err, errlen);
        if (ret < 0)
            return ret;
    }
    return rename_if_present(path, dst, err, errlen);
}
