/* router.h: the HTTP surface (router.c): the routes as a table (path or prefix, methods,
 * authentication, cross-site rule, body cap, handler), and the handlers of the webhooks and the
 * manual trigger, which stage their folders for the owner's group commit. Above the owner: main
 * hands these two to app_start (ud = the app). */
#ifndef PSS_ROUTER_H
#define PSS_ROUTER_H

#include <stddef.h>

#include "app.h"

void router_handle(void *ud, http_request *r);

/* The methods of a route, as router_match reports them (GET takes HEAD too). */
enum { ROUTER_M_GET = 1u, ROUTER_M_POST = 2u, ROUTER_M_PUT = 4u };
/* Which route answers `method` on `path`: its row (>= 0, see router_route_path), or -404 (*miss:
 * the message) or -405 (*allowed: the path's methods, ROUTER_M_*). No request is needed: the
 * table alone decides, before authentication and the cross-site rule. */
int router_match(const char *path, const char *method, unsigned *allowed, const char **miss);
/* The path or prefix of row i, NULL past the table. */
const char *router_route_path(int i);
size_t router_body_limit(void *ud, const http_request *r);
/* http_server's head check (ud = the app), while WEBHOOK_USER/WEBHOOK_PASS are set: a webhook
 * without credentials is answered 401 before its body; one with wrong credentials is handed to
 * router_handle without its body (HTTP_HEAD_WITHOUT_BODY), which refuses it as any failed login. */
int router_head_check(void *ud, const http_request *r, const char **extra_headers, const char **message);
/* POST /api/scans (the manual trigger as JSON), once authenticated and checked same-site. */
void api_scans(app_t *a, http_request *r);

#endif
