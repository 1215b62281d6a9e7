/* probe.h: `plex-servarr-sync --health`: ask a running daemon's /health, for a container's
 * HEALTHCHECK (the image has no curl). */
#ifndef PSS_PROBE_H
#define PSS_PROBE_H

#include <stdio.h>

#include "config.h"

#define PROBE_TIMEOUT_MS 5000

/* The i-th URL to try for the daemon's /health, below URL_BASE (i from 0): PORT on BIND_ADDRESS when it is a
 * specific address; on a wildcard, loopback: 127.0.0.1 for 0.0.0.0, and 127.0.0.1 then [::1]
 * for "::" (a dual-stack socket takes both; a container may have no IPv6 loopback). Written into
 * url; 0, -ENOENT when there is no i-th URL, or -ENAMETOOLONG. */
int probe_health_url(const config_t *cfg, int i, char *url, size_t urllen);

/* GET those URLs in turn until one connects (no proxy, no redirect, PROBE_TIMEOUT_MS each),
 * print one line to out saying what was asked and what came back. Returns 0 when the answer is 200, else 1. Needs
 * curl_global_init. */
int probe_health(const config_t *cfg, FILE *out);

#endif
