/* api.h: the JSON API and the monitoring endpoints (api.c), answered from the owner's state:
 * /health, /metrics, /api/stats, /api/queue, /api/history, /api/resolve, the retry of a parked
 * entry; and the reachability probes /health and /api/stats start. */
#ifndef PSS_API_H
#define PSS_API_H

#include <stdint.h>

#include "app.h"

void api_health(app_t *a, http_request *r);
void api_metrics(app_t *a, http_request *r);
void api_stats(app_t *a, http_request *r);
void api_queue(app_t *a, http_request *r);
void api_history(app_t *a, http_request *r);
void api_resolve(app_t *a, http_request *r);
/* GET /api/notify: the destinations, redacted (type, scheme://host, events, last result). */
void api_notify(app_t *a, http_request *r);
/* POST /api/notify/test: a `test` message to every destination (202; 409 when none is set). */
void api_notify_test(app_t *a, http_request *r);

#endif
