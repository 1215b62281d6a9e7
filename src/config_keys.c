/* config_keys.c: the env file's names that the daemon's table does not hold: known elsewhere, or
 * a warning with the known name each most resembles (see config_keys.h). */
#include "config_keys.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "util.h"

/* Names an env file holds for someone else, and what to say of one (NULL: nothing). */
typedef struct other_name {
    const char *name;
    const char *instead; /* a variable of this daemon that does what the writer meant */
} other_name;

static const other_name others[] = {
    /* The Python script's own, which this daemon does without (its page, its Sonarr/Radarr
     * look-ups, its Jellyfin switches). */
    {"SECRET_KEY", NULL},
    {"DEMO_MODE", NULL},
    {"SONARR_URL", NULL},
    {"SONARR_API_KEY", NULL},
    {"RADARR_URL", NULL},
    {"RADARR_API_KEY", NULL},
    {"ONBOARD_WIKI_URL", NULL},
    {"ONBOARD_REQUEST_URL", NULL},
    {"UI_THEME", NULL},
    {"PLEX_ENABLED", NULL},
    {"JELLYFIN_ENABLED", NULL},
    {"JELLYFIN_TIMEOUT", NULL},
    {"JELLYFIN_SECTION_MAPPING", NULL},
    {"JELLYFIN_API_KEY", "JELLYFIN_TOKEN"},
    /* systemd's (StateDirectory=, STATE_DIR's default), and the *arr images' user ids, which a
     * .env that compose also reads for its own variables often holds. */
    {"STATE_DIRECTORY", NULL},
    {"PUID", NULL},
    {"PGID", NULL},
    {"UMASK", NULL},
};

/* libcurl's: honoured from the process environment only. */
static const char *const proxies[] = {"http_proxy", "https_proxy", "no_proxy", "all_proxy",
                                      "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"};

static bool in_list(const char *key, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(key, names[i]) == 0)
            return true;
    return false;
}

static const other_name *other_find(const char *key)
{
    for (size_t i = 0; i < ARRAY_SIZE(others); i++)
        if (strcmp(key, others[i].name) == 0)
            return &others[i];
    return NULL;
}

/* "./.env line 3: " (no line when the map has none). */
static void where(char *out, size_t outlen, const char *path, size_t line)
{
    if (line)
        snprintf(out, outlen, "%s line %zu: ", log_esc(path), line);
    else
        snprintf(out, outlen, "%s: ", log_esc(path));
}

/* What to say of one key, into line; false when nothing. */
static bool key_note(const env_map *file, size_t i, const char *path, const env_map *env, const char *const *known,
                     size_t n_known, char *line, size_t linelen)
{
    const char *key = file->keys[i];
    if (in_list(key, known, n_known) || strncmp(key, "COMPOSE_", 8) == 0) /* compose's own */
        return false;
    char at[320];
    where(at, sizeof at, path, file->lines ? file->lines[i] : 0);
    const other_name *o = other_find(key);
    if (o) {
        char file_form[64];
        snprintf(file_form, sizeof file_form, "%s_FILE", o->instead ? o->instead : "");
        if (!o->instead || env_map_get(file, o->instead) || env_map_get(env, o->instead) ||
            env_map_get(file, file_form) || env_map_get(env, file_form))
            return false;
        snprintf(line, linelen, "%s%s is the Python script's name: plex-servarr-sync reads %s; rename it", at, key,
                 o->instead);
        return true;
    }
    if (in_list(key, proxies, ARRAY_SIZE(proxies))) {
        if (env_map_get(env, key))
            return false;
        snprintf(line, linelen, "%s%s is not used from an env file: libcurl reads it from the process environment "
                 "only (set it in the service's or the container's environment)", at, key);
        return true;
    }
    char shown[96] = "";
    str_append_escaped(shown, sizeof shown, key, strlen(key), 64);
    const char *near = str_nearest(key, known, n_known);
    if (near)
        snprintf(line, linelen, "%s%s is not a variable plex-servarr-sync reads (did you mean %s?%s); it is ignored",
                 at, shown, near, str_eq_ci(key, near) ? " names are case-sensitive" : "");
    else
        snprintf(line, linelen, "%s%s is not a variable plex-servarr-sync reads; it is ignored (plex-servarr-sync "
                 "--help lists them)", at, shown);
    return true;
}

void config_keys_check(const env_map *file, const char *path, const env_map *env, const char *const *known,
                       size_t n_known, void (*warn)(void *ud, const char *line), void *ud)
{
    if (!file || !warn)
        return;
    for (size_t i = 0; i < file->n; i++) {
        char line[768];
        if (key_note(file, i, path, env, known, n_known, line, sizeof line))
            warn(ud, line);
    }
}
