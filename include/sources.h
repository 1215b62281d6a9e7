/* sources.h: what each sender last sent (sources.c), for the page's first question, "did Sonarr
 * reach it?": the four *arr apps (at /webhook/<app> and /triggers/<app> alike) and the manual
 * trigger (/triggers/manual, autoscan's and autopulse's forms, and /webhook/manual). Kept in
 * memory, staged into the store once per loop turn (sources_flush, before the group commit) and
 * loaded at start, so it survives a restart. A refusal (bad credentials, a body that does not
 * parse) is kept in memory only: a flood of them must never write the disk. */
#ifndef PSS_SOURCES_H
#define PSS_SOURCES_H

#include <stdbool.h>
#include <stdint.h>

#include "store.h"
#include "webhook.h"

typedef enum {
    SOURCE_SONARR = 0, /* the first four are arr_app's own numbers */
    SOURCE_RADARR,
    SOURCE_LIDARR,
    SOURCE_READARR,
    SOURCE_MANUAL,     /* manual, autoscan and manual-trigger: the one row of the triggers */
    SOURCE_COUNT
} source_id;

typedef struct source_seen {
    uint64_t events;      /* requests taken (a Test, a Grab and a Download alike) */
    char *last_type;      /* the last one's eventType ("Download", "Test"), or for the manual
                             row the trigger's form ("autoscan", "manual-trigger", "manual",
                             "probe"); NULL before any */
    char *last_title;     /* what it was about (wh_event.label; a trigger's first folder), or NULL */
    uint64_t last_at;     /* wall ms, 0 = never */
    uint64_t last_test_at; /* the last Test event (the manual row: autoscan's probe), 0 = never */
    /* the last request refused (memory only) */
    uint64_t refused_at;
    int refused_status;   /* 400, 401, 415 */
    char *refused_reason;
    bool dirty;           /* changed since the last flush */
} source_seen;

typedef struct sources {
    source_seen v[SOURCE_COUNT];
} sources;

source_id source_of(arr_app app);
const char *source_name(source_id id); /* "sonarr", ..., "manual" */

/* A request from app was taken: its type, what it was about (may be NULL), whether it was a
 * Test (or the manual trigger's probe). */
void sources_note(sources *s, arr_app app, const char *type, const char *title, bool test, uint64_t at);
/* A request from app was refused with status, for reason (kept in memory only). */
void sources_note_refused(sources *s, arr_app app, int status, const char *reason, uint64_t at);
/* Stage each row that changed since the last flush (once per loop turn, before the commit). */
void sources_flush(sources *s, store_t *st);
/* Stage every row that was ever seen (into a fresh database, after the files were replaced). */
void sources_stage_all(sources *s, store_t *st);
/* One row read at start (a store_loader's `source`); an unknown app is ignored. */
void sources_load(sources *s, const store_source *row);
void sources_free(sources *s);

#endif
