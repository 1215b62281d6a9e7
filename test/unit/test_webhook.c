/* test_webhook.c: *arr payloads (the fixtures and hand-written ones) -> the folders to scan. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util.h"
#include "webhook.h"
#include "test_hooks.h"

static config_t make_config(void)
{
    config_t c;
    memset(&c, 0, sizeof(c));
    c.max_folders_per_event = 100;
    c.scan_scope = SCAN_SCOPE_FOLDER;
    return c;
}

static char *read_fixture(const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", PSS_FIXTURES_DIR, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open fixture %s", path);
    buf_t b;
    buf_init(&b, 0);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        assert_int_equal(buf_append(&b, chunk, n), 0);
    fclose(f);
    *len = b.len;
    return buf_steal(&b);
}

/* Hand-written payloads use ' for " to stay readable; none of them needs a literal '. */
static char *json(const char *text)
{
    char *s = xstrdup(text);
    for (char *p = s; *p; p++) {
        if (*p == '\'')
            *p = '"';
    }
    return s;
}

static void parse_ok(const config_t *c, arr_app app, const char *text, wh_event *ev)
{
    char *body = json(text);
    char err[256] = "";
    int rc = webhook_parse(c, app, body, strlen(body), ev, err, sizeof(err));
    free(body);
    if (rc != 0)
        fail_msg("webhook_parse failed: %s", err);
}

static void parse_fails(const config_t *c, arr_app app, const char *text, const char *want_err)
{
    char *body = json(text);
    char err[256] = "";
    wh_event ev;
    int rc = webhook_parse(c, app, body, strlen(body), &ev, err, sizeof(err));
    free(body);
    assert_int_equal(rc, -EINVAL);
    assert_string_equal(err, want_err);
    assert_int_equal(ev.n_folders, 0);
    assert_null(ev.folders);
    wh_event_free(&ev);
}

static void assert_folders(const wh_event *ev, const char *const *want, size_t n)
{
    if (ev->n_folders != n) {
        for (size_t i = 0; i < ev->n_folders; i++)
            print_error("  got folder %s\n", ev->folders[i].path);
        fail_msg("%zu folders, want %zu", ev->n_folders, n);
    }
    for (size_t i = 0; i < n; i++)
        assert_string_equal(ev->folders[i].path, want[i]);
}

/* ---- every fixture ---- */

typedef struct fixture_case {
    const char *file;
    arr_app app;
    const char *event_type;
    bool is_test, ignored;
    const char *root;
    const char *folders[3];
    size_t n_files[3]; /* event files kept in each folder */
} fixture_case;

#define SONARR_TV "/home/user/media/tv/"
#define RADARR_MOVIES "/home/user/media/movies/"

static const fixture_case fixture_cases[] = {
    {"sonarr-test.json", APP_SONARR, "Test", true, false, NULL, {NULL}, {0}},
    {"radarr-test.json", APP_RADARR, "Test", true, false, NULL, {NULL}, {0}},
    {"sonarr-grab.json", APP_SONARR, "Grab", false, true, NULL, {NULL}, {0}},
    {"radarr-grab.json", APP_RADARR, "Grab", false, true, NULL, {NULL}, {0}},
    {"sonarr-health.json", APP_SONARR, "Health", false, true, NULL, {NULL}, {0}},
    {"sonarr-applicationupdate.json", APP_SONARR, "ApplicationUpdate", false, true, NULL, {NULL}, {0}},
    {"sonarr-download.json", APP_SONARR, "Download", false, false, SONARR_TV "Breaking Bad (2008)",
     {SONARR_TV "Breaking Bad (2008)/Season 01"}, {1}},
    {"sonarr-download-upgrade.json", APP_SONARR, "Download", false, false,
     SONARR_TV "Grey's Anatomy (2005)", {SONARR_TV "Grey's Anatomy (2005)/Season 20"}, {2}},
    {"sonarr-download-multi.json", APP_SONARR, "Download", false, false, SONARR_TV "Severance (2022)",
     {SONARR_TV "Severance (2022)/Season 01"}, {3}},
    {"sonarr-rename.json", APP_SONARR, "Rename", false, false, SONARR_TV "Doctor Who (2005)",
     {SONARR_TV "Doctor Who (2005)/Season 1", SONARR_TV "Doctor Who (2005)/Season 01"}, {2, 2}},
    {"sonarr-episodefiledelete.json", APP_SONARR, "EpisodeFileDelete", false, false,
     SONARR_TV "It's Always Sunny in Philadelphia (2005)",
     {SONARR_TV "It's Always Sunny in Philadelphia (2005)/Season 04"}, {1}},
    {"sonarr-seriesdelete.json", APP_SONARR, "SeriesDelete", false, false, SONARR_TV "Firefly (2002)",
     {SONARR_TV "Firefly (2002)"}, {0}},
    {"radarr-download.json", APP_RADARR, "Download", false, false, RADARR_MOVIES "Am\xc3\xa9lie (2001)",
     {RADARR_MOVIES "Am\xc3\xa9lie (2001)"}, {1}},
    {"radarr-download-upgrade.json", APP_RADARR, "Download", false, false,
     RADARR_MOVIES "Schindler's List (1993)", {RADARR_MOVIES "Schindler's List (1993)"}, {2}},
    {"radarr-rename.json", APP_RADARR, "Rename", false, false, RADARR_MOVIES "Heat (1995)",
     {RADARR_MOVIES "Heat (1995)"}, {2}},
    {"radarr-moviefiledelete.json", APP_RADARR, "MovieFileDelete", false, false,
     RADARR_MOVIES "Am\xc3\xa9lie (2001)", {RADARR_MOVIES "Am\xc3\xa9lie (2001)"}, {1}},
    {"radarr-moviedelete.json", APP_RADARR, "MovieDelete", false, false,
     RADARR_MOVIES "The Lord of the Rings - The Fellowship of the Ring (2001)",
     {RADARR_MOVIES "The Lord of the Rings - The Fellowship of the Ring (2001)"}, {0}},
    {"lidarr-download.json", APP_LIDARR, "Download", false, false,
     "/home/user/media/music/Sigur R\xc3\xb3s",
     {"/home/user/media/music/Sigur R\xc3\xb3s/\xc3\x81g\xc3\xa6tis byrjun (1999)"}, {3}},
    {"readarr-download.json", APP_READARR, "Download", false, false,
     "/home/user/media/books/Brandon Sanderson",
     {"/home/user/media/books/Brandon Sanderson/The Way of Kings (2010)"}, {1}},
};

static void check_fixture(const fixture_case *fc)
{
    config_t c = make_config();
    size_t len;
    char *body = read_fixture(fc->file, &len);
    wh_event ev;
    char err[256] = "";
    int rc = webhook_parse(&c, fc->app, body, len, &ev, err, sizeof(err));
    free(body);
    if (rc != 0)
        fail_msg("%s: %s", fc->file, err);
    print_message("  %s\n", fc->file);
    assert_int_equal(ev.app, fc->app);
    assert_string_equal(ev.event_type, fc->event_type);
    assert_int_equal(ev.is_test, fc->is_test);
    assert_int_equal(ev.ignored, fc->ignored);
    if (fc->root)
        assert_string_equal(ev.root, fc->root);
    else
        assert_null(ev.root);
    size_t n = 0;
    while (n < 3 && fc->folders[n])
        n++;
    assert_folders(&ev, fc->folders, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(ev.folders[i].n_files, fc->n_files[i]);
        for (size_t j = 0; j < ev.folders[i].n_files; j++) {
            /* each event file lies in its folder */
            size_t fl = strlen(ev.folders[i].path);
            assert_int_equal(strncmp(ev.folders[i].files[j], ev.folders[i].path, fl), 0);
            assert_int_equal(ev.folders[i].files[j][fl], '/');
        }
    }
    wh_event_free(&ev);
}

static void test_every_fixture_gives_its_expected_folders(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(fixture_cases); i++)
        check_fixture(&fixture_cases[i]);

    /* and no fixture goes unchecked */
    DIR *d = opendir(PSS_FIXTURES_DIR);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 5 || strcmp(de->d_name + l - 5, ".json") != 0)
            continue;
        bool known = false;
        for (size_t i = 0; i < ARRAY_SIZE(fixture_cases); i++)
            known = known || strcmp(fixture_cases[i].file, de->d_name) == 0;
        if (!known)
            fail_msg("fixture %s has no expected folders in this test", de->d_name);
    }
    closedir(d);
}

static void test_fixture_files_are_the_derived_paths(void **state)
{
    (void)state;
    config_t c = make_config();
    size_t len;
    char *body = read_fixture("sonarr-download-upgrade.json", &len);
    wh_event ev;
    assert_int_equal(webhook_parse(&c, APP_SONARR, body, len, &ev, NULL, 0), 0);
    free(body);
    assert_string_equal(ev.title, "Grey's Anatomy");
    assert_string_equal(ev.folders[0].files[0],
                        SONARR_TV "Grey's Anatomy (2005)/Season 20/Grey's Anatomy (2005) - S20E01 - "
                                  "We've Only Just Begun [WEBDL-1080p].mkv");
    assert_string_equal(ev.folders[0].files[1],
                        SONARR_TV "Grey's Anatomy (2005)/Season 20/Grey's Anatomy (2005) - S20E01 - "
                                  "We've Only Just Begun [HDTV-720p].mkv");
    wh_event_free(&ev);
}

static void test_sonarr_test_event_with_windows_path_asks_for_nothing(void **state)
{
    (void)state;
    config_t c = make_config();
    wh_event ev;
    parse_ok(&c, APP_SONARR, "{'series':{'id':1,'title':'Test Title','path':'C:\\\\testpath'},"
                             "'episodes':[{'id':123}],'eventType':'Test'}", &ev);
    assert_true(ev.is_test);
    assert_false(ev.ignored);
    assert_int_equal(ev.n_folders, 0);
    wh_event_free(&ev);

    parse_ok(&c, APP_LIDARR, "{'artist':{'path':'C:\\\\testpath'},'eventType':'TEST'}", &ev);
    assert_true(ev.is_test);
    assert_string_equal(ev.event_type, "TEST");
    wh_event_free(&ev);
}

/* ---- Sonarr ---- */

static void test_download_folder_comes_from_series_path_not_episode_file_path(void **state)
{
    (void)state;
    config_t c = make_config();
    wh_event ev;
    parse_ok(&c, APP_SONARR,
             "{'series':{'title':'Show','path':'/tv/Show/'},"
             "'episodeFile':{'relativePath':'Season 01\\\\Show - S01E01.mkv',"
             "'path':'/downloads/complete/Show.S01E01/Show.S01E01.mkv'},"
             "'isUpgrade':false,'eventType':'download'}", &ev);
    const char *want[] = {"/tv/Show/Season 01"};
    assert_folders(&ev, want, 1);
    assert_string_equal(ev.root, "/tv/Show");
    assert_string_equal(ev.title, "Show");
    assert_int_equal(ev.folders[0].n_files, 1);
    assert_string_equal(ev.folders[0].files[0], "/tv/Show/Season 01/Show - S01E01.mkv");
    wh_event_free(&ev);
}

static void test_download_falls_back_to_file_path_without_relative_path(void **state)
{
    (void)state;
    config_t c = make_config();
    wh_event ev;
    parse_ok(&c, APP_SONARR,
             "{'series':{'path':'/tv/Show'},"
             "'episodeFile':{'path':'/tv/Show/Specials/x.mkv'},'eventType':'Download'}", &ev);
    const char *want[] = {"/tv/Show/Specials"};
    assert_folders(&ev, want, 1);
    wh_event_free(&ev);

    parse_ok(&c, APP_SONARR,
             "{'episodeFile':{'relativePath':'Season 01/x.mkv','path':'/tv/Other/Season 01/x.mkv'},"
             "'eventType':'Download'}", &ev);
    const char *want2[] = {"/tv/Other/Season 01"};
    assert_folders(&ev, want2, 1);
    assert_null(ev.root);
    wh_event_free(&ev);
}

static void test_upgrade_scans_folders_of_deleted_files_too(void **state)
{
    (void)state;
    config_t c = make_config();
    wh_event ev;
    parse_ok(&c, APP_SONARR,
             "{'series':{'path':'/tv/Show'},"
             "'episodeFile':{'relativePath':'Season 02/new.mkv'},"
             "'deletedFiles':[{'relativePath':'Season 2/old.mkv','path':'/tv/Show/Season 2/old.mkv'},"
             "{'path':'/tv/Show/Extras/old2.mkv'}],"
             "'eventType':'Download'}", &ev);
    const char *want[] = {"/tv/Show/Season 02", "/tv/Show/Season 2", "/tv/Show/Extras"};
    assert_folders(&ev, want, 3);
    wh_event_free(&ev);
}

static void test_import_complete_folders_are_deduplicated_in_payload_order(void **state)
{
    (void)state;
    config_t c = make_config();
    wh_event ev;
    parse_ok(&c, APP_SONARR,
             "{'series':{'path':'/tv/Show'},'episodeFiles':["
             "{'relativePath':'Season 02/a.mkv'},{'relativePath':'Season 01/b.mkv'},"
             "{'relativePath':'Season 02/c.mkv'},{'relativePath':'Season 02/c.mkv'}],"
             "'eventType':'Download'}", &ev);
    const char *want[] = {"/tv/Show/Season 02", "/tv/Show/Season 01"};
    assert_folders(&ev, want, 2);
    assert_int_equal(ev.folders[0].n_files, 2);
    assert_string_equal(ev.folders[0].files[1], "/tv/Show/Season 02/c.mkv");
    assert_int_equal(ev.folders[1].n_files, 1);
    wh_event_free(&ev);
}

static void test_rename_scans_old_and_new_folder(void **state)
{
    (void)state;
    config_t c = make_config();
    wh_event ev;
    /* the old path comes from previousPath, else series.path + previousRelativePath */
    parse_ok(&c, APP_SONARR,
             "{'series':{'path':'/tv/Show'},'renamedEpisodeFiles':["
             "{'relativePath':'Season 01/a.mkv','previousPath':'/tv/Show/S1/a.old.mkv',"
             "'previousRelativePath':'ignored/a.old.mkv'},"
             "{'relativePath':'Season 02/b.mkv','previousRelativePath':'S2/b.old.mkv'}],"
             "'eventType':'Rename'}", &ev);
    const char *want[] = {"/tv/Show/S1", "/tv/Show/Season 01", "/tv/Show/S2", "/tv/Show/Season 02"};
    assert_folders(&ev, want, 4);
    assert_string_equal(ev.folders[0].files[0], "/tv/Show/S1/a.old.mkv");
    assert_string_equal(ev.folders[2].files[0], "/tv/Show/S2/b.old.mkv");
    wh_event_free(&ev);
}

static void test_episode_file_delete_scans_its_folder(void **state)
{
    (void)state;
    config_t c = make_config();
    wh_event ev;
    parse_ok(&c, APP_SONARR,
             "{'series':{'path':'/tv/Show'},'episodeFile':{'relativePath':'Season 03/x.mkv'},"
             "'deleteReason':'manual','eventType':'EpisodeFileDelete'}", &ev);
    const char *want[] = {"/tv/Show/Season 03"};
    assert_folders(&ev, want, 1);
    wh_event_free(&ev);
}

static void test_series_delete_without_deleted_files_asks_for_nothing(void **state)
{
    (void)state;
    config_t c = make_config();
    wh_event ev;
    parse_ok(&c, APP_SONARR, "{'series':{'path':'/tv/Show'},'deletedFiles':false,"
                             "'eventType':'SeriesDelete'}", &ev);
    assert_int_equal(ev.n_folders, 0);
    assert_true(ev.ignored);
    wh_event_free(&ev);

    parse_ok(&c, APP_SONARR, "{'series':{'path':'/tv/Show'},'eventType':'SeriesDelete'}", &ev);
    assert_int_equal(ev.n_folders, 0);
    wh_event_free(&ev);

    parse_fails(&c, APP_SONARR, "{'series':{'title':'x'},'deletedFiles':true,'eventType':'SeriesDelete'}",
                "series.path: path is empty");
    parse_fails(&c, APP_SONARR, "{'series':{'path':'/tv/Show'},'deletedFiles':'yes',"
                                "'eventType':'SeriesDelete'}", "deletedFiles: must be a boolean");
}

static void test_events_that_ask_for_nothing_are_ignored(void **state)
{
    (void)state;
    config_t c = make_config();
    const char *types[] = {"Grab", "Health", "HealthRestored", "ApplicationUpdate", "SeriesAdd",
                           "MovieAdded", "ManualInteractionRequired", "SomethingNew", "MovieDelete"};
    for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
        char text[256];
        wh_event ev;
        /* even a broken series.path does not matter for them */
        snprintf(text, sizeof(text), "{'series':{'path':42},'eventType':'%s'}", types[i]);
        parse_ok(&c, APP_SONARR, text, &ev);
        assert_true(ev.ignored);
        assert_false(ev.is_test);
        assert_int_equal(ev.n_folders, 0);
        assert_string_equal(ev.event_type, types[i]);
        wh_event_free(&ev);
    }
    wh_event ev;
    parse_ok(&c, APP_SONARR, "{'series':{'path':'/tv/Show'}}", &ev);
    assert_true(ev.ignored);
    assert_string_equal(ev.event_type, "");
    wh_event_free(&ev);
}

/* ---- Radarr ---- */

static void test_radarr_download_uses_folder_path_and_relative_path(void **state)
{
    (void)state;
    config_t c = make_config();
    wh_event ev;
    parse_ok(&c, APP_RADARR,
             "{'movie':{'title':'Heat','folderPath':'/movies/Heat (1995)'},"
             "'movieFile':{'relativePath':'Heat (1995).mkv','path':'/downloads/Heat.1995.mkv'},"
             "'eventType':'Download'}", &ev);
    const char *want[] = {"/movies/Heat (1995)"};
    assert_folders(&ev, want, 1);
    assert_string_equal(ev.folders[0].files[0], "/movies/Heat (1995)/Heat (1995).mkv");
    assert_string_equal(ev.title, "Heat");
    wh_event_free(&ev);
}

static void test_radarr_rename_scans_movie_folder_and_old_folders(void **state)
{
    (void)state;
    config_t c = make_config();
    wh_event ev;
    parse_ok(&c, APP_RADARR,
             "{'movie':{'folderPath':'/movies/Heat (1995)'},'renamedMovieFiles':["
             "{'relativePath':'Sub/Heat.mkv','previousPath':'/movies/Old Heat/Heat.old.mkv'}],"
             "'eventType':'Rename'}", &ev);
    const char *want[] = {"/movies/Heat (1995)", "/movies/Old Heat"};
    assert_folders(&ev, want, 2);
    assert_string_equal(ev.folders[0].files[0], "/movies/Heat (1995)/Sub/Heat.mkv");
    wh_event_free(&ev);
}

static void test_radarr_movie_delete_needs_deleted_files(void **state)
{
    (void)state;
    config_t c = make_config();
    wh_event ev;
    parse_ok(&c, APP_RADARR, "{'movie':{'folderPath':'/movies/X'},'deletedFiles':false,"
                             "'movieFolderSize':0,'eventType':'MovieDelete'}", &ev);
    assert_int_equal(ev.n_folders, 0);
    wh_event_free(&ev);
}

/* ---- Lidarr / Readarr ---- */

static void test_lidarr_rename_scans_previous_and_new_folders(void **state)
{
    (void)state;
    config_t c = make_config();
    wh_event ev;
    parse_ok(&c, APP_LIDARR,
             "{'artist':{'name':'A','path':'/music/A'},'renamedTrackFiles':["
             "{'previousPath':'/music/A/Old Album/01.flac','path':'/music/A/New Album (2001)/01.flac'},"
             "{'previousPath':'/music/A/Old Album/02.flac','path':'/music/A/New Album (2001)/02.flac'}],"
             "'eventType':'Rename'}", &ev);
    const char *want[] = {"/music/A/Old Album", "/music/A/New Album (2001)"};
    assert_folders(&ev, want, 2);
    assert_int_equal(ev.folders[1].n_files, 2);
    assert_string_equal(ev.title, "A");
    wh_event_free(&ev);
}

static void test_lidarr_retag_scans_the_track_folder(void **state)
{
    (void)state;
    config_t c = make_config();
    wh_event ev;
    parse_ok(&c, APP_LIDARR,
             "{'artist':{'path':'/music/A'},'trackFile':{'id':3,'path':'/music/A/Album/03.flac'},"
             "'eventType':'Retag'}", &ev);
    const char *want[] = {"/music/A/Album"};
    assert_folders(&ev, want, 1);
    wh_event_free(&ev);
}

static void test_lidarr_album_delete_scans_artist_only_when_files_deleted(void **state)
{
    (void)state;
    config_t c = make_config();
    wh_event ev;
    parse_ok(&c, APP_LIDARR, "{'artist':{'path':'/music/A'},'album':{'title':'X'},'deletedFiles':true,"
                             "'eventType':'AlbumDelete'}", &ev);
    const char *want[] = {"/music/A"};
    assert_folders(&ev, want, 1);
    assert_int_equal(ev.folders[0].n_files, 0);
    wh_event_free(&ev);

    parse_ok(&c, APP_LIDARR, "{'artist':{'path':'/music/A'},'deletedFiles':false,"
                             "'eventType':'ArtistDelete'}", &ev);
    assert_int_equal(ev.n_folders, 0);
    wh_event_free(&ev);
}

static void test_readarr_book_file_delete_scans_the_book_folder(void **state)
{
    (void)state;
    config_t c = make_config();
    wh_event ev;
    parse_ok(&c, APP_READARR,
             "{'author':{'name':'B','path':'/books/B'},'book':{'title':'T'},"
             "'bookFile':{'path':'/books/B/T (2010)/T.epub'},'eventType':'BookFileDelete'}", &ev);
    const char *want[] = {"/books/B/T (2010)"};
    assert_folders(&ev, want, 1);
    wh_event_free(&ev);
}

static void test_readarr_author_delete_scans_author_folder(void **state)
{
    (void)state;
    config_t c = make_config();
    wh_event ev;
    parse_ok(&c, APP_READARR, "{'author':{'path':'/books/B'},'deletedFiles':true,"
                              "'eventType':'AuthorDelete'}", &ev);
    const char *want[] = {"/books/B"};
    assert_folders(&ev, want, 1);
    wh_event_free(&ev);

    parse_ok(&c, APP_READARR, "{'author':{'path':'/books/B'},'book':{},'deletedFiles':true,"
                              "'eventType':'BookDelete'}", &ev);
    assert_folders(&ev, want, 1);
    wh_event_free(&ev);
}

/* ---- Windows paths ---- */

static void test_windows_drive_path_maps_through_path_replacements(void **state)
{
    (void)state;
    config_t c = make_config();
    cfg_replacement repl[] = {{"C:/Media/TV", "/tv"}};
    c.path_repl = (cfg_replacements){repl, 1};
    wh_event ev;
    parse_ok(&c, APP_SONARR,
             "{'series':{'path':'c:\\\\media\\\\tv\\\\Show'},"
             "'episodeFile':{'relativePath':'Season 01\\\\x.mkv'},'eventType':'Download'}", &ev);
    const char *want[] = {"/tv/Show/Season 01"};
    assert_folders(&ev, want, 1);
    assert_string_equal(ev.root, "/tv/Show");
    wh_event_free(&ev);

    /* Lidarr's absolute file paths too */
    parse_ok(&c, APP_LIDARR, "{'trackFiles':[{'path':'C:\\\\Media\\\\TV\\\\x\\\\y.flac'}],"
                             "'eventType':'Download'}", &ev);
    const char *want2[] = {"/tv/x"};
    assert_folders(&ev, want2, 1);
    wh_event_free(&ev);
}

static void test_windows_drive_path_without_replacement_is_refused(void **state)
{
    (void)state;
    config_t c = make_config();
    parse_fails(&c, APP_SONARR,
                "{'series':{'path':'C:\\\\Media\\\\TV\\\\Show'},"
                "'episodeFile':{'relativePath':'Season 01\\\\x.mkv'},'eventType':'Download'}",
                "series.path: path is not absolute");
    parse_fails(&c, APP_RADARR,
                "{'movieFile':{'path':'D:\\\\Movies\\\\X\\\\x.mkv'},'eventType':'Download'}",
                "movieFile.path: path is not absolute");
}

/* ---- hostile or broken input ---- */

static void test_dot_dot_component_is_refused(void **state)
{
    (void)state;
    config_t c = make_config();
    parse_fails(&c, APP_SONARR,
                "{'series':{'path':'/tv/Show'},'episodeFile':{'relativePath':'Season 01/../../../etc/x'},"
                "'eventType':'Download'}",
                "episodeFile.relativePath: path has a '.' or '..' component");
    parse_fails(&c, APP_SONARR, "{'series':{'path':'/tv/../Show'},'eventType':'SeriesDelete',"
                                "'deletedFiles':true}",
                "series.path: path has a '.' or '..' component");
    parse_fails(&c, APP_LIDARR, "{'trackFiles':[{'path':'/music/A/x.flac'},{'path':'/music/./y.flac'}],"
                                "'eventType':'Download'}",
                "trackFiles[1].path: path has a '.' or '..' component");
}

static void test_cr_lf_or_nul_in_a_path_is_refused(void **state)
{
    (void)state;
    config_t c = make_config();
    parse_fails(&c, APP_SONARR,
                "{'series':{'path':'/tv/Show\\r\\n<0>forged'},'episodeFile':{'relativePath':'a/b.mkv'},"
                "'eventType':'Download'}",
                "series.path: path contains a control character");
    parse_fails(&c, APP_RADARR,
                "{'movie':{'folderPath':'/movies/X'},'renamedMovieFiles':[{'relativePath':'x.mkv',"
                "'previousPath':'/movies/X/a\\nb.mkv'}],'eventType':'Rename'}",
                "renamedMovieFiles[0].previousPath: path contains a control character");
    /* a NUL would otherwise cut the string short and hide the rest from the check */
    parse_fails(&c, APP_SONARR,
                "{'series':{'path':'/tv/Show'},'episodeFile':{'relativePath':'a\\u0000/../../x.mkv'},"
                "'eventType':'Download'}",
                "episodeFile.relativePath: path contains a control character");

    const char raw[] = "{\"series\":{\"path\":\"/tv/Sh\0ow\"},\"eventType\":\"SeriesDelete\","
                       "\"deletedFiles\":true}";
    wh_event ev;
    char err[128] = "";
    assert_int_equal(webhook_parse(&c, APP_SONARR, raw, sizeof(raw) - 1, &ev, err, sizeof(err)),
                     -EINVAL);
    assert_string_equal(err, "series.path: path contains a control character");

    /* a NUL in a text field nobody reads changes nothing */
    parse_ok(&c, APP_SONARR, "{'series':{'path':'/tv/Show','overview':'a\\u0000b'},"
                             "'episodeFile':{'relativePath':'S1/x.mkv'},'eventType':'Download'}", &ev);
    assert_int_equal(ev.n_folders, 1);
    wh_event_free(&ev);
}

/* ---- reading only the members the parser uses ---- */

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool last_was_whole; /* the last parse_both_ways left the body to the whole-body parse */

/* Parses body both ways (only the members read; cJSON's tree of everything) and checks they
 * agree on the outcome, the message and the event. Returns the outcome. */
static int parse_both_ways(arr_app app, const char *body, size_t len, char *err, size_t errlen)
{
    config_t c = make_config();
    wh_event a, b;
    char err_b[256] = "";
    err[0] = '\0';
    unsigned long whole = webhook_whole_parses;
    int rc = webhook_parse(&c, app, body, len, &a, err, errlen);
    last_was_whole = webhook_whole_parses != whole;
    webhook_selective = false;
    int rc_b = webhook_parse(&c, app, body, len, &b, err_b, sizeof(err_b));
    webhook_selective = true;
    if (rc != rc_b || strcmp(err, err_b) != 0)
        fail_msg("%.60s...: %d '%s', whole body %d '%s'", body, rc, err, rc_b, err_b);
    assert_true(same_str(a.event_type, b.event_type));
    assert_true(same_str(a.root, b.root));
    assert_true(same_str(a.title, b.title));
    assert_true(same_str(a.label, b.label));
    assert_int_equal(a.is_test, b.is_test);
    assert_int_equal(a.ignored, b.ignored);
    assert_int_equal(a.n_folders, b.n_folders);
    for (size_t i = 0; i < a.n_folders; i++) {
        assert_string_equal(a.folders[i].path, b.folders[i].path);
        assert_int_equal(a.folders[i].n_files, b.folders[i].n_files);
        for (size_t k = 0; k < a.folders[i].n_files; k++)
            assert_string_equal(a.folders[i].files[k], b.folders[i].files[k]);
    }
    wh_event_free(&a);
    wh_event_free(&b);
    return rc;
}

static int both_ways(const char *text, char *err)
{
    char *body = json(text);
    int rc = parse_both_ways(APP_SONARR, body, strlen(body), err, 256);
    free(body);
    return rc;
}

static void test_reading_only_used_members_agrees_with_parsing_everything(void **state)
{
    (void)state;
    char err[256];
    for (size_t i = 0; i < ARRAY_SIZE(fixture_cases); i++) {
        size_t len;
        char *body = read_fixture(fixture_cases[i].file, &len);
        assert_int_equal(parse_both_ways(fixture_cases[i].app, body, len, err, sizeof(err)), 0);
        assert_false(last_was_whole); /* real payloads take the short way */
        free(body);
    }
#define DL_HEAD "{'series':{'path':'/tv/Show'},'episodeFile':{'relativePath':'S1/x.mkv'},"
    /* valid: members nobody reads, in every JSON shape */
    assert_int_equal(both_ways(DL_HEAD "'a':[1,-2.5e+3,0,true,false,null,{},[],'\\u00e9\\ud83d\\ude00\\n'],"
                               "'b':{'c':{'d':[[]]}},'eventType':'Download'}", err), 0);
    /* invalid JSON in a member nobody reads is still invalid JSON */
    static const char *const bad[] = {
        DL_HEAD "'release':tru,'eventType':'Download'}",
        DL_HEAD "'release':{'a' 1},'eventType':'Download'}",
        DL_HEAD "'release':[1,],'eventType':'Download'}",
        DL_HEAD "'release':01x,'eventType':'Download'}",
        DL_HEAD "'release':'\\x','eventType':'Download'}",
        DL_HEAD "'release':{'a':1}}trailing",
        DL_HEAD "'release':[1 2],'eventType':'Download'}",
        DL_HEAD "'eventType':'Download'",
        DL_HEAD "'eventType':'Download',}",
        "{'series':{'path':'/tv/Show','images':[{'url':'a'},]},'episodeFile':{'relativePath':'S1/x.mkv'},"
        "'eventType':'Download'}",
        "{'series':{'path':'/tv/Show'},'episodeFile':{'mediaInfo':{'width' 1920},'relativePath':'S1/x.mkv'},"
        "'eventType':'Download'}",
        "{'series':{'path':'/tv/Show'},'episodeFiles':[{'relativePath':'S1/x.mkv','size':1e}],"
        "'eventType':'Download'}",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        assert_int_equal(both_ways(bad[i], err), -EINVAL);
        assert_string_equal(err, "body is not valid JSON");
    }
    /* where cJSON is more lenient than RFC 8259, the outcome is still cJSON's: a raw tab in a
     * skipped string is taken as cJSON takes it; a lone surrogate, a 64-digit number and a bad
     * \u escape (read as 0, refused where it lands in a path) go to the whole-body parse */
    assert_int_equal(both_ways(DL_HEAD "'r':'a\tb','eventType':'Download'}", err), 0);
    assert_int_equal(both_ways(DL_HEAD "'r':'\\udc00','eventType':'Download'}", err), -EINVAL);
    assert_true(last_was_whole);
    (void)both_ways(DL_HEAD "'r':1234567890123456789012345678901234567890123456789012345678901234,"
                    "'eventType':'Download'}", err);
    assert_int_equal(both_ways(DL_HEAD "'r':'\\uzzzz','eventType':'Download'}", err), 0);
    assert_true(last_was_whole);
    assert_int_equal(both_ways("{'series':{'path':'/tv/Show'},'episodeFile':{'relativePath':'S1/x\\uzz/../y.mkv'},"
                               "'eventType':'Download'}", err), -EINVAL);
    assert_string_equal(err, "episodeFile.relativePath: path contains a control character");
    /* a key written with escapes is the same key */
    assert_int_equal(both_ways("{'\\u0073eries':{'path':'/tv/Esc'},'episodeFile':{'relativePath':'S1/x.mkv'},"
                               "'eventType':'Download'}", err), 0);
    assert_true(last_was_whole);
    /* the first of two same keys counts, as cJSON looks it up */
    assert_int_equal(both_ways("{'series':{'path':'/tv/One'},'series':{'path':'/tv/Two'},"
                               "'episodeFile':{'relativePath':'S1/x.mkv'},'eventType':'Download'}", err), 0);
    /* inside the members read: fields of the root and file objects, in objects and arrays */
    assert_int_equal(both_ways("{'series':{'id':1,'path':'/tv/A','title':'A','path':'/tv/B'},"
                               "'episodeFiles':[{'path':'/tv/A/S1/a.mkv','mediaInfo':{'x':[1,2]}},"
                               "{'relativePath':'S2/b.mkv'}],'deletedFiles':[{'path':'/tv/A/S0/c.mkv'}],"
                               "'eventType':'Download'}", err), 0);
    assert_int_equal(both_ways("{'series':{'path':'/tv/A'},'episodeFiles':[{'relativePath':'S1/a.mkv'},7],"
                               "'eventType':'Download'}", err), -EINVAL);
    assert_int_equal(both_ways("{'series':'/tv/A','eventType':'Download'}", err), -EINVAL);
    assert_int_equal(both_ways("{'series':{'path':'/tv/A','title':7},'episodeFile':{'relativePath':'S1/a.mkv'},"
                               "'eventType':'SeriesDelete','deletedFiles':true}", err), 0);
    /* not an object, empty, whitespace and a BOM around the body */
    assert_int_equal(both_ways("[1]", err), -EINVAL);
    assert_string_equal(err, "body is not a JSON object");
    assert_int_equal(both_ways("{}", err), 0); /* no eventType: nothing asked */
    assert_int_equal(both_ways(" \r\n{'eventType':'Test'} \n", err), 0);
    assert_int_equal(both_ways("\xef\xbb\xbf{'eventType':'Test'}", err), 0);
    assert_int_equal(both_ways("{'eventType':\xef\xbb\xbf'Test'}", err), -EINVAL);
#undef DL_HEAD
}

static void test_deep_nesting_is_refused_before_parsing(void **state)
{
    (void)state;
    config_t c = make_config();
    buf_t b;
    buf_init(&b, 0);
    buf_appends(&b, "{\"eventType\":\"Grab\",\"x\":");
    for (int i = 0; i < 63; i++)
        buf_appends(&b, "[");
    for (int i = 0; i < 63; i++)
        buf_appends(&b, "]");
    buf_appends(&b, "}");
    wh_event ev;
    char err[128] = "";
    assert_int_equal(webhook_parse(&c, APP_SONARR, b.data, b.len, &ev, err, sizeof(err)), 0);
    wh_event_free(&ev);

    buf_reset(&b);
    buf_appends(&b, "{\"eventType\":\"Grab\",\"x\":");
    for (int i = 0; i < 64; i++)
        buf_appends(&b, "[");
    for (int i = 0; i < 64; i++)
        buf_appends(&b, "]");
    buf_appends(&b, "}");
    assert_int_equal(webhook_parse(&c, APP_SONARR, b.data, b.len, &ev, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "JSON nested too deeply");

    /* brackets inside strings do not count */
    buf_reset(&b);
    buf_appends(&b, "{\"eventType\":\"Grab\",\"x\":\"");
    for (int i = 0; i < 200; i++)
        buf_appends(&b, "[{\\\"");
    buf_appends(&b, "\"}");
    assert_int_equal(webhook_parse(&c, APP_SONARR, b.data, b.len, &ev, err, sizeof(err)), 0);
    wh_event_free(&ev);

    /* far past cJSON's own limit */
    buf_reset(&b);
    for (int i = 0; i < 100000; i++)
        buf_appends(&b, "[");
    assert_int_equal(webhook_parse(&c, APP_SONARR, b.data, b.len, &ev, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "JSON nested too deeply");
    buf_free(&b);
}

static void test_body_that_is_not_a_json_object_is_refused(void **state)
{
    (void)state;
    config_t c = make_config();
    parse_fails(&c, APP_SONARR, "['eventType','Download']", "body is not a JSON object");
    parse_fails(&c, APP_SONARR, "'Download'", "body is not a JSON object");
    parse_fails(&c, APP_SONARR, "eventType=Download", "body is not valid JSON");
    parse_fails(&c, APP_SONARR, "{'eventType':'Download'", "body is not valid JSON");
    parse_fails(&c, APP_SONARR, "{'eventType':'Grab'} {}", "body is not valid JSON");
    parse_fails(&c, APP_SONARR, "", "body is not valid JSON");
    wh_event ev;
    parse_ok(&c, APP_SONARR, " \r\n{'eventType':'Grab'}\n ", &ev);
    assert_true(ev.ignored);
    wh_event_free(&ev);
}

static void test_fields_of_the_wrong_type_are_refused_by_name(void **state)
{
    (void)state;
    config_t c = make_config();
    parse_fails(&c, APP_SONARR, "{'eventType':5}", "eventType must be a string");
    parse_fails(&c, APP_SONARR,
                "{'series':{'path':42},'episodeFile':{'relativePath':'a/b.mkv'},'eventType':'Download'}",
                "series.path: must be a string");
    parse_fails(&c, APP_SONARR, "{'series':'x','eventType':'Download'}", "series: must be an object");
    parse_fails(&c, APP_SONARR, "{'series':{'path':'/tv/S'},'episodeFiles':'x','eventType':'Download'}",
                "episodeFiles: must be an array");
    parse_fails(&c, APP_SONARR, "{'series':{'path':'/tv/S'},'episodeFiles':[{'relativePath':'a/b'},7],"
                                "'eventType':'Download'}", "episodeFiles[1]: must be an object");
    parse_fails(&c, APP_SONARR, "{'series':{'path':'/tv/S'},'episodeFile':{'relativePath':['a']},"
                                "'eventType':'Download'}", "episodeFile.relativePath: must be a string");
    parse_fails(&c, APP_SONARR, "{'series':{'path':'/tv/S'},'episodeFile':[],'eventType':'Download'}",
                "episodeFile: must be an object");
    parse_fails(&c, APP_RADARR, "{'movie':{'folderPath':true},'eventType':'MovieFileDelete'}",
                "movie.folderPath: must be a string");
    parse_fails(&c, APP_SONARR, "{'series':{'path':'/tv/S'},'episodeFile':{'relativePath':'a/b'},"
                                "'deletedFiles':true,'eventType':'Download'}",
                "deletedFiles: must be an array");
    /* null is what Newtonsoft would have left out: absent, not wrong */
    wh_event ev;
    parse_ok(&c, APP_SONARR, "{'series':{'path':'/tv/S'},'episodeFile':{'relativePath':'a/b','path':null},"
                             "'deletedFiles':null,'eventType':'Download'}", &ev);
    assert_int_equal(ev.n_folders, 1);
    wh_event_free(&ev);
}

static void test_download_without_any_path_is_refused(void **state)
{
    (void)state;
    config_t c = make_config();
    parse_fails(&c, APP_SONARR, "{'series':{'path':'/tv/S'},'eventType':'Download'}",
                "no file path in payload");
    parse_fails(&c, APP_SONARR, "{'series':{'path':'/tv/S'},'episodeFile':{'id':1},'eventType':'Download'}",
                "no file path in payload");
    parse_fails(&c, APP_SONARR, "{'episodeFile':{'relativePath':'S1/x.mkv'},'eventType':'Download'}",
                "no file path in payload");
    /* a Sonarr payload posted to the Radarr URL */
    parse_fails(&c, APP_RADARR, "{'series':{'path':'/tv/S'},'episodeFile':{'relativePath':'S1/x.mkv'},"
                                "'eventType':'Download'}", "no file path in payload");
    parse_fails(&c, APP_MANUAL, "{'eventType':'Download'}", "no webhook payload format for 'manual'");
}

static void test_non_ascii_bytes_pass_through_unchanged(void **state)
{
    (void)state;
    config_t c = make_config();
    wh_event ev;
    parse_ok(&c, APP_RADARR,
             "{'movie':{'folderPath':'/movies/Am\\u00e9lie (2001)'},"
             "'movieFile':{'relativePath':'Am\xc3\xa9lie \xe2\x80\x94 \xf0\x9f\x8e\xac.mkv'},"
             "'eventType':'Download'}", &ev);
    const char *want[] = {"/movies/Am\xc3\xa9lie (2001)"};
    assert_folders(&ev, want, 1);
    assert_string_equal(ev.folders[0].files[0],
                        "/movies/Am\xc3\xa9lie (2001)/Am\xc3\xa9lie \xe2\x80\x94 \xf0\x9f\x8e\xac.mkv");
    wh_event_free(&ev);
}

/* ---- scope and collapse ---- */

static void test_scan_scope_root_scans_the_series_folder_with_files_attached(void **state)
{
    (void)state;
    config_t c = make_config();
    c.scan_scope = SCAN_SCOPE_ROOT;
    size_t len;
    char *body = read_fixture("sonarr-download-multi.json", &len);
    wh_event ev;
    assert_int_equal(webhook_parse(&c, APP_SONARR, body, len, &ev, NULL, 0), 0);
    free(body);
    const char *want[] = {SONARR_TV "Severance (2022)"};
    assert_folders(&ev, want, 1);
    assert_int_equal(ev.folders[0].n_files, 3);
    wh_event_free(&ev);

    body = read_fixture("sonarr-rename.json", &len);
    assert_int_equal(webhook_parse(&c, APP_SONARR, body, len, &ev, NULL, 0), 0);
    free(body);
    const char *want2[] = {SONARR_TV "Doctor Who (2005)"};
    assert_folders(&ev, want2, 1);
    assert_int_equal(ev.folders[0].n_files, 4);
    wh_event_free(&ev);

    /* without a root in the payload the file folders stay */
    parse_ok(&c, APP_LIDARR, "{'trackFiles':[{'path':'/music/A/B/1.flac'}],'eventType':'Download'}", &ev);
    const char *want3[] = {"/music/A/B"};
    assert_folders(&ev, want3, 1);
    wh_event_free(&ev);
}

static void test_more_folders_than_the_limit_collapse_to_the_root(void **state)
{
    (void)state;
    config_t c = make_config();
    c.max_folders_per_event = 2;
#define COLLAPSE_PAYLOAD                                                                       \
    "{'series':{'path':'/tv/S'},'episodeFiles':["                                              \
    "{'relativePath':'S1/a.mkv'},{'relativePath':'S2/b.mkv'},"                                 \
    "{'relativePath':'S1/c.mkv'}%s],'eventType':'Download'}"
    char text[512];
    wh_event ev;

    snprintf(text, sizeof(text), COLLAPSE_PAYLOAD, "");
    parse_ok(&c, APP_SONARR, text, &ev);
    const char *two[] = {"/tv/S/S1", "/tv/S/S2"};
    assert_folders(&ev, two, 2);
    wh_event_free(&ev);

    snprintf(text, sizeof(text), COLLAPSE_PAYLOAD, ",{'relativePath':'S3/d.mkv'}");
    parse_ok(&c, APP_SONARR, text, &ev);
    const char *root[] = {"/tv/S"};
    assert_folders(&ev, root, 1);
    assert_int_equal(ev.folders[0].n_files, 4);
    assert_string_equal(ev.folders[0].files[3], "/tv/S/S3/d.mkv");
    wh_event_free(&ev);

    parse_fails(&c, APP_LIDARR, "{'trackFiles':[{'path':'/m/1/a'},{'path':'/m/2/a'},{'path':'/m/3/a'}],"
                                "'eventType':'Download'}",
                "more than 2 folders and no artist.path to collapse to");
}

static void test_many_files_keep_at_most_the_file_limit_per_folder(void **state)
{
    (void)state;
    config_t c = make_config();
    c.max_folders_per_event = 10000;
    buf_t b;
    buf_init(&b, 0);
    buf_appends(&b, "{\"series\":{\"path\":\"/tv/S\"},\"episodeFiles\":[");
    for (int i = 0; i < 20000; i++)
        buf_printf(&b, "%s{\"relativePath\":\"S%d/e%d.mkv\"}", i ? "," : "", i % 5000, i);
    buf_appends(&b, "],\"eventType\":\"Download\"}");
    wh_event ev;
    char err[128] = "";
    assert_int_equal(webhook_parse(&c, APP_SONARR, b.data, b.len, &ev, err, sizeof(err)), 0);
    assert_int_equal(ev.n_folders, 5000);
    assert_int_equal(ev.folders[4999].n_files, 4);
    wh_event_free(&ev);

    buf_reset(&b);
    buf_appends(&b, "{\"series\":{\"path\":\"/tv/S\"},\"episodeFiles\":[");
    for (int i = 0; i < 100; i++)
        buf_printf(&b, "%s{\"relativePath\":\"S1/e%d.mkv\"}", i ? "," : "", i);
    buf_appends(&b, "],\"eventType\":\"Download\"}");
    assert_int_equal(webhook_parse(&c, APP_SONARR, b.data, b.len, &ev, err, sizeof(err)), 0);
    assert_int_equal(ev.n_folders, 1);
    assert_int_equal(ev.folders[0].n_files, WEBHOOK_MAX_FILES);
    wh_event_free(&ev);
    buf_free(&b);
}

/* ---- what each event is about (the page's and the history's title) ---- */

static const struct {
    const char *file;
    arr_app app;
    const char *label; /* NULL: the payload names nothing */
} fixture_labels[] = {
    {"sonarr-test.json", APP_SONARR, "Test Title S01E01 \xc2\xb7 Test title"},
    {"radarr-test.json", APP_RADARR, "Test Title (1970)"},
    {"sonarr-grab.json", APP_SONARR, "Breaking Bad S01E02 \xc2\xb7 Cat's in the Bag..."},
    {"radarr-grab.json", APP_RADARR, "Heat (1995)"},
    {"sonarr-health.json", APP_SONARR, NULL},
    {"sonarr-applicationupdate.json", APP_SONARR, NULL},
    {"sonarr-download.json", APP_SONARR, "Breaking Bad S01E01 \xc2\xb7 Pilot"},
    {"sonarr-download-upgrade.json", APP_SONARR, "Grey's Anatomy S20E01 \xc2\xb7 We've Only Just Begun"},
    {"sonarr-download-multi.json", APP_SONARR, "Severance S01E01-E03"},
    {"sonarr-rename.json", APP_SONARR, "Doctor Who (2005)"},
    {"sonarr-episodefiledelete.json", APP_SONARR,
     "It's Always Sunny in Philadelphia S04E03 \xc2\xb7 Mac's Banging the Waitress"},
    {"sonarr-seriesdelete.json", APP_SONARR, "Firefly"},
    {"radarr-download.json", APP_RADARR, "Am\xc3\xa9lie (2001)"},
    {"radarr-download-upgrade.json", APP_RADARR, "Schindler's List (1993)"},
    {"radarr-rename.json", APP_RADARR, "Heat (1995)"},
    {"radarr-moviefiledelete.json", APP_RADARR, "Am\xc3\xa9lie (2001)"},
    {"radarr-moviedelete.json", APP_RADARR, "The Lord of the Rings: The Fellowship of the Ring (2001)"},
    {"lidarr-download.json", APP_LIDARR, "Sigur R\xc3\xb3s \xe2\x80\x93 \xc3\x81g\xc3\xa6tis byrjun"},
    {"readarr-download.json", APP_READARR, "Brandon Sanderson \xe2\x80\x93 The Way of Kings"},
};

static void test_every_fixture_leads_with_what_it_is(void **state)
{
    (void)state;
    config_t c = make_config();
    for (size_t i = 0; i < ARRAY_SIZE(fixture_labels); i++) {
        size_t len;
        char *body = read_fixture(fixture_labels[i].file, &len);
        wh_event ev;
        char err[256] = "";
        if (webhook_parse(&c, fixture_labels[i].app, body, len, &ev, err, sizeof(err)) != 0)
            fail_msg("%s: %s", fixture_labels[i].file, err);
        free(body);
        print_message("  %s: %s\n", fixture_labels[i].file, ev.label ? ev.label : "(none)");
        if (fixture_labels[i].label)
            assert_string_equal(ev.label, fixture_labels[i].label);
        else
            assert_null(ev.label);
        wh_event_free(&ev);
    }
    /* and no fixture goes without its label here */
    DIR *d = opendir(PSS_FIXTURES_DIR);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strstr(de->d_name, ".json"))
            continue;
        bool known = false;
        for (size_t i = 0; i < ARRAY_SIZE(fixture_labels); i++)
            known = known || strcmp(fixture_labels[i].file, de->d_name) == 0;
        if (!known)
            fail_msg("fixture %s has no expected label in this test", de->d_name);
    }
    closedir(d);
}

static void label_is(arr_app app, const char *text, const char *want)
{
    config_t c = make_config();
    wh_event ev;
    parse_ok(&c, app, text, &ev);
    if (want)
        assert_string_equal(ev.label, want);
    else
        assert_null(ev.label);
    wh_event_free(&ev);
}

static void test_episodes_read_as_one_range(void **state)
{
    (void)state;
    const char *head = "{'eventType':'Grab','series':{'title':'The Expanse','path':'/tv/E'},'episodes':[";
    char text[512];
    /* one episode with its title; two of one season; two seasons; unsorted */
    snprintf(text, sizeof text, "%s{'seasonNumber':2,'episodeNumber':5,'title':'Doors & Corners'}]}", head);
    label_is(APP_SONARR, text, "The Expanse S02E05 \xc2\xb7 Doors & Corners");
    snprintf(text, sizeof text, "%s{'seasonNumber':2,'episodeNumber':6,'title':'B'},"
             "{'seasonNumber':2,'episodeNumber':5,'title':'A'}]}", head);
    label_is(APP_SONARR, text, "The Expanse S02E05-E06");
    snprintf(text, sizeof text, "%s{'seasonNumber':2,'episodeNumber':1},{'seasonNumber':1,'episodeNumber':10}]}",
             head);
    label_is(APP_SONARR, text, "The Expanse S01E10-S02E01");
    /* the same episode twice is one; numbers past 99 keep their digits */
    snprintf(text, sizeof text, "%s{'seasonNumber':0,'episodeNumber':123,'title':'Special'},"
             "{'seasonNumber':0,'episodeNumber':123,'title':'Special'}]}", head);
    label_is(APP_SONARR, text, "The Expanse S00E123 \xc2\xb7 Special");
    /* episodes without usable numbers (missing, negative, fractional, strings) are left out */
    snprintf(text, sizeof text, "%s{'seasonNumber':1},{'seasonNumber':-1,'episodeNumber':2},"
             "{'seasonNumber':1.5,'episodeNumber':2},{'seasonNumber':'1','episodeNumber':'2'},7]}", head);
    label_is(APP_SONARR, text, "The Expanse");
    label_is(APP_SONARR, "{'eventType':'Grab','series':{'title':'S','path':'/tv/S'},'episodes':{'a':1}}", "S");
}

static void test_each_app_names_its_item_its_own_way(void **state)
{
    (void)state;
    label_is(APP_RADARR, "{'eventType':'Grab','movie':{'title':'Inception','year':2010}}", "Inception (2010)");
    label_is(APP_RADARR, "{'eventType':'Grab','movie':{'title':'Undated','year':0}}", "Undated");
    label_is(APP_LIDARR, "{'eventType':'Grab','artist':{'name':'Low'},'album':{'title':'Things We Lost'}}",
             "Low \xe2\x80\x93 Things We Lost");
    label_is(APP_LIDARR, "{'eventType':'Test','artist':{'name':'Test Name','path':'C:\\\\testpath'},"
             "'albums':[{'id':123,'title':'Test title'}]}", "Test Name");
    label_is(APP_READARR, "{'eventType':'Grab','author':{'name':'Ursula K. Le Guin'},'book':{'title':'The Dispossessed'}}",
             "Ursula K. Le Guin \xe2\x80\x93 The Dispossessed");
    /* a title of the wrong type is left out, never refused */
    label_is(APP_RADARR, "{'eventType':'Grab','movie':{'title':7,'year':'2010'}}", NULL);
    label_is(APP_LIDARR, "{'eventType':'Grab','artist':{'name':'A'},'album':{'title':['x']}}", "A");
}

static void test_a_label_is_one_bounded_line(void **state)
{
    (void)state;
    config_t c = make_config();
    /* control characters become spaces */
    label_is(APP_RADARR, "{'eventType':'Grab','movie':{'title':'Line\\nBreak\\tTab','year':1999}}",
             "Line Break Tab (1999)");
    /* a huge title is cut to 300 bytes, never inside a character (each "é" is two bytes and the
     * cut falls inside the 150th) */
    buf_t b;
    buf_init(&b, 0);
    buf_appends(&b, "{\"eventType\":\"Grab\",\"movie\":{\"title\":\"x");
    for (int i = 0; i < 400; i++)
        buf_appends(&b, "\xc3\xa9");
    buf_appends(&b, "\"}}");
    wh_event ev;
    char err[256];
    assert_int_equal(webhook_parse(&c, APP_RADARR, b.data, b.len, &ev, err, sizeof err), 0);
    assert_int_equal(strlen(ev.label), 299);
    assert_int_equal((unsigned char)ev.label[297], 0xc3);
    assert_int_equal((unsigned char)ev.label[298], 0xa9);
    wh_event_free(&ev);
    buf_free(&b);
}

static void test_app_names_round_trip(void **state)
{
    (void)state;
    for (int i = 0; i < APP_COUNT; i++) {
        arr_app a;
        assert_int_equal(arr_app_parse(arr_app_name((arr_app)i), &a), 0);
        assert_int_equal(a, i);
    }
    arr_app a;
    assert_int_equal(arr_app_parse("Sonarr", &a), 0);
    assert_int_equal(a, APP_SONARR);
    assert_int_equal(arr_app_parse("prowlarr", &a), -EINVAL);
    assert_int_equal(arr_app_parse("", &a), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_fixture_gives_its_expected_folders),
        cmocka_unit_test(test_fixture_files_are_the_derived_paths),
        cmocka_unit_test(test_sonarr_test_event_with_windows_path_asks_for_nothing),
        cmocka_unit_test(test_download_folder_comes_from_series_path_not_episode_file_path),
        cmocka_unit_test(test_download_falls_back_to_file_path_without_relative_path),
        cmocka_unit_test(test_upgrade_scans_folders_of_deleted_files_too),
        cmocka_unit_test(test_import_complete_folders_are_deduplicated_in_payload_order),
        cmocka_unit_test(test_rename_scans_old_and_new_folder),
        cmocka_unit_test(test_episode_file_delete_scans_its_folder),
        cmocka_unit_test(test_series_delete_without_deleted_files_asks_for_nothing),
        cmocka_unit_test(test_events_that_ask_for_nothing_are_ignored),
        cmocka_unit_test(test_radarr_download_uses_folder_path_and_relative_path),
        cmocka_unit_test(test_radarr_rename_scans_movie_folder_and_old_folders),
        cmocka_unit_test(test_radarr_movie_delete_needs_deleted_files),
        cmocka_unit_test(test_lidarr_rename_scans_previous_and_new_folders),
        cmocka_unit_test(test_lidarr_retag_scans_the_track_folder),
        cmocka_unit_test(test_lidarr_album_delete_scans_artist_only_when_files_deleted),
        cmocka_unit_test(test_readarr_book_file_delete_scans_the_book_folder),
        cmocka_unit_test(test_readarr_author_delete_scans_author_folder),
        cmocka_unit_test(test_windows_drive_path_maps_through_path_replacements),
        cmocka_unit_test(test_windows_drive_path_without_replacement_is_refused),
        cmocka_unit_test(test_dot_dot_component_is_refused),
        cmocka_unit_test(test_cr_lf_or_nul_in_a_path_is_refused),
        cmocka_unit_test(test_deep_nesting_is_refused_before_parsing),
        cmocka_unit_test(test_reading_only_used_members_agrees_with_parsing_everything),
        cmocka_unit_test(test_body_that_is_not_a_json_object_is_refused),
        cmocka_unit_test(test_fields_of_the_wrong_type_are_refused_by_name),
        cmocka_unit_test(test_download_without_any_path_is_refused),
        cmocka_unit_test(test_non_ascii_bytes_pass_through_unchanged),
        cmocka_unit_test(test_scan_scope_root_scans_the_series_folder_with_files_attached),
        cmocka_unit_test(test_more_folders_than_the_limit_collapse_to_the_root),
        cmocka_unit_test(test_many_files_keep_at_most_the_file_limit_per_folder),
        cmocka_unit_test(test_every_fixture_leads_with_what_it_is),
        cmocka_unit_test(test_episodes_read_as_one_range),
        cmocka_unit_test(test_each_app_names_its_item_its_own_way),
        cmocka_unit_test(test_a_label_is_one_bounded_line),
        cmocka_unit_test(test_app_names_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
