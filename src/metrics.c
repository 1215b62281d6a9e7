/* metrics.c: the daemon's counters and how /metrics prints them: requests by app and event type
 * (a fixed list of event types, so no label value ever comes from a request), manual triggers by
 * source, scans by outcome, rclone and Plex calls, sync durations as a histogram, group commits;
 * and the process itself (CPU, memory, file descriptors, start time, version) as every Prometheus
 * client library prints it. Gauges that need the queue or the upstreams' state are printed by
 * their owner between the two parts. */
#include "metrics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

/* ---- webhook event types (a fixed list: no label value comes from a request) ---- */

static const struct {
    const char *type;  /* eventType as the *arr apps send it (compared case-insensitively) */
    const char *label; /* label value */
} event_kind_table[METRICS_EVENT_KINDS] = {
    {"Download", "download"},
    {"Rename", "rename"},
    {"Retag", "retag"},
    {"EpisodeFileDelete", "episode_file_delete"},
    {"MovieFileDelete", "movie_file_delete"},
    {"BookFileDelete", "book_file_delete"},
    {"TrackFileDelete", "track_file_delete"},
    {"SeriesDelete", "series_delete"},
    {"MovieDelete", "movie_delete"},
    {"AlbumDelete", "album_delete"},
    {"ArtistDelete", "artist_delete"},
    {"BookDelete", "book_delete"},
    {"AuthorDelete", "author_delete"},
    {"Test", "test"},
    {"Grab", "grab"},
    {"Health", "health"},
    {"HealthRestored", "health_restored"},
    {"ApplicationUpdate", "application_update"},
    {"SeriesAdd", "series_add"},
    {"MovieAdded", "movie_added"},
    {"ArtistAdd", "artist_add"},
    {"AuthorAdded", "author_added"},
    {"ManualInteractionRequired", "manual_interaction_required"},
    {"AlbumDownload", "album_download"},
    {NULL, "other"}, /* must stay last */
};

int metrics_event_kind(const char *event_type)
{
    for (int i = 0; event_type && i < METRICS_EVENT_KINDS - 1; i++)
        if (strcasecmp(event_type, event_kind_table[i].type) == 0)
            return i;
    return METRICS_EVENT_KINDS - 1;
}

const char *metrics_event_kind_name(int kind)
{
    return kind >= 0 && kind < METRICS_EVENT_KINDS ? event_kind_table[kind].label : "other";
}

/* Upper bounds of the duration histogram's buckets, in milliseconds, and as /metrics prints them
 * (seconds); the last bucket is +Inf. */
static const uint64_t bound_ms[METRICS_DURATION_BUCKETS - 1] = {10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000};
static const char *const bound_le[METRICS_DURATION_BUCKETS - 1] = {"0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
                                                                   "1", "2.5", "5", "10", "30"};

void metrics_count_sync(metrics *c, uint64_t us)
{
    size_t i = 0;
    while (i < ARRAY_SIZE(bound_ms) && us > bound_ms[i] * 1000u)
        i++;
    c->sync_buckets[i]++;
    c->sync_us_sum += us;
    c->sync_count++;
}

void metrics_render_requests(const metrics *c, buf_t *b)
{
    /* Every app has its "download" series from the start; other events appear once seen. */
    buf_appends(b, "# HELP pss_webhooks_total Webhook requests accepted, by app and event type.\n"
                    "# TYPE pss_webhooks_total counter\n");
    for (int i = 0; ARR_APP_HAS_PAYLOAD(i); i++)
        for (int k = 0; k < METRICS_EVENT_KINDS; k++)
            if (k == 0 || c->webhook_events[i][k])
                buf_printf(b, "pss_webhooks_total{app=\"%s\",event=\"%s\"} %llu\n", arr_app_name((arr_app)i),
                           metrics_event_kind_name(k), (unsigned long long)c->webhook_events[i][k]);
    /* /triggers/manual by caller: the source names are the enum's, a fixed list */
    buf_appends(b, "# HELP pss_triggers_total Manual triggers accepted at /triggers/manual, by source "
                    "(autoscan: ?dir=, manual-trigger: ?path=).\n# TYPE pss_triggers_total counter\n");
    for (int i = APP_AUTOSCAN; i < APP_COUNT; i++)
        buf_printf(b, "pss_triggers_total{source=\"%s\"} %llu\n", arr_app_name((arr_app)i),
                   (unsigned long long)c->webhooks[i]);
    buf_printf(b, "# HELP pss_manual_requests_total Manual scans queued (page, API and form).\n"
                   "# TYPE pss_manual_requests_total counter\npss_manual_requests_total %llu\n",
               (unsigned long long)c->manual_requests);
    buf_printf(b, "# HELP pss_webhook_errors_total Webhook requests refused (4xx).\n"
                   "# TYPE pss_webhook_errors_total counter\npss_webhook_errors_total %llu\n",
               (unsigned long long)c->webhook_errors);
    buf_printf(b, "# HELP pss_scans_total Finished sync attempts, by outcome.\n# TYPE pss_scans_total counter\n"
                   "pss_scans_total{outcome=\"ok\"} %llu\npss_scans_total{outcome=\"failed\"} %llu\n"
                   "pss_scans_total{outcome=\"parked\"} %llu\npss_scans_total{outcome=\"skipped\"} %llu\n",
               (unsigned long long)c->scans_ok, (unsigned long long)c->scans_failed,
               (unsigned long long)c->scans_parked, (unsigned long long)c->scans_skipped);
}

void metrics_render_work(const metrics *c, buf_t *b)
{
    buf_printf(b, "# HELP pss_rclone_calls_total rclone steps, by outcome.\n# TYPE pss_rclone_calls_total counter\n"
                   "pss_rclone_calls_total{outcome=\"ok\"} %llu\npss_rclone_calls_total{outcome=\"failed\"} %llu\n",
               (unsigned long long)c->rclone_calls_ok, (unsigned long long)c->rclone_calls_failed);
    buf_printf(b, "# HELP pss_plex_calls_total Plex scan calls, by outcome.\n# TYPE pss_plex_calls_total counter\n"
                   "pss_plex_calls_total{outcome=\"ok\"} %llu\npss_plex_calls_total{outcome=\"failed\"} %llu\n",
               (unsigned long long)c->plex_calls_ok, (unsigned long long)c->plex_calls_failed);
    buf_appends(b, "# HELP pss_sync_duration_seconds Duration of sync attempts.\n"
                    "# TYPE pss_sync_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (size_t i = 0; i < ARRAY_SIZE(bound_le); i++) {
        cum += c->sync_buckets[i];
        buf_printf(b, "pss_sync_duration_seconds_bucket{le=\"%s\"} %llu\n", bound_le[i], (unsigned long long)cum);
    }
    cum += c->sync_buckets[ARRAY_SIZE(bound_le)];
    buf_printf(b, "pss_sync_duration_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    buf_printf(b, "pss_sync_duration_seconds_sum %.6f\npss_sync_duration_seconds_count %llu\n",
               (double)c->sync_us_sum / 1e6, (unsigned long long)c->sync_count);
    buf_printf(b, "# HELP pss_commits_total Group commits of the state database.\n# TYPE pss_commits_total counter\n"
                   "pss_commits_total{outcome=\"ok\"} %llu\npss_commits_total{outcome=\"failed\"} %llu\n",
               (unsigned long long)(c->commits - c->commit_failures), (unsigned long long)c->commit_failures);
}

/* ---- the process (the conventions of Prometheus' client libraries) ---- */

int metrics_parse_proc_stat(const char *text, metrics_proc_stat *out)
{
    /* "pid (comm) state ppid ...": the name may hold ") ", so the fields start after the last ')' */
    const char *p = strrchr(text, ')');
    if (!p || p[1] != ' ')
        return -EINVAL;
    p += 2;
    /* fields 3 (state) to 24 (rss), as proc(5) numbers them: we want 14, 15, 22, 23 and 24 */
    unsigned long long v[22] = {0};
    for (int f = 3; f <= 24; f++) {
        while (*p == ' ')
            p++;
        if (!*p)
            return -EINVAL;
        if (f == 3) { /* the state, a letter */
            p++;
            continue;
        }
        char *end;
        errno = 0;
        long long x = strtoll(p, &end, 10);
        if (end == p || errno || (*end && *end != ' ' && *end != '\n'))
            return -EINVAL;
        v[f - 3] = x < 0 ? 0 : (unsigned long long)x; /* rss can read -1 in odd cases */
        p = end;
    }
    out->utime_ticks = v[14 - 3];
    out->stime_ticks = v[15 - 3];
    out->start_ticks = v[22 - 3];
    out->vsize_bytes = v[23 - 3];
    out->rss_pages = v[24 - 3];
    return 0;
}

int metrics_parse_boot_time(const char *text, uint64_t *out)
{
    for (const char *line = text; line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, "btime ", 6) != 0)
            continue;
        char *end;
        errno = 0;
        unsigned long long x = strtoull(line + 6, &end, 10);
        if (end == line + 6 || errno || (*end && *end != '\n'))
            return -EINVAL;
        *out = x;
        return 0;
    }
    return -EINVAL;
}

/* A whole small file into buf (NUL-terminated): its length, or -errno. */
static ssize_t read_small_file(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t len = 0;
    while (len + 1 < size) {
        ssize_t n = read(fd, buf + len, size - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    return (ssize_t)len;
}

/* The boot time from /proc/stat, read line by line: the interrupt counts before it can make the
 * file long on a machine with many CPUs. 0, or -errno / -EINVAL. */
static int read_boot_time(uint64_t *out)
{
    FILE *f = fopen("/proc/stat", "re");
    if (!f)
        return -errno;
    char *line = NULL;
    size_t cap = 0;
    int rc = -EINVAL;
    while (rc < 0 && getline(&line, &cap, f) > 0)
        if (strncmp(line, "btime ", 6) == 0)
            rc = metrics_parse_boot_time(line, out);
    free(line);
    fclose(f);
    return rc;
}

/* Seconds since the epoch when the process started, read once: it does not change. 0 unknown. */
static double process_start_time(const metrics_proc_stat *st, long hz)
{
    static double start;
    uint64_t btime;
    if (start <= 0 && read_boot_time(&btime) == 0)
        start = (double)btime + (double)st->start_ticks / (double)hz;
    return start;
}

/* Open file descriptors: /proc/self/fd less the one this count holds. -1 unknown. */
static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n > 0 ? n - 1 : 0;
}

/* One sample of a family without labels; decimals: 0 for counts and bytes. */
static void render_one(buf_t *b, const char *name, const char *type, const char *help, int decimals, double v)
{
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %.*f\n", name, help, name, type, name, decimals, v);
}

void metrics_render_process(buf_t *b)
{
    char text[1024];
    metrics_proc_stat st;
    long hz = sysconf(_SC_CLK_TCK);
    bool have_stat = read_small_file("/proc/self/stat", text, sizeof text) > 0 &&
                     metrics_parse_proc_stat(text, &st) == 0 && hz > 0;
    if (have_stat)
        render_one(b, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.",
                   2, (double)(st.utime_ticks + st.stime_ticks) / (double)hz);
    long fds = open_fds();
    if (fds >= 0)
        render_one(b, "process_open_fds", "gauge", "Number of open file descriptors.", 0, (double)fds);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        render_one(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.", 0,
                   rl.rlim_cur == RLIM_INFINITY ? 1.8446744073709552e19 : (double)rl.rlim_cur);
    if (have_stat) {
        render_one(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", 0,
                   (double)st.vsize_bytes);
        render_one(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", 0,
                   (double)st.rss_pages * (double)sysconf(_SC_PAGESIZE));
        double start = process_start_time(&st, hz);
        if (start > 0)
            render_one(b, "process_start_time_seconds", "gauge",
                       "Start time of the process since unix epoch in seconds.", 2, start);
    }
    /* The version is the project's (CMake): digits and dots, safe as a label value. */
    buf_appends(b, "# HELP pss_build_info The version of plex-servarr-sync that is running (always 1).\n"
                    "# TYPE pss_build_info gauge\npss_build_info{version=\"" PSS_VERSION "\"} 1\n");
}
