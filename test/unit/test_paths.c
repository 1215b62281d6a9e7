/* test_paths.c: normalization, component prefixes, replacements, validation, the four forms. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "paths.h"
#include "util.h"

/* A config with only what paths.c reads; everything else zero. */
static config_t make_config(void)
{
    config_t c;
    memset(&c, 0, sizeof(c));
    c.max_folders_per_event = 100;
    return c;
}

static void assert_normalized(const char *in, const char *want)
{
    char *got = path_normalize(in);
    assert_string_equal(got, want);
    free(got);
}

static void test_normalize_turns_backslashes_and_drops_repeated_and_trailing_slashes(void **state)
{
    (void)state;
    assert_normalized("/tv//Show///Season 01/", "/tv/Show/Season 01");
    assert_normalized("\\tv\\Show\\Season 01\\", "/tv/Show/Season 01");
    assert_normalized("C:\\testpath", "C:/testpath");
    assert_normalized("/", "/");
    assert_normalized("///", "/");
    assert_normalized("", "");
    assert_normalized("Season 01/", "Season 01");
    /* bytes pass through: no Unicode normalization, dots untouched (validation refuses them) */
    assert_normalized("/movies/Am\xc3\xa9lie (2001)", "/movies/Am\xc3\xa9lie (2001)");
    assert_normalized("/tv/./Show/../x", "/tv/./Show/../x");
}

static void test_prefix_matches_whole_components_only(void **state)
{
    (void)state;
    assert_true(paths_has_prefix("/tv/Show/Season 1", "/tv/Show", false));
    assert_true(paths_has_prefix("/tv/Show", "/tv/Show", false));
    assert_false(paths_has_prefix("/tv/Show 2", "/tv/Show", false));
    assert_false(paths_has_prefix("/tv/Showcase/x", "/tv/Show", false));
    assert_false(paths_has_prefix("/tv", "/tv/Show", false));
    assert_true(paths_has_prefix("/anything/at/all", "/", false));
    assert_true(paths_has_prefix("/", "/", false));
}

static void test_prefix_case_insensitivity_is_optional(void **state)
{
    (void)state;
    assert_true(paths_has_prefix("/TV/show/S1", "/tv/Show", true));
    assert_false(paths_has_prefix("/TV/show/S1", "/tv/Show", false));
    assert_false(paths_has_prefix("/TV/show 2", "/tv/Show", true));
}

static void test_replacement_matches_case_insensitively_by_component(void **state)
{
    (void)state;
    cfg_replacement v[] = {{"/data/TV", "/tv"}};
    cfg_replacements r = {v, 1};
    bool matched = false;

    char *got = paths_replace("/Data/tv/Show/Season 01", &r, &matched);
    assert_true(matched);
    assert_string_equal(got, "/tv/Show/Season 01");
    free(got);

    got = paths_replace("/data/TV 2/Show", &r, &matched);
    assert_false(matched);
    assert_string_equal(got, "/data/TV 2/Show");
    free(got);

    got = paths_replace("/data/tv", &r, &matched);
    assert_true(matched);
    assert_string_equal(got, "/tv");
    free(got);
}

static void test_longest_replacement_wins_whatever_the_list_order(void **state)
{
    (void)state;
    cfg_replacement v[] = {{"/data", "/d"}, {"/data/tv", "/tv"}, {"/data/tv/anime", "/anime"}};
    cfg_replacements r = {v, 3};

    char *got = paths_replace("/data/tv/anime/Show", &r, NULL);
    assert_string_equal(got, "/anime/Show");
    free(got);
    got = paths_replace("/data/tv/Show", &r, NULL);
    assert_string_equal(got, "/tv/Show");
    free(got);
    got = paths_replace("/data/movies/X", &r, NULL);
    assert_string_equal(got, "/d/movies/X");
    free(got);
}

static void test_replacement_normalizes_input_and_target(void **state)
{
    (void)state;
    cfg_replacement v[] = {{"C:/Media", "/mnt/media/"}, {"/", "/root"}};
    cfg_replacements r = {v, 2};
    char *got = paths_replace("C:\\media\\TV\\Show\\", &r, NULL);
    assert_string_equal(got, "/mnt/media/TV/Show");
    free(got);
    got = paths_replace("/x/y", &r, NULL);
    assert_string_equal(got, "/root/x/y");
    free(got);
    got = paths_replace("/x", NULL, NULL);
    assert_string_equal(got, "/x");
    free(got);
}

static void test_check_accepts_ordinary_absolute_paths(void **state)
{
    (void)state;
    assert_null(paths_check("/tv/Show (2022)/Season 01"));
    assert_null(paths_check("/movies/Am\xc3\xa9lie (2001)"));
    assert_null(paths_check("/tv/.hidden/...dots/a..b"));
    assert_null(paths_check("/"));
}

static void test_check_refuses_relative_empty_control_dots_and_long(void **state)
{
    (void)state;
    assert_string_equal(paths_check(NULL), "path is empty");
    assert_string_equal(paths_check(""), "path is empty");
    assert_string_equal(paths_check("tv/Show"), "path is not absolute");
    assert_null(paths_check("/music/\xf0\x9f\x8e\xb5 \xe2\x80\x94 \xed\x9f\xbf"));
    static const char *const bad_utf8[] = {"/tv/\xff", "/tv/Am\xe9lie", "/tv/\xc0\xae\xc0\xae",
                                           "/tv/\xed\xa0\x80", "/tv/\xf4\x90\x80\x80", "/tv/\xe2\x80"};
    for (size_t i = 0; i < sizeof bad_utf8 / sizeof *bad_utf8; i++)
        assert_string_equal(paths_check(bad_utf8[i]), "path is not valid UTF-8");
    assert_string_equal(paths_check("C:/testpath"), "path is not absolute");
    assert_string_equal(paths_check("/tv/Show\r\n<0>x"), "path contains a control character");
    assert_string_equal(paths_check("/tv/Show\n"), "path contains a control character");
    assert_string_equal(paths_check("/tv/\tShow"), "path contains a control character");
    assert_string_equal(paths_check("/tv/\x7fShow"), "path contains a control character");
    assert_string_equal(paths_check("/tv/../etc"), "path has a '.' or '..' component");
    assert_string_equal(paths_check("/tv/Show/.."), "path has a '.' or '..' component");
    assert_string_equal(paths_check("/tv/./Show"), "path has a '.' or '..' component");
    assert_string_equal(paths_check("/tv\\..\\etc"), "path has a '.' or '..' component");

    char *longp = malloc(PATHS_MAX + 2);
    memset(longp, 'a', PATHS_MAX + 1);
    longp[0] = '/';
    longp[PATHS_MAX + 1] = '\0';
    assert_string_equal(paths_check(longp), "path is too long");
    longp[PATHS_MAX] = '\0';
    assert_null(paths_check(longp));
    free(longp);
}

static void test_resolve_gives_four_forms_and_longest_mount(void **state)
{
    (void)state;
    config_t c = make_config();
    cfg_replacement plex[] = {{"/data/tv", "/tv"}};
    cfg_replacement rcl[] = {{"/data", "/mnt/remote"}};
    cfg_mount mounts[] = {{"/mnt/remote/tv", "http://b:5573", NULL, NULL, NULL},
                          {"/mnt/remote", "http://a:5572", NULL, NULL, NULL}};
    c.path_repl = (cfg_replacements){plex, 1};
    c.rclone_path_repl = (cfg_replacements){rcl, 1};
    c.mounts = mounts;
    c.n_mounts = 2;

    folder_paths f;
    const char *why = "unset";
    assert_int_equal(paths_resolve(&c, "/data/tv/Show/Season 01", &f, &why), 0);
    assert_null(why);
    assert_string_equal(f.arr, "/data/tv/Show/Season 01");
    assert_string_equal(f.plex, "/tv/Show/Season 01");
    assert_string_equal(f.host, "/tv/Show/Season 01"); /* no LOCAL_PATH_REPLACEMENTS: = Plex */
    assert_string_equal(f.rclone, "/mnt/remote/tv/Show/Season 01");
    assert_ptr_equal(f.mount, &mounts[0]);
    assert_string_equal(f.vfs_dir, "Show/Season 01");
    assert_int_equal(paths_depth(f.vfs_dir), 2);
    folder_paths_free(&f);
    assert_null(f.arr);

    assert_int_equal(paths_resolve(&c, "/data/movies/X (1999)", &f, NULL), 0);
    assert_ptr_equal(f.mount, &mounts[1]);
    assert_string_equal(f.vfs_dir, "movies/X (1999)");
    folder_paths_free(&f);
}

static void test_resolve_at_mount_root_gives_empty_vfs_dir(void **state)
{
    (void)state;
    config_t c = make_config();
    cfg_mount mounts[] = {{"/mnt/remote", "http://a:5572", NULL, NULL, NULL}};
    c.mounts = mounts;
    c.n_mounts = 1;
    folder_paths f;
    assert_int_equal(paths_resolve(&c, "/mnt/remote/", &f, NULL), 0);
    assert_ptr_equal(f.mount, &mounts[0]);
    assert_string_equal(f.vfs_dir, "");
    assert_int_equal(paths_depth(f.vfs_dir), 0);
    folder_paths_free(&f);
}

static void test_folder_outside_every_mount_has_no_vfs_dir(void **state)
{
    (void)state;
    config_t c = make_config();
    cfg_mount mounts[] = {{"/mnt/remote", "http://a:5572", NULL, NULL, NULL}};
    c.mounts = mounts;
    c.n_mounts = 1;
    folder_paths f;
    assert_int_equal(paths_resolve(&c, "/mnt/remote2/Show", &f, NULL), 0);
    assert_null(f.mount);
    assert_null(f.vfs_dir);
    folder_paths_free(&f);
}

static void test_root_mount_holds_every_path(void **state)
{
    (void)state;
    config_t c = make_config();
    cfg_mount mounts[] = {{"/", "http://a:5572", NULL, NULL, NULL}};
    c.mounts = mounts;
    c.n_mounts = 1;
    folder_paths f;
    assert_int_equal(paths_resolve(&c, "/tv/Show", &f, NULL), 0);
    assert_ptr_equal(f.mount, &mounts[0]);
    assert_string_equal(f.vfs_dir, "tv/Show");
    folder_paths_free(&f);
}

static void test_host_path_uses_local_replacements_when_set(void **state)
{
    (void)state;
    config_t c = make_config();
    cfg_replacement plex[] = {{"/data", "/plex"}};
    cfg_replacement local[] = {{"/data", "/srv/media"}};
    c.path_repl = (cfg_replacements){plex, 1};
    c.local_path_repl = (cfg_replacements){local, 1};
    c.local_path_repl_set = true;
    folder_paths f;
    assert_int_equal(paths_resolve(&c, "/data/tv/Show", &f, NULL), 0);
    assert_string_equal(f.plex, "/plex/tv/Show");
    assert_string_equal(f.host, "/srv/media/tv/Show");
    assert_string_equal(f.rclone, "/data/tv/Show");
    assert_null(f.mount);
    folder_paths_free(&f);
}

static void test_resolve_refuses_a_mapped_form_that_is_not_absolute(void **state)
{
    (void)state;
    config_t c = make_config();
    cfg_replacement rcl[] = {{"/data", "remote:media"}};
    c.rclone_path_repl = (cfg_replacements){rcl, 1};
    folder_paths f;
    const char *why = NULL;
    assert_int_equal(paths_resolve(&c, "/data/tv/Show", &f, &why), -EINVAL);
    assert_non_null(why);
    assert_non_null(strstr(why, "RCLONE_PATH_REPLACEMENTS"));
    assert_null(f.arr);

    assert_int_equal(paths_resolve(&c, "relative/x", &f, &why), -EINVAL);
    assert_string_equal(why, "path is not absolute");
}

static void test_plex_path_may_be_a_windows_drive_path(void **state)
{
    (void)state;
    config_t c = make_config();
    cfg_replacement plex[] = {{"/data/tv", "D:\\TV"}};
    c.path_repl = (cfg_replacements){plex, 1};
    folder_paths f;
    const char *why = NULL;
    /* this host cannot stat "D:/...": the host form then needs LOCAL_PATH_REPLACEMENTS */
    assert_int_equal(paths_resolve(&c, "/data/tv/Show", &f, &why), -EINVAL);
    assert_non_null(strstr(why, "LOCAL_PATH_REPLACEMENTS"));

    cfg_replacement local[] = {{"/data", "/srv"}};
    c.local_path_repl = (cfg_replacements){local, 1};
    c.local_path_repl_set = true;
    assert_int_equal(paths_resolve(&c, "/data/tv/Show", &f, &why), 0);
    assert_string_equal(f.plex, "D:/TV/Show");
    assert_string_equal(f.host, "/srv/tv/Show");
    folder_paths_free(&f);
}

static void test_dirname_join_and_depth(void **state)
{
    (void)state;
    char *s = paths_dirname("/tv/Show/Season 01/x.mkv");
    assert_string_equal(s, "/tv/Show/Season 01");
    free(s);
    s = paths_dirname("/x.mkv");
    assert_string_equal(s, "/");
    free(s);
    s = paths_dirname("/");
    assert_string_equal(s, "/");
    free(s);
    s = paths_dirname("/tv/Show/");
    assert_string_equal(s, "/tv");
    free(s);

    s = paths_join("/tv/Show", "Season 01\\x.mkv");
    assert_string_equal(s, "/tv/Show/Season 01/x.mkv");
    free(s);
    s = paths_join("/tv/Show/", "/Season 01/");
    assert_string_equal(s, "/tv/Show/Season 01");
    free(s);
    s = paths_join("/tv/Show", "");
    assert_string_equal(s, "/tv/Show");
    free(s);

    assert_int_equal(paths_depth(""), 0);
    assert_int_equal(paths_depth("tv"), 1);
    assert_int_equal(paths_depth("tv/Show"), 2);
    assert_int_equal(paths_depth("tv//Show/"), 2);
    assert_int_equal(paths_depth(NULL), 0);
}

static void test_at_or_above_a_root_is_by_component_and_case_insensitive(void **state)
{
    (void)state;
    /* At a library location, a replacement prefix or a mapping prefix, or above one. */
    assert_true(paths_at_or_above("/tv", "/tv"));
    assert_true(paths_at_or_above("/kids", "/kids/tv"));
    assert_true(paths_at_or_above("/", "/tv"));
    assert_true(paths_at_or_above("/movies", "/movies"));
    assert_true(paths_at_or_above("/data/media", "/data/media/movies"));
    assert_true(paths_at_or_above("/music", "/music/Classical"));
    assert_true(paths_at_or_above("/MUSIC/classical", "/music/Classical")); /* the cautious direction */
    /* A root as Plex may write it is normalized first. */
    assert_true(paths_at_or_above("/tv", "/tv/"));
    assert_true(paths_at_or_above("/kids", "//kids//tv/"));
    assert_true(paths_at_or_above("/kids/tv", "\\kids\\tv"));

    /* Below a root, or beside it. */
    assert_false(paths_at_or_above("/tv/Show", "/tv"));
    assert_false(paths_at_or_above("/tv 2", "/tv"));
    assert_false(paths_at_or_above("/tv", "/tv 2"));
    assert_false(paths_at_or_above("/movies/Heat (1995)", "/movies"));
    assert_false(paths_at_or_above("/music/Classical/Bach", "/music/Classical"));
    assert_false(paths_at_or_above("/elsewhere", "/tv"));
    /* No root: nothing to be above. */
    assert_false(paths_at_or_above("/elsewhere", NULL));
    assert_false(paths_at_or_above("/elsewhere", ""));
}

static void test_media_and_subtitle_extensions_name_files(void **state)
{
    (void)state;
    assert_true(paths_is_media_file("/tv/Show/Season 01/Show - S01E01.mkv"));
    assert_true(paths_is_media_file("/tv/Show/Season 01/Show - S01E01.en.SRT"));
    assert_true(paths_is_media_file("/music/A/B/01 - x.flac"));
    assert_true(paths_is_media_file("/books/A/B/b.epub"));
    assert_true(paths_is_media_file("x.m4b"));
    assert_false(paths_is_media_file("/tv/Show/Season 01"));
    assert_false(paths_is_media_file("/movies/Mr. Robot"));
    assert_false(paths_is_media_file("/tv/Show/.srt"));
    assert_false(paths_is_media_file("/tv/Show.mkv/Season 01"));
    assert_false(paths_is_media_file("/tv/Show/name."));
    assert_false(paths_is_media_file("/tv/Show/notes.txt"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize_turns_backslashes_and_drops_repeated_and_trailing_slashes),
        cmocka_unit_test(test_prefix_matches_whole_components_only),
        cmocka_unit_test(test_prefix_case_insensitivity_is_optional),
        cmocka_unit_test(test_replacement_matches_case_insensitively_by_component),
        cmocka_unit_test(test_longest_replacement_wins_whatever_the_list_order),
        cmocka_unit_test(test_replacement_normalizes_input_and_target),
        cmocka_unit_test(test_check_accepts_ordinary_absolute_paths),
        cmocka_unit_test(test_check_refuses_relative_empty_control_dots_and_long),
        cmocka_unit_test(test_resolve_gives_four_forms_and_longest_mount),
        cmocka_unit_test(test_resolve_at_mount_root_gives_empty_vfs_dir),
        cmocka_unit_test(test_folder_outside_every_mount_has_no_vfs_dir),
        cmocka_unit_test(test_root_mount_holds_every_path),
        cmocka_unit_test(test_host_path_uses_local_replacements_when_set),
        cmocka_unit_test(test_resolve_refuses_a_mapped_form_that_is_not_absolute),
        cmocka_unit_test(test_plex_path_may_be_a_windows_drive_path),
        cmocka_unit_test(test_dirname_join_and_depth),
        cmocka_unit_test(test_at_or_above_a_root_is_by_component_and_case_insensitive),
        cmocka_unit_test(test_media_and_subtitle_extensions_name_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
