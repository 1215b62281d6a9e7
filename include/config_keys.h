/* config_keys.h: the env file's variable names checked against every name the daemon knows: its
 * table's (config.c gives them), and names it knows without reading them (the Python script's
 * own, the container world's, libcurl's proxy variables). An unknown name is a warning with the
 * known name it most resembles: a misspelt variable is otherwise silently left at its default. */
#ifndef PSS_CONFIG_KEYS_H
#define PSS_CONFIG_KEYS_H

#include <stddef.h>

#include "dotenv.h"

/* For each key of `file` (the env file read from `path`, with its line numbers), in the file's
 * order: nothing when it is in `known` (the names the daemon reads) or known elsewhere; else one
 * line to warn(ud, line), e.g. "./.env line 3: PLEX_TOKN is not a variable plex-servarr-sync
 * reads (did you mean PLEX_TOKEN?); it is ignored". A name known elsewhere gets a line only when
 * it cannot do what its writer meant: the Python script's JELLYFIN_API_KEY (this daemon reads
 * JELLYFIN_TOKEN), a proxy variable that is only in the file (libcurl reads the process
 * environment, `env`). Keys of the environment itself are never looked at: it holds unrelated
 * variables. */
void config_keys_check(const env_map *file, const char *path, const env_map *env, const char *const *known,
                       size_t n_known, void (*warn)(void *ud, const char *line), void *ud);

#endif
