/* libraries.h: a media server's library list, the same shape for every kind of target: Plex's
 * sections (GET /library/sections) and Jellyfin's and Emby's virtual folders
 * (GET /Library/VirtualFolders). Pure data; the parsers live with each kind's calls. */
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

void media_libraries_free(media_libraries *l);

#endif
