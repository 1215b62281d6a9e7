/* plex.h: the calls to one Plex target (a cfg_target of kind TARGET_PLEX: PLEX_URL or an item
 * of MEDIA_SERVERS): read its library list, ask for a partial scan of one folder, empty a
 * section's trash. Which target and library a folder goes to is folders.c's; target.c
 * dispatches to these calls by kind. */
#ifndef PSS_PLEX_H
#define PSS_PLEX_H

#include <stdint.h>

#include "config.h"
#include "http_client.h"
#include "libraries.h"

typedef enum {
    PLEX_RES_OK = 0,
    PLEX_RES_TRANSIENT,    /* connection/timeout/5xx/429: retry */
    PLEX_RES_AUTH,         /* 401/403: the target's token is refused (its token_var) */
    PLEX_RES_NOT_FOUND,    /* 404 (unknown section) */
    PLEX_RES_BAD,          /* other 4xx / unreadable answer */
} plex_status;

typedef struct plex_result {
    plex_status status;
    long http_status;      /* 0 when Plex did not answer (connection, DNS, timeout, too big) */
    const char *message;   /* one line, valid during the callback; never NULL; holds no URL or
                              token; an escaped, bounded excerpt of Plex's body when it refused */
} plex_result;

typedef void (*plex_scan_cb)(void *ud, const plex_result *r);
typedef void (*plex_libraries_cb)(void *ud, const plex_result *r, media_libraries *libs /* see plex_target_list_sections */);

/* Every call goes to t's url (a trailing '/' is fine) with its token and timeout_ms, and carries
 * the config's PLEXAPI_HEADER_IDENTIFIER (`identifier`, NULL or "" for the default
 * "plex-servarr-sync"). t is not kept. section_id is a section's id as media_libraries holds it
 * ("2"): decimal digits only, else -EINVAL. No redirects are followed.
 * Each returns 0 or a negative code (-EINVAL: t NULL or not TARGET_PLEX, no url, bad arguments, a
 * header value with CR/LF); cb then never runs. Cancel with httpc_cancel(*out): nothing leaks,
 * cb does not run. */

/* GET {url}/library/sections/{section_id}/refresh?path={url_encode(plex_path)} with
 * X-Plex-Token (none when the token is empty), X-Plex-Client-Identifier, X-Plex-Product,
 * X-Plex-Version and Accept: application/json. */
int plex_target_scan(httpc_t *h, const cfg_target *t, const char *identifier, const char *section_id,
                     const char *plex_path, plex_scan_cb cb, void *ud, httpc_req **out);
/* GET {url}/library/sections with the same headers, parsed with plex_media_libraries_parse (ids,
 * and each section's `refreshing`). On OK, libs is non-NULL and fetched_at is set; to keep it,
 * move it out in the callback (`mine = *libs; memset(libs, 0, sizeof *libs)`): plex.c calls
 * media_libraries_free(libs) after the callback returns, which frees whatever was not taken. On
 * any other status libs is NULL; an unreadable list is PLEX_RES_BAD (http_status is then Plex's
 * 2xx). Answers are capped at 4 MiB. */
int plex_target_list_sections(httpc_t *h, const cfg_target *t, const char *identifier, plex_libraries_cb cb,
                              void *ud, httpc_req **out);
/* PUT {url}/library/sections/{section_id}/emptyTrash with the same headers and an empty body
 * (Content-Length: 0). Plex answers 200 without a body. This only makes the call: whether the
 * trash may be emptied (DESIGN.md, "Plex, empty trash") is the caller's decision. */
int plex_empty_trash(httpc_t *h, const cfg_target *t, const char *identifier, const char *section_id,
                     plex_scan_cb cb, void *ud, httpc_req **out);

/* Classify a Plex answer by status (exposed for tests): transport error, 408, 429, 5xx ->
 * TRANSIENT; 2xx OK; 401/403 AUTH; 404 NOT_FOUND; anything else (3xx, other 4xx) BAD. A TLS
 * failure (HTTPC_ERR_TLS: https:// to a plain port, certificate refused) is BAD too: repeating
 * it cannot help. */
plex_status plex_classify(const httpc_result *res);

#endif
