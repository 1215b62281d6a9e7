/* test_queue_index.c: the queue's index structures on their own: the key table, the folder
 * tree's ancestors and descendants, the id table, the due-time heap and the stamps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "queue_index.h"
#include "util.h"

/* Two trees that must never meet: the same folder names under two top folders ("/1/tv/Show"
 * and "/2/tv/Show"), as two libraries' folders are. */
#define TV 1L
#define MOVIES 2L

/* The key of `path` in tree `top` (a new string). */
static char *keyed(long top, const char *path)
{
    return strcmp(path, "/") == 0 ? xasprintf("/%ld", top) : xasprintf("/%ld%s", top, path);
}

/* The tests own their nodes: the index never allocates or frees one. */
static qi_node *node(int64_t id, long top, const char *path)
{
    qi_node *n = xcalloc(1, sizeof *n);
    n->e.id = id;
    n->e.path = keyed(top, path);
    return n;
}

static void node_free(qi_node *n)
{
    free(n->e.path);
    free(n);
}

static qi_node *find(const qi_keys *k, long top, const char *p)
{
    char *key = keyed(top, p);
    qi_node *n = qi_keys_find(k, key, strlen(key));
    free(key);
    return n;
}

typedef struct seen {
    const qi_node *v[16];
    size_t n;
} seen;

static void see(void *ud, qi_node *x)
{
    seen *s = ud;
    assert_true(s->n < 16);
    s->v[s->n++] = x;
}

static seen below(const qi_keys *k, long top, const char *p)
{
    seen s = {.n = 0};
    char *key = keyed(top, p);
    qi_keys_below(k, key, strlen(key), see, &s);
    free(key);
    return s;
}

static seen above(const qi_keys *k, long top, const char *p, bool self)
{
    seen s = {.n = 0};
    char *key = keyed(top, p); /* kept until the walk ends */
    qi_up w;
    qi_node *x;
    qi_up_init(&w, k, key, strlen(key), self);
    while ((x = qi_up_next(&w)))
        see(&s, x);
    free(key);
    return s;
}

static void test_an_entry_is_found_by_its_exact_key_until_removed(void **state)
{
    (void)state;
    qi_keys k = {0};
    qi_node *a = node(1, TV, "/tv/Show"), *b = node(2, MOVIES, "/tv/Show");
    qi_keys_insert(&k, a);
    qi_keys_insert(&k, b);
    assert_ptr_equal(find(&k, TV, "/tv/Show"), a);
    assert_ptr_equal(find(&k, MOVIES, "/tv/Show"), b);
    assert_null(find(&k, TV, "/tv/show"));   /* byte-exact */
    assert_null(find(&k, TV, "/tv/Show/"));
    assert_null(find(&k, TV, "/tv"));
    assert_int_equal(qi_keys_count(&k), 2);
    assert_true(a->e.keyed);

    qi_keys_remove(&k, a);
    assert_false(a->e.keyed);
    assert_null(find(&k, TV, "/tv/Show"));
    assert_ptr_equal(find(&k, MOVIES, "/tv/Show"), b);
    qi_keys_remove(&k, a); /* not keyed: nothing */
    assert_int_equal(qi_keys_count(&k), 1);
    qi_keys_remove(&k, b);
    assert_int_equal(qi_keys_count(&k), 0);
    qi_keys_free(&k);
    node_free(a);
    node_free(b);
}

static void test_many_entries_survive_the_tables_growing(void **state)
{
    (void)state;
    enum { N = 5000 };
    qi_keys k = {0};
    qi_ids ids = {0};
    qi_node **v = xcalloc(N, sizeof *v);
    char p[64];
    for (int i = 0; i < N; i++) {
        snprintf(p, sizeof p, "/tv/Show %d/Season %d", i / 10, i % 10);
        v[i] = node(i + 1, TV, p);
        qi_keys_insert(&k, v[i]);
        qi_ids_insert(&ids, v[i]);
    }
    for (int i = 0; i < N; i++) {
        snprintf(p, sizeof p, "/tv/Show %d/Season %d", i / 10, i % 10);
        assert_ptr_equal(find(&k, TV, p), v[i]);
        assert_ptr_equal(qi_ids_find(&ids, i + 1), v[i]);
    }
    for (int i = 0; i < N; i += 2) {
        qi_keys_remove(&k, v[i]);
        qi_ids_remove(&ids, v[i]);
    }
    for (int i = 0; i < N; i++) {
        snprintf(p, sizeof p, "/tv/Show %d/Season %d", i / 10, i % 10);
        assert_ptr_equal(find(&k, TV, p), i % 2 ? v[i] : NULL);
        assert_ptr_equal(qi_ids_find(&ids, i + 1), i % 2 ? v[i] : NULL);
    }
    assert_int_equal(qi_keys_count(&k), N / 2);
    qi_keys_free(&k);
    qi_ids_drain(&ids, node_free); /* the odd ones: still in the id table */
    for (int i = 0; i < N; i += 2)
        node_free(v[i]);
    free(v);
}

static void test_ancestors_are_walked_from_the_top_by_whole_components(void **state)
{
    (void)state;
    qi_keys k = {0};
    qi_node *root = node(1, TV, "/"), *tv = node(2, TV, "/tv"), *show = node(3, TV, "/tv/Show");
    qi_node *other = node(4, TV, "/tv/Show 2"), *season = node(5, TV, "/tv/Show/S1");
    qi_node *elsewhere = node(6, MOVIES, "/tv");
    qi_node *all[] = {root, tv, show, other, season, elsewhere};
    for (size_t i = 0; i < ARRAY_SIZE(all); i++)
        qi_keys_insert(&k, all[i]);

    seen s = above(&k, TV, "/tv/Show/S1", false);
    assert_int_equal(s.n, 3);
    assert_ptr_equal(s.v[0], root);
    assert_ptr_equal(s.v[1], tv);
    assert_ptr_equal(s.v[2], show);
    s = above(&k, TV, "/tv/Show/S1", true);
    assert_int_equal(s.n, 4);
    assert_ptr_equal(s.v[3], season);
    /* "/tv/Show" is no ancestor of "/tv/Show 2", and another section's "/tv" is not either */
    s = above(&k, TV, "/tv/Show 2/S1/e.mkv", false);
    assert_int_equal(s.n, 3);
    assert_ptr_equal(s.v[2], other);
    s = above(&k, MOVIES, "/tv/x", false);
    assert_int_equal(s.n, 1);
    assert_ptr_equal(s.v[0], elsewhere);
    s = above(&k, TV, "/", false); /* the root has no ancestor */
    assert_int_equal(s.n, 0);

    for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
        qi_keys_remove(&k, all[i]);
        node_free(all[i]);
    }
    qi_keys_free(&k);
}

static void test_descendants_are_exactly_the_entries_beneath(void **state)
{
    (void)state;
    qi_keys k = {0};
    qi_node *show = node(1, TV, "/tv/Show"), *s1 = node(2, TV, "/tv/Show/S1");
    qi_node *e1 = node(3, TV, "/tv/Show/S1/e1"), *s2 = node(4, TV, "/tv/Show/S2");
    qi_node *other = node(5, TV, "/tv/Show 2/S1"), *movie = node(6, MOVIES, "/tv/Show/S3");
    qi_node *all[] = {show, s1, e1, s2, other, movie};
    for (size_t i = 0; i < ARRAY_SIZE(all); i++)
        qi_keys_insert(&k, all[i]);

    /* Newest first in each folder, subfolders newest first, depth first. */
    seen s = below(&k, TV, "/tv/Show");
    assert_int_equal(s.n, 3);
    assert_ptr_equal(s.v[0], s2);
    assert_ptr_equal(s.v[1], s1);
    assert_ptr_equal(s.v[2], e1);
    s = below(&k, TV, "/tv");
    assert_int_equal(s.n, 5);
    assert_ptr_equal(s.v[0], show);
    s = below(&k, TV, "/tv/Show/S1/e1"); /* no folder node: nothing beneath */
    assert_int_equal(s.n, 0);
    s = below(&k, MOVIES, "/tv/Show");
    assert_int_equal(s.n, 1);
    assert_ptr_equal(s.v[0], movie);

    /* Removing the last entry beneath a folder drops its node: nothing is found there. */
    qi_keys_remove(&k, e1);
    s = below(&k, TV, "/tv/Show/S1");
    assert_int_equal(s.n, 0);
    qi_keys_remove(&k, s1);
    qi_keys_remove(&k, s2);
    s = below(&k, TV, "/tv/Show");
    assert_int_equal(s.n, 0);
    s = below(&k, TV, "/tv");
    assert_int_equal(s.n, 2);
    for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
        qi_keys_remove(&k, all[i]);
        node_free(all[i]);
    }
    assert_int_equal(k.ndn, 0);
    qi_keys_free(&k);
}

static void test_heap_gives_earliest_due_then_lowest_id(void **state)
{
    (void)state;
    static const uint64_t due[] = {50, 10, 30, 10, 70, 20, 30, 5, 90, 10};
    enum { N = ARRAY_SIZE(due) };
    qi_heap h = {0};
    qi_node *v[N];
    for (size_t i = 0; i < N; i++) {
        v[i] = node((int64_t)(N - i), TV, "/x");
        v[i]->e.due = due[i];
        qi_heap_push(&h, v[i]);
    }
    assert_ptr_equal(qi_heap_top(&h), v[7]); /* due 5 */
    qi_heap_del(&h, v[7]);
    /* Three at due 10: ids 9 (v[1]), 7 (v[3]), 1 (v[9]); the lowest id first. */
    assert_ptr_equal(qi_heap_top(&h), v[9]);
    v[0]->e.due = 1; /* moved earlier */
    qi_heap_fix(&h, v[0]);
    assert_ptr_equal(qi_heap_top(&h), v[0]);
    v[0]->e.due = 1000; /* and later */
    qi_heap_fix(&h, v[0]);
    qi_heap_del(&h, v[4]); /* from the middle */

    uint64_t last_due = 0;
    int64_t last_id = 0;
    size_t n = 0;
    qi_node *t;
    while ((t = qi_heap_top(&h))) {
        assert_true(t->e.due > last_due || (t->e.due == last_due && t->e.id > last_id));
        last_due = t->e.due;
        last_id = t->e.id;
        qi_heap_del(&h, t);
        n++;
    }
    assert_int_equal(n, N - 2);
    assert_int_equal(last_due, 1000);
    qi_heap_free(&h);
    for (size_t i = 0; i < N; i++)
        node_free(v[i]);
}

static bool before_100(void *ud, uint64_t at)
{
    (void)ud;
    return at < 100;
}

static void test_stamps_are_kept_per_key_and_swept_when_expired(void **state)
{
    (void)state;
    qi_stamps t = {0};
    char p[32];
    for (int i = 0; i < 600; i++) {
        snprintf(p, sizeof p, "/1/tv/%d", i);
        qi_stamps_add(&t, p, strlen(p), (uint64_t)i);
    }
    qi_stamps_add(&t, "/2/tv/5", 7, 1000);
    assert_int_equal(t.count, 601);
    uint64_t *at = qi_stamps_find(&t, "/1/tv/5", 7);
    assert_non_null(at);
    assert_int_equal(*at, 5);
    *at = 500; /* raised in place */
    assert_int_equal(*qi_stamps_find(&t, "/2/tv/5", 7), 1000);
    assert_null(qi_stamps_find(&t, "/1/tv/5/x", 9));
    assert_null(qi_stamps_find(&t, "/1/tv/", 6));

    qi_stamps_sweep(&t, before_100, NULL);
    assert_int_equal(t.count, 600 - 100 + 1 + 1); /* 100..599, the raised one, the movie */
    assert_null(qi_stamps_find(&t, "/1/tv/7", 7));
    assert_non_null(qi_stamps_find(&t, "/1/tv/5", 7));
    assert_non_null(qi_stamps_find(&t, "/1/tv/100", 9));
    qi_stamps_free(&t);
    assert_int_equal(t.count, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_an_entry_is_found_by_its_exact_key_until_removed),
        cmocka_unit_test(test_many_entries_survive_the_tables_growing),
        cmocka_unit_test(test_ancestors_are_walked_from_the_top_by_whole_components),
        cmocka_unit_test(test_descendants_are_exactly_the_entries_beneath),
        cmocka_unit_test(test_heap_gives_earliest_due_then_lowest_id),
        cmocka_unit_test(test_stamps_are_kept_per_key_and_swept_when_expired),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
