/* test_probe.c: which address `--health` asks, for each BIND_ADDRESS and URL_BASE. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "probe.h"

static void expect_urls(const char *bind, int port, const char *const *want)
{
    config_t c;
    char addr[64];
    snprintf(addr, sizeof addr, "%s", bind);
    memset(&c, 0, sizeof c);
    c.bind_address = addr;
    c.port = port;
    char url[128];
    int i = 0;
    for (; want[i]; i++) {
        assert_int_equal(probe_health_url(&c, i, url, sizeof url), 0);
        assert_string_equal(url, want[i]);
    }
    assert_int_equal(probe_health_url(&c, i, url, sizeof url), -ENOENT);
}

static void test_wildcard_v4_is_probed_on_loopback(void **state)
{
    (void)state;
    expect_urls("0.0.0.0", 5000, (const char *const[]){"http://127.0.0.1:5000/health", NULL});
}

static void test_wildcard_v6_tries_v4_then_v6_loopback(void **state)
{
    (void)state;
    expect_urls("::", 8080,
                (const char *const[]){"http://127.0.0.1:8080/health", "http://[::1]:8080/health", NULL});
}

static void test_a_specific_address_is_probed_as_given(void **state)
{
    (void)state;
    expect_urls("10.1.2.3", 5000, (const char *const[]){"http://10.1.2.3:5000/health", NULL});
    expect_urls("fd00::5", 5000, (const char *const[]){"http://[fd00::5]:5000/health", NULL});
    expect_urls("127.0.0.1", 1, (const char *const[]){"http://127.0.0.1:1/health", NULL});
}

static void test_the_probe_asks_below_url_base(void **state)
{
    (void)state;
    config_t c;
    char addr[] = "::", base[] = "/media/pss";
    memset(&c, 0, sizeof c);
    c.bind_address = addr;
    c.port = 5000;
    c.url_base = base;
    char url[128];
    assert_int_equal(probe_health_url(&c, 0, url, sizeof url), 0);
    assert_string_equal(url, "http://127.0.0.1:5000/media/pss/health");
    assert_int_equal(probe_health_url(&c, 1, url, sizeof url), 0);
    assert_string_equal(url, "http://[::1]:5000/media/pss/health");
}

static void test_a_url_too_long_for_the_buffer_is_an_error(void **state)
{
    (void)state;
    config_t c;
    char addr[] = "10.1.2.3";
    memset(&c, 0, sizeof c);
    c.bind_address = addr;
    c.port = 5000;
    char url[16];
    assert_int_equal(probe_health_url(&c, 0, url, sizeof url), -ENAMETOOLONG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wildcard_v4_is_probed_on_loopback),
        cmocka_unit_test(test_wildcard_v6_tries_v4_then_v6_loopback),
        cmocka_unit_test(test_a_specific_address_is_probed_as_given),
        cmocka_unit_test(test_the_probe_asks_below_url_base),
        cmocka_unit_test(test_a_url_too_long_for_the_buffer_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
