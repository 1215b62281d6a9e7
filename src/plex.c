/* plex.c: placeholder, being written. */
