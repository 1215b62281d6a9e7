/* http_server_internal.h: what the two halves of the HTTP server share; not a public header
 * (callers use http_server.h). http_conn.c keeps a connection's life: accepting and evicting,
 * reading and the parse loop, the timers, writing and closing, and the pools of spare buffers
 * and requests. http_server.c, above it, assembles each request from llhttp's callbacks, starts
 * and stops the server and sends the handlers' answers. The connection states and the ownership
 * rules are described at the top of http_server.c. */
#ifndef PSS_HTTP_SERVER_INTERNAL_H
#define PSS_HTTP_SERVER_INTERNAL_H

#include <llhttp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "http_server.h"
#include "list.h"
#include "util.h"

/* A body that fits (webhook payloads are a few KiB) is read into a buffer of this size, and the
 * buffer is kept for the next body instead of freed: a malloc of that size per request made
 * glibc consolidate its free lists every time. A few are kept, for requests handled at once. */
#define SPARE_BODY_BYTES ((size_t)8192)
#define SPARE_BODIES 4
/* Finished requests kept for the next ones, as the bodies are: a request is over 1 KiB. */
#define SPARE_REQS 8

typedef enum {
    CONN_IDLE,
    CONN_HEADERS,
    CONN_BODY,
    CONN_HANDLING,
    CONN_WRITING,
    CONN_LINGER,
    CONN_CLOSING,
} conn_state;

/* Where a header's name and value start in its request's text. */
typedef struct hdr_at {
    size_t name, value;
} hdr_at;

/* Headers most requests stay within: kept inside the request, not allocated. */
#define INLINE_HEADERS 16

/* A request under construction, then handed out; handlers see only `pub` (first member).
 * Its strings live in one buffer, `text`: the target and a NUL, the path (when a query
 * follows it) and a NUL, then each header line as "name\0value\0". pub's pointers are set
 * from the offsets once the headers are complete, and again whenever `text` moves (trailers
 * of a chunked body). */
typedef struct req_priv {
    http_request pub;
    buf_t text;
    bool target_done;    /* the target and path are in text */
    bool published;      /* pub's pointers are set */
    size_t path_at, query_at;
    size_t name_at, value_at; /* of the header line being received; SIZE_MAX when not begun */
    hdr_at *at;          /* per header; at_inline until more than INLINE_HEADERS */
    size_t headers_cap;
    size_t header_bytes; /* URL + names + values + per-line overhead */
    char *body;
    size_t body_len, body_cap, body_limit;
    size_t body_expected; /* Content-Length, 0 if chunked */
    /* Last: a reused request is cleared up to here (these need no clearing). */
    http_header headers_inline[INLINE_HEADERS];
    hdr_at at_inline[INLINE_HEADERS];
} req_priv;

struct http_conn {
    http_server *srv;  /* NULL once the server is gone and only an orphan request keeps us */
    list_node link;    /* the server's connections, oldest accepted first */
    uv_tcp_t tcp;
    uv_timer_t header_timer;
    uv_timer_t idle_timer;
    uv_write_t wreq;
    uv_write_t cont_wreq; /* "100 Continue" interim response */
    uv_shutdown_t shutdown_req;
    int open_handles;
    conn_state state;
    bool reading;
    bool handed;       /* req is held by the handler */
    bool close_after;  /* close (linger) once the write completes */
    bool cont_pending;
    bool evictable;    /* the handler holds the request only to delay its answer */
    bool got_bytes;    /* anything was read on it yet */
    bool peer_eof;     /* the peer half-closed while its request was handled or answered */
    uint64_t accepted_at; /* loop time (ms) of the accept */
    uint64_t body_at;     /* loop time (ms) the body began (the end of the head) */
    const char *exec_start, *exec_end; /* the bytes of the llhttp_execute() call running */
    unsigned exec_id;  /* counts llhttp_execute() calls */
    const char *value_end; /* end of the last header value piece, to tell a fold from a split */
    unsigned value_exec_id; /* the call that piece came in */
    bool value_end_at_exec_end;
    int fail_status;   /* set by a parser callback that stops the parse */
    const char *fail_msg;
    const char *fail_headers; /* extra headers of that answer (the head check's), or NULL */
    llhttp_t parser;
    char *rbuf;        /* READ_CHUNK bytes; [rpos, rlen) not yet parsed */
    size_t rpos, rlen;
    char *wbuf;        /* response being written, kept until the write callback */
    size_t wlen;
    req_priv *req;
    size_t acct;       /* bytes this connection adds to srv->buffered */
    char peer[64];     /* address text, for requests */
    char label[80];    /* "addr:port" / "[addr]:port", for logs */
};

struct http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_timer_t anchor; /* never started: guarantees close always completes in a callback */
    llhttp_settings_t settings;
    http_server_opts o;
    list_node conns;     /* http_conn, oldest accepted first */
    size_t n_conns;      /* connections not yet closing */
    size_t buffered;     /* bytes held by all connections' buffers, requests and responses */
    unsigned open_handles;
    bool listener_open, draining, closing;
    int port;
    void (*done)(void *ud);
    void *done_ud;
    char *spare_rbuf;    /* an emptied read buffer, kept for the next connection that reads */
    char *spare_body[SPARE_BODIES]; /* emptied SPARE_BODY_BYTES body buffers, for the next bodies */
    size_t n_spare_body;
    req_priv *spare_req[SPARE_REQS]; /* finished requests, kept (with their text buffer) for reuse */
    size_t n_spare_req;
};

/* ---- http_conn.c, for http_server.c ---- */

/* A cleared request for c, reused from the server's spares when it has one. */
req_priv *http_req_new(http_conn *c);
/* Frees q (NULL is fine), or keeps it, and its body buffer, among the server's spares. */
void http_req_free(req_priv *q);
/* q's body buffer goes back to the server's spares, or is freed. */
void http_req_release_body(req_priv *q);
bool http_req_is_head(const req_priv *q);

/* Recounts the bytes c holds into its server's total. */
void http_conn_account(http_conn *c);
/* Frees c once its handles are closed and no handler holds its request. */
void http_conn_maybe_free(http_conn *c);
/* Silent close, idempotent. A request the handler holds survives (see http_server.c). */
void http_conn_close(http_conn *c);
/* (Re)starts c's idle timer, or its header timer, for ms. */
void http_conn_idle_timer(http_conn *c, uint64_t ms);
void http_conn_header_timer(http_conn *c, uint64_t ms);
/* Sends data (malloc'd; c owns it from here), then takes the next request or closes. */
void http_conn_write(http_conn *c, char *data, size_t len, bool close_after);
/* The listener's connection callback: accepts, evicting or refusing at the limit. */
void http_conn_on_connection(uv_stream_t *ls, int status);
/* Frees s once it is closing and its last handle has closed. */
void http_server_maybe_finish(http_server *s);

#endif
