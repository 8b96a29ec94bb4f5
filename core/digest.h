/* digest.h: the content digests provision keeps of files (digest.c). */
#ifndef PROVISION_DIGEST_H
#define PROVISION_DIGEST_H

#include <stddef.h>

/* SHA-256: what a user pins (http.file's sha256) and what fs records.
 * XXH3-128: the identity of a download nobody pinned, about ten times
 * cheaper (digest.c says why it is enough there). */
enum { DIGEST_SHA256, DIGEST_XXH128 };
#define DIGEST_HEX_MAX 65   /* the longest hex form, with its NUL */

typedef struct { int kind; void *md; void *xx; } provision_digest;

/* "sha256" / "xxh128" -> the kind, or -1 */
int provision_digest_kind(const char *name);
const char *provision_digest_name(int kind);
/* 0, or ENOMEM, or ELIBACC (SHA-256: libcrypto could not be loaded);
 * provision_digest_free in any case */
int provision_digest_init(provision_digest *d, int kind);
/* e's message: ELIBACC's names the library and why */
const char *provision_digest_strerror(int e);
void provision_digest_update(provision_digest *d, const void *p, size_t n);
/* the digest in lowercase hex; once, then only free */
void provision_digest_hex(provision_digest *d, char out[DIGEST_HEX_MAX]);
void provision_digest_free(provision_digest *d);
/* SHA-256 computed in plain C (sha256.c), without libcrypto: used for
 * strings and files of up to SHA256_SMALL bytes, where opening libcrypto
 * would cost far more than the hashing */
#define SHA256_SMALL (64 * 1024)
void provision_sha256_mem(const void *p, size_t n, unsigned char out[32]);
/* the digest of n bytes at p: 0, or as provision_digest_init */
int provision_digest_mem(const void *p, size_t n, int kind, char out[DIGEST_HEX_MAX]);
/* the digest of what is left to read of fd (not closed), in large blocks;
 * interruptible: stop with EINTR when the run is interrupted. 0 or an errno. */
int provision_digest_fd(int fd, int kind, int interruptible, char out[DIGEST_HEX_MAX]);
/* the same of the file at path, opened as tree.h says (a link of another
 * user's is not followed); 0, or an errno with "path: why" in err */
int provision_digest_file(const char *path, int kind, int interruptible, char out[DIGEST_HEX_MAX],
                          char *err, size_t errlen);

/* A file's stamp: device, inode, size, mtime and ctime (ns) as text. Any
 * write, chmod or replacement of the file changes it (ctime cannot be set
 * back): a file whose stamp is the one recorded need not be read again. */
struct stat;
void provision_stamp(const struct stat *st, char *out, size_t n);

#endif
