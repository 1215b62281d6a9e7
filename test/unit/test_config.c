/* test_config.c: the configuration table, durations, secret files and the script's .env
 * (dotenv syntax itself: test_dotenv.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_tmpfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "dotenv.h"
#include "log.h"
#include "test_hooks.h"

/* ---------------------------------------------------------------- helpers */

static char last_log[4096];
static int log_lines;

static void capture_log(log_level_t lvl, const char *line)
{
    (void)lvl;
    snprintf(last_log, sizeof last_log, "%s", line);
    log_lines++;
}

static int setup(void **state)
{
    (void)state;
    last_log[0] = '\0';
    log_lines = 0;
    log_set_sink(capture_log);
    log_set_level(LOG_LVL_INFO);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    log_set_sink(NULL);
    log_set_level(LOG_LVL_INFO);
    return 0;
}

/* kv: NULL-terminated list of KEY, VALUE pairs. */
static void map_of(env_map *m, const char *const *kv)
{
    memset(m, 0, sizeof *m);
    for (size_t i = 0; kv && kv[i]; i += 2)
        env_map_set(m, kv[i], kv[i + 1]);
}

/* config_build over env pairs (and file pairs, may be NULL). */
static int build(config_t *c, const char *const *env_kv, const char *const *file_kv, char *err,
                 size_t errlen)
{
    env_map env, file;
    map_of(&env, env_kv);
    map_of(&file, file_kv);
    memset(c, 0, sizeof *c);
    int rc = config_build(c, &env, file_kv ? &file : NULL, err, errlen);
    env_map_free(&env);
    env_map_free(&file);
    return rc;
}

/* Build with one variable set; expect -EINVAL and return the message in err. */
static void expect_bad(const char *key, const char *value, char *err, size_t errlen)
{
    const char *kv[] = {key, value, NULL};
    config_t c;
    int rc = build(&c, kv, NULL, err, errlen);
    if (rc != -EINVAL)
        fail_msg("%s=%s: expected -EINVAL, got %d", key, value, rc);
}

/* ---------------------------------------------------------------- durations */

static void test_duration_bare_number_means_seconds(void **state)
{
    (void)state;
    uint64_t ms = 1;
    assert_int_equal(parse_duration_ms("30", &ms), 0);
    assert_int_equal(ms, 30000);
    assert_int_equal(parse_duration_ms("0", &ms), 0);
    assert_int_equal(ms, 0);
}

static void test_duration_units_ms_s_m_h_d(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        uint64_t ms;
    } cases[] = {{"250ms", 250},        {"30s", 30000},       {"5m", 300000},
                 {"1h", 3600000},       {"1d", 86400000},     {"  45s  ", 45000},
                 {"2H", 7200000},       {"10MS", 10},         {"\t7d\n", 7 * 86400000ULL}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t ms = 0;
        if (parse_duration_ms(cases[i].s, &ms) != 0 || ms != cases[i].ms)
            fail_msg("'%s' gave %llu", cases[i].s, (unsigned long long)ms);
    }
}

static void test_duration_rejects_garbage_and_overflow(void **state)
{
    (void)state;
    static const char *const bad[] = {"",    "  ",   "s",      "-5",    "+5",   "1.5m",
                                      "5x",  "5 m",  "5sec",   "1h30m", "m5",   "abc",
                                      "18446744073709551616",  "18446744073709551615d"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t ms = 42;
        if (parse_duration_ms(bad[i], &ms) != -EINVAL)
            fail_msg("'%s' was accepted", bad[i]);
        assert_int_equal(ms, 42);
    }
    assert_int_equal(parse_duration_ms(NULL, &(uint64_t){0}), -EINVAL);
}

/* ---------------------------------------------------------------- defaults */

static void test_every_variable_has_its_default(void **state)
{
    (void)state;
    config_t c;
    char err[512];
    assert_int_equal(build(&c, NULL, NULL, err, sizeof err), 0);
    assert_null(c.plex_url);
    assert_null(c.plex_token);
    assert_int_equal(c.plex_timeout_ms, 30000);
    assert_string_equal(c.plex_identifier, "plex-servarr-sync");
    assert_int_equal(c.section_refresh_ms, 15 * 60000);
    assert_null(c.section_map);
    assert_int_equal(c.n_section_map, 0);
    assert_int_equal(c.port, 5000);
    assert_string_equal(c.bind_address, "0.0.0.0");
    assert_string_equal(c.state_dir, "./state");
    assert_int_equal(c.durability, DURABILITY_FULL);
    assert_null(c.webhook_user);
    assert_null(c.webhook_pass);
    assert_string_equal(c.manual_user, "admin");
    assert_null(c.manual_pass);
    assert_null(c.trusted_proxies);
    assert_true(c.use_rclone);
    assert_null(c.mounts);
    assert_int_equal(c.n_mounts, 0);
    assert_int_equal(c.rclone_timeout_ms, 10 * 60000);
    assert_int_equal(c.path_repl.n, 0);
    assert_int_equal(c.rclone_path_repl.n, 0);
    assert_int_equal(c.local_path_repl.n, 0);
    assert_false(c.local_path_repl_set);
    assert_int_equal(c.n_anchors, 0);
    assert_int_equal(c.scan_scope, SCAN_SCOPE_FOLDER);
    assert_int_equal(c.webhook_delay_ms, 30000);
    assert_int_equal(c.webhook_max_delay_ms, 10 * 60000);
    assert_int_equal(c.minimum_age_ms, 0);
    assert_int_equal(c.sync_cooldown_ms, 0);
    assert_int_equal(c.retry_max_delay_ms, 5 * 60000);
    assert_int_equal(c.max_concurrent_syncs, 4);
    assert_int_equal(c.max_folders_per_event, 100);
    assert_int_equal(c.max_pending, 100000);
    assert_int_equal(c.history_days, 7);
    assert_int_equal(c.max_header_bytes, 16 * 1024);
    assert_int_equal(c.max_webhook_body, 16 * 1024 * 1024);
    assert_int_equal(c.max_body, 64 * 1024);
    assert_int_equal(c.max_connections, 4096);
    assert_int_equal(c.header_timeout_ms, 10000);
    assert_int_equal(c.idle_timeout_ms, 60000);
    assert_int_equal(c.log_level, LOG_LVL_INFO);
    assert_null(c.tz);
    config_free(&c);
    config_free(&c); /* a freed config is all zero: freeing again is harmless */
}

static void test_every_variable_accepts_a_good_value(void **state)
{
    (void)state;
    const char *kv[] = {"PLEX_URL", "https://plex.example:32400/",
                        "PLEX_TOKEN", "tok",
                        "PLEX_TIMEOUT", "5s",
                        "PLEXAPI_HEADER_IDENTIFIER", "my-id",
                        "SECTION_REFRESH", "1h",
                        "SECTION_MAPPING", "{\"/tv\": 3}",
                        "PORT", "8080",
                        "BIND_ADDRESS", "::1",
                        "STATE_DIR", "/var/lib/pss/",
                        "DURABILITY", "Process",
                        "WEBHOOK_USER", "arr",
                        "WEBHOOK_PASS", "secret",
                        "MANUAL_USER", "me",
                        "MANUAL_PASS", "pw",
                        "TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8",
                        "USE_RCLONE", "YES",
                        "RCLONE_RC_URL", "http://127.0.0.1:5572//",
                        "RCLONE_MOUNT_ROOT", "/mnt/rclone/",
                        "RCLONE_FS", "gdrive:",
                        "RCLONE_RC_USER", "ru",
                        "RCLONE_RC_PASS", "rp",
                        "RCLONE_TIMEOUT", "2m",
                        "PATH_REPLACEMENTS", "{\"/data\": \"/plex\"}",
                        "RCLONE_PATH_REPLACEMENTS", "{\"/data\": \"/mnt/rclone\"}",
                        "LOCAL_PATH_REPLACEMENTS", "{\"/data\": \"/srv/data\"}",
                        "ANCHOR_FILES", "[\"/mnt/rclone/.anchor\"]",
                        "SCAN_SCOPE", "ROOT",
                        "WEBHOOK_DELAY", "10",
                        "WEBHOOK_MAX_DELAY", "1h",
                        "MINIMUM_AGE", "2m",
                        "SYNC_COOLDOWN", "30s",
                        "RETRY_MAX_DELAY", "1m",
                        "MAX_CONCURRENT_SYNCS", "16",
                        "MAX_FOLDERS_PER_EVENT", "50",
                        "MAX_PENDING", "200000",
                        "HISTORY_DAYS", "30",
                        "MAX_HEADER_BYTES", "32768",
                        "MAX_WEBHOOK_BODY", "1048576",
                        "MAX_BODY", "4096",
                        "MAX_CONNECTIONS", "100",
                        "HEADER_TIMEOUT", "5s",
                        "IDLE_TIMEOUT", "2m",
                        "LOG_LEVEL", "DEBUG",
                        "TZ", "Europe/Berlin",
                        NULL};
    config_t c;
    char err[512] = "";
    int rc = build(&c, kv, NULL, err, sizeof err);
    if (rc)
        fail_msg("%s", err);
    assert_string_equal(c.plex_url, "https://plex.example:32400");
    assert_string_equal(c.plex_token, "tok");
    assert_int_equal(c.plex_timeout_ms, 5000);
    assert_string_equal(c.plex_identifier, "my-id");
    assert_int_equal(c.section_refresh_ms, 3600000);
    assert_int_equal(c.n_section_map, 1);
    assert_string_equal(c.section_map[0].prefix, "/tv");
    assert_int_equal(c.section_map[0].section, 3);
    assert_int_equal(c.port, 8080);
    assert_string_equal(c.bind_address, "::1");
    assert_string_equal(c.state_dir, "/var/lib/pss");
    assert_int_equal(c.durability, DURABILITY_PROCESS);
    assert_string_equal(c.webhook_user, "arr");
    assert_string_equal(c.webhook_pass, "secret");
    assert_string_equal(c.manual_user, "me");
    assert_string_equal(c.manual_pass, "pw");
    assert_string_equal(c.trusted_proxies, "127.0.0.1, 10.0.0.0/8");
    assert_true(c.use_rclone);
    assert_int_equal(c.n_mounts, 1);
    assert_string_equal(c.mounts[0].root, "/mnt/rclone");
    assert_string_equal(c.mounts[0].url, "http://127.0.0.1:5572");
    assert_string_equal(c.mounts[0].fs, "gdrive:");
    assert_string_equal(c.mounts[0].user, "ru");
    assert_string_equal(c.mounts[0].pass, "rp");
    assert_int_equal(c.rclone_timeout_ms, 120000);
    assert_string_equal(c.path_repl.v[0].to, "/plex");
    assert_string_equal(c.rclone_path_repl.v[0].to, "/mnt/rclone");
    assert_string_equal(c.local_path_repl.v[0].to, "/srv/data");
    assert_true(c.local_path_repl_set);
    assert_int_equal(c.n_anchors, 1);
    assert_string_equal(c.anchors[0], "/mnt/rclone/.anchor");
    assert_int_equal(c.scan_scope, SCAN_SCOPE_ROOT);
    assert_int_equal(c.webhook_delay_ms, 10000);
    assert_int_equal(c.webhook_max_delay_ms, 3600000);
    assert_int_equal(c.minimum_age_ms, 120000);
    assert_int_equal(c.sync_cooldown_ms, 30000);
    assert_int_equal(c.retry_max_delay_ms, 60000);
    assert_int_equal(c.max_concurrent_syncs, 16);
    assert_int_equal(c.max_folders_per_event, 50);
    assert_int_equal(c.max_pending, 200000);
    assert_int_equal(c.history_days, 30);
    assert_int_equal(c.max_header_bytes, 32768);
    assert_int_equal(c.max_webhook_body, 1048576);
    assert_int_equal(c.max_body, 4096);
    assert_int_equal(c.max_connections, 100);
    assert_int_equal(c.header_timeout_ms, 5000);
    assert_int_equal(c.idle_timeout_ms, 120000);
    assert_int_equal(c.log_level, LOG_LVL_DEBUG);
    assert_string_equal(c.tz, "Europe/Berlin");
    config_free(&c);
}

static void test_state_dir_defaults_to_first_state_directory_entry(void **state)
{
    (void)state;
    config_t c;
    char err[512];
    const char *one[] = {"STATE_DIRECTORY", "/var/lib/plex-servarr-sync:/var/lib/other", NULL};
    assert_int_equal(build(&c, one, NULL, err, sizeof err), 0);
    assert_string_equal(c.state_dir, "/var/lib/plex-servarr-sync");
    config_free(&c);

    const char *both[] = {"STATE_DIRECTORY", "/var/lib/a", "STATE_DIR", "/srv/b", NULL};
    assert_int_equal(build(&c, both, NULL, err, sizeof err), 0);
    assert_string_equal(c.state_dir, "/srv/b");
    config_free(&c);

    const char *empty[] = {"STATE_DIRECTORY", "", NULL};
    assert_int_equal(build(&c, empty, NULL, err, sizeof err), 0);
    assert_string_equal(c.state_dir, "./state");
    config_free(&c);
}

static void test_empty_value_means_unset(void **state)
{
    (void)state;
    const char *kv[] = {"PLEX_URL", "", "PORT", "", "WEBHOOK_DELAY", "", "SECTION_MAPPING", "",
                        "USE_RCLONE", "", "RCLONE_RC_URL", "", "MANUAL_PASS", "", NULL};
    config_t c;
    char err[512];
    assert_int_equal(build(&c, kv, NULL, err, sizeof err), 0);
    assert_null(c.plex_url);
    assert_int_equal(c.port, 5000);
    assert_int_equal(c.webhook_delay_ms, 30000);
    assert_int_equal(c.n_section_map, 0);
    assert_true(c.use_rclone);
    assert_int_equal(c.n_mounts, 0);
    assert_null(c.manual_pass);
    config_free(&c);
}

static void test_unknown_variables_are_ignored(void **state)
{
    (void)state;
    const char *kv[] = {"HOME", "/root", "PATH", "/bin", "PLEX_URLX", "nonsense", "port", "x", NULL};
    config_t c;
    char err[512];
    assert_int_equal(build(&c, kv, NULL, err, sizeof err), 0);
    assert_int_equal(c.port, 5000);
    config_free(&c);
}

static void test_bool_accepts_every_spelling_in_any_case(void **state)
{
    (void)state;
    static const struct {
        const char *v;
        bool b;
    } cases[] = {{"true", true}, {"TRUE", true}, {"1", true},    {"yes", true},  {"On", true},
                 {" yes ", true}, {"false", false}, {"False", false}, {"0", false}, {"NO", false},
                 {"off", false}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *kv[] = {"USE_RCLONE", cases[i].v, NULL};
        config_t c;
        char err[512];
        assert_int_equal(build(&c, kv, NULL, err, sizeof err), 0);
        if (c.use_rclone != cases[i].b)
            fail_msg("USE_RCLONE=%s", cases[i].v);
        config_free(&c);
    }
}

/* ---------------------------------------------------------------- bad values */

static void test_bad_values_name_the_variable_and_echo_the_value(void **state)
{
    (void)state;
    static const struct {
        const char *key, *value, *expect;
    } cases[] = {
        {"PORT", "0", "PORT: must be between 1 and 65535 (got '0')"},
        {"PORT", "65536", "PORT: must be between 1 and 65535 (got '65536')"},
        {"PORT", "50x", "PORT: not a whole number (got '50x')"},
        {"PORT", "-1", "PORT: not a whole number (got '-1')"},
        {"PORT", "99999999999999999999999", "PORT: must be between 1 and 65535"},
        {"WEBHOOK_DELAY", "soon", "WEBHOOK_DELAY: not a duration (use 30, 30s, 5m, 1h, 1d or 250ms) (got 'soon')"},
        {"WEBHOOK_DELAY", "2d", "WEBHOOK_DELAY: must be between 0 and 1d (got '2d')"},
        {"PLEX_TIMEOUT", "500ms", "PLEX_TIMEOUT: must be between 1s and 1h (got '500ms')"},
        {"MINIMUM_AGE", "1.5m", "MINIMUM_AGE: not a duration"},
        {"SYNC_COOLDOWN", "x", "SYNC_COOLDOWN: not a duration"},
        {"RETRY_MAX_DELAY", "0", "RETRY_MAX_DELAY: must be between 1s and 1d"},
        {"SECTION_REFRESH", "500ms", "SECTION_REFRESH: must be between 1s and 1d"},
        {"RCLONE_TIMEOUT", "0", "RCLONE_TIMEOUT: must be between 1s and 1d"},
        {"HEADER_TIMEOUT", "1h", "HEADER_TIMEOUT: must be between 1s and 10m"},
        {"IDLE_TIMEOUT", "nope", "IDLE_TIMEOUT: not a duration"},
        {"USE_RCLONE", "maybe", "USE_RCLONE: not a boolean (use true/false, yes/no, on/off or 1/0) (got 'maybe')"},
        {"DURABILITY", "paranoid", "DURABILITY: must be one of full|process (got 'paranoid')"},
        {"SCAN_SCOPE", "series", "SCAN_SCOPE: must be one of folder|root (got 'series')"},
        {"LOG_LEVEL", "verbose", "LOG_LEVEL: must be one of error|warn|info|debug (got 'verbose')"},
        {"MAX_PENDING", "99999", "MAX_PENDING: must be between 100000 and 100000000 (got '99999')"},
        {"MAX_CONCURRENT_SYNCS", "0", "MAX_CONCURRENT_SYNCS: must be between 1 and 256"},
        {"MAX_CONCURRENT_SYNCS", "257", "MAX_CONCURRENT_SYNCS: must be between 1 and 256"},
        {"MAX_FOLDERS_PER_EVENT", "10001", "MAX_FOLDERS_PER_EVENT: must be between 1 and 10000"},
        {"HISTORY_DAYS", "0", "HISTORY_DAYS: must be between 1 and 3650"},
        {"MAX_HEADER_BYTES", "100", "MAX_HEADER_BYTES: must be between"},
        {"MAX_WEBHOOK_BODY", "1e9", "MAX_WEBHOOK_BODY: not a whole number"},
        {"MAX_BODY", "0", "MAX_BODY: must be between"},
        {"MAX_CONNECTIONS", "0", "MAX_CONNECTIONS: must be between"},
        {"PLEX_URL", "plex:32400", "PLEX_URL: must start with http:// or https:// (got 'plex:32400')"},
        {"PLEX_URL", "http://", "PLEX_URL: has no host"},
        {"PLEX_URL", "http://a b", "PLEX_URL: must not contain spaces or control characters"},
        {"RCLONE_RC_URL", "ftp://x", "RCLONE_RC_URL: must start with http:// or https://"},
        {"BIND_ADDRESS", "localhost", "BIND_ADDRESS: not an IPv4 or IPv6 address (got 'localhost')"},
        {"RCLONE_MOUNT_ROOT", "mnt/rclone", "RCLONE_MOUNT_ROOT: must be an absolute path (got 'mnt/rclone')"},
        {"STATE_DIR", "/a\nb", "STATE_DIR: contains a control character (got '/a\\nb')"},
        {"PLEXAPI_HEADER_IDENTIFIER", "x\r\nEvil: 1", "PLEXAPI_HEADER_IDENTIFIER: contains a control character"},
        {"PATH_REPLACEMENTS", "{not json}", "PATH_REPLACEMENTS: not valid JSON (error at byte "},
        {"PATH_REPLACEMENTS", "[\"/a\"]", "PATH_REPLACEMENTS: must be a JSON object"},
        {"PATH_REPLACEMENTS", "{\"/a\": 1}", "PATH_REPLACEMENTS: the value of '/a' must be a string"},
        {"PATH_REPLACEMENTS", "{\"/a\": \"/b\"} x", "PATH_REPLACEMENTS: not valid JSON"},
        {"PATH_REPLACEMENTS", "{\"/a\": \"/b\", \"/A/\": \"/c\"}", "PATH_REPLACEMENTS: '/A' is given twice"},
        {"RCLONE_PATH_REPLACEMENTS", "{\"/a\": \"/b\\n\"}", "RCLONE_PATH_REPLACEMENTS: the entry '/a' contains a control character"},
        {"LOCAL_PATH_REPLACEMENTS", "42", "LOCAL_PATH_REPLACEMENTS: must be a JSON object"},
        {"SECTION_MAPPING", "{\"/tv\": \"two\"}", "SECTION_MAPPING: the section of '/tv' must be a positive whole number"},
        {"SECTION_MAPPING", "{\"/tv\": 2.5}", "SECTION_MAPPING: the section of '/tv' must be a positive whole number"},
        {"SECTION_MAPPING", "{\"/tv\": 0}", "SECTION_MAPPING: the section of '/tv' must be"},
        {"SECTION_MAPPING", "{\"/tv\": -3}", "SECTION_MAPPING: the section of '/tv' must be"},
        {"SECTION_MAPPING", "{\"/tv\": true}", "SECTION_MAPPING: the section of '/tv' must be"},
        {"SECTION_MAPPING", "{\"/tv\": 1, \"/TV/\": 2}", "SECTION_MAPPING: '/TV' is given twice"},
        {"ANCHOR_FILES", "{\"/a\": 1}", "ANCHOR_FILES: must be a JSON list"},
        {"ANCHOR_FILES", "[\"relative/file\"]", "ANCHOR_FILES: item 1 ('relative/file') must be an absolute path"},
        {"ANCHOR_FILES", "[\"/ok\", 3]", "ANCHOR_FILES: item 2 must be a non-empty string"},
        {"ANCHOR_FILES", "[\"\"]", "ANCHOR_FILES: item 1 must be a non-empty string"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[1024] = "";
        expect_bad(cases[i].key, cases[i].value, err, sizeof err);
        if (strncmp(err, cases[i].expect, strlen(cases[i].expect)) != 0)
            fail_msg("%s=%s: got \"%s\", want \"%s\"", cases[i].key, cases[i].value, err, cases[i].expect);
    }
}

static void test_secret_values_are_never_echoed(void **state)
{
    (void)state;
    static const struct {
        const char *key, *value, *expect;
    } cases[] = {
        {"PLEX_TOKEN", "s3cr3t\n", "PLEX_TOKEN: contains a control character"},
        {"WEBHOOK_PASS", "s3cr3t\x01", "WEBHOOK_PASS: contains a control character"},
        {"MANUAL_PASS", "s3cr3t\x7f", "MANUAL_PASS: contains a control character"},
        {"RCLONE_RC_PASS", "s3cr3t\t", "RCLONE_RC_PASS: contains a control character"},
        {"RCLONE_MOUNTS", "[{\"root\": \"/m\", \"url\": \"http://h\", \"pass\": \"s3cr3t\"", "RCLONE_MOUNTS: not valid JSON"},
        {"RCLONE_MOUNTS", "[{\"root\": \"/m\", \"url\": \"h\", \"pass\": \"s3cr3t\"}]",
         "RCLONE_MOUNTS: item 1: url must start with http:// or https://"},
        {"RCLONE_MOUNTS", "[{\"root\": \"/m\", \"url\": \"http://h\", \"password\": \"s3cr3t\"}]",
         "RCLONE_MOUNTS: item 1 has an unknown key"},
        {"RCLONE_MOUNTS", "[{\"root\": \"/m\", \"url\": \"http://h\", \"pass\": 5, \"user\": \"s3cr3t\"}]",
         "RCLONE_MOUNTS: item 1: pass must be a string"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[1024] = "";
        expect_bad(cases[i].key, cases[i].value, err, sizeof err);
        if (strncmp(err, cases[i].expect, strlen(cases[i].expect)) != 0)
            fail_msg("%s: got \"%s\", want \"%s\"", cases[i].key, err, cases[i].expect);
        assert_null(strstr(err, "s3cr3t"));
        assert_null(strstr(err, "got '"));
    }
}

static void test_max_delay_below_delay_is_an_error_naming_max_delay(void **state)
{
    (void)state;
    config_t c;
    char err[512];
    const char *kv[] = {"WEBHOOK_DELAY", "5m", "WEBHOOK_MAX_DELAY", "1m", NULL};
    assert_int_equal(build(&c, kv, NULL, err, sizeof err), -EINVAL);
    assert_string_equal(err, "WEBHOOK_MAX_DELAY: must not be shorter than WEBHOOK_DELAY (got '1m')");

    const char *over_default[] = {"WEBHOOK_DELAY", "20m", NULL};
    assert_int_equal(build(&c, over_default, NULL, err, sizeof err), -EINVAL);
    assert_string_equal(err, "WEBHOOK_MAX_DELAY: must not be shorter than WEBHOOK_DELAY (got '10m')");

    const char *equal[] = {"WEBHOOK_DELAY", "60", "WEBHOOK_MAX_DELAY", "1m", NULL};
    assert_int_equal(build(&c, equal, NULL, err, sizeof err), 0);
    config_free(&c);
}

static void test_webhook_auth_needs_user_and_password(void **state)
{
    (void)state;
    config_t c;
    char err[512];
    const char *user_only[] = {"WEBHOOK_USER", "arr", NULL};
    assert_int_equal(build(&c, user_only, NULL, err, sizeof err), -EINVAL);
    assert_string_equal(err, "WEBHOOK_PASS: must be set when WEBHOOK_USER is set");
    const char *pass_only[] = {"WEBHOOK_PASS", "pw", NULL};
    assert_int_equal(build(&c, pass_only, NULL, err, sizeof err), -EINVAL);
    assert_string_equal(err, "WEBHOOK_USER: must be set when WEBHOOK_PASS is set");
}

static void test_trusted_proxies_are_parsed_into_networks(void **state)
{
    (void)state;
    config_t c;
    char err[512];
    const char *kv[] = {"TRUSTED_PROXIES", " 10.1.2.3/8, ::1 ,192.0.2.7,fd00:ab::/16,,", NULL};
    assert_int_equal(build(&c, kv, NULL, err, sizeof err), 0);
    assert_int_equal(c.n_trusted, 4);
    static const unsigned char net10[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 0};
    assert_memory_equal(c.trusted[0].addr, net10, 16); /* host bits cleared */
    assert_int_equal(c.trusted[0].prefix, 8 + 96);
    static const unsigned char lo6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    assert_memory_equal(c.trusted[1].addr, lo6, 16);
    assert_int_equal(c.trusted[1].prefix, 128);
    assert_int_equal(c.trusted[2].prefix, 128);
    assert_int_equal(c.trusted[3].addr[0], 0xfd);
    assert_int_equal(c.trusted[3].addr[1], 0x00);
    assert_int_equal(c.trusted[3].addr[2], 0);
    assert_int_equal(c.trusted[3].prefix, 16);
    config_free(&c);

    static const char *const bad[] = {"proxy.lan", "10.0.0.0/33", "::1/129", "10.0.0.1/", "1.2.3.4/x", "1.2.3"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        expect_bad("TRUSTED_PROXIES", bad[i], err, sizeof err);
        assert_non_null(strstr(err, "TRUSTED_PROXIES"));
    }
}

static void test_url_base_is_normalized_and_odd_shapes_are_refused(void **state)
{
    (void)state;
    static const struct {
        const char *value, *want; /* want NULL: no base */
    } good[] = {{"/pss", "/pss"},         {"pss", "/pss"},   {"/pss/", "/pss"},     {" /media/sync// ", "/media/sync"},
                {"/", NULL},              {"///", NULL},     {"/a-b_c.d~e", "/a-b_c.d~e"}, {"/..x/y..", "/..x/y.."}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        const char *kv[] = {"URL_BASE", good[i].value, NULL};
        config_t c;
        char err[512] = "";
        if (build(&c, kv, NULL, err, sizeof err) != 0)
            fail_msg("URL_BASE=%s: %s", good[i].value, err);
        if (good[i].want)
            assert_string_equal(c.url_base, good[i].want);
        else
            assert_null(c.url_base);
        config_free(&c);
    }
    static const struct {
        const char *value, *expect;
    } bad[] = {
        {"http://host/pss", "URL_BASE: only the path of the address, such as /pss (not the scheme and host) "
                            "(got 'http://host/pss')"},
        {"/a//b", "URL_BASE: must be a path such as /pss, without empty, '.' or '..' segments (got '/a//b')"},
        {"/a/../b", "URL_BASE: must be a path such as /pss, without empty, '.' or '..' segments"},
        {"/./a", "URL_BASE: must be a path such as /pss, without empty"},
        {"/p ss", "URL_BASE: must be a path such as /pss or /media/sync: letters, digits, '-', '.', '_' and '~' "
                  "between slashes (got '/p ss')"},
        {"/pss?x=1", "URL_BASE: must be a path such as /pss or /media/sync"},
        {"/p%73s", "URL_BASE: must be a path such as /pss or /media/sync"},
        {"/caf\xc3\xa9", "URL_BASE: must be a path such as /pss or /media/sync"},
        {"/a\nb", "URL_BASE: contains a control character"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[1024] = "";
        expect_bad("URL_BASE", bad[i].value, err, sizeof err);
        if (strncmp(err, bad[i].expect, strlen(bad[i].expect)) != 0)
            fail_msg("URL_BASE=%s: got \"%s\", want \"%s\"", bad[i].value, err, bad[i].expect);
    }
    char long_base[300];
    memset(long_base, 'a', sizeof long_base - 1);
    long_base[0] = '/';
    long_base[sizeof long_base - 1] = '\0';
    char err[1024] = "";
    expect_bad("URL_BASE", long_base, err, sizeof err);
    assert_non_null(strstr(err, "URL_BASE: longer than 200 bytes"));
}

static void test_buffered_bytes_must_hold_one_webhook(void **state)
{
    (void)state;
    config_t c;
    char err[512];
    const char *kv[] = {"MAX_BUFFERED_BYTES", "2097152", "MAX_WEBHOOK_BODY", "4194304", NULL};
    assert_int_equal(build(&c, kv, NULL, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "MAX_BUFFERED_BYTES: must not be smaller than MAX_WEBHOOK_BODY"));
    const char *ok[] = {"MAX_BUFFERED_BYTES", "4194304", "MAX_WEBHOOK_BODY", "4194304", NULL};
    assert_int_equal(build(&c, ok, NULL, err, sizeof err), 0);
    assert_int_equal(c.max_buffered_bytes, 4194304);
    config_free(&c);
    assert_int_equal(build(&c, NULL, NULL, err, sizeof err), 0);
    assert_int_equal(c.max_buffered_bytes, (size_t)256 << 20);
    config_free(&c);
}

static void test_failed_build_leaves_the_output_untouched(void **state)
{
    (void)state;
    config_t live;
    char err[512];
    assert_int_equal(build(&live, NULL, NULL, err, sizeof err), 0);
    char *identifier = live.plex_identifier;
    env_map env = {0};
    env_map_set(&env, "HISTORY_DAYS", "3");
    env_map_set(&env, "PORT", "nope");
    assert_int_equal(config_build(&live, &env, NULL, err, sizeof err), -EINVAL);
    assert_ptr_equal(live.plex_identifier, identifier);
    assert_string_equal(live.plex_identifier, "plex-servarr-sync");
    assert_int_equal(live.port, 5000);
    assert_int_equal(live.history_days, 7);
    env_map_free(&env);
    config_free(&live);
}

static void test_json_depth_and_string_length_are_bounded(void **state)
{
    (void)state;
    char err[1024];
    char deep[35];
    memset(deep, '[', 17);
    memset(deep + 17, ']', 17);
    deep[34] = '\0';
    expect_bad("ANCHOR_FILES", deep, err, sizeof err);
    assert_non_null(strstr(err, "ANCHOR_FILES: JSON nested deeper than 16 levels"));

    char *long_path = malloc(4200);
    assert_non_null(long_path);
    memset(long_path, 'a', 4199);
    long_path[0] = '/';
    long_path[4199] = '\0';
    char *json = NULL;
    assert_true(asprintf(&json, "[\"%s\"]", long_path) > 0);
    expect_bad("ANCHOR_FILES", json, err, sizeof err);
    assert_non_null(strstr(err, "ANCHOR_FILES: a JSON string is longer than 4096 bytes"));
    free(json);

    expect_bad("PLEX_TOKEN", long_path, err, sizeof err);
    assert_string_equal(err, "PLEX_TOKEN: longer than 4096 bytes");
    free(long_path);

    /* "[" inside strings does not count as nesting */
    const char *kv[] = {"ANCHOR_FILES", "[\"/a[[[[[[[[[[[[[[[[[[[[\"]", NULL};
    config_t c;
    assert_int_equal(build(&c, kv, NULL, err, sizeof err), 0);
    assert_string_equal(c.anchors[0], "/a[[[[[[[[[[[[[[[[[[[[");
    config_free(&c);
}

/* ---------------------------------------------------------------- JSON maps */

static void test_python_script_env_file_loads_unchanged(void **state)
{
    (void)state;
    static const char text[] = "PLEX_URL=\"\"\n"
                               "PORT=5000\n"
                               "RCLONE_PATH_REPLACEMENTS='{\"/home/u/MergerFS\": \"/mnt/rclone\"}'\n"
                               "WEBHOOK_DELAY=30s\n"
                               "MINIMUM_AGE=1m\n"
                               "PATH_REPLACEMENTS='{\"\": \"\"}'\n"
                               "SECTION_MAPPING='{\"/data/tv\": 2, \"/data/movies\": \"1\"}'\n";
    char *path = write_temp(text, sizeof text - 1);
    env_map env = {0};
    config_t c;
    char err[512] = "";
    memset(&c, 0, sizeof c);
    log_set_level(LOG_LVL_DEBUG);
    int rc = config_load(&c, &env, path, err, sizeof err);
    if (rc)
        fail_msg("%s", err);
    assert_null(c.plex_url);
    assert_int_equal(c.port, 5000);
    assert_int_equal(c.rclone_path_repl.n, 1);
    assert_string_equal(c.rclone_path_repl.v[0].from, "/home/u/MergerFS");
    assert_string_equal(c.rclone_path_repl.v[0].to, "/mnt/rclone");
    assert_int_equal(c.webhook_delay_ms, 30000);
    assert_int_equal(c.minimum_age_ms, 60000);
    assert_int_equal(c.path_repl.n, 0); /* the placeholder {"": ""} is ignored */
    assert_int_equal(c.n_section_map, 2);
    assert_string_equal(c.section_map[0].prefix, "/data/movies");
    assert_int_equal(c.section_map[0].section, 1);
    assert_string_equal(c.section_map[1].prefix, "/data/tv");
    assert_int_equal(c.section_map[1].section, 2);
    assert_int_equal(c.n_mounts, 0);
    assert_non_null(strstr(last_log, "empty key"));
    config_free(&c);
    unlink(path);
    free(path);
}

static void test_quoted_json_map_in_environment_is_unwrapped(void **state)
{
    (void)state;
    /* set in the environment with the single quotes still on (docker env files, systemd) */
    const char *kv[] = {"PATH_REPLACEMENTS", "  '{\"/data/tv\": \"/tv\"}'  ", NULL};
    config_t c;
    char err[512];
    assert_int_equal(build(&c, kv, NULL, err, sizeof err), 0);
    assert_int_equal(c.path_repl.n, 1);
    assert_string_equal(c.path_repl.v[0].from, "/data/tv");
    assert_string_equal(c.path_repl.v[0].to, "/tv");
    config_free(&c);

    /* only one layer is stripped */
    char err2[512];
    expect_bad("PATH_REPLACEMENTS", "''{\"/a\": \"/b\"}''", err2, sizeof err2);
    assert_non_null(strstr(err2, "not valid JSON"));
}

static void test_replacement_keys_normalized_and_sorted_longest_first(void **state)
{
    (void)state;
    const char *kv[] = {"PATH_REPLACEMENTS",
                        "{\"/data\": \"/plex\", \"D:\\\\Media\\\\TV\\\\\": \"/tv/\", "
                        "\"//data//Movies/\": \"/movies\", \"/\": \"/root\", \"/data/\": \"/plex\"}",
                        NULL};
    config_t c;
    char err[512] = "";
    int rc = build(&c, kv, NULL, err, sizeof err);
    if (rc)
        fail_msg("%s", err);
    assert_int_equal(c.path_repl.n, 4); /* "/data/" duplicates "/data" with the same target */
    assert_string_equal(c.path_repl.v[0].from, "/data/Movies");
    assert_string_equal(c.path_repl.v[0].to, "/movies");
    assert_string_equal(c.path_repl.v[1].from, "D:/Media/TV");
    assert_string_equal(c.path_repl.v[1].to, "/tv");
    assert_string_equal(c.path_repl.v[2].from, "/data");
    assert_string_equal(c.path_repl.v[3].from, "/");
    assert_string_equal(c.path_repl.v[3].to, "/root");
    config_free(&c);
}

static void test_local_path_replacements_placeholder_counts_as_unset(void **state)
{
    (void)state;
    const char *kv[] = {"LOCAL_PATH_REPLACEMENTS", "{\"\": \"\"}", NULL};
    config_t c;
    char err[512];
    assert_int_equal(build(&c, kv, NULL, err, sizeof err), 0);
    assert_false(c.local_path_repl_set);
    config_free(&c);
}

static void test_section_mapping_longest_prefix_first(void **state)
{
    (void)state;
    const char *kv[] = {"SECTION_MAPPING", "{\"/data\": 1, \"/data/tv/anime/\": \" 7 \", \"/data/tv\": 2.0}",
                        NULL};
    config_t c;
    char err[512] = "";
    int rc = build(&c, kv, NULL, err, sizeof err);
    if (rc)
        fail_msg("%s", err);
    assert_int_equal(c.n_section_map, 3);
    assert_string_equal(c.section_map[0].prefix, "/data/tv/anime");
    assert_int_equal(c.section_map[0].section, 7);
    assert_string_equal(c.section_map[1].prefix, "/data/tv");
    assert_int_equal(c.section_map[1].section, 2);
    assert_string_equal(c.section_map[2].prefix, "/data");
    assert_int_equal(c.section_map[2].section, 1);
    config_free(&c);
}

static void test_anchor_files_normalized_and_deduplicated(void **state)
{
    (void)state;
    const char *kv[] = {"ANCHOR_FILES", "'[\"/mnt/a//.anchor\", \"\\\\mnt\\\\b\\\\.anchor\", \"/mnt/a/.anchor\"]'",
                        NULL};
    config_t c;
    char err[512] = "";
    int rc = build(&c, kv, NULL, err, sizeof err);
    if (rc)
        fail_msg("%s", err);
    assert_int_equal(c.n_anchors, 2);
    assert_string_equal(c.anchors[0], "/mnt/a/.anchor");
    assert_string_equal(c.anchors[1], "/mnt/b/.anchor");
    config_free(&c);
}

/* ---------------------------------------------------------------- rclone mounts */

static void test_rclone_mounts_parsed_and_sorted_longest_root_first(void **state)
{
    (void)state;
    const char *kv[] = {"RCLONE_MOUNTS",
                        "[{\"root\": \"/mnt/\", \"url\": \"http://a:5572/\"},"
                        " {\"root\": \"/mnt/media/tv\", \"url\": \"https://b\", \"fs\": \"tv:\","
                        "  \"user\": \"u\", \"pass\": \"p\"},"
                        " {\"root\": \"/\", \"url\": \"http://c\", \"fs\": null, \"user\": \"\"}]",
                        NULL};
    config_t c;
    char err[512] = "";
    int rc = build(&c, kv, NULL, err, sizeof err);
    if (rc)
        fail_msg("%s", err);
    assert_int_equal(c.n_mounts, 3);
    assert_string_equal(c.mounts[0].root, "/mnt/media/tv");
    assert_string_equal(c.mounts[0].url, "https://b");
    assert_string_equal(c.mounts[0].fs, "tv:");
    assert_string_equal(c.mounts[0].user, "u");
    assert_string_equal(c.mounts[0].pass, "p");
    assert_string_equal(c.mounts[1].root, "/mnt");
    assert_string_equal(c.mounts[1].url, "http://a:5572");
    assert_null(c.mounts[1].fs);
    assert_null(c.mounts[1].user);
    assert_null(c.mounts[1].pass);
    assert_string_equal(c.mounts[2].root, "/");
    assert_null(c.mounts[2].fs);
    assert_null(c.mounts[2].user);
    config_free(&c);
}

static void test_rclone_mounts_items_are_checked(void **state)
{
    (void)state;
    static const struct {
        const char *value, *expect;
    } cases[] = {
        {"{\"root\": \"/m\"}", "RCLONE_MOUNTS: must be a JSON list"},
        {"[\"/m\"]", "RCLONE_MOUNTS: item 1 must be an object"},
        {"[{\"url\": \"http://h\"}]", "RCLONE_MOUNTS: item 1: root is required"},
        {"[{\"root\": \"m\", \"url\": \"http://h\"}]", "RCLONE_MOUNTS: item 1: root must be an absolute path"},
        {"[{\"root\": \"/m\"}]", "RCLONE_MOUNTS: item 1: url is required"},
        {"[{\"root\": \"/m\", \"url\": \"http://h\"}, {\"root\": \"/M/\", \"url\": \"http://i\"}]",
         "RCLONE_MOUNTS: item 2: root '/M' is listed twice"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[1024] = "";
        expect_bad("RCLONE_MOUNTS", cases[i].value, err, sizeof err);
        if (strcmp(err, cases[i].expect) != 0 && strncmp(err, cases[i].expect, strlen(cases[i].expect)) != 0)
            fail_msg("%s: got \"%s\", want \"%s\"", cases[i].value, err, cases[i].expect);
    }
}

static void test_rclone_shorthand_builds_one_mount_at_root(void **state)
{
    (void)state;
    const char *kv[] = {"RCLONE_RC_URL", "http://localhost:5572/", NULL};
    config_t c;
    char err[512];
    assert_int_equal(build(&c, kv, NULL, err, sizeof err), 0);
    assert_int_equal(c.n_mounts, 1);
    assert_string_equal(c.mounts[0].root, "/");
    assert_string_equal(c.mounts[0].url, "http://localhost:5572");
    assert_null(c.mounts[0].fs);
    assert_null(c.mounts[0].user);
    assert_null(c.mounts[0].pass);
    config_free(&c);
}

static void test_rclone_shorthand_extras_without_url_are_ignored_with_a_warning(void **state)
{
    (void)state;
    const char *kv[] = {"RCLONE_FS", "gdrive:", NULL};
    config_t c;
    char err[512];
    assert_int_equal(build(&c, kv, NULL, err, sizeof err), 0);
    assert_int_equal(c.n_mounts, 0);
    assert_non_null(strstr(last_log, "RCLONE_RC_URL is not set"));
    config_free(&c);
}

static void test_rclone_mounts_and_rc_url_together_is_an_error(void **state)
{
    (void)state;
    const char *kv[] = {"RCLONE_MOUNTS", "[{\"root\": \"/m\", \"url\": \"http://h\", \"pass\": \"s3cr3t\"}]",
                        "RCLONE_RC_URL", "http://other", NULL};
    config_t c;
    char err[512];
    assert_int_equal(build(&c, kv, NULL, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "RCLONE_MOUNTS: cannot be used together with RCLONE_RC_URL"));
    assert_null(strstr(err, "s3cr3t"));
}

static void test_use_rclone_false_has_no_mounts_but_still_validates(void **state)
{
    (void)state;
    const char *off[] = {"USE_RCLONE", "false", "RCLONE_RC_URL", "http://h", NULL};
    config_t c;
    char err[512];
    assert_int_equal(build(&c, off, NULL, err, sizeof err), 0);
    assert_false(c.use_rclone);
    assert_null(c.mounts);
    assert_int_equal(c.n_mounts, 0);
    config_free(&c);

    const char *bad[] = {"USE_RCLONE", "off", "RCLONE_RC_URL", "localhost:5572", NULL};
    assert_int_equal(build(&c, bad, NULL, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "RCLONE_RC_URL: must start with http://"));
}

/* ---------------------------------------------------------------- loading */

static void test_environment_wins_over_file(void **state)
{
    (void)state;
    const char *env[] = {"PORT", "6000", "PLEX_URL", "", NULL};
    const char *file[] = {"PORT", "7000", "PLEX_URL", "http://file", "PLEX_TOKEN", "from-file", NULL};
    config_t c;
    char err[512];
    assert_int_equal(build(&c, env, file, err, sizeof err), 0);
    assert_int_equal(c.port, 6000);
    /* an empty variable in the environment still wins (python-dotenv never overrides) */
    assert_null(c.plex_url);
    assert_string_equal(c.plex_token, "from-file");
    config_free(&c);
}

static void test_config_load_env_file_over_environment(void **state)
{
    (void)state;
    static const char text[] = "PORT=7000\nHISTORY_DAYS=9\n";
    char *path = write_temp(text, sizeof text - 1);
    env_map env = {0};
    env_map_set(&env, "PORT", "6000");
    config_t c;
    char err[512] = "";
    assert_int_equal(config_load(&c, &env, path, err, sizeof err), 0);
    assert_int_equal(c.port, 6000);
    assert_int_equal(c.history_days, 9);
    config_free(&c);
    unlink(path);
    free(path);

    assert_int_equal(config_load(&c, &env, "/nonexistent/pss.env", err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "/nonexistent/pss.env"));
    env_map_free(&env);
}

static void test_config_load_reads_dot_env_in_working_directory_if_present(void **state)
{
    (void)state;
    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof cwd));
    const char *tmp = getenv("TMPDIR");
    char *dir = NULL;
    assert_true(asprintf(&dir, "%s/pss-config-dir-XXXXXX", tmp && *tmp ? tmp : "/tmp") > 0);
    assert_non_null(mkdtemp(dir));
    assert_int_equal(chdir(dir), 0);

    env_map env = {0};
    config_t c;
    char err[512];
    /* no ./.env: defaults */
    assert_int_equal(config_load(&c, &env, NULL, err, sizeof err), 0);
    assert_int_equal(c.port, 5000);
    config_free(&c);

    FILE *f = fopen(".env", "w");
    assert_non_null(f);
    fputs("PORT=5050\n", f);
    fclose(f);
    assert_int_equal(config_load(&c, &env, NULL, err, sizeof err), 0);
    assert_int_equal(c.port, 5050);
    config_free(&c);

    f = fopen(".env", "w");
    assert_non_null(f);
    fputs("PORT=0\n", f);
    fclose(f);
    assert_int_equal(config_load(&c, &env, NULL, err, sizeof err), -EINVAL);
    assert_string_equal(err, "PORT: must be between 1 and 65535 (got '0')");

    unlink(".env");
    assert_int_equal(chdir(cwd), 0);
    rmdir(dir);
    free(dir);
}

static void test_help_lists_every_variable(void **state)
{
    (void)state;
    char *path = write_temp("", 0);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    int fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, STDOUT_FILENO);
    close(fd);
    config_print_help();
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);

    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char text[16384];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    static const char *const names[] = {
        "PLEX_URL", "PLEX_TOKEN", "PLEX_TIMEOUT", "PLEXAPI_HEADER_IDENTIFIER", "SECTION_REFRESH",
        "SECTION_MAPPING", "PORT", "BIND_ADDRESS", "STATE_DIR", "DURABILITY", "WEBHOOK_USER",
        "WEBHOOK_PASS", "MANUAL_USER", "MANUAL_PASS", "TRUSTED_PROXIES", "USE_RCLONE", "RCLONE_MOUNTS",
        "RCLONE_RC_URL", "RCLONE_MOUNT_ROOT", "RCLONE_FS", "RCLONE_RC_USER", "RCLONE_RC_PASS",
        "RCLONE_TIMEOUT", "PATH_REPLACEMENTS", "RCLONE_PATH_REPLACEMENTS", "LOCAL_PATH_REPLACEMENTS",
        "ANCHOR_FILES", "SCAN_SCOPE", "WEBHOOK_DELAY", "WEBHOOK_MAX_DELAY", "MINIMUM_AGE",
        "SYNC_COOLDOWN", "RETRY_MAX_DELAY", "MAX_CONCURRENT_SYNCS", "MAX_FOLDERS_PER_EVENT",
        "MAX_PENDING", "HISTORY_DAYS", "MAX_HEADER_BYTES", "MAX_WEBHOOK_BODY", "MAX_BODY",
        "MAX_CONNECTIONS", "HEADER_TIMEOUT", "IDLE_TIMEOUT", "LOG_LEVEL", "TZ", "PLEX_EMPTY_TRASH",
        "JELLYFIN_URL", "JELLYFIN_TOKEN", "JELLYFIN_TOKEN_FILE", "JELLYFIN_PATH_REPLACEMENTS", "EMBY_URL",
        "EMBY_TOKEN", "EMBY_TOKEN_FILE", "EMBY_PATH_REPLACEMENTS", "MEDIA_SERVERS", "NOTIFY"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char line_start[64];
        snprintf(line_start, sizeof line_start, "\n%s ", names[i]);
        if (!strstr(text, line_start))
            fail_msg("--help lacks %s", names[i]);
    }
    assert_non_null(strstr(text, "\nWEBHOOK_DELAY              30s  "));
    unlink(path);
    free(path);
}

/* ---------------------------------------------------------------- X_FILE secrets */

static void test_secret_file_drops_one_trailing_newline(void **state)
{
    (void)state;
    static const struct {
        const char *text, *want;
    } cases[] = {{"tok-1\n", "tok-1"}, {"tok-2\r\n", "tok-2"}, {"tok-3", "tok-3"}, {" sp ace \n", " sp ace "}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *path = write_temp(cases[i].text, strlen(cases[i].text));
        const char *env[] = {"PLEX_TOKEN_FILE", path, NULL};
        config_t c;
        char err[512] = "";
        assert_int_equal(build(&c, env, NULL, err, sizeof err), 0);
        assert_string_equal(c.plex_token, cases[i].want);
        config_free(&c);
        unlink(path);
        free(path);
    }
}

static void test_every_secret_has_a_file_variant(void **state)
{
    (void)state;
    char *path = write_temp("from-file\n", 10);
    const char *env[] = {"WEBHOOK_USER", "u", "WEBHOOK_PASS_FILE", path, "MANUAL_PASS_FILE", path,
                         "RCLONE_RC_URL", "http://127.0.0.1:5572", "RCLONE_RC_PASS_FILE", path, NULL};
    config_t c;
    char err[512] = "";
    assert_int_equal(build(&c, env, NULL, err, sizeof err), 0);
    assert_string_equal(c.webhook_pass, "from-file");
    assert_string_equal(c.manual_pass, "from-file");
    assert_int_equal(c.n_mounts, 1);
    assert_string_equal(c.mounts[0].pass, "from-file");
    config_free(&c);
    unlink(path);
    free(path);
}

static void test_secret_file_named_in_the_env_file_is_read(void **state)
{
    (void)state;
    char *path = write_temp("dotenv-token\n", 13);
    const char *file[] = {"PLEX_TOKEN_FILE", path, NULL};
    config_t c;
    char err[512] = "";
    assert_int_equal(build(&c, NULL, file, err, sizeof err), 0);
    assert_string_equal(c.plex_token, "dotenv-token");
    config_free(&c);
    unlink(path);
    free(path);
}

static void test_secret_and_its_file_together_is_an_error(void **state)
{
    (void)state;
    char *path = write_temp("s3cr3t\n", 7);
    const char *env[] = {"MANUAL_PASS", "s3cr3t", "MANUAL_PASS_FILE", path, NULL};
    config_t c;
    char err[512] = "";
    assert_int_equal(build(&c, env, NULL, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "MANUAL_PASS_FILE"));
    assert_non_null(strstr(err, "only one"));
    assert_null(strstr(err, "s3cr3t"));
    /* The variable in the environment and its file in the env file: still both set. */
    const char *env2[] = {"MANUAL_PASS", "s3cr3t", NULL};
    const char *file2[] = {"MANUAL_PASS_FILE", path, NULL};
    assert_int_equal(build(&c, env2, file2, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "MANUAL_PASS_FILE"));
    unlink(path);
    free(path);
}

static void test_unreadable_secret_file_names_the_variable_and_the_path(void **state)
{
    (void)state;
    const char *env[] = {"RCLONE_RC_PASS_FILE", "/nonexistent/pss-secret", NULL};
    config_t c;
    char err[512] = "";
    assert_int_equal(build(&c, env, NULL, err, sizeof err), -EINVAL);
    assert_string_equal(err, "RCLONE_RC_PASS_FILE: cannot read '/nonexistent/pss-secret': No such file or directory");
    const char *dir[] = {"PLEX_TOKEN_FILE", "/", NULL};
    assert_int_equal(build(&c, dir, NULL, err, sizeof err), -EINVAL);
    assert_string_equal(err, "PLEX_TOKEN_FILE: cannot read '/': Is a directory");
}

static void test_secret_file_content_is_checked_and_never_echoed(void **state)
{
    (void)state;
    char *big = malloc(5000);
    assert_non_null(big);
    memset(big, 'x', 5000);
    static const struct {
        const char *text;
        size_t len;
        const char *expect;
    } cases[] = {
        {"s3cr3t\n\n", 8, "PLEX_TOKEN_FILE: contains a control character"},
        {"s3cr3t\0x", 8, "holds a NUL byte"},
        {NULL, 5000, "is larger than 4096 bytes"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *path = write_temp(cases[i].text ? cases[i].text : big, cases[i].len);
        const char *env[] = {"PLEX_TOKEN_FILE", path, NULL};
        config_t c;
        char err[512] = "";
        assert_int_equal(build(&c, env, NULL, err, sizeof err), -EINVAL);
        if (!strstr(err, cases[i].expect))
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, cases[i].expect);
        assert_non_null(strstr(err, "PLEX_TOKEN_FILE"));
        assert_null(strstr(err, "s3cr3t"));
        assert_null(strstr(err, "xxxx"));
        unlink(path);
        free(path);
    }
    free(big);
}

static void test_secret_file_is_read_again_at_each_build(void **state)
{
    (void)state;
    char *path = write_temp("old\n", 4);
    const char *env[] = {"PLEX_TOKEN_FILE", path, NULL};
    config_t c;
    char err[512] = "";
    assert_int_equal(build(&c, env, NULL, err, sizeof err), 0);
    assert_string_equal(c.plex_token, "old");
    config_free(&c);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("rotated\n", f);
    fclose(f);
    assert_int_equal(build(&c, env, NULL, err, sizeof err), 0);
    assert_string_equal(c.plex_token, "rotated");
    config_free(&c);
    unlink(path);
    free(path);
}

static void test_empty_secret_file_means_unset(void **state)
{
    (void)state;
    char *path = write_temp("\n", 1);
    const char *env[] = {"PLEX_TOKEN_FILE", path, NULL};
    config_t c;
    char err[512] = "";
    assert_int_equal(build(&c, env, NULL, err, sizeof err), 0);
    assert_null(c.plex_token);
    config_free(&c);
    unlink(path);
    free(path);
}

/* ---------------------------------------------------------------- targets */

#define SECRET "tok-S3CRET-value"

static void assert_same_repl(const cfg_replacements *a, const cfg_replacements *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        assert_string_equal(a->v[i].from, b->v[i].from);
        assert_string_equal(a->v[i].to, b->v[i].to);
        assert_ptr_not_equal(a->v[i].from, b->v[i].from); /* a copy, not shared */
    }
}

static void test_script_env_gives_one_plex_target_equal_to_the_old_fields(void **state)
{
    (void)state;
    static const char text[] = "PLEX_URL=http://plex.lan:32400/\n"
                               "PLEX_TOKEN=" SECRET "\n"
                               "PLEX_TIMEOUT=45\n"
                               "PATH_REPLACEMENTS='{\"/data\": \"/media\"}'\n"
                               "SECTION_MAPPING='{\"/media/tv\": 2}'\n";
    char *path = write_temp(text, sizeof text - 1);
    env_map env = {0};
    config_t c;
    char err[512] = "";
    memset(&c, 0, sizeof c);
    int rc = config_load(&c, &env, path, err, sizeof err);
    if (rc)
        fail_msg("%s", err);
    assert_int_equal(c.n_targets, 1);
    const cfg_target *t = &c.targets[0];
    assert_string_equal(t->name, "plex");
    assert_int_equal(t->kind, TARGET_PLEX);
    assert_string_equal(t->url, c.plex_url);
    assert_string_equal(t->url, "http://plex.lan:32400");
    assert_string_equal(t->token, c.plex_token);
    assert_string_equal(t->token_var, "PLEX_TOKEN");
    assert_string_equal(t->origin, "PLEX_URL");
    assert_int_equal(t->timeout_ms, 45000);
    assert_same_repl(&t->path_repl, &c.path_repl);
    assert_int_equal(t->n_section_map, c.n_section_map);
    assert_string_equal(t->section_map[0].prefix, c.section_map[0].prefix);
    assert_int_equal(t->section_map[0].section, 2);
    assert_false(t->empty_trash);
    assert_false(t->scan_path);
    assert_string_equal(target_kind_name(t->kind), "plex");
    config_free(&c);
    unlink(path);
    free(path);
}

static void test_no_plex_url_no_plex_target(void **state)
{
    (void)state;
    const char *kv[] = {"PLEX_URL", "", "PLEX_TOKEN", SECRET, NULL};
    config_t c;
    char err[512];
    assert_int_equal(build(&c, kv, NULL, err, sizeof err), 0);
    assert_int_equal(c.n_targets, 0);
    config_free(&c);
}

static void test_plex_target_without_token_is_allowed_and_empty_trash_follows(void **state)
{
    (void)state;
    const char *kv[] = {"PLEX_URL", "http://p:32400", "PLEX_EMPTY_TRASH", "yes", NULL};
    config_t c;
    char err[512];
    assert_int_equal(build(&c, kv, NULL, err, sizeof err), 0);
    assert_int_equal(c.n_targets, 1);
    assert_string_equal(c.targets[0].token, "");
    assert_true(c.targets[0].empty_trash);
    assert_true(c.plex_empty_trash);
    config_free(&c);
}

static void test_jellyfin_and_emby_shorthands(void **state)
{
    (void)state;
    const char *kv[] = {"PLEX_URL", "http://p:32400", "PLEX_TIMEOUT", "20s",
                        "PATH_REPLACEMENTS", "{\"/data\": \"/plex\"}",
                        "JELLYFIN_URL", "https://jf.lan/", "JELLYFIN_TOKEN", SECRET,
                        "JELLYFIN_PATH_REPLACEMENTS", "'{\"/data\": \"/jf\"}'",
                        "EMBY_URL", "http://emby:8096", "EMBY_TOKEN", "e-key", NULL};
    config_t c;
    char err[512] = "";
    if (build(&c, kv, NULL, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(c.n_targets, 3);
    const cfg_target *jf = &c.targets[1], *em = &c.targets[2];
    assert_string_equal(c.targets[0].name, "plex");
    assert_string_equal(jf->name, "jellyfin");
    assert_int_equal(jf->kind, TARGET_JELLYFIN);
    assert_string_equal(jf->url, "https://jf.lan");
    assert_string_equal(jf->token, SECRET);
    assert_string_equal(jf->token_var, "JELLYFIN_TOKEN");
    assert_string_equal(jf->origin, "JELLYFIN_URL");
    assert_int_equal(jf->path_repl.n, 1);
    assert_string_equal(jf->path_repl.v[0].to, "/jf");
    assert_int_equal(jf->timeout_ms, 20000);
    assert_int_equal(jf->n_section_map, 0);
    assert_string_equal(em->name, "emby");
    assert_int_equal(em->kind, TARGET_EMBY);
    assert_string_equal(em->token_var, "EMBY_TOKEN");
    assert_string_equal(em->origin, "EMBY_URL");
    assert_same_repl(&em->path_repl, &c.path_repl); /* no EMBY_PATH_REPLACEMENTS: PATH_REPLACEMENTS */
    assert_string_equal(target_kind_name(jf->kind), "jellyfin");
    assert_string_equal(target_kind_name(em->kind), "emby");
    config_free(&c);
}

static void test_jellyfin_or_emby_without_token_is_an_error(void **state)
{
    (void)state;
    const char *jf[] = {"JELLYFIN_URL", "http://jf:8096", NULL};
    config_t c;
    char err[512] = "";
    assert_int_equal(build(&c, jf, NULL, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "JELLYFIN_TOKEN: must be set when JELLYFIN_URL is set"));
    const char *em[] = {"EMBY_URL", "http://emby:8096", "EMBY_TOKEN", "", NULL};
    assert_int_equal(build(&c, em, NULL, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "EMBY_TOKEN: must be set when EMBY_URL is set"));
    const char *bad_url[] = {"EMBY_URL", "emby:8096", "EMBY_TOKEN", "k", NULL};
    assert_int_equal(build(&c, bad_url, NULL, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "EMBY_URL: must start with http:// or https://"));
}

static void test_jellyfin_and_emby_tokens_come_from_files(void **state)
{
    (void)state;
    char *path = write_temp(SECRET "\n", sizeof SECRET);
    const char *kv[] = {"JELLYFIN_URL", "http://jf:8096", "JELLYFIN_TOKEN_FILE", path,
                        "EMBY_URL", "http://emby:8096", "EMBY_TOKEN_FILE", path, NULL};
    config_t c;
    char err[512] = "";
    if (build(&c, kv, NULL, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(c.n_targets, 2);
    assert_string_equal(c.targets[0].token, SECRET);
    assert_string_equal(c.targets[1].token, SECRET);
    config_free(&c);
    unlink(path);
    free(path);
}

static void test_media_servers_of_every_kind_with_defaults(void **state)
{
    (void)state;
    char *tf = write_temp("file-" SECRET "\r\n", sizeof "file-" SECRET "\r\n" - 1);
    char list[2048];
    snprintf(list, sizeof list,
             "'[{\"name\": \"plex-4k\", \"type\": \"plex\", \"url\": \"http://p4k:32400/\", \"token\": \"" SECRET "\","
             "   \"section_mapping\": {\"/m4k\": 9}, \"timeout\": \"1m\", \"empty_trash\": false},"
             "  {\"name\": \"family_jf\", \"type\": \"jellyfin\", \"url\": \"http://jf:8096\", \"token_file\": \"%s\","
             "   \"path_replacements\": {\"/data\": \"/srv\"}, \"scan_path\": true, \"timeout\": 15},"
             "  {\"name\": \"e1\", \"type\": \"Emby\", \"url\": \"https://emby\", \"token\": \"k\"},"
             "  {\"name\": \"kids\", \"type\": \"plex\", \"url\": \"http://kids:32400\"}]'",
             tf);
    const char *kv[] = {"PLEX_URL", "http://p:32400", "PLEX_TIMEOUT", "20s", "PLEX_EMPTY_TRASH", "true",
                        "PATH_REPLACEMENTS", "{\"/data\": \"/plex\"}", "MEDIA_SERVERS", list, NULL};
    config_t c;
    char err[512] = "";
    if (build(&c, kv, NULL, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(c.n_targets, 5);
    const cfg_target *p4k = &c.targets[1], *jf = &c.targets[2], *em = &c.targets[3], *kids = &c.targets[4];
    assert_string_equal(c.targets[0].name, "plex");
    assert_string_equal(p4k->name, "plex-4k");
    assert_int_equal(p4k->kind, TARGET_PLEX);
    assert_string_equal(p4k->url, "http://p4k:32400");
    assert_string_equal(p4k->token, SECRET);
    assert_string_equal(p4k->token_var, "MEDIA_SERVERS (plex-4k): token");
    assert_string_equal(p4k->origin, "MEDIA_SERVERS (plex-4k)");
    assert_int_equal(p4k->n_section_map, 1);
    assert_int_equal(p4k->section_map[0].section, 9);
    assert_int_equal(p4k->timeout_ms, 60000);
    assert_false(p4k->empty_trash);
    assert_same_repl(&p4k->path_repl, &c.path_repl);
    assert_string_equal(jf->name, "family_jf");
    assert_int_equal(jf->kind, TARGET_JELLYFIN);
    assert_string_equal(jf->token, "file-" SECRET);
    assert_string_equal(jf->token_var, "MEDIA_SERVERS (family_jf): token_file");
    assert_string_equal(jf->path_repl.v[0].to, "/srv");
    assert_true(jf->scan_path);
    assert_int_equal(jf->timeout_ms, 15000);
    assert_false(jf->empty_trash);
    assert_int_equal(em->kind, TARGET_EMBY);
    assert_false(em->scan_path);
    assert_int_equal(em->timeout_ms, 20000); /* PLEX_TIMEOUT */
    assert_string_equal(kids->token, "");    /* a Plex server may go without a token */
    assert_true(kids->empty_trash);          /* PLEX_EMPTY_TRASH */
    assert_int_equal(kids->n_section_map, 0);
    assert_int_equal(kids->timeout_ms, 20000);
    config_free(&c);
    unlink(tf);
    free(tf);
}

static void expect_servers_bad(const char *list, const char *want)
{
    const char *kv[] = {"PLEX_URL", "http://p:32400", "JELLYFIN_URL", "http://jf", "JELLYFIN_TOKEN", "x",
                        "MEDIA_SERVERS", list, NULL};
    config_t c;
    char err[512] = "";
    if (build(&c, kv, NULL, err, sizeof err) != -EINVAL)
        fail_msg("expected an error for %s", list);
    if (!strstr(err, want))
        fail_msg("for %s\n got: %s\nwant: %s", list, err, want);
    if (strstr(err, SECRET))
        fail_msg("the secret is in: %s", err);
}

#define P(rest) "{\"name\": \"a\", \"type\": \"plex\", \"url\": \"http://a\", \"token\": \"" SECRET "\"" rest "}"
#define J(rest) "{\"name\": \"j\", \"type\": \"jellyfin\", \"url\": \"http://j\", \"token\": \"" SECRET "\"" rest "}"

static void test_media_servers_errors_name_the_item_and_the_reason(void **state)
{
    (void)state;
    static const struct {
        const char *list, *want;
    } cases[] = {
        {"{\"name\": \"a\"}", "MEDIA_SERVERS: must be a JSON list"},
        {"[" P("") ", 3]", "MEDIA_SERVERS: item 2 must be an object"},
        {"[{\"name\": \"Big Box\", \"type\": \"plex\", \"url\": \"http://a\"}]",
         "MEDIA_SERVERS: item 1: name must be 1 to 32 of a-z, 0-9, '_' and '-' (got 'Big Box')"},
        {"[{\"type\": \"plex\", \"url\": \"http://a\"}]", "MEDIA_SERVERS: item 1: name must be"},
        {"[{\"name\": \"abcdefghijabcdefghijabcdefghijabc\", \"type\": \"plex\", \"url\": \"http://a\"}]",
         "MEDIA_SERVERS: item 1: name must be"},
        {"[" P("") ", " P("") "]", "MEDIA_SERVERS: item 2 (a): the name is already used by MEDIA_SERVERS (a)"},
        {"[{\"name\": \"plex\", \"type\": \"plex\", \"url\": \"http://a\"}]",
         "MEDIA_SERVERS: item 1 (plex): the name is already used by PLEX_URL"},
        {"[{\"name\": \"jellyfin\", \"type\": \"emby\", \"url\": \"http://a\", \"token\": \"k\"}]",
         "MEDIA_SERVERS: item 1 (jellyfin): the name is already used by JELLYFIN_URL"},
        {"[{\"name\": \"a\", \"type\": \"kodi\", \"url\": \"http://a\"}]",
         "MEDIA_SERVERS: item 1 (a): type must be plex, jellyfin or emby"},
        {"[{\"name\": \"a\", \"type\": \"plex\"}]", "MEDIA_SERVERS: item 1 (a): url is required"},
        {"[{\"name\": \"a\", \"type\": \"plex\", \"url\": \"ftp://a\"}]",
         "MEDIA_SERVERS: item 1 (a): url must start with http:// or https://"},
        {"[" P(", \"token_file\": \"/run/secrets/t\"") "]", "MEDIA_SERVERS: item 1 (a): set token or token_file, not both"},
        {"[" P(", \"tokn\": 1") "]", "MEDIA_SERVERS: item 1 (a): unknown key 'tokn' (did you mean 'token'?)"},
        {"[" P(", \"scanpath\": true") "]", "MEDIA_SERVERS: item 1 (a): unknown key 'scanpath' (did you mean 'scan_path'?)"},
        {"[" P(", \"Path_Replacement\": {}") "]", "(did you mean 'path_replacements'?)"},
        {"[" P(", \"library\": 2") "]", "MEDIA_SERVERS: item 1 (a): unknown key 'library'"},
        {"[" P(", \"url\": \"http://b\"") "]", "MEDIA_SERVERS: item 1 (a): key 'url' is given twice"},
        {"[" J(", \"section_mapping\": {\"/tv\": 2}") "]", "MEDIA_SERVERS: item 1 (j): section_mapping is for plex servers only"},
        {"[" J(", \"empty_trash\": true") "]", "MEDIA_SERVERS: item 1 (j): empty_trash is for plex servers only"},
        {"[" P(", \"scan_path\": true") "]", "MEDIA_SERVERS: item 1 (a): scan_path is for jellyfin and emby servers only"},
        {"[" P(", \"path_replacements\": [\"/a\"]") "]", "MEDIA_SERVERS: item 1 (a): path_replacements must be a JSON object"},
        {"[" P(", \"path_replacements\": {\"/a\": 1}") "]",
         "MEDIA_SERVERS: item 1 (a): path_replacements: the value of '/a' must be a string"},
        {"[" P(", \"section_mapping\": {\"/a\": \"x\"}") "]",
         "MEDIA_SERVERS: item 1 (a): section_mapping: the section of '/a' must be a positive whole number"},
        {"[" P(", \"timeout\": \"soon\"") "]", "MEDIA_SERVERS: item 1 (a): timeout must be a duration"},
        {"[" P(", \"timeout\": 0") "]", "MEDIA_SERVERS: item 1 (a): timeout must be a duration"},
        {"[" P(", \"empty_trash\": \"yes\"") "]", "MEDIA_SERVERS: item 1 (a): empty_trash must be true or false"},
        {"[{\"name\": \"j\", \"type\": \"jellyfin\", \"url\": \"http://j\"}]",
         "MEDIA_SERVERS: item 1 (j): a jellyfin server needs token or token_file"},
        {"[{\"name\": \"e\", \"type\": \"emby\", \"url\": \"http://e\", \"token\": \"\"}]",
         "MEDIA_SERVERS: item 1 (e): a emby server needs token or token_file"},
        {"[{\"name\": \"e\", \"type\": \"emby\", \"url\": \"http://e\", \"token_file\": \"relative/t\"}]",
         "MEDIA_SERVERS: item 1 (e): token_file must be an absolute path"},
        {"[{\"name\": \"e\", \"type\": \"emby\", \"url\": \"http://e\", \"token_file\": \"/nonexistent/pss/t\"}]",
         "MEDIA_SERVERS: item 1 (e): token_file: cannot read '/nonexistent/pss/t'"},
        {"[" P("") "", "MEDIA_SERVERS: not valid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_servers_bad(cases[i].list, cases[i].want);
}

static void test_media_servers_are_limited_in_number(void **state)
{
    (void)state;
    char list[8192] = "[";
    for (int i = 0; i < 31; i++) {
        size_t n = strlen(list);
        snprintf(list + n, sizeof list - n, "%s{\"name\": \"s%d\", \"type\": \"plex\", \"url\": \"http://s%d\"}",
                 i ? "," : "", i, i);
    }
    strcat(list, "]");
    const char *ok[] = {"PLEX_URL", "http://p", "MEDIA_SERVERS", list, NULL};
    config_t c;
    char err[512] = "";
    if (build(&c, ok, NULL, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(c.n_targets, 32);
    config_free(&c);
    const char *too_many[] = {"PLEX_URL", "http://p", "EMBY_URL", "http://e", "EMBY_TOKEN", "k",
                              "MEDIA_SERVERS", list, NULL};
    assert_int_equal(build(&c, too_many, NULL, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "MEDIA_SERVERS: more than 32 media servers in all"));
    list[strlen(list) - 1] = '\0';
    strcat(list, ",{\"name\": \"x1\", \"type\": \"plex\", \"url\": \"http://x\"},"
                 "{\"name\": \"x2\", \"type\": \"plex\", \"url\": \"http://x\"}]");
    const char *list_only[] = {"MEDIA_SERVERS", list, NULL};
    assert_int_equal(build(&c, list_only, NULL, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "MEDIA_SERVERS: more than 32 media servers"));
}

static void test_media_servers_token_file_is_read_like_the_file_secrets(void **state)
{
    (void)state;
    char big[5000];
    memset(big, 'k', sizeof big);
    char *large = write_temp(big, sizeof big);
    char list[512];
    snprintf(list, sizeof list, "[{\"name\": \"e\", \"type\": \"emby\", \"url\": \"http://e\", \"token_file\": \"%s\"}]",
             large);
    const char *kv[] = {"MEDIA_SERVERS", list, NULL};
    config_t c;
    char err[512] = "";
    assert_int_equal(build(&c, kv, NULL, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "MEDIA_SERVERS: item 1 (e): token_file: "));
    assert_non_null(strstr(err, "is larger than 4096 bytes"));
    assert_null(strstr(err, "kkkk"));
    unlink(large);
    free(large);
    char *plain = write_temp(SECRET "\n", sizeof SECRET);
    snprintf(list, sizeof list, "[{\"name\": \"e\", \"type\": \"emby\", \"url\": \"http://e\", \"token_file\": \"%s\"}]",
             plain);
    const char *kv2[] = {"MEDIA_SERVERS", list, NULL};
    if (build(&c, kv2, NULL, err, sizeof err))
        fail_msg("%s", err);
    assert_string_equal(c.targets[0].token, SECRET); /* one trailing newline dropped */
    config_free(&c);
    unlink(plain);
    free(plain);
}


/* ---------------------------------------------------------------- NOTIFY */

static void test_notify_destinations_of_every_type_with_default_events(void **state)
{
    (void)state;
    char *tf = write_temp("gotify-" SECRET "\n", sizeof "gotify-" SECRET "\n" - 1);
    char list[2048];
    snprintf(list, sizeof list,
             "[{\"type\": \"discord\", \"url\": \"https://discord.com/api/webhooks/1/" SECRET "\"},"
             " {\"type\": \"NTFY\", \"url\": \"https://ntfy.sh/topic/\", \"token\": \"tk\", \"events\": [\"parked\", \"Scan\"]},"
             " {\"type\": \"apprise\", \"url\": \"http://apprise:8000/notify/key\"},"
             " {\"type\": \"gotify\", \"url\": \"http://gotify\", \"token_file\": \"%s\"},"
             " {\"type\": \"json\", \"url\": \"http://hook/x\", \"events\": [\"test\"]}]",
             tf);
    const char *kv[] = {"NOTIFY", list, NULL};
    config_t c;
    char err[512] = "";
    if (build(&c, kv, NULL, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(c.n_notify, 5);
    assert_int_equal(c.notify[0].type, NOTIFY_DISCORD);
    assert_string_equal(c.notify[0].token, "");
    assert_int_equal(c.notify[0].events, NOTIFY_EVENTS_DEFAULT);
    assert_false(c.notify[0].events & (1u << NEV_SCAN));
    assert_true(c.notify[0].events & (1u << NEV_TEST));
    assert_int_equal(c.notify[1].type, NOTIFY_NTFY);
    assert_string_equal(c.notify[1].url, "https://ntfy.sh/topic");
    assert_string_equal(c.notify[1].token, "tk");
    assert_int_equal(c.notify[1].events, (1u << NEV_PARKED) | (1u << NEV_SCAN));
    assert_int_equal(c.notify[2].type, NOTIFY_APPRISE);
    assert_int_equal(c.notify[3].type, NOTIFY_GOTIFY);
    assert_string_equal(c.notify[3].token, "gotify-" SECRET);
    assert_int_equal(c.notify[4].type, NOTIFY_JSON);
    assert_int_equal(c.notify[4].events, 1u << NEV_TEST);
    assert_string_equal(cfg_notify_type_name(NOTIFY_APPRISE), "apprise");
    assert_string_equal(cfg_notify_event_name(NEV_TARGET_DOWN), "target_down");
    config_free(&c);
    const char *none[] = {NULL};
    assert_int_equal(build(&c, none, NULL, err, sizeof err), 0);
    assert_int_equal(c.n_notify, 0);
    config_free(&c);
    unlink(tf);
    free(tf);
}

static void expect_notify_bad(const char *list, const char *want)
{
    const char *kv[] = {"NOTIFY", list, NULL};
    config_t c;
    char err[512] = "";
    if (build(&c, kv, NULL, err, sizeof err) != -EINVAL)
        fail_msg("expected an error for %s", list);
    if (!strstr(err, want))
        fail_msg("for %s\n got: %s\nwant: %s", list, err, want);
    if (strstr(err, SECRET) || strstr(err, "hooks.example"))
        fail_msg("a secret is in: %s", err);
}

#define N(type, rest) "{\"type\": \"" type "\", \"url\": \"https://hooks.example/" SECRET "\"" rest "}"

static void test_notify_errors_name_the_item_and_never_the_url_or_token(void **state)
{
    (void)state;
    static const struct {
        const char *list, *want;
    } cases[] = {
        {"{\"type\": \"discord\"}", "NOTIFY: must be a JSON list"},
        {"[" N("discord", "") ", 3]", "NOTIFY: item 2 must be an object"},
        {"[" N("slack", "") "]", "NOTIFY: item 1: unknown type 'slack'"},
        {"[" N("discrod", "") "]", "NOTIFY: item 1: unknown type 'discrod' (did you mean 'discord'?)"},
        {"[{\"url\": \"http://a\"}]", "NOTIFY: item 1: type must be discord, ntfy, apprise, gotify or json"},
        {"[" N("ntfy", ", \"tokn\": \"x\"") "]", "NOTIFY: item 1 (ntfy): unknown key 'tokn' (did you mean 'token'?)"},
        {"[" N("ntfy", ", \"event\": []") "]", "NOTIFY: item 1 (ntfy): unknown key 'event' (did you mean 'events'?)"},
        {"[" N("ntfy", ", \"events\": [\"parkd\"]") "]",
         "NOTIFY: item 1 (ntfy): unknown event 'parkd' (did you mean 'parked'?)"},
        {"[" N("ntfy", ", \"events\": [\"everything\"]") "]", "NOTIFY: item 1 (ntfy): unknown event 'everything'"},
        {"[" N("ntfy", ", \"events\": []") "]", "NOTIFY: item 1 (ntfy): events must be a non-empty JSON list"},
        {"[" N("ntfy", ", \"events\": [1]") "]", "NOTIFY: item 1 (ntfy): each event must be a string"},
        {"[{\"type\": \"json\"}]", "NOTIFY: item 1 (json): url is required"},
        {"[{\"type\": \"json\", \"url\": \"ftp://hooks.example/" SECRET "\"}]",
         "NOTIFY: item 1 (json): url must start with http:// or https://"},
        {"[{\"type\": \"json\", \"url\": \"http://hooks.example/a b" SECRET "\"}]",
         "NOTIFY: item 1 (json): url must not contain spaces"},
        {"[" N("ntfy", ", \"token\": \"" SECRET "\", \"token_file\": \"/run/t\"") "]",
         "NOTIFY: item 1 (ntfy): set token or token_file, not both"},
        {"[" N("gotify", "") "]", "NOTIFY: item 1 (gotify): a gotify destination needs token or token_file"},
        {"[" N("discord", ", \"token\": \"" SECRET "\"") "]", "NOTIFY: item 1 (discord): a discord destination takes no token"},
        {"[" N("gotify", ", \"token_file\": \"rel/t\"") "]", "NOTIFY: item 1 (gotify): token_file must be an absolute path"},
        {"[" N("gotify", ", \"token_file\": \"/nonexistent/pss/t\"") "]",
         "NOTIFY: item 1 (gotify): token_file: cannot read '/nonexistent/pss/t'"},
        {"[" N("ntfy", ", \"url\": \"http://b\"") "]", "NOTIFY: item 1 (ntfy): key 'url' is given twice"},
        {"[" N("ntfy", "") "", "NOTIFY: not valid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_notify_bad(cases[i].list, cases[i].want);
}

static void test_notify_destinations_are_limited_in_number(void **state)
{
    (void)state;
    char list[4096] = "[";
    for (int i = 0; i < 17; i++)
        strcat(list, i ? ",{\"type\": \"json\", \"url\": \"http://h\"}" : "{\"type\": \"json\", \"url\": \"http://h\"}");
    strcat(list, "]");
    expect_notify_bad(list, "NOTIFY: more than 16 destinations");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_duration_bare_number_means_seconds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duration_units_ms_s_m_h_d, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duration_rejects_garbage_and_overflow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_variable_has_its_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_variable_accepts_a_good_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_dir_defaults_to_first_state_directory_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_value_means_unset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_variables_are_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bool_accepts_every_spelling_in_any_case, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_values_name_the_variable_and_echo_the_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_values_are_never_echoed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_delay_below_delay_is_an_error_naming_max_delay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_webhook_auth_needs_user_and_password, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trusted_proxies_are_parsed_into_networks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_url_base_is_normalized_and_odd_shapes_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_buffered_bytes_must_hold_one_webhook, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_build_leaves_the_output_untouched, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_depth_and_string_length_are_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_python_script_env_file_loads_unchanged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quoted_json_map_in_environment_is_unwrapped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replacement_keys_normalized_and_sorted_longest_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_local_path_replacements_placeholder_counts_as_unset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_section_mapping_longest_prefix_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_anchor_files_normalized_and_deduplicated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rclone_mounts_parsed_and_sorted_longest_root_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rclone_mounts_items_are_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rclone_shorthand_builds_one_mount_at_root, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rclone_shorthand_extras_without_url_are_ignored_with_a_warning,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_rclone_mounts_and_rc_url_together_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_use_rclone_false_has_no_mounts_but_still_validates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_environment_wins_over_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_load_env_file_over_environment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_load_reads_dot_env_in_working_directory_if_present, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_help_lists_every_variable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_file_drops_one_trailing_newline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_secret_has_a_file_variant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_file_named_in_the_env_file_is_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_and_its_file_together_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_secret_file_names_the_variable_and_the_path, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_secret_file_content_is_checked_and_never_echoed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_file_is_read_again_at_each_build, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_secret_file_means_unset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_script_env_gives_one_plex_target_equal_to_the_old_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_plex_url_no_plex_target, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plex_target_without_token_is_allowed_and_empty_trash_follows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jellyfin_and_emby_shorthands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jellyfin_or_emby_without_token_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jellyfin_and_emby_tokens_come_from_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_media_servers_of_every_kind_with_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_media_servers_errors_name_the_item_and_the_reason, setup, teardown),
        cmocka_unit_test_setup_teardown(test_media_servers_are_limited_in_number, setup, teardown),
        cmocka_unit_test_setup_teardown(test_media_servers_token_file_is_read_like_the_file_secrets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_destinations_of_every_type_with_default_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_errors_name_the_item_and_never_the_url_or_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_destinations_are_limited_in_number, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
