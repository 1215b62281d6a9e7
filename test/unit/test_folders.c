/* test_folders.c: the one rule for what a scan of a folder means, as the webhooks, the manual
 * trigger, the re-map and the /api/resolve preview all apply it. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "folders.h"
#include "util.h"

#define MIN_MS 60000ull
#define NOW (1000 * MIN_MS)

static config_t make_config(void)
{
    config_t c;
    memset(&c, 0, sizeof c);
    c.max_folders_per_event = 100;
    c.section_refresh_ms = 15 * MIN_MS;
    return c;
}

/* One "TV" library at /data/tv, read `age_ms` before NOW (0: never read). */
static plex_libraries tv_library(uint64_t age_ms, int read)
{
    plex_libraries l = {0};
    if (!read)
        return l;
    l.v = xcalloc(1, sizeof *l.v);
    l.n = 1;
    l.v[0].key = 2;
    l.v[0].title = xstrdup("TV");
    l.v[0].type = xstrdup("show");
    l.v[0].locations = xcalloc(1, sizeof *l.v[0].locations);
    l.v[0].locations[0] = xstrdup("/data/tv");
    l.v[0].n_locations = 1;
    l.fetched_at = NOW - age_ms;
    return l;
}

static folder_verdict plan_of(const config_t *c, const plex_libraries *l, const char *arr, folder_plan *p)
{
    size_t n_roots = 0;
    const char **roots = sections_all_roots(c, l, &n_roots);
    folder_libs fl = {.libs = l, .roots = roots, .n_roots = n_roots, .now = NOW};
    const char *why = NULL;
    assert_int_equal(folders_plan(c, &fl, arr, p, &why), 0);
    free(roots);
    return p->verdict;
}

static void test_a_folder_in_a_library_is_matched_to_its_section(void **state)
{
    (void)state;
    config_t c = make_config();
    plex_libraries l = tv_library(MIN_MS, 1);
    folder_plan p;
    assert_int_equal(plan_of(&c, &l, "/data/tv/Show/Season 01", &p), FOLDER_MATCHED);
    assert_int_equal(p.n_sections, 1);
    assert_int_equal(p.sections[0].section, 2);
    assert_false(p.library_root);
    assert_string_equal(p.fp.plex, "/data/tv/Show/Season 01");
    folder_plan_free(&p);
    plex_libraries_free(&l);
}

static void test_without_a_library_list_a_folder_waits_unresolved(void **state)
{
    (void)state;
    config_t c = make_config();
    plex_libraries l = tv_library(0, 0);
    folder_plan p;
    assert_int_equal(plan_of(&c, &l, "/data/tv/Show", &p), FOLDER_UNRESOLVED);
    assert_false(p.stale_list);
    folder_plan_free(&p);
}

static void test_a_fresh_list_that_holds_nothing_skips_the_folder(void **state)
{
    (void)state;
    config_t c = make_config();
    plex_libraries l = tv_library(MIN_MS, 1);
    folder_plan p;
    assert_int_equal(plan_of(&c, &l, "/data/movies/Film (2001)", &p), FOLDER_NO_MATCH);
    char *why = folders_skip_reason(&p);
    assert_non_null(strstr(why, "/data/movies/Film (2001)"));
    free(why);
    folder_plan_free(&p);
    plex_libraries_free(&l);
}

static void test_a_stale_list_that_holds_nothing_makes_the_folder_wait_for_a_fresh_one(void **state)
{
    (void)state;
    config_t c = make_config();
    plex_libraries l = tv_library(15 * MIN_MS, 1); /* exactly SECTION_REFRESH old: stale */
    folder_plan p;
    assert_int_equal(plan_of(&c, &l, "/data/movies/Film (2001)", &p), FOLDER_UNRESOLVED);
    assert_true(p.stale_list);
    folder_plan_free(&p);
    plex_libraries_free(&l);
    l = tv_library(15 * MIN_MS - 1, 1); /* a millisecond younger: fresh */
    assert_int_equal(plan_of(&c, &l, "/data/movies/Film (2001)", &p), FOLDER_NO_MATCH);
    folder_plan_free(&p);
    plex_libraries_free(&l);
}

static void test_a_library_location_and_above_are_library_roots(void **state)
{
    (void)state;
    config_t c = make_config();
    plex_libraries l = tv_library(MIN_MS, 1);
    folder_plan p;
    plan_of(&c, &l, "/data/tv", &p);
    assert_true(p.library_root);
    folder_plan_free(&p);
    plan_of(&c, &l, "/data", &p);
    assert_true(p.library_root);
    folder_plan_free(&p);
    plan_of(&c, &l, "/data/tv/Show", &p);
    assert_false(p.library_root);
    folder_plan_free(&p);
    plex_libraries_free(&l);
}

static void test_a_path_that_maps_to_nothing_usable_is_refused_with_a_reason(void **state)
{
    (void)state;
    config_t c = make_config();
    cfg_replacement r = {.from = "/tv", .to = "relative/tv"};
    c.path_repl.v = &r;
    c.path_repl.n = 1;
    plex_libraries l = tv_library(MIN_MS, 1);
    folder_libs fl = {.libs = &l, .now = NOW};
    folder_plan p;
    const char *why = NULL;
    assert_int_equal(folders_plan(&c, &fl, "/tv/Show", &p, &why), -EINVAL);
    assert_non_null(why);
    plex_libraries_free(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_folder_in_a_library_is_matched_to_its_section),
        cmocka_unit_test(test_without_a_library_list_a_folder_waits_unresolved),
        cmocka_unit_test(test_a_fresh_list_that_holds_nothing_skips_the_folder),
        cmocka_unit_test(test_a_stale_list_that_holds_nothing_makes_the_folder_wait_for_a_fresh_one),
        cmocka_unit_test(test_a_library_location_and_above_are_library_roots),
        cmocka_unit_test(test_a_path_that_maps_to_nothing_usable_is_refused_with_a_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
