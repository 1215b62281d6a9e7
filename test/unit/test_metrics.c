/* test_metrics.c: the process collector's reading of /proc (a command name with spaces and
 * parentheses, odd values, text that is not /proc's) and what it prints for this very process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics.h"

/* A /proc/<pid>/stat line (proc(5)): utime 14 = 250, stime 15 = 50, starttime 22 = 12345,
 * vsize 23 = 26619904, rss 24 = 3353. */
#define STAT_TAIL                                                                                  \
    "S 1 2 3 0 -1 4194560 300 0 0 0 250 50 0 0 20 0 3 0 12345 26619904 3353 18446744073709551615 "  \
    "1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n"

static void test_a_stat_line_gives_cpu_memory_and_start(void **state)
{
    (void)state;
    metrics_proc_stat st;
    assert_int_equal(metrics_parse_proc_stat("4242 (plex-servarr-sy) " STAT_TAIL, &st), 0);
    assert_int_equal(st.utime_ticks, 250);
    assert_int_equal(st.stime_ticks, 50);
    assert_int_equal(st.start_ticks, 12345);
    assert_int_equal(st.vsize_bytes, 26619904);
    assert_int_equal(st.rss_pages, 3353);
}

static void test_a_name_with_spaces_and_parentheses_does_not_shift_the_fields(void **state)
{
    (void)state;
    metrics_proc_stat st;
    assert_int_equal(metrics_parse_proc_stat("7 (a) b (c) 9) " STAT_TAIL, &st), 0);
    assert_int_equal(st.start_ticks, 12345);
    assert_int_equal(st.rss_pages, 3353);
}

static void test_text_that_is_not_a_stat_line_is_refused(void **state)
{
    (void)state;
    metrics_proc_stat st;
    assert_int_equal(metrics_parse_proc_stat("", &st), -EINVAL);
    assert_int_equal(metrics_parse_proc_stat("12 (x)", &st), -EINVAL);
    assert_int_equal(metrics_parse_proc_stat("12 (x) S 1 2 3", &st), -EINVAL);      /* cut short */
    assert_int_equal(metrics_parse_proc_stat("12 (x) S 1 2 x 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21", &st),
                     -EINVAL);
}

static void test_the_boot_time_is_found_among_the_other_lines(void **state)
{
    (void)state;
    uint64_t bt = 0;
    const char *text = "cpu  1 2 3\nintr 5 6 7\nctxt 99\nbtime 1764000000\nprocesses 5\n";
    assert_int_equal(metrics_parse_boot_time(text, &bt), 0);
    assert_int_equal(bt, 1764000000u);
    assert_int_equal(metrics_parse_boot_time("cpu  1 2 3\nctxt 99\n", &bt), -EINVAL);
    assert_int_equal(metrics_parse_boot_time("btime soon\n", &bt), -EINVAL);
}

/* The value of an unlabelled sample in text, after its # HELP and # TYPE lines. */
static double sample(const char *text, const char *name, const char *type)
{
    char head[256];
    snprintf(head, sizeof head, "# TYPE %s %s\n%s ", name, type, name);
    const char *p = strstr(text, head);
    assert_non_null(p);
    char help[128];
    snprintf(help, sizeof help, "# HELP %s ", name);
    assert_non_null(strstr(text, help));
    return strtod(p + strlen(head), NULL);
}

static void test_this_process_is_described_as_every_exporter_does(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 0);
    metrics_render_process(&b);
    assert_true(sample(b.data, "process_cpu_seconds_total", "counter") >= 0);
    assert_true(sample(b.data, "process_open_fds", "gauge") >= 3); /* stdin, stdout, stderr at least */
    assert_true(sample(b.data, "process_max_fds", "gauge") >= sample(b.data, "process_open_fds", "gauge"));
    assert_true(sample(b.data, "process_resident_memory_bytes", "gauge") > 0);
    assert_true(sample(b.data, "process_virtual_memory_bytes", "gauge") > 0);
    double start = sample(b.data, "process_start_time_seconds", "gauge");
    double now = (double)time(NULL);
    assert_true(start <= now + 2 && start > now - 3600);
    assert_non_null(strstr(b.data, "# TYPE pss_build_info gauge\npss_build_info{version=\"" PSS_VERSION "\"} 1\n"));
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_stat_line_gives_cpu_memory_and_start),
        cmocka_unit_test(test_a_name_with_spaces_and_parentheses_does_not_shift_the_fields),
        cmocka_unit_test(test_text_that_is_not_a_stat_line_is_refused),
        cmocka_unit_test(test_the_boot_time_is_found_among_the_other_lines),
        cmocka_unit_test(test_this_process_is_described_as_every_exporter_does),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
