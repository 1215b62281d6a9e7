/* test_notify_out.c: notifications: the bounded queue, the batch, each destination's format,
 * the redacted URL, and on a loop (a fake clock for the batching window) one message per burst,
 * three tries and then a drop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "notify_out.h"
#include "test_httpd.h"

static void test_full_queue_summarizes_the_oldest(void **state)
{
    (void)state;
    nout_queue q;
    memset(&q, 0, sizeof q);
    nout_queue_push(&q, NEV_HELD, "/tv/held", NULL, "anchor missing", 1);
    for (int i = 0; i < NOTIFY_QUEUE_MAX + 4; i++)
        nout_queue_push(&q, NEV_PARKED, "/tv/x", "plex", "PLEX_TOKEN", 2);
    assert_int_equal(q.n, NOTIFY_QUEUE_MAX);
    assert_int_equal(q.summarized[NEV_HELD], 1);
    assert_int_equal(q.summarized[NEV_PARKED], 4);
    assert_int_equal(nout_queue_pending(&q), NOTIFY_QUEUE_MAX + 5);
    nout_batch b;
    nout_batch_take(&q, &b);
    assert_true(nout_queue_empty(&q));
    assert_int_equal(b.n, NOTIFY_BATCH_LIST);
    assert_int_equal(b.total, NOTIFY_QUEUE_MAX + 5);
    assert_int_equal(b.more[NEV_PARKED], NOTIFY_QUEUE_MAX + 4 - NOTIFY_BATCH_LIST);
    assert_int_equal(b.more[NEV_HELD], 1);
    nout_batch_free(&b);
}

static void burst(nout_batch *b, int n)
{
    nout_queue q;
    memset(&q, 0, sizeof q);
    for (int i = 0; i < n; i++) {
        char folder[32];
        snprintf(folder, sizeof folder, "/tv/Show %d", i);
        nout_queue_push(&q, NEV_PARKED, folder, "plex",
                        "PLEX_TOKEN: plex answered HTTP 401; set PLEX_TOKEN in /etc/pss.env and reload", 0);
    }
    nout_batch_take(&q, b);
}

static void test_a_burst_lists_ten_and_counts_the_rest(void **state)
{
    (void)state;
    nout_batch b;
    burst(&b, 50);
    char *title = nout_title(&b), *text = nout_text(&b);
    assert_string_equal(title, "plex-servarr-sync: 50 parked folders");
    assert_non_null(strstr(text, "Parked '/tv/Show 0' on plex: PLEX_TOKEN: plex answered HTTP 401; set PLEX_TOKEN"));
    assert_non_null(strstr(text, "'/tv/Show 9'"));
    assert_null(strstr(text, "'/tv/Show 10'"));
    assert_non_null(strstr(text, "\nand 40 more parked folders"));
    free(title);
    free(text);
    nout_batch_free(&b);
}

static void test_control_characters_in_a_folder_cannot_forge_a_line(void **state)
{
    (void)state;
    nout_queue q;
    memset(&q, 0, sizeof q);
    nout_queue_push(&q, NEV_HELD, "/tv/x\nReleased '/tv/fake'", NULL, "anchor", 0);
    nout_batch b;
    nout_batch_take(&q, &b);
    char *text = nout_text(&b);
    assert_null(strchr(text, '\n'));
    free(text);
    nout_batch_free(&b);
}

static cJSON *body_of(const nout_message *m)
{
    cJSON *j = cJSON_ParseWithLength(m->body, m->body_len);
    assert_non_null(j);
    return j;
}

static const char *header(const nout_message *m, const char *name)
{
    for (size_t i = 0; m->headers[i]; i++)
        if (strncasecmp(m->headers[i], name, strlen(name)) == 0 && m->headers[i][strlen(name)] == ':')
            return m->headers[i] + strlen(name) + 2;
    return NULL;
}

static void test_each_destination_gets_its_own_format(void **state)
{
    (void)state;
    nout_batch b;
    burst(&b, 3);
    nout_message m;

    nout_message_build(NOTIFY_DISCORD, "https://discord.com/api/webhooks/1/k", "", &b, &m);
    assert_string_equal(m.url, "https://discord.com/api/webhooks/1/k");
    cJSON *j = body_of(&m);
    assert_string_equal(cJSON_GetObjectItem(j, "content")->valuestring, "plex-servarr-sync: 3 parked folders");
    cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "embeds"), 0);
    assert_non_null(strstr(cJSON_GetObjectItem(e, "description")->valuestring, "PLEX_TOKEN"));
    assert_int_equal(cJSON_GetObjectItem(e, "color")->valueint, 0xe74c3c);
    assert_null(header(&m, "Authorization"));
    cJSON_Delete(j);
    nout_message_free(&m);

    nout_message_build(NOTIFY_NTFY, "https://ntfy.sh/topic", "tk", &b, &m);
    assert_string_equal(header(&m, "Title"), "plex-servarr-sync: 3 parked folders");
    assert_string_equal(header(&m, "Priority"), "urgent");
    assert_string_equal(header(&m, "Tags"), "rotating_light");
    assert_string_equal(header(&m, "Authorization"), "Bearer tk");
    assert_non_null(strstr(m.body, "Parked '/tv/Show 2' on plex"));
    nout_message_free(&m);

    nout_message_build(NOTIFY_APPRISE, "http://apprise:8000/notify/key", "", &b, &m);
    j = body_of(&m);
    assert_string_equal(cJSON_GetObjectItem(j, "type")->valuestring, "failure");
    assert_non_null(cJSON_GetObjectItem(j, "title"));
    assert_non_null(cJSON_GetObjectItem(j, "body"));
    cJSON_Delete(j);
    nout_message_free(&m);

    nout_message_build(NOTIFY_GOTIFY, "http://gotify", "app-token", &b, &m);
    assert_string_equal(m.url, "http://gotify/message");
    assert_string_equal(header(&m, "X-Gotify-Key"), "app-token");
    j = body_of(&m);
    assert_int_equal(cJSON_GetObjectItem(j, "priority")->valueint, 8);
    assert_non_null(cJSON_GetObjectItem(j, "message"));
    cJSON_Delete(j);
    nout_message_free(&m);

    nout_message_build(NOTIFY_JSON, "http://hook/x", "", &b, &m);
    j = body_of(&m);
    cJSON *ev = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "events"), 0);
    assert_string_equal(cJSON_GetObjectItem(ev, "kind")->valuestring, "parked");
    assert_string_equal(cJSON_GetObjectItem(ev, "folder")->valuestring, "/tv/Show 0");
    assert_string_equal(cJSON_GetObjectItem(ev, "target")->valuestring, "plex");
    assert_string_equal(cJSON_GetObjectItem(ev, "at")->valuestring, "1970-01-01T00:00:00Z");
    cJSON_Delete(j);
    nout_message_free(&m);
    nout_batch_free(&b);
}

static void test_only_scheme_and_host_of_a_url_are_shown(void **state)
{
    (void)state;
    char o[128];
    nout_url_origin("https://discord.com/api/webhooks/123/secret?x=1", o, sizeof o);
    assert_string_equal(o, "https://discord.com");
    nout_url_origin("http://user:pa@ss@ntfy.local:8080/topic", o, sizeof o);
    assert_string_equal(o, "http://ntfy.local:8080");
    nout_url_origin("http://gotify", o, sizeof o);
    assert_string_equal(o, "http://gotify");
}

/* ---- on a loop ---- */

static uint64_t fake_now = 1000;
static uint64_t fake_clock(void) { return fake_now; }

typedef struct fix {
    uv_loop_t loop;
    thd_server *srv;
    httpc_t *h;
    notify_out *n;
    int status;        /* what the server answers */
    int received;
    char last_body[8192];
    bool got;
} fix;

static void handler(void *ud, thd_conn *c, const thd_request *r)
{
    fix *f = ud;
    f->received++;
    snprintf(f->last_body, sizeof f->last_body, "%.*s", (int)r->body_len, r->body);
    f->got = true;
    thd_respond(c, f->status, "application/json", "", "{}", 2);
}

static void fix_start(fix *f, int status)
{
    memset(f, 0, sizeof *f);
    uv_loop_init(&f->loop);
    f->srv = thd_start(&f->loop, handler, f);
    f->h = httpc_new(&f->loop);
    f->n = notify_out_new(&f->loop, f->h, fake_clock);
    f->status = status;
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook/secret", f->srv->port);
    cfg_notify d = {.type = NOTIFY_JSON, .url = url, .token = "", .events = NOTIFY_EVENTS_DEFAULT};
    notify_out_configure(f->n, &d, 1);
}

static void fix_stop(fix *f)
{
    notify_out_close(f->n);
    httpc_close(f->h, NULL, NULL);
    thd_stop(f->srv);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

static void test_a_burst_is_one_message_and_the_next_waits_for_the_window(void **state)
{
    (void)state;
    fix f;
    fix_start(&f, 200);
    fake_now = 1000;
    for (int i = 0; i < 50; i++) {
        char folder[32];
        snprintf(folder, sizeof folder, "/tv/Show %d", i);
        notify_out_event(f.n, NEV_PARKED, folder, "plex", "set PLEX_TOKEN and reload", false);
    }
    notify_out_event(f.n, NEV_SCAN, "/tv/x", NULL, NULL, false); /* not in the default events */
    assert_true(thd_run_until(&f.loop, &f.got, 5000));
    assert_int_equal(f.received, 1);
    assert_non_null(strstr(f.last_body, "\"parked\":40"));
    assert_null(strstr(f.last_body, "scan"));
    nout_view v;
    /* the answer is handled on the turn after the server wrote it */
    for (int i = 0; i < 50; i++) {
        notify_out_view(f.n, 0, &v);
        if (v.has_result)
            break;
        uv_run(&f.loop, UV_RUN_NOWAIT);
        usleep(10000);
    }
    assert_true(v.has_result && v.last_ok);
    char origin[64];
    snprintf(origin, sizeof origin, "http://127.0.0.1:%d", f.srv->port);
    assert_string_equal(v.origin, origin);

    f.got = false;
    fake_now += 2000;
    notify_out_event(f.n, NEV_RESUMED, NULL, "plex", "accepts its token again", false);
    assert_false(thd_run_until(&f.loop, &f.got, 300)); /* inside the 10 s window: nothing */
    fake_now += NOTIFY_BATCH_MS;
    notify_out_tick(f.n);
    assert_true(thd_run_until(&f.loop, &f.got, 5000));
    assert_int_equal(f.received, 2);
    assert_non_null(strstr(f.last_body, "\"resumed\""));
    fix_stop(&f);
}

static void test_a_failing_destination_is_tried_three_times_then_dropped(void **state)
{
    (void)state;
    fix f;
    fix_start(&f, 500);
    notify_out_event(f.n, NEV_TEST, NULL, NULL, "a test", true);
    nout_view v;
    uint64_t end = uv_now(&f.loop) + 15000;
    do {
        uv_run(&f.loop, UV_RUN_ONCE);
        notify_out_view(f.n, 0, &v);
    } while ((v.sending || !v.has_result) && uv_now(&f.loop) < end);
    assert_false(v.sending);
    assert_int_equal(f.received, NOTIFY_TRIES);
    assert_false(v.last_ok);
    assert_string_equal(v.last_error, "HTTP 500");
    buf_t b;
    buf_init(&b, 0);
    notify_out_render_metrics(f.n, &b);
    assert_non_null(strstr(b.data, "pss_notifications_total{type=\"json\",outcome=\"failed\"} 3\n"));
    assert_non_null(strstr(b.data, "pss_notifications_total{type=\"json\",outcome=\"dropped\"} 1\n"));
    assert_non_null(strstr(b.data, "pss_notifications_total{type=\"discord\",outcome=\"sent\"} 0\n"));
    buf_free(&b);
    fix_stop(&f);
}

int main(void)
{
    log_set_level(LOG_LVL_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_queue_summarizes_the_oldest),
        cmocka_unit_test(test_a_burst_lists_ten_and_counts_the_rest),
        cmocka_unit_test(test_control_characters_in_a_folder_cannot_forge_a_line),
        cmocka_unit_test(test_each_destination_gets_its_own_format),
        cmocka_unit_test(test_only_scheme_and_host_of_a_url_are_shown),
        cmocka_unit_test(test_a_burst_is_one_message_and_the_next_waits_for_the_window),
        cmocka_unit_test(test_a_failing_destination_is_tried_three_times_then_dropped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
