/* static.c: the UI's files from web/: GET and HEAD only, names confined to the web directory
 * (no "..", no symlink escaping it), open then fstat, errno mapped to 404/403/500. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app.h"
#include "log.h"
#include "util.h"

#define STATIC_MAX_FILE (4u << 20)

char *static_find_web_dir(void)
{
    const char *env = getenv("PSS_WEB_DIR");
    const char *candidates[] = {env, PSS_WEB_DIR_INSTALLED, PSS_WEB_DIR_SOURCE};
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    for (size_t i = 0; i < ARRAY_SIZE(candidates); i++) {
        if (!candidates[i] || !*candidates[i])
            continue;
        char *path = xasprintf("%s/index.html", candidates[i]);
        bool ok = access(path, R_OK) == 0;
        free(path);
        /* The installed copy wins only for an installed binary; a build-tree binary serves the
         * checkout's files so edits show up at once. */
        if (ok && i == 1 && n > 0) {
            exe[n] = '\0';
            if (strncmp(exe, "/usr/", 5) != 0 && access(PSS_WEB_DIR_SOURCE "/index.html", R_OK) == 0)
                continue;
        }
        if (ok) {
            char real[PATH_MAX];
            if (realpath(candidates[i], real))
                return xstrdup(real);
        }
    }
    return NULL;
}

static const char *mime_of(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {{".html", "text/html; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
                 {".js", "text/javascript; charset=utf-8"}, {".svg", "image/svg+xml"},
                 {".png", "image/png"}, {".ico", "image/x-icon"}, {".json", "application/json"}};
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < ARRAY_SIZE(types); i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

static void serve_fd(http_request *r, int fd, const char *name)
{
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)STATIC_MAX_FILE) {
        http_respond_json_error(r, 404, "not found");
        return;
    }
    char *data = xmalloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t k = read(fd, data + got, (size_t)st.st_size - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    static const char headers[] = "Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n"
                                  "Content-Security-Policy: default-src 'self'; img-src 'self' data:; "
                                  "frame-ancestors 'none'\r\nReferrer-Policy: no-referrer\r\n";
    http_respond(r, 200, mime_of(name), data, got, headers);
    free(data);
}

static void serve_name(app_t *a, http_request *r, const char *name)
{
    if (!a->web_dir) {
        http_respond_json_error(r, 404, "the web files are not installed");
        return;
    }
    char *path = xasprintf("%s/%s", a->web_dir, name);
    char real[PATH_MAX];
    /* Canonicalize, then require the result to stay inside web_dir (defeats ".." and symlinks). */
    if (!realpath(path, real)) {
        int e = errno;
        free(path);
        http_respond_json_error(r, e == EACCES ? 403 : 404, e == EACCES ? "forbidden" : "not found");
        return;
    }
    free(path);
    size_t wl = strlen(a->web_dir);
    if (strncmp(real, a->web_dir, wl) != 0 || real[wl] != '/') {
        http_respond_json_error(r, 404, "not found");
        return;
    }
    int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        http_respond_json_error(r, errno == EACCES ? 403 : 404, errno == EACCES ? "forbidden" : "not found");
        return;
    }
    serve_fd(r, fd, real);
    close(fd);
}

void static_serve(app_t *a, http_request *r, const char *name)
{
    serve_name(a, r, name);
}

void static_serve_path(app_t *a, http_request *r, const char *url_path)
{
    const char *rest = url_path + strlen("/static/");
    char *name = http_url_decode(rest, strlen(rest), false);
    if (!name || !*name || strstr(name, "..") || name[0] == '/' || strchr(name, '\\')) {
        free(name);
        http_respond_json_error(r, 404, "not found");
        return;
    }
    char *full = xasprintf("static/%s", name);
    free(name);
    serve_name(a, r, full);
    free(full);
}
