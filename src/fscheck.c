/* fscheck.c: asynchronous stats (minimum age, anchors, exists) that never stall the loop, one
 * request per mount at a time, and a mount whose stat hangs answers at once until it returns. */
#include "fscheck.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "list.h"
#include "log.h"
#include "test_hooks.h"
#include "paths.h"
#include "util.h"

#define FSCHECK_MAX_PATHS 100000 /* files or anchors in one operation */
#define FSCHECK_DEFAULT_HANG_MS 10000
#define FSCHECK_MAX_HANG_MS (24u * 3600u * 1000u) /* keeps deadline sums far from overflow */

typedef enum { OP_MTIME, OP_ANCHORS, OP_EXISTS } op_kind;

typedef enum {
    OP_IDLE,      /* between two steps (never seen from outside this file) */
    OP_QUEUED,    /* on its mount's FIFO */
    OP_IN_FLIGHT, /* its stat occupies its mount's slot */
    OP_READY,     /* answered, waiting on f->ready for the next loop turn */
    OP_CALLING    /* its callback is running */
} op_state;

typedef struct mount mount_t;
typedef struct stat_req stat_req;

struct fscheck_op {
    list_node link; /* mount queue or f->ready */
    list_node all;  /* f->ops, until its callback starts */
    fscheck_t *f;
    op_kind kind;
    op_state state;
    char **paths; /* files, guarding anchors, or the one path; owned */
    size_t n, idx;
    stat_req *req; /* OP_IN_FLIGHT */
    union {
        fscheck_mtime_cb mtime;
        fscheck_anchor_cb anchors;
        fscheck_exists_cb exists;
    } cb;
    void *ud;
    uint64_t newest;
    bool ok;          /* anchors: all present; exists: it exists */
    const char *why;  /* exists: static errno name, or `reason` */
    char *reason;     /* owned */
};

struct mount {
    list_node link; /* f->mounts */
    char *root;
    size_t root_len;
    bool configured; /* in the last fscheck_set_mounts list (the "/" mount always is) */
    bool failed;
    uint64_t started;   /* uv_now() when the slot's request was issued */
    stat_req *inflight; /* the one request occupying the slot */
    size_t n_in_flight; /* counted at issue and at return, checked by the test hook */
    list_node queue;  /* ops waiting for the slot, FIFO */
    uint64_t delay_ms;  /* test hook */
};

/* Test hook: a uv timer that stands in for a slow stat before the real one is issued. Its own
 * allocation, so it can be closed independently of the request it delays. */
typedef struct delay_timer {
    uv_timer_t t;
    fscheck_t *f;
    stat_req *r; /* NULL once fired or abandoned */
} delay_timer;

/* One stat. It outlives a canceled op (a running threadpool stat cannot be stopped) and, after
 * fscheck_close, the fscheck itself: then f and m are NULL and it frees itself on return. */
struct stat_req {
    uv_fs_t fs;
    fscheck_t *f;
    mount_t *m;
    fscheck_op *op; /* NULL once canceled or answered with the hang */
    delay_timer *delay;
    char *path;
};

struct fscheck {
    uv_loop_t *loop;
    uint64_t hang_ms;
    list_node mounts; /* first node is the "/" mount */
    mount_t *slash;
    list_node ops;    /* every op whose callback has not started */
    list_node ready;  /* answered ops, called from `idle` on the next loop turn */
    uv_timer_t hang;    /* due at the earliest deadline of a healthy mount's request */
    uv_idle_t idle;
    size_t handles_open;
    bool closing;
    void (*done)(void *ud);
    void *done_ud;
};

static void mount_pump(mount_t *m);
static void op_advance(fscheck_op *op);
static void on_hang(uv_timer_t *t);
static void on_idle(uv_idle_t *h);

/* ---- paths ---- */

/* Length of `s` without trailing '/' ("/" keeps its one byte). */
static size_t trimmed_len(const char *s)
{
    size_t n = strlen(s);
    while (n > 1 && s[n - 1] == '/')
        n--;
    return n;
}

/* Does anchor `anchor` guard `path` (its directory is a component prefix of it)? */
static bool anchor_guards(const char *anchor, const char *path)
{
    size_t n = trimmed_len(anchor);
    while (n > 0 && anchor[n - 1] != '/')
        n--;
    if (n == 0) /* no directory: relative, guards nothing */
        return false;
    if (n > 1)
        n--; /* drop the '/' before the base name, unless it is the root */
    char *dir = xstrndup(anchor, n);
    bool guards = paths_has_prefix(path, dir, false); /* host paths: case matters */
    free(dir);
    return guards;
}

/* ---- mounts ---- */

static mount_t *mount_find(const fscheck_t *f, const char *root, size_t len)
{
    for (list_node *l = f->mounts.next; l != &f->mounts; l = l->next) {
        mount_t *m = container_of(l, mount_t, link);
        if (m->root_len == len && memcmp(m->root, root, len) == 0)
            return m;
    }
    return NULL;
}

static mount_t *mount_new(fscheck_t *f, const char *root, size_t len)
{
    mount_t *m = xcalloc(1, sizeof *m);
    m->root = xstrndup(root, len);
    m->root_len = len;
    m->configured = true;
    list_init(&m->queue);
    list_push(&f->mounts, &m->link);
    return m;
}

/* Longest configured root that is a component prefix of path, else "/". */
static mount_t *mount_for(fscheck_t *f, const char *path)
{
    mount_t *best = f->slash;
    for (list_node *l = f->mounts.next; l != &f->mounts; l = l->next) {
        mount_t *m = container_of(l, mount_t, link);
        if (m->configured && m->root_len > best->root_len && paths_has_prefix(path, m->root, false))
            best = m;
    }
    return best;
}

static void mount_free(mount_t *m)
{
    list_del(&m->link);
    free(m->root);
    free(m);
}

/* A mount dropped from the list lives on while a request or a queue still needs it. */
static void mount_retire_if_idle(mount_t *m)
{
    if (!m->configured && !m->inflight && list_empty(&m->queue))
        mount_free(m);
}

/* "1.2 s" under ten seconds, "10 s" from there. */
static void fmt_secs(char *buf, size_t n, uint64_t ms)
{
    if (ms >= 10000)
        snprintf(buf, n, "%" PRIu64 " s", ms / 1000);
    else
        snprintf(buf, n, "%" PRIu64 ".%" PRIu64 " s", ms / 1000, ms % 1000 / 100);
}

static void hang_rearm(fscheck_t *f)
{
    uint64_t next = UINT64_MAX;
    for (list_node *l = f->mounts.next; l != &f->mounts; l = l->next) {
        mount_t *m = container_of(l, mount_t, link);
        if (m->inflight && !m->failed && m->started + f->hang_ms < next)
            next = m->started + f->hang_ms;
    }
    if (next == UINT64_MAX) {
        uv_timer_stop(&f->hang);
        return;
    }
    uint64_t now = uv_now(f->loop);
    uv_timer_start(&f->hang, on_hang, next > now ? next - now : 0, 0);
}

/* ---- operations ---- */

static void op_free(fscheck_op *op)
{
    for (size_t i = 0; i < op->n; i++)
        free(op->paths[i]);
    free(op->paths);
    free(op->reason);
    free(op);
}

/* The answer is known: deliver it on a later loop turn, never inside the starting call. */
static void op_finish(fscheck_op *op)
{
    fscheck_t *f = op->f;
    op->state = OP_READY;
    list_push(&f->ready, &op->link);
    if (!f->closing)
        uv_idle_start(&f->idle, on_idle);
}

/* Fold one stat result into the op; true when that settles the answer. */
static bool op_take_result(fscheck_op *op, int result, const uv_stat_t *st)
{
    const char *p = op->paths[op->idx];
    switch (op->kind) {
    case OP_MTIME:
        if (result == 0 && st->st_mtim.tv_sec >= 0) {
            uint64_t ms = (uint64_t)st->st_mtim.tv_sec * 1000u +
                          (uint64_t)st->st_mtim.tv_nsec / 1000000u;
            if (ms > op->newest)
                op->newest = ms;
        }
        return false; /* missing or unreadable: mtime unknown */
    case OP_ANCHORS:
        if (result == 0)
            return false;
        op->ok = false;
        if (result == UV_ENOENT || result == UV_ENOTDIR)
            op->reason = xasprintf("anchor %s missing", p);
        else
            op->reason = xasprintf("anchor %s: %s", p, uv_strerror(result));
        return true;
    case OP_EXISTS:
        op->ok = result == 0;
        op->why = result == 0 ? NULL : uv_err_name(result);
        return true;
    }
    return true;
}

/* The path op->paths[op->idx] lies on failed mount m; true when that settles the answer. */
static bool op_take_hang(fscheck_op *op, const mount_t *m)
{
    char secs[32];
    fmt_secs(secs, sizeof secs, uv_now(op->f->loop) - m->started);
    switch (op->kind) {
    case OP_MTIME:
        return false; /* unknown, like a missing file */
    case OP_ANCHORS:
        op->ok = false;
        op->reason = xasprintf("anchor %s: mount %s: stat hung for %s", op->paths[op->idx],
                               m->root, secs);
        return true;
    case OP_EXISTS:
        op->ok = false;
        op->reason = xasprintf("mount %s: stat hung for %s", m->root, secs);
        op->why = op->reason;
        return true;
    }
    return true;
}

static void op_step(fscheck_op *op, bool settled)
{
    op->state = OP_IDLE;
    if (settled) {
        op_finish(op);
        return;
    }
    op->idx++;
    op_advance(op);
}

/* Take the op to its next path: queue it on that path's mount, skip past failed mounts, or
 * finish when no path is left. */
static void op_advance(fscheck_op *op)
{
    while (op->idx < op->n) {
        mount_t *m = mount_for(op->f, op->paths[op->idx]);
        if (!m->failed) {
            op->state = OP_QUEUED;
            list_push(&m->queue, &op->link);
            mount_pump(m);
            return;
        }
        if (op_take_hang(op, m)) {
            op_finish(op);
            return;
        }
        op->idx++;
    }
    op_finish(op);
}

/* Take the op off whatever list or request holds it (cancel and close). */
static void op_detach(fscheck_op *op)
{
    switch (op->state) {
    case OP_QUEUED:
    case OP_READY:
        list_del(&op->link);
        break;
    case OP_IN_FLIGHT:
        op->req->op = NULL;
        op->req = NULL;
        break;
    case OP_IDLE:
    case OP_CALLING:
        break;
    }
    list_del(&op->all);
}

static void op_call(fscheck_op *op)
{
    switch (op->kind) {
    case OP_MTIME:
        op->cb.mtime(op->ud, op->newest);
        break;
    case OP_ANCHORS:
        op->cb.anchors(op->ud, op->ok, op->ok ? NULL : op->reason);
        break;
    case OP_EXISTS:
        op->cb.exists(op->ud, op->ok, op->why);
        break;
    }
}

/* Run the callbacks of the ops answered before this turn. Ops answered by these callbacks
 * (say, a new check on a failed mount) wait for the next turn, so a caller that retries in
 * its callback cannot spin here. */
static void on_idle(uv_idle_t *h)
{
    fscheck_t *f = h->data;
    list_node batch;
    list_init(&batch);
    list_take(&batch, &f->ready);
    list_node *l;
    while ((l = list_pop(&batch))) {
        fscheck_op *op = container_of(l, fscheck_op, link);
        list_del(&op->all); /* fscheck_close from inside the callback must not free it */
        op->state = OP_CALLING;
        op_call(op);
        op_free(op);
    }
    if (list_empty(&f->ready) && !f->closing)
        uv_idle_stop(h);
}

/* ---- requests ---- */

static void req_free(stat_req *r)
{
    free(r->path);
    free(r);
}

static void on_stat(uv_fs_t *fs);

static void req_submit(stat_req *r)
{
    int e = uv_fs_stat(r->f->loop, &r->fs, r->path, on_stat);
    /* With a callback and a path, uv_fs_stat fails only when it cannot copy the path: out of
     * memory, which the daemon treats as fatal everywhere (see xmalloc). */
    if (e < 0)
        log_fatal("fscheck: stat %s: %s", log_esc(r->path), uv_strerror(e));
}

/* One of our handles finished closing; the last one, once closing, ends the fscheck. */
static void handle_closed(fscheck_t *f)
{
    if (--f->handles_open > 0 || !f->closing)
        return;
    if (f->done)
        f->done(f->done_ud);
    free(f);
}

static void on_delay_closed(uv_handle_t *h)
{
    delay_timer *d = container_of((uv_timer_t *)h, delay_timer, t);
    fscheck_t *f = d->f;
    free(d);
    handle_closed(f);
}

static void on_delay(uv_timer_t *t)
{
    delay_timer *d = container_of(t, delay_timer, t);
    stat_req *r = d->r;
    d->r = NULL;
    r->delay = NULL;
    uv_close((uv_handle_t *)t, on_delay_closed);
    req_submit(r);
}

/* Occupy m's slot with a stat for op's current path. */
static void mount_issue(mount_t *m, fscheck_op *op)
{
    fscheck_t *f = op->f;
    stat_req *r = xcalloc(1, sizeof *r);
    r->f = f;
    r->m = m;
    r->op = op;
    r->path = xstrdup(op->paths[op->idx]);
    op->req = r;
    op->state = OP_IN_FLIGHT;
    m->inflight = r;
    m->n_in_flight++;
    m->started = uv_now(f->loop);
    if (m->delay_ms) {
        delay_timer *d = xcalloc(1, sizeof *d);
        uv_timer_init(f->loop, &d->t);
        f->handles_open++;
        d->f = f;
        d->r = r;
        r->delay = d;
        uv_timer_start(&d->t, on_delay, m->delay_ms, 0);
    } else {
        req_submit(r);
    }
    hang_rearm(f);
}

static void mount_pump(mount_t *m)
{
    if (m->inflight || m->failed)
        return;
    list_node *l = list_pop(&m->queue);
    if (l)
        mount_issue(m, container_of(l, fscheck_op, link));
}

static void on_stat(uv_fs_t *fs)
{
    stat_req *r = container_of(fs, stat_req, fs);
    int result = (int)fs->result;
    uv_stat_t st = fs->statbuf;
    uv_fs_req_cleanup(fs);
    if (!r->f) { /* orphaned by fscheck_close */
        req_free(r);
        return;
    }
    fscheck_t *f = r->f;
    mount_t *m = r->m;
    fscheck_op *op = r->op;
    m->inflight = NULL;
    m->n_in_flight--;
    if (m->failed) {
        char secs[32];
        fmt_secs(secs, sizeof secs, uv_now(f->loop) - m->started);
        m->failed = false;
        log_warn("mount %s: the stat of %s returned after %s; mount is healthy again",
                 log_esc(m->root), log_esc(r->path), secs);
    }
    req_free(r);
    hang_rearm(f);
    if (op) {
        op->req = NULL;
        op_step(op, op_take_result(op, result, &st));
    }
    mount_pump(m);
    mount_retire_if_idle(m);
}

/* m's request has been in flight too long: answer everything waiting on m now, and every new
 * request there at once, until that request returns. */
static void mount_fail(fscheck_t *f, mount_t *m)
{
    char secs[32];
    fmt_secs(secs, sizeof secs, uv_now(f->loop) - m->started);
    m->failed = true;
    log_warn("mount %s: stat of %s hung for %s; mount marked failed until it returns",
             log_esc(m->root), log_esc(m->inflight->path), secs);
    fscheck_op *op = m->inflight->op;
    if (op) {
        m->inflight->op = NULL;
        op->req = NULL;
        op_step(op, op_take_hang(op, m));
    }
    list_node *l;
    while ((l = list_pop(&m->queue))) {
        op = container_of(l, fscheck_op, link);
        op_step(op, op_take_hang(op, m));
    }
}

static void on_hang(uv_timer_t *t)
{
    fscheck_t *f = t->data;
    uint64_t now = uv_now(f->loop);
    for (list_node *l = f->mounts.next; l != &f->mounts; l = l->next) {
        mount_t *m = container_of(l, mount_t, link);
        if (m->inflight && !m->failed && now >= m->started + f->hang_ms)
            mount_fail(f, m);
    }
    hang_rearm(f);
}

/* ---- public ---- */

fscheck_t *fscheck_new(uv_loop_t *loop, uint64_t hang_ms)
{
    if (!loop)
        return NULL;
    fscheck_t *f = xcalloc(1, sizeof *f);
    f->loop = loop;
    f->hang_ms = hang_ms ? hang_ms : FSCHECK_DEFAULT_HANG_MS;
    if (f->hang_ms > FSCHECK_MAX_HANG_MS)
        f->hang_ms = FSCHECK_MAX_HANG_MS;
    list_init(&f->mounts);
    list_init(&f->ops);
    list_init(&f->ready);
    f->slash = mount_new(f, "/", 1);
    uv_timer_init(loop, &f->hang);
    f->hang.data = f;
    uv_idle_init(loop, &f->idle);
    f->idle.data = f;
    f->handles_open = 2;
    return f;
}

void fscheck_set_mounts(fscheck_t *f, const char *const *roots, size_t n)
{
    if (!f || f->closing)
        return;
    for (list_node *l = f->mounts.next; l != &f->mounts; l = l->next) {
        mount_t *m = container_of(l, mount_t, link);
        m->configured = m == f->slash;
    }
    for (size_t i = 0; i < n; i++) {
        if (!roots || !roots[i] || roots[i][0] != '/') {
            log_warn("fscheck: mount root %s is not an absolute path; ignored",
                     log_esc(roots ? roots[i] : NULL));
            continue;
        }
        size_t len = trimmed_len(roots[i]);
        if (len > PATHS_MAX) {
            log_warn("fscheck: mount root %s is too long; ignored", log_esc(roots[i]));
            continue;
        }
        mount_t *m = mount_find(f, roots[i], len);
        if (m)
            m->configured = true;
        else
            mount_new(f, roots[i], len);
    }
    list_node *l = f->mounts.next;
    while (l != &f->mounts) {
        mount_t *m = container_of(l, mount_t, link);
        l = l->next;
        mount_retire_if_idle(m);
    }
}

static bool path_ok(const char *p) { return p && strlen(p) <= PATHS_MAX; }

static fscheck_op *op_new(fscheck_t *f, op_kind kind, size_t n, void *ud)
{
    fscheck_op *op = xcalloc(1, sizeof *op);
    op->f = f;
    op->kind = kind;
    op->state = OP_IDLE;
    op->paths = xcalloc(n ? n : 1, sizeof *op->paths);
    op->ok = true;
    op->ud = ud;
    list_init(&op->link);
    list_push(&f->ops, &op->all);
    return op;
}

static int op_start(fscheck_op *op, fscheck_op **out)
{
    if (out)
        *out = op;
    op_advance(op);
    return 0;
}

int fscheck_newest_mtime(fscheck_t *f, const char *const *paths, size_t n, fscheck_mtime_cb cb,
                         void *ud, fscheck_op **out)
{
    if (!f || !cb || (n && !paths))
        return -EINVAL;
    if (f->closing)
        return -ESHUTDOWN;
    if (n > FSCHECK_MAX_PATHS)
        return -E2BIG;
    for (size_t i = 0; i < n; i++)
        if (!path_ok(paths[i]))
            return paths[i] ? -ENAMETOOLONG : -EINVAL;
    fscheck_op *op = op_new(f, OP_MTIME, n, ud);
    op->cb.mtime = cb;
    for (size_t i = 0; i < n; i++)
        op->paths[op->n++] = xstrdup(paths[i]);
    return op_start(op, out);
}

int fscheck_anchors(fscheck_t *f, const char *const *anchors, size_t n_anchors, const char *path,
                    fscheck_anchor_cb cb, void *ud, fscheck_op **out)
{
    if (!f || !cb || !path || (n_anchors && !anchors))
        return -EINVAL;
    if (f->closing)
        return -ESHUTDOWN;
    if (n_anchors > FSCHECK_MAX_PATHS)
        return -E2BIG;
    if (!path_ok(path))
        return -ENAMETOOLONG;
    for (size_t i = 0; i < n_anchors; i++)
        if (!path_ok(anchors[i]))
            return anchors[i] ? -ENAMETOOLONG : -EINVAL;
    fscheck_op *op = op_new(f, OP_ANCHORS, n_anchors, ud);
    op->cb.anchors = cb;
    for (size_t i = 0; i < n_anchors; i++)
        if (anchor_guards(anchors[i], path))
            op->paths[op->n++] = xstrdup(anchors[i]);
    return op_start(op, out);
}

int fscheck_exists(fscheck_t *f, const char *path, fscheck_exists_cb cb, void *ud, fscheck_op **out)
{
    if (!f || !cb || !path)
        return -EINVAL;
    if (f->closing)
        return -ESHUTDOWN;
    if (!path_ok(path))
        return -ENAMETOOLONG;
    fscheck_op *op = op_new(f, OP_EXISTS, 1, ud);
    op->cb.exists = cb;
    op->paths[op->n++] = xstrdup(path);
    return op_start(op, out);
}

void fscheck_cancel(fscheck_op *op)
{
    if (!op || op->state == OP_CALLING) /* from its own callback: freed when that returns */
        return;
    op_detach(op);
    op_free(op);
}

size_t fscheck_failed_mounts(const fscheck_t *f, const char **out, size_t max)
{
    size_t count = 0;
    if (!f)
        return 0;
    for (list_node *l = f->mounts.next; l != &f->mounts; l = l->next) {
        const mount_t *m = container_of(l, mount_t, link);
        if (!m->failed)
            continue;
        if (out && count < max)
            out[count] = m->root;
        count++;
    }
    return count;
}

size_t fscheck_in_flight(const fscheck_t *f, const char *root)
{
    if (!f || !root)
        return 0;
    const mount_t *m = mount_find(f, root, trimmed_len(root));
    return m ? m->n_in_flight : 0;
}

void fscheck_test_set_stat_delay(fscheck_t *f, const char *root, uint64_t ms)
{
    if (!f || !root)
        return;
    mount_t *m = mount_find(f, root, trimmed_len(root));
    if (m)
        m->delay_ms = ms;
}

static void on_handle_closed(uv_handle_t *h) { handle_closed(h->data); }

/* Let go of m's request: one still waiting on the test delay never reached the threadpool and
 * goes now; a real stat cannot be stopped once a worker runs it, so it is orphaned (uv_cancel
 * only helps while it still waits for a worker) and frees itself in on_stat. */
static void mount_abandon(mount_t *m)
{
    stat_req *r = m->inflight;
    if (!r)
        return;
    m->inflight = NULL;
    if (r->delay) {
        r->delay->r = NULL;
        uv_close((uv_handle_t *)&r->delay->t, on_delay_closed);
        req_free(r);
        return;
    }
    r->f = NULL;
    r->m = NULL;
    r->op = NULL;
    uv_cancel((uv_req_t *)&r->fs);
}

void fscheck_close(fscheck_t *f, void (*done)(void *ud), void *ud)
{
    if (!f || f->closing)
        return;
    f->closing = true;
    f->done = done;
    f->done_ud = ud;
    list_node *l;
    while ((l = f->ops.next) != &f->ops) {
        fscheck_op *op = container_of(l, fscheck_op, all);
        op_detach(op);
        op_free(op);
    }
    while ((l = f->mounts.next) != &f->mounts) {
        mount_t *m = container_of(l, mount_t, link);
        mount_abandon(m);
        mount_free(m);
    }
    f->slash = NULL;
    uv_close((uv_handle_t *)&f->hang, on_handle_closed);
    uv_close((uv_handle_t *)&f->idle, on_handle_closed);
}
