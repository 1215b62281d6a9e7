/* notify.h: systemd readiness, status and watchdog through sd_notify (libsystemd). Without
 * NOTIFY_SOCKET in the environment every call is a no-op and notify_enabled() is false, so the
 * daemon runs no notify timer at all. */
#ifndef PSS_NOTIFY_H
#define PSS_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

/* NOTIFY_SOCKET was set at the first call (read once). */
bool notify_enabled(void);
void notify_ready(void);      /* READY=1 */
/* RELOADING=1 with MONOTONIC_USEC= (what Type=notify-reload wants; older systemd ignores it). */
void notify_reloading(void);
void notify_stopping(void);   /* STOPPING=1 */
/* STATUS=...; an identical text to the previous one is not sent again. */
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void notify_watchdog(void);   /* WATCHDOG=1 (only when the watchdog is enabled) */
/* Watchdog interval in µs from WATCHDOG_USEC (for this pid, per WATCHDOG_PID), or 0 when disabled
 * or when there is no NOTIFY_SOCKET. */
uint64_t notify_watchdog_usec(void);

#endif
