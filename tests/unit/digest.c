/* Unit tests of core/sha256.c and the paths of core/digest.c that use it:
 * the plain-C SHA-256 against FIPS 180-4's examples and against libcrypto
 * (provision_digest_init, loaded as a run loads it) at every length from 0
 * to 300 bytes and around each block and size limit; provision_digest_mem
 * and provision_digest_fd on both sides of SHA256_SMALL, from a file and
 * from a pipe that gives it a few KiB a read; a read that fails loads no
 * libcrypto. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include "digest.h"

static int failures, passes;

static void check(const char *what, const char *got, const char *want)
{
    if (strcmp(got, want) == 0) { passes++; return; }
    printf("FAIL %s: got %s, want %s\n", what, got, want);
    failures++;
}

static void builtin_hex(const void *p, size_t n, char out[DIGEST_HEX_MAX])
{
    unsigned char b[32];
    provision_sha256_mem(p, n, b);
    for (int i = 0; i < 32; i++) sprintf(out + 2 * i, "%02x", b[i]);
}

/* libcrypto's SHA-256 of p (always libcrypto, whatever the length) */
static void crypto_hex(const void *p, size_t n, char out[DIGEST_HEX_MAX])
{
    provision_digest d;
    out[0] = '\0';
    if (provision_digest_init(&d, DIGEST_SHA256) == 0) {
        provision_digest_update(&d, p, n);
        provision_digest_hex(&d, out);
    }
    provision_digest_free(&d);
}

/* the digest of the n bytes at p written to a pipe-less temp file and
 * read back by provision_digest_fd */
static void fd_hex(const unsigned char *p, size_t n, char out[DIGEST_HEX_MAX])
{
    char path[] = "/tmp/provision-unit-digest.XXXXXX";
    int fd = mkstemp(path);
    out[0] = '\0';
    if (fd < 0) return;
    unlink(path);
    if (write(fd, p, n) == (ssize_t)n && lseek(fd, 0, SEEK_SET) == 0)
        if (provision_digest_fd(fd, DIGEST_SHA256, 0, out) != 0) out[0] = '\0';
    close(fd);
}

/* the digest (kind) of the n bytes at p as provision_digest_fd reads them
 * from a pipe, written by a child CHUNK bytes at a time: many short reads */
static void pipe_hex(const unsigned char *p, size_t n, int kind, char out[DIGEST_HEX_MAX])
{
    enum { CHUNK = 7777 };
    int fds[2];
    out[0] = '\0';
    if (pipe(fds) != 0) return;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        for (size_t at = 0; at < n;) {
            size_t k = n - at < CHUNK ? n - at : CHUNK;
            ssize_t w = write(fds[1], p + at, k);
            if (w <= 0) _exit(1);
            at += (size_t)w;
        }
        _exit(0);
    }
    close(fds[1]);
    if (pid > 0 && provision_digest_fd(fds[0], kind, 0, out) != 0) out[0] = '\0';
    close(fds[0]);
    if (pid > 0) waitpid(pid, NULL, 0);
}

static int crypto_mapped(void)
{
    char line[512];
    int found = 0;
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f)) found |= strstr(line, "libcrypto") != NULL;
    fclose(f);
    return found;
}

int main(void)
{
    /* first, before anything loads libcrypto: a read that fails (a
     * folder's descriptor) is an error, and loads none */
    {
        char out[DIGEST_HEX_MAX];
        int dfd = open("/", O_RDONLY | O_DIRECTORY);
        int e = dfd < 0 ? -1 : provision_digest_fd(dfd, DIGEST_SHA256, 0, out);
        if (dfd >= 0) close(dfd);
        char what[64];
        snprintf(what, sizeof what, "%d", e);
        check("digest_fd of a folder: EISDIR", what, "21");
        snprintf(what, sizeof what, "%d", crypto_mapped());
        check("... and no libcrypto loaded for it", what, "0");
    }

    char got[DIGEST_HEX_MAX], want[DIGEST_HEX_MAX], what[64];
    /* FIPS 180-4 / NIST's examples */
    builtin_hex("", 0, got);
    check("empty", got, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    builtin_hex("abc", 3, got);
    check("abc", got, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    builtin_hex(two, strlen(two), got);
    check("two blocks", got, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

    enum { MAX = 3 * 64 * 1024 };
    unsigned char *buf = malloc(MAX);
    if (!buf) return 1;
    unsigned x = 12345;
    for (size_t i = 0; i < MAX; i++) { x = x * 1103515245 + 12345; buf[i] = (unsigned char)(x >> 16); }

    /* every length to 300 (the padding's one- and two-block cases), then
     * around the block multiples and SHA256_SMALL */
    size_t lens[] = { 447, 448, 511, 512, 1000, 4095, 4096, 4097, SHA256_SMALL - 1, SHA256_SMALL,
                      SHA256_SMALL + 1, 131071, 131072, 131073, MAX };
    for (size_t n = 0; n <= 300 + sizeof lens / sizeof *lens; n++) {
        size_t len = n <= 300 ? n : lens[n - 301];
        crypto_hex(buf, len, want);
        if (!want[0]) { printf("FAIL libcrypto could not be loaded\n"); return 1; }
        snprintf(what, sizeof what, "builtin, %zu bytes", len);
        builtin_hex(buf, len, got);
        check(what, got, want);
        snprintf(what, sizeof what, "digest_mem, %zu bytes", len);
        if (provision_digest_mem(buf, len, DIGEST_SHA256, got) != 0) got[0] = '\0';
        check(what, got, want);
        if (n % 50 == 0 || n > 300) {
            snprintf(what, sizeof what, "digest_fd, %zu bytes", len);
            fd_hex(buf, len, got);
            check(what, got, want);
            snprintf(what, sizeof what, "digest_fd from a pipe, %zu bytes", len);
            pipe_hex(buf, len, DIGEST_SHA256, got);
            check(what, got, want);
            /* xxh128: the same read loop, the digest started at once */
            char xmem[DIGEST_HEX_MAX];
            if (provision_digest_mem(buf, len, DIGEST_XXH128, xmem) != 0) xmem[0] = '\0';
            snprintf(what, sizeof what, "xxh128 digest_fd from a pipe, %zu bytes", len);
            pipe_hex(buf, len, DIGEST_XXH128, got);
            check(what, got, xmem);
        }
    }
    free(buf);
    printf("%s sha256: %d checks\n", failures ? "FAIL" : "PASS", passes + failures);
    return failures != 0;
}
