/* hostpaths.h: can this host see the files that MINIMUM_AGE and ANCHOR_FILES stat (hostpaths.c)?
 * With paths as the *arr apps in containers name them (/tv, /data/tv) and no
 * LOCAL_PATH_REPLACEMENTS, the stats find nothing: a file's age silently becomes the event's and
 * an anchor guards nothing. Each place the configuration names (mapping.h) is stat'ed at its host
 * path through fscheck, so a hung mount stalls nothing; when one is missing and rclone's form of
 * it differs, that form is stat'ed too, to suggest it for LOCAL_PATH_REPLACEMENTS.
 * The start (and each reload) logs a warning per missing place; --check prints them. */
#ifndef PSS_HOSTPATHS_H
#define PSS_HOSTPATHS_H

#include <stdbool.h>

#include "config.h"
#include "fscheck.h"
#include "mapping.h"

/* What the probe found for one place; every string is valid during the callback only. */
typedef struct hostpath_seen {
    const char *arr;    /* the *arr path */
    const char *what;   /* where the configuration names it (map_root.what) */
    const char *host;   /* its host path */
    const char *via;    /* how the host path is made (mapping_host_via) */
    bool exists;        /* the host path is there */
    const char *why;    /* when it is not: "ENOENT", "EACCES", "mount /x: stat hung for 10 s", ... */
    const char *rclone; /* when it is not: its rclone path, if that differs and is there; else NULL */
    bool min_age;       /* MINIMUM_AGE is set */
    bool anchors;       /* ANCHOR_FILES is set */
} hostpath_seen;

typedef struct hostpaths_op hostpaths_op;
typedef void (*hostpaths_each_cb)(void *ud, const hostpath_seen *s);
typedef void (*hostpaths_done_cb)(void *ud);

/* Whether the host paths matter: MINIMUM_AGE or ANCHOR_FILES is set. */
bool hostpaths_wanted(const config_t *c);

/* Stat each of roots (copied: c and roots may be freed once this returns) one after the other;
 * each(ud, seen) runs once per place, later, then done(ud), after which the op is freed.
 * Returns 0, or a negative code (-ENOENT: roots is empty; or fscheck_exists's code for the first
 * place); then no callback runs. `out` (may be NULL) receives the op, for hostpaths_cancel until
 * done runs. */
int hostpaths_probe(fscheck_t *fs, const config_t *c, const map_roots *roots, hostpaths_each_cb each,
                    hostpaths_done_cb done, void *ud, hostpaths_op **out);
/* Stop and free op; no callback runs any more. NULL is fine. Not from inside its own callbacks. */
void hostpaths_cancel(hostpaths_op *op);

/* The warning for a place this host does not see: which variable made its host path, what
 * that costs, and the fix (LOCAL_PATH_REPLACEMENTS, with the rclone path when that is there).
 * New string, one line. */
char *hostpaths_advice(const hostpath_seen *s);

/* The start's form: when hostpaths_wanted(c), probe the places of c's replacement maps and log a
 * warning (hostpaths_advice) for each one missing. done(ud) runs at the end (not when there was
 * nothing to do, or on an error: then *out is NULL). */
int hostpaths_warn(fscheck_t *fs, const config_t *c, hostpaths_done_cb done, void *ud, hostpaths_op **out);

#endif
