/* digest.c: SHA-256 through libcrypto (SHA-NI where the CPU has it: about
 * 0.94 s per GiB on the machines we measure on) and XXH3-128 through
 * xxhash, inlined from its header (about 0.09 s per GiB there).
 *
 * SHA-256 goes through libcrypto's SHA256_* functions, not EVP: the same
 * code for the blocks, but EVP's first digest initializes OpenSSL 3's
 * providers and reads openssl.cnf, about 2.4 ms of every run that hashes
 * anything (a Compose stack's config hashes on a no-op, issue 19); this
 * costs 0.06 ms.
 *
 * XXH3-128 is not a cryptographic hash. It is used only where no one asked
 * for a checksum: to know a downloaded file again (has it changed since we
 * wrote it?), where accidental changes are what it must see, and where
 * whoever could forge a collision could as well edit the state file beside
 * it. A pinned sha256 is always checked with SHA-256. */
#define XXH_INLINE_ALL
#include <xxhash.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#define OPENSSL_SUPPRESS_DEPRECATED   /* SHA256_*: deprecated for EVP, which is what costs (above) */
#include <openssl/sha.h>
#include "core.h"
#include "digest.h"
#include "lazy_crypto.h"   /* libcrypto: loaded at the first SHA-256 (lazylib.h) */
#include "tree.h"

int provision_digest_kind(const char *name)
{
    if (strcmp(name, "sha256") == 0) return DIGEST_SHA256;
    if (strcmp(name, "xxh128") == 0) return DIGEST_XXH128;
    return -1;
}

const char *provision_digest_name(int kind) { return kind == DIGEST_XXH128 ? "xxh128" : "sha256"; }

/* why libcrypto could not be loaded (ELIBACC's message) */
static char crypto_err[256];

const char *provision_digest_strerror(int e)
{
    return e == ELIBACC && crypto_err[0] ? crypto_err : strerror(e);
}

int provision_digest_init(provision_digest *d, int kind)
{
    memset(d, 0, sizeof *d);
    d->kind = kind;
    if (kind == DIGEST_XXH128) {
        d->xx = XXH3_createState();
        return d->xx && XXH3_128bits_reset(d->xx) == XXH_OK ? 0 : ENOMEM;
    }
    if (provision_load_crypto(crypto_err, sizeof crypto_err) < 0) return ELIBACC;
    d->md = malloc(sizeof(SHA256_CTX));
    return d->md && SHA256_Init(d->md) ? 0 : ENOMEM;
}

void provision_digest_update(provision_digest *d, const void *p, size_t n)
{
    if (d->xx) XXH3_128bits_update(d->xx, p, n);
    else if (d->md) SHA256_Update(d->md, p, n);
}

static void to_hex(const unsigned char *b, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[b[i] >> 4];
        out[2 * i + 1] = hx[b[i] & 15];
    }
    out[2 * n] = '\0';
}

void provision_digest_hex(provision_digest *d, char out[DIGEST_HEX_MAX])
{
    out[0] = '\0';
    if (d->xx) {
        XXH128_canonical_t c;   /* big-endian: xxhsum's spelling */
        XXH128_canonicalFromHash(&c, XXH3_128bits_digest(d->xx));
        to_hex(c.digest, sizeof c.digest, out);
    } else if (d->md) {
        unsigned char b[SHA256_DIGEST_LENGTH];
        if (SHA256_Final(b, d->md)) to_hex(b, sizeof b, out);
    }
}

void provision_digest_free(provision_digest *d)
{
    if (d->xx) XXH3_freeState(d->xx);
    free(d->md);
    d->xx = d->md = NULL;
}

void provision_stamp(const struct stat *st, char *out, size_t n)
{
    snprintf(out, n, "%llu:%llu:%lld:%lld.%ld:%lld.%ld", (unsigned long long)st->st_dev,
             (unsigned long long)st->st_ino, (long long)st->st_size,
             (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec,
             (long long)st->st_ctim.tv_sec, st->st_ctim.tv_nsec);
}

/* out: the hex of the SHA-256 of p, computed here (sha256.c) */
static void sha256_hex(const void *p, size_t n, char out[DIGEST_HEX_MAX])
{
    unsigned char b[32];
    provision_sha256_mem(p, n, b);
    to_hex(b, sizeof b, out);
}

int provision_digest_mem(const void *p, size_t n, int kind, char out[DIGEST_HEX_MAX])
{
    if (kind == DIGEST_SHA256 && n <= SHA256_SMALL) {
        sha256_hex(p, n, out);
        return 0;
    }
    provision_digest d;
    int e = provision_digest_init(&d, kind);
    if (!e) {
        provision_digest_update(&d, p, n);
        provision_digest_hex(&d, out);
    }
    provision_digest_free(&d);
    return e;
}

int provision_digest_fd(int fd, int kind, int interruptible, char out[DIGEST_HEX_MAX])
{
    enum { BLOCK = 1 << 17 };
    /* (a SHA-256 kept whole in buf has room for one more read) */
    _Static_assert(SHA256_SMALL < BLOCK, "SHA256_SMALL must be below digest_fd's block");
    char *buf = malloc(BLOCK);
    if (!buf) return ENOMEM;
    /* One loop reads the file. SHA-256 keeps what it reads in buf while
     * the file is no longer than SHA256_SMALL: a file that ends there is
     * hashed here, without libcrypto (sha256.c); past it, and for xxh128
     * from the first block, the digest is started and fed block by block.
     * A read that fails (or is interrupted) starts nothing: no libcrypto
     * is loaded for a file that could not be read. */
    provision_digest d;
    int started = 0, e = 0;   /* started: provision_digest_init was called (d is then freed) */
    size_t have = 0;
    for (;;) {
        ssize_t r = read(fd, buf + have, BLOCK - have);
        if (r < 0) {
            if (errno != EINTR) e = errno;
            else if (interruptible && provision_interrupted()) e = EINTR;
            if (e) break;
            continue;
        }
        if (r == 0) break;
        have += (size_t)r;
        if (!started && kind == DIGEST_SHA256 && have <= SHA256_SMALL) continue;
        if (!started) {
            started = 1;
            if ((e = provision_digest_init(&d, kind)) != 0) break;
        }
        provision_digest_update(&d, buf, have);
        have = 0;
        if (interruptible && provision_interrupted()) { e = EINTR; break; }
    }
    if (!e && !started && kind == DIGEST_SHA256) {
        sha256_hex(buf, have, out);
    } else if (!e) {
        if (!started) {   /* an empty file's xxh128 */
            started = 1;
            e = provision_digest_init(&d, kind);
        }
        if (!e) provision_digest_hex(&d, out);
    }
    if (started) provision_digest_free(&d);
    free(buf);
    return e;
}

int provision_digest_file(const char *path, int kind, int interruptible, char out[DIGEST_HEX_MAX],
                          char *err, size_t errlen)
{
    int fd = tree_open_regular(path, err, errlen);
    if (fd < 0) return errno;
    int e = provision_digest_fd(fd, kind, interruptible, out);
    close(fd);
    if (e) snprintf(err, errlen, "%s: %s", path, e == EINTR ? "interrupted" : strerror(e));
    return e;
}
