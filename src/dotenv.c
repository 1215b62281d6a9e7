/* dotenv.c: KEY=VALUE maps: the environment copied, and a dotenv file read and parsed with the
 * quoting rules of python-dotenv, which the script's .env files were written for. */
#include "dotenv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define DOTENV_FILE_MAX (1024 * 1024)

/* ---------------------------------------------------------------- env_map */

/* The arrays hold pow2ceil(n) slots (at least 8), so growing needs no capacity field. */
static size_t env_map_slots(size_t n)
{
    if (n == 0)
        return 0;
    size_t c = 8;
    while (c < n)
        c *= 2;
    return c;
}

static void env_map_push(env_map *m, char *key, char *value, size_t line)
{
    if (!m->keys || env_map_slots(m->n + 1) > env_map_slots(m->n)) {
        size_t slots = env_map_slots(m->n + 1);
        m->keys = xrealloc(m->keys, slots * sizeof *m->keys);
        m->values = xrealloc(m->values, slots * sizeof *m->values);
        m->lines = xrealloc(m->lines, slots * sizeof *m->lines);
    }
    m->keys[m->n] = key;
    m->values[m->n] = value;
    m->lines[m->n] = line;
    m->n++;
}

static ssize_t env_map_find(const env_map *m, const char *key)
{
    if (!m || !key)
        return -1;
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->keys[i], key) == 0)
            return (ssize_t)i;
    return -1;
}

/* Copies environ into m (m's previous contents are not freed: pass an empty map). When a name
 * appears twice, the first wins, as getenv(3) does. */
void env_map_from_environ(env_map *m)
{
    m->keys = NULL;
    m->values = NULL;
    m->lines = NULL;
    m->n = 0;
    for (char **e = environ; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq || eq == *e)
            continue;
        char *key = xstrndup(*e, (size_t)(eq - *e));
        if (env_map_find(m, key) >= 0) {
            free(key);
            continue;
        }
        env_map_push(m, key, xstrdup(eq + 1), 0);
    }
}

const char *env_map_get(const env_map *m, const char *key)
{
    ssize_t i = env_map_find(m, key);
    return i < 0 ? NULL : m->values[i];
}

/* Sets or replaces key; a NULL value removes the key. */
void env_map_set_line(env_map *m, const char *key, const char *value, size_t line)
{
    ssize_t i = env_map_find(m, key);
    if (i >= 0) {
        free(m->values[i]);
        if (value) {
            m->values[i] = xstrdup(value);
            m->lines[i] = line;
            return;
        }
        free(m->keys[i]);
        m->n--;
        m->keys[i] = m->keys[m->n];
        m->values[i] = m->values[m->n];
        m->lines[i] = m->lines[m->n];
        return;
    }
    if (value)
        env_map_push(m, xstrdup(key), xstrdup(value), line);
}

void env_map_set(env_map *m, const char *key, const char *value)
{
    env_map_set_line(m, key, value, 0);
}

void env_map_free(env_map *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++) {
        free(m->keys[i]);
        free(m->values[i]);
    }
    free(m->keys);
    free(m->values);
    free(m->lines);
    m->keys = NULL;
    m->values = NULL;
    m->lines = NULL;
    m->n = 0;
}

/* ---------------------------------------------------------------- dotenv */

static bool is_key_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool is_key_char(char c)
{
    return is_key_start(c) || (c >= '0' && c <= '9');
}

static bool is_line_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

typedef struct dotenv_cur {
    const char *t;
    size_t len, i, line;
} dotenv_cur;

/* After a closing quote only blanks and a '#' comment may follow on that line. */
static bool dotenv_tail_ok(dotenv_cur *c)
{
    while (c->i < c->len && is_line_blank(c->t[c->i]))
        c->i++;
    if (c->i < c->len && c->t[c->i] == '#') {
        while (c->i < c->len && c->t[c->i] != '\n')
            c->i++;
    }
    return c->i >= c->len || c->t[c->i] == '\n';
}

/* Quoted value starting at the opening quote; may span lines ("\r\n" inside becomes "\n").
 * Single quotes are literal; double quotes decode \n \t \r \" \\ and keep other escapes as is. */
static int dotenv_quoted(dotenv_cur *c, buf_t *v)
{
    char q = c->t[c->i++];
    while (c->i < c->len) {
        char ch = c->t[c->i];
        if (ch == q) {
            c->i++;
            return 0;
        }
        if (ch == '\r' && c->i + 1 < c->len && c->t[c->i + 1] == '\n') {
            c->i++;
            continue;
        }
        if (ch == '\n')
            c->line++;
        if (q == '"' && ch == '\\' && c->i + 1 < c->len) {
            char e = c->t[c->i + 1], d;
            switch (e) {
            case 'n': d = '\n'; break;
            case 't': d = '\t'; break;
            case 'r': d = '\r'; break;
            case '"': d = '"'; break;
            case '\\': d = '\\'; break;
            default: d = 0; break;
            }
            if (d) {
                if (buf_append(v, &d, 1))
                    return -ENOBUFS;
                c->i += 2;
                continue;
            }
        }
        if (buf_append(v, &ch, 1))
            return -ENOBUFS;
        c->i++;
    }
    return -EINVAL;
}

/* Unquoted value: to the end of the line, cut at a '#' that follows whitespace, trimmed. */
static int dotenv_unquoted(dotenv_cur *c, buf_t *v)
{
    size_t s = c->i, e = c->i;
    while (e < c->len && c->t[e] != '\n') {
        /* c->t[s - 1] is '=' or a blank skipped after it: "A= #x" is empty, "A=#x" is "#x" */
        if (c->t[e] == '#' && e > 0 && is_line_blank(c->t[e - 1]))
            break;
        e++;
    }
    c->i = e;
    while (c->i < c->len && c->t[c->i] != '\n')
        c->i++;
    while (e > s && is_line_blank(c->t[e - 1]))
        e--;
    return buf_append(v, c->t + s, e - s);
}

/* Text after a closing quote. The usual cause: a JSON value in double quotes, KEY="{"a": "b"}",
 * whose first inner quote ends the value; the fix is single quotes, as the script's .env had. */
static void dotenv_tail_fail(const dotenv_cur *c, char quote, size_t ks, size_t ke, const buf_t *v, char *err,
                             size_t errlen)
{
    bool object = v->data && v->data[0] == '{', list = v->data && v->data[0] == '[';
    int klen = (int)(ke - ks > 64 ? 64 : ke - ks);
    if (quote == '"' && (object || list))
        errbuf_set(err, errlen, "line %zu: unexpected text after the closing quote: a JSON value goes in single "
                   "quotes, %.*s='%s'", c->line, klen, c->t + ks, object ? "{\"...\": \"...\"}" : "[\"...\"]");
    else
        errbuf_set(err, errlen, "line %zu: unexpected text after the closing quote", c->line);
}

static bool dotenv_line_has_eq(const dotenv_cur *c, size_t from)
{
    for (size_t k = from; k < c->len && c->t[k] != '\n'; k++)
        if (c->t[k] == '=')
            return true;
    return false;
}

/* One KEY=VALUE line (c->i at its first non-blank byte) into tmp. */
static int dotenv_assignment(dotenv_cur *c, env_map *tmp, char *err, size_t errlen)
{
    size_t line = c->line;
    if (c->len - c->i > 6 && memcmp(c->t + c->i, "export", 6) == 0 &&
        (c->t[c->i + 6] == ' ' || c->t[c->i + 6] == '\t')) {
        c->i += 6;
        while (c->i < c->len && is_line_blank(c->t[c->i]))
            c->i++;
    }
    size_t ks = c->i;
    while (c->i < c->len && is_key_char(c->t[c->i]))
        c->i++;
    size_t ke = c->i;
    while (c->i < c->len && (c->t[c->i] == ' ' || c->t[c->i] == '\t'))
        c->i++;
    if (c->i >= c->len || c->t[c->i] != '=') {
        if (dotenv_line_has_eq(c, ks))
            errbuf_set(err, errlen, "line %zu: invalid variable name (use letters, digits and '_')", line);
        else
            errbuf_set(err, errlen, "line %zu: expected KEY=VALUE", line);
        return -EINVAL;
    }
    if (ke == ks || !is_key_start(c->t[ks])) {
        errbuf_set(err, errlen, "line %zu: invalid variable name (use letters, digits and '_')", line);
        return -EINVAL;
    }
    c->i++;
    while (c->i < c->len && (c->t[c->i] == ' ' || c->t[c->i] == '\t'))
        c->i++;

    buf_t v;
    buf_init(&v, DOTENV_FILE_MAX);
    int rc;
    if (c->i < c->len && (c->t[c->i] == '\'' || c->t[c->i] == '"')) {
        char quote = c->t[c->i];
        rc = dotenv_quoted(c, &v);
        if (rc == -EINVAL) {
            errbuf_set(err, errlen, "line %zu: unterminated quoted value", line);
            goto out;
        }
        if (rc == 0 && !dotenv_tail_ok(c)) {
            dotenv_tail_fail(c, quote, ks, ke, &v, err, errlen);
            rc = -EINVAL;
            goto out;
        }
    } else {
        rc = dotenv_unquoted(c, &v);
    }
    if (rc) {
        errbuf_set(err, errlen, "line %zu: value too long", line);
        rc = -EINVAL;
        goto out;
    }
    char *key = xstrndup(c->t + ks, ke - ks);
    env_map_set_line(tmp, key, v.data ? v.data : "", line);
    free(key);
out:
    buf_free(&v);
    return rc;
}

int dotenv_parse(const char *text, size_t len, env_map *m, char *err, size_t errlen)
{
    dotenv_cur c = {.t = text, .len = len, .i = 0, .line = 1};
    env_map tmp = {0};
    int rc = 0;

    const char *nul = memchr(text, '\0', len);
    if (nul) {
        size_t line = 1;
        for (const char *p = text; p < nul; p++)
            line += *p == '\n';
        errbuf_set(err, errlen, "line %zu: NUL byte", line);
        return -EINVAL;
    }
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        c.i = 3;

    while (c.i < c.len) {
        while (c.i < c.len && is_line_blank(c.t[c.i]))
            c.i++;
        if (c.i >= c.len)
            break;
        if (c.t[c.i] == '\n') {
            c.i++;
            c.line++;
            continue;
        }
        if (c.t[c.i] == '#') {
            while (c.i < c.len && c.t[c.i] != '\n')
                c.i++;
            continue;
        }
        rc = dotenv_assignment(&c, &tmp, err, errlen);
        if (rc)
            goto out;
    }
    /* Only a file that parsed entirely changes m. */
    for (size_t i = 0; i < tmp.n; i++)
        env_map_set_line(m, tmp.keys[i], tmp.values[i], tmp.lines[i]);
out:
    env_map_free(&tmp);
    return rc;
}

int dotenv_load(const char *path, env_map *m, char *err, size_t errlen)
{
    char perr[256];
    char chunk[16384];
    buf_t b;
    int rc = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        errbuf_set(err, errlen, "%s: %s", log_esc(path), strerror(-rc));
        return rc;
    }
    buf_init(&b, DOTENV_FILE_MAX);
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            errbuf_set(err, errlen, "%s: %s", log_esc(path), strerror(-rc));
            goto out;
        }
        if (n == 0)
            break;
        if (buf_append(&b, chunk, (size_t)n)) {
            rc = -EFBIG;
            errbuf_set(err, errlen, "%s: larger than %d bytes", log_esc(path), DOTENV_FILE_MAX);
            goto out;
        }
    }
    rc = dotenv_parse(b.data ? b.data : "", b.len, m, perr, sizeof perr);
    if (rc)
        errbuf_set(err, errlen, "%s: %s", log_esc(path), perr);
out:
    close(fd);
    buf_free(&b);
    return rc;
}
