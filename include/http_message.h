/* http_message.h: HTTP messages apart from any connection (http_message.c): the request a
 * handler gets, reason phrases, whole responses and JSON error bodies, header lookup and
 * percent-decoding. Pure functions over strings and buffers; http_server.c uses them for the
 * wire, handlers for their answers. */
#ifndef PSS_HTTP_MESSAGE_H
#define PSS_HTTP_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

typedef struct http_conn http_conn; /* http_server.c's; opaque here */

typedef struct http_header {
    char *name;   /* as received */
    char *value;  /* surrounding whitespace trimmed */
} http_header;

typedef struct http_request {
    http_conn *conn;
    const char *method;    /* "GET", "POST", ... */
    char *target;          /* raw request target, e.g. "/api/resolve?path=%2Ftv" */
    char *path;            /* target before '?', NOT percent-decoded */
    char *query;           /* after '?', "" if none */
    http_header *headers;
    size_t n_headers;
    char *body;            /* NUL-terminated (the NUL is not counted) */
    size_t body_len;
    char remote_addr[64];  /* peer address text */
    bool keep_alive;
    bool body_skipped;     /* handed over at the end of its head (HTTP_HEAD_WITHOUT_BODY) */
    uint64_t received_at;  /* mono ms when the request was complete */
    void *route_ud;        /* free slot for the router/handler */
} http_request;

/* Case-insensitive header lookup; NULL if absent. */
const char *http_header_get(const http_request *r, const char *name);
/* Value of query parameter `name`, percent-decoded ('+' = space), or NULL. New string. */
char *http_query_get(const char *query, const char *name);
/* Same for an application/x-www-form-urlencoded body. */
#define http_form_get(body, name) http_query_get((body), (name))
/* Percent-decode; returns a new string or NULL on malformed escapes. */
char *http_url_decode(const char *s, size_t len, bool plus_is_space);

/* Reason phrase for a status ("Not Found"), "" if unknown. The JSON error's status word is this
 * phrase in snake case ("payload_too_large"), or "error". */
const char *http_status_reason(int status);
/* The whole response into b: status line, Date, Content-Type (unless bodiless), Content-Length
 * (unless 204/304), Connection (close or keep-alive), extra_headers verbatim (a missing final
 * CRLF added), then the body unless `head` or a bodiless status. Sized once. */
void http_build_response(buf_t *b, int status, const char *content_type, const char *body,
                         size_t len, const char *extra_headers, bool close, bool head);
/* {"status":"<word>","message":"<message, escaped>"} into b (word: see http_status_reason). */
void http_build_json_error(buf_t *b, int status, const char *message);
/* s as the inside of a JSON string into b; invalid UTF-8 becomes U+FFFD, so the document stays
 * valid whatever bytes s holds. */
void http_json_escape(buf_t *b, const char *s);

/* Where the path starts in a request target: 0 for the origin form ("/path?q"); after the
 * scheme and authority for the absolute form ("http://host:port/path?q", RFC 9112 3.2.2). */
size_t http_target_path_start(const char *t, size_t len);
/* Why a header line the parser let through must be refused (RFC 9112 5.1, 5.2: whitespace or
 * other non-token bytes in a name, "Transfer-Encoding : chunked" being the classic smuggling
 * vector; obsolete folding or control bytes in a value), or NULL when it is fine. */
const char *http_header_line_problem(const char *name, size_t name_len, const char *value, size_t value_len);

struct sockaddr;
/* A peer's address as text (IPv4-mapped IPv6 shown as IPv4) into peer, and "addr:port" or
 * "[addr]:port" into label, for requests and logs; "unknown" for anything else. */
void http_peer_text(const struct sockaddr *sa, char *peer, size_t peerlen, char *label, size_t labellen);

#endif
