/* target.h: the one small interface over every kind of media server (target.c): read its library
 * list, ask it to scan one folder, and (Plex) empty a section's trash. Each kind's requests live
 * in its own file (plex.c; mediabrowser.c for Jellyfin and Emby); this file only dispatches and
 * gives every kind's answer the same shape. */
#ifndef PSS_TARGET_H
#define PSS_TARGET_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "http_client.h"
#include "libraries.h"

typedef enum {
    TARGET_RES_OK = 0,
    TARGET_RES_TRANSIENT, /* no answer, a timeout, 5xx, 408, 429: try again later */
    TARGET_RES_AUTH,      /* 401/403: the token is refused (or lacks the rights) */
    TARGET_RES_NOT_FOUND, /* 404: the library (section) is unknown */
    TARGET_RES_BAD,       /* another 4xx, a TLS failure, an unreadable answer: as configured, it
                             cannot succeed */
} target_status;

typedef struct target_result {
    target_status status;
    long http_status;     /* 0 when the server did not answer */
    const char *message;  /* one line, never NULL, no token or URL query; valid during the callback */
    const char *via;      /* which request decided ("refresh", "ScanPath", "Media/Updated", ...) */
} target_result;

/* How a folder changed, for Jellyfin's and Emby's UpdateType (Plex ignores it). */
typedef enum { TARGET_UPDATE_MODIFIED = 0, TARGET_UPDATE_CREATED, TARGET_UPDATE_DELETED } target_update;

typedef struct target_op target_op;
typedef void (*target_done_cb)(void *ud, const target_result *r);
/* libs is non-NULL on OK: move it out to keep it (the callee frees what is left afterwards). */
typedef void (*target_list_cb)(void *ud, const target_result *r, media_libraries *libs);

/* Ask t to scan `path` (the folder in t's terms) in library `library_id` (Plex needs it; the
 * others scan by path). `identifier` is PLEXAPI_HEADER_IDENTIFIER. cb runs once from a later loop
 * turn unless the op is cancelled. Returns 0, or a negative code (cb never runs). */
int target_scan(httpc_t *h, const cfg_target *t, const char *identifier, const char *library_id,
                const char *path, target_update update, target_done_cb cb, void *ud, target_op **out);
/* Read t's library list (Plex: /library/sections with each section's `refreshing`; Jellyfin and
 * Emby: /Library/VirtualFolders). Also the token probe: an accepted list proves the token. */
int target_list(httpc_t *h, const cfg_target *t, const char *identifier, target_list_cb cb, void *ud,
                target_op **out);
/* Plex only: empty one section's trash. */
int target_empty_trash(httpc_t *h, const cfg_target *t, const char *identifier, const char *library_id,
                       target_done_cb cb, void *ud, target_op **out);
/* Cancel an op in flight: cb does not run, nothing leaks. */
void target_cancel(target_op *op);

/* What a person fixes for a result: "PLEX_TOKEN", "MEDIA_SERVERS (family): url", ... */
const char *target_fix_for(const cfg_target *t, target_status s);

#endif
