/* config_files.c: the files a configuration names: secrets read, CA files checked (see
 * config_files.h). */
#include "config_files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define SECRET_FILE_MAX 4096      /* largest X_FILE secret (a token or a password) */
#define CA_SCAN_MAX (1024 * 1024) /* a CA file's first bytes searched for a PEM certificate */

static int secret_file_fail(const char *var, const char *path, int e, char *err, size_t errlen)
{
    errbuf_set(err, errlen, "%s: cannot read '%s': %s", var, log_esc(path), strerror(e));
    return -EINVAL;
}

int cfg_secret_file_read(const char *var, const char *path, char **out, char *err, size_t errlen)
{
    char buf[SECRET_FILE_MAX + 1];
    size_t len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return secret_file_fail(var, path, errno, err, errlen);
    while (len < sizeof buf) {
        ssize_t n = read(fd, buf + len, sizeof buf - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            return secret_file_fail(var, path, e, err, errlen);
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (len > SECRET_FILE_MAX) {
        errbuf_set(err, errlen, "%s: '%s' is larger than %d bytes", var, log_esc(path), SECRET_FILE_MAX);
        return -EINVAL;
    }
    if (len && buf[len - 1] == '\n')
        len--;
    if (len && buf[len - 1] == '\r')
        len--;
    if (memchr(buf, '\0', len)) {
        errbuf_set(err, errlen, "%s: '%s' holds a NUL byte", var, log_esc(path));
        return -EINVAL;
    }
    *out = xstrndup(buf, len);
    return 0;
}

/* Checked when the configuration is read, so that a wrong path stops the start (or the reload)
 * rather than failing every request. */
int cfg_ca_file_check(const char *var, const char *path, char *why, size_t whylen)
{
    static const char pem[] = "-----BEGIN CERTIFICATE-----";
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return secret_file_fail(var, path, errno, why, whylen);
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        errbuf_set(why, whylen, "%s: '%s' is not a regular file (give the CA certificate's PEM file)", var,
                   log_esc(path));
        return -EINVAL;
    }
    buf_t b;
    buf_init(&b, CA_SCAN_MAX);
    char chunk[8192];
    ssize_t n;
    while ((n = read(fd, chunk, sizeof chunk)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0 && buf_append(&b, chunk, (size_t)n) != 0)
            break; /* past CA_SCAN_MAX: what was read is searched */
    int e = n < 0 ? errno : 0;
    close(fd);
    bool found = b.data && memmem(b.data, b.len, pem, sizeof pem - 1);
    buf_free(&b);
    if (e)
        return secret_file_fail(var, path, e, why, whylen);
    if (!found) {
        errbuf_set(why, whylen, "%s: '%s' holds no PEM certificate (%s): give the CA certificate in PEM form (a DER "
                   "file converts with: openssl x509 -inform der -in FILE -out FILE.pem)", var, log_esc(path), pem);
        return -EINVAL;
    }
    return 0;
}

