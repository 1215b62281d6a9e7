/* notify_out.c: notifications to people: a bounded queue of events per destination, batched into
 * one message every 10 s at most, in the destination's format, sent through the daemon's httpc
 * with three tries. Nothing here is durable and nothing waits for it. */
#include "notify_out.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "log.h"

/* ---------------------------------------------------------------- the queue */

static void event_free(nout_event *e)
{
    free(e->folder);
    free(e->target);
    free(e->reason);
    memset(e, 0, sizeof *e);
}

void nout_queue_push(nout_queue *q, cfg_notify_event kind, const char *folder, const char *target,
                     const char *reason, uint64_t at)
{
    if (q->n == NOTIFY_QUEUE_MAX) {
        nout_event *old = &q->v[q->head];
        q->summarized[old->kind]++;
        event_free(old);
        q->head = (q->head + 1) % NOTIFY_QUEUE_MAX;
        q->n--;
    }
    nout_event *e = &q->v[(q->head + q->n) % NOTIFY_QUEUE_MAX];
    *e = (nout_event){.kind = kind, .folder = xstrdup(folder), .target = xstrdup(target),
                      .reason = xstrdup(reason), .at = at};
    q->n++;
}

bool nout_queue_empty(const nout_queue *q) { return nout_queue_pending(q) == 0; }

size_t nout_queue_pending(const nout_queue *q)
{
    size_t n = q->n;
    for (size_t k = 0; k < NEV_COUNT; k++)
        n += q->summarized[k];
    return n;
}

void nout_queue_clear(nout_queue *q)
{
    for (size_t i = 0; i < q->n; i++)
        event_free(&q->v[(q->head + i) % NOTIFY_QUEUE_MAX]);
    memset(q, 0, sizeof *q);
}

void nout_batch_take(nout_queue *q, nout_batch *b)
{
    memset(b, 0, sizeof *b);
    for (size_t k = 0; k < NEV_COUNT; k++) {
        b->more[k] = q->summarized[k];
        b->total += q->summarized[k];
    }
    for (size_t i = 0; i < q->n; i++) {
        nout_event *e = &q->v[(q->head + i) % NOTIFY_QUEUE_MAX];
        b->total++;
        if (b->n < NOTIFY_BATCH_LIST) {
            b->v[b->n++] = *e;
            memset(e, 0, sizeof *e);
        } else {
            b->more[e->kind]++;
            event_free(e);
        }
    }
    memset(q, 0, sizeof *q);
}

void nout_batch_free(nout_batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        event_free(&b->v[i]);
    b->n = 0;
}

/* ---------------------------------------------------------------- the words */

typedef enum { SEV_INFO = 0, SEV_WARNING, SEV_FAILURE } severity;

static const struct {
    const char *label; /* a line's first word */
    const char *one, *many;
    severity sev;
} kinds[NEV_COUNT] = {
    [NEV_PARKED] = {"Parked", "parked folder", "parked folders", SEV_FAILURE},
    [NEV_RESUMED] = {"Resumed", "resumed delivery", "resumed deliveries", SEV_INFO},
    [NEV_FAILING] = {"Still failing", "failing folder", "failing folders", SEV_FAILURE},
    [NEV_HELD] = {"Held", "held folder", "held folders", SEV_WARNING},
    [NEV_RELEASED] = {"Released", "released folder", "released folders", SEV_INFO},
    [NEV_TARGET_DOWN] = {"Unreachable", "media server down", "media servers down", SEV_FAILURE},
    [NEV_TARGET_UP] = {"Back", "media server back", "media servers back", SEV_INFO},
    [NEV_SCAN] = {"Scanned", "finished scan", "finished scans", SEV_INFO},
    [NEV_TEST] = {"Test", "test notification", "test notifications", SEV_INFO},
};

static severity batch_severity(const nout_batch *b)
{
    severity s = SEV_INFO;
    for (size_t i = 0; i < b->n; i++)
        if (kinds[b->v[i].kind].sev > s)
            s = kinds[b->v[i].kind].sev;
    for (size_t k = 0; k < NEV_COUNT; k++)
        if (b->more[k] && kinds[k].sev > s)
            s = kinds[k].sev;
    return s;
}

/* The one kind of every event in b, or -1 when they differ. */
static int batch_kind(const nout_batch *b)
{
    int kind = -1;
    for (size_t i = 0; i < b->n; i++) {
        if (kind >= 0 && kind != (int)b->v[i].kind)
            return -1;
        kind = (int)b->v[i].kind;
    }
    for (size_t k = 0; k < NEV_COUNT; k++) {
        if (!b->more[k])
            continue;
        if (kind >= 0 && kind != (int)k)
            return -1;
        kind = (int)k;
    }
    return kind;
}

char *nout_title(const nout_batch *b)
{
    int kind = batch_kind(b);
    if (kind < 0)
        return xasprintf("plex-servarr-sync: %zu events", b->total);
    if (kind == NEV_TEST)
        return xstrdup("plex-servarr-sync: test notification");
    return xasprintf("plex-servarr-sync: %zu %s", b->total, b->total == 1 ? kinds[kind].one : kinds[kind].many);
}

/* Append s, escaped for one line (control bytes shown as escapes) and cut at NOTIFY_FIELD_MAX. */
static void append_field(buf_t *t, const char *s)
{
    char esc[NOTIFY_FIELD_MAX * 4 + 8] = "";
    str_append_escaped(esc, sizeof esc, s, strlen(s), NOTIFY_FIELD_MAX);
    buf_appends(t, esc);
}

static void append_line(buf_t *t, const nout_event *e)
{
    buf_appends(t, kinds[e->kind].label);
    if (e->folder) {
        buf_appends(t, " '");
        append_field(t, e->folder);
        buf_appends(t, "'");
    }
    if (e->target) {
        buf_appends(t, e->folder ? " on " : " ");
        append_field(t, e->target);
    }
    if (e->reason) {
        buf_appends(t, ": ");
        append_field(t, e->reason);
    }
    buf_appends(t, "\n");
}

char *nout_text(const nout_batch *b)
{
    buf_t t;
    buf_init(&t, 0);
    for (size_t i = 0; i < b->n; i++)
        append_line(&t, &b->v[i]);
    for (size_t k = 0; k < NEV_COUNT; k++)
        if (b->more[k])
            buf_printf(&t, "and %u more %s\n", b->more[k], b->more[k] == 1 ? kinds[k].one : kinds[k].many);
    if (t.len && t.data[t.len - 1] == '\n')
        t.data[--t.len] = '\0';
    return buf_steal(&t);
}

void nout_url_origin(const char *url, char *out, size_t outlen)
{
    const char *sep = strstr(url, "://");
    if (!sep) {
        snprintf(out, outlen, "?");
        return;
    }
    const char *host = sep + 3;
    size_t alen = strcspn(host, "/?#");
    for (size_t i = alen; i > 0; i--) {
        if (host[i - 1] == '@') { /* userinfo is a secret too */
            alen -= i;
            host += i;
            break;
        }
    }
    snprintf(out, outlen, "%.*s%.*s", (int)(sep + 3 - url), url, (int)alen, host);
}

/* ---------------------------------------------------------------- the formats */

static char *json_text(cJSON *j, size_t *len)
{
    char *txt = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    char *out = xstrdup(txt ? txt : "{}");
    cJSON_free(txt);
    *len = strlen(out);
    return out;
}

static void iso_time(uint64_t ms, char *out, size_t outlen)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void add_str_or_null(cJSON *o, const char *name, const char *v)
{
    if (v)
        cJSON_AddStringToObject(o, name, v);
    else
        cJSON_AddNullToObject(o, name);
}

/* json: the events as the daemon logs them, and the counts of those not listed. */
static char *body_json(const nout_batch *b, size_t *len)
{
    cJSON *j = cJSON_CreateObject();
    cJSON *evs = cJSON_AddArrayToObject(j, "events");
    for (size_t i = 0; i < b->n; i++) {
        const nout_event *e = &b->v[i];
        cJSON *o = cJSON_CreateObject();
        char at[32];
        iso_time(e->at, at, sizeof at);
        cJSON_AddStringToObject(o, "kind", cfg_notify_event_name(e->kind));
        add_str_or_null(o, "folder", e->folder);
        add_str_or_null(o, "target", e->target);
        add_str_or_null(o, "reason", e->reason);
        cJSON_AddStringToObject(o, "at", at);
        cJSON_AddItemToArray(evs, o);
    }
    cJSON *more = cJSON_AddObjectToObject(j, "more");
    for (size_t k = 0; k < NEV_COUNT; k++)
        if (b->more[k])
            cJSON_AddNumberToObject(more, cfg_notify_event_name((cfg_notify_event)k), b->more[k]);
    return json_text(j, len);
}

static char *body_discord(const char *title, const char *text, severity sev, bool test, size_t *len)
{
    static const int colors[] = {[SEV_INFO] = 0x2ecc71, [SEV_WARNING] = 0xe67e22, [SEV_FAILURE] = 0xe74c3c};
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "content", title);
    cJSON *embeds = cJSON_AddArrayToObject(j, "embeds");
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "title", title);
    cJSON_AddStringToObject(e, "description", text);
    cJSON_AddNumberToObject(e, "color", test ? 0x3498db : colors[sev]);
    cJSON_AddItemToArray(embeds, e);
    return json_text(j, len);
}

static char *body_apprise(const char *title, const char *text, severity sev, size_t *len)
{
    static const char *const types[] = {[SEV_INFO] = "info", [SEV_WARNING] = "warning", [SEV_FAILURE] = "failure"};
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "title", title);
    cJSON_AddStringToObject(j, "body", text);
    cJSON_AddStringToObject(j, "type", types[sev]);
    return json_text(j, len);
}

static char *body_gotify(const char *title, const char *text, severity sev, size_t *len)
{
    static const int prio[] = {[SEV_INFO] = 2, [SEV_WARNING] = 5, [SEV_FAILURE] = 8};
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "title", title);
    cJSON_AddStringToObject(j, "message", text);
    cJSON_AddNumberToObject(j, "priority", prio[sev]);
    return json_text(j, len);
}

static void add_header(nout_message *m, char *h)
{
    size_t i = 0;
    while (m->headers[i])
        i++;
    m->headers[i] = h; /* at most 4 are ever added: the last slot stays NULL */
}

static void ntfy_headers(nout_message *m, const char *title, severity sev, bool test)
{
    static const char *const prio[] = {[SEV_INFO] = "default", [SEV_WARNING] = "high", [SEV_FAILURE] = "urgent"};
    static const char *const tags[] = {[SEV_INFO] = "white_check_mark", [SEV_WARNING] = "warning",
                                       [SEV_FAILURE] = "rotating_light"};
    add_header(m, xasprintf("Title: %s", title));
    add_header(m, xasprintf("Priority: %s", prio[sev]));
    add_header(m, xasprintf("Tags: %s", test ? "bell" : tags[sev]));
}

void nout_message_build(cfg_notify_type type, const char *url, const char *token, const nout_batch *b,
                        nout_message *m)
{
    memset(m, 0, sizeof *m);
    char *title = nout_title(b), *text = nout_text(b);
    severity sev = batch_severity(b);
    bool test = batch_kind(b) == NEV_TEST;
    bool bearer = token && *token;
    m->url = type == NOTIFY_GOTIFY ? xasprintf("%s/message", url) : xstrdup(url);
    switch (type) {
    case NOTIFY_DISCORD:
        m->body = body_discord(title, text, sev, test, &m->body_len);
        bearer = false;
        break;
    case NOTIFY_NTFY:
        m->body = xstrdup(text);
        m->body_len = strlen(text);
        ntfy_headers(m, title, sev, test);
        break;
    case NOTIFY_APPRISE:
        m->body = body_apprise(title, text, sev, &m->body_len);
        break;
    case NOTIFY_GOTIFY:
        m->body = body_gotify(title, text, sev, &m->body_len);
        add_header(m, xasprintf("X-Gotify-Key: %s", token ? token : ""));
        bearer = false;
        break;
    case NOTIFY_JSON:
    default:
        m->body = body_json(b, &m->body_len);
        break;
    }
    add_header(m, xstrdup(type == NOTIFY_NTFY ? "Content-Type: text/plain; charset=utf-8"
                                               : "Content-Type: application/json"));
    if (bearer)
        add_header(m, xasprintf("Authorization: Bearer %s", token));
    free(title);
    free(text);
}

void nout_message_free(nout_message *m)
{
    free(m->url);
    for (size_t i = 0; i < ARRAY_SIZE(m->headers); i++)
        free(m->headers[i]);
    free(m->body);
    memset(m, 0, sizeof *m);
}

/* ---------------------------------------------------------------- on the loop */

typedef struct nout_dest {
    notify_out *owner;
    cfg_notify_type type;
    char *url, *token;
    char origin[160];
    unsigned events;
    nout_queue q;
    nout_message msg;       /* the message out or waiting for its next try */
    bool has_msg;
    size_t msg_events;
    unsigned tries;
    httpc_req *req;
    uv_timer_t timer;       /* the next message, or the next try */
    uint64_t last_start;    /* clock ms of the last message's first try; 0 = never */
    bool has_result, last_ok;
    uint64_t last_at;       /* wall ms */
    char last_error[160];
} nout_dest;

struct notify_out {
    uv_loop_t *loop;
    httpc_t *httpc;
    uint64_t (*now)(void);
    nout_dest **v;
    size_t n;
    size_t open;            /* destinations whose timer is not closed yet */
    bool closing;
    uint64_t counts[NOTIFY_TYPE_COUNT][NOUT_OUTCOMES];
};

const char *nout_outcome_name(int outcome)
{
    static const char *const names[NOUT_OUTCOMES] = {"sent", "failed", "dropped"};
    return outcome >= 0 && outcome < NOUT_OUTCOMES ? names[outcome] : "unknown";
}

notify_out *notify_out_new(uv_loop_t *loop, httpc_t *h, uint64_t (*now)(void))
{
    notify_out *n = xcalloc(1, sizeof *n);
    n->loop = loop;
    n->httpc = h;
    n->now = now ? now : mono_ms;
    return n;
}

static void dest_send(nout_dest *d);
static void dest_kick(nout_dest *d);

static void on_dest_timer(uv_timer_t *t)
{
    nout_dest *d = container_of(t, nout_dest, timer);
    if (d->has_msg) {
        dest_send(d); /* the next try */
        return;
    }
    if (nout_queue_empty(&d->q))
        return;
    uint64_t now = d->owner->now();
    if (d->last_start && now < d->last_start + NOTIFY_BATCH_MS) {
        dest_kick(d); /* woken early (a tick): wait for the rest of the window */
        return;
    }
    nout_batch b;
    nout_batch_take(&d->q, &b);
    nout_message_build(d->type, d->url, d->token, &b, &d->msg);
    d->msg_events = b.total;
    nout_batch_free(&b);
    d->has_msg = true;
    d->tries = 0;
    d->last_start = now ? now : 1;
    dest_send(d);
}

/* A message goes when the last one started NOTIFY_BATCH_MS ago; one in flight finishes first. */
static void dest_kick(nout_dest *d)
{
    if (d->has_msg || d->owner->closing || nout_queue_empty(&d->q))
        return;
    uint64_t now = d->owner->now(), due = d->last_start ? d->last_start + NOTIFY_BATCH_MS : 0;
    uv_timer_start(&d->timer, on_dest_timer, due > now ? due - now : 0, 0);
}

static void dest_result(nout_dest *d, bool ok, const char *error)
{
    notify_out *n = d->owner;
    d->has_result = true;
    d->last_ok = ok;
    d->last_at = wall_ms();
    snprintf(d->last_error, sizeof d->last_error, "%s", ok ? "" : error);
    if (ok) {
        n->counts[d->type][NOUT_SENT]++;
        log_debug("notification sent to %s (%s): %zu event%s", cfg_notify_type_name(d->type), d->origin,
                  d->msg_events, d->msg_events == 1 ? "" : "s");
    } else {
        n->counts[d->type][NOUT_FAILED]++;
        if (++d->tries < NOTIFY_TRIES) {
            uv_timer_start(&d->timer, on_dest_timer, (uint64_t)NOTIFY_RETRY_MS << (d->tries - 1), 0);
            return;
        }
        n->counts[d->type][NOUT_DROPPED]++;
        log_warn("notification to %s (%s) dropped after %d tries (%zu event%s): %s", cfg_notify_type_name(d->type),
                 d->origin, NOTIFY_TRIES, d->msg_events, d->msg_events == 1 ? "" : "s", log_esc(error));
    }
    nout_message_free(&d->msg);
    d->has_msg = false;
    dest_kick(d);
}

static void on_dest_answer(void *ud, const httpc_result *res)
{
    nout_dest *d = ud;
    d->req = NULL;
    char err[160];
    bool ok = res->error == HTTPC_OK && res->status >= 200 && res->status < 300;
    if (res->error == HTTPC_OK)
        snprintf(err, sizeof err, "HTTP %ld", res->status);
    else
        snprintf(err, sizeof err, "%s", httpc_error_name(res->error));
    dest_result(d, ok, err);
}

static void dest_send(nout_dest *d)
{
    httpc_opts o = {
        .method = "POST",
        .url = d->msg.url,
        .headers = (const char *const *)d->msg.headers,
        .body = d->msg.body,
        .body_len = d->msg.body_len,
        .timeout_ms = NOTIFY_TIMEOUT_MS,
        .max_response_bytes = 64 * 1024,
    };
    int rc = httpc_request(d->owner->httpc, &o, on_dest_answer, d, &d->req);
    if (rc < 0) {
        d->req = NULL;
        dest_result(d, false, rc == -EINVAL ? "the request was refused (bad URL or header)" : "cannot send");
    }
}

static void on_dest_closed(uv_handle_t *h)
{
    nout_dest *d = container_of((uv_timer_t *)h, nout_dest, timer);
    notify_out *n = d->owner;
    free(d);
    if (--n->open == 0 && n->closing) {
        free(n->v);
        free(n);
    }
}

static void dest_close(nout_dest *d)
{
    if (d->req)
        httpc_cancel(d->req);
    d->req = NULL;
    nout_message_free(&d->msg);
    d->has_msg = false;
    nout_queue_clear(&d->q);
    free(d->url);
    free(d->token);
    d->url = d->token = NULL;
    uv_timer_stop(&d->timer);
    uv_close((uv_handle_t *)&d->timer, on_dest_closed);
}

static nout_dest *dest_new(notify_out *n, const cfg_notify *c)
{
    nout_dest *d = xcalloc(1, sizeof *d);
    d->owner = n;
    d->type = c->type;
    d->url = xstrdup(c->url);
    d->token = xstrdup(c->token ? c->token : "");
    nout_url_origin(c->url, d->origin, sizeof d->origin);
    uv_timer_init(n->loop, &d->timer);
    n->open++;
    return d;
}

static bool dest_same(const nout_dest *d, const cfg_notify *c)
{
    return d->type == c->type && strcmp(d->url, c->url) == 0 && strcmp(d->token, c->token ? c->token : "") == 0;
}

void notify_out_configure(notify_out *n, const cfg_notify *c, size_t count)
{
    nout_dest **v = xcalloc(count ? count : 1, sizeof *v);
    for (size_t i = 0; i < count; i++) {
        for (size_t k = 0; k < n->n && !v[i]; k++) {
            if (n->v[k] && dest_same(n->v[k], &c[i])) {
                v[i] = n->v[k];
                n->v[k] = NULL;
            }
        }
        if (!v[i])
            v[i] = dest_new(n, &c[i]);
        v[i]->events = c[i].events;
    }
    for (size_t k = 0; k < n->n; k++)
        if (n->v[k])
            dest_close(n->v[k]);
    free(n->v);
    n->v = v;
    n->n = count;
}

bool notify_out_wants(const notify_out *n, cfg_notify_event kind)
{
    for (size_t i = 0; n && i < n->n; i++)
        if (n->v[i]->events & (1u << kind))
            return true;
    return false;
}

void notify_out_event(notify_out *n, cfg_notify_event kind, const char *folder, const char *target,
                      const char *reason, bool every)
{
    if (!n || n->closing)
        return;
    uint64_t at = wall_ms();
    for (size_t i = 0; i < n->n; i++) {
        nout_dest *d = n->v[i];
        if (!every && !(d->events & (1u << kind)))
            continue;
        nout_queue_push(&d->q, kind, folder, target, reason, at);
        dest_kick(d);
    }
}

void notify_out_tick(notify_out *n)
{
    for (size_t i = 0; i < n->n; i++)
        dest_kick(n->v[i]);
}

size_t notify_out_count(const notify_out *n) { return n ? n->n : 0; }

void notify_out_view(const notify_out *n, size_t i, nout_view *v)
{
    const nout_dest *d = n->v[i];
    *v = (nout_view){
        .type = d->type,
        .origin = d->origin,
        .events = d->events,
        .pending = nout_queue_pending(&d->q),
        .sending = d->has_msg,
        .has_result = d->has_result,
        .last_ok = d->last_ok,
        .last_at = d->last_at,
        .last_error = d->last_error,
    };
}

void notify_out_render_metrics(const notify_out *n, buf_t *b)
{
    buf_appends(b, "# HELP pss_notifications_total Notification messages by destination type and outcome "
                   "(failed: a try that failed; dropped: given up after 3 tries).\n"
                   "# TYPE pss_notifications_total counter\n");
    for (int t = 0; t < NOTIFY_TYPE_COUNT; t++)
        for (int o = 0; o < NOUT_OUTCOMES; o++)
            buf_printf(b, "pss_notifications_total{type=\"%s\",outcome=\"%s\"} %llu\n",
                       cfg_notify_type_name((cfg_notify_type)t), nout_outcome_name(o),
                       (unsigned long long)(n ? n->counts[t][o] : 0));
}

void notify_out_close(notify_out *n)
{
    if (!n || n->closing)
        return;
    n->closing = true;
    for (size_t i = 0; i < n->n; i++)
        dest_close(n->v[i]);
    n->n = 0;
    if (n->open == 0) {
        free(n->v);
        free(n);
    }
}
