/* api_page.h: what the page asks beyond the queue and history views of api.c (api_page.c): the
 * senders (GET /api/sources), the first-run `setup` block of /api/stats, and a person's actions
 * on the queue (retry, cancel, scan now, retry every parked entry). */
#ifndef PSS_API_PAGE_H
#define PSS_API_PAGE_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "app.h"

/* GET /api/sources: per sender (sonarr, radarr, lidarr, readarr, then manual), the last event,
 * the last Test, the count, the last refusal and the address to send to. */
void api_sources(app_t *a, http_request *r);
/* /api/stats' `setup`: the env file the daemon reads, the number of media servers, URL_BASE,
 * how to reload here. */
cJSON *api_setup_json(const app_t *a);

/* POST /api/queue/{id}/retry: 202 {"status": "retrying"}; 404; 409 when not parked. */
void api_retry(app_t *a, http_request *r, int64_t id);
/* POST /api/queue/{id}/cancel: 200 {"cancelled": id}; 404; 409 while it is checked or synced. */
void api_cancel(app_t *a, http_request *r, int64_t id);
/* POST /api/queue/{id}/now: 200 {"id": id, "due": ISO 8601}; 404; 409 (syncing, parked,
 * unresolved), each with the reason. */
void api_run_now(app_t *a, http_request *r, int64_t id);
/* POST /api/retry-parked: 200 {"retried": n}. */
void api_retry_parked(app_t *a, http_request *r);

#endif
