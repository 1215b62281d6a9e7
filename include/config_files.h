/* config_files.h: the files a configuration names, read or checked at every build (so a reload
 * sees a rotated secret or a replaced CA file): the secrets of X_FILE variables and token_file
 * keys, and the CA files of https servers. Every reason names the variable and the path, never a
 * file's content. */
#ifndef PSS_CONFIG_FILES_H
#define PSS_CONFIG_FILES_H

#include <stddef.h>

/* Read the secret in `path` (named by `var`, e.g. PLEX_TOKEN_FILE): at most 4096 bytes, one
 * trailing newline (\n or \r\n) dropped, as editors and `echo` leave one. *out is a new string;
 * or -EINVAL with err naming var and the path (never the content). */
int cfg_secret_file_read(const char *var, const char *path, char **out, char *err, size_t errlen);

/* A CA file (PLEX_CA_FILE, an item's ca_file, named by `var`): a regular file this user can read
 * that holds a PEM certificate (in its first MiB). 0, or -EINVAL with why naming var and the path
 * and the fix. */
int cfg_ca_file_check(const char *var, const char *path, char *why, size_t whylen);

#endif
