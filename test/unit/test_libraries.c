/* test_libraries.c: the library lists of every kind: Jellyfin's and Emby's VirtualFolders, and
 * Plex's sections with their `refreshing` flag, into media_libraries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libraries.h"
#include "util.h"

static int mb(const char *body, media_libraries *out, char *err, size_t errlen)
{
    return mb_libraries_parse(body, strlen(body), out, err, errlen);
}

static int plex(const char *body, media_libraries *out, char *err, size_t errlen)
{
    return plex_media_libraries_parse(body, strlen(body), out, err, errlen);
}

static void test_virtual_folders_become_libraries_with_normalized_absolute_locations(void **state)
{
    (void)state;
    const char *body =
        "\xEF\xBB\xBF [{\"Name\":\"Shows\",\"Locations\":[\"/media/tv/\",\"//media//tv2\",\"relative/x\","
        "\"C:\\\\tv\",\"/media/tv\",42],\"CollectionType\":\"tvshows\",\"LibraryOptions\":{\"PathInfos\":"
        "[{\"Path\":\"/media/tv\"}]},\"ItemId\":\"a1b2c3\",\"RefreshStatus\":\"Idle\"},"
        "{\"Name\":\"Mixed\",\"Locations\":[]},"
        "{\"Name\":\"Films\",\"Locations\":[\"/media/movies\"],\"ItemId\":\"\",\"CollectionType\":null}]";
    media_libraries l;
    char err[128] = "";
    assert_int_equal(mb(body, &l, err, sizeof err), 0);
    assert_true(l.fetched_at > 0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.v[0].id, "a1b2c3");
    assert_string_equal(l.v[0].title, "Shows");
    assert_string_equal(l.v[0].type, "tvshows");
    assert_int_equal(l.v[0].n_locations, 2);
    assert_string_equal(l.v[0].locations[0], "/media/tv");
    assert_string_equal(l.v[0].locations[1], "/media/tv2");
    assert_false(l.v[0].refreshing);
    assert_string_equal(l.v[1].id, "Mixed"); /* no ItemId: the name stands in */
    assert_null(l.v[1].type);
    assert_int_equal(l.v[1].n_locations, 0);
    assert_string_equal(l.v[2].id, "Films"); /* an empty ItemId too */
    assert_null(l.v[2].type);
    media_libraries_free(&l);
    assert_int_equal(l.n, 0);
    media_libraries_free(NULL);
}

static void test_an_empty_list_is_read_not_refused(void **state)
{
    (void)state;
    media_libraries l;
    char err[64];
    assert_int_equal(mb(" [] ", &l, err, sizeof err), 0);
    assert_int_equal(l.n, 0);
    assert_true(l.fetched_at > 0);
    media_libraries_free(&l);
}

static void test_unreadable_virtual_folders_are_refused_and_leave_nothing(void **state)
{
    (void)state;
    static const struct {
        const char *body, *why;
    } bad[] = {
        {"", "empty answer"},
        {"   ", "empty answer"},
        {"[{\"Name\":", "not valid JSON"},
        {"{\"Name\":\"x\"}", "not a JSON list"},
        {"[\"x\"]", "VirtualFolders[0] is not an object"},
        {"[{\"Name\":\"a\"},{\"Locations\":[\"/x\"]}]", "VirtualFolders[1] has neither ItemId nor Name"},
        {"<html>Unauthorized</html>", "not valid JSON"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        media_libraries l;
        char err[128] = "";
        assert_int_equal(mb(bad[i].body, &l, err, sizeof err), -EINVAL);
        assert_non_null(strstr(err, bad[i].why));
        assert_int_equal(l.n, 0);
        assert_null(l.v);
        assert_int_equal(l.fetched_at, 0);
    }
    media_libraries l;
    assert_int_equal(mb_libraries_parse(NULL, 0, &l, NULL, 0), -EINVAL);
}

static void test_virtual_folders_are_bounded(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 0);
    buf_appends(&b, "[");
    for (int i = 0; i <= LIBRARIES_MAX; i++)
        buf_printf(&b, "%s{\"Name\":\"n%d\",\"ItemId\":\"i%d\"}", i ? "," : "", i, i);
    buf_appends(&b, "]");
    media_libraries l;
    char err[128] = "";
    assert_int_equal(mb_libraries_parse(b.data, b.len, &l, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "more than 1024 libraries"));
    buf_reset(&b);
    buf_appends(&b, "[{\"Name\":\"n\",\"Locations\":[");
    for (int i = 0; i <= LIBRARIES_MAX_LOCATIONS; i++)
        buf_printf(&b, "%s\"/m/%d\"", i ? "," : "", i);
    buf_appends(&b, "]}]");
    assert_int_equal(mb_libraries_parse(b.data, b.len, &l, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "more than 64 locations"));
    buf_free(&b);
}

static void test_plex_sections_carry_id_and_refreshing_in_json(void **state)
{
    (void)state;
    const char *body =
        "{\"MediaContainer\":{\"Directory\":["
        "{\"key\":\"2\",\"type\":\"show\",\"title\":\"TV\",\"refreshing\":true,\"Location\":[{\"id\":1,\"path\":\"/data/tv/\"}]},"
        "{\"key\":7,\"title\":\"Films\",\"refreshing\":false},"
        "{\"key\":\"08\",\"refreshing\":\"1\"},"
        "{\"key\":\"9\",\"refreshing\":1},"
        "{\"key\":\"10\",\"refreshing\":\"0\"},"
        "{\"key\":\"11\"}]}}";
    media_libraries l;
    char err[128] = "";
    assert_int_equal(plex(body, &l, err, sizeof err), 0);
    assert_int_equal(l.n, 6);
    static const char *const ids[] = {"2", "7", "8", "9", "10", "11"};
    static const bool refreshing[] = {true, false, true, true, false, false};
    for (size_t i = 0; i < l.n; i++) {
        assert_string_equal(l.v[i].id, ids[i]);
        assert_int_equal(l.v[i].refreshing, refreshing[i]);
        assert_non_null(l.v[i].type);
        assert_non_null(l.v[i].title);
    }
    assert_string_equal(l.v[0].locations[0], "/data/tv");
    assert_string_equal(l.v[1].type, "");
    media_libraries_free(&l);
}

static void test_plex_sections_carry_refreshing_in_xml(void **state)
{
    (void)state;
    const char *body = "<?xml version=\"1.0\"?><MediaContainer size=\"2\">"
                       "<Directory key=\"3\" type=\"movie\" title=\"M\" refreshing=\"1\"><Location id=\"1\" path=\"/m\"/></Directory>"
                       "<Directory key=\"4\" type=\"show\" title=\"S\" refreshing=\"0\"/>"
                       "<Directory key=\"5\" type=\"show\" title=\"T\"><Location path=\"/t\"/></Directory>"
                       "</MediaContainer>";
    media_libraries l;
    char err[128] = "";
    assert_int_equal(plex(body, &l, err, sizeof err), 0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.v[0].id, "3");
    assert_true(l.v[0].refreshing);
    assert_string_equal(l.v[0].locations[0], "/m");
    assert_false(l.v[1].refreshing);
    assert_int_equal(l.v[1].n_locations, 0);
    assert_false(l.v[2].refreshing);
    assert_string_equal(l.v[2].locations[0], "/t");
    media_libraries_free(&l);
    assert_int_equal(plex("<MediaContainer><Directory key=\"x\"/></MediaContainer>", &l, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "section key"));
    assert_null(l.v);
}

/* ---- Plex's sections: the shapes Plex answers with, and what is refused ---------------- */

static const char json_sections[] =
    "{\"MediaContainer\":{\"size\":3,\"allowSync\":false,\"title1\":\"Plex Library\",\"Directory\":["
    "{\"allowSync\":true,\"art\":\"/:/resources/show-fanart.jpg\",\"key\":\"2\",\"type\":\"show\","
    "\"title\":\"TV Shows\",\"agent\":\"tv.plex.agents.series\",\"refreshing\":false,"
    "\"Location\":[{\"id\":3,\"path\":\"/data/tv/\"},{\"id\":9,\"path\":\"/data/tv2\"}]},"
    "{\"key\":5,\"type\":\"movie\",\"title\":\"Films\",\"Location\":[{\"id\":4,\"path\":\"/data/movies\"}]},"
    "{\"key\":\"7\",\"type\":\"artist\",\"title\":\"Music\",\"Location\":[]}]}}";

static void test_plex_json_sections_parse_with_string_and_number_keys(void **state)
{
    (void)state;
    media_libraries l;
    char err[128] = "";
    assert_int_equal(plex(json_sections, &l, err, sizeof err), 0);
    assert_true(l.fetched_at > 0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.v[0].id, "2");
    assert_string_equal(l.v[0].type, "show");
    assert_string_equal(l.v[0].title, "TV Shows");
    assert_false(l.v[0].refreshing);
    assert_int_equal(l.v[0].n_locations, 2);
    assert_string_equal(l.v[0].locations[0], "/data/tv"); /* normalized */
    assert_string_equal(l.v[0].locations[1], "/data/tv2");
    assert_string_equal(l.v[1].id, "5"); /* a number key */
    assert_string_equal(l.v[1].locations[0], "/data/movies");
    assert_false(l.v[1].refreshing); /* no `refreshing`: not refreshing */
    assert_string_equal(l.v[2].id, "7");
    assert_int_equal(l.v[2].n_locations, 0);
    media_libraries_free(&l);
    assert_null(l.v);
}

static void test_plex_json_server_without_libraries_is_an_empty_list(void **state)
{
    (void)state;
    media_libraries l;
    assert_int_equal(plex("{\"MediaContainer\":{\"size\":0}}", &l, NULL, 0), 0);
    assert_int_equal(l.n, 0);
    assert_true(l.fetched_at > 0);
    media_libraries_free(&l);
}

static void test_plex_json_answers_that_are_not_a_section_list_are_refused(void **state)
{
    (void)state;
    media_libraries l;
    char err[128];
    assert_int_equal(plex("{\"MediaContainer\":", &l, err, sizeof err), -EINVAL);
    assert_string_equal(err, "answer is not valid JSON");
    assert_int_equal(plex("{\"errors\":[]}", &l, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "MediaContainer"));
    assert_int_equal(plex("{\"MediaContainer\":{\"Directory\":[{\"key\":\"two\"}]}}", &l, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "key"));
    assert_int_equal(plex("{\"MediaContainer\":{\"Directory\":[{\"key\":2.5}]}}", &l, err, sizeof err), -EINVAL);
    assert_int_equal(plex("Unauthorized", &l, err, sizeof err), -EINVAL);
    assert_int_equal(plex("   ", &l, err, sizeof err), -EINVAL);
    assert_null(l.v);
    assert_int_equal(l.n, 0);
    assert_int_equal(l.fetched_at, 0);
}

static const char xml_sections[] =
    "\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<!-- served by a test -->\n"
    "<MediaContainer size=\"3\" allowSync=\"0\" title1=\"Plex Library\">\n"
    "<Directory allowSync=\"1\" key=\"2\" type=\"show\" title=\"TV &amp; &quot;Series&quot;\" "
    "agent=\"tv.plex.agents.series\" refreshing=\"0\">\n"
    "  <Location id=\"3\" path=\"/data/tv\" />\n"
    "  <Location id='8' path='/data/Kids &amp; Family/&#233;t&#xE9; &lt;1&gt; &apos;x&apos;' />\n"
    "</Directory>\n"
    "<Directory key='5' type='movie' title='Films &gt; 2000' refreshing='1'><Location id=\"4\" path=\"/data/movies/\"/>"
    "</Directory>\n"
    "<Directory key=\"9\" type=\"photo\" title=\"Photos\"/>\n"
    "</MediaContainer>\n";

static void test_plex_xml_sections_parse_with_entities(void **state)
{
    (void)state;
    media_libraries l;
    char err[128] = "";
    assert_int_equal(plex(xml_sections, &l, err, sizeof err), 0);
    assert_true(l.fetched_at > 0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.v[0].id, "2");
    assert_string_equal(l.v[0].type, "show");
    assert_string_equal(l.v[0].title, "TV & \"Series\"");
    assert_false(l.v[0].refreshing);
    assert_int_equal(l.v[0].n_locations, 2);
    assert_string_equal(l.v[0].locations[0], "/data/tv");
    assert_string_equal(l.v[0].locations[1], "/data/Kids & Family/\xc3\xa9t\xc3\xa9 <1> 'x'");
    assert_string_equal(l.v[1].id, "5");
    assert_string_equal(l.v[1].title, "Films > 2000");
    assert_true(l.v[1].refreshing); /* single-quoted attribute */
    assert_string_equal(l.v[1].locations[0], "/data/movies");
    assert_string_equal(l.v[2].id, "9");
    assert_false(l.v[2].refreshing);
    assert_int_equal(l.v[2].n_locations, 0);
    media_libraries_free(&l);
}

static void test_plex_xml_location_outside_a_directory_is_ignored(void **state)
{
    (void)state;
    media_libraries l;
    const char *x = "<MediaContainer><Location path=\"/stray\"/><Directory key=\"1\" title=\"A\">"
                    "<Extra><Location path=\"/nested\"/></Extra><Location path=\"/a\"/></Directory>"
                    "</MediaContainer>";
    assert_int_equal(plex(x, &l, NULL, 0), 0);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.v[0].n_locations, 1);
    assert_string_equal(l.v[0].locations[0], "/a");
    media_libraries_free(&l);
}

static void expect_plex_error(const char *body, const char *needle)
{
    media_libraries l;
    char err[128] = "";
    assert_int_equal(plex(body, &l, err, sizeof err), -EINVAL);
    if (!strstr(err, needle))
        fail_msg("error '%s' lacks '%s'", err, needle);
    assert_null(l.v);
    assert_int_equal(l.n, 0);
    assert_int_equal(l.fetched_at, 0);
}

static void test_plex_malformed_xml_is_refused(void **state)
{
    (void)state;
    expect_plex_error("<MediaContainer><Directory key=\"1\"><Location path=\"/a &bogus; b\"/>"
                      "</Directory></MediaContainer>", "entity");
    expect_plex_error("<MediaContainer><Directory key=\"1\"><Location path=\"/a &#0; b\"/>"
                      "</Directory></MediaContainer>", "entity");
    expect_plex_error("<MediaContainer><Directory key=\"1\"><Location path=\"/a &#xD800; b\"/>"
                      "</Directory></MediaContainer>", "entity");
    expect_plex_error("<MediaContainer><Directory key=\"1\"><Location path=\"/a & b\"/>"
                      "</Directory></MediaContainer>", "entity");
    expect_plex_error("<MediaContainer><Directory key=\"1\"><Location path=\"/a", "attribute");
    expect_plex_error("<MediaContainer><Directory key=\"1\">", "truncated");
    expect_plex_error("<html><body>Unauthorized</body></html>", "MediaContainer");
    expect_plex_error("<MediaContainer><Directory type=\"show\"/></MediaContainer>", "key");
    expect_plex_error("<MediaContainer><Directory key=\"-1\"/></MediaContainer>", "key");
    expect_plex_error("<MediaContainer></MediaContainer></MediaContainer>", "closing");
    expect_plex_error("<MediaContainer/><MediaContainer/>", "root");
    expect_plex_error("<MediaContainer><!-- never closed", "<!--");
    expect_plex_error("<MediaContainer><Directory key=1/></MediaContainer>", "quoted");
}

static void test_plex_xml_nesting_and_values_are_bounded(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 0);
    buf_appends(&b, "<MediaContainer>");
    for (int i = 0; i < 70; i++)
        buf_appends(&b, "<a>");
    expect_plex_error(b.data, "nested");

    buf_reset(&b);
    buf_appends(&b, "<MediaContainer><Directory key=\"1\"><Location path=\"/");
    for (int i = 0; i < 9000; i++)
        buf_appends(&b, "x");
    buf_appends(&b, "\"/></Directory></MediaContainer>");
    expect_plex_error(b.data, "longer");
    buf_free(&b);
}

static void test_plex_more_than_64_locations_or_1024_libraries_is_refused(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 0);
    buf_appends(&b, "<MediaContainer><Directory key=\"1\">");
    for (int i = 0; i <= LIBRARIES_MAX_LOCATIONS; i++)
        buf_printf(&b, "<Location path=\"/loc/%d\"/>", i);
    buf_appends(&b, "</Directory></MediaContainer>");
    expect_plex_error(b.data, "locations");

    buf_reset(&b);
    buf_appends(&b, "{\"MediaContainer\":{\"Directory\":[");
    for (int i = 0; i <= LIBRARIES_MAX; i++)
        buf_printf(&b, "%s{\"key\":\"%d\",\"Location\":[{\"path\":\"/l/%d\"}]}", i ? "," : "", i + 1, i);
    buf_appends(&b, "]}}");
    expect_plex_error(b.data, "1024");

    /* exactly at the bounds is fine */
    buf_reset(&b);
    buf_appends(&b, "{\"MediaContainer\":{\"Directory\":[");
    for (int i = 0; i < LIBRARIES_MAX; i++)
        buf_printf(&b, "%s{\"key\":%d}", i ? "," : "", i + 1);
    buf_appends(&b, "]}}");
    media_libraries l;
    assert_int_equal(plex(b.data, &l, NULL, 0), 0);
    assert_int_equal(l.n, LIBRARIES_MAX);
    media_libraries_free(&l);
    buf_reset(&b);
    buf_appends(&b, "<MediaContainer><Directory key=\"1\">");
    for (int i = 0; i < LIBRARIES_MAX_LOCATIONS; i++)
        buf_printf(&b, "<Location path=\"/loc/%d\"/>", i);
    buf_appends(&b, "</Directory></MediaContainer>");
    assert_int_equal(plex(b.data, &l, NULL, 0), 0);
    assert_int_equal(l.v[0].n_locations, LIBRARIES_MAX_LOCATIONS);
    media_libraries_free(&l);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_virtual_folders_become_libraries_with_normalized_absolute_locations),
        cmocka_unit_test(test_an_empty_list_is_read_not_refused),
        cmocka_unit_test(test_unreadable_virtual_folders_are_refused_and_leave_nothing),
        cmocka_unit_test(test_virtual_folders_are_bounded),
        cmocka_unit_test(test_plex_sections_carry_id_and_refreshing_in_json),
        cmocka_unit_test(test_plex_sections_carry_refreshing_in_xml),
        cmocka_unit_test(test_plex_json_sections_parse_with_string_and_number_keys),
        cmocka_unit_test(test_plex_json_server_without_libraries_is_an_empty_list),
        cmocka_unit_test(test_plex_json_answers_that_are_not_a_section_list_are_refused),
        cmocka_unit_test(test_plex_xml_sections_parse_with_entities),
        cmocka_unit_test(test_plex_xml_location_outside_a_directory_is_ignored),
        cmocka_unit_test(test_plex_malformed_xml_is_refused),
        cmocka_unit_test(test_plex_xml_nesting_and_values_are_bounded),
        cmocka_unit_test(test_plex_more_than_64_locations_or_1024_libraries_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
