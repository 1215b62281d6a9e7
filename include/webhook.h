/* webhook.h: an *arr webhook body -> the folders it asks to scan (in arr terms), following
 * DESIGN.md's table. Pure: no I/O. */
#ifndef PSS_WEBHOOK_H
#define PSS_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* Where a request came from: the four *arr apps (their payloads, at /webhook/ or /triggers/), a
 * person (page, form, API), and the manual-trigger address /triggers/manual, called with ?dir=
 * (autoscan's form: Tdarr, Bazarr, scripts) or ?path= (autopulse's). The values are bit positions
 * in the stored `sources` of entries and history rows: new ones only ever go at the end. */
typedef enum {
    APP_SONARR = 0,
    APP_RADARR,
    APP_LIDARR,
    APP_READARR,
    APP_MANUAL,
    APP_AUTOSCAN,       /* /triggers/manual?dir= */
    APP_MANUAL_TRIGGER, /* /triggers/manual?path= */
    APP_COUNT
} arr_app;
/* The apps with a webhook payload format: those before APP_MANUAL. */
#define ARR_APP_HAS_PAYLOAD(a) ((unsigned)(a) < (unsigned)APP_MANUAL)

/* "sonarr" ... "manual", "autoscan", "manual-trigger" (the UI's and the API's source names) */
const char *arr_app_name(arr_app a);
int arr_app_parse(const char *s, arr_app *out); /* from the URL segment; 0 or -EINVAL */

#define WEBHOOK_MAX_FILES 64 /* event files kept per folder */

typedef struct wh_folder {
    char *path;       /* normalized absolute arr path of the folder to scan */
    char **files;     /* normalized absolute arr paths of the event's files in it (for minimum age) */
    size_t n_files;
} wh_folder;

typedef struct wh_event {
    arr_app app;
    char *event_type;     /* as sent (PascalCase), "" if absent */
    char *root;           /* series.path / movie.folderPath / artist.path / author.path (normalized), NULL if absent */
    wh_folder *folders;   /* de-duplicated, in payload order */
    size_t n_folders;
    bool is_test;         /* eventType Test */
    bool ignored;         /* an event type that asks for nothing (Grab, Health, ...): 200 */
    char *title;          /* series/movie/artist/author title for logs, may be NULL */
    char *label;          /* what it is, for people: "Show S02E05 · Episode", "Movie (2010)",
                             "Artist – Album", "Author – Book"; NULL when the payload
                             names nothing. One line of at most 300 bytes. */
    unsigned kinds;       /* WH_KIND_* of the event (an upgrade is also an import) */
} wh_event;

/* What an event did to its folders (the queue's QKIND_* have the same values). */
enum { WH_KIND_IMPORT = 1u, WH_KIND_UPGRADE = 2u, WH_KIND_RENAME = 4u, WH_KIND_DELETE = 8u };

/* Parse and interpret. JSON depth is limited to 64. Windows drive paths ("X:\...") are mapped
 * through PATH_REPLACEMENTS before validation, as DESIGN.md says; every folder and file path is
 * checked with paths_check(). SCAN_SCOPE=root gives the root folder instead of file folders; past
 * c->max_folders_per_event folders the event collapses to its root.
 * Returns 0, or -EINVAL with err holding a reason fit for a 400 answer ("body is not valid JSON",
 * "body is not a JSON object", "series.path: path is not absolute", ...). */
int webhook_parse(const config_t *c, arr_app app, const char *body, size_t len, wh_event *out,
                  char *err, size_t errlen);
/* (Added) Details the callers rely on:
 * - on failure *out is left zeroed (wh_event_free is safe but not needed);
 * - root is NULL for Test and ignored events, whose paths are never looked at;
 * - a root-delete event (SeriesDelete, MovieDelete, ArtistDelete, AlbumDelete, AuthorDelete,
 *   BookDelete) without deletedFiles: true sets `ignored` (nothing changed on disk);
 * - a drive path mapped through PATH_REPLACEMENTS is already in Plex terms;
 * - folders are not checked against library roots here (that needs each target's library
 *   list): folders_plan() marks a folder that is, for some target, at or above a library
 *   location or a replacement or SECTION_MAPPING prefix (folder_plan.library_root), and the
 *   caller refuses it;
 * - an app without a payload format (APP_MANUAL and after) is refused ("no webhook payload
 *   format for 'manual'"). */
void wh_event_free(wh_event *e);


#endif
