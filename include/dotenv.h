/* dotenv.h: KEY=VALUE maps: a snapshot of the process environment, and a dotenv file's text
 * parsed into one. Knows nothing of which variables the daemon reads or what they mean. */
#ifndef PSS_DOTENV_H
#define PSS_DOTENV_H

#include <stddef.h>

/* A snapshot of KEY=VALUE pairs (the process environment at start, so SIGHUP can re-read the
 * file over the original environment). The map owns its keys and values. */
typedef struct env_map {
    char **keys;
    char **values;
    size_t *lines; /* a file's: the line each key was set on (1 = the first); 0 when not from a file */
    size_t n;
} env_map;

void env_map_from_environ(env_map *m);           /* copies environ */
const char *env_map_get(const env_map *m, const char *key);
void env_map_set(env_map *m, const char *key, const char *value); /* replaces; its line becomes 0 */
void env_map_set_line(env_map *m, const char *key, const char *value, size_t line); /* the same, with a line */
void env_map_free(env_map *m);

/* Parse a dotenv file's text into m: '#' comments, blank lines, optional "export ", KEY=VALUE,
 * single quotes (literal), double quotes (\n \t \" \\ escapes), unquoted values with trailing
 * " #comment" stripped and whitespace trimmed, '=' inside values kept. Returns 0, or -EINVAL with
 * err naming the line number and what is wrong. Keys already in m are replaced; each key's line
 * is kept (the last line that set it). */
int dotenv_parse(const char *text, size_t len, env_map *m, char *err, size_t errlen);
/* Read and parse a file; -errno if it cannot be read (err says why). */
int dotenv_load(const char *path, env_map *m, char *err, size_t errlen);

#endif
