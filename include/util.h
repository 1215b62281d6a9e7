/* util.h: small shared helpers: allocation that aborts on OOM, bounded string buffers,
 * wall-clock time, container_of. Nothing here touches the loop. */
#ifndef PSS_UTIL_H
#define PSS_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef PSS_VERSION /* set by CMake from project(VERSION) */
#define PSS_VERSION "unknown"
#endif

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

/* Allocation: these abort the process with a log line on out-of-memory; a daemon that cannot
 * allocate a few bytes cannot keep any promise, and checking every call hides real logic. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);            /* NULL in, NULL out */
char *xstrndup(const char *s, size_t n); /* copies at most n bytes, always NUL-terminates */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Growable byte buffer with a hard maximum. Contents are always NUL-terminated. */
typedef struct buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max; /* 0 = unbounded */
} buf_t;

void buf_init(buf_t *b, size_t max);
void buf_free(buf_t *b);
void buf_reset(buf_t *b);                            /* len = 0, keeps memory */
int buf_reserve(buf_t *b, size_t extra);              /* room for extra more bytes; 0 or -ENOBUFS */
int buf_append(buf_t *b, const void *p, size_t n);    /* 0, or -ENOBUFS past max (b unchanged) */
int buf_appends(buf_t *b, const char *s);
int buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *buf_steal(buf_t *b);                            /* returns data (never NULL), re-inits b */

/* Wall-clock milliseconds since the epoch (CLOCK_REALTIME). Persisted times use this. */
uint64_t wall_ms(void);
/* Monotonic milliseconds (CLOCK_MONOTONIC), for measuring durations. */
uint64_t mono_ms(void);

/* One hash for every table (FNV-1a, 64 bits). Chainable: start from HASH_INIT, pass each
 * result on to hash more bytes. Not for hostile keys an attacker can choose freely in bulk:
 * every table that uses it bounds its chains or its size. */
#define HASH_INIT 14695981039346656037ULL
uint64_t hash_bytes(uint64_t h, const void *p, size_t n);
uint64_t hash_str(const char *s); /* hash_bytes(HASH_INIT, s, strlen(s)) */

/* Fill an error buffer (err may be NULL or errlen 0: nothing is written). */
void errbuf_set(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Small string checks every parser of configuration values uses. */
bool str_has_ctl(const char *s);                 /* a byte < 0x20 or 0x7f */
char *str_trim_dup(const char *s);               /* new string without surrounding whitespace */
bool str_eq_ci(const char *a, const char *b);    /* equal, ASCII case-insensitively */
int str_parse_u64(const char *s, uint64_t *out); /* digits only: 0, -EINVAL, or -ERANGE */

/* Case-insensitive ASCII compare of n bytes (paths are compared this way, as the script did). */
int ascii_strncasecmp(const char *a, const char *b, size_t n);

/* The word of `words` that `typo` most resembles: at most 2 edits away (a byte inserted, deleted,
 * replaced, or two neighbours swapped; ASCII case ignored), the first of the closest; NULL when
 * none is that close or a word is longer than 64 bytes. One rule for every "did you mean"
 * (MEDIA_SERVERS' keys, NOTIFY's words, the env file's variable names). */
const char *str_nearest(const char *typo, const char *const *words, size_t n);

/* Append len bytes of s to the NUL-terminated text in out (size outlen), escaped for one log
 * line: control bytes and '\\' escaped, UTF-8 kept whole, cut at max input bytes with "...". */
void str_append_escaped(char *out, size_t outlen, const char *s, size_t len, size_t max);

/* Normalize a path's spelling: '\' becomes '/', repeated '/' collapse, a trailing '/' is
 * dropped ("/" stays "/"); NULL reads as "". No validation. Returns a new string. One rule for
 * every module. */
char *path_normalize(const char *p);
/* The same, in place (normalizing never lengthens a path); returns the new length. */
size_t path_normalize_in_place(char *s);
/* Whether path_normalize would return p unchanged. */
bool path_is_normal(const char *p);

/* The decimal digits of v, written so they end just before `end`; returns where they start
 * (room for 20 digits is enough). For hot paths that would otherwise call printf. */
char *fmt_digits(char *end, unsigned long long v);

/* The positive decimal integer that is exactly the len bytes at s (no sign, no spaces), capped at
 * max: 0 with *out set, or -EINVAL (nothing else in those bytes, zero, or too many digits). One
 * parser for ids and limits in paths and queries. */
int parse_positive(const char *s, size_t len, long long max, long long *out);

/* Percent-encode every byte outside RFC 3986 unreserved (A-Z a-z 0-9 - . _ ~). */
char *url_encode(const char *s);

/* Constant-time comparison of two byte strings; the time depends only on the lengths. */
bool ct_equal(const void *a, size_t alen, const void *b, size_t blen);

/* Base64 encode/decode (standard alphabet, padding). decode returns -EINVAL on bad input. */
char *base64_encode(const void *p, size_t n);
int base64_decode(const char *s, size_t slen, unsigned char **out, size_t *outlen);

/* Fill with random bytes from getrandom(); 0 or a negative errno. */
int random_bytes(void *p, size_t n);

#endif
