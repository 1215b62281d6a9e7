/* router.h: the HTTP surface (router.c): the routes as a table (path or prefix, methods,
 * authentication, cross-site rule, body cap, handler), and the handlers of the webhooks and the
 * manual trigger, which stage their folders for the owner's group commit. Above the owner: main
 * hands these two to app_start (ud = the app). */
#ifndef PSS_ROUTER_H
#define PSS_ROUTER_H

#include <stddef.h>

#include "app.h"

void router_handle(void *ud, http_request *r);
size_t router_body_limit(void *ud, const http_request *r);
/* POST /api/scans (the manual trigger as JSON), once authenticated and checked same-site. */
void api_scans(app_t *a, http_request *r);

#endif
