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
 * call. cb runs once (later), unless cancelled.
 * vfs_dir is normalized first (leading, trailing and repeated '/' dropped). The mount's strings
 * are copied, so a reload may free the config meanwhile. Returns 0 or a negative code (-EINVAL:
 * no URL; cb then never runs). Responses are capped at 1 MiB. Messages escape control bytes and
 * quote a bounded excerpt of rclone's answer; they never hold the URL or the credentials. */
int rclone_refresh_folder(httpc_t *h, const cfg_mount *m, const char *vfs_dir, uint64_t timeout_ms,
                          rclone_cb cb, void *ud, rclone_op **out);
/* Abort and free op; its callback will not run. Also the way to free an op whose call was aborted
 * by httpc_close (its callback then never runs): call rclone_cancel for every unfinished op,
 * before or after httpc_close. A no-op from inside op's own callback (op is freed after it). */
void rclone_cancel(rclone_op *op);

/* Classify one RC answer (exposed for tests and fuzzing). For vfs/refresh, dir_key is the dir
 * whose result[dir_key] must be "OK" ("" for the root). Returns the status; *missing is set
 * when the value is "file does not exist".
 * Details (ADDED): dir_key NULL classifies a vfs/forget answer (any 2xx is OK). "file does not
 * exist" returns RCLONE_RES_ABSENT with *missing = 1 (the caller decides whether to walk up).
 * When result has no dir_key entry but exactly one entry, that entry is used (one dir per call).
 * 408/429/5xx (except the fs errors)/transport -> TRANSIENT (but a TLS failure, HTTPC_ERR_TLS,
 * is CONFIG "RCLONE_RC_URL"); 401/403 -> CONFIG
 * "RCLONE_RC_USER/RCLONE_RC_PASS" (403 naming --rc-no-auth adds a hint); 404, 3xx, 400
 * "unsupported charset" and other 4xx -> CONFIG "RCLONE_RC_URL"; 5xx "no VFS found with name",
 * "more than one VFS active", "no VFS active", `unknown key "fs"` -> CONFIG "RCLONE_FS".
 * msg, missing and variable may be NULL. */
rclone_status rclone_classify(const httpc_result *res, const char *dir_key, int *missing,
                              char *msg, size_t msglen, const char **variable);

#endif
