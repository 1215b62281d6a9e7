/* static.c: the UI's files from web/: GET and HEAD only, names confined to the web directory
 * (no "..", no symlink escaping it; /static/ names stay inside web/static), open then fstat, errno
 * mapped to 404/403/500. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "static.h"
#include "http_server.h"
#include "log.h"
#include "util.h"

#define STATIC_MAX_FILE (4u << 20)

/* Where the UI files are: $PSS_WEB_DIR; else the install prefix of the running binary
 * (<prefix>/bin/.. -> <prefix>/share/plex-servarr-sync/web, so a relocated or staged install
 * finds its own copy); else the prefix configured at build time; else the source tree (a binary
 * run from its build directory). The configured prefix wins over the source tree only for an
 * installed binary (under /usr/), so a build-tree binary serves the checkout's files and edits
 * show up at once. */
static char *find_web_dir(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    char *beside = NULL;
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash && slash > exe) {
            *slash = '\0';
            beside = xasprintf("%s/../share/plex-servarr-sync/web", exe);
            *slash = '/';
        }
    }
    const char *candidates[] = {getenv("PSS_WEB_DIR"), beside, PSS_WEB_DIR_INSTALLED, PSS_WEB_DIR_SOURCE};
    char *found = NULL;
    for (size_t i = 0; i < ARRAY_SIZE(candidates) && !found; i++) {
        if (!candidates[i] || !*candidates[i])
            continue;
        char *path = xasprintf("%s/index.html", candidates[i]);
        bool ok = access(path, R_OK) == 0;
        free(path);
        if (ok && i == 2 && n > 0 && strncmp(exe, "/usr/", 5) != 0 &&
            access(PSS_WEB_DIR_SOURCE "/index.html", R_OK) == 0)
            continue;
        char real[PATH_MAX];
        if (ok && realpath(candidates[i], real))
            found = xstrdup(real);
    }
    free(beside);
    return found;
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

/* The web directory found at start, NULL when there is none. */
static char *web_dir;

void static_init(void)
{
    free(web_dir);
    web_dir = find_web_dir();
    if (web_dir)
        log_debug("web files from %s", log_esc(web_dir));
    else
        log_warn("the web files (index.html) are not installed beside the binary nor in %s: the web page "
                 "answers 404 (set PSS_WEB_DIR)", PSS_WEB_DIR_INSTALLED);
}

void static_free(void)
{
    free(web_dir);
    web_dir = NULL;
}

/* Serve web_dir/name when its canonical path lies inside web_dir/jail ("" = web_dir itself). */
static void serve_name(http_request *r, const char *name, const char *jail)
{
    if (!web_dir) {
        http_respond_json_error(r, 404, "the web files are not installed");
        return;
    }
    char *path = xasprintf("%s/%s", web_dir, name);
    char real[PATH_MAX];
    /* Canonicalize, then require the result to stay inside web_dir (defeats ".." and symlinks). */
    if (!realpath(path, real)) {
        int e = errno;
        free(path);
        http_respond_json_error(r, e == EACCES ? 403 : 404, e == EACCES ? "forbidden" : "not found");
        return;
    }
    free(path);
    char *jail_path = *jail ? xasprintf("%s/%s", web_dir, jail) : xstrdup(web_dir);
    char root[PATH_MAX];
    bool inside = realpath(jail_path, root) != NULL;
    free(jail_path);
    size_t wl = inside ? strlen(root) : 0;
    inside = inside && strncmp(real, root, wl) == 0 && real[wl] == '/';
    if (!inside) {
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

void static_serve(http_request *r, const char *name)
{
    serve_name(r, name, "");
}

void static_serve_path(http_request *r, const char *url_path)
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
    /* /static/... names files under web/static only: a symlink there may point elsewhere inside
     * web/static, never to the page itself or out of the directory. */
    serve_name(r, full, "static");
    free(full);
}
