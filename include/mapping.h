/* mapping.h: the configured path mappings taken as a whole (mapping.c). Before any webhook
 * arrives, the places where the configuration says media lives are known: the *arr prefix of
 * every path replacement, and every library location of a media server mapped back to its *arr
 * path. `--check` and the start try those places: does rclone's VFS have each one (a wrong
 * RCLONE_MOUNT_ROOT gives rclone dirs it does not have), does this host see each one (MINIMUM_AGE
 * and ANCHOR_FILES stat host paths). At run time the same prefixes name the warnings said once
 * per prefix. Pure: no I/O, no loop. */
#ifndef PSS_MAPPING_H
#define PSS_MAPPING_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "libraries.h"

#define MAP_ROOTS_MAX 512 /* places kept, at most (a configuration names a few dozen) */

typedef enum {
    MAP_ROOT_RCLONE,      /* a key of RCLONE_PATH_REPLACEMENTS: rclone is meant to see it */
    MAP_ROOT_REPLACEMENT, /* a key of another replacement map (PATH_REPLACEMENTS, ...) */
    MAP_ROOT_LIBRARY,     /* a media server's library location, as the *arr apps name it */
} map_root_kind;

typedef struct map_root {
    char *arr;          /* the *arr path (normalized) */
    char *what;         /* where it comes from, for messages: "RCLONE_PATH_REPLACEMENTS '/tv' ->
                           '/mnt/media/tv'", "plex library 1 'TV Shows' (/data/tv)" */
    map_root_kind kind;
} map_root;

typedef struct map_roots {
    map_root *v;
    size_t n;
} map_roots;

/* The keys of every replacement map: RCLONE_PATH_REPLACEMENTS first, then
 * LOCAL_PATH_REPLACEMENTS, PATH_REPLACEMENTS and each target's own. An *arr path already listed is
 * not listed again. *out is reset first; free it with map_roots_free. */
void map_roots_from_config(const config_t *c, map_roots *out);
/* Add each location of t's libraries, mapped back to the *arr path that t's path replacements
 * turn into it. A location no *arr path maps to (a replacement sends every path that could reach
 * it elsewhere) is left out: the mapping check already names it. */
void map_roots_add_libraries(map_roots *r, const cfg_target *t, const media_libraries *libs);
void map_roots_free(map_roots *r);

/* The *arr path that t's path replacements turn into target_path: the longest replacement whose
 * `to` is a component prefix of it, reversed; else target_path itself. NULL when that *arr path
 * does not map back to target_path exactly (new string). */
char *mapping_arr_of(const cfg_target *t, const char *target_path);

/* The prefix a run-time warning about arr_path is said once for: the `from` of the replacement
 * in r that matches arr_path, else `fallback` when given, else arr_path's first component
 * ("/media/tv/x" -> "/media"). New string. */
char *mapping_prefix(const cfg_replacements *r, const char *arr_path, const char *fallback);

/* The variable that holds the rclone mount roots: "RCLONE_MOUNT_ROOT" for one mount,
 * "RCLONE_MOUNTS" for several. */
const char *mapping_mount_var(const config_t *c);
/* That variable and the roots, for messages: "RCLONE_MOUNT_ROOT /mnt/media", "RCLONE_MOUNTS
 * /mnt/a, /mnt/b" (new string). */
char *mapping_mount_roots(const config_t *c);

/* How arr_path's host path (the one MINIMUM_AGE and ANCHOR_FILES stat) is made, for messages:
 * "LOCAL_PATH_REPLACEMENTS", "LOCAL_PATH_REPLACEMENTS has no entry for it", or "the Plex path:
 * PATH_REPLACEMENTS, as LOCAL_PATH_REPLACEMENTS is unset". Static string. */
const char *mapping_host_via(const config_t *c, const char *arr_path);

#endif
