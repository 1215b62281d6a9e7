/* json_arena.c: a bump allocator behind cJSON's hooks, active between json_arena_begin() and
 * json_arena_end() (see json_arena.h). */
#include "json_arena.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "util.h"

#if defined(__SANITIZE_ADDRESS__)
#define ARENA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_ASAN 1
#endif
#endif
#ifdef ARENA_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define ARENA_ALIGN 16u
#define ARENA_FIRST_CHUNK ((size_t)64 << 10) /* a typical *arr payload's tree fits in it */

typedef struct chunk {
    struct chunk *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
} chunk;

static chunk *first; /* kept between scopes */
static chunk *cur;   /* the one being filled: first, or the newest of first's followers */
static unsigned depth;
static bool hooked;

static chunk *chunk_new(size_t size)
{
    chunk *c = xmalloc(sizeof *c + size);
    c->next = NULL;
    c->size = size;
    c->used = 0;
    POISON(c->data, size);
    return c;
}

static void *arena_malloc(size_t n)
{
    if (depth == 0)
        return malloc(n);
    if (n > SIZE_MAX / 2)
        return NULL;
    size_t need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (need == 0)
        need = ARENA_ALIGN;
    if (cur->size - cur->used < need) {
        /* Each follower at least doubles the last, so a huge body needs few chunks (and the
         * pointer test in arena_free stays short). */
        size_t size = cur->size * 2;
        while (size < need)
            size *= 2;
        chunk *c = chunk_new(size);
        cur->next = c;
        cur = c;
    }
    void *p = cur->data + cur->used;
    cur->used += need;
    UNPOISON(p, n);
    return p;
}

static bool in_arena(const void *p)
{
    for (const chunk *c = first; c; c = c->next)
        if ((const unsigned char *)p >= c->data && (const unsigned char *)p < c->data + c->size)
            return true;
    return false;
}

static void arena_free(void *p)
{
    if (p && !in_arena(p))
        free(p);
}

void json_arena_begin(void)
{
    if (!hooked) {
        cJSON_Hooks h = {.malloc_fn = arena_malloc, .free_fn = arena_free};
        cJSON_InitHooks(&h);
        hooked = true;
    }
    if (!first)
        first = chunk_new(ARENA_FIRST_CHUNK);
    if (depth++ == 0)
        cur = first;
}

void json_arena_end(void)
{
    if (depth == 0 || --depth > 0)
        return;
    chunk *c = first->next;
    while (c) {
        chunk *next = c->next;
        free(c);
        c = next;
    }
    first->next = NULL;
    POISON(first->data, first->used);
    first->used = 0;
    cur = first;
}

size_t json_arena_kept(void)
{
    return first ? first->size : 0;
}

cJSON *json_add_int(cJSON *obj, const char *name, long long v)
{
    char text[24];
    text[sizeof text - 1] = '\0';
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    char *p = fmt_digits(text + sizeof text - 1, u);
    if (v < 0)
        *--p = '-';
    return cJSON_AddRawToObject(obj, name, p);
}
