/* notify_out.h: notifications to people (DESIGN.md "Notifications"), below the owner and above
 * http_client. Per destination (NOTIFY) a bounded queue of events, batched into at most one
 * message every NOTIFY_BATCH_MS, sent through the daemon's httpc with NOTIFY_TRIES tries, then
 * dropped with one log line. Never durable, never in anyone's way: each destination has its own
 * timer and request, each request its own timeout, so a slow, failing or hanging destination
 * delays no scan and no other destination. URLs and tokens are secrets: what is logged or shown
 * names a destination by its type and its URL's scheme://host only.
 *
 * The pure parts (the queue, the batch, the message) are exported for the unit tests. */
#ifndef PSS_NOTIFY_OUT_H
#define PSS_NOTIFY_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "http_client.h"
#include "util.h"

#define NOTIFY_BATCH_MS 10000u  /* at most one message per destination this often */
#define NOTIFY_BATCH_LIST 10    /* events a message lists; the rest are counted */
#define NOTIFY_QUEUE_MAX 100    /* events a destination keeps; past it the oldest are counted */
#define NOTIFY_TRIES 3
#define NOTIFY_TIMEOUT_MS 10000u
#define NOTIFY_RETRY_MS 2000u   /* first backoff, doubled per try */
#define NOTIFY_FIELD_MAX 300    /* bytes of one field of an event kept in a message */

/* One event, as the daemon logs it. The strings are the event's own (NULL when not known). */
typedef struct nout_event {
    cfg_notify_event kind;
    char *folder;
    char *target;
    char *reason; /* what happened and what to do */
    uint64_t at;  /* wall ms */
} nout_event;

/* ---- the queue and the batch (pure) ---- */

typedef struct nout_queue {
    nout_event v[NOTIFY_QUEUE_MAX]; /* a ring */
    size_t head, n;
    unsigned summarized[NEV_COUNT]; /* pushed out by newer events: counted, not kept */
} nout_queue;

/* Copy an event in; a full queue drops its oldest event, counting it by kind. */
void nout_queue_push(nout_queue *q, cfg_notify_event kind, const char *folder, const char *target,
                     const char *reason, uint64_t at);
bool nout_queue_empty(const nout_queue *q);
size_t nout_queue_pending(const nout_queue *q); /* kept + summarized */
void nout_queue_clear(nout_queue *q);

/* One message's worth: the first NOTIFY_BATCH_LIST events listed, every other one counted. */
typedef struct nout_batch {
    nout_event v[NOTIFY_BATCH_LIST];
    size_t n;
    unsigned more[NEV_COUNT];
    size_t total;
} nout_batch;
/* Move everything q holds into b (q is left empty). */
void nout_batch_take(nout_queue *q, nout_batch *b);
void nout_batch_free(nout_batch *b);

/* ---- the message (pure) ---- */

typedef struct nout_message {
    char *url;
    char *headers[6]; /* NULL-terminated, "Name: value" */
    char *body;
    size_t body_len;
} nout_message;

/* The request that tells destination (type, url, token) of batch b, in the format DESIGN.md gives
 * for its type. Free with nout_message_free. */
void nout_message_build(cfg_notify_type type, const char *url, const char *token, const nout_batch *b,
                        nout_message *m);
void nout_message_free(nout_message *m);
/* The message's title ("plex-servarr-sync: 50 parked folders") and text, as every format uses
 * them (new strings). */
char *nout_title(const nout_batch *b);
char *nout_text(const nout_batch *b);
/* url's scheme://host[:port], without credentials, path or query: all of a URL that is shown. */
void nout_url_origin(const char *url, char *out, size_t outlen);

/* ---- on the loop ---- */

typedef struct notify_out notify_out;

/* What the page and the API show of one destination. */
typedef struct nout_view {
    cfg_notify_type type;
    const char *origin;     /* scheme://host[:port] */
    unsigned events;
    size_t pending;         /* queued, not yet in a message */
    bool sending;           /* a message is out or waits for its next try */
    bool has_result;
    bool last_ok;
    uint64_t last_at;       /* wall ms of the last result */
    const char *last_error; /* "" when ok; never a URL */
} nout_view;

enum { NOUT_SENT = 0, NOUT_FAILED, NOUT_DROPPED, NOUT_OUTCOMES };
const char *nout_outcome_name(int outcome); /* "sent", "failed" (a try), "dropped" (given up) */

/* `now` is the clock the batching reads (NULL: mono_ms); tests pass a fake one. NULL on failure. */
notify_out *notify_out_new(uv_loop_t *loop, httpc_t *h, uint64_t (*now)(void));
/* Take the configured destinations: one whose type, URL and token stay keeps its queue and its
 * last result; the others start afresh; removed ones drop what they hold. */
void notify_out_configure(notify_out *n, const cfg_notify *d, size_t count);
/* Whether any destination listens to kind (callers skip the work of an event nobody wants). */
bool notify_out_wants(const notify_out *n, cfg_notify_event kind);
/* Queue an event for every destination whose events hold its kind (`every`: for all of them, the
 * page's test). The strings are copied. */
void notify_out_event(notify_out *n, cfg_notify_event kind, const char *folder, const char *target,
                      const char *reason, bool every);
/* Look at every destination against the clock again now (tests move their fake clock). */
void notify_out_tick(notify_out *n);
size_t notify_out_count(const notify_out *n);
void notify_out_view(const notify_out *n, size_t i, nout_view *v);
/* pss_notifications_total{type,outcome} in Prometheus text. */
void notify_out_render_metrics(const notify_out *n, buf_t *b);
/* Cancel what is in flight, drop what is queued, close the timers; n is freed once they are
 * closed (run the loop). No callback runs after this. */
void notify_out_close(notify_out *n);

#endif
