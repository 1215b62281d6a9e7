/* auth.h: HTTP Basic authentication (auth.c): constant-time checks, and the 401 whose delay grows
 * per client address after failed logins. */
#ifndef PSS_AUTH_H
#define PSS_AUTH_H

#include <stdbool.h>

#include "app.h"

/* Check Basic credentials against user/pass (constant time; the password compared as given in
 * UTF-8 and as its ISO-8859-1 bytes). */
bool auth_basic_ok(const http_request *r, const char *user, const char *pass);
/* Answer 401 with a Basic challenge for realm. A request that carried credentials is a failed
 * login: its answer is delayed per client address (doubling from 0.25 s up to 5 s; X-Forwarded-For
 * believed only from TRUSTED_PROXIES), with a uv timer, so the handler returns at once. */
void auth_reject(app_t *a, http_request *r, const char *realm);

#endif
