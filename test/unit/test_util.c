/* test_util.c: the shared helpers every module leans on: bounded buffers, escaping for log
 * lines, path spelling, digits, URL encoding, constant-time comparison, base64. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "list.h"
#include "util.h"

static void test_buffer_refuses_to_grow_past_its_maximum_and_stays_unchanged(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 8);
    assert_int_equal(buf_appends(&b, "abcd"), 0);
    assert_int_equal(buf_appends(&b, "efghi"), -ENOBUFS);
    assert_string_equal(b.data, "abcd");
    assert_int_equal(b.len, 4);
    assert_int_equal(buf_printf(&b, "%d", 123), 0);
    assert_string_equal(b.data, "abcd123");
    assert_int_equal(buf_printf(&b, "%s", "xy"), -ENOBUFS);
    assert_string_equal(b.data, "abcd123");
    char *s = buf_steal(&b);
    assert_string_equal(s, "abcd123");
    free(s);
    assert_int_equal(b.len, 0);
    buf_free(&b);
}

static void test_unbounded_buffer_grows_and_reset_keeps_memory(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(buf_append(&b, "0123456789", 10), 0);
    assert_int_equal(b.len, 10000);
    assert_int_equal(b.data[b.len], '\0');
    size_t cap = b.cap;
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_int_equal(b.cap, cap);
    buf_free(&b);
}

static void test_strndup_copies_at_most_n_bytes(void **state)
{
    (void)state;
    char *s = xstrndup("abcdef", 3);
    assert_string_equal(s, "abc");
    free(s);
    s = xstrndup("ab", 10);
    assert_string_equal(s, "ab");
    free(s);
    assert_null(xstrdup(NULL));
}

static char *escaped(const char *s, size_t outlen, size_t max)
{
    static char out[2048];
    assert_true(outlen <= sizeof out);
    out[0] = '\0';
    str_append_escaped(out, outlen, s, strlen(s), max);
    return out;
}

static void test_log_escape_turns_control_bytes_and_backslashes_into_visible_text(void **state)
{
    (void)state;
    assert_string_equal(escaped("/tv/Show\n<3>forged\r\t\x1b[0m\\x", 256, 256),
                        "/tv/Show\\n<3>forged\\r\\t\\x1b[0m\\\\x");
    assert_string_equal(escaped("\x7f", 256, 256), "\\x7f");
    assert_string_equal(escaped("Amélie (2001)", 256, 256), "Amélie (2001)");
}

static void test_log_escape_cuts_long_text_with_dots_never_inside_a_utf8_sequence(void **state)
{
    (void)state;
    /* cut by max input bytes: "aé" is 3 bytes; max 2 would split é */
    assert_string_equal(escaped("aébc", 256, 2), "a...");
    assert_string_equal(escaped("abcdef", 256, 3), "abc...");
    /* cut by the room in out: 10 bytes hold 6 characters, "..." and the NUL */
    assert_string_equal(escaped("abcdefghijklmnop", 10, 1000), "abcdef...");
    /* an escape that does not fit is not split either */
    assert_string_equal(escaped("abcde\n", 10, 1000), "abcde...");
    /* nor is a UTF-8 sequence at the edge of the room */
    assert_string_equal(escaped("abcdeé", 10, 1000), "abcde...");
    /* text that fits exactly is not cut */
    assert_string_equal(escaped("abcdef", 10, 1000), "abcdef");
}

static void test_log_escape_appends_to_what_is_there(void **state)
{
    (void)state;
    char out[32] = "rclone: ";
    str_append_escaped(out, sizeof out, "a\nb", 3, 100);
    assert_string_equal(out, "rclone: a\\nb");
    char full[8] = "1234567";
    str_append_escaped(full, sizeof full, "x", 1, 100);
    assert_string_equal(full, "1234567");
}

static void test_path_spelling_is_one_rule(void **state)
{
    (void)state;
    const char *cases[][2] = {{"/tv//Show/", "/tv/Show"}, {"\\tv\\Show", "/tv/Show"},
                              {"/", "/"},                 {"", ""},
                              {"a/", "a"},                {"/a/b", "/a/b"}};
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        char *n = path_normalize(cases[i][0]);
        assert_string_equal(n, cases[i][1]);
        assert_true(path_is_normal(n));
        assert_int_equal(path_is_normal(cases[i][0]), strcmp(cases[i][0], cases[i][1]) == 0);
        free(n);
    }
    char *n = path_normalize(NULL);
    assert_string_equal(n, "");
    free(n);
}

static void test_digits_agree_with_printf(void **state)
{
    (void)state;
    unsigned long long values[] = {0, 1, 9, 10, 99, 100, 12345, 4294967296ULL, 18446744073709551615ULL};
    for (size_t i = 0; i < ARRAY_SIZE(values); i++) {
        char buf[24], want[24];
        char *d = fmt_digits(buf + sizeof buf - 1, values[i]);
        buf[sizeof buf - 1] = '\0';
        snprintf(want, sizeof want, "%llu", values[i]);
        assert_string_equal(d, want);
    }
}

static void test_url_encode_keeps_only_unreserved_bytes(void **state)
{
    (void)state;
    char *e = url_encode("/tv/Show (2020)/é~-._");
    assert_string_equal(e, "%2Ftv%2FShow%20%282020%29%2F%C3%A9~-._");
    free(e);
}

static void test_constant_time_compare_compares_bytes_and_lengths(void **state)
{
    (void)state;
    assert_true(ct_equal("secret", 6, "secret", 6));
    assert_false(ct_equal("secret", 6, "secreT", 6));
    assert_false(ct_equal("secret", 6, "secret", 5));
    assert_true(ct_equal("", 0, "", 0));
}

static void test_base64_round_trips_and_refuses_bad_input(void **state)
{
    (void)state;
    const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar", "admin:pässword"};
    const char *coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy", NULL};
    for (size_t i = 0; i < ARRAY_SIZE(plain); i++) {
        char *e = base64_encode(plain[i], strlen(plain[i]));
        if (coded[i])
            assert_string_equal(e, coded[i]);
        unsigned char *d = NULL;
        size_t n = 0;
        assert_int_equal(base64_decode(e, strlen(e), &d, &n), 0);
        assert_int_equal(n, strlen(plain[i]));
        assert_memory_equal(d, plain[i], n);
        free(d);
        free(e);
    }
    const char *bad[] = {"Zg=", "Z===", "Zm9v!", "Zm 9v"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        unsigned char *d = NULL;
        size_t n = 0;
        assert_int_equal(base64_decode(bad[i], strlen(bad[i]), &d, &n), -EINVAL);
    }
}

static void test_random_bytes_fill_the_buffer(void **state)
{
    (void)state;
    unsigned char a[32] = {0}, b[32] = {0};
    assert_int_equal(random_bytes(a, sizeof a), 0);
    assert_int_equal(random_bytes(b, sizeof b), 0);
    assert_memory_not_equal(a, b, sizeof a);
}

static void test_hash_is_fnv1a_and_chains(void **state)
{
    (void)state;
    /* FNV-1a 64-bit reference values */
    assert_true(hash_str("") == 0xcbf29ce484222325ULL);
    assert_true(hash_str("a") == 0xaf63dc4c8601ec8cULL);
    assert_true(hash_str("foobar") == 0x85944171f73967e8ULL);
    assert_true(hash_bytes(hash_bytes(HASH_INIT, "foo", 3), "bar", 3) == hash_str("foobar"));
}

typedef struct item {
    int v;
    list_node link;
} item;

static void test_list_keeps_order_and_a_node_leaves_whatever_list_holds_it(void **state)
{
    (void)state;
    list_node h, other;
    list_init(&h);
    list_init(&other);
    item it[4];
    for (int i = 0; i < 4; i++) {
        it[i].v = i;
        list_init(&it[i].link);
        list_push(&h, &it[i].link);
    }
    list_del(&it[1].link);
    list_del(&it[1].link); /* a second removal is harmless */
    int seen[4], n = 0;
    list_for_each(l, &h) seen[n++] = container_of(l, item, link)->v;
    assert_int_equal(n, 3);
    assert_int_equal(seen[0], 0);
    assert_int_equal(seen[1], 2);
    assert_int_equal(seen[2], 3);
    list_take(&other, &h);
    assert_true(list_empty(&h));
    list_for_each_safe(l, tmp, &other) list_del(l); /* removing inside the safe walk */
    assert_true(list_empty(&other));
    list_push(&h, &it[3].link);
    assert_ptr_equal(list_pop(&h), &it[3].link);
    assert_null(list_pop(&h));
}

static void test_positive_integers_are_digits_only_and_capped(void **state)
{
    (void)state;
    long long v = 0;
    assert_int_equal(parse_positive("42", 2, 100, &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(parse_positive("4200", 4, 100, &v), 0);
    assert_int_equal(v, 100);
    assert_int_equal(parse_positive("7/retry", 1, 100, &v), 0);
    assert_int_equal(v, 7);
    const char *bad[] = {"", "0", "-1", "+1", " 1", "1x", "12345678901234567890", "00"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        assert_int_equal(parse_positive(bad[i], strlen(bad[i]), 100, &v), -EINVAL);
    assert_int_equal(parse_positive(NULL, 0, 100, &v), -EINVAL);
}

static void test_value_text_helpers(void **state)
{
    (void)state;
    char *t = str_trim_dup(" \t /tv/Show \r\n");
    assert_string_equal(t, "/tv/Show");
    free(t);
    assert_true(str_has_ctl("a\x01b"));
    assert_true(str_has_ctl("a\x7f"));
    assert_false(str_has_ctl("Amélie"));
    assert_true(str_eq_ci("TRUE", "true"));
    assert_false(str_eq_ci("true", "truer"));
    uint64_t v = 0;
    assert_int_equal(str_parse_u64("18446744073709551615", &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(str_parse_u64("18446744073709551616", &v), -ERANGE);
    assert_int_equal(str_parse_u64("", &v), -EINVAL);
    assert_int_equal(str_parse_u64("12a", &v), -EINVAL);
    assert_int_equal(str_parse_u64("-1", &v), -EINVAL);
}

static void test_case_insensitive_compare_is_ascii_only(void **state)
{
    (void)state;
    assert_int_equal(ascii_strncasecmp("/TV/Show", "/tv/show", 8), 0);
    assert_int_not_equal(ascii_strncasecmp("É", "é", 2), 0);
    assert_int_equal(ascii_strncasecmp("abcX", "ABCy", 3), 0);
}

/* "Did you mean": at most two edits (a swap of neighbours is one), case ignored, the closest and
 * then the first wins. */
static void test_nearest_word_is_at_most_two_edits_away(void **state)
{
    (void)state;
    static const char *const words[] = {"WEBHOOK_DELAY", "WEBHOOK_MAX_DELAY", "PLEX_TOKEN", "PLEX_TOKEN_FILE",
                                        "PLEX_URL", "TZ"};
    static const struct {
        const char *typo, *want;
    } cases[] = {
        {"WEBHOOK_DELEY", "WEBHOOK_DELAY"},   /* one replaced */
        {"WEBHOOK_DEALY", "WEBHOOK_DELAY"},   /* two swapped */
        {"WEBHOOK_MAXDELAY", "WEBHOOK_MAX_DELAY"},
        {"PLEX_TOKN", "PLEX_TOKEN"},
        {"PLEX_TOKEN_FIEL", "PLEX_TOKEN_FILE"},
        {"plex_url", "PLEX_URL"},             /* case */
        {"PLEX_TOKENS", "PLEX_TOKEN"},
        {"PLEX", NULL},                       /* four away from PLEX_URL */
        {"DELAY", NULL},
        {"", NULL},
        {"TX", "TZ"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = str_nearest(cases[i].typo, words, sizeof words / sizeof words[0]);
        if ((got == NULL) != (cases[i].want == NULL) || (got && strcmp(got, cases[i].want) != 0))
            fail_msg("%s: got %s, want %s", cases[i].typo, got ? got : "NULL", cases[i].want ? cases[i].want : "NULL");
    }
    char long_typo[80];
    memset(long_typo, 'A', sizeof long_typo - 1);
    long_typo[sizeof long_typo - 1] = '\0';
    assert_null(str_nearest(long_typo, words, 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buffer_refuses_to_grow_past_its_maximum_and_stays_unchanged),
        cmocka_unit_test(test_unbounded_buffer_grows_and_reset_keeps_memory),
        cmocka_unit_test(test_strndup_copies_at_most_n_bytes),
        cmocka_unit_test(test_log_escape_turns_control_bytes_and_backslashes_into_visible_text),
        cmocka_unit_test(test_log_escape_cuts_long_text_with_dots_never_inside_a_utf8_sequence),
        cmocka_unit_test(test_log_escape_appends_to_what_is_there),
        cmocka_unit_test(test_path_spelling_is_one_rule),
        cmocka_unit_test(test_digits_agree_with_printf),
        cmocka_unit_test(test_url_encode_keeps_only_unreserved_bytes),
        cmocka_unit_test(test_constant_time_compare_compares_bytes_and_lengths),
        cmocka_unit_test(test_base64_round_trips_and_refuses_bad_input),
        cmocka_unit_test(test_random_bytes_fill_the_buffer),
        cmocka_unit_test(test_hash_is_fnv1a_and_chains),
        cmocka_unit_test(test_positive_integers_are_digits_only_and_capped),
        cmocka_unit_test(test_list_keeps_order_and_a_node_leaves_whatever_list_holds_it),
        cmocka_unit_test(test_value_text_helpers),
        cmocka_unit_test(test_case_insensitive_compare_is_ascii_only),
        cmocka_unit_test(test_nearest_word_is_at_most_two_edits_away),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
