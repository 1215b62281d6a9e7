/* probe.h: `plex-servarr-sync --health`: ask a running daemon's /health, for a container's
 * HEALTHCHECK (the image has no curl). */
#ifndef PSS_PROBE_H
#define PSS_PROBE_H

#include <stdio.h>

#include "config.h"

#define PROBE_TIMEOUT_MS 5000

/* The URL of the daemon's /health for this configuration: PORT on BIND_ADDRESS, or on loopback
 * (127.0.0.1, or [::1] for "::") when BIND_ADDRESS is a wildcard. Written into url; 0, or
 * -ENAMETOOLONG. */
int probe_health_url(const config_t *cfg, char *url, size_t urllen);

/* GET that URL (no proxy, no redirect, PROBE_TIMEOUT_MS in all), print one line to out saying
 * what was asked and what came back. Returns 0 when the answer is 200, else 1. Needs
 * curl_global_init. */
int probe_health(const config_t *cfg, FILE *out);

#endif
