/* hostpaths.c: each configured place stat'ed at its host path (and, when missing, at its rclone
 * path), one after the other, with the warning that names the fix. */
#include "hostpaths.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "paths.h"
#include "util.h"

typedef struct place {
    char *arr, *what, *host, *rclone; /* rclone: NULL when it is the host path or no mount holds it */
    const char *via;                  /* static */
} place;

struct hostpaths_op {
    fscheck_t *fs;
    place *v;
    size_t n, i;
    bool min_age, anchors;
    bool host_exists;  /* the current place's host stat */
    char *host_why;
    bool on_rclone;    /* stating the current place's rclone path */
    fscheck_op *stat;
    hostpaths_each_cb each;
    hostpaths_done_cb done;
    void *ud;
    bool logging;      /* hostpaths_warn: log each missing place */
};

bool hostpaths_wanted(const config_t *c)
{
    return c->minimum_age_ms > 0 || c->n_anchors > 0;
}

static void op_free(hostpaths_op *op)
{
    for (size_t i = 0; i < op->n; i++) {
        free(op->v[i].arr);
        free(op->v[i].what);
        free(op->v[i].host);
        free(op->v[i].rclone);
    }
    free(op->v);
    free(op->host_why);
    free(op);
}

static void step(hostpaths_op *op);

static void tell(hostpaths_op *op, const char *rclone)
{
    const place *p = &op->v[op->i];
    hostpath_seen s = {.arr = p->arr, .what = p->what, .host = p->host, .via = p->via,
                       .exists = op->host_exists, .why = op->host_why, .rclone = rclone,
                       .min_age = op->min_age, .anchors = op->anchors};
    if (op->logging && !s.exists) {
        char *msg = hostpaths_advice(&s);
        log_warn("%s", log_esc(msg));
        free(msg);
    }
    if (op->each)
        op->each(op->ud, &s);
    free(op->host_why);
    op->host_why = NULL;
    op->i++;
    step(op);
}

static void on_stat(void *ud, bool exists, const char *why)
{
    hostpaths_op *op = ud;
    op->stat = NULL;
    const place *p = &op->v[op->i];
    if (op->on_rclone) {
        op->on_rclone = false;
        tell(op, exists ? p->rclone : NULL);
        return;
    }
    op->host_exists = exists;
    op->host_why = exists ? NULL : xstrdup(why ? why : "ENOENT");
    if (!exists && p->rclone) {
        op->on_rclone = true;
        if (fscheck_exists(op->fs, p->rclone, on_stat, op, &op->stat) == 0)
            return;
        op->on_rclone = false;
    }
    tell(op, NULL);
}

/* The next place, or the end (from a callback). A stat that cannot start counts as a place not
 * seen. */
static void step(hostpaths_op *op)
{
    if (op->i < op->n) {
        if (fscheck_exists(op->fs, op->v[op->i].host, on_stat, op, &op->stat) == 0)
            return;
        op->host_exists = false;
        op->host_why = xstrdup("cannot be checked");
        tell(op, NULL);
        return;
    }
    hostpaths_done_cb done = op->done;
    void *ud = op->ud;
    op_free(op);
    if (done)
        done(ud);
}

static void place_init(place *p, const config_t *c, const map_root *r)
{
    folder_paths fp;
    p->arr = xstrdup(r->arr);
    p->what = xstrdup(r->what);
    p->via = mapping_host_via(c, r->arr);
    if (paths_resolve(c, r->arr, &fp, NULL) < 0) {
        p->host = xstrdup(r->arr);
        return;
    }
    p->host = xstrdup(fp.host);
    /* The rclone path is worth suggesting only where rclone mounts it, and only if it differs. */
    if (fp.mount && c->use_rclone && strcmp(fp.rclone, fp.host) != 0)
        p->rclone = xstrdup(fp.rclone);
    folder_paths_free(&fp);
}

int hostpaths_probe(fscheck_t *fs, const config_t *c, const map_roots *roots, hostpaths_each_cb each,
                    hostpaths_done_cb done, void *ud, hostpaths_op **out)
{
    if (out)
        *out = NULL;
    if (!fs || !c || !roots)
        return -EINVAL;
    hostpaths_op *op = xcalloc(1, sizeof *op);
    op->fs = fs;
    op->each = each;
    op->done = done;
    op->ud = ud;
    op->min_age = c->minimum_age_ms > 0;
    op->anchors = c->n_anchors > 0;
    op->v = xcalloc(roots->n ? roots->n : 1, sizeof *op->v);
    for (size_t i = 0; i < roots->n; i++)
        place_init(&op->v[op->n++], c, &roots->v[i]);
    /* The first stat starts here, so a failure is an error with no callback; the later ones
     * start from callbacks, where a stat that cannot start counts as a place not seen. */
    int rc = op->n ? fscheck_exists(fs, op->v[0].host, on_stat, op, &op->stat) : -ENOENT;
    if (rc < 0) {
        op_free(op);
        return rc;
    }
    if (out)
        *out = op;
    return 0;
}

void hostpaths_cancel(hostpaths_op *op)
{
    if (!op)
        return;
    if (op->stat)
        fscheck_cancel(op->stat);
    op_free(op);
}

char *hostpaths_advice(const hostpath_seen *s)
{
    const char *cost = s->min_age && s->anchors ? "MINIMUM_AGE counts from the event time there and ANCHOR_FILES "
                                                  "guard nothing there"
                       : s->min_age           ? "MINIMUM_AGE counts from the event time there, not from the files'"
                                                  " age"
                                              : "ANCHOR_FILES guard nothing there";
    bool absent = !s->why || strcmp(s->why, "ENOENT") == 0 || strcmp(s->why, "ENOTDIR") == 0;
    char *seen = absent ? xstrdup("which does not exist here") : xasprintf("which this host cannot see (%s)", s->why);
    char *fix = s->rclone ? xasprintf("set LOCAL_PATH_REPLACEMENTS to map '%s' to '%s' (the rclone mount path, which "
                                      "exists here)", s->arr, s->rclone)
                          : xasprintf("set LOCAL_PATH_REPLACEMENTS to map '%s' to where this host sees those files "
                                      "(the rclone or mergerfs mount path)", s->arr);
    char *out = xasprintf("'%s' (%s) is '%s' on this host (%s), %s: %s; %s", s->arr, s->what, s->host, s->via, seen,
                          cost, fix);
    free(seen);
    free(fix);
    return out;
}

int hostpaths_warn(fscheck_t *fs, const config_t *c, hostpaths_done_cb done, void *ud, hostpaths_op **out)
{
    if (out)
        *out = NULL;
    if (!hostpaths_wanted(c))
        return 0;
    map_roots roots;
    map_roots_from_config(c, &roots);
    hostpaths_op *op = NULL;
    int rc = roots.n ? hostpaths_probe(fs, c, &roots, NULL, done, ud, &op) : 0;
    map_roots_free(&roots);
    if (op)
        op->logging = true; /* before any stat answers: they answer on a later loop turn */
    if (out)
        *out = op;
    return rc;
}
