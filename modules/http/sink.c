/* sink.c: where a download's body goes (modules/http/http.c feeds it). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>
#include "http.h"

/* The sink
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
void http_sink_use_direct(http_xfer *x)
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
int http_sink_start(http_xfer *x)
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

/* the error that stopped a thread, as a message for http_set_abort; 0: none [mu] */
static int sink_failed(http_xfer *x, char *msg, size_t n)
{
    if (x->write_err) { snprintf(msg, n, "%s", strerror(x->write_err)); return 1; }
    if (x->hash_err) { snprintf(msg, n, "reading back the kept part: %s", strerror(x->hash_err)); return 1; }
    return 0;
}

/* hand the slot being filled to the threads; unless it is the last, wait
 * until the next one is free. 0, or -1 (http_set_abort done) */
int http_sink_publish(http_xfer *x, int last)
{
    char msg[256];
    pthread_mutex_lock(&x->mu);
    x->plen[x->published % NSLOTS] = x->fill;
    x->published++;
    pthread_cond_broadcast(&x->cv);
    int rc = 0;
    while (!last) {
        uint64_t slowest = x->hashed_n < x->written_n ? x->hashed_n : x->written_n;
        if (sink_failed(x, msg, sizeof msg)) { http_set_abort(x, AB_WRITE, msg); rc = -1; break; }
        if (x->published - slowest < NSLOTS) break;
        sink_wait(x);
        if (provision_interrupted()) { http_set_abort(x, AB_INTERRUPTED, "interrupted"); rc = -1; break; }
    }
    pthread_mutex_unlock(&x->mu);
    x->fill = 0;
    return rc;
}

/* copy body bytes into the ring; 0, or -1 (http_set_abort done) */
int http_sink_put(http_xfer *x, const char *p, size_t n)
{
    while (n > 0) {
        if (x->fill == SLOT_SIZE && http_sink_publish(x, 0) < 0) return -1;
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
void http_sink_stop(http_xfer *x)
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
int http_sink_finish(http_xfer *x, char *msg, size_t n)
{
    if (!x->sink_on) { errno = EINVAL; return -1; }
    if (x->fill > 0) http_sink_publish(x, 1);
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

