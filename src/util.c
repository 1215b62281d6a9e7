/* util.c: allocation, bounded buffers, clocks, encodings shared by every module. */
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* util is below log (log.c uses it): what cannot go on is said on stderr directly, then exit(1)
 * flushes any buffered log lines. */
static void fatal(const char *what, size_t n)
{
    fprintf(stderr, "plex-servarr-sync: %s (%zu bytes)\n", what, n);
    exit(1);
}

static void oom(size_t n)
{
    fatal("out of memory", n);
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom(n * size);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *xstrdup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *d = xmalloc(n + 1);
    memcpy(d, s, n + 1);
    return d;
}

char *xstrndup(const char *s, size_t n)
{
    if (!s)
        return NULL;
    size_t len = strnlen(s, n);
    char *d = xmalloc(len + 1);
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        fatal("xasprintf: bad format", 0);
    char *s = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

void buf_init(buf_t *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void buf_free(buf_t *b)
{
    free(b->data);
    buf_init(b, b->max);
}

void buf_reset(buf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

int buf_reserve(buf_t *b, size_t extra)
{
    if (b->max && (extra > b->max || b->len > b->max - extra))
        return -ENOBUFS;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
    return 0;
}

int buf_append(buf_t *b, const void *p, size_t n)
{
    int rc = buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int buf_appends(buf_t *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_printf(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    int rc = buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

char *buf_steal(buf_t *b)
{
    char *d = b->data;
    if (!d) {
        d = xmalloc(1);
        d[0] = '\0';
    }
    buf_init(b, b->max);
    return d;
}

uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void errbuf_set(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

bool str_has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

char *str_trim_dup(const char *s)
{
    while (*s && is_space(*s))
        s++;
    size_t n = strlen(s);
    while (n && is_space(s[n - 1]))
        n--;
    return xstrndup(s, n);
}

bool str_eq_ci(const char *a, const char *b)
{
    size_t n = strlen(a);
    return n == strlen(b) && ascii_strncasecmp(a, b, n) == 0;
}

#define NEAREST_LEN_MAX 64
#define NEAREST_EDITS_MAX 2

static size_t min3(size_t a, size_t b, size_t c)
{
    size_t m = a < b ? a : b;
    return m < c ? m : c;
}

static bool same_ci(char a, char b)
{
    return ascii_strncasecmp(&a, &b, 1) == 0;
}

/* Edit distance with swaps of neighbours (optimal string alignment), case ignored. */
static size_t edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
    size_t rows[3][NEAREST_LEN_MAX + 1]; /* the rows i-2, i-1 and i, in turn */
    for (size_t j = 0; j <= lb; j++)
        rows[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t *cur = rows[i % 3], *up = rows[(i + 2) % 3], *up2 = rows[(i + 1) % 3];
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t d = min3(up[j] + 1, cur[j - 1] + 1, up[j - 1] + (same_ci(a[i - 1], b[j - 1]) ? 0 : 1));
            if (i > 1 && j > 1 && same_ci(a[i - 1], b[j - 2]) && same_ci(a[i - 2], b[j - 1]) && up2[j - 2] + 1 < d)
                d = up2[j - 2] + 1;
            cur[j] = d;
        }
    }
    return rows[la % 3][lb];
}

const char *str_nearest(const char *typo, const char *const *words, size_t n)
{
    size_t lt = typo ? strlen(typo) : 0;
    if (lt == 0 || lt > NEAREST_LEN_MAX)
        return NULL;
    const char *best = NULL;
    size_t best_d = NEAREST_EDITS_MAX + 1;
    for (size_t i = 0; i < n; i++) {
        size_t lw = strlen(words[i]);
        if (lw > NEAREST_LEN_MAX || (lw > lt ? lw - lt : lt - lw) >= best_d)
            continue;
        size_t d = edit_distance(typo, lt, words[i], lw);
        if (d < best_d) {
            best_d = d;
            best = words[i];
        }
    }
    return best;
}

int str_parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (*s < '0' || *s > '9')
        return -EINVAL;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    if (*s)
        return -EINVAL;
    *out = v;
    return 0;
}

int parse_positive(const char *s, size_t len, long long max, long long *out)
{
    if (!s || len == 0 || len > 18) /* 18 digits cannot overflow a long long */
        return -EINVAL;
    long long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1)
        return -EINVAL;
    *out = v > max ? max : v;
    return 0;
}

uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return h;
}

uint64_t hash_str(const char *s)
{
    return hash_bytes(HASH_INIT, s, strlen(s));
}

static int lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

int ascii_strncasecmp(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int ca = lower((unsigned char)a[i]), cb = lower((unsigned char)b[i]);
        if (ca != cb)
            return ca - cb;
        if (ca == 0)
            return 0;
    }
    return 0;
}

/* Whether a byte may not appear as it is in a log line. */
static bool needs_escape(unsigned char c)
{
    return c < 0x20 || c == 0x7f || c == '\\';
}

/* The escape of such a byte into tmp; returns its length. */
static size_t escape_byte(unsigned char c, char tmp[4])
{
    static const char hex[] = "0123456789abcdef";
    tmp[0] = '\\';
    switch (c) {
    case '\n': tmp[1] = 'n'; return 2;
    case '\r': tmp[1] = 'r'; return 2;
    case '\t': tmp[1] = 't'; return 2;
    case '\\': tmp[1] = '\\'; return 2;
    default:
        tmp[1] = 'x';
        tmp[2] = hex[c >> 4];
        tmp[3] = hex[c & 15];
        return 4;
    }
}

/* Append s (len bytes) to out escaped for one log line: control bytes and '\\' escaped, UTF-8
 * kept whole. Cut with "..." at max input bytes, or where out is full; never inside a UTF-8
 * sequence. Runs of plain bytes are copied at once (paths are mostly that). */
void str_append_escaped(char *out, size_t outlen, const char *s, size_t len, size_t max)
{
    size_t o0 = strnlen(out, outlen), o = o0;
    if (outlen < 4 || o0 >= outlen - 1)
        return;
    size_t room = outlen - 4; /* "..." and the NUL always fit after o <= room */
    bool cut = false;
    if (len > max) {
        len = max;
        while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
            len--;
        cut = true;
    }
    for (size_t i = 0; i < len;) {
        size_t run = i;
        while (run < len && !needs_escape((unsigned char)s[run]))
            run++;
        size_t n = run - i;
        if (n > room - o) {
            memcpy(out + o, s + i, room - o);
            o = room;
            cut = true;
            break;
        }
        memcpy(out + o, s + i, n);
        o += n;
        i = run;
        if (i == len)
            break;
        char tmp[4];
        size_t k = escape_byte((unsigned char)s[i], tmp);
        if (k > room - o) {
            cut = true;
            break;
        }
        memcpy(out + o, tmp, k);
        o += k;
        i++;
    }
    if (cut) {
        /* back to the start of a UTF-8 sequence that was not copied whole */
        size_t b = o;
        while (b > o0 && ((unsigned char)out[b - 1] & 0xC0) == 0x80)
            b--;
        if (b > o0 && (unsigned char)out[b - 1] >= 0xC0) {
            unsigned char lead = (unsigned char)out[b - 1];
            size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
            if (o - (b - 1) < need)
                o = b - 1;
        }
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

bool path_is_normal(const char *p)
{
    size_t n = strlen(p);
    return !memchr(p, '\\', n) && !strstr(p, "//") && (n < 2 || p[n - 1] != '/');
}

size_t path_normalize_in_place(char *s)
{
    /* Most paths are normal already: found with vectorized searches, left as they are. */
    if (path_is_normal(s))
        return strlen(s);
    size_t o = 0;
    for (size_t i = 0; s[i]; i++) {
        char ch = s[i] == '\\' ? '/' : s[i];
        if (ch == '/' && o > 0 && s[o - 1] == '/')
            continue;
        s[o++] = ch;
    }
    /* A trailing '/' goes, unless it is the whole path ("/"). */
    if (o > 1 && s[o - 1] == '/')
        o--;
    s[o] = '\0';
    return o;
}

char *path_normalize(const char *p)
{
    char *out = xstrdup(p ? p : "");
    path_normalize_in_place(out);
    return out;
}

char *fmt_digits(char *end, unsigned long long v)
{
    do
        *--end = (char)('0' + v % 10);
    while (v /= 10);
    return end;
}

char *url_encode(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = xmalloc(n * 3 + 1), *o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
            c == '.' || c == '_' || c == '~') {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return out;
}

bool ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    /* Compare over the longer length so the time does not reveal where a mismatch is. */
    const volatile unsigned char *x = a, *y = b;
    size_t n = alen > blen ? alen : blen;
    unsigned diff = (unsigned)(alen ^ blen);
    for (size_t i = 0; i < n; i++) {
        unsigned char cx = i < alen ? x[i] : 0;
        unsigned char cy = i < blen ? y[i] : 0;
        diff |= (unsigned)(cx ^ cy);
    }
    return diff == 0;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *base64_encode(const void *p, size_t n)
{
    const unsigned char *s = p;
    char *out = xmalloc((n + 2) / 3 * 4 + 1), *o = out;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];
        *o++ = b64[v >> 18];
        *o++ = b64[(v >> 12) & 63];
        *o++ = b64[(v >> 6) & 63];
        *o++ = b64[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0);
        *o++ = b64[v >> 18];
        *o++ = b64[(v >> 12) & 63];
        *o++ = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = '\0';
    return out;
}

static int b64val(char c)
{
    const char *p = c ? strchr(b64, c) : NULL;
    return p ? (int)(p - b64) : -1;
}

int base64_decode(const char *s, size_t slen, unsigned char **out, size_t *outlen)
{
    if (slen % 4)
        return -EINVAL;
    unsigned char *d = xmalloc(slen / 4 * 3 + 1);
    size_t o = 0;
    for (size_t i = 0; i < slen; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++) {
            char c = s[i + k];
            bool last = i + 4 == slen;
            if (c == '=' && last && k >= 2 && (k == 3 || s[i + 3] == '=')) {
                v[k] = -2;
            } else {
                v[k] = b64val(c);
                if (v[k] < 0 || (k == 3 && v[2] == -2))
                    goto bad;
            }
        }
        unsigned x = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)(v[2] < 0 ? 0 : v[2]) << 6 |
                     (unsigned)(v[3] < 0 ? 0 : v[3]);
        d[o++] = (unsigned char)(x >> 16);
        if (v[2] >= 0)
            d[o++] = (unsigned char)(x >> 8);
        if (v[3] >= 0)
            d[o++] = (unsigned char)x;
    }
    d[o] = '\0';
    *out = d;
    *outlen = o;
    return 0;
bad:
    free(d);
    return -EINVAL;
}

int random_bytes(void *p, size_t n)
{
    unsigned char *c = p;
    while (n) {
        ssize_t r = getrandom(c, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        c += r;
        n -= (size_t)r;
    }
    return 0;
}
