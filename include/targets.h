/* targets.h: what the daemon knows of each media server while it runs (targets.c): its library
 * list (read at start, every SECTION_REFRESH and on a miss, at most once a minute), whether it
 * answers, whether it refused its token (then no scan goes to it, and its list is asked again
 * every minute as a probe until the token is accepted). A target is known by its name across
 * reloads: a reload that keeps a target's kind, URL and token keeps what was learnt of it. */
#ifndef PSS_TARGETS_H
#define PSS_TARGETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "http_client.h"
#include "libraries.h"
#include "list.h"
#include "target.h"

typedef struct target_rt {
    char *name;                 /* the configuration's name (stable across reloads) */
    const cfg_target *cfg;      /* in the current configuration */
    media_libraries libs;       /* libs.fetched_at == 0: never read */
    target_op *list_op;         /* a list request in flight */
    uint64_t list_attempt;      /* mono ms of the last list request, 0 = never */
    bool answered;              /* a call to it has ended since start: `reachable` means something */
    bool reachable;             /* the last call got an HTTP answer */
    bool refused;               /* the token was refused: no scans until a probe or reload accepts it */
    char *error;                /* the last problem, NULL while fine */
    uint64_t checked;           /* wall ms when the last call ended */
    uint64_t down_since;        /* wall ms of the first failed call of the current outage, 0 = up */
    uint64_t sent_ok, sent_failed, sent_parked; /* deliveries by outcome, for /metrics */
    struct list_ctx *ctx;       /* what a list answer finds its target by (owned) */
} target_rt;

typedef struct targets targets;

typedef struct targets_hooks {
    /* A library list arrived (or a target came or went with a reload): re-map the queue. */
    void (*lists_changed)(void *ud);
    /* A target that had refused its token accepts it again: resume its parked deliveries. */
    void (*accepted)(void *ud, const char *target);
} targets_hooks;

struct targets {
    target_rt *v;
    size_t n;
    httpc_t *httpc;
    const config_t *cfg;
    uv_timer_t timer;           /* every 5 s: lists due (SECTION_REFRESH), probes of refused tokens */
    const targets_hooks *hooks;
    void *ud;
    list_node settle_waiters;   /* targets_waiter.link: waiting for the list reads in flight */
    bool stopping;
};

/* Start: one target_rt per configured target, every list requested at once. */
int targets_start(targets *ts, uv_loop_t *loop, httpc_t *h, const config_t *c, const targets_hooks *hooks, void *ud);
/* After a reload into c: targets matched by name; one whose kind, URL or token changed starts
 * afresh (its list read again, a refusal forgotten); new ones are added, removed ones dropped. */
void targets_reload(targets *ts, const config_t *c);
/* Cancel everything in flight and close the timer (close_cb(ud) once it is closed). */
void targets_stop(targets *ts, void (*closed)(void *ud), void *ud);
void targets_free(targets *ts);

target_rt *targets_find(const targets *ts, const char *name);
/* A folder matched nothing where t (or every target, for NULL) has a list: read it again,
 * at most once a minute per target. */
void targets_miss(targets *ts, target_rt *t);
/* Treat name's token as refused (at start, for a target the queue holds parked deliveries to):
 * no scan goes to it until a list read (the probe) accepts the token and resumes them. */
void targets_mark_refused(targets *ts, const char *name);
/* Probe t now (the UI's retry of a parked delivery): its list is asked at once. */
void targets_probe(targets *ts, target_rt *t);
/* One who waits for the list reads in flight to end: a /health ask. */
typedef struct targets_waiter {
    list_node link;
    uint64_t since;     /* mono ms: only reads asked at or after this are waited for */
    void (*settled)(void *ud);
    void *ud;
    bool waiting;
} targets_waiter;
/* Ask the list of every target nothing was heard of (and nothing asked) for older_than_ms:
 * /health's and /api/stats' way to answer with fresh facts. With w, w->settled(w->ud) runs once
 * no list read asked at or after w->since is in flight any more (each answered, failed, or
 * cancelled by a reload or the stop; a read asked earlier, hanging, is not waited for), never
 * from inside this call: true when w waits, false when no such read was in flight. */
bool targets_probe_stale(targets *ts, uint64_t older_than_ms, targets_waiter *w);
/* w stops waiting (its caller gave up first); nothing when it is not waiting. */
void targets_cancel_settle(targets_waiter *w);

/* Each target takes at most MAX_CONCURRENT_SYNCS scan requests at once; the others wait in
 * order. A waiter's go(ud) runs when its turn comes (also when its target is removed by a
 * reload: go then finds no target). */
typedef struct target_slot {
    list_node link;
    void (*go)(void *ud);
    void *ud;
    bool waiting;
} target_slot;
/* Take one of t's request slots: true when taken now (go is not called), false when w waits. */
bool targets_acquire(targets *ts, target_rt *t, target_slot *w);
/* A request to the target named `name` ended: its slot goes to the next waiter. */
void targets_release(targets *ts, const char *name);
/* w stops waiting (its job ended). */
void targets_cancel_wait(target_slot *w);

/* What a call to t found. */
typedef enum { TARGET_SEEN_UP = 0, TARGET_SEEN_DOWN, TARGET_SEEN_REFUSED } target_seen;
void targets_seen(targets *ts, target_rt *t, target_seen what, const char *error);

/* The wall clock stepped by delta ms: the lists' ages move with it. */
void targets_shift_time(targets *ts, int64_t delta);

#endif
