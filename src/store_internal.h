/* store_internal.h: what store.c lends to store_history.c (the history table's reading and
 * pruning), which sits above it. Not a public header: callers use store.h. */
#ifndef PSS_STORE_INTERNAL_H
#define PSS_STORE_INTERNAL_H

#include <sqlite3.h>

#include "store.h"

/* The open connection; owned by the store, valid until store_close. */
sqlite3 *store_db(store_t *s);
/* Keeps SQLite's text for a failure (store_sqlerr) and returns it as a negative errno. */
int store_sql_fail(store_t *s, int rc);
/* The text of the last failure store_sql_fail kept. */
const char *store_sqlerr(const store_t *s);

#endif
