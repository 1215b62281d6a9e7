/* probe.c: the --health probe: one GET of the running daemon's /health with libcurl's easy
 * interface (a one-shot command, not the daemon's loop). */
#include "probe.h"

#include <errno.h>
#include <string.h>

#include <curl/curl.h>

#include "log.h"
#include "util.h"

static bool is_wildcard(const char *addr)
{
    return !addr || !*addr || strcmp(addr, "0.0.0.0") == 0 || strcmp(addr, "::") == 0 ||
           strcmp(addr, "::0") == 0 || strcmp(addr, "0:0:0:0:0:0:0:0") == 0;
}

int probe_health_url(const config_t *cfg, int i, char *url, size_t urllen)
{
    const char *addr = cfg->bind_address;
    if (is_wildcard(addr)) {
        static const char *const v4[] = {"127.0.0.1"}, *const v6[] = {"127.0.0.1", "::1"};
        bool dual = addr && strchr(addr, ':');
        if (i < 0 || i >= (dual ? 2 : 1))
            return -ENOENT;
        addr = dual ? v6[i] : v4[i];
    } else if (i != 0) {
        return -ENOENT;
    }
    bool v6 = strchr(addr, ':') != NULL;
    /* /health is below URL_BASE like every other address */
    int n = snprintf(url, urllen, "http://%s%s%s:%d%s/health", v6 ? "[" : "", addr, v6 ? "]" : "", cfg->port,
                     cfg->url_base ? cfg->url_base : "");
    return n < 0 || (size_t)n >= urllen ? -ENAMETOOLONG : 0;
}

/* The body is not needed: the status says it all. */
static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

/* One GET; the status in *status when it was answered. */
static CURLcode probe_get(const char *url, long *status, char *errbuf)
{
    CURL *h = curl_easy_init();
    if (!h)
        return CURLE_FAILED_INIT;
    errbuf[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)PROBE_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "plex-servarr-sync-health/" PSS_VERSION);
    CURLcode rc = curl_easy_perform(h);
    *status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(h);
    return rc;
}

int probe_health(const config_t *cfg, FILE *out)
{
    char url[512], errbuf[CURL_ERROR_SIZE];
    long status = 0;
    CURLcode rc = CURLE_COULDNT_CONNECT;
    for (int i = 0; rc == CURLE_COULDNT_CONNECT; i++) {
        int r = probe_health_url(cfg, i, url, sizeof url);
        if (r == -ENOENT)
            break;
        if (r < 0) {
            fprintf(out, "unhealthy: BIND_ADDRESS is too long for a URL\n");
            return 1;
        }
        rc = probe_get(url, &status, errbuf);
    }
    if (rc != CURLE_OK) {
        fprintf(out, "unhealthy: GET %s: %s\n", url, *errbuf ? log_esc(errbuf) : curl_easy_strerror(rc));
        return 1;
    }
    fprintf(out, "%s: GET %s answered %ld\n", status == 200 ? "healthy" : "unhealthy", url, status);
    return status == 200 ? 0 : 1;
}
