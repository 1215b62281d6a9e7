/* rclone.h: make rclone's VFS see a folder: vfs/forget then vfs/refresh over the RC API, with the
 * walk-up to the nearest listed parent when the refresh says "file does not exist". */
#ifndef PSS_RCLONE_H
#define PSS_RCLONE_H

#include <stdint.h>

#include "config.h"
#include "http_client.h"

typedef enum {
    RCLONE_RES_OK = 0,     /* refreshed */
    RCLONE_RES_ABSENT,     /* still missing after walking up (a delete): go on to Plex */
    RCLONE_RES_TRANSIENT,  /* connection/timeout/5xx/429/odd values: retry later */
    RCLONE_RES_CONFIG,     /* 401/403/404 or an fs error: park, `variable` says what to fix */
} rclone_status;

typedef struct rclone_result {
    rclone_status status;
    const char *message;   /* one line, valid during the callback */
    const char *variable;  /* for RCLONE_RES_CONFIG: "RCLONE_RC_USER", "RCLONE_FS", "RCLONE_RC_URL" ... */
} rclone_result;

typedef void (*rclone_cb)(void *ud, const rclone_result *r);
typedef struct rclone_op rclone_op;

/* Start the step for vfs_dir (relative to the mount root, "" = the root itself; the root is
 * refreshed without a "dir" key and never forgotten whole). Body JSON with exactly
 * "Content-Type: application/json"; "recursive": "true" (a string) only when vfs_dir has at
 * least two components; "fs" when m->fs is set; Basic auth when m->user is set; timeout_ms per
 * call. cb runs once (later), unless cancelled. */
int rclone_refresh_folder(httpc_t *h, const cfg_mount *m, const char *vfs_dir, uint64_t timeout_ms,
                          rclone_cb cb, void *ud, rclone_op **out);
void rclone_cancel(rclone_op *op);

/* Classify one RC answer (exposed for tests and fuzzing). For vfs/refresh, dir_key is the dir
 * whose result[dir_key] must be "OK" ("" for the root). Returns the status; *missing is set
 * when the value is "file does not exist". */
rclone_status rclone_classify(const httpc_result *res, const char *dir_key, int *missing,
                              char *msg, size_t msglen, const char **variable);

#endif
