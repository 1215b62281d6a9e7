/* notify.h: systemd readiness and watchdog through sd_notify. Does nothing without NOTIFY_SOCKET. */
#ifndef PSS_NOTIFY_H
#define PSS_NOTIFY_H

#include <stdint.h>

void notify_ready(void);
void notify_reloading(void);
void notify_stopping(void);
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void notify_watchdog(void);
/* Watchdog interval in µs from WATCHDOG_USEC (for this pid), or 0 when disabled. */
uint64_t notify_watchdog_usec(void);

#endif
