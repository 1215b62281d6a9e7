/* paths.c: placeholder, being written. */
