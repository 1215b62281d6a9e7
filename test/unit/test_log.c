/* test_log.c: levels, what a line may contain, escaping of untrusted text, and the debug macro
 * that evaluates nothing when debug is off. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"
#include "test_hooks.h"

static char lines[8][4096];
static log_level_t levels[8];
static int n_lines;

static void capture(log_level_t lvl, const char *line)
{
    if (n_lines < 8) {
        levels[n_lines] = lvl;
        strncpy(lines[n_lines], line, sizeof lines[0] - 1);
    }
    n_lines++;
}

static int setup(void **state)
{
    (void)state;
    n_lines = 0;
    memset(lines, 0, sizeof lines);
    log_set_sink(capture);
    log_set_level(LOG_LVL_INFO);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    log_set_sink(NULL);
    return 0;
}

static void test_level_names_parse_in_any_case(void **state)
{
    (void)state;
    log_level_t l;
    assert_int_equal(log_level_parse("DEBUG", &l), 0);
    assert_int_equal(l, LOG_LVL_DEBUG);
    assert_int_equal(log_level_parse("warning", &l), 0);
    assert_int_equal(l, LOG_LVL_WARN);
    assert_int_equal(log_level_parse("Warn", &l), 0);
    assert_int_equal(l, LOG_LVL_WARN);
    assert_int_equal(log_level_parse("error", &l), 0);
    assert_int_equal(l, LOG_LVL_ERROR);
    assert_int_equal(log_level_parse("verbose", &l), -1);
    assert_int_equal(log_level_parse(NULL, &l), -1);
}

static void test_lines_below_the_level_are_not_written(void **state)
{
    (void)state;
    log_set_level(LOG_LVL_WARN);
    log_info("not this one");
    log_warn("but this one %d", 7);
    log_error("and this");
    assert_int_equal(n_lines, 2);
    assert_int_equal(levels[0], LOG_LVL_WARN);
    assert_non_null(strstr(lines[0], "but this one 7"));
    assert_int_equal(levels[1], LOG_LVL_ERROR);
}

static int evaluated;
static const char *counted(const char *s)
{
    evaluated++;
    return s;
}

static void test_debug_arguments_are_not_evaluated_when_debug_is_off(void **state)
{
    (void)state;
    evaluated = 0;
    log_debug("%s", counted("x"));
    assert_int_equal(evaluated, 0);
    assert_int_equal(n_lines, 0);
    log_set_level(LOG_LVL_DEBUG);
    log_debug("%s", counted("x"));
    assert_int_equal(evaluated, 1);
    assert_int_equal(n_lines, 1);
}

static void test_a_newline_in_a_line_cannot_split_the_record(void **state)
{
    (void)state;
    log_info("first\nsecond\rthird");
    assert_int_equal(n_lines, 1);
    assert_null(strchr(lines[0], '\n'));
    assert_null(strchr(lines[0], '\r'));
}

static void test_escaped_text_cannot_forge_a_journal_record(void **state)
{
    (void)state;
    log_info("folder %s", log_esc("/tv/x\n<0>root login\x1b"));
    assert_non_null(strstr(lines[0], "folder /tv/x\\n<0>root login\\x1b"));
    assert_string_equal(log_esc(NULL), "(null)");
}

static void test_escape_buffers_hold_several_values_in_one_line(void **state)
{
    (void)state;
    const char *a = log_esc("a\tb");
    const char *b = log_esc("c\\d");
    assert_string_equal(a, "a\\tb");
    assert_string_equal(b, "c\\\\d");
}

static void test_long_text_is_cut_with_dots(void **state)
{
    (void)state;
    char big[3000];
    memset(big, 'p', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    const char *e = log_esc(big);
    size_t n = strlen(e);
    assert_true(n < 1024);
    assert_string_equal(e + n - 3, "...");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_level_names_parse_in_any_case, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lines_below_the_level_are_not_written, setup, teardown),
        cmocka_unit_test_setup_teardown(test_debug_arguments_are_not_evaluated_when_debug_is_off, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_newline_in_a_line_cannot_split_the_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_escaped_text_cannot_forge_a_journal_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_escape_buffers_hold_several_values_in_one_line, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_long_text_is_cut_with_dots, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
