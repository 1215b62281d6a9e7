/* fscheck.c: placeholder, being written. */
