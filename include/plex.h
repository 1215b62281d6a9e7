/* plex.h: the two Plex calls: read the library list, and ask for a partial scan of one folder. */
#ifndef PSS_PLEX_H
#define PSS_PLEX_H

#include <stdint.h>

#include "config.h"
#include "http_client.h"
#include "sections.h"

typedef enum {
    PLEX_RES_OK = 0,
    PLEX_RES_TRANSIENT,    /* connection/timeout/5xx/429: retry */
    PLEX_RES_AUTH,         /* 401/403: park, stop all Plex calls until reload (PLEX_TOKEN) */
    PLEX_RES_NOT_FOUND,    /* 404 (unknown section) */
    PLEX_RES_BAD,          /* other 4xx / unreadable answer */
} plex_status;

typedef struct plex_result {
    plex_status status;
    long http_status;
    const char *message;
} plex_result;

typedef void (*plex_scan_cb)(void *ud, const plex_result *r);
typedef void (*plex_sections_cb)(void *ud, const plex_result *r, plex_libraries *libs /* owned by callee on OK; take with a move */);

/* GET {PLEX_URL}/library/sections/{section}/refresh?path={url_encode(plex_path)} with
 * X-Plex-Token, X-Plex-Client-Identifier, X-Plex-Product, Accept: application/json. */
int plex_scan(httpc_t *h, const config_t *c, long section, const char *plex_path, plex_scan_cb cb,
              void *ud, httpc_req **out);
/* GET {PLEX_URL}/library/sections, parsed with plex_libraries_parse. */
int plex_list_sections(httpc_t *h, const config_t *c, plex_sections_cb cb, void *ud, httpc_req **out);
/* Classify a Plex answer by status (exposed for tests). */
plex_status plex_classify(const httpc_result *res);

#endif
