/* queue_files.h: internal to the queue, not for its callers (they use queue.h): an entry's
 * event files (queue_files.c), kept in one block and relative to the entry's folder. Pure. The
 * public part (queue_file_path) is declared in queue.h. */
#ifndef PSS_QUEUE_FILES_H
#define PSS_QUEUE_FILES_H

#include <stddef.h>

#include "queue.h"

/* Union into e's files, keeping the order of arrival; past QUEUE_MAX_FILES the rest is dropped.
 * The added names are relative to `base` (absolute when base is NULL, or when they start with
 * '/'); e keeps them relative to its own path. */
void files_union(q_entry *e, const char *const *add, size_t n, const char *base);

#endif
