/* http_server.h: incoming HTTP/1.x on libuv TCP streams, parsed by llhttp.
 * One request at a time per connection: reading stops while a request is handled, and resumes
 * (first parsing what is already buffered, so pipelined requests are answered in order) after
 * its response is written. Limits: header bytes (431 beyond), body bytes per route (413),
 * header timeout (from the first byte of a request to the end of its headers), idle timeout
 * (keep-alive wait and gaps in the body), connection count (oldest connection still sending
 * headers closed first when full). Parse errors get 400 and a close. */
#ifndef PSS_HTTP_SERVER_H
#define PSS_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "http_message.h"

typedef struct http_server http_server;

/* Called once the request's headers are complete, before its body is read: return the body cap
 * for it (bytes) so an oversized body gets 413 without being buffered. */
typedef size_t (*http_body_limit_fn)(void *ud, const http_request *r);
/* Called once the head of a request with a body is complete, before the body is read: 0 lets it
 * go on; a status answers it at once with a JSON error (message, and extra_headers: "Name:
 * value\r\n...", static strings) and closes the connection; HTTP_HEAD_WITHOUT_BODY hands it to
 * the handler at once, its body unread (body_skipped set, body empty), for an answer the handler
 * gives (a failed login's delayed 401), and closes the connection after that answer. Lets a
 * client that waits with "Expect: 100-continue" be refused before it sends its body. */
#define HTTP_HEAD_WITHOUT_BODY 1
typedef int (*http_head_check_fn)(void *ud, const http_request *r, const char **extra_headers,
                                  const char **message);
/* Called with a complete request. The handler must eventually call http_respond() exactly
 * once (now or from a later loop turn). The request stays valid until then. */
typedef void (*http_handler_fn)(void *ud, http_request *r);

typedef struct http_server_opts {
    const char *bind_address;
    int port;
    size_t max_header_bytes;      /* default 16384 */
    uint64_t header_timeout_ms;   /* default 10000 */
    uint64_t idle_timeout_ms;     /* default 60000 */
    int max_connections;          /* default 4096 */
    size_t max_buffered_bytes;    /* total bytes held by all requests/responses; 0 = 256 MiB */
    http_body_limit_fn body_limit;
    http_head_check_fn head_check;  /* NULL: every head goes on to its body */
    http_handler_fn handler;
    void *ud;
} http_server_opts;

/* Bind and listen. Returns 0 or a negative libuv error code (err filled). Every connection is a
 * file: the caller raises RLIMIT_NOFILE to fit max_connections (main does). */
int http_server_start(uv_loop_t *loop, const http_server_opts *o, http_server **out, char *err,
                      size_t errlen);
/* Stop accepting; existing connections finish their current request then close. */
void http_server_stop_accepting(http_server *s);
/* Close everything; `done` (may be NULL) runs when all handles are closed, then s is freed. */
void http_server_close(http_server *s, void (*done)(void *ud), void *ud);
size_t http_server_conn_count(const http_server *s);
int http_server_port(const http_server *s); /* the bound port (useful with port 0) */

/* Respond. extra_headers is "Name: value\r\n..." or NULL. The body is copied. Content-Length
 * is set; "Connection: close" is sent when the request asked for it or the server decided to
 * close. */
void http_respond(http_request *r, int status, const char *content_type, const char *body,
                  size_t len, const char *extra_headers);
/* The handler holds r only to answer it later on purpose (a delayed 401): when the connection
 * limit is reached, r's connection may be closed to make room (oldest first, as connections
 * still sending headers are); http_respond() then sends nothing and frees r as usual. */
void http_request_evictable(http_request *r);
/* The handler is done with the body (it keeps r only to answer later): free it now; r->body
 * becomes "" for the rest of r's life. */
void http_request_drop_body(http_request *r);
/* Convenience: {"status": <status_word>, "message": msg} JSON, e.g. 400 "bad_request". */
void http_respond_json_error(http_request *r, int status, const char *message);

/* Details of the contract above, as implemented:
 * - http_respond(): the first call frees the request, a second one is a use-after-free. A
 *   status outside 200..599 is logged and sent as 500. HEAD gets the head only (with the
 *   Content-Length of the body it would have had); 204 and 304 get neither body nor length.
 *   extra_headers are copied verbatim (a missing final CRLF is added): never put client
 *   text in them unchecked.
 * - A request handed to the handler stays valid until http_respond(), even if its connection
 *   or the whole server is closed meanwhile (http_server_close() may run `done` first); the
 *   response is then dropped and the request freed. A handler that never responds leaks it.
 * - Reading is stopped while the handler holds the request, so a peer that hangs up is only
 *   noticed when the response is written (EPIPE): the process must ignore SIGPIPE.
 * - body_limit NULL means 1 MiB for every request. The limit also applies to chunked bodies.
 * - max_header_bytes counts the request target, header names and values, and 4 bytes per
 *   header line (": " and CRLF), so the number of headers is bounded too; trailers count.
 * - Timeouts: a connection waiting for a new request is closed silently after
 *   idle_timeout_ms; headers not complete header_timeout_ms after a request's first byte get
 *   408; a body with no bytes for idle_timeout_ms gets 408; a response the peer does not
 *   take within idle_timeout_ms closes the connection. Every answer the server gives by
 *   itself (400, 408, 413, 431, 503) is a JSON error with "Connection: close".
 * - max_connections: when full, a connection that is not busy is closed to make room: the
 *   oldest lingering one (response sent, closing) or holding a request marked with
 *   http_request_evictable(); else the oldest waiting for or receiving its headers (one accepted
 *   less than 250 ms ago that has sent nothing yet is spared). If none, the new one is closed.
 * - max_buffered_bytes counts read buffers, requests (headers and bodies) and responses not
 *   yet written; a read that takes the total over it gets 503 on that connection.
 * - "Expect: 100-continue" is answered with "100 Continue" when the body is within the limit.
 * - http_server_start() failing after the socket was created closes it with uv_close(): run
 *   the loop once more before uv_loop_close(). http_server_close() always finishes in a
 *   callback (never before it returns); call it once. After http_server_stop_accepting(),
 *   idle connections close at once and busy ones after their current response. */
#endif
