/* http.h: what the files of the http module share (http.c: the module,
 * handles, options, a transfer and its failures, requests; plain.c: a
 * plain http:// request to this machine without libcurl; response.c: the
 * curl callbacks, what is kept of a reply and its headers; redirect.c:
 * which redirects are followed and what each hop sends; download.c:
 * downloads into a part file; sink.c: where a download's body goes). */
#ifndef PROVISION_HTTP_H
#define PROVISION_HTTP_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <curl/curl.h>
#include "core.h"
#include "digest.h"
#include "uhttp.h"

/* the sink's ring (sink.c) */
#ifndef SLOT_SIZE
#define SLOT_SIZE (512 * 1024)
#endif
#ifndef NSLOTS
#define NSLOTS 4
#endif
#define DIO_ALIGN 4096
#define SLOT_MAX_WAIT 1.0   /* seconds a partly filled slot may wait (on_progress) */

#define HTTP_DEFAULT_MAX_BODY (64 * 1024 * 1024)

/* plain.c: the connection plain http:// requests keep between requests */
typedef struct { int ready; uhttp_conn conn; uhttp_parser reply; } http_plain;

/* a handle: libcurl's easy handle, made at the first request that needs
 * it (NULL until then), and the plain path's connection */
typedef struct { CURL *curl; int closed; http_plain plain; } http_handle;

typedef struct { char *p; size_t len, cap; } http_buf;

/* One transfer's scratch: a userdata, so __gc frees all of it whatever
 * raises (the fd, the digest, the buffers, the header list). */
typedef struct {
    lua_State *L;
    CURL *curl;
    struct curl_slist *req_headers;   /* what curl sends: own_headers, then user_headers while same-origin */
    struct curl_slist *own_headers;   /* provision's own: conditions, Range */
    struct curl_slist *user_headers;  /* the caller's headers = { ... } */
    int cross_origin;         /* a redirect left the first origin: no user headers or credentials */
    long max_redirects;
    char *next_url;           /* the redirect being followed (owned) */
    curl_off_t max_size;      /* download(): refuse a body past this many bytes (0: no limit) */
    int dirfd;                /* download(): the folder of dest and the part file (tree.h) */
    char part_id[64];         /* download(): the part file's "device:inode" */
    http_buf hdrs;            /* the header lines of the latest response */
    http_buf body;            /* request(): the body; download(): an error body */
    size_t max_body;
    int truncated;
    int download;             /* 1: body to fd (when the status is 200/206) */
    int headers_only;         /* stop at the first body byte */
    int stopped;              /* we stopped it on purpose (headers_only) */
    int fd;
    provision_digest dg;      /* of the whole file: SHA-256, or XXH3-128 (option digest) */
    curl_off_t offset;        /* bytes of the file kept from before */
    curl_off_t written;       /* bytes written by this transfer */
    int body_started;         /* the decision about the body was made */
    int got_status;           /* a status line ("HTTP/...") came in this hop; a body
                               * without one: the server does not speak HTTP */
    int to_file;              /* the body goes to the file */
    int progress_idx, on_headers_idx;   /* stack slots of the callbacks, 0: none */
    double last_progress;
    int abort_kind;           /* 0, or why we aborted: see abort_names */
    char abort_msg[512];
    /* download(): the sink (sink.c); [mu]: under mu */
    int direct;               /* fd was opened with O_DIRECT */
    int rfd;                  /* a resumed download: fd to read the kept prefix, or -1 */
    char *ring;               /* NSLOTS slots of SLOT_SIZE, DIO_ALIGN-aligned */
    size_t fill;              /* bytes in the slot being filled (main thread only) */
    double fill_since;        /* when its first byte came (main thread only) */
    int sink_on;              /* threads started and not joined yet */
    int mu_init;
    pthread_t hasher, writer;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t published;       /* [mu] slots handed over (written by the main thread only) */
    uint64_t hashed_n, written_n;   /* [mu] slots each thread is done with */
    size_t plen[NSLOTS];      /* [mu] the length of each published slot */
    int eof, stop;            /* [mu] no more slots; give up at once */
    int hasher_done, writer_done;   /* [mu] */
    int hash_err, write_err;  /* [mu] the errno that stopped a thread */
    off_t wpos;               /* where the next slot goes in the file (writer thread only) */
} http_xfer;

enum { AB_NONE, AB_INTERRUPTED, AB_CALLBACK, AB_WRITE, AB_PROTOCOL, AB_REDIRECTS, AB_TOO_LARGE };

/* http.c: the handle and the transfer's userdata (released once, at the
 * end or by __gc) */
http_handle *http_handle_check(lua_State *L);     /* argument 1; raises when closed */
http_xfer *http_xfer_new(lua_State *L);           /* pushed, in its safe closed state */
void http_xfer_release(http_xfer *x);             /* idempotent */
/* http.c: options of the table at t (raise on misuse, before anything is
 * acquired); a string is borrowed from the table, which stays on the stack */
const char *http_opt_string(lua_State *L, int t, const char *k);
double http_opt_number(lua_State *L, int t, const char *k, double def);
int http_opt_bool(lua_State *L, int t, const char *k);
int http_opt_function(lua_State *L, int t, const char *k);   /* left on the stack: its index, or 0 */
/* the header "name: value" from option k, as provision's own (every hop) */
void http_opt_header_value(lua_State *L, int t, http_xfer *x, const char *k, const char *name);
/* line appended to list; 0, or -1 (out of memory) */
int http_slist_add(struct curl_slist **list, const char *line);
/* provision's own header (a condition, Range): sent on every hop */
int http_add_header(http_xfer *x, const char *line);
/* the options common to request and download, set on h's curl handle */
void http_setup(lua_State *L, http_handle *h, http_xfer *x, int t, int total_timeout);
/* curl_easy_perform, and the redirects after it */
CURLcode http_perform(http_xfer *x);
/* nil, message, kind after a failed perform; 3 */
int http_push_failure(lua_State *L, http_xfer *x, CURLcode rc, const char *errbuf);
/* status, headers, url, seconds into the table on top */
void http_push_common(lua_State *L, http_xfer *x, double t0);

/* the caller's headers = { ... } of the options at t, one "Name: value"
 * (or "Name;": empty) line at a time to add (raises on a bad one) */
void http_opt_headers(lua_State *L, int t, int (*add)(void *ud, const char *line), void *ud);

/* plain.c: h:request{...} at t without libcurl, when it can be (plain.c
 * says when): 1 (the result pushed) or 3 (nil, message, kind); 0: not
 * for this path (nothing sent, nothing pushed); -1: the reply is a
 * redirect (status) to the absolute URL in redirect, for libcurl to follow */
int http_plain_request(lua_State *L, http_plain *pl, int t, http_buf *redirect, long *status);
void http_plain_close(http_plain *pl);
/* plain.c: h:begin{...} at t: an early request, sent now (the options as
 * for h:request) to this machine (a loopback address), its reply read by
 * :finish() when a check wants it; pushed, or nil when not for this path
 * or not sent. http_plain_open registers its metatable. */
int http_plain_begin(lua_State *L, int t);
void http_plain_open(lua_State *L);
/* redirect.c: follow a redirect (status, to the absolute URL loc) from
 * the reply to cur, of method: as http_next_hop */
int http_follow(http_xfer *x, int hops, long status, const char *loc, const char *cur, const char *method);
/* curl_easy_perform and the redirects after it, from hop hops on */
CURLcode http_perform_from(http_xfer *x, int hops);

/* download.c: h:download{...} */
int http_download(lua_State *L);

/* response.c: a buffer that keeps a NUL after its data */
void http_buf_free(http_buf *b);
int http_buf_add(http_buf *b, const char *s, size_t n);   /* 0, or -1 (out of memory) */
/* abort the transfer, for this reason (the first one given wins) */
void http_set_abort(http_xfer *x, int kind, const char *msg);
/* the curl callbacks: never raise, never longjmp */
size_t http_on_header(char *data, size_t size, size_t n, void *ud);
size_t http_on_body(char *data, size_t size, size_t n, void *ud);
int http_on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow);
/* the first body byte (or the end of a reply without one): where the body
 * goes; 0, or -1 to abort */
int http_begin_body(http_xfer *x);
/* up to max bytes of p as text for a message (non-printables escaped) */
void http_show_bytes(const char *p, size_t len, size_t max, char *out, size_t outlen);
/* push { lowercase-name = value } of the latest response */
void http_push_headers(lua_State *L, http_xfer *x);
int http_is_redirect(long status);

/* redirect.c: the header list of the next hop (0 or -1: out of memory);
 * the redirect the reply asks for, set up (1), none (0), refused (-1,
 * abort set); a URL as it may be shown, pushed */
int http_set_request_headers(http_xfer *x);
int http_next_hop(http_xfer *x, int hops);
void http_push_url_shown(lua_State *L, const char *url);

/* sink.c: the ring that takes a download's body, with a hashing and a
 * writing thread (sink.c says how) */
void http_sink_use_direct(http_xfer *x);     /* O_DIRECT where it pays */
int http_sink_start(http_xfer *x);           /* 0, or -1 with errno */
int http_sink_put(http_xfer *x, const char *p, size_t n);   /* 0, or -1 (aborted) */
int http_sink_publish(http_xfer *x, int last);              /* 0, or -1 (aborted) */
void http_sink_stop(http_xfer *x);           /* at once: an interrupt, a failure, __gc */
int http_sink_finish(http_xfer *x, char *msg, size_t n);    /* 0, or -1 with errno */

#endif
