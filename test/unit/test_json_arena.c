/* test_json_arena.c: cJSON's allocations inside json_arena_begin/end scopes: correct trees of any
 * size, memory reused from one scope to the next, nesting, and memory crossing between the
 * arena and malloc in both directions (AddressSanitizer and valgrind runs check nothing leaks
 * and nothing is freed wrongly). */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "json_arena.h"
#include "util.h"

/* A JSON list of n objects, each with a string and a number. */
static char *make_doc(size_t n)
{
    buf_t b = {0};
    buf_appends(&b, "[");
    for (size_t i = 0; i < n; i++) {
        char one[96];
        snprintf(one, sizeof one, "%s{\"path\": \"/tv/Show %zu/Season 1\", \"n\": %zu}", i ? "," : "",
                 i, i);
        buf_appends(&b, one);
    }
    buf_appends(&b, "]");
    return buf_steal(&b);
}

static void check_doc(const cJSON *j, size_t n)
{
    assert_true(cJSON_IsArray(j));
    assert_int_equal(cJSON_GetArraySize(j), (int)n);
    size_t i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, j) {
        char want[64];
        snprintf(want, sizeof want, "/tv/Show %zu/Season 1", i);
        assert_string_equal(cJSON_GetObjectItem(it, "path")->valuestring, want);
        assert_int_equal(cJSON_GetObjectItem(it, "n")->valueint, (int)i);
        i++;
    }
}

static void test_small_and_large_trees_parse_the_same(void **state)
{
    (void)state;
    for (size_t n = 1; n <= 20000; n *= 10) { /* the largest needs several chunks */
        char *doc = make_doc(n);
        json_arena_begin();
        cJSON *j = cJSON_Parse(doc);
        assert_non_null(j);
        check_doc(j, n);
        char *text = cJSON_PrintUnformatted(j);
        assert_non_null(text);
        cJSON *again = cJSON_Parse(text);
        check_doc(again, n);
        cJSON_Delete(again);
        cJSON_free(text);
        cJSON_Delete(j);
        json_arena_end();
        free(doc);
    }
    assert_true(json_arena_kept() > 0);
}

static void test_each_scope_reuses_the_same_memory(void **state)
{
    (void)state;
    json_arena_begin();
    cJSON *a = cJSON_CreateObject();
    cJSON_Delete(a);
    json_arena_end();
    json_arena_begin();
    cJSON *b = cJSON_CreateObject();
    assert_ptr_equal(a, b); /* bump pointer reset, not a new allocation */
    cJSON_Delete(b);
    json_arena_end();
}

static void test_inner_scope_end_keeps_the_outer_tree(void **state)
{
    (void)state;
    json_arena_begin();
    cJSON *outer = cJSON_Parse("{\"keep\": \"me\"}");
    json_arena_begin();
    cJSON *inner = cJSON_Parse("{\"gone\": [1, 2, 3]}");
    cJSON_Delete(inner);
    json_arena_end();
    cJSON *more = cJSON_CreateString("after the inner scope");
    assert_string_equal(cJSON_GetObjectItem(outer, "keep")->valuestring, "me");
    assert_string_equal(more->valuestring, "after the inner scope");
    cJSON_Delete(more);
    cJSON_Delete(outer);
    json_arena_end();
    json_arena_end(); /* an unmatched end is ignored */
}

static void test_malloc_and_arena_memory_cross_freely(void **state)
{
    (void)state;
    cJSON *outside = cJSON_Parse("{\"made\": \"outside\"}"); /* malloc'd */
    char *printed_outside = cJSON_PrintUnformatted(outside);
    json_arena_begin();
    cJSON *inside = cJSON_CreateObject();
    /* an outside tree moved into an arena tree, then all deleted inside the scope: the malloc'd
     * nodes go back to malloc (a leak checker would see them otherwise) */
    cJSON_AddItemToObject(inside, "moved", outside);
    cJSON_Delete(inside);
    free(printed_outside); /* malloc'd text may also be released with free() */
    json_arena_end();

    json_arena_begin();
    cJSON *kept = cJSON_CreateArray();
    json_arena_end();
    (void)kept; /* abandoned with the scope: nothing to free */
    cJSON *after = cJSON_CreateString("malloc again");
    assert_string_equal(after->valuestring, "malloc again");
    cJSON_Delete(after);
}

static void test_integers_print_as_printf_does(void **state)
{
    (void)state;
    const long long values[] = {0, 7, -7, 42, 1764460800123LL, -1000000, 9007199254740993LL,
                                LLONG_MAX, LLONG_MIN};
    for (size_t i = 0; i < ARRAY_SIZE(values); i++) {
        cJSON *o = cJSON_CreateObject();
        assert_non_null(json_add_int(o, "n", values[i]));
        char *text = cJSON_PrintUnformatted(o);
        char want[64];
        snprintf(want, sizeof want, "{\"n\":%lld}", values[i]);
        assert_string_equal(text, want);
        /* and it reads back as the number */
        cJSON *back = cJSON_Parse(text);
        assert_true(cJSON_IsNumber(cJSON_GetObjectItem(back, "n")));
        cJSON_Delete(back);
        cJSON_free(text);
        cJSON_Delete(o);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_and_large_trees_parse_the_same),
        cmocka_unit_test(test_each_scope_reuses_the_same_memory),
        cmocka_unit_test(test_inner_scope_end_keeps_the_outer_tree),
        cmocka_unit_test(test_malloc_and_arena_memory_cross_freely),
        cmocka_unit_test(test_integers_print_as_printf_does),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
