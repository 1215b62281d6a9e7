/* static.h: the web page's files (static.c): found once at start, served with GET and HEAD only,
 * confined to the web directory. */
#ifndef PSS_STATIC_H
#define PSS_STATIC_H

#include "http_message.h"

/* Find the web directory ($PSS_WEB_DIR, beside the binary's prefix, the configured prefix, the
 * source tree) and log where it is, or warn that there is none (the page then answers 404). */
void static_init(void);
void static_free(void);
/* Serve a file of the web directory; name is a route-chosen file name, never client input. */
void static_serve(http_request *r, const char *name);
/* Serve /static/<file> from client input: canonicalized, confined to web/static. */
void static_serve_path(http_request *r, const char *url_path);

#endif
