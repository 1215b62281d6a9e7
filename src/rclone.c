/* rclone.c: placeholder, being written. */
