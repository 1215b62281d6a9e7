/* http_message.c: what HTTP messages are made of, apart from any connection: reason phrases,
 * the Date line, whole responses, JSON error bodies and string escaping, header lookup, and
 * percent-decoding of targets, queries and forms. Pure: no libuv, no sockets. */
#include "http_message.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

/* ---- status lines and responses ----------------------------------------------------------------------- */

static const struct {
    int status;
    const char *reason;
} reasons[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {206, "Partial Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Payload Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {422, "Unprocessable Entity"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
};

const char *http_status_reason(int status)
{
    for (size_t i = 0; i < ARRAY_SIZE(reasons); i++)
        if (reasons[i].status == status)
            return reasons[i].reason;
    return "";
}

/* RFC 9110 wants a Date on most responses; formatted by hand so the locale cannot matter. */
static void append_date(buf_t *b)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    /* The line changes once a second: formatted then, copied for every response in between
     * (the loop is the only caller). */
    static time_t line_at = (time_t)-1;
    static char line[64];
    static int line_len;
    time_t now = time(NULL);
    if (now != line_at) {
        struct tm tm;
        if (!gmtime_r(&now, &tm))
            return;
        line_len = snprintf(line, sizeof line, "Date: %s, %02d %s %04d %02d:%02d:%02d GMT\r\n",
                            days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
                            tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
        if (line_len <= 0 || (size_t)line_len >= sizeof line)
            return;
        line_at = now;
    }
    buf_append(b, line, (size_t)line_len);
}

/* Whole response (head and, unless HEAD or a bodiless status, body) into b, sized once: every
 * webhook is answered through here. */
void http_build_response(buf_t *b, int status, const char *content_type, const char *body,
                           size_t len, const char *extra_headers, bool close, bool head)
{
    bool bodiless = status == 204 || status == 304;
    bool with_body = !head && !bodiless && len;
    const char *reason = http_status_reason(status);
    size_t extra = extra_headers ? strlen(extra_headers) : 0;
    buf_reserve(b, 160 + strlen(reason) + (content_type ? strlen(content_type) : 0) + extra +
                       (with_body ? len : 0));
    char status_line[16] = "HTTP/1.1 000 ";
    status_line[9] = (char)('0' + status / 100 % 10);
    status_line[10] = (char)('0' + status / 10 % 10);
    status_line[11] = (char)('0' + status % 10);
    buf_append(b, status_line, 13);
    buf_appends(b, reason);
    buf_append(b, "\r\n", 2);
    append_date(b);
    if (content_type && !bodiless) {
        buf_appends(b, "Content-Type: ");
        buf_appends(b, content_type);
        buf_append(b, "\r\n", 2);
    }
    if (!bodiless) {
        char num[24];
        char *digits = fmt_digits(num + sizeof num, len);
        buf_appends(b, "Content-Length: ");
        buf_append(b, digits, (size_t)(num + sizeof num - digits));
        buf_append(b, "\r\n", 2);
    }
    buf_appends(b, close ? "Connection: close\r\n" : "Connection: keep-alive\r\n");
    if (extra) {
        buf_append(b, extra_headers, extra);
        if (extra < 2 || memcmp(extra_headers + extra - 2, "\r\n", 2) != 0)
            buf_append(b, "\r\n", 2);
    }
    buf_append(b, "\r\n", 2);
    if (with_body)
        buf_append(b, body, len);
}

/* ---- JSON string escaping ----------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if it is not one (overlong forms,
 * surrogates and code points past U+10FFFF are invalid). */
static size_t utf8_seq_len(const unsigned char *p)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return (p[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if ((p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
            return 0;
        if (c == 0xe0 && p[1] < 0xa0)
            return 0; /* overlong */
        if (c == 0xed && p[1] >= 0xa0)
            return 0; /* surrogate */
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if ((p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
            return 0;
        if (c == 0xf0 && p[1] < 0x90)
            return 0; /* overlong */
        if (c == 0xf4 && p[1] >= 0x90)
            return 0; /* past U+10FFFF */
        return 4;
    }
    return 0;
}

/* Appends s as the inside of a JSON string. Invalid UTF-8 becomes U+FFFD so the document
 * stays valid whatever bytes (a client's path, say) the message carries. */
void http_json_escape(buf_t *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned char ch = *p;
        switch (ch) {
        case '"': buf_appends(b, "\\\""); break;
        case '\\': buf_appends(b, "\\\\"); break;
        case '\n': buf_appends(b, "\\n"); break;
        case '\r': buf_appends(b, "\\r"); break;
        case '\t': buf_appends(b, "\\t"); break;
        case '\b': buf_appends(b, "\\b"); break;
        case '\f': buf_appends(b, "\\f"); break;
        default:
            if (ch < 0x20 || ch == 0x7f) {
                char u[7] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15], '\0'};
                buf_appends(b, u);
            } else {
                size_t n = utf8_seq_len(p);
                if (n == 0) {
                    buf_appends(b, "\xef\xbf\xbd");
                    n = 1;
                } else {
                    buf_append(b, p, n);
                }
                p += n;
                continue;
            }
        }
        p++;
    }
}

/* {"status":"<word>","message":"..."}; the word is the reason phrase in snake case
 * ("bad_request", "payload_too_large"), or "error" for a status without one. */
void http_build_json_error(buf_t *b, int status, const char *message)
{
    const char *reason = http_status_reason(status);
    buf_appends(b, "{\"status\":\"");
    if (!*reason)
        buf_appends(b, "error");
    for (const char *p = reason; *p; p++) {
        char ch = *p;
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        else if (ch == ' ' || ch == '-')
            ch = '_';
        buf_append(b, &ch, 1);
    }
    buf_appends(b, "\",\"message\":\"");
    http_json_escape(b, message ? message : "");
    buf_appends(b, "\"}");
}

/* ---- requests' fields ------------------------------------------------------------------ */

const char *http_header_get(const http_request *r, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < r->n_headers; i++) {
        const http_header *h = &r->headers[i];
        if (strlen(h->name) == n && ascii_strncasecmp(h->name, name, n) == 0)
            return h->value;
    }
    return NULL;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *http_url_decode(const char *s, size_t len, bool plus_is_space)
{
    if (!s)
        return NULL;
    char *out = xmalloc(len + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '%') {
            int hi = len - i >= 3 ? hexval(s[i + 1]) : -1;
            int lo = len - i >= 3 ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                goto fail;
            ch = (char)(hi << 4 | lo);
            i += 2;
        } else if (ch == '+' && plus_is_space) {
            ch = ' ';
        }
        if (ch == '\0')
            goto fail; /* a NUL would silently cut every C string made from this */
        out[o++] = ch;
    }
    out[o] = '\0';
    return out;
fail:
    free(out);
    return NULL;
}

char *http_query_get(const char *query, const char *name)
{
    if (!query || !name)
        return NULL;
    const char *p = query;
    while (*p) {
        const char *end = strchr(p, '&');
        if (!end)
            end = p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        const char *kend = eq ? eq : end;
        char *key = http_url_decode(p, (size_t)(kend - p), true);
        bool match = key && strcmp(key, name) == 0;
        free(key);
        if (match)
            return eq ? http_url_decode(eq + 1, (size_t)(end - eq - 1), true) : xstrdup("");
        p = *end ? end + 1 : end;
    }
    return NULL;
}

void http_peer_text(const struct sockaddr *sa, char *peer, size_t peerlen, char *label, size_t labellen)
{
    snprintf(peer, peerlen, "unknown");
    snprintf(label, labellen, "unknown");
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        if (inet_ntop(AF_INET, &sin->sin_addr, peer, (socklen_t)peerlen))
            snprintf(label, labellen, "%s:%u", peer, (unsigned)ntohs(sin->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
            /* A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d; show them as IPv4. */
            if (inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], peer, (socklen_t)peerlen))
                snprintf(label, labellen, "%s:%u", peer, (unsigned)ntohs(sin6->sin6_port));
        } else if (inet_ntop(AF_INET6, &sin6->sin6_addr, peer, (socklen_t)peerlen)) {
            snprintf(label, labellen, "[%s]:%u", peer, (unsigned)ntohs(sin6->sin6_port));
        }
    }
}

/* Where the path starts in a request target: 0 for the origin form ("/path?q"); after the scheme
 * and authority for the absolute form ("http://host:port/path?q"), which RFC 9112 (3.2.2) asks a
 * server to accept too. */
size_t http_target_path_start(const char *t, size_t len)
{
    size_t s;
    if (len >= 7 && ascii_strncasecmp(t, "http://", 7) == 0)
        s = 7;
    else if (len >= 8 && ascii_strncasecmp(t, "https://", 8) == 0)
        s = 8;
    else
        return 0;
    while (s < len && t[s] != '/' && t[s] != '?')
        s++;
    return s;
}

static bool is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

const char *http_header_line_problem(const char *name, size_t name_len, const char *value, size_t value_len)
{
    if (name_len == 0)
        return "empty header name";
    for (size_t i = 0; i < name_len; i++)
        if (!is_tchar((unsigned char)name[i]))
            return "invalid character in a header name";
    for (size_t i = 0; i < value_len; i++) {
        unsigned char ch = (unsigned char)value[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return ch == '\r' || ch == '\n' ? "folded header line" : "control character in a header value";
    }
    return NULL;
}
