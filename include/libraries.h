/* libraries.h: a media server's library list, the same shape for every kind of target: Plex's
 * sections (GET /library/sections) and Jellyfin's and Emby's virtual folders
 * (GET /Library/VirtualFolders), and the parsers of those answers (libraries.c). Pure: no I/O;
 * the calls that fetch the answers live with each kind (plex.c, mediabrowser.c). */
#ifndef PSS_LIBRARIES_H
#define PSS_LIBRARIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LIBRARIES_MAX 1024          /* libraries read from one answer, at most */
#define LIBRARIES_MAX_LOCATIONS 64  /* locations of one library, at most */

typedef struct media_library {
    char *id;            /* Plex: the section key ("2"); Jellyfin/Emby: the ItemId */
    char *title;         /* Plex: title; Jellyfin/Emby: Name */
    char *type;          /* Plex: movie|show|artist|photo; Jellyfin/Emby: CollectionType; may be NULL */
    char **locations;    /* normalized absolute paths (path_normalize) */
    size_t n_locations;
    bool refreshing;     /* Plex: the section is scanning now (always false for the others) */
} media_library;

typedef struct media_libraries {
    media_library *v;
    size_t n;
    uint64_t fetched_at; /* wall ms when read; 0 = never read */
} media_libraries;

/* Frees every library and resets *l to empty (n = 0, fetched_at = 0); NULL is fine. */
void media_libraries_free(media_libraries *l);
/* The library with this id, or NULL (l may be NULL). */
const media_library *media_libraries_find(const media_libraries *l, const char *id);

/* Both parsers: 0 with *out filled and out->fetched_at = wall_ms() (the caller may overwrite it),
 * or -EINVAL with err set (one line, no raw bytes of the answer) and *out left empty, so
 * media_libraries_free is safe but not needed. Bounded: LIBRARIES_MAX libraries,
 * LIBRARIES_MAX_LOCATIONS locations each (more is an error, not a silent cut). Locations are
 * normalized; empty ones and repeats are dropped. */

/* Plex's GET /library/sections, JSON ({"MediaContainer":{"Directory":[{"key","title","type",
 * "refreshing","Location":[{"path"}]}]}}, key a string or a number) or XML (<MediaContainer>
 * <Directory key=".." refreshing="1"><Location path=".."/>...). id = the key in decimal ("2");
 * type and title are never NULL (""). refreshing: JSON true/false, 1/0 or "1"/"0"; XML "1". */
int plex_media_libraries_parse(const char *body, size_t len, media_libraries *out, char *err, size_t errlen);

/* Jellyfin's and Emby's GET /Library/VirtualFolders: [{"Name","Locations":[...],"ItemId",
 * "CollectionType"}]. id = ItemId, else Name (an item with neither is an error); type =
 * CollectionType or NULL; relative locations (not starting with '/') are skipped; refreshing is
 * always false. */
int mb_libraries_parse(const char *body, size_t len, media_libraries *out, char *err, size_t errlen);

#endif
