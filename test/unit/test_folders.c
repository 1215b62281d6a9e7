/* test_folders.c: the one rule for what a scan of a folder means, as the webhooks, the manual
 * trigger, the re-map and the /api/resolve preview all apply it: per target, the folder's path
 * through that target's replacements and the libraries that hold it (a delivery each). */
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
#define FRESH (NOW - MIN_MS)        /* read a minute ago */
#define STALE (NOW - 15 * MIN_MS)   /* exactly SECTION_REFRESH old: stale */

static config_t make_config(void)
{
    config_t c;
    memset(&c, 0, sizeof c);
    c.max_folders_per_event = 100;
    c.section_refresh_ms = 15 * MIN_MS;
    return c;
}

/* ---- library lists ---- */

/* Appends a library with the given locations (NULL-terminated) to l. */
static void lib_add(media_libraries *l, const char *id, const char *title, ...)
{
    l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
    media_library *m = &l->v[l->n++];
    memset(m, 0, sizeof *m);
    m->id = xstrdup(id);
    m->title = xstrdup(title);
    m->type = xstrdup("show");
    va_list ap;
    va_start(ap, title);
    const char *loc;
    while ((loc = va_arg(ap, const char *)) != NULL) {
        m->locations = xrealloc(m->locations, (m->n_locations + 1) * sizeof *m->locations);
        m->locations[m->n_locations++] = xstrdup(loc);
    }
    va_end(ap);
}

/* ---- targets ---- */

typedef struct world {
    config_t c;
    cfg_replacement repl[4][1];
    cfg_section_map map[2];
    cfg_target t[4];
    media_libraries libs[4];
    folder_target ft[4];
    size_t n;
} world;

enum { PLEX = 0, PLEX2 = 1, JF = 2, EMBY = 3 };

static void target_set(world *w, size_t i, const char *name, target_kind kind, const char *origin, const char *from,
                       const char *to, bool own)
{
    cfg_target *t = &w->t[i];
    memset(t, 0, sizeof *t);
    t->name = (char *)(uintptr_t)name;
    t->kind = kind;
    t->origin = (char *)(uintptr_t)origin;
    t->url = (char *)(uintptr_t)"http://x";
    t->token = (char *)(uintptr_t)"";
    w->repl[i][0].from = (char *)(uintptr_t)from;
    w->repl[i][0].to = (char *)(uintptr_t)to;
    t->path_repl.v = w->repl[i];
    t->path_repl.n = 1;
    t->path_repl_own = own;
    w->ft[i].cfg = t;
    w->ft[i].libs = &w->libs[i];
}

/* Four targets, all with fresh lists:
 * - plex (PLEX_URL): /data -> /plexa; libraries 2 "TV" and 4 "TV 4K" at /plexa/tv, 3 "Movies" at
 *   /plexa/movies; SECTION_MAPPING /plexa/tv/Anime -> 4 and /plexa/Elsewhere -> 3;
 * - plex2 (MEDIA_SERVERS): /data -> /mnt/media; library 10 at /mnt/media/tv;
 * - jellyfin (JELLYFIN_URL, JELLYFIN_PATH_REPLACEMENTS): /data -> /jf; libraries aaa and bbb both
 *   at /jf/tv, ccc at /jf/tv/Kids;
 * - emby (EMBY_URL, PATH_REPLACEMENTS): /data -> /plexa; libraries e1 and e2 both at /plexa/tv. */
static void world_init(world *w)
{
    memset(w, 0, sizeof *w);
    w->c = make_config();
    target_set(w, PLEX, "plex", TARGET_PLEX, "PLEX_URL", "/data", "/plexa", false);
    target_set(w, PLEX2, "plex2", TARGET_PLEX, "MEDIA_SERVERS (plex2)", "/data", "/mnt/media", true);
    target_set(w, JF, "jellyfin", TARGET_JELLYFIN, "JELLYFIN_URL", "/data", "/jf", true);
    target_set(w, EMBY, "emby", TARGET_EMBY, "EMBY_URL", "/data", "/plexa", false);
    w->map[0] = (cfg_section_map){.prefix = (char *)(uintptr_t)"/plexa/tv/Anime", .section = 4};
    w->map[1] = (cfg_section_map){.prefix = (char *)(uintptr_t)"/plexa/Elsewhere", .section = 3};
    w->t[PLEX].section_map = w->map;
    w->t[PLEX].n_section_map = 2;
    lib_add(&w->libs[PLEX], "2", "TV", "/plexa/tv", NULL);
    lib_add(&w->libs[PLEX], "3", "Movies", "/plexa/movies", NULL);
    lib_add(&w->libs[PLEX], "4", "TV 4K", "/plexa/tv", NULL);
    lib_add(&w->libs[PLEX2], "10", "Shows", "/mnt/media/tv", NULL);
    lib_add(&w->libs[JF], "aaa", "Shows", "/jf/tv", NULL);
    lib_add(&w->libs[JF], "bbb", "Shows again", "/jf/tv", NULL);
    lib_add(&w->libs[JF], "ccc", "Kids", "/jf/tv/Kids", NULL);
    lib_add(&w->libs[EMBY], "e1", "TV", "/plexa/tv", NULL);
    lib_add(&w->libs[EMBY], "e2", "TV too", "/plexa/tv", NULL);
    for (size_t i = 0; i < 4; i++)
        w->libs[i].fetched_at = FRESH;
    w->n = 4;
}

static void world_free(world *w)
{
    for (size_t i = 0; i < 4; i++)
        media_libraries_free(&w->libs[i]);
}

static folder_verdict plan(const world *w, const char *arr, folder_plan *p)
{
    folder_libs fl = {.targets = w->ft, .n_targets = w->n, .now = NOW};
    const char *why = NULL;
    assert_int_equal(folders_plan(&w->c, &fl, arr, p, &why), 0);
    assert_null(why);
    return p->verdict;
}

/* The deliveries of p to target ti, into out (at most 8); returns how many. */
static size_t deliveries_to(const folder_plan *p, size_t ti, const folder_delivery **out)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n_deliv && n < 8; i++)
        if (p->deliv[i].target == ti)
            out[n++] = &p->deliv[i];
    return n;
}

/* The one delivery of p to ti (asserted to be one). */
static const folder_delivery *only_to(const folder_plan *p, size_t ti)
{
    const folder_delivery *d[8];
    assert_int_equal(deliveries_to(p, ti, d), 1);
    return d[0];
}

/* ---- one target (the Python script's setup) ---- */

static void test_a_folder_in_a_library_is_matched_to_its_section(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    w.n = 1; /* plex only */
    folder_plan p;
    assert_int_equal(plan(&w, "/data/movies/Film (2001)", &p), FOLDER_MATCHED);
    assert_int_equal(p.n_deliv, 1);
    assert_int_equal(p.deliv[0].target, PLEX);
    assert_string_equal(p.deliv[0].library_id, "3");
    assert_non_null(p.deliv[0].library);
    assert_string_equal(p.deliv[0].library->title, "Movies");
    assert_string_equal(p.deliv[0].path, "/plexa/movies/Film (2001)");
    assert_false(p.deliv[0].unresolved);
    assert_false(p.deliv[0].mapped);
    assert_false(p.library_root);
    assert_string_equal(p.fp.arr, "/data/movies/Film (2001)");
    folder_plan_free(&p);
    world_free(&w);
}

static void test_without_a_library_list_a_folder_waits_unresolved(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    w.n = 1;
    w.libs[PLEX].fetched_at = 0; /* never read */
    folder_plan p;
    assert_int_equal(plan(&w, "/data/movies/Film", &p), FOLDER_UNRESOLVED);
    assert_int_equal(p.n_deliv, 1);
    assert_true(p.deliv[0].unresolved);
    assert_string_equal(p.deliv[0].library_id, "");
    assert_null(p.deliv[0].library);
    assert_string_equal(p.deliv[0].path, "/plexa/movies/Film");
    folder_plan_free(&p);
    world_free(&w);
}

static void test_a_fresh_list_that_holds_nothing_skips_the_folder(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    w.n = 1;
    folder_plan p;
    assert_int_equal(plan(&w, "/data/music/Album", &p), FOLDER_NO_MATCH);
    assert_int_equal(p.n_deliv, 0);
    folder_libs fl = {.targets = w.ft, .n_targets = w.n, .now = NOW};
    char *why = folders_skip_reason(&fl, &p);
    assert_non_null(strstr(why, "/data/music/Album"));
    assert_non_null(strstr(why, "/plexa/music/Album"));
    free(why);
    folder_plan_free(&p);
    world_free(&w);
}

static void test_a_stale_list_that_holds_nothing_makes_the_folder_wait_for_a_fresh_one(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    w.n = 1;
    w.libs[PLEX].fetched_at = STALE;
    folder_plan p;
    assert_int_equal(plan(&w, "/data/music/Album", &p), FOLDER_UNRESOLVED);
    assert_int_equal(p.n_deliv, 1);
    assert_true(p.deliv[0].unresolved);
    folder_plan_free(&p);
    w.libs[PLEX].fetched_at = STALE + 1; /* a millisecond younger: fresh */
    assert_int_equal(plan(&w, "/data/music/Album", &p), FOLDER_NO_MATCH);
    assert_int_equal(p.n_deliv, 0);
    folder_plan_free(&p);
    /* a stale list still decides what it holds */
    w.libs[PLEX].fetched_at = STALE;
    assert_int_equal(plan(&w, "/data/movies/Film", &p), FOLDER_MATCHED);
    assert_string_equal(only_to(&p, PLEX)->library_id, "3");
    folder_plan_free(&p);
    world_free(&w);
}

static void test_a_path_that_maps_to_nothing_usable_is_refused_with_a_reason(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    cfg_replacement r = {.from = "/data", .to = "relative/data"};
    w.c.path_repl.v = &r;
    w.c.path_repl.n = 1;
    folder_libs fl = {.targets = w.ft, .n_targets = w.n, .now = NOW};
    folder_plan p;
    const char *why = NULL;
    assert_int_equal(folders_plan(&w.c, &fl, "/data/tv/Show", &p, &why), -EINVAL);
    assert_non_null(why);
    assert_int_equal(p.n_deliv, 0);
    world_free(&w);
}

/* ---- several targets ---- */

static void test_each_target_gets_its_own_path_and_libraries(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    folder_plan p;
    assert_int_equal(plan(&w, "/data/tv/Show/Season 01", &p), FOLDER_MATCHED);
    assert_false(p.library_root);
    /* plex: both libraries at /plexa/tv, each a delivery */
    const folder_delivery *d[8];
    assert_int_equal(deliveries_to(&p, PLEX, d), 2);
    assert_string_equal(d[0]->library_id, "2");
    assert_string_equal(d[1]->library_id, "4");
    assert_string_equal(d[0]->path, "/plexa/tv/Show/Season 01");
    assert_string_equal(d[1]->path, "/plexa/tv/Show/Season 01");
    assert_false(d[0]->mapped);
    /* plex2: its own replacements */
    const folder_delivery *p2 = only_to(&p, PLEX2);
    assert_string_equal(p2->library_id, "10");
    assert_string_equal(p2->path, "/mnt/media/tv/Show/Season 01");
    assert_ptr_equal(p2->library, &w.libs[PLEX2].v[0]);
    /* jellyfin: two libraries share /jf/tv: one request */
    const folder_delivery *jf = only_to(&p, JF);
    assert_string_equal(jf->path, "/jf/tv/Show/Season 01");
    assert_true(strcmp(jf->library_id, "aaa") == 0 || strcmp(jf->library_id, "bbb") == 0);
    /* emby: the same */
    const folder_delivery *em = only_to(&p, EMBY);
    assert_string_equal(em->path, "/plexa/tv/Show/Season 01");
    assert_true(strcmp(em->library_id, "e1") == 0 || strcmp(em->library_id, "e2") == 0);
    assert_int_equal(p.n_deliv, 5);
    for (size_t i = 0; i < p.n_deliv; i++)
        assert_false(p.deliv[i].unresolved);
    folder_plan_free(&p);

    /* a component prefix, not a string prefix: /jf/tv/Kids2 is not in Kids */
    assert_int_equal(plan(&w, "/data/tv/Kids2/Show", &p), FOLDER_MATCHED);
    assert_string_equal(only_to(&p, JF)->path, "/jf/tv/Kids2/Show");
    folder_plan_free(&p);
    /* "/data/tv 2" is not under /data/tv for anyone */
    assert_int_equal(plan(&w, "/data/tv 2/Show", &p), FOLDER_NO_MATCH);
    folder_plan_free(&p);
    world_free(&w);
}

static void test_section_mapping_wins_for_plex_by_component_and_case_insensitively(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    folder_plan p;
    /* in libraries 2 and 4 by location, but the mapping says 4 */
    assert_int_equal(plan(&w, "/data/tv/anime/Naruto", &p), FOLDER_MATCHED);
    const folder_delivery *m = only_to(&p, PLEX);
    assert_string_equal(m->library_id, "4");
    assert_true(m->mapped);
    assert_false(m->outside_locations);
    assert_ptr_equal(m->library, &w.libs[PLEX].v[2]);
    assert_string_equal(m->path, "/plexa/tv/anime/Naruto");
    /* the mapping is Plex's alone: the other targets go by location */
    assert_string_equal(only_to(&p, PLEX2)->library_id, "10");
    assert_false(only_to(&p, PLEX2)->mapped);
    assert_non_null(only_to(&p, JF));
    assert_non_null(only_to(&p, EMBY));
    folder_plan_free(&p);

    /* by whole component: "Anime2" is not "Anime" */
    assert_int_equal(plan(&w, "/data/tv/Anime2/Show", &p), FOLDER_MATCHED);
    const folder_delivery *d[8];
    assert_int_equal(deliveries_to(&p, PLEX, d), 2);
    assert_false(d[0]->mapped);
    folder_plan_free(&p);

    /* a mapping outside its library's locations is flagged; it still counts as a match */
    assert_int_equal(plan(&w, "/data/Elsewhere/Thing", &p), FOLDER_MATCHED);
    m = only_to(&p, PLEX);
    assert_string_equal(m->library_id, "3");
    assert_true(m->mapped);
    assert_true(m->outside_locations);
    assert_int_equal(p.n_deliv, 1); /* nobody else holds it, and their lists are fresh */
    folder_plan_free(&p);
    world_free(&w);
}

static void test_a_target_without_a_list_gets_one_unresolved_delivery(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    w.libs[JF].fetched_at = 0;
    folder_plan p;
    assert_int_equal(plan(&w, "/data/tv/Show", &p), FOLDER_MATCHED);
    const folder_delivery *jf = only_to(&p, JF);
    assert_true(jf->unresolved);
    assert_string_equal(jf->library_id, "");
    assert_null(jf->library);
    assert_string_equal(jf->path, "/jf/tv/Show");
    assert_false(only_to(&p, EMBY)->unresolved);
    folder_plan_free(&p);
    /* and where no one else holds the folder, it waits for that list */
    assert_int_equal(plan(&w, "/data/music/Album", &p), FOLDER_UNRESOLVED);
    assert_int_equal(p.n_deliv, 1);
    assert_true(only_to(&p, JF)->unresolved);
    folder_plan_free(&p);
    world_free(&w);
}

static void test_a_stale_list_without_a_match_is_dropped_when_another_target_matched(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    w.libs[PLEX2].fetched_at = STALE;
    folder_plan p;
    /* movies: only plex holds it; plex2's old list holds nothing: no delivery to plex2 */
    assert_int_equal(plan(&w, "/data/movies/Film", &p), FOLDER_MATCHED);
    const folder_delivery *d[8];
    assert_int_equal(deliveries_to(&p, PLEX2, d), 0);
    assert_int_equal(p.n_deliv, 1);
    assert_string_equal(only_to(&p, PLEX)->library_id, "3");
    folder_plan_free(&p);
    /* music: nobody holds it, and plex2's list is old: wait for a fresh one */
    assert_int_equal(plan(&w, "/data/music/Album", &p), FOLDER_UNRESOLVED);
    assert_int_equal(p.n_deliv, 1);
    assert_true(only_to(&p, PLEX2)->unresolved);
    assert_string_equal(only_to(&p, PLEX2)->path, "/mnt/media/music/Album");
    folder_plan_free(&p);
    world_free(&w);
}

static void test_no_match_only_when_every_list_is_fresh(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    folder_plan p;
    assert_int_equal(plan(&w, "/data/music/Album", &p), FOLDER_NO_MATCH);
    assert_int_equal(p.n_deliv, 0);
    folder_plan_free(&p);
    for (size_t i = 0; i < 4; i++) {
        uint64_t keep = w.libs[i].fetched_at;
        w.libs[i].fetched_at = i % 2 ? 0 : STALE; /* never read, or old */
        assert_int_equal(plan(&w, "/data/music/Album", &p), FOLDER_UNRESOLVED);
        assert_int_equal(p.n_deliv, 1);
        assert_int_equal(p.deliv[0].target, i);
        assert_true(p.deliv[0].unresolved);
        folder_plan_free(&p);
        w.libs[i].fetched_at = keep;
    }
    world_free(&w);
}

static void test_no_targets_at_all_leaves_the_folder_unresolved(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    w.n = 0;
    folder_plan p;
    assert_int_equal(plan(&w, "/data/tv/Show", &p), FOLDER_UNRESOLVED);
    assert_int_equal(p.n_deliv, 0);
    assert_false(p.library_root);
    folder_plan_free(&p);
    world_free(&w);
}

static void test_library_roots_of_any_target_and_above(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    static const char *const roots[] = {
        "/data/tv",        /* a location of plex, plex2, jellyfin and emby */
        "/data/movies",    /* plex's alone */
        "/data/tv/Kids",   /* jellyfin's alone */
        "/data/tv/Anime",  /* a SECTION_MAPPING prefix (plex) */
        "/data/tv/ANIME",  /* the same, in another case */
        "/data/Elsewhere", /* the other mapping, outside every location */
        "/data",           /* every replacement's prefix */
        "/",
    };
    folder_plan p;
    for (size_t i = 0; i < ARRAY_SIZE(roots); i++) {
        plan(&w, roots[i], &p);
        if (!p.library_root)
            fail_msg("%s is a library root", roots[i]);
        folder_plan_free(&p);
    }
    static const char *const not_roots[] = {"/data/tv/Show", "/data/tv/Kids/Show", "/data/tv/Anime/Naruto",
                                            "/data/music"};
    for (size_t i = 0; i < ARRAY_SIZE(not_roots); i++) {
        plan(&w, not_roots[i], &p);
        if (p.library_root)
            fail_msg("%s is not a library root", not_roots[i]);
        folder_plan_free(&p);
    }
    /* only the jellyfin target knows /jf/tv/Kids: without it, Kids is a plain folder */
    w.n = 2;
    plan(&w, "/data/tv/Kids", &p);
    assert_false(p.library_root);
    folder_plan_free(&p);
    world_free(&w);
}

static void test_skip_reason_names_each_targets_path_and_variable(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    folder_plan p;
    assert_int_equal(plan(&w, "/data/music/Album", &p), FOLDER_NO_MATCH);
    folder_libs fl = {.targets = w.ft, .n_targets = w.n, .now = NOW};
    char *why = folders_skip_reason(&fl, &p);
    static const char *const want[] = {
        "'/data/music/Album'",
        "plex sees '/plexa/music/Album' (check PATH_REPLACEMENTS)",
        "plex2 sees '/mnt/media/music/Album' (check its path_replacements)",
        "jellyfin sees '/jf/music/Album' (check JELLYFIN_PATH_REPLACEMENTS)",
        "emby sees '/plexa/music/Album' (check PATH_REPLACEMENTS)",
        "'/plexa/movies'",
        "'/jf/tv/Kids'",
    };
    for (size_t i = 0; i < ARRAY_SIZE(want); i++)
        if (!strstr(why, want[i]))
            fail_msg("missing \"%s\" in: %s", want[i], why);
    free(why);
    folder_plan_free(&p);
    /* a target with no list says so */
    media_libraries_free(&w.libs[EMBY]);
    w.libs[EMBY].fetched_at = FRESH;
    assert_int_equal(plan(&w, "/data/music/Album", &p), FOLDER_NO_MATCH);
    why = folders_skip_reason(&fl, &p);
    assert_non_null(strstr(why, "(check PATH_REPLACEMENTS), its libraries: none"));
    free(why);
    folder_plan_free(&p);
    world_free(&w);
}

static void test_target_path_goes_through_that_targets_replacements(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    char *s = folders_target_path(&w.t[PLEX2], "/DATA/tv/Show"); /* prefixes match in any case */
    assert_string_equal(s, "/mnt/media/tv/Show");
    free(s);
    s = folders_target_path(&w.t[JF], "/other/x"); /* no replacement: unchanged */
    assert_string_equal(s, "/other/x");
    free(s);
    /* Plex on Windows sees drive paths; other targets need an absolute path */
    w.repl[PLEX][0].to = (char *)(uintptr_t)"D:/Media";
    s = folders_target_path(&w.t[PLEX], "/data/tv/Show");
    assert_string_equal(s, "D:/Media/tv/Show");
    free(s);
    w.repl[JF][0].to = (char *)(uintptr_t)"D:/Media";
    assert_null(folders_target_path(&w.t[JF], "/data/tv/Show"));
    world_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_folder_in_a_library_is_matched_to_its_section),
        cmocka_unit_test(test_without_a_library_list_a_folder_waits_unresolved),
        cmocka_unit_test(test_a_fresh_list_that_holds_nothing_skips_the_folder),
        cmocka_unit_test(test_a_stale_list_that_holds_nothing_makes_the_folder_wait_for_a_fresh_one),
        cmocka_unit_test(test_a_path_that_maps_to_nothing_usable_is_refused_with_a_reason),
        cmocka_unit_test(test_each_target_gets_its_own_path_and_libraries),
        cmocka_unit_test(test_section_mapping_wins_for_plex_by_component_and_case_insensitively),
        cmocka_unit_test(test_a_target_without_a_list_gets_one_unresolved_delivery),
        cmocka_unit_test(test_a_stale_list_without_a_match_is_dropped_when_another_target_matched),
        cmocka_unit_test(test_no_match_only_when_every_list_is_fresh),
        cmocka_unit_test(test_no_targets_at_all_leaves_the_folder_unresolved),
        cmocka_unit_test(test_library_roots_of_any_target_and_above),
        cmocka_unit_test(test_skip_reason_names_each_targets_path_and_variable),
        cmocka_unit_test(test_target_path_goes_through_that_targets_replacements),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
