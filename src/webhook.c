/* webhook.c: placeholder, being written. */
