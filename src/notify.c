/* notify.c: sd_notify wrappers; every call is a no-op when NOTIFY_SOCKET is unset. */
#include "notify.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

static int enabled = -1; /* -1 = not read yet */
static char last_status[256];

bool notify_enabled(void)
{
    if (enabled < 0) {
        const char *s = getenv("NOTIFY_SOCKET");
        enabled = s && *s;
    }
    return enabled > 0;
}

static void send_line(const char *line)
{
    if (notify_enabled())
        sd_notify(0, line);
}

void notify_ready(void) { send_line("READY=1"); }

void notify_reloading(void)
{
    if (!notify_enabled())
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char line[96];
    snprintf(line, sizeof line, "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000ull);
    sd_notify(0, line);
}

void notify_stopping(void) { send_line("STOPPING=1"); }

void notify_watchdog(void)
{
    if (notify_watchdog_usec())
        sd_notify(0, "WATCHDOG=1");
}

void notify_status(const char *fmt, ...)
{
    if (!notify_enabled())
        return;
    char line[sizeof last_status];
    int off = snprintf(line, sizeof line, "STATUS=");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + off, sizeof line - (size_t)off, fmt, ap);
    va_end(ap);
    /* One line: a newline would start another assignment. */
    for (char *p = line; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    if (strcmp(line, last_status) == 0)
        return;
    memcpy(last_status, line, sizeof line);
    sd_notify(0, line);
}

uint64_t notify_watchdog_usec(void)
{
    if (!notify_enabled())
        return 0;
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0)
        return usec;
    return 0;
}
