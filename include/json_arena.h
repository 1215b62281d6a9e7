/* json_arena.h: cJSON's allocations inside a scope come from one reusable arena.
 *
 * A webhook body of a few kilobytes becomes a tree of hundreds of small cJSON nodes and strings;
 * allocating and freeing each with malloc was the largest single cost of taking a webhook (and
 * the many small frees made glibc consolidate its free lists on the next large allocation).
 * Between json_arena_begin() and json_arena_end(), cJSON allocates by bumping a pointer in a
 * chunk that is kept from one scope to the next; cJSON_Delete inside the scope is a no-op for
 * that memory, and json_arena_end() takes it all back at once.
 *
 * Rules: everything cJSON allocates inside a scope (trees, cJSON_Print text) must be released
 * or abandoned before the scope ends (a tree that only that scope built may simply be left to
 * json_arena_end), and released with cJSON_Delete / cJSON_free, never free(). Outside a scope cJSON uses malloc and free as usual, and memory from either world may
 * be released in the other. Scopes nest (the outermost end resets). Loop thread only. Under
 * AddressSanitizer the arena's free space is poisoned, so a use after the scope is reported. */
#ifndef PSS_JSON_ARENA_H
#define PSS_JSON_ARENA_H

#include <stddef.h>

void json_arena_begin(void);
void json_arena_end(void);

/* Bytes held by the arena between scopes (its first chunk), for tests and metrics. */
size_t json_arena_kept(void);

/* Add an integer member. cJSON keeps every number as a double and prints it with two
 * snprintf calls and an sscanf (to check the round trip); an integer is written out directly
 * as a raw member instead, the same text for any value a double holds exactly. Returns the
 * item, NULL when out of memory. */
typedef struct cJSON cJSON;
cJSON *json_add_int(cJSON *obj, const char *name, long long v);

#endif
