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

/* Where the lists' parsers (MEDIA_SERVERS, NOTIFY) report, one line each naming the item: the
 * reason of every bad item, so that all are told at once, and notes (an address made right). */
typedef struct cfg_json_sink {
    void (*error)(void *ud, const char *why);
    void (*warn)(void *ud, const char *text);
    void *ud;
} cfg_json_sink;

/* MEDIA_SERVERS: a JSON list of {name, type, url, token | token_file, path_replacements,
 * section_mapping (plex), timeout, empty_trash (plex), scan_path (jellyfin, emby), ca_file}, at
 * most CFG_TARGETS_MAX items. What an item does not say comes from `d`. Every reason names the
 * item ("item 2 (family): ...", or "item 2: ..." while it has no valid name) and never quotes a
 * token: the list is secret. An unknown key is an error that names the known key it resembles.
 * A url ending in /web (a web app's address) is cut there, with a note. Each bad item goes to
 * d->sink (and the other items are read on); without a sink the first one stops the reading and
 * is in `why`. -EINVAL when the value or an item is bad (`why` is "" when only items were, all
 * told to the sink). *out holds every item, a bad one zeroed (its name NULL): free each with
 * cfg_target_free, then the array, after success or failure. Names are not checked against each other here (config.c checks them
 * across every target). */
#define CFG_TARGETS_MAX 32
typedef struct cfg_target_defaults {
    const cfg_replacements *path_repl; /* PATH_REPLACEMENTS (copied into each item without its own) */
    uint64_t timeout_ms;               /* PLEX_TIMEOUT */
    bool empty_trash;                  /* PLEX_EMPTY_TRASH, for plex items */
    /* reads a token_file as the X_FILE secrets are read; `var` names it in the reason */
    int (*read_secret)(const char *var, const char *path, char **out, char *why, size_t whylen);
    /* checks a ca_file as PLEX_CA_FILE is checked (NULL: not checked) */
    int (*check_ca_file)(const char *var, const char *path, char *why, size_t whylen);
    const cfg_json_sink *sink;         /* may be NULL */
} cfg_target_defaults;
int cfg_json_targets(const char *text, const cfg_target_defaults *d, cfg_target **out, size_t *n, char *why,
                     size_t whylen);
void cfg_target_free(cfg_target *t); /* frees what t holds, not t; t is zeroed */
bool cfg_target_name_ok(const char *s); /* [a-z0-9_-]{1,32} */

/* NOTIFY: a JSON list of {type, url, token | token_file, events}, at most CFG_NOTIFY_MAX items.
 * Every reason names the item ("item 2 (gotify): ...", or "item 2" while its type is not valid)
 * and never quotes a URL or a token: both are secrets. An unknown key or event is an error that
 * names the known one it resembles. `read_secret` reads a token_file as MEDIA_SERVERS' does.
 * Bad items go to `sink` as MEDIA_SERVERS' do (may be NULL). *out holds the good items: free
 * each with cfg_notify_free, then the array. */
int cfg_json_notify(const char *text,
                    int (*read_secret)(const char *var, const char *path, char **out, char *why, size_t whylen),
                    const cfg_json_sink *sink, cfg_notify **out, size_t *n, char *why, size_t whylen);
void cfg_notify_free(cfg_notify *d); /* frees what d holds, not d */

/* Deep copies (the target owns its own tables) and the matching free. */
void cfg_replacements_copy(const cfg_replacements *from, cfg_replacements *to);
void cfg_section_map_copy(const cfg_section_map *from, size_t n, cfg_section_map **to, size_t *n_to);
void cfg_replacements_free(cfg_replacements *r); /* r itself is kept, emptied */

/* One rule for every URL variable (PLEX_URL, RCLONE_RC_URL, a mount's url): http:// or https://,
 * a host, no blanks or control bytes. Drops u's trailing '/'s in place. NULL when u is fine, else
 * the reason. */
const char *cfg_url_check(char *u);
/* A media server's URL that is its web app's address (ends in /web, /web/ or /web/index.html,
 * with or without a #fragment or ?query, as copied from the browser): cut in place to the server's
 * base address ("http://h:32400/web/index.html#!/" -> "http://h:32400"). True when it was. */
bool cfg_url_web_strip(char *u);

/* URL_BASE, the path every route is served under (the *arr apps' convention): "pss", "/pss/"
 * and "/pss" all become "/pss", "" and "/" become "" (none); segments of letters, digits and
 * - . _ ~ only (no "." or ".." segment, no empty one, no scheme, host, query or escape), at most
 * CFG_URL_BASE_MAX bytes. Normalizes *u (a new string replaces it). NULL when fine, else the
 * reason. */
#define CFG_URL_BASE_MAX 200
const char *cfg_url_base_normalize(char **u);

#endif
