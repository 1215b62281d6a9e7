/* auth.c: HTTP Basic credentials, compared in constant time. The *arr apps encode the password
 * as ISO-8859-1, browsers as UTF-8: both encodings of the configured password are accepted.
 *
 * Failed logins are slowed down per client address: the 401 for a wrong password is sent after
 * a delay that doubles with each failure from that address (0, 0.25 s, 0.5 s, 1 s, 2 s, 4 s,
 * then 5 s), and the count halves for every quiet minute. Only failures wait: a request with
 * the right credentials is answered at once, whatever its address did before, so a flood of
 * wrong passwords cannot lock Sonarr out. A request without credentials (a browser's first
 * try) is not a failure. The table of addresses is fixed (THROTTLE_SLOTS, least recently
 * failed dropped first); IPv6 addresses count per /64. A delayed answer holds its connection,
 * which the HTTP server may close to make room when the connection limit is reached; past
 * THROTTLE_MAX_HELD delayed answers for one address, further failures get 429 at once.
 *
 * The client address is the TCP peer, or, when the peer is listed in TRUSTED_PROXIES, the
 * right-most X-Forwarded-For entry that is not itself a trusted proxy. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "log.h"
#include "util.h"

#define THROTTLE_SLOTS 4096
#define THROTTLE_BUCKETS 8192 /* a power of two */
#define THROTTLE_FIRST_MS 250
#define THROTTLE_MAX_MS 5000
#define THROTTLE_QUIET_MS 60000
#define THROTTLE_MAX_HELD 16
#define THROTTLE_TICK_MS 250 /* a held answer looks this often whether the daemon is stopping */
#define XFF_MAX_HOPS 32

/* UTF-8 -> ISO-8859-1 when every code point fits; NULL otherwise (then only UTF-8 can match). */
static char *latin1_of(const char *s, size_t *outlen)
{
    size_t n = strlen(s);
    char *out = xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            out[o++] = (char)c;
            i++;
        } else if ((c == 0xC2 || c == 0xC3) && i + 1 < n && ((unsigned char)s[i + 1] & 0xC0) == 0x80) {
            out[o++] = (char)(((c & 0x1F) << 6) | ((unsigned char)s[i + 1] & 0x3F));
            i += 2;
        } else {
            free(out);
            return NULL;
        }
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}

bool auth_basic_ok(const http_request *r, const char *user, const char *pass)
{
    if (!user || !pass)
        return false;
    const char *h = http_header_get(r, "Authorization");
    if (!h || strncasecmp(h, "Basic ", 6) != 0)
        return false;
    const char *b64 = h + 6;
    while (*b64 == ' ')
        b64++;
    size_t blen = strlen(b64);
    while (blen && b64[blen - 1] == ' ')
        blen--;
    if (blen > 4096)
        return false;
    unsigned char *dec = NULL;
    size_t dlen = 0;
    if (base64_decode(b64, blen, &dec, &dlen) < 0)
        return false;
    unsigned char *colon = memchr(dec, ':', dlen);
    bool ok = false;
    if (colon) {
        size_t ulen = (size_t)(colon - dec);
        const unsigned char *p = colon + 1;
        size_t plen = dlen - ulen - 1;
        /* Evaluate every comparison so the time does not tell which part was wrong. */
        bool user_ok = ct_equal(dec, ulen, user, strlen(user));
        bool pass_utf8 = ct_equal(p, plen, pass, strlen(pass));
        size_t l1len = 0;
        char *l1 = latin1_of(pass, &l1len);
        bool pass_l1 = l1 ? ct_equal(p, plen, l1, l1len) : false;
        free(l1);
        ok = user_ok & (pass_utf8 | pass_l1);
    }
    free(dec);
    return ok;
}

/* ---- client addresses --------------------------------------------------------------------- */

/* Address text -> 16 bytes (IPv4 as ::ffff:a.b.c.d). "[v6]" is accepted too. */
static bool addr_parse(const char *s, size_t len, unsigned char out[16])
{
    char text[INET6_ADDRSTRLEN + 2];
    if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
        s++;
        len -= 2;
    }
    if (len == 0 || len >= sizeof text)
        return false;
    memcpy(text, s, len);
    text[len] = '\0';
    unsigned char a4[4];
    if (inet_pton(AF_INET, text, a4) == 1) {
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, a4, 4);
        return true;
    }
    return inet_pton(AF_INET6, text, out) == 1;
}

static bool is_v4_mapped(const unsigned char a[16])
{
    static const unsigned char prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return memcmp(a, prefix, sizeof prefix) == 0;
}

static void addr_text(const unsigned char a[16], char *out, size_t outlen)
{
    if (is_v4_mapped(a)) {
        if (!inet_ntop(AF_INET, a + 12, out, (socklen_t)outlen))
            snprintf(out, outlen, "?");
    } else if (!inet_ntop(AF_INET6, a, out, (socklen_t)outlen)) {
        snprintf(out, outlen, "?");
    }
}

static bool cidr_match(const cfg_cidr *n, const unsigned char a[16])
{
    unsigned full = n->prefix / 8, rest = n->prefix % 8;
    if (memcmp(n->addr, a, full) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xffu << (8 - rest));
    return (a[full] & mask) == n->addr[full];
}

static bool is_trusted(const config_t *c, const unsigned char a[16])
{
    for (size_t i = 0; i < c->n_trusted; i++)
        if (cidr_match(&c->trusted[i], a))
            return true;
    return false;
}

/* The client the request stands for (see the file comment). False when the peer address
 * itself cannot be read (then nothing is tracked). */
static bool client_addr(const config_t *c, const http_request *r, unsigned char out[16])
{
    if (!addr_parse(r->remote_addr, strlen(r->remote_addr), out))
        return false;
    if (!is_trusted(c, out))
        return true;
    /* Every X-Forwarded-For line, in order, as one list: a proxy appends to the last one. */
    buf_t xff;
    buf_init(&xff, 0);
    for (size_t i = 0; i < r->n_headers; i++) {
        if (strcasecmp(r->headers[i].name, "X-Forwarded-For") != 0)
            continue;
        if (xff.len)
            buf_appends(&xff, ",");
        buf_appends(&xff, r->headers[i].value);
    }
    size_t end = xff.len;
    for (int hops = 0; end > 0 && hops < XFF_MAX_HOPS; hops++) {
        size_t start = end;
        while (start > 0 && xff.data[start - 1] != ',')
            start--;
        size_t b = start, e = end;
        while (b < e && (xff.data[b] == ' ' || xff.data[b] == '\t'))
            b++;
        while (e > b && (xff.data[e - 1] == ' ' || xff.data[e - 1] == '\t'))
            e--;
        end = start > 0 ? start - 1 : 0;
        if (e == b)
            continue;
        unsigned char hop[16];
        if (!addr_parse(xff.data + b, e - b, hop))
            break; /* garbage: the last trusted hop is what we know */
        memcpy(out, hop, 16);
        if (!is_trusted(c, hop))
            break;
    }
    buf_free(&xff);
    return true;
}

/* ---- the failure table -------------------------------------------------------------------- */

typedef struct fail_ent {
    unsigned char key[16];
    unsigned failures;
    unsigned held;      /* delayed answers waiting: the entry may not be reused meanwhile */
    uint64_t last_ms;   /* mono ms of the last failure */
    uint32_t hnext;     /* bucket chain: index + 1, 0 = end */
    uint32_t prev, next; /* LRU list (most recent first): index + 1, 0 = none */
} fail_ent;

static struct {
    fail_ent ents[THROTTLE_SLOTS];
    uint32_t buckets[THROTTLE_BUCKETS]; /* index + 1, 0 = empty */
    uint32_t head, tail;                /* LRU list ends: index + 1 */
    uint32_t n_used;
} tbl;

static uint32_t key_hash(const unsigned char k[16])
{
    return (uint32_t)(hash_bytes(HASH_INIT, k, 16) & (THROTTLE_BUCKETS - 1));
}

#define ENT(i) (&tbl.ents[(i) - 1])

static void lru_unlink(uint32_t i)
{
    fail_ent *e = ENT(i);
    if (e->prev)
        ENT(e->prev)->next = e->next;
    else
        tbl.head = e->next;
    if (e->next)
        ENT(e->next)->prev = e->prev;
    else
        tbl.tail = e->prev;
    e->prev = e->next = 0;
}

static void lru_push_front(uint32_t i)
{
    fail_ent *e = ENT(i);
    e->prev = 0;
    e->next = tbl.head;
    if (tbl.head)
        ENT(tbl.head)->prev = i;
    tbl.head = i;
    if (!tbl.tail)
        tbl.tail = i;
}

static void bucket_remove(uint32_t i)
{
    uint32_t *pp = &tbl.buckets[key_hash(ENT(i)->key)];
    while (*pp && *pp != i)
        pp = &ENT(*pp)->hnext;
    if (*pp)
        *pp = ENT(i)->hnext;
    ENT(i)->hnext = 0;
}

/* The entry for key, made (or taken from the least recently failed address) when absent.
 * 0 when every entry is holding delayed answers. */
static uint32_t ent_get(const unsigned char key[16])
{
    uint32_t h = key_hash(key);
    for (uint32_t i = tbl.buckets[h]; i; i = ENT(i)->hnext)
        if (memcmp(ENT(i)->key, key, 16) == 0)
            return i;
    uint32_t i = 0;
    if (tbl.n_used < THROTTLE_SLOTS) {
        i = ++tbl.n_used;
    } else {
        for (uint32_t j = tbl.tail; j; j = ENT(j)->prev) {
            if (ENT(j)->held == 0) {
                i = j;
                break;
            }
        }
        if (!i)
            return 0;
        lru_unlink(i);
        bucket_remove(i);
    }
    fail_ent *e = ENT(i);
    memset(e, 0, sizeof *e);
    memcpy(e->key, key, 16);
    e->hnext = tbl.buckets[h];
    tbl.buckets[h] = i;
    lru_push_front(i);
    return i;
}

/* Count one more failure (after the quiet-minute decay); returns the delay it earns. */
static uint64_t ent_fail(uint32_t i, uint64_t now)
{
    fail_ent *e = ENT(i);
    if (e->failures && now > e->last_ms) {
        uint64_t quiet = (now - e->last_ms) / THROTTLE_QUIET_MS;
        e->failures = quiet >= 32 ? 0 : e->failures >> quiet;
    }
    if (e->failures < 1000)
        e->failures++;
    e->last_ms = now;
    lru_unlink(i);
    lru_push_front(i);
    if (e->failures <= 1)
        return 0;
    unsigned shift = e->failures - 2;
    uint64_t d = shift >= 16 ? THROTTLE_MAX_MS : (uint64_t)THROTTLE_FIRST_MS << shift;
    return d < THROTTLE_MAX_MS ? d : THROTTLE_MAX_MS;
}

/* ---- answering -------------------------------------------------------------------------- */

static void send_challenge(http_request *r, const char *realm)
{
    char hdr[160];
    snprintf(hdr, sizeof hdr, "WWW-Authenticate: Basic realm=\"%s\", charset=\"UTF-8\"\r\n", realm);
    static const char body[] = "{\"status\":\"unauthorized\",\"message\":\"Authentication required\"}";
    http_respond(r, 401, "application/json", body, sizeof body - 1, hdr);
}

typedef struct held_reject {
    uv_timer_t timer;
    app_t *a;
    http_request *r;
    char *realm;
    uint32_t ent;
    uint64_t due; /* mono ms */
} held_reject;

static void held_closed(uv_handle_t *h)
{
    held_reject *p = h->data;
    free(p->realm);
    free(p);
}

static void held_tick(uv_timer_t *t)
{
    held_reject *p = t->data;
    uint64_t now = mono_ms();
    if (now < p->due && !app_stopping(p->a)) {
        uint64_t left = p->due - now;
        uv_timer_start(&p->timer, held_tick, left < THROTTLE_TICK_MS ? left : THROTTLE_TICK_MS, 0);
        return;
    }
    fail_ent *e = ENT(p->ent);
    if (e->held)
        e->held--;
    send_challenge(p->r, p->realm); /* dropped quietly if the connection was closed meanwhile */
    p->r = NULL;
    uv_close((uv_handle_t *)&p->timer, held_closed);
}

void auth_reject(app_t *a, http_request *r, const char *realm)
{
    const char *given = http_header_get(r, "Authorization");
    unsigned char key[16];
    if (!given || app_stopping(a) || !client_addr(app_config(a), r, key)) {
        send_challenge(r, realm);
        return;
    }
    char who[INET6_ADDRSTRLEN];
    addr_text(key, who, sizeof who);
    if (!is_v4_mapped(key))
        memset(key + 8, 0, 8); /* one IPv6 host usually holds a whole /64 */
    uint64_t now = mono_ms();
    uint32_t i = ent_get(key);
    if (!i) {
        send_challenge(r, realm);
        return;
    }
    fail_ent *e = ENT(i);
    uint64_t delay = ent_fail(i, now);
    if (delay == 0) {
        send_challenge(r, realm);
        return;
    }
    if (e->failures == 7) /* the first failure that waits the longest */
        log_warn("auth: %u failed logins from %s in a row: its failures are now answered after %.1f s",
                 e->failures, who, THROTTLE_MAX_MS / 1000.0);
    if (e->held >= THROTTLE_MAX_HELD) {
        log_debug("auth: %s already waits for %u answers: 429 at once", who, e->held);
        char hdr[64];
        snprintf(hdr, sizeof hdr, "Retry-After: %u\r\n", (unsigned)((delay + 999) / 1000));
        static const char body[] =
            "{\"status\":\"too_many_requests\",\"message\":\"too many failed logins; try again later\"}";
        r->keep_alive = false;
        http_respond(r, 429, "application/json", body, sizeof body - 1, hdr);
        return;
    }
    log_debug("auth: failure %u from %s: answering in %llu ms", e->failures, who, (unsigned long long)delay);
    held_reject *p = xcalloc(1, sizeof *p);
    p->a = a;
    p->r = r;
    p->realm = xstrdup(realm);
    p->ent = i;
    p->due = now + delay;
    uv_timer_init(app_io_of(a).loop, &p->timer);
    p->timer.data = p;
    e->held++;
    http_request_evictable(r);
    uv_timer_start(&p->timer, held_tick, delay < THROTTLE_TICK_MS ? delay : THROTTLE_TICK_MS, 0);
}
