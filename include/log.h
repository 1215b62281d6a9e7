/* log.h: leveled logging to stderr. Under systemd (JOURNAL_STREAM set) every line starts with
 * a syslog priority prefix ("<3>") and carries no timestamp; otherwise it starts with a local
 * timestamp (TZ honoured). Every %s argument is NOT escaped automatically: pass untrusted text
 * (paths, client input, upstream bodies) through log_esc() so control characters (\n, \r, ESC,
 * NUL-free bytes < 0x20 and 0x7f) appear as \n, \r, \x1b; a folder named "x\n<0>..." then
 * cannot forge a journal record. Never pass a secret to these functions. */
#ifndef PSS_LOG_H
#define PSS_LOG_H

#include <stdbool.h>

#include <stdarg.h>

typedef enum { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG } log_level_t;

void log_init(void);                 /* reads JOURNAL_STREAM once */
void log_set_level(log_level_t lvl);
log_level_t log_get_level(void);
int log_level_parse(const char *s, log_level_t *out); /* error|warn|warning|info|debug, any case */

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Debug lines are common on hot paths and usually off: the level is tested before the
 * arguments (log_esc copies, formatting) are evaluated. */
extern log_level_t log_level_now;
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_level_now >= LOG_LVL_DEBUG)                                                        \
            log_debug_line(__VA_ARGS__);                                                           \
    } while (0)
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn)); /* exit(1) */

/* Escape untrusted text for a log line. Returns a pointer into one of a small ring of static
 * buffers (8 slots, each up to 1024 output bytes, longer text is cut with "..."), so several
 * may be used in one log call. Not reentrant, which is fine on one loop. NULL gives "(null)". */
const char *log_esc(const char *s);

/* Buffered output (the daemon's loop turns it on): lines below ERROR collect in memory and go to
 * stderr in one write at log_flush(), which the loop calls once per turn, before it waits and
 * before it answers the requests of the turn; an ERROR line, a full buffer, turning buffering
 * off and exit() flush first. Off by default: every line is written at once. */
void log_set_buffered(bool on);
void log_flush(void);


#endif
