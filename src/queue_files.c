/* queue_files.c: an entry's event files (see queue_files.h). */
#include "queue_files.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

/* The file list is one block: the pointer array, then the strings. */
static void files_set(q_entry *e, const char *const *list, size_t n)
{
    if (n > QUEUE_MAX_FILES)
        n = QUEUE_MAX_FILES;
    size_t bytes = n * sizeof(char *);
    for (size_t i = 0; i < n; i++)
        bytes += strlen(list[i]) + 1;
    char **blk = NULL;
    if (n) {
        blk = xmalloc(bytes);
        char *s = (char *)(blk + n);
        for (size_t i = 0; i < n; i++) {
            size_t l = strlen(list[i]) + 1;
            memcpy(s, list[i], l);
            blk[i] = s;
            s += l;
        }
    }
    free(e->files); /* after the copy: list may point into the old block */
    e->files = blk;
    e->n_files = n;
}

/* A file's name as an entry keeps it: relative to the entry's folder when below it (an event
 * file always is; the folder's path is not kept again for each file), else as it came. */
static const char *file_rel(const char *folder, const char *file)
{
    size_t n = strlen(folder);
    if (n == 1 && folder[0] == '/')
        return file[0] == '/' && file[1] ? file + 1 : file;
    if (strncmp(file, folder, n) == 0 && file[n] == '/' && file[n + 1])
        return file + n + 1;
    return file;
}

char *queue_file_path(const q_entry *e, size_t i)
{
    const char *f = e->files[i];
    if (f[0] == '/')
        return xstrdup(f);
    return xasprintf("%s/%s", strcmp(e->path, "/") == 0 ? "" : e->path, f);
}

/* Union, keeping the order of arrival; past QUEUE_MAX_FILES the rest is dropped. The added
 * names are relative to `base` (absolute when base is NULL, or when they start with '/'). */
void files_union(q_entry *e, const char *const *add, size_t n, const char *base)
{
    const char *list[QUEUE_MAX_FILES];
    char *made[QUEUE_MAX_FILES];
    size_t k = 0, n_made = 0;
    for (size_t i = 0; i < e->n_files && k < QUEUE_MAX_FILES; i++)
        list[k++] = e->files[i];
    size_t had = k;
    for (size_t i = 0; i < n && k < QUEUE_MAX_FILES; i++) {
        if (!add || !add[i])
            continue;
        const char *f = add[i];
        if (base && f[0] != '/')
            f = made[n_made++] = xasprintf("%s/%s", strcmp(base, "/") == 0 ? "" : base, f);
        f = file_rel(e->path, f);
        size_t j = 0;
        while (j < k && strcmp(list[j], f) != 0)
            j++;
        if (j == k)
            list[k++] = f;
    }
    if (k != had)
        files_set(e, list, k);
    for (size_t i = 0; i < n_made; i++)
        free(made[i]);
}

