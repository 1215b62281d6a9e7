/* metrics.h: the daemon's counters (metrics.c) and their /metrics text. One place for the event
 * types counted, the duration histogram's bounds and the counter families; whoever sees an event
 * counts it here, the owner prints the gauges of its own state between the two halves. */
#ifndef PSS_METRICS_H
#define PSS_METRICS_H

#include <stdint.h>

#include "util.h"
#include "webhook.h"

/* Webhook event types counted in /metrics: a fixed list (anything else is "other"), so no label
 * value ever comes from client input. */
#define METRICS_EVENT_KINDS 25
#define METRICS_DURATION_BUCKETS 12 /* 11 bounds from 10 ms to 30 s, then +Inf */

typedef struct metrics {
    uint64_t webhooks[APP_COUNT];                           /* requests accepted per app (for
                                                               APP_AUTOSCAN and after: triggers) */
    uint64_t webhook_events[APP_COUNT][METRICS_EVENT_KINDS]; /* accepted, by app and event type */
    uint64_t manual_requests;                               /* manual triggers queued (form and API) */
    uint64_t webhook_errors;                                /* 4xx answers to webhooks */
    uint64_t scans_ok, scans_failed, scans_parked, scans_skipped;
    uint64_t rclone_calls_ok, rclone_calls_failed;
    uint64_t plex_calls_ok, plex_calls_failed;
    uint64_t commits, commit_failures;
    uint64_t sync_buckets[METRICS_DURATION_BUCKETS]; /* sync durations, per bucket (not cumulative) */
    uint64_t sync_us_sum, sync_count;                 /* microseconds: a fast scan is not 0 */
} metrics;

/* Index of an eventType (case-insensitive) in the fixed list; "other" for unknown or NULL. */
int metrics_event_kind(const char *event_type);
const char *metrics_event_kind_name(int kind);
/* One finished sync attempt that took `us` microseconds. */
void metrics_count_sync(metrics *m, uint64_t us);
/* The counter families in Prometheus text: requests (webhooks by app and event, manual
 * triggers by source, manual requests, webhook errors, scans by outcome), then work (rclone and
 * Plex calls, the duration histogram, commits). */
void metrics_render_requests(const metrics *m, buf_t *b);
void metrics_render_work(const metrics *m, buf_t *b);

/* What /proc/self/stat says of the process (proc(5)), for the process_* metrics. */
typedef struct metrics_proc_stat {
    uint64_t utime_ticks, stime_ticks; /* CPU time in user and kernel mode, clock ticks */
    uint64_t start_ticks;              /* when the process started, clock ticks after boot */
    uint64_t vsize_bytes;              /* virtual memory size */
    uint64_t rss_pages;                /* resident set size */
} metrics_proc_stat;
/* Parse the text of /proc/<pid>/stat (the command's name may hold spaces and parentheses):
 * 0, or -EINVAL when the text is not of that shape. */
int metrics_parse_proc_stat(const char *text, metrics_proc_stat *out);
/* The `btime` of /proc/stat's text (the boot time, seconds since the epoch): 0, or -EINVAL. */
int metrics_parse_boot_time(const char *text, uint64_t *out);
/* The process collector every Prometheus client library has, with its names, help texts and
 * units: process_cpu_seconds_total, process_open_fds, process_max_fds,
 * process_virtual_memory_bytes, process_resident_memory_bytes, process_start_time_seconds; then
 * pss_build_info{version} 1. A value that cannot be read here (no /proc) is left out. */
void metrics_render_process(buf_t *b);

#endif
