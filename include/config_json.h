/* config_json.h: the JSON-valued configuration variables (the path replacement maps,
 * SECTION_MAPPING, ANCHOR_FILES, RCLONE_MOUNTS, MEDIA_SERVERS) and durations: a value's text
 * checked against size and depth limits, parsed, and turned into the normalized, sorted tables
 * config_t holds. Reads no environment and names no variable in its reasons: config.c's option
 * table says which variable takes which parser, and names the variable in the message. */
#ifndef PSS_CONFIG_JSON_H
#define PSS_CONFIG_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define CFG_VALUE_MAX 4096 /* longest plain value, and longest string inside JSON */

/* Every parser takes the variable's text: surrounding blanks and one layer of single quotes
 * ('{...}', as the script's .env wrote its maps) are ignored. Returns 0, or -EINVAL with `why`
 * saying what is wrong. On failure the output may hold the items read before the bad one: the
 * caller frees it just as after success. `name` only labels debug lines. */

/* A JSON object of prefix -> prefix; duplicate keys (ignoring case and slashes) must agree. */
int cfg_json_replacements(const char *name, const char *text, cfg_replacements *out, char *why,
                          size_t whylen);
/* A JSON object of Plex path prefix -> section id (a number or a numeric string, 1..INT_MAX). */
int cfg_json_sections(const char *name, const char *text, cfg_section_map **out, size_t *n, char *why,
                      size_t whylen);
/* A JSON list of absolute paths; duplicates dropped. */
int cfg_json_anchors(const char *text, char ***out, size_t *n, char *why, size_t whylen);
/* A JSON list of {root, url, fs, user, pass}. The items hold passwords: `why` quotes nothing
 * but a root. Free each item with cfg_mount_free, then the array. */
int cfg_json_mounts(const char *text, cfg_mount **out, size_t *n, char *why, size_t whylen);
void cfg_mount_free(cfg_mount *m); /* frees the strings, not m */

/* MEDIA_SERVERS: a JSON list of {name, type, url, token | token_file, path_replacements,
 * section_mapping (plex), timeout, empty_trash (plex), scan_path (jellyfin, emby)}, at most
 * CFG_TARGETS_MAX items. What an item does not say comes from `d`. Every reason names the item
 * ("item 2 (family): ...", or "item 2: ..." while it has no valid name) and never quotes a token:
 * the list is secret. An unknown key is an error that names the known key it resembles. On
 * failure *out holds the items read so far (the bad one partly filled): free each with
 * cfg_target_free, then the array, as after success. Names are not checked against each other
 * here (config.c checks them across every target). */
#define CFG_TARGETS_MAX 32
typedef struct cfg_target_defaults {
    const cfg_replacements *path_repl; /* PATH_REPLACEMENTS (copied into each item without its own) */
    uint64_t timeout_ms;               /* PLEX_TIMEOUT */
    bool empty_trash;                  /* PLEX_EMPTY_TRASH, for plex items */
    /* reads a token_file as the X_FILE secrets are read; `var` names it in the reason */
    int (*read_secret)(const char *var, const char *path, char **out, char *why, size_t whylen);
} cfg_target_defaults;
int cfg_json_targets(const char *text, const cfg_target_defaults *d, cfg_target **out, size_t *n, char *why,
                     size_t whylen);
void cfg_target_free(cfg_target *t); /* frees what t holds, not t; t is zeroed */
bool cfg_target_name_ok(const char *s); /* [a-z0-9_-]{1,32} */

/* NOTIFY: a JSON list of {type, url, token | token_file, events}, at most CFG_NOTIFY_MAX items.
 * Every reason names the item ("item 2 (gotify): ...", or "item 2" while its type is not valid)
 * and never quotes a URL or a token: both are secrets. An unknown key or event is an error that
 * names the known one it resembles. `read_secret` reads a token_file as MEDIA_SERVERS' does.
 * On failure *out holds the items read so far: free each with cfg_notify_free, then the array. */
int cfg_json_notify(const char *text,
                    int (*read_secret)(const char *var, const char *path, char **out, char *why, size_t whylen),
                    cfg_notify **out, size_t *n, char *why, size_t whylen);
void cfg_notify_free(cfg_notify *d); /* frees what d holds, not d */

/* Deep copies (the target owns its own tables) and the matching free. */
void cfg_replacements_copy(const cfg_replacements *from, cfg_replacements *to);
void cfg_section_map_copy(const cfg_section_map *from, size_t n, cfg_section_map **to, size_t *n_to);
void cfg_replacements_free(cfg_replacements *r); /* r itself is kept, emptied */

/* One rule for every URL variable (PLEX_URL, RCLONE_RC_URL, a mount's url): http:// or https://,
 * a host, no blanks or control bytes. Drops u's trailing '/'s in place. NULL when u is fine, else
 * the reason. */
const char *cfg_url_check(char *u);
/* URL_BASE, the path every route is served under (the *arr apps' convention): "pss", "/pss/"
 * and "/pss" all become "/pss", "" and "/" become "" (none); segments of letters, digits and
 * - . _ ~ only (no "." or ".." segment, no empty one, no scheme, host, query or escape), at most
 * CFG_URL_BASE_MAX bytes. Normalizes *u (a new string replaces it). NULL when fine, else the
 * reason. */
#define CFG_URL_BASE_MAX 200
const char *cfg_url_base_normalize(char **u);

#endif
