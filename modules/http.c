/* http.c: "provision._http": HTTP through libcurl, the primitives the Lua
 * half (lua/provision/http.lua: http.file, http.expect, http.request) builds
 * its policy on: retries, backoff, validators, resume, checksums.
 *
 *   h = http.new()                       a curl easy handle (reused: keeps
 *                                        connections alive); h:close(), <close>
 *   h:request{ url, method=, headers=, body=, user=, password=, timeout=,
 *              connect_timeout=, ca_file=, insecure=, max_redirects=,
 *              max_body=, headers_only= }
 *     -> { status, headers = { lowercase-name = value }, body, url, seconds,
 *          truncated } | nil, message, kind
 *   h:download{ url, path, offset=, headers=, user=, password=, timeout=,
 *               connect_timeout=, ca_file=, insecure=, max_redirects=,
 *               if_none_match=, if_modified_since=, if_range=, mode=,
 *               progress = function(done, total) end,
 *               on_headers = function(status, headers) end, fsync=,
 *               digest = "sha256" | "xxh128" }
 *     Streams the body of a 200/206 reply into path (created with mode,
 *     default 0600) while its digest (default SHA-256; digest.h) is computed
 *     over the whole file (a ring feeding a hashing and a writing thread:
 *     see "the sink").
 *     offset > 0 asks for "Range: bytes=offset-" (offset rounded down to
 *     4 KiB where the file is written with O_DIRECT): the first offset
 *     bytes already in path are hashed first; a 206 whose Content-Range
 *     starts there is appended, a 200 replaces the file. Any other status leaves the file
 *     alone and keeps the first 4 KiB of the reply's body.
 *     -> { status, headers, bytes, size, sha256 | xxh128, seconds, url, resumed, body }
 *      | nil, message, kind, { bytes, size, status, headers }
 *   kind: "interrupted", "timeout", "connect", "partial" (the connection
 *   broke mid-reply), "tls", "redirects", "write", "callback", "protocol",
 *   "other". Lua callbacks run under lua_pcall (at most 10 times a second
 *   for progress); an error in one aborts the transfer (kind "callback").
 *   SIGINT/SIGTERM abort a transfer at once (kind "interrupted").
 *   http.sha256_file(path), http.xxh128_file(path) -> hex | nil, message
 *     (stop when the run is interrupted)
 *   http.stat(path) -> size, mode, stamp | nil, message
 *   http.commit(part, dest, mode) -> true | nil, message
 *     chmod part, fsync it, rename it over dest, fsync the folder.
 *
 * Memory stays flat whatever the size: the body goes from curl's buffer to
 * the file descriptor (and, read back, to the digest), never into a Lua
 * string. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include "lazy_curl.h"
#include "core.h"
#include "digest.h"

#define HANDLE_MT "provision.http"
#define XFER_MT "provision.http.xfer"
#define ERR_BODY_MAX 4096
#define DEFAULT_MAX_BODY (64 * 1024 * 1024)

/* the sink's ring (see "the sink" below) */
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
    struct curl_slist *req_headers;
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
    /* download(): the sink (see "the sink" below); [mu]: under mu */
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

enum { AB_NONE, AB_INTERRUPTED, AB_CALLBACK, AB_WRITE, AB_PROTOCOL };

static void set_abort(http_xfer *x, int kind, const char *msg);

static void http_buf_free(http_buf *b) { free(b->p); b->p = NULL; b->len = b->cap = 0; }

/* append, keeping a NUL after the data; 0 or -1 (out of memory) */
static int http_buf_add(http_buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return -1;
        b->p = p; b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

/* ---- the sink: where a download's body goes
 *
 * The body is copied from curl's buffer into a ring of NSLOTS slots of
 * SLOT_SIZE bytes (the main thread, inside curl's write callback). Each
 * full slot is handed to two threads: the hasher (the digest of it) and the
 * writer (pwrite of it at its place in the file); a slot is reused once
 * both are done with it, and the main thread waits (the back-pressure
 * that slows curl down) while all are in use. So receiving, hashing
 * (SHA-256: about 0.9 s of CPU per GiB here; XXH3-128: a tenth of that)
 * and writing overlap, memory stays at
 * the ring's 2 MiB whatever the size, and the digest is of exactly the
 * bytes written.
 *
 * On ext4, xfs and btrfs the file is written with O_DIRECT: a full
 * slot goes from the ring to the disk without being copied into the page
 * cache. A buffered write of 1 GiB costs ~0.5 s of CPU here and leaves the
 * fsync before the rename ~0.6 s of disk to wait for; written directly,
 * the disk works while the transfer runs and the fsync finds only the
 * tail and the metadata left. The slots are aligned and so are the file
 * offsets (a resumed download restarts at a DIO_ALIGN boundary); a short
 * slot (the last one, or one handed over because the body is slow: see
 * on_progress) is written after O_DIRECT is cleared, as is everything once
 * a write fails with EINVAL (a filesystem with stricter rules) or comes
 * back short. Elsewhere (and where O_DIRECT is refused) the same ring feeds
 * buffered writes.
 *
 * A resumed download's kept prefix is hashed first, by the hasher, read
 * through a second (buffered) descriptor. Neither thread calls Lua or sees
 * a signal (all are blocked in them): the main thread polls
 * provision_interrupted() while it waits and sets stop. */
#define PREFIX_CHUNK (128 * 1024)

static int sink_stopped(http_xfer *x)
{
    pthread_mutex_lock(&x->mu);
    int s = x->stop;
    pthread_mutex_unlock(&x->mu);
    return s;
}

/* hash the first x->offset bytes of the file; 0 or an errno */
static int hash_prefix(http_xfer *x)
{
    char *buf = malloc(PREFIX_CHUNK);
    if (!buf) return ENOMEM;
    int err = 0;
    curl_off_t done = 0;
    while (!err && done < x->offset) {
        if (sink_stopped(x)) { err = EINTR; break; }
        size_t want = x->offset - done < PREFIX_CHUNK ? (size_t)(x->offset - done) : PREFIX_CHUNK;
        ssize_t r = pread(x->rfd, buf, want, (off_t)done);
        if (r > 0) {
            provision_digest_update(&x->dg, buf, (size_t)r);
            done += r;
        } else if (r == 0) {
            err = EIO;   /* the kept part is shorter than it was */
        } else if (errno != EINTR) {
            err = errno;
        }
    }
    free(buf);
    return err;
}

/* The loop of both threads: take every slot published and not yet done
 * (*done: this thread's counter) as one batch, hand it to fn outside the
 * lock, count it done; until eof with all done, stop, or an error (err:
 * one from before the loop). Ends with *err_out and *finished set. */
typedef int (*sink_fn)(http_xfer *x, struct iovec *iov, int n);
static void sink_loop(http_xfer *x, uint64_t *done, int err, sink_fn fn, int *err_out, int *finished)
{
    struct iovec iov[NSLOTS];
    pthread_mutex_lock(&x->mu);
    while (!err) {
        while (!x->stop && !x->eof && *done == x->published) pthread_cond_wait(&x->cv, &x->mu);
        if (x->stop || *done == x->published) break;   /* stopped, or eof and all done */
        int n = (int)(x->published - *done);
        for (int i = 0; i < n; i++) {
            unsigned s = (unsigned)((*done + (uint64_t)i) % NSLOTS);
            iov[i].iov_base = x->ring + (size_t)s * SLOT_SIZE;
            iov[i].iov_len = x->plen[s];
        }
        pthread_mutex_unlock(&x->mu);
        err = fn(x, iov, n);
        pthread_mutex_lock(&x->mu);
        if (err) break;
        *done += (uint64_t)n;
        pthread_cond_broadcast(&x->cv);
    }
    *err_out = err;
    *finished = 1;
    pthread_cond_broadcast(&x->cv);
    pthread_mutex_unlock(&x->mu);
}

static int hash_slots(http_xfer *x, struct iovec *iov, int n)
{
    for (int i = 0; i < n; i++) provision_digest_update(&x->dg, iov[i].iov_base, iov[i].iov_len);
    return 0;
}

static void *sink_hasher(void *ud)
{
    http_xfer *x = ud;
    sink_loop(x, &x->hashed_n, x->offset > 0 ? hash_prefix(x) : 0, hash_slots, &x->hash_err, &x->hasher_done);
    return NULL;
}

/* O_DIRECT on the filesystems where it is the disk's own fast path; not
 * on the others (see the sink's comment): NFS would make every slot a
 * synchronous round trip, and tmpfs has no disk to overlap with */
static void use_direct(http_xfer *x)
{
    struct statfs sf;
    if (fstatfs(x->fd, &sf) < 0) return;
    switch ((unsigned long)sf.f_type) {
    case 0xEF53UL:       /* ext2, ext3, ext4 */
    case 0x58465342UL:   /* xfs */
    case 0x9123683EUL:   /* btrfs */
        break;
    default:
        return;
    }
    int fl = fcntl(x->fd, F_GETFL);
    x->direct = fl >= 0 && fcntl(x->fd, F_SETFL, fl | O_DIRECT) == 0;
}

/* back to buffered writes (see the sink's comment) */
static void drop_direct(http_xfer *x)
{
    int fl = fcntl(x->fd, F_GETFL);
    if (fl >= 0) fcntl(x->fd, F_SETFL, fl & ~O_DIRECT);
    x->direct = 0;
}

/* write the n pieces of iov at off (iov is consumed); 0 or an errno */
static int write_at(http_xfer *x, struct iovec *iov, int n, off_t off)
{
    for (int i = 0; i < n && x->direct; i++)
        if (iov[i].iov_len % DIO_ALIGN) drop_direct(x);
    if (x->direct && off % DIO_ALIGN) drop_direct(x);
    while (n > 0) {
        ssize_t w = pwritev(x->fd, iov, n, off);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EINVAL && x->direct) { drop_direct(x); continue; }
            return errno;
        }
        off += w;
        while (n > 0 && (size_t)w >= iov->iov_len) { w -= (ssize_t)iov->iov_len; iov++; n--; }
        if (n > 0) {   /* a short write: what is left may not be aligned */
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
            if (x->direct) drop_direct(x);
        }
    }
    return 0;
}

/* all the slots of a batch in one call: when the disk lags, its requests
 * grow (up to the whole ring) */
static int write_slots(http_xfer *x, struct iovec *iov, int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++) total += iov[i].iov_len;
    int err = write_at(x, iov, n, x->wpos);
    x->wpos += (off_t)total;
    return err;
}

static void *sink_writer(void *ud)
{
    http_xfer *x = ud;
    sink_loop(x, &x->written_n, 0, write_slots, &x->write_err, &x->writer_done);
    return NULL;
}

/* start both threads; 0, or -1 with errno */
static int sink_start(http_xfer *x)
{
    if (!x->mu_init) {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        int e = pthread_cond_init(&x->cv, &ca);
        pthread_condattr_destroy(&ca);
        if (e) { errno = e; return -1; }
        pthread_mutex_init(&x->mu, NULL);
        x->mu_init = 1;
    }
    if (!x->ring) {
        void *p = NULL;
        int e = posix_memalign(&p, DIO_ALIGN, (size_t)NSLOTS * SLOT_SIZE);
        if (e) { errno = e; return -1; }
        x->ring = p;
    }
    x->fill = 0;
    x->published = x->hashed_n = x->written_n = 0;
    x->eof = x->stop = x->hasher_done = x->writer_done = 0;
    x->hash_err = x->write_err = 0;
    x->wpos = (off_t)x->offset;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);   /* signals go to the main thread */
    int e = pthread_create(&x->hasher, NULL, sink_hasher, x);
    if (!e && (e = pthread_create(&x->writer, NULL, sink_writer, x)) != 0) {
        pthread_mutex_lock(&x->mu);
        x->stop = 1;
        pthread_cond_broadcast(&x->cv);
        pthread_mutex_unlock(&x->mu);
        pthread_join(x->hasher, NULL);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e) { errno = e; return -1; }
    x->sink_on = 1;
    return 0;
}

/* wait on cv for a change, or 50 ms (the main thread polls for signals) [mu] */
static void sink_wait(http_xfer *x)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += 50 * 1000000L;
    if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
    pthread_cond_timedwait(&x->cv, &x->mu, &ts);
}

/* the error that stopped a thread, as a message for set_abort; 0: none [mu] */
static int sink_failed(http_xfer *x, char *msg, size_t n)
{
    if (x->write_err) { snprintf(msg, n, "%s", strerror(x->write_err)); return 1; }
    if (x->hash_err) { snprintf(msg, n, "reading back the kept part: %s", strerror(x->hash_err)); return 1; }
    return 0;
}

/* hand the slot being filled to the threads; unless it is the last, wait
 * until the next one is free. 0, or -1 (set_abort done) */
static int sink_publish(http_xfer *x, int last)
{
    char msg[256];
    pthread_mutex_lock(&x->mu);
    x->plen[x->published % NSLOTS] = x->fill;
    x->published++;
    pthread_cond_broadcast(&x->cv);
    int rc = 0;
    while (!last) {
        uint64_t slowest = x->hashed_n < x->written_n ? x->hashed_n : x->written_n;
        if (sink_failed(x, msg, sizeof msg)) { set_abort(x, AB_WRITE, msg); rc = -1; break; }
        if (x->published - slowest < NSLOTS) break;
        sink_wait(x);
        if (provision_interrupted()) { set_abort(x, AB_INTERRUPTED, "interrupted"); rc = -1; break; }
    }
    pthread_mutex_unlock(&x->mu);
    x->fill = 0;
    return rc;
}

/* copy body bytes into the ring; 0, or -1 (set_abort done) */
static int sink_put(http_xfer *x, const char *p, size_t n)
{
    while (n > 0) {
        if (x->fill == SLOT_SIZE && sink_publish(x, 0) < 0) return -1;
        if (x->fill == 0) x->fill_since = provision_now();
        size_t room = SLOT_SIZE - x->fill, k = n < room ? n : room;
        memcpy(x->ring + (size_t)(x->published % NSLOTS) * SLOT_SIZE + x->fill, p, k);
        x->fill += k; p += k; n -= k;
    }
    return 0;
}

static void sink_join(http_xfer *x)
{
    pthread_join(x->hasher, NULL);
    pthread_join(x->writer, NULL);
    x->sink_on = 0;
}

/* stop both threads at once (an interrupt, a failure, __gc) */
static void sink_stop(http_xfer *x)
{
    if (!x->sink_on) return;
    pthread_mutex_lock(&x->mu);
    x->stop = 1;
    pthread_cond_broadcast(&x->cv);
    pthread_mutex_unlock(&x->mu);
    sink_join(x);
}

/* no more bytes: hand over the last slot and wait until both threads are
 * done with everything, giving up when interrupted. 0, or -1 with errno
 * (EINTR: interrupted); a thread's failure leaves its message in msg */
static int sink_finish(http_xfer *x, char *msg, size_t n)
{
    if (!x->sink_on) { errno = EINVAL; return -1; }
    if (x->fill > 0) sink_publish(x, 1);
    pthread_mutex_lock(&x->mu);
    x->eof = 1;
    pthread_cond_broadcast(&x->cv);
    while (!(x->hasher_done && x->writer_done)) {
        if (!x->stop && (x->hash_err || x->write_err)) { x->stop = 1; pthread_cond_broadcast(&x->cv); }
        sink_wait(x);
        if (!x->stop && provision_interrupted()) { x->stop = 1; pthread_cond_broadcast(&x->cv); }
    }
    int failed = sink_failed(x, msg, n);
    /* every byte put is in a published slot (the last one was handed over
     * above) and the kept prefix was hashed whole, or hash_err says why */
    int whole = x->hashed_n == x->published && x->written_n == x->published;
    pthread_mutex_unlock(&x->mu);
    sink_join(x);
    if (failed) { errno = EIO; return -1; }
    if (!whole) { errno = provision_interrupted() ? EINTR : EIO; snprintf(msg, n, "%s", strerror(errno)); return -1; }
    return 0;
}

/* idempotent: the end of a transfer, and __gc */
static void xfer_release(http_xfer *x)
{
    sink_stop(x);   /* first: its threads use the fds, the ring and the digest */
    if (x->mu_init) { pthread_cond_destroy(&x->cv); pthread_mutex_destroy(&x->mu); x->mu_init = 0; }
    free(x->ring);
    x->ring = NULL;
    if (x->fd >= 0) { close(x->fd); x->fd = -1; }
    if (x->rfd >= 0) { close(x->rfd); x->rfd = -1; }
    provision_digest_free(&x->dg);
    if (x->req_headers) { curl_slist_free_all(x->req_headers); x->req_headers = NULL; }
    http_buf_free(&x->hdrs);
    http_buf_free(&x->body);
}

static int xfer_gc(lua_State *L)
{
    xfer_release(luaL_checkudata(L, 1, XFER_MT));
    return 0;
}

static http_xfer *xfer_new(lua_State *L)
{
    http_xfer *x = lua_newuserdatauv(L, sizeof *x, 0);
    memset(x, 0, sizeof *x);
    x->fd = x->rfd = -1;              /* the safe "closed" state first */
    luaL_setmetatable(L, XFER_MT);
    x->L = L;
    return x;
}

static int handle_close(lua_State *L)
{
    http_handle *h = luaL_checkudata(L, 1, HANDLE_MT);
    if (h->curl) { curl_easy_cleanup(h->curl); h->curl = NULL; }
    return 0;
}

static int http_new(lua_State *L)
{
    http_handle *h = lua_newuserdatauv(L, sizeof *h, 0);
    h->curl = NULL;
    luaL_setmetatable(L, HANDLE_MT);
    h->curl = curl_easy_init();
    if (!h->curl) return luaL_error(L, "http.new: curl_easy_init failed");
    return 1;
}

static http_handle *handle_check(lua_State *L)
{
    http_handle *h = luaL_checkudata(L, 1, HANDLE_MT);
    if (!h->curl) luaL_argerror(L, 1, "the handle is closed");
    return h;
}

/* ---- option helpers (all raise on misuse, before anything is acquired) */

static const char *opt_string(lua_State *L, int t, const char *k)
{
    lua_getfield(L, t, k);
    const char *s = NULL;
    if (!lua_isnil(L, -1)) {
        if (!lua_isstring(L, -1)) luaL_error(L, "http: option '%s' must be a string", k);
        s = lua_tostring(L, -1);
    }
    lua_pop(L, 1);   /* borrowed from the options table, which stays on the stack */
    return s;
}

static double opt_number(lua_State *L, int t, const char *k, double def)
{
    lua_getfield(L, t, k);
    double v = def;
    if (!lua_isnil(L, -1)) {
        if (!lua_isnumber(L, -1)) luaL_error(L, "http: option '%s' must be a number", k);
        v = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

static int opt_bool(lua_State *L, int t, const char *k)
{
    lua_getfield(L, t, k);
    int v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

static int opt_function(lua_State *L, int t, const char *k)
{
    lua_getfield(L, t, k);
    if (lua_isnil(L, -1)) { lua_pop(L, 1); return 0; }
    if (!lua_isfunction(L, -1)) luaL_error(L, "http: option '%s' must be a function", k);
    return lua_gettop(L);   /* left on the stack for the transfer */
}

static int add_header(http_xfer *x, const char *line)
{
    struct curl_slist *n = curl_slist_append(x->req_headers, line);
    if (!n) return -1;
    x->req_headers = n;
    return 0;
}

/* headers = { ["Name"] = "value", ... } or { "Name: value", ... } */
static void opt_headers(lua_State *L, int t, http_xfer *x)
{
    lua_getfield(L, t, "headers");
    if (lua_isnil(L, -1)) { lua_pop(L, 1); return; }
    luaL_checktype(L, -1, LUA_TTABLE);
    int ht = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, ht)) {
        if (lua_type(L, -2) == LUA_TNUMBER) {
            if (!lua_isstring(L, -1)) luaL_error(L, "http: headers[%d] must be a string", (int)lua_tointeger(L, -2));
            lua_pushvalue(L, -1);
        } else {
            if (lua_type(L, -2) != LUA_TSTRING || !lua_isstring(L, -1))
                luaL_error(L, "http: headers must map names to strings");
            const char *v = lua_tostring(L, -1);
            /* "Name:" with no value would keep curl's own; "Name;" sends it empty */
            lua_pushfstring(L, *v ? "%s: %s" : "%s;", lua_tostring(L, -2), v);
        }
        if (strpbrk(lua_tostring(L, -1), "\r\n"))
            luaL_error(L, "http: a header may not hold a line break");
        if (add_header(x, lua_tostring(L, -1)) < 0) luaL_error(L, "http: out of memory");
        lua_pop(L, 2);
    }
    lua_pop(L, 1);
}

static void opt_header_value(lua_State *L, int t, http_xfer *x, const char *k, const char *name)
{
    const char *v = opt_string(L, t, k);
    if (!v) return;
    if (strpbrk(v, "\r\n")) luaL_error(L, "http: option '%s' may not hold a line break", k);
    lua_pushfstring(L, "%s: %s", name, v);
    if (add_header(x, lua_tostring(L, -1)) < 0) luaL_error(L, "http: out of memory");
    lua_pop(L, 1);
}

/* ---- curl callbacks: never raise, never longjmp */

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
    http_xfer *x = ud;
    size_t len = size * n;
    if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) x->hdrs.len = 0;   /* a new response */
    if (http_buf_add(&x->hdrs, data, len) < 0) return 0;
    return len;
}

/* the value of header name in the latest response, copied into out */
static int find_header(http_xfer *x, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    const char *p = x->hdrs.p, *end = p ? p + x->hdrs.len : NULL;
    while (p && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
        if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t')) v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            size_t l = (size_t)(ve - v);
            if (l >= outlen) l = outlen - 1;
            memcpy(out, v, l);
            out[l] = '\0';
            return 1;
        }
        p = eol + 1;
    }
    return 0;
}

/* push { lowercase-name = value } of the latest response; repeats are
 * joined with ", " */
static void push_headers(lua_State *L, http_xfer *x)
{
    lua_newtable(L);
    const char *p = x->hdrs.p, *end = p ? p + x->hdrs.len : NULL;
    while (p && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (colon && strncmp(p, "HTTP/", 5) != 0) {
            luaL_Buffer b;
            luaL_buffinit(L, &b);
            for (const char *c = p; c < colon; c++) luaL_addchar(&b, (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c));
            luaL_pushresult(&b);                             /* t name */
            const char *v = colon + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t')) v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            lua_pushvalue(L, -1);
            lua_rawget(L, -3);                               /* t name old */
            if (lua_isnil(L, -1)) {
                lua_pop(L, 1);
                lua_pushlstring(L, v, (size_t)(ve - v));
            } else {
                lua_pushliteral(L, ", ");
                lua_pushlstring(L, v, (size_t)(ve - v));
                lua_concat(L, 3);
            }
            lua_rawset(L, -3);                               /* t */
        }
        p = eol + 1;
    }
}

static void set_abort(http_xfer *x, int kind, const char *msg)
{
    if (x->abort_kind) return;
    x->abort_kind = kind;
    snprintf(x->abort_msg, sizeof x->abort_msg, "%s", msg);
}

/* call the Lua function at stack slot idx with the values already pushed
 * (nargs); an error (or a false result) aborts the transfer */
static int call_lua(http_xfer *x, int idx, int nargs, const char *what)
{
    lua_State *L = x->L;
    lua_pushvalue(L, idx);
    lua_insert(L, -nargs - 1);
    if (lua_pcall(L, nargs, 1, 0) != LUA_OK) {
        char msg[400];
        snprintf(msg, sizeof msg, "%s: %s", what, lua_isstring(L, -1) ? lua_tostring(L, -1) : "error");
        lua_pop(L, 1);
        set_abort(x, provision_interrupted() ? AB_INTERRUPTED : AB_CALLBACK,
                  provision_interrupted() ? "interrupted" : msg);
        return -1;
    }
    int stop = lua_isboolean(L, -1) && !lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (stop) { set_abort(x, AB_CALLBACK, what); return -1; }
    return 0;
}

/* The first body byte (or the end of a reply without one): decide where
 * the body goes. 0, or -1 to abort. */
static int begin_body(http_xfer *x)
{
    if (x->body_started) return x->abort_kind ? -1 : 0;
    x->body_started = 1;
    long status = 0;
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
    if (x->headers_only) { x->stopped = 1; return -1; }
    if (!x->download) return 0;
    if (status == 206 && x->offset > 0) {
        char cr[128];
        long long start = -1;
        if (!find_header(x, "Content-Range", cr, sizeof cr) || sscanf(cr, "bytes %lld-", &start) != 1
            || start != (long long)x->offset) {
            char msg[256];
            snprintf(msg, sizeof msg, "asked for bytes %lld- but the reply has Content-Range '%s'",
                     (long long)x->offset, start >= 0 ? cr : "(none)");
            set_abort(x, AB_PROTOCOL, msg);
            return -1;
        }
        x->to_file = 1;
    } else if (status == 200 || status == 206) {
        if (status == 206) {   /* a range we did not ask for */
            set_abort(x, AB_PROTOCOL, "206 Partial Content to a request without Range");
            return -1;
        }
        if (x->offset > 0) {   /* the server sends it all: start over */
            x->offset = 0;
            if (ftruncate(x->fd, 0) < 0) {
                char msg[256];
                snprintf(msg, sizeof msg, "%s", strerror(errno));
                set_abort(x, AB_WRITE, msg);
                return -1;
            }
        }
        x->to_file = 1;
    }
    if (x->to_file && sink_start(x) < 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "cannot start the hashing and writing threads: %s", strerror(errno));
        set_abort(x, AB_WRITE, msg);
        return -1;
    }
    if (x->to_file && x->on_headers_idx) {
        lua_State *L = x->L;
        if (!lua_checkstack(L, 8)) { set_abort(x, AB_CALLBACK, "Lua stack overflow"); return -1; }
        lua_pushinteger(L, status);
        push_headers(L, x);
        if (call_lua(x, x->on_headers_idx, 2, "on_headers") < 0) return -1;
    }
    return 0;
}

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    http_xfer *x = ud;
    size_t len = size * n;
    if (begin_body(x) < 0) return 0;   /* != len: curl aborts with CURLE_WRITE_ERROR */
    if (x->to_file) {   /* into the ring: the threads hash and write it */
        if (sink_put(x, data, len) < 0) return 0;
        x->written += (curl_off_t)len;
        return len;
    }
    /* to memory: the whole body (request) or its start (an error reply) */
    size_t room = x->max_body > x->body.len ? x->max_body - x->body.len : 0;
    size_t keep = len < room ? len : room;
    if (keep < len) x->truncated = 1;
    if (keep && http_buf_add(&x->body, data, keep) < 0) {
        set_abort(x, AB_WRITE, "out of memory");
        return 0;
    }
    return len;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    http_xfer *x = ud;
    (void)ultotal; (void)ulnow;
    if (provision_interrupted()) { set_abort(x, AB_INTERRUPTED, "interrupted"); return 1; }
    double now = provision_now();
    /* a slow body: hand over a slot that has waited a second, full or not,
     * so that the part file on disk (what a killed run resumes from) stays
     * about a second behind what arrived. The short slot turns O_DIRECT
     * off for the rest of the transfer, which a slow one does not need. */
    if (x->sink_on && x->fill > 0 && now - x->fill_since >= SLOT_MAX_WAIT && sink_publish(x, 0) < 0) return 1;
    if (!x->progress_idx || !x->to_file) return 0;
    if (now - x->last_progress < 0.1) return 0;
    x->last_progress = now;
    lua_State *L = x->L;
    if (!lua_checkstack(L, 4)) return 0;
    lua_pushinteger(L, (lua_Integer)(x->offset + dlnow));
    if (dltotal > 0) lua_pushinteger(L, (lua_Integer)(x->offset + dltotal));
    else lua_pushnil(L);
    return call_lua(x, x->progress_idx, 2, "progress") < 0 ? 1 : 0;
}

/* ---- the shared part of request and download */

/* set the options common to both; raises on misuse (nothing live but the
 * xfer userdata, which __gc frees) */
static void setup(lua_State *L, http_handle *h, http_xfer *x, int t, int total_timeout)
{
    CURL *c = h->curl;
    curl_easy_reset(c);
    x->curl = c;
    lua_getfield(L, t, "url");
    const char *url = luaL_optstring(L, -1, NULL);
    if (!url) luaL_error(L, "http: option 'url' is required");
    lua_pop(L, 1);   /* borrowed: the options table keeps it */
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, (long)opt_number(L, t, "max_redirects", 10));
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, opt_bool(L, t, "insecure") ? 0L : 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, opt_bool(L, t, "insecure") ? 0L : 2L);
    const char *ca = opt_string(L, t, "ca_file");
    if (ca) curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "provision/" PROVISION_VERSION);
    const char *user = opt_string(L, t, "user");
    const char *password = opt_string(L, t, "password");
    if (user || password) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERNAME, user ? user : "");
        curl_easy_setopt(c, CURLOPT_PASSWORD, password ? password : "");
    }
    double timeout = opt_number(L, t, "timeout", 0);
    double connect = opt_number(L, t, "connect_timeout", timeout > 0 && timeout < 30 ? timeout : 30);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(connect * 1000));
    if (timeout > 0) {
        if (total_timeout) {
            curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000));
        } else {   /* a download: give up when nothing arrives for that long */
            curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
            curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)(timeout < 1 ? 1 : timeout));
        }
    }
    opt_headers(L, t, x);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
}

static const char *error_kind(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST: case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
        return "connect";
    case CURLE_OPERATION_TIMEDOUT:
        return "timeout";
    case CURLE_PARTIAL_FILE: case CURLE_RECV_ERROR: case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING: case CURLE_HTTP2: case CURLE_HTTP2_STREAM:
    case CURLE_BAD_CONTENT_ENCODING:
        return "partial";
    case CURLE_PEER_FAILED_VERIFICATION: case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM: case CURLE_SSL_CIPHER: case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
        return "tls";
    case CURLE_TOO_MANY_REDIRECTS:
        return "redirects";
    case CURLE_WEIRD_SERVER_REPLY: case CURLE_UNSUPPORTED_PROTOCOL: case CURLE_URL_MALFORMAT:
        return "protocol";
    default:
        return "other";
    }
}

/* nil, message, kind after a failed perform */
static int push_failure(lua_State *L, http_xfer *x, CURLcode rc, const char *errbuf)
{
    static const char *abort_names[] = { "other", "interrupted", "callback", "write", "protocol" };
    lua_pushnil(L);
    if (x->abort_kind) {
        lua_pushstring(L, x->abort_msg);
        lua_pushstring(L, abort_names[x->abort_kind]);
    } else {
        lua_pushstring(L, *errbuf ? errbuf : curl_easy_strerror(rc));
        lua_pushstring(L, error_kind(rc));
    }
    return 3;
}

static void push_common(lua_State *L, http_xfer *x, double t0)
{
    long status = 0;
    char *eff = NULL;
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(x->curl, CURLINFO_EFFECTIVE_URL, &eff);
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
    push_headers(L, x);
    lua_setfield(L, -2, "headers");
    lua_pushstring(L, eff ? eff : "");
    lua_setfield(L, -2, "url");
    lua_pushnumber(L, provision_now() - t0);
    lua_setfield(L, -2, "seconds");
}

static int http_request(lua_State *L)
{
    http_handle *h = handle_check(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    http_xfer *x = xfer_new(L);                      /* h opts xfer */
    setup(L, h, x, 2, 1);
    CURL *c = h->curl;
    const char *method = opt_string(L, 2, "method");
    if (!method) method = "GET";
    x->max_body = (size_t)opt_number(L, 2, "max_body", DEFAULT_MAX_BODY);
    x->headers_only = opt_bool(L, 2, "headers_only");
    opt_header_value(L, 2, x, "if_none_match", "If-None-Match");
    opt_header_value(L, 2, x, "if_modified_since", "If-Modified-Since");
    lua_getfield(L, 2, "body");
    size_t blen = 0;
    const char *body = lua_isnil(L, -1) ? NULL : luaL_checklstring(L, -1, &blen);
    lua_pop(L, 1);   /* borrowed from the options table */
    if (strcasecmp(method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (strcasecmp(method, "GET") != 0 || body) {
        if (body) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);   /* the options table keeps it alive */
            if (add_header(x, "Expect:") < 0) return luaL_error(L, "http: out of memory");
        }
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    if (x->req_headers) curl_easy_setopt(c, CURLOPT_HTTPHEADER, x->req_headers);
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    double t0 = provision_now();
    CURLcode rc = curl_easy_perform(c);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
    if (rc != CURLE_OK && !(x->stopped && rc == CURLE_WRITE_ERROR)) {
        if (provision_interrupted()) set_abort(x, AB_INTERRUPTED, "interrupted");
        return push_failure(L, x, rc, errbuf);
    }
    lua_createtable(L, 0, 7);
    push_common(L, x, t0);
    lua_pushlstring(L, x->body.p ? x->body.p : "", x->body.len);
    lua_setfield(L, -2, "body");
    lua_pushboolean(L, x->truncated);
    lua_setfield(L, -2, "truncated");
    return 1;
}

static int http_download(lua_State *L)
{
    http_handle *h = handle_check(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    http_xfer *x = xfer_new(L);                      /* h opts xfer */
    setup(L, h, x, 2, 0);
    CURL *c = h->curl;
    x->download = 1;
    x->max_body = ERR_BODY_MAX;
    lua_getfield(L, 2, "path");
    size_t path_len = 0;
    const char *path = luaL_optlstring(L, -1, NULL, &path_len);
    if (!path) return luaL_error(L, "http.download: option 'path' is required");
    if (strlen(path) != path_len) return luaL_error(L, "http.download: option 'path' holds a NUL byte");
    lua_pop(L, 1);   /* borrowed from the options table */
    lua_Integer offset = (lua_Integer)opt_number(L, 2, "offset", 0);
    if (offset < 0) return luaL_error(L, "http.download: option 'offset' must be >= 0");
    int mode = (int)opt_number(L, 2, "mode", 0600);
    lua_getfield(L, 2, "digest");
    if (!lua_isnoneornil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
        return luaL_error(L, "http.download: option 'digest' must be a string, not a %s", luaL_typename(L, -1));
    const char *kname = luaL_optstring(L, -1, "sha256");
    int kind = provision_digest_kind(kname);
    if (kind < 0) return luaL_error(L, "http.download: option 'digest' must be \"sha256\" or \"xxh128\", not \"%s\"", kname);
    lua_pop(L, 1);
    int do_fsync = 1;
    lua_getfield(L, 2, "fsync");
    if (lua_isboolean(L, -1)) do_fsync = lua_toboolean(L, -1);
    lua_pop(L, 1);
    opt_header_value(L, 2, x, "if_none_match", "If-None-Match");
    opt_header_value(L, 2, x, "if_modified_since", "If-Modified-Since");
    if (offset > 0) opt_header_value(L, 2, x, "if_range", "If-Range");
    x->progress_idx = opt_function(L, 2, "progress");
    x->on_headers_idx = opt_function(L, 2, "on_headers");
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 256L * 1024);

    /* from here on, only the xfer userdata owns anything */
    if (provision_digest_init(&x->dg, kind))
        return luaL_error(L, "http.download: cannot set up the %s digest", provision_digest_name(kind));
    x->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, (mode_t)mode);
    if (x->fd >= 0) use_direct(x);
    if (x->fd < 0) {
        int e = errno;
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", path, strerror(e));
        lua_pushliteral(L, "write");
        return 3;
    }
    struct stat st;
    if (fstat(x->fd, &st) < 0 || (offset > 0 && st.st_size < offset)) offset = 0;
    if (x->direct) offset -= offset % DIO_ALIGN;   /* direct writes go on from a boundary */
    x->offset = (curl_off_t)offset;
    /* the hasher hashes the kept prefix, read through a buffered descriptor */
    if (offset > 0 && (x->rfd = open(path, O_RDONLY | O_CLOEXEC)) < 0) offset = x->offset = 0;
    if (ftruncate(x->fd, (off_t)offset) < 0) {
        int e = errno;
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", path, strerror(e));
        lua_pushliteral(L, "write");
        return 3;
    }
    if (offset > 0) {   /* our own header, so that a 200 reply is not an error */
        char range[64];
        snprintf(range, sizeof range, "Range: bytes=%lld-", (long long)offset);
        if (add_header(x, range) < 0) return luaL_error(L, "http: out of memory");
    }
    if (x->req_headers) curl_easy_setopt(c, CURLOPT_HTTPHEADER, x->req_headers);
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    double t0 = provision_now();
    CURLcode rc = curl_easy_perform(c);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
    if (rc == CURLE_OK) begin_body(x);   /* a reply with an empty body */
    if (rc == CURLE_OK && x->abort_kind) rc = CURLE_ABORTED_BY_CALLBACK;
    if (x->to_file && x->sink_on) {
        char msg[256] = "";
        if (rc != CURLE_OK && (x->abort_kind == AB_INTERRUPTED || provision_interrupted())) {
            sink_stop(x);
        } else if (sink_finish(x, msg, sizeof msg) < 0 && rc == CURLE_OK) {
            /* a failed transfer flushes too: a retry resumes after what arrived */
            char full[512];
            snprintf(full, sizeof full, "%s: %s", path, errno == EINTR ? "interrupted" : msg);
            set_abort(x, errno == EINTR ? AB_INTERRUPTED : AB_WRITE, full);
            rc = CURLE_WRITE_ERROR;
        }
    }
    if (rc == CURLE_OK && x->to_file && do_fsync && fsync(x->fd) < 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s: fsync: %s", path, strerror(errno));
        set_abort(x, AB_WRITE, msg);
        rc = CURLE_WRITE_ERROR;
    }
    struct stat fin;
    curl_off_t size = fstat(x->fd, &fin) == 0 ? (curl_off_t)fin.st_size : 0;
    if (rc != CURLE_OK) {
        if (provision_interrupted()) set_abort(x, AB_INTERRUPTED, "interrupted");
        int n = push_failure(L, x, rc, errbuf);
        lua_createtable(L, 0, 4);
        lua_pushinteger(L, (lua_Integer)x->written);
        lua_setfield(L, -2, "bytes");
        lua_pushinteger(L, (lua_Integer)(x->to_file ? size : x->offset));
        lua_setfield(L, -2, "size");
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        lua_pushinteger(L, status);
        lua_setfield(L, -2, "status");
        push_headers(L, x);
        lua_setfield(L, -2, "headers");
        xfer_release(x);
        return n + 1;
    }
    lua_createtable(L, 0, 10);
    push_common(L, x, t0);
    lua_pushinteger(L, (lua_Integer)x->written);
    lua_setfield(L, -2, "bytes");
    lua_pushinteger(L, (lua_Integer)size);
    lua_setfield(L, -2, "size");
    lua_pushboolean(L, x->to_file && x->offset > 0);
    lua_setfield(L, -2, "resumed");
    if (x->to_file) {
        char hx[DIGEST_HEX_MAX];
        provision_digest_hex(&x->dg, hx);
        lua_pushstring(L, hx);
        lua_setfield(L, -2, provision_digest_name(x->dg.kind));
    }
    lua_pushlstring(L, x->body.p ? x->body.p : "", x->body.len);
    lua_setfield(L, -2, "body");
    xfer_release(x);
    return 1;
}

/* sha256_file(path) / xxh128_file(path): the file's digest, a read that
 * stops (EINTR) when the run is interrupted: a check may read a large file */
static int digest_file(lua_State *L, int kind)
{
    const char *path = provision_checkpath(L, 1);
    char hx[DIGEST_HEX_MAX];
    int e = provision_digest_file(path, kind, 1, hx);
    if (e) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", path, strerror(e));
        return 2;
    }
    lua_pushstring(L, hx);
    return 1;
}
static int http_sha256_file(lua_State *L) { return digest_file(L, DIGEST_SHA256); }
static int http_xxh128_file(lua_State *L) { return digest_file(L, DIGEST_XXH128); }

/* stat(path) -> size, mode (permission bits), stamp | nil, message
 * stamp: device, inode, size, mtime and ctime (ns): any write, chmod or
 * replacement of the file changes it (ctime cannot be set back) */
static int http_stat(lua_State *L)
{
    const char *path = provision_checkpath(L, 1);
    struct stat st;
    if (stat(path, &st) < 0) return luaL_fileresult(L, 0, path);
    lua_pushinteger(L, (lua_Integer)st.st_size);
    lua_pushinteger(L, (lua_Integer)(st.st_mode & 07777));
    char stamp[128];
    provision_stamp(&st, stamp, sizeof stamp);
    lua_pushstring(L, stamp);
    return 3;
}

/* commit(part, dest, mode): chmod, fsync, rename over dest, fsync the folder */
static int http_commit(lua_State *L)
{
    const char *part = provision_checkpath(L, 1);
    const char *dest = provision_checkpath(L, 2);
    int mode = (int)luaL_optinteger(L, 3, -1);
    int fd = open(part, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return luaL_fileresult(L, 0, part);
    int e = 0;
    if (mode >= 0 && fchmod(fd, (mode_t)mode) < 0) e = errno;
    if (!e && fsync(fd) < 0) e = errno;
    close(fd);
    if (!e && rename(part, dest) < 0) e = errno;
    if (e) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", dest, strerror(e));
        return 2;
    }
    char *copy = strdup(dest);
    if (copy) {
        int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) { fsync(dfd); close(dfd); }
        free(copy);
    }
    lua_pushboolean(L, 1);
    return 1;
}

static const luaL_Reg handle_methods[] = {
    { "close", handle_close },
    { "download", http_download },
    { "request", http_request },
    { NULL, NULL }
};

static const luaL_Reg http_funcs[] = {
    { "commit", http_commit },
    { "new", http_new },
    { "sha256_file", http_sha256_file },
    { "stat", http_stat },
    { "xxh128_file", http_xxh128_file },
    { NULL, NULL }
};

int luaopen_provision_http(lua_State *L)
{
    char err[256];
    if (provision_load_curl(err, sizeof err) < 0) return luaL_error(L, "%s", err);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (luaL_newmetatable(L, HANDLE_MT)) {
        luaL_newlib(L, handle_methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, handle_close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, handle_close);
        lua_setfield(L, -2, "__close");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, XFER_MT)) {
        lua_pushcfunction(L, xfer_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    luaL_newlib(L, http_funcs);
    lua_pushstring(L, curl_version());
    lua_setfield(L, -2, "curl_version");
    return 1;
}
