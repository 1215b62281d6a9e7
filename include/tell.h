/* tell.h: what a person hears of the daemon (tell.c). The owner reports what happened (a sync
 * job's report, a target resumed, a reload, a retry); this decides which of it becomes a
 * notification and when: held and released (an anchor), failing (a folder still not delivered
 * after 30 minutes of retries, once per round), parked and scan (a round's end), target_down and
 * target_up (unreachable for 5 minutes, looked at every 15 s, and back), test. Each event is
 * written for a person (what happened, to what, what to do) and handed to notify_out. */
#ifndef PSS_TELL_H
#define PSS_TELL_H

#include <stddef.h>
#include <uv.h>

#include "config.h"
#include "notify_out.h"
#include "sync.h"
#include "targets.h"

typedef struct tell tell_t;

/* nout, ts and env_file (may be NULL) are lent for tell's life. */
tell_t *tell_new(uv_loop_t *loop, notify_out *nout, const targets *ts, const char *env_file);
/* Stop the timer and free everything once it is closed. */
void tell_stop(tell_t *tl);

/* One event (only built when some destination listens to its kind). */
void tell_event(tell_t *tl, cfg_notify_event kind, const char *folder, const char *target, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* A folder's entry is gone without a round's end (a person cancelled it): what was remembered
 * of its failing or held round is dropped, so a later entry of the folder starts afresh. */
void tell_forget(tell_t *tl, const char *path);
/* What one sync attempt's report means for a person. */
void tell_report(tell_t *tl, const sync_report *r);
/* A test message to every destination: from an *arr Test event (source names the app; the
 * destinations' event filters apply) or from the page (source NULL: every destination). Returns
 * the number of destinations. */
size_t tell_test(tell_t *tl, const char *source);
/* One log line per destination (type, origin, events; never a URL path or token). */
void tell_log_destinations(const tell_t *tl);

#endif
