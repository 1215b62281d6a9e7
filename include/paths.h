/* paths.h: the four forms of a folder (arr, Plex, host, VFS dir) and the rules that make and
 * check them. Pure functions: no I/O, no loop. */
#ifndef PSS_PATHS_H
#define PSS_PATHS_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

#define PATHS_MAX 4096 /* longest path accepted, in bytes */

/* True when `prefix` equals `path` or is a prefix of it ending at a component boundary
 * ("/tv/Show" is a prefix of "/tv/Show/S1", not of "/tv/Show 2"). Both normalized.
 * ci = compare ASCII case-insensitively. "/" is a prefix of every absolute path. */
bool paths_has_prefix(const char *path, const char *prefix, bool ci);

/* Apply the first (longest) matching replacement; returns a new normalized string, or a copy
 * of the input when none matches. *matched (may be NULL) says whether one did. */
char *paths_replace(const char *path, const cfg_replacements *r, bool *matched);

/* Validate a webhook/manual input path given in arr terms (already mapped through
 * PATH_REPLACEMENTS when it was an "X:\" drive path). Returns NULL when fine, or a static reason:
 * "path is empty", "path is not absolute", "path contains a control character",
 * "path has a '.' or '..' component", "path is too long", "path is not valid UTF-8". */
const char *paths_check(const char *p);

/* Parse a JSON object text (a replacement map such as '{"/data/tv": "/tv"}'; the value may
 * also be a number for SECTION_MAPPING) -- used by config. Implemented in config. */

/* The four forms of one folder. All strings owned by the struct. */
typedef struct folder_paths {
    char *arr;     /* normalized arr path */
    char *plex;    /* arr through PATH_REPLACEMENTS (each target's own form, through its own
                      replacements, is folders_target_path()'s) */
    char *host;    /* arr through LOCAL_PATH_REPLACEMENTS if set, else = plex */
    char *rclone;  /* arr through RCLONE_PATH_REPLACEMENTS (absolute, host-side rclone path) */
    const cfg_mount *mount; /* longest mount whose root is a component prefix of `rclone`; NULL = none */
    char *vfs_dir; /* `rclone` relative to mount->root ("" at the root itself); NULL when no mount */
} folder_paths;

/* Compute all four forms of a normalized arr path. Returns 0, or -EINVAL with *why set when a
 * mapped form is not absolute. */
int paths_resolve(const config_t *c, const char *arr, folder_paths *out, const char **why);
/* (Added) The Plex form may also be a Windows drive path ("D:/TV/Show", for Plex on Windows);
 * the host and rclone forms must start with '/'. On failure *out is left zeroed. */
void folder_paths_free(folder_paths *f);

/* The arr path of `arr_path`'s containing folder (dirname). New string. */
char *paths_dirname(const char *p);
/* Join folder + '/' + relative (relative may use '\'), normalized. New string. */
char *paths_join(const char *dir, const char *rel);
/* Number of components of a relative path ("" = 0, "tv" = 1, "tv/Show" = 2). */
int paths_depth(const char *rel);

/* True when `path` (normalized) equals `root` or lies above it, by whole component and
 * case-insensitively (the cautious direction for refusing library roots). `root` is normalized
 * first when it is not; NULL or "" is above nothing. folders.c tries it, per target, against
 * that target's library locations and its replacement and SECTION_MAPPING prefixes. */
bool paths_at_or_above(const char *path, const char *root);

/* Whether the last component of `path` ends in a media or subtitle extension (video, audio, book,
 * subtitle: ".mkv", ".flac", ".epub", ".srt", ...; ASCII case-insensitive). The manual trigger's
 * ?path= then means the file's folder. A name alone decides: nothing is looked up on disk. */
bool paths_is_media_file(const char *path);

#endif
