/* fscheck.h: filesystem checks that must never stall the loop: newest mtime of an entry's event
 * files (minimum age) and anchor files (is this mount healthy?). All stats are libuv async fs
 * requests. At most one request per mount is in flight (a hung FUSE mount ties up one libuv
 * worker, not all four); a request that has not answered in 10 s marks that mount failed until
 * it answers. A "mount" is the longest configured anchor directory or rclone mount root that
 * is a component prefix of the path, else "/". */
#ifndef PSS_FSCHECK_H
#define PSS_FSCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct fscheck fscheck_t;
typedef struct fscheck_op fscheck_op;

fscheck_t *fscheck_new(uv_loop_t *loop, uint64_t hang_ms /* 10000 */);
/* Mount roots used to serialize requests (anchor dirs and rclone roots); replaces the list. */
void fscheck_set_mounts(fscheck_t *f, const char *const *roots, size_t n);

/* Newest mtime (wall ms) among host paths; a missing or unreadable file counts as unknown (0).
 * cb(ud, newest) runs once, later. */
typedef void (*fscheck_mtime_cb)(void *ud, uint64_t newest_mtime_ms);
int fscheck_newest_mtime(fscheck_t *f, const char *const *paths, size_t n, fscheck_mtime_cb cb,
                         void *ud, fscheck_op **out);

/* Anchors guarding host path `path`: every anchor whose directory is a component prefix of it.
 * ok = all present; otherwise reason says which anchor and why ("anchor /mnt/x/.anchor missing",
 * "... ENOTCONN", "... stat hung for 10 s"). cb runs once, later. n == 0 answers ok. */
typedef void (*fscheck_anchor_cb)(void *ud, bool ok, const char *reason);
int fscheck_anchors(fscheck_t *f, const char *const *anchors, size_t n_anchors, const char *path,
                    fscheck_anchor_cb cb, void *ud, fscheck_op **out);

/* Does a host path exist (for the UI preview)? cb(ud, exists, errno-name or NULL). */
typedef void (*fscheck_exists_cb)(void *ud, bool exists, const char *why);
int fscheck_exists(fscheck_t *f, const char *path, fscheck_exists_cb cb, void *ud, fscheck_op **out);

void fscheck_cancel(fscheck_op *op); /* its callback will not run */
/* Mounts currently marked failed (for /health): fills up to max, returns the count. */
size_t fscheck_failed_mounts(const fscheck_t *f, const char **out, size_t max);
void fscheck_close(fscheck_t *f, void (*done)(void *ud), void *ud);

/* Added with the implementation (fscheck.c):
 * - hang_ms 0 means the default, 10000; more than a day counts as a day.
 * - The starting functions return 0, -EINVAL (NULL f/cb/path), -ENAMETOOLONG (a path over 4096
 *   bytes), -E2BIG (over 100000 paths) or -ESHUTDOWN (after fscheck_close); on error the
 *   callback never runs and *out is untouched. `out` may be NULL.
 * - fscheck_cancel may be called until the callback starts (a call from inside the op's own
 *   callback is ignored); the op is freed once its callback returns.
 * - While a mount is failed, its queued and new checks answer on the next loop turn: exists
 *   gets why = "mount <root>: stat hung for N s" (otherwise an errno name such as "ENOENT"),
 *   anchors get "anchor <path>: mount <root>: stat hung for N s", a file of newest_mtime counts
 *   as unknown. `why` and `reason` are valid during the callback only.
 * - fscheck_failed_mounts returns how many mounts are failed (may exceed max); the strings stay
 *   valid until the loop runs again or fscheck is called again.
 * - fscheck_close cancels every op (no callback runs) and calls done (on a later loop turn) once
 *   its own handles are closed. It does not wait for a stat that a worker thread is running
 *   (on a hung mount that can take minutes): such a request is detached and frees itself when
 *   it returns, so uv_run keeps running until then; an owner that cannot wait may exit after
 *   done, and uv_loop_close() answers UV_EBUSY until the stat returns. */


#endif
