/* config_json.h: the JSON-valued configuration variables (the path replacement maps,
 * SECTION_MAPPING, ANCHOR_FILES, RCLONE_MOUNTS): a value's text checked against size and depth
 * limits, parsed, and turned into the normalized, sorted tables config_t holds. Reads no
 * environment and knows no variable by name: config.c's option table says which variable
 * takes which parser, and names the variable in the message. */
#ifndef PSS_CONFIG_JSON_H
#define PSS_CONFIG_JSON_H

#include <stddef.h>

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

/* One rule for every URL variable (PLEX_URL, RCLONE_RC_URL, a mount's url): http:// or https://,
 * a host, no blanks or control bytes. Drops u's trailing '/'s in place. NULL when u is fine, else
 * the reason. */
const char *cfg_url_check(char *u);

#endif
