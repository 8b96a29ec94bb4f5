/* http.h: what the files of the http module share (http.c: handles,
 * options, requests, downloads; sink.c: where a download's body goes). */
#ifndef PROVISION_HTTP_H
#define PROVISION_HTTP_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <curl/curl.h>
#include "core.h"
#include "digest.h"

/* the sink's ring (sink.c) */
#ifndef SLOT_SIZE
#define SLOT_SIZE (512 * 1024)
#endif
#ifndef NSLOTS
#define NSLOTS 4
#endif
#define DIO_ALIGN 4096
#define SLOT_MAX_WAIT 1.0   /* seconds a partly filled slot may wait (on_progress) */

typedef struct { CURL *curl; } http_handle;

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

/* http.c: abort the transfer, for this reason (the first one given wins) */
void http_set_abort(http_xfer *x, int kind, const char *msg);

/* sink.c: the ring that takes a download's body, with a hashing and a
 * writing thread (sink.c says how) */
void http_sink_use_direct(http_xfer *x);     /* O_DIRECT where it pays */
int http_sink_start(http_xfer *x);           /* 0, or -1 with errno */
int http_sink_put(http_xfer *x, const char *p, size_t n);   /* 0, or -1 (aborted) */
int http_sink_publish(http_xfer *x, int last);              /* 0, or -1 (aborted) */
void http_sink_stop(http_xfer *x);           /* at once: an interrupt, a failure, __gc */
int http_sink_finish(http_xfer *x, char *msg, size_t n);    /* 0, or -1 with errno */

#endif
