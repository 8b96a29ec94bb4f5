/* uhttp.h: a small HTTP/1.1 client over a unix socket, for the Docker
 * Engine API (modules/docker.c): no libcurl in a run that only talks to
 * the local engine (or to one behind an ssh-forwarded socket); and over
 * TCP to an address given as an IP literal or "localhost" (127.0.0.1,
 * then ::1), for the http module's plain http:// requests
 * (modules/http/plain.c): no libcurl for a check against a local service.
 *
 * What it speaks: one request at a time on one connection, kept alive
 * between requests (HTTP/1.1, unless the reply says "Connection: close" or
 * is delimited by the end of the connection); a request head with Host,
 * User-Agent and Content-Length, its body from memory or streamed from a
 * file descriptor; a reply whose body is delimited by Content-Length, by
 * chunked transfer coding, or by the end of the connection; no body after
 * HEAD, 1xx, 204 and 304; interim 1xx replies skipped. What it refuses,
 * each with a message that says so: a reply that is not HTTP (from its
 * first bytes), a status line or header line it cannot read, headers over
 * UHTTP_MAX_HEAD bytes, a body over the caller's limit (said by
 * Content-Length before it is read, or when it gets there), a bad chunk
 * size, a reply cut short (the connection closed before its end), and
 * 101 Switching Protocols. A connection the engine closed while it was
 * idle is noticed before the request is sent; a request on a kept
 * connection that gets no byte back is sent once more on a new one.
 *
 * The reply parser (uhttp_parser) is separate from the socket: it takes
 * bytes in pieces of any size, so that tests (tests/unit/uhttp.c) feed it
 * every split of a reply. */
#ifndef PROVISION_UHTTP_H
#define PROVISION_UHTTP_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define UHTTP_MAX_HEAD (256 * 1024)     /* status line, headers and trailers */
#define UHTTP_ERR 256

typedef struct uhttp_buf {
    char *p;
    size_t len, cap;
} uhttp_buf;

enum uhttp_state {
    UH_STATUS, UH_HEADER, UH_BODY_LEN, UH_CHUNK_SIZE, UH_CHUNK_DATA, UH_CHUNK_END, UH_TRAILER,
    UH_BODY_EOF, UH_DONE, UH_FAILED
};

enum uhttp_why { UHW_OTHER, UHW_NOT_HTTP, UHW_LINE, UHW_HEAD, UHW_CUT };

typedef struct uhttp_parser {
    enum uhttp_state state;
    int head;              /* the request was HEAD: no body whatever the headers say */
    int status;            /* the final reply's status */
    int minor;             /* HTTP/1.minor */
    int chunked, have_length, conn_close, keep_alive, other_coding;
    uint64_t length;       /* Content-Length; then what is left of the body or chunk */
    size_t max_body;       /* 0: no limit */
    size_t head_bytes;     /* of the status line, headers and trailers so far */
    size_t fed;            /* bytes taken in all */
    uhttp_buf line;        /* the line being read */
    uhttp_buf headers;     /* the final reply's header lines, "Name: value\r\n" each */
    uhttp_buf body;
    int oom;
    int truncate;          /* a body over max_body is cut there (truncated), the rest read and dropped */
    int truncated;
    int stop_at_body;      /* the reply is whole once its headers are (stopped: a body was left unread) */
    int stopped;
    size_t max_line;       /* the longest header line (0: only UHTTP_MAX_HEAD) */
    int why;               /* what failed: enum uhttp_why */
    char first[48];        /* the reply's first bytes, for a "not HTTP" message */
    size_t nfirst;
    char err[UHTTP_ERR];
} uhttp_parser;

/* a parser for the reply to a request (head: a HEAD request); max_body 0:
 * no limit. uhttp_parser_free frees its buffers (it may be reset and used
 * again: uhttp_parser_reset keeps the buffers' memory). */
void uhttp_parser_init(uhttp_parser *p, int head, size_t max_body);
void uhttp_parser_reset(uhttp_parser *p, int head, size_t max_body);
void uhttp_parser_free(uhttp_parser *p);

/* feed n bytes; *used: how many were taken (the rest follows the reply's
 * end). 1: the reply is whole; 0: more is needed; -1: p->err says why */
int uhttp_parse(uhttp_parser *p, const char *data, size_t n, size_t *used);
/* the connection ended: 1 when that ends the reply (a body delimited by
 * the end of the connection), -1 (p->err) when the reply is cut short */
int uhttp_parse_eof(uhttp_parser *p);
/* may the connection carry another request after this whole reply? */
int uhttp_reusable(const uhttp_parser *p);

/* ---- the connection */

typedef struct uhttp_conn {
    int fd;                /* -1: none open */
    char path[108];        /* the socket; "" for TCP */
    char host[64];         /* TCP: an IPv4 or IPv6 literal (without []), or "localhost" */
    unsigned port;
} uhttp_conn;

typedef struct uhttp_request {
    const char *method, *target;  /* "GET", "/containers/json?all=1" */
    const char *host;             /* the Host header (default "localhost"; "": none) */
    const char *user_agent;       /* default "provision" ("": none) */
    const char *headers;          /* more header lines, each ending in \r\n (or NULL) */
    const char *content_type;     /* sent with a body */
    const char *body;             /* a body in memory (body_len bytes), or */
    size_t body_len;
    int body_fd;                  /* one read from this descriptor (>= 0), body_len bytes */
    double timeout;               /* the whole exchange, seconds (<= 0: none) */
    double connect_timeout;       /* seconds (<= 0: 5) */
    size_t max_body;              /* the most the reply's body may be (0: no limit) */
    int truncate;                 /* a longer body is cut at max_body, not refused */
    int headers_only;             /* stop at the reply's headers (the connection is closed after) */
    size_t max_line;              /* the longest header line the reply may have (0: no limit but the head's) */
} uhttp_request;

enum uhttp_fail {
    UHTTP_OK = 0,
    UHTTP_CONNECT,      /* could not connect: *errnum (TCP: err says to what) */
    UHTTP_TIMEOUT,
    UHTTP_INTERRUPTED,
    UHTTP_IO,           /* sending or receiving failed, or the engine closed without a reply: err */
    UHTTP_PROTOCOL,     /* a reply it cannot take: err (the parser's words) */
    UHTTP_FILE,         /* reading the body's file failed: *errnum */
    UHTTP_NOMEM
};

void uhttp_conn_init(uhttp_conn *c, const char *path);
/* TCP to host (an IP literal, or "localhost") and port; -1 when host is none of these */
int uhttp_conn_init_tcp(uhttp_conn *c, const char *host, unsigned port);
void uhttp_conn_close(uhttp_conn *c);
/* send rq and read the whole reply into p (uhttp_parser_reset here);
 * UHTTP_OK, or one of uhttp_fail with err (and *errnum where it says) */
int uhttp_exchange(uhttp_conn *c, const uhttp_request *rq, uhttp_parser *p, char *err, size_t errlen, int *errnum);
/* the same in two halves, for a request sent now and its reply read later
 * (an early request, modules/http/plain.c): uhttp_send connects (c has no
 * connection) and sends rq, its body in memory; uhttp_receive reads the
 * whole reply into p within timeout seconds, then closes the connection */
int uhttp_send(uhttp_conn *c, const uhttp_request *rq, uhttp_parser *p, char *err, size_t errlen, int *errnum);
int uhttp_receive(uhttp_conn *c, uhttp_parser *p, double timeout, char *err, size_t errlen, int *errnum);

#endif
