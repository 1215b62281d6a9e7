/* log.c: leveled log lines on stderr; syslog priority prefixes under systemd, a local timestamp
 * otherwise; an escaping helper so untrusted text cannot forge records. */
#include "log.h"
#include "test_hooks.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util.h"

log_level_t log_level_now = LOG_LVL_INFO;
static bool journal;
static log_sink_fn sink;

/* Buffered output: one write per loop turn instead of one per line. */
#define LOG_BUF_BYTES 65536
static bool buffered;
static char *obuf;
static size_t olen;

void log_flush(void)
{
    if (olen) {
        fwrite(obuf, 1, olen, stderr);
        olen = 0;
    }
}

void log_set_buffered(bool on)
{
    static bool at_exit;
    if (on && !obuf) {
        obuf = malloc(LOG_BUF_BYTES);
        if (!obuf)
            return; /* unbuffered, as before */
    }
    if (on && !at_exit)
        at_exit = atexit(log_flush) == 0;
    if (!on)
        log_flush();
    buffered = on;
}

void log_init(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    journal = js && *js;
    tzset();
}

void log_set_level(log_level_t lvl) { log_level_now = lvl; }

log_level_t log_get_level(void) { return log_level_now; }

void log_set_sink(log_sink_fn fn) { sink = fn; }

int log_level_parse(const char *s, log_level_t *out)
{
    static const struct {
        const char *name;
        log_level_t lvl;
    } names[] = {{"error", LOG_LVL_ERROR}, {"warn", LOG_LVL_WARN},   {"warning", LOG_LVL_WARN},
                 {"info", LOG_LVL_INFO},   {"debug", LOG_LVL_DEBUG}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (s && strcasecmp(s, names[i].name) == 0) {
            *out = names[i].lvl;
            return 0;
        }
    }
    return -1;
}

static void emit(log_level_t lvl, const char *fmt, va_list ap)
{
    /* Copied, not formatted: a line is written per webhook. */
    static const char prio[][4] = {"<3>", "<4>", "<6>", "<7>"};
    static const char tag[][8] = {" ERROR ", " WARN  ", " INFO  ", " DEBUG "};
    char line[4096];
    size_t off = 0;
    if (journal) {
        memcpy(line, prio[lvl], 3);
        off = 3;
    } else {
        /* The local date and time change once a second: converted then, copied in between. */
        static time_t stamp_at = (time_t)-1;
        static char stamp[32];
        static size_t stamp_len;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        if (ts.tv_sec != stamp_at) {
            struct tm tm;
            localtime_r(&ts.tv_sec, &tm);
            stamp_len = strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
            stamp_at = ts.tv_sec;
        }
        memcpy(line, stamp, stamp_len);
        off = stamp_len;
        long ms = ts.tv_nsec / 1000000L;
        line[off++] = '.';
        line[off++] = (char)('0' + ms / 100);
        line[off++] = (char)('0' + ms / 10 % 10);
        line[off++] = (char)('0' + ms % 10);
        memcpy(line + off, tag[lvl], 7);
        off += 7;
    }
    int n = vsnprintf(line + off, sizeof line - off, fmt, ap);
    if (n < 0)
        n = 0;
    off += (size_t)n;
    if (off >= sizeof line - 1)
        off = sizeof line - 2;
    /* The format itself is trusted, but a stray newline in it must still not split a record. */
    for (size_t i = 0; i < off; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    if (sink) {
        line[off] = '\0';
        sink(lvl, line);
        return;
    }
    line[off++] = '\n';
    if (buffered && lvl != LOG_LVL_ERROR) {
        if (olen + off > LOG_BUF_BYTES)
            log_flush();
        memcpy(obuf + olen, line, off);
        olen += off;
        return;
    }
    log_flush(); /* what came before goes first */
    fwrite(line, 1, off, stderr);
}

#define LOG_FN(name, lvl)                                                                          \
    void name(const char *fmt, ...)                                                                \
    {                                                                                              \
        if (lvl > log_level_now)                                                                   \
            return;                                                                                \
        va_list ap;                                                                                \
        va_start(ap, fmt);                                                                         \
        emit(lvl, fmt, ap);                                                                        \
        va_end(ap);                                                                                \
    }
LOG_FN(log_error, LOG_LVL_ERROR)
LOG_FN(log_warn, LOG_LVL_WARN)
LOG_FN(log_info, LOG_LVL_INFO)
LOG_FN(log_debug_line, LOG_LVL_DEBUG)

void log_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit(LOG_LVL_ERROR, fmt, ap);
    va_end(ap);
    exit(1);
}

const char *log_esc(const char *s)
{
    enum { SLOTS = 8, SLOT = 1024 };
    static char ring[SLOTS][SLOT];
    static unsigned next;
    if (!s)
        return "(null)";
    char *out = ring[next++ % SLOTS];
    out[0] = '\0';
    str_append_escaped(out, SLOT, s, strlen(s), SLOT);
    return out;
}
