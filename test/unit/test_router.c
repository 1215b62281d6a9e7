/* test_router.c: the HTTP surface as a table: which row answers a method on a path, and what a
 * request that matches no row gets (404 with the row's words, or 405 naming the methods). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "router.h"

static const char *row(const char *path, const char *method)
{
    unsigned allowed;
    const char *miss;
    int i = router_match(path, method, &allowed, &miss);
    assert_true(i >= 0);
    return router_route_path(i);
}

static void refused(const char *path, const char *method, int want, unsigned want_allowed, const char *miss_has)
{
    unsigned allowed = 99;
    const char *miss = NULL;
    assert_int_equal(router_match(path, method, &allowed, &miss), want);
    if (want == -405)
        assert_int_equal(allowed, want_allowed);
    if (miss_has)
        assert_non_null(strstr(miss, miss_has));
}

static void test_webhooks_take_post_and_put_for_the_four_apps_only(void **state)
{
    (void)state;
    assert_string_equal(row("/webhook/sonarr", "POST"), "/webhook/");
    assert_string_equal(row("/webhook/readarr", "PUT"), "/webhook/");
    refused("/webhook/sonarr", "GET", -405, ROUTER_M_POST | ROUTER_M_PUT, NULL);
    refused("/webhook/plex", "POST", -404, 0, "unknown webhook");
    refused("/webhook/", "POST", -404, 0, "unknown webhook");
}

static void test_the_manual_page_is_an_exact_path_before_the_webhook_prefix(void **state)
{
    (void)state;
    assert_string_equal(row("/webhook/manual", "GET"), "/webhook/manual");
    assert_string_equal(row("/webhook/manual", "HEAD"), "/webhook/manual");
    assert_string_equal(row("/webhook/manual", "POST"), "/webhook/manual");
    refused("/webhook/manual", "PUT", -405, ROUTER_M_GET | ROUTER_M_POST, NULL);
    refused("/", "POST", -405, ROUTER_M_GET, NULL);
}

static void test_api_rows_and_the_retry_pattern(void **state)
{
    (void)state;
    assert_string_equal(row("/api/queue", "GET"), "/api/queue");
    assert_string_equal(row("/api/scans", "POST"), "/api/scans");
    assert_string_equal(row("/api/queue/42/retry", "POST"), "/api/queue/");
    refused("/api/queue/42/retry", "GET", -405, ROUTER_M_POST, NULL);
    refused("/api/queue/x/retry", "POST", -404, 0, "no such API endpoint");
    refused("/api/queue/0/retry", "POST", -404, 0, "no such API endpoint");
    refused("/api/queue/42", "POST", -404, 0, "no such API endpoint");
    refused("/api/nothing", "GET", -404, 0, "no such API endpoint");
    refused("/api/stats", "POST", -405, ROUTER_M_GET, NULL);
}

static void test_monitoring_and_static_files_take_get_and_head(void **state)
{
    (void)state;
    assert_string_equal(row("/health", "HEAD"), "/health");
    assert_string_equal(row("/metrics", "GET"), "/metrics");
    assert_string_equal(row("/static/app.js", "GET"), "/static/");
    assert_string_equal(row("/favicon.ico", "GET"), "/favicon.ico");
    refused("/health", "OPTIONS", -405, ROUTER_M_GET, NULL);
    refused("/static/app.js", "DELETE", -405, ROUTER_M_GET, NULL);
}

static void test_triggers_are_the_webhooks_and_the_manual_trigger(void **state)
{
    (void)state;
    assert_string_equal(row("/triggers/sonarr", "POST"), "/triggers/");
    assert_string_equal(row("/triggers/readarr", "PUT"), "/triggers/");
    assert_string_equal(row("/triggers/manual", "GET"), "/triggers/manual");
    assert_string_equal(row("/triggers/manual", "HEAD"), "/triggers/manual");
    assert_string_equal(row("/triggers/manual", "POST"), "/triggers/manual");
    refused("/triggers/manual", "PUT", -405, ROUTER_M_GET | ROUTER_M_POST, NULL);
    refused("/triggers/sonarr", "GET", -405, ROUTER_M_POST | ROUTER_M_PUT, NULL);
    refused("/triggers/autoscan", "POST", -404, 0, "unknown trigger");
    refused("/triggers/manual-trigger", "POST", -404, 0, "unknown trigger");
    refused("/webhook/autoscan", "POST", -404, 0, "unknown webhook");
    refused("/triggers/", "POST", -404, 0, "unknown trigger");
}

static void test_unknown_paths_are_not_found(void **state)
{
    (void)state;
    refused("/nothing", "GET", -404, 0, "no such page");
    refused("/api", "GET", -404, 0, "no such page");
    refused("/healthz", "GET", -404, 0, "no such page");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_webhooks_take_post_and_put_for_the_four_apps_only),
        cmocka_unit_test(test_the_manual_page_is_an_exact_path_before_the_webhook_prefix),
        cmocka_unit_test(test_api_rows_and_the_retry_pattern),
        cmocka_unit_test(test_monitoring_and_static_files_take_get_and_head),
        cmocka_unit_test(test_triggers_are_the_webhooks_and_the_manual_trigger),
        cmocka_unit_test(test_unknown_paths_are_not_found),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
