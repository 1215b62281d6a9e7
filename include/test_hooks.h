/* test_hooks.h: what the tests reach into, kept out of the production headers. Only test/ includes
 * this file; the hooks are defined beside what they expose (log.c, fscheck.c, store.c, webhook.c)
 * and cost nothing when unused. */
#ifndef PSS_TEST_HOOKS_H
#define PSS_TEST_HOOKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

typedef struct fscheck fscheck_t; /* fscheck.h */
typedef struct store store_t;     /* store.h */

/* log.c: send log output to this function instead of stderr (NULL restores). */
typedef void (*log_sink_fn)(log_level_t lvl, const char *line);
void log_set_sink(log_sink_fn fn);

/* fscheck.c: requests of mount `root` (exact root as given to fscheck_set_mounts, or "/")
 * currently issued and not yet returned (0 or 1). */
size_t fscheck_in_flight(const fscheck_t *f, const char *root);
/* Every request of mount `root` waits `ms` on a uv timer before its real stat, occupying the
 * mount as a slow stat would (0 = no delay). Unknown roots are ignored. */
void fscheck_test_set_stat_delay(fscheck_t *f, const char *root, uint64_t ms);

/* store.c: the next store_commit that has something staged fails after writing its entry rows
 * (as a full disk would), rolls back and returns -EIO, exactly as a real failure does. */
void store_test_fail_next_commit(store_t *s);

/* webhook.c: false makes webhook_parse build cJSON's tree of the whole body, the reference the
 * default (only the members it reads are parsed) must always agree with. */
extern bool webhook_selective;
/* Bodies parsed whole (by choice above, or because the walk left them to cJSON). */
extern unsigned long webhook_whole_parses;

#endif
