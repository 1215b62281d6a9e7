/* mediabrowser.h: the calls to Jellyfin and Emby (both grew from MediaBrowser and share its API):
 * read the library list, and ask for a scan of one folder, by Library/Media/Updated or, with the
 * Targeted Scans plugin, Library/ScanPath first. */
#ifndef PSS_MEDIABROWSER_H
#define PSS_MEDIABROWSER_H

#include "config.h"
#include "http_client.h"
#include "libraries.h"

typedef enum {
    MB_RES_OK = 0,
    MB_RES_TRANSIENT, /* connection/timeout/5xx/408/429, or the plugin's Status "Failed": retry */
    MB_RES_AUTH,      /* 401/403: park the target until its token is fixed (token_var) */
    MB_RES_NOT_FOUND, /* 404 */
    MB_RES_BAD,       /* TLS, a redirect, other 4xx, an unreadable answer */
} mb_status;

/* What happened to the folder, as Library/Media/Updated names it. */
typedef enum { MB_UPDATE_CREATED = 0, MB_UPDATE_MODIFIED, MB_UPDATE_DELETED } mb_update_type;

typedef struct mb_result {
    mb_status status;
    long http_status;    /* 0 when the server did not answer (connection, DNS, timeout, too big) */
    const char *message; /* one line, valid during the callback; never NULL; holds no URL and no
                            token; an escaped, bounded excerpt of the body when it refused */
    const char *via;     /* the call that decided: "ScanPath", "Media/Updated" or "VirtualFolders" */
} mb_result;

typedef struct mb_op mb_op;

typedef void (*mb_scan_cb)(void *ud, const mb_result *r);
typedef void (*mb_libraries_cb)(void *ud, const mb_result *r,
                                media_libraries *libs /* owned by callee on OK; take with a move */);

/* GET {url}/Library/VirtualFolders with the target's auth header (Jellyfin: only
 * `Authorization: MediaBrowser Token="<token>"`; Emby: only `X-Emby-Token: <token>`) and
 * `Accept: application/json`; timeout t->timeout_ms; answer capped at 4 MiB; no redirects. Parsed
 * with mb_libraries_parse. On OK, libs is non-NULL with fetched_at set; to keep it, move it out in
 * the callback (`mine = *libs; memset(libs, 0, sizeof *libs)`): mediabrowser.c frees whatever is
 * left after the callback returns. On any other status libs is NULL; an unreadable list is
 * MB_RES_BAD (http_status is then the server's 2xx). It needs an administrator's key: 403 from a
 * plain key is MB_RES_AUTH.
 * Returns 0, or a negative code and cb never runs: -EINVAL for a NULL argument, a target that is
 * not Jellyfin or Emby, no url, an empty token, or a token holding '"' or a control byte (it would
 * break out of its header). t is not kept: it may be freed once this returns. Cancel with
 * httpc_cancel(*out): nothing leaks and cb does not run. */
int mb_list_libraries(httpc_t *h, const cfg_target *t, mb_libraries_cb cb, void *ud, httpc_req **out);

/* The start-up and --check probe of a Jellyfin or Emby target is the library list: it proves the
 * URL, the key and the administrator right the list needs, in one call. */
static inline int mb_probe(httpc_t *h, const cfg_target *t, mb_libraries_cb cb, void *ud, httpc_req **out)
{
    return mb_list_libraries(h, t, cb, ud, out);
}

/* Ask the server to scan `path` (the target path; its bytes are sent unchanged, JSON-escaped):
 * POST {url}/Library/Media/Updated, `Content-Type: application/json`, `Accept: application/json`,
 * the auth header as above, body {"Updates":[{"Path":"<path>","UpdateType":"Created"|"Modified"|
 * "Deleted"}]}. With t->scan_path, first POST {url}/Library/ScanPath {"Path":"<path>"}: a 404
 * without a JSON Status (no plugin), or a Status PathNotFound/ParentNotFound, falls back to
 * Media/Updated within the same operation; a Status "Failed" is MB_RES_TRANSIENT; any other
 * answer decides. cb runs once, with the final result and r->via naming the call that decided.
 * Returns 0 with *out (may be NULL) set to the operation, or a negative code (as
 * mb_list_libraries; -EINVAL also for an unknown type) and cb never runs. t is not kept. */
int mb_scan(httpc_t *h, const cfg_target *t, const char *path, mb_update_type type, mb_scan_cb cb, void *ud,
            mb_op **out);

/* Abort a scan at whichever step it is; cb will not run and nothing leaks. op is invalid once its
 * callback has started, and after httpc_close of its client (which aborts it the same way). */
void mb_cancel(mb_op *op);

/* Classify an answer by status (exposed for tests): the same rule as plex_classify. */
mb_status mb_classify(const httpc_result *res);

const char *mb_update_type_name(mb_update_type type); /* "Created", "Modified", "Deleted" */

#endif
