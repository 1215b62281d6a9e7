/* test_mapping.c: the places the configuration names (each replacement's *arr prefix, each library
 * location mapped back to its *arr path) and the prefixes run-time warnings are said once for. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mapping.h"
#include "util.h"

#define S(x) ((char *)(uintptr_t)(x))

/* The Python script's container paths: Sonarr sees /tv, Plex /data/tv, rclone /mnt/media/tv. */
typedef struct world {
    config_t c;
    cfg_replacement plex[2], rclone[1], local[1];
    cfg_mount mount;
    cfg_target t;
} world;

static void world_init(world *w)
{
    memset(w, 0, sizeof *w);
    w->plex[0] = (cfg_replacement){S("/tv"), S("/data/tv")};
    w->plex[1] = (cfg_replacement){S("/movies"), S("/data/movies")};
    w->rclone[0] = (cfg_replacement){S("/tv"), S("/mnt/media/tv")};
    w->c.path_repl = (cfg_replacements){w->plex, 2};
    w->c.rclone_path_repl = (cfg_replacements){w->rclone, 1};
    w->mount = (cfg_mount){.root = S("/mnt/media"), .url = S("http://127.0.0.1:5572")};
    w->c.mounts = &w->mount;
    w->c.n_mounts = 1;
    w->c.use_rclone = true;
    w->t = (cfg_target){.name = S("plex"), .kind = TARGET_PLEX, .origin = S("PLEX_URL"), .url = S("http://x"),
                        .token = S(""), .path_repl = w->c.path_repl};
    w->c.targets = &w->t;
    w->c.n_targets = 1;
}

static void lib_one(media_libraries *l, media_library *lib, char **locs, size_t n)
{
    memset(lib, 0, sizeof *lib);
    lib->id = S("1");
    lib->title = S("TV Shows");
    lib->locations = locs;
    lib->n_locations = n;
    *l = (media_libraries){.v = lib, .n = 1, .fetched_at = 1};
}

static void test_every_replacement_key_is_a_place_once_rclone_first(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    map_roots r;
    map_roots_from_config(&w.c, &r);
    assert_int_equal(r.n, 2); /* /tv (rclone's and Plex's), /movies */
    assert_string_equal(r.v[0].arr, "/tv");
    assert_int_equal(r.v[0].kind, MAP_ROOT_RCLONE);
    assert_string_equal(r.v[0].what, "RCLONE_PATH_REPLACEMENTS '/tv' -> '/mnt/media/tv'");
    assert_string_equal(r.v[1].arr, "/movies");
    assert_int_equal(r.v[1].kind, MAP_ROOT_REPLACEMENT);
    assert_string_equal(r.v[1].what, "PATH_REPLACEMENTS '/movies' -> '/data/movies'");
    map_roots_free(&r);
    assert_int_equal(r.n, 0);
}

static void test_a_library_location_maps_back_to_its_arr_path(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    char *arr = mapping_arr_of(&w.t, "/data/tv/Kids");
    assert_string_equal(arr, "/tv/Kids");
    free(arr);
    /* no replacement reaches it: the *arr apps name it as the server does */
    arr = mapping_arr_of(&w.t, "/srv/music");
    assert_string_equal(arr, "/srv/music");
    free(arr);
    /* a location no *arr path reaches: the *arr path "/tv" is sent to /data/tv */
    assert_null(mapping_arr_of(&w.t, "/tv"));
}

static void test_libraries_add_places_not_listed_yet(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    map_roots r;
    map_roots_from_config(&w.c, &r);
    char *locs[] = {S("/data/tv"), S("/data/tv/Kids"), S("/tv")};
    media_library lib;
    media_libraries libs;
    lib_one(&libs, &lib, locs, 3);
    map_roots_add_libraries(&r, &w.t, &libs);
    assert_int_equal(r.n, 3); /* /data/tv is /tv again; /tv reaches from no *arr path */
    assert_string_equal(r.v[2].arr, "/tv/Kids");
    assert_int_equal(r.v[2].kind, MAP_ROOT_LIBRARY);
    assert_string_equal(r.v[2].what, "plex library 1 'TV Shows' (/data/tv/Kids)");
    map_roots_free(&r);
}

static void test_a_warning_is_said_once_per_replacement_or_first_component(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    char *p = mapping_prefix(&w.c.rclone_path_repl, "/TV/Show/Season 01", NULL); /* case-insensitive, as paths */
    assert_string_equal(p, "/tv");
    free(p);
    p = mapping_prefix(&w.c.rclone_path_repl, "/media/movies/Film", NULL);
    assert_string_equal(p, "/media");
    free(p);
    p = mapping_prefix(&w.c.rclone_path_repl, "/media/movies/Film", "/mnt/media");
    assert_string_equal(p, "/mnt/media");
    free(p);
    p = mapping_prefix(&w.c.rclone_path_repl, "/top", NULL);
    assert_string_equal(p, "/top");
    free(p);
}

static void test_messages_name_the_variables(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    assert_string_equal(mapping_mount_var(&w.c), "RCLONE_MOUNT_ROOT");
    char *roots = mapping_mount_roots(&w.c);
    assert_string_equal(roots, "RCLONE_MOUNT_ROOT /mnt/media");
    free(roots);
    cfg_mount two[2] = {{.root = S("/mnt/a")}, {.root = S("/mnt/b")}};
    w.c.mounts = two;
    w.c.n_mounts = 2;
    roots = mapping_mount_roots(&w.c);
    assert_string_equal(roots, "RCLONE_MOUNTS /mnt/a, /mnt/b");
    free(roots);

    assert_string_equal(mapping_host_via(&w.c, "/tv/x"),
                        "the Plex path: PATH_REPLACEMENTS, as LOCAL_PATH_REPLACEMENTS is unset");
    w.local[0] = (cfg_replacement){S("/tv"), S("/mnt/media/tv")};
    w.c.local_path_repl = (cfg_replacements){w.local, 1};
    w.c.local_path_repl_set = true;
    assert_string_equal(mapping_host_via(&w.c, "/tv/x"), "LOCAL_PATH_REPLACEMENTS");
    assert_string_equal(mapping_host_via(&w.c, "/movies/x"), "LOCAL_PATH_REPLACEMENTS has no entry for it");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_replacement_key_is_a_place_once_rclone_first),
        cmocka_unit_test(test_a_library_location_maps_back_to_its_arr_path),
        cmocka_unit_test(test_libraries_add_places_not_listed_yet),
        cmocka_unit_test(test_a_warning_is_said_once_per_replacement_or_first_component),
        cmocka_unit_test(test_messages_name_the_variables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
