/* test_sections.c: Plex's /library/sections in JSON and XML, and which sections a path maps to. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sections.h"
#include "util.h"

static config_t make_config(void)
{
    config_t c;
    memset(&c, 0, sizeof(c));
    c.max_folders_per_event = 100;
    return c;
}

static int parse_str(const char *body, plex_libraries *out, char *err, size_t errlen)
{
    return plex_libraries_parse(body, strlen(body), out, err, errlen);
}

static const char json_sections[] =
    "{\"MediaContainer\":{\"size\":3,\"allowSync\":false,\"title1\":\"Plex Library\",\"Directory\":["
    "{\"allowSync\":true,\"art\":\"/:/resources/show-fanart.jpg\",\"key\":\"2\",\"type\":\"show\","
    "\"title\":\"TV Shows\",\"agent\":\"tv.plex.agents.series\",\"refreshing\":false,"
    "\"Location\":[{\"id\":3,\"path\":\"/data/tv/\"},{\"id\":9,\"path\":\"/data/tv2\"}]},"
    "{\"key\":5,\"type\":\"movie\",\"title\":\"Films\",\"Location\":[{\"id\":4,\"path\":\"/data/movies\"}]},"
    "{\"key\":\"7\",\"type\":\"artist\",\"title\":\"Music\",\"Location\":[]}]}}";

static void test_json_sections_parse_with_string_and_number_keys(void **state)
{
    (void)state;
    plex_libraries l;
    char err[128] = "";
    assert_int_equal(parse_str(json_sections, &l, err, sizeof(err)), 0);
    assert_true(l.fetched_at > 0);
    assert_int_equal(l.n, 3);
    assert_int_equal(l.v[0].key, 2);
    assert_string_equal(l.v[0].type, "show");
    assert_string_equal(l.v[0].title, "TV Shows");
    assert_int_equal(l.v[0].n_locations, 2);
    assert_string_equal(l.v[0].locations[0], "/data/tv"); /* normalized */
    assert_string_equal(l.v[0].locations[1], "/data/tv2");
    assert_int_equal(l.v[1].key, 5);
    assert_string_equal(l.v[1].locations[0], "/data/movies");
    assert_int_equal(l.v[2].key, 7);
    assert_int_equal(l.v[2].n_locations, 0);
    plex_libraries_free(&l);
    assert_null(l.v);
}

static void test_json_server_without_libraries_is_an_empty_list(void **state)
{
    (void)state;
    plex_libraries l;
    assert_int_equal(parse_str("{\"MediaContainer\":{\"size\":0}}", &l, NULL, 0), 0);
    assert_int_equal(l.n, 0);
    assert_true(l.fetched_at > 0);
    plex_libraries_free(&l);
}

static void test_json_answers_that_are_not_a_section_list_are_refused(void **state)
{
    (void)state;
    plex_libraries l;
    char err[128];
    assert_int_equal(parse_str("{\"MediaContainer\":", &l, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "answer is not valid JSON");
    assert_int_equal(parse_str("{\"errors\":[]}", &l, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "MediaContainer"));
    assert_int_equal(parse_str("{\"MediaContainer\":{\"Directory\":[{\"key\":\"two\"}]}}", &l, err,
                               sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "key"));
    assert_int_equal(parse_str("{\"MediaContainer\":{\"Directory\":[{\"key\":2.5}]}}", &l, err,
                               sizeof(err)), -EINVAL);
    assert_int_equal(parse_str("Unauthorized", &l, err, sizeof(err)), -EINVAL);
    assert_int_equal(parse_str("   ", &l, err, sizeof(err)), -EINVAL);
    assert_null(l.v);
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
    "<Directory key='5' type='movie' title='Films &gt; 2000'><Location id=\"4\" path=\"/data/movies/\"/>"
    "</Directory>\n"
    "<Directory key=\"9\" type=\"photo\" title=\"Photos\"/>\n"
    "</MediaContainer>\n";

static void test_xml_sections_parse_with_entities(void **state)
{
    (void)state;
    plex_libraries l;
    char err[128] = "";
    assert_int_equal(parse_str(xml_sections, &l, err, sizeof(err)), 0);
    assert_int_equal(l.n, 3);
    assert_int_equal(l.v[0].key, 2);
    assert_string_equal(l.v[0].type, "show");
    assert_string_equal(l.v[0].title, "TV & \"Series\"");
    assert_int_equal(l.v[0].n_locations, 2);
    assert_string_equal(l.v[0].locations[0], "/data/tv");
    assert_string_equal(l.v[0].locations[1], "/data/Kids & Family/\xc3\xa9t\xc3\xa9 <1> 'x'");
    assert_int_equal(l.v[1].key, 5);
    assert_string_equal(l.v[1].title, "Films > 2000");
    assert_string_equal(l.v[1].locations[0], "/data/movies");
    assert_int_equal(l.v[2].key, 9);
    assert_int_equal(l.v[2].n_locations, 0);
    plex_libraries_free(&l);
}

static void test_xml_location_outside_a_directory_is_ignored(void **state)
{
    (void)state;
    plex_libraries l;
    const char *x = "<MediaContainer><Location path=\"/stray\"/><Directory key=\"1\" title=\"A\">"
                    "<Extra><Location path=\"/nested\"/></Extra><Location path=\"/a\"/></Directory>"
                    "</MediaContainer>";
    assert_int_equal(parse_str(x, &l, NULL, 0), 0);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.v[0].n_locations, 1);
    assert_string_equal(l.v[0].locations[0], "/a");
    plex_libraries_free(&l);
}

static void expect_xml_error(const char *body, const char *needle)
{
    plex_libraries l;
    char err[128] = "";
    assert_int_equal(parse_str(body, &l, err, sizeof(err)), -EINVAL);
    if (!strstr(err, needle))
        fail_msg("error '%s' lacks '%s'", err, needle);
    assert_null(l.v);
    assert_int_equal(l.n, 0);
}

static void test_malformed_xml_is_refused(void **state)
{
    (void)state;
    expect_xml_error("<MediaContainer><Directory key=\"1\"><Location path=\"/a &bogus; b\"/>"
                     "</Directory></MediaContainer>", "entity");
    expect_xml_error("<MediaContainer><Directory key=\"1\"><Location path=\"/a &#0; b\"/>"
                     "</Directory></MediaContainer>", "entity");
    expect_xml_error("<MediaContainer><Directory key=\"1\"><Location path=\"/a &#xD800; b\"/>"
                     "</Directory></MediaContainer>", "entity");
    expect_xml_error("<MediaContainer><Directory key=\"1\"><Location path=\"/a & b\"/>"
                     "</Directory></MediaContainer>", "entity");
    expect_xml_error("<MediaContainer><Directory key=\"1\"><Location path=\"/a", "attribute");
    expect_xml_error("<MediaContainer><Directory key=\"1\">", "truncated");
    expect_xml_error("<html><body>Unauthorized</body></html>", "MediaContainer");
    expect_xml_error("<MediaContainer><Directory type=\"show\"/></MediaContainer>", "key");
    expect_xml_error("<MediaContainer><Directory key=\"-1\"/></MediaContainer>", "key");
    expect_xml_error("<MediaContainer></MediaContainer></MediaContainer>", "closing");
    expect_xml_error("<MediaContainer/><MediaContainer/>", "root");
    expect_xml_error("<MediaContainer><!-- never closed", "<!--");
    expect_xml_error("<MediaContainer><Directory key=1/></MediaContainer>", "quoted");
}

static void test_xml_nesting_and_values_are_bounded(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 0);
    buf_appends(&b, "<MediaContainer>");
    for (int i = 0; i < 70; i++)
        buf_appends(&b, "<a>");
    expect_xml_error(b.data, "nested");

    buf_reset(&b);
    buf_appends(&b, "<MediaContainer><Directory key=\"1\"><Location path=\"/");
    for (int i = 0; i < 9000; i++)
        buf_appends(&b, "x");
    buf_appends(&b, "\"/></Directory></MediaContainer>");
    expect_xml_error(b.data, "longer");
    buf_free(&b);
}

static void test_more_than_64_locations_or_1024_libraries_is_refused(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 0);
    buf_appends(&b, "<MediaContainer><Directory key=\"1\">");
    for (int i = 0; i < 65; i++)
        buf_printf(&b, "<Location path=\"/loc/%d\"/>", i);
    buf_appends(&b, "</Directory></MediaContainer>");
    expect_xml_error(b.data, "locations");

    buf_reset(&b);
    buf_appends(&b, "{\"MediaContainer\":{\"Directory\":[");
    for (int i = 0; i < 1025; i++)
        buf_printf(&b, "%s{\"key\":\"%d\",\"Location\":[{\"path\":\"/l/%d\"}]}", i ? "," : "", i + 1, i);
    buf_appends(&b, "]}}");
    expect_xml_error(b.data, "1024");

    /* exactly at the bounds is fine */
    buf_reset(&b);
    buf_appends(&b, "{\"MediaContainer\":{\"Directory\":[");
    for (int i = 0; i < 1024; i++)
        buf_printf(&b, "%s{\"key\":%d}", i ? "," : "", i + 1);
    buf_appends(&b, "]}}");
    plex_libraries l;
    assert_int_equal(parse_str(b.data, &l, NULL, 0), 0);
    assert_int_equal(l.n, 1024);
    plex_libraries_free(&l);
    buf_free(&b);
}

/* ---- matching ---- */

static void load_libraries(plex_libraries *l)
{
    static const char body[] =
        "{\"MediaContainer\":{\"Directory\":["
        "{\"key\":\"1\",\"type\":\"show\",\"title\":\"TV\",\"Location\":[{\"path\":\"/data/tv\"}]},"
        "{\"key\":\"2\",\"type\":\"show\",\"title\":\"Everything\",\"Location\":[{\"path\":\"/data\"}]},"
        "{\"key\":\"3\",\"type\":\"movie\",\"title\":\"Movies\",\"Location\":[{\"path\":\"/data/movies\"},"
        "{\"path\":\"/more/movies\"}]},"
        "{\"key\":\"4\",\"type\":\"show\",\"title\":\"Anime\",\"Location\":[{\"path\":\"/anime\"}]}]}}";
    assert_int_equal(parse_str(body, l, NULL, 0), 0);
}

static void test_every_library_whose_location_holds_the_path_matches(void **state)
{
    (void)state;
    config_t c = make_config();
    plex_libraries l;
    load_libraries(&l);
    section_match m[8];
    size_t n = 99;

    assert_int_equal(sections_match(&c, &l, "/data/tv/Show/Season 01", m, 8, &n), SECTIONS_MATCHED);
    assert_int_equal(n, 2);
    assert_int_equal(m[0].section, 1);
    assert_int_equal(m[0].source, SECTION_FROM_LIBRARY);
    assert_ptr_equal(m[0].library, &l.v[0]);
    assert_false(m[0].outside_locations);
    assert_int_equal(m[1].section, 2);

    /* writes no more than max */
    assert_int_equal(sections_match(&c, &l, "/data/tv/Show", m, 1, &n), SECTIONS_MATCHED);
    assert_int_equal(n, 1);

    assert_int_equal(sections_match(&c, &l, "/more/movies/Heat (1995)", m, 8, &n), SECTIONS_MATCHED);
    assert_int_equal(n, 1);
    assert_int_equal(m[0].section, 3);
    plex_libraries_free(&l);
}

static void test_library_match_is_by_component_and_case_sensitive(void **state)
{
    (void)state;
    config_t c = make_config();
    plex_libraries l;
    load_libraries(&l);
    section_match m[8];
    size_t n = 99;
    assert_int_equal(sections_match(&c, &l, "/anime 2/Show", m, 8, &n), SECTIONS_NO_MATCH);
    assert_int_equal(n, 0);
    assert_int_equal(sections_match(&c, &l, "/Anime/Show", m, 8, &n), SECTIONS_NO_MATCH);
    assert_int_equal(sections_match(&c, &l, "/anime/Show", m, 8, &n), SECTIONS_MATCHED);
    assert_int_equal(m[0].section, 4);
    plex_libraries_free(&l);
}

static void test_section_mapping_is_tried_first_longest_and_case_insensitive(void **state)
{
    (void)state;
    config_t c = make_config();
    cfg_section_map map[] = {{"/data", 20}, {"/data/tv/kids", 21}};
    c.section_map = map;
    c.n_section_map = 2;
    plex_libraries l;
    load_libraries(&l);
    section_match m[8];
    size_t n = 0;

    assert_int_equal(sections_match(&c, &l, "/DATA/TV/Kids/Bluey", m, 8, &n), SECTIONS_MATCHED);
    assert_int_equal(n, 1);
    assert_int_equal(m[0].section, 21);
    assert_int_equal(m[0].source, SECTION_FROM_MAPPING);

    /* the mapping wins over two matching libraries, and gives one result */
    assert_int_equal(sections_match(&c, &l, "/data/tv/Show", m, 8, &n), SECTIONS_MATCHED);
    assert_int_equal(n, 1);
    assert_int_equal(m[0].section, 20);

    /* "/data/tv/kids" is not a prefix of "/data/tv/kids2" */
    assert_int_equal(sections_match(&c, &l, "/data/tv/kids2/x", m, 8, &n), SECTIONS_MATCHED);
    assert_int_equal(m[0].section, 20);

    /* outside every mapping: the library list decides */
    assert_int_equal(sections_match(&c, &l, "/anime/Show", m, 8, &n), SECTIONS_MATCHED);
    assert_int_equal(m[0].section, 4);
    assert_int_equal(m[0].source, SECTION_FROM_LIBRARY);
    plex_libraries_free(&l);
}

static void test_mapped_folder_outside_its_sections_locations_is_flagged(void **state)
{
    (void)state;
    config_t c = make_config();
    cfg_section_map map[] = {{"/mnt/tv", 1}, {"/data/movies/4k", 3}, {"/x", 99}};
    c.section_map = map;
    c.n_section_map = 3;
    plex_libraries l;
    load_libraries(&l);
    section_match m[4];
    size_t n = 0;

    assert_int_equal(sections_match(&c, &l, "/mnt/tv/Show", m, 4, &n), SECTIONS_MATCHED);
    assert_int_equal(m[0].section, 1);
    assert_ptr_equal(m[0].library, &l.v[0]);
    assert_true(m[0].outside_locations); /* library 1 lives at /data/tv */

    assert_int_equal(sections_match(&c, &l, "/data/movies/4k/Heat", m, 4, &n), SECTIONS_MATCHED);
    assert_int_equal(m[0].section, 3);
    assert_false(m[0].outside_locations);

    assert_int_equal(sections_match(&c, &l, "/x/y", m, 4, &n), SECTIONS_MATCHED);
    assert_null(m[0].library); /* Plex has no section 99 */
    assert_true(m[0].outside_locations);

    /* with no list read yet nothing can be said about locations */
    plex_libraries none;
    memset(&none, 0, sizeof(none));
    assert_int_equal(sections_match(&c, &none, "/mnt/tv/Show", m, 4, &n), SECTIONS_MATCHED);
    assert_int_equal(m[0].section, 1);
    assert_null(m[0].library);
    assert_false(m[0].outside_locations);
    plex_libraries_free(&l);
}

static void test_no_list_yet_is_unresolved_but_a_list_without_match_is_no_match(void **state)
{
    (void)state;
    config_t c = make_config();
    section_match m[4];
    size_t n = 99;
    plex_libraries none;
    memset(&none, 0, sizeof(none));
    assert_int_equal(sections_match(&c, &none, "/data/tv/Show", m, 4, &n), SECTIONS_UNRESOLVED);
    assert_int_equal(n, 0);
    assert_int_equal(sections_match(&c, NULL, "/data/tv/Show", m, 4, &n), SECTIONS_UNRESOLVED);

    plex_libraries l;
    load_libraries(&l);
    assert_int_equal(sections_match(&c, &l, "/elsewhere/Show", m, 4, &n), SECTIONS_NO_MATCH);
    assert_int_equal(n, 0);

    plex_libraries empty;
    assert_int_equal(parse_str("<MediaContainer size=\"0\"/>", &empty, NULL, 0), 0);
    assert_int_equal(sections_match(&c, &empty, "/data/tv/Show", m, 4, &n), SECTIONS_NO_MATCH);
    plex_libraries_free(&empty);
    plex_libraries_free(&l);
}

static void test_all_roots_lists_locations_and_mapping_prefixes(void **state)
{
    (void)state;
    config_t c = make_config();
    cfg_section_map map[] = {{"/mnt/tv", 1}};
    c.section_map = map;
    c.n_section_map = 1;
    plex_libraries l;
    load_libraries(&l);
    size_t n = 0;
    const char **roots = sections_all_roots(&c, &l, &n);
    assert_int_equal(n, 6);
    assert_string_equal(roots[0], "/data/tv");
    assert_string_equal(roots[3], "/more/movies");
    assert_string_equal(roots[5], "/mnt/tv");
    free(roots);

    roots = sections_all_roots(&c, NULL, &n);
    assert_int_equal(n, 1);
    free(roots);
    plex_libraries_free(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_sections_parse_with_string_and_number_keys),
        cmocka_unit_test(test_json_server_without_libraries_is_an_empty_list),
        cmocka_unit_test(test_json_answers_that_are_not_a_section_list_are_refused),
        cmocka_unit_test(test_xml_sections_parse_with_entities),
        cmocka_unit_test(test_xml_location_outside_a_directory_is_ignored),
        cmocka_unit_test(test_malformed_xml_is_refused),
        cmocka_unit_test(test_xml_nesting_and_values_are_bounded),
        cmocka_unit_test(test_more_than_64_locations_or_1024_libraries_is_refused),
        cmocka_unit_test(test_every_library_whose_location_holds_the_path_matches),
        cmocka_unit_test(test_library_match_is_by_component_and_case_sensitive),
        cmocka_unit_test(test_section_mapping_is_tried_first_longest_and_case_insensitive),
        cmocka_unit_test(test_mapped_folder_outside_its_sections_locations_is_flagged),
        cmocka_unit_test(test_no_list_yet_is_unresolved_but_a_list_without_match_is_no_match),
        cmocka_unit_test(test_all_roots_lists_locations_and_mapping_prefixes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
