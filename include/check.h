/* check.h: `plex-servarr-sync --check` (-n): after the configuration has validated, try every
 * outside thing the daemon depends on and print one line per check, saying what to fix:
 *
 *   OK    plex             http://127.0.0.1:32400 is Plex Media Server 1.40.1 (machine 3f9c...)
 *   FAIL  plex-token       Plex answered HTTP 401 on /library/sections: PLEX_TOKEN is wrong ...
 *
 * Checks, in order: the env file's permissions; Plex's /identity (no token); the token on
 * /library/sections, the libraries it lists, and every PATH_REPLACEMENTS target and
 * SECTION_MAPPING prefix that falls in no library; for each rclone mount rc/noopauth (which
 * needs auth, so it proves the credentials; refused, a no-op vfs/forget tells whether this
 * rclone still runs the VFS calls without any) and vfs/list (naming the fs values to use);
 * rclone-map: every RCLONE_PATH_REPLACEMENTS target under a mount root, and every configured
 * place (mapping.h) a mount root holds present in its VFS; STATE_DIR; each anchor file;
 * host-paths: each configured place visible on this host (when MINIMUM_AGE or ANCHOR_FILES is
 * set). Each line is OK, WARN (the daemon works as configured, but look) or FAIL; a check that
 * cannot run because an earlier one failed prints SKIP. Secrets (PLEX_TOKEN, passwords) are
 * never printed.
 *
 * Runs on a private libuv loop with the daemon's own HTTP client and fs checks, so it sees
 * exactly what the daemon would. */
#ifndef PSS_CHECK_H
#define PSS_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config.h"

/* Run every check for cfg (already validated) and write the lines to out. env_file is the file
 * the configuration came from (--env-file), or NULL for ./.env when it exists. Returns 1 when a
 * check failed, 0 otherwise (warnings included). */
int check_run(const config_t *cfg, const char *env_file, FILE *out);

/* The env file in use: env_file, or "./.env" when that exists; NULL when there is none. */
const char *check_env_file_path(const char *env_file);

/* True when path exists and other users may read it (mode o+r). */
bool check_world_readable(const char *path);

/* How to make the env file at path readable by the daemon only, as this host runs it: the
 * package's group when it exists, else chmod for the file's owner (or a group). Writes buf (one
 * sentence, no trailing period) and returns it. */
const char *check_env_file_fix(const char *path, char *buf, size_t n);

#endif
