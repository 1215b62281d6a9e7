/* metrics.c: the daemon's counters and how /metrics prints them: requests by app and event type
 * (a fixed list of event types, so no label value ever comes from a request), manual triggers by
 * source, scans by outcome, rclone and Plex calls, sync durations as a histogram, group commits.
 * Gauges that need the queue or the upstreams' state are printed by their owner between the two
 * parts. */
#include "metrics.h"

#include <strings.h>

/* ---- webhook event types (a fixed list: no label value comes from a request) ---- */

static const struct {
    const char *type;  /* eventType as the *arr apps send it (compared case-insensitively) */
    const char *label; /* label value */
} event_kinds[METRICS_EVENT_KINDS] = {
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
        if (strcasecmp(event_type, event_kinds[i].type) == 0)
            return i;
    return METRICS_EVENT_KINDS - 1;
}

const char *metrics_event_kind_name(int kind)
{
    return kind >= 0 && kind < METRICS_EVENT_KINDS ? event_kinds[kind].label : "other";
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
