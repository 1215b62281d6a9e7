/* test_dotenv.c: the environment snapshot and dotenv files: syntax, quoting, errors, limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_tmpfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dotenv.h"

/* ---------------------------------------------------------------- helpers */

/* Parse a dotenv text into a fresh map; returns the rc. */
static int parse_text(const char *text, env_map *m, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    return dotenv_parse(text, strlen(text), m, err, errlen);
}

/* ---------------------------------------------------------------- env_map */

static void test_env_map_set_replaces_and_null_removes(void **state)
{
    (void)state;
    env_map m = {0};
    char key[32];
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "K%d", i);
        env_map_set(&m, key, "v");
    }
    assert_int_equal(m.n, 100);
    env_map_set(&m, "K7", "seven");
    assert_int_equal(m.n, 100);
    assert_string_equal(env_map_get(&m, "K7"), "seven");
    env_map_set(&m, "K7", NULL);
    assert_int_equal(m.n, 99);
    assert_null(env_map_get(&m, "K7"));
    assert_string_equal(env_map_get(&m, "K99"), "v");
    assert_null(env_map_get(&m, "k99"));
    env_map_free(&m);
    assert_int_equal(m.n, 0);
    env_map_free(&m);
}

static void test_env_map_from_environ_copies_the_environment(void **state)
{
    (void)state;
    setenv("PSS_TEST_VAR", "a=b=c", 1);
    env_map m;
    env_map_from_environ(&m);
    assert_string_equal(env_map_get(&m, "PSS_TEST_VAR"), "a=b=c");
    unsetenv("PSS_TEST_VAR");
    assert_string_equal(env_map_get(&m, "PSS_TEST_VAR"), "a=b=c");
    env_map_free(&m);
}

/* ---------------------------------------------------------------- dotenv syntax */

static void test_dotenv_comments_blank_lines_and_export(void **state)
{
    (void)state;
    env_map m;
    char err[256];
    assert_int_equal(parse_text("# a comment\n"
                                "\n"
                                "   \n"
                                "  # indented comment\n"
                                "export A=1\n"
                                "export\tB = two \n"
                                "  C=3\n"
                                "exportD=4\n"
                                "export=5\n",
                                &m, err, sizeof err),
                     0);
    assert_int_equal(m.n, 5);
    assert_string_equal(env_map_get(&m, "A"), "1");
    assert_string_equal(env_map_get(&m, "B"), "two");
    assert_string_equal(env_map_get(&m, "C"), "3");
    assert_string_equal(env_map_get(&m, "exportD"), "4");
    assert_string_equal(env_map_get(&m, "export"), "5");
    env_map_free(&m);
}

static void test_dotenv_single_quotes_are_literal(void **state)
{
    (void)state;
    env_map m;
    char err[256];
    assert_int_equal(parse_text("A='{\"/x\\\\y\": \"#not a comment\"}'  # comment\n"
                                "B='a\\nb'\n"
                                "C=''\n",
                                &m, err, sizeof err),
                     0);
    assert_string_equal(env_map_get(&m, "A"), "{\"/x\\\\y\": \"#not a comment\"}");
    assert_string_equal(env_map_get(&m, "B"), "a\\nb");
    assert_string_equal(env_map_get(&m, "C"), "");
    env_map_free(&m);
}

static void test_dotenv_double_quote_escapes(void **state)
{
    (void)state;
    env_map m;
    char err[256];
    assert_int_equal(parse_text("A=\"line1\\nline2\\tx \\\"q\\\" \\\\ \\d\"\nB=\"\"\nC=\"it's # here\"\n",
                                &m, err, sizeof err),
                     0);
    assert_string_equal(env_map_get(&m, "A"), "line1\nline2\tx \"q\" \\ \\d");
    assert_string_equal(env_map_get(&m, "B"), "");
    assert_string_equal(env_map_get(&m, "C"), "it's # here");
    env_map_free(&m);
}

static void test_dotenv_inline_comment_only_after_whitespace(void **state)
{
    (void)state;
    env_map m;
    char err[256];
    assert_int_equal(parse_text("A=value # comment\n"
                                "B=pass#word\n"
                                "C=#start\n"
                                "D= # only a comment\n"
                                "E=x\t#tab comment\n",
                                &m, err, sizeof err),
                     0);
    assert_string_equal(env_map_get(&m, "A"), "value");
    assert_string_equal(env_map_get(&m, "B"), "pass#word");
    assert_string_equal(env_map_get(&m, "C"), "#start");
    assert_string_equal(env_map_get(&m, "D"), "");
    assert_string_equal(env_map_get(&m, "E"), "x");
    env_map_free(&m);
}

static void test_dotenv_equals_inside_value_kept(void **state)
{
    (void)state;
    env_map m;
    char err[256];
    assert_int_equal(parse_text("TOKEN=abc==\nURL=http://h/?a=b&c=d\n", &m, err, sizeof err), 0);
    assert_string_equal(env_map_get(&m, "TOKEN"), "abc==");
    assert_string_equal(env_map_get(&m, "URL"), "http://h/?a=b&c=d");
    env_map_free(&m);
}

static void test_dotenv_quoted_value_may_span_lines(void **state)
{
    (void)state;
    env_map m;
    char err[256];
    assert_int_equal(parse_text("MAP='{\r\n  \"/a\": \"/b\"\r\n}'\r\nNEXT=1\r\nBAD\r\n", &m, err, sizeof err),
                     -EINVAL);
    assert_string_equal(err, "line 5: expected KEY=VALUE");
    assert_int_equal(parse_text("MAP='{\n  \"/a\": \"/b\"\n}'\nNEXT=1\n", &m, err, sizeof err), 0);
    assert_string_equal(env_map_get(&m, "MAP"), "{\n  \"/a\": \"/b\"\n}");
    assert_string_equal(env_map_get(&m, "NEXT"), "1");
    env_map_free(&m);
}

static void test_dotenv_line_without_equals_names_the_line(void **state)
{
    (void)state;
    env_map m;
    char err[256];
    assert_int_equal(parse_text("A=1\n\nJUSTAWORD\n", &m, err, sizeof err), -EINVAL);
    assert_string_equal(err, "line 3: expected KEY=VALUE");
    env_map_free(&m);
}

static void test_dotenv_invalid_names_are_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {"MY-KEY=1\n", "1KEY=1\n", "=value\n", "A B=1\n", "K\xc3\xa9=1\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        env_map m;
        char err[256] = "";
        if (parse_text(bad[i], &m, err, sizeof err) != -EINVAL)
            fail_msg("'%s' was accepted", bad[i]);
        assert_non_null(strstr(err, "line 1: "));
        assert_int_equal(m.n, 0);
        env_map_free(&m);
    }
}

static void test_dotenv_quote_errors(void **state)
{
    (void)state;
    env_map m;
    char err[256];
    assert_int_equal(parse_text("A=1\nB='open\nC=2\n", &m, err, sizeof err), -EINVAL);
    assert_string_equal(err, "line 2: unterminated quoted value");
    assert_int_equal(parse_text("A=\"x\\\"\n", &m, err, sizeof err), -EINVAL);
    assert_string_equal(err, "line 1: unterminated quoted value");
    assert_int_equal(parse_text("A='x'y\n", &m, err, sizeof err), -EINVAL);
    assert_string_equal(err, "line 1: unexpected text after the closing quote");
    assert_int_equal(parse_text("A=1\0B=2", &m, err, sizeof err), 0); /* strlen stops at NUL */
    env_map_free(&m);
    memset(&m, 0, sizeof m);
    assert_int_equal(dotenv_parse("A=1\nB=\0", 7, &m, err, sizeof err), -EINVAL);
    assert_string_equal(err, "line 2: NUL byte");
    env_map_free(&m);
}

static void test_dotenv_error_leaves_map_unchanged(void **state)
{
    (void)state;
    env_map m = {0};
    char err[256];
    env_map_set(&m, "A", "old");
    const char *text = "A=new\nB=1\nbroken line\n";
    assert_int_equal(dotenv_parse(text, strlen(text), &m, err, sizeof err), -EINVAL);
    assert_string_equal(env_map_get(&m, "A"), "old");
    assert_null(env_map_get(&m, "B"));
    text = "A=new\nB=1\nA=newer\n";
    assert_int_equal(dotenv_parse(text, strlen(text), &m, err, sizeof err), 0);
    assert_string_equal(env_map_get(&m, "A"), "newer");
    assert_int_equal(m.n, 2);
    env_map_free(&m);
}

static void test_dotenv_bom_and_crlf(void **state)
{
    (void)state;
    env_map m;
    char err[256];
    assert_int_equal(parse_text("\xEF\xBB\xBFPORT=5000\r\n"
                                "# c\r\n"
                                "\r\n"
                                "A=x # c\r\n"
                                "B='quoted'\r\n"
                                "C=\"dq\"   \r\n"
                                "D=last",
                                &m, err, sizeof err),
                     0);
    assert_string_equal(env_map_get(&m, "PORT"), "5000");
    assert_string_equal(env_map_get(&m, "A"), "x");
    assert_string_equal(env_map_get(&m, "B"), "quoted");
    assert_string_equal(env_map_get(&m, "C"), "dq");
    assert_string_equal(env_map_get(&m, "D"), "last");
    assert_int_equal(m.n, 5);
    env_map_free(&m);
}

static void test_dotenv_load_reads_a_real_file(void **state)
{
    (void)state;
    static const char text[] = "\xEF\xBB\xBF" "A=1\r\nB='two'\r\n";
    char *path = write_temp(text, sizeof text - 1);
    env_map m = {0};
    char err[256];
    assert_int_equal(dotenv_load(path, &m, err, sizeof err), 0);
    assert_string_equal(env_map_get(&m, "A"), "1");
    assert_string_equal(env_map_get(&m, "B"), "two");
    env_map_free(&m);
    unlink(path);
    free(path);
}

static void test_dotenv_load_errors_name_the_file(void **state)
{
    (void)state;
    env_map m = {0};
    char err[512];
    assert_int_equal(dotenv_load("/nonexistent/pss/.env", &m, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "/nonexistent/pss/.env: "));

    char *path = write_temp("A=1\nnope\n", 9);
    assert_int_equal(dotenv_load(path, &m, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "line 2: expected KEY=VALUE"));
    unlink(path);
    free(path);

    assert_int_equal(dotenv_load("/", &m, err, sizeof err), -EISDIR);
    assert_int_equal(m.n, 0);
}

static void test_dotenv_load_caps_file_size_at_1_mib(void **state)
{
    (void)state;
    size_t n = 1024 * 1024 + 1;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, '#', n);
    char *path = write_temp(big, n);
    env_map m = {0};
    char err[512];
    assert_int_equal(dotenv_load(path, &m, err, sizeof err), -EFBIG);
    unlink(path);
    free(path);
    /* exactly 1 MiB is fine */
    path = write_temp(big, n - 1);
    assert_int_equal(dotenv_load(path, &m, err, sizeof err), 0);
    unlink(path);
    free(path);
    free(big);
    env_map_free(&m);
}

/* The line each key was set on, for messages that point into the file ("./.env line 7: ..."). */
static void test_dotenv_keeps_the_line_of_each_key(void **state)
{
    (void)state;
    env_map m;
    char err[256];
    static const char text[] = "# a comment\n"
                               "A=1\n"
                               "\n"
                               "export B='two\n"
                               "lines'\n"
                               "C=\"x\"\n"
                               "A=again\n";
    assert_int_equal(parse_text(text, &m, err, sizeof err), 0);
    assert_int_equal(m.n, 3);
    static const struct {
        const char *key;
        size_t line;
    } want[] = {{"A", 7}, {"B", 4}, {"C", 6}};
    for (size_t w = 0; w < sizeof want / sizeof want[0]; w++) {
        size_t i = 0;
        while (i < m.n && strcmp(m.keys[i], want[w].key) != 0)
            i++;
        assert_true(i < m.n);
        if (m.lines[i] != want[w].line)
            fail_msg("%s: line %zu, want %zu", want[w].key, m.lines[i], want[w].line);
    }
    env_map_free(&m);

    /* a map not from a file says line 0 */
    env_map e = {0};
    env_map_set(&e, "K", "v");
    assert_int_equal(e.lines[0], 0);
    env_map_free(&e);
}

/* KEY="{"a": "b"}": the first inner quote ends the value. The error says to use single quotes. */
static void test_dotenv_json_in_double_quotes_is_told_to_use_single_quotes(void **state)
{
    (void)state;
    env_map m;
    char err[256];
    assert_int_equal(parse_text("X=1\nPATH_REPLACEMENTS=\"{\"/tv\": \"/data/tv\"}\"\n", &m, err, sizeof err), -EINVAL);
    assert_string_equal(err, "line 2: unexpected text after the closing quote: a JSON value goes in single quotes, "
                             "PATH_REPLACEMENTS='{\"...\": \"...\"}'");
    assert_int_equal(parse_text("ANCHOR_FILES=\"[\"/mnt/a\"]\"\n", &m, err, sizeof err), -EINVAL);
    assert_string_equal(err, "line 1: unexpected text after the closing quote: a JSON value goes in single quotes, "
                             "ANCHOR_FILES='[\"...\"]'");
    /* not JSON, or already single quotes: no such hint */
    assert_int_equal(parse_text("A=\"x\"y\n", &m, err, sizeof err), -EINVAL);
    assert_string_equal(err, "line 1: unexpected text after the closing quote");
    assert_int_equal(parse_text("A='{'a'}'\n", &m, err, sizeof err), -EINVAL);
    assert_string_equal(err, "line 1: unexpected text after the closing quote");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env_map_set_replaces_and_null_removes),
        cmocka_unit_test(test_env_map_from_environ_copies_the_environment),
        cmocka_unit_test(test_dotenv_comments_blank_lines_and_export),
        cmocka_unit_test(test_dotenv_single_quotes_are_literal),
        cmocka_unit_test(test_dotenv_double_quote_escapes),
        cmocka_unit_test(test_dotenv_inline_comment_only_after_whitespace),
        cmocka_unit_test(test_dotenv_equals_inside_value_kept),
        cmocka_unit_test(test_dotenv_quoted_value_may_span_lines),
        cmocka_unit_test(test_dotenv_line_without_equals_names_the_line),
        cmocka_unit_test(test_dotenv_invalid_names_are_errors),
        cmocka_unit_test(test_dotenv_quote_errors),
        cmocka_unit_test(test_dotenv_error_leaves_map_unchanged),
        cmocka_unit_test(test_dotenv_bom_and_crlf),
        cmocka_unit_test(test_dotenv_load_reads_a_real_file),
        cmocka_unit_test(test_dotenv_load_errors_name_the_file),
        cmocka_unit_test(test_dotenv_load_caps_file_size_at_1_mib),
        cmocka_unit_test(test_dotenv_keeps_the_line_of_each_key),
        cmocka_unit_test(test_dotenv_json_in_double_quotes_is_told_to_use_single_quotes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
