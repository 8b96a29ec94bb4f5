/* atomicio.c: whole-file writes that a crash or a full disk cannot leave
 * half-done: write a temp file in the same folder, fsync it, rename it over
 * the target, fsync the folder. On any failure the temp file is removed and
 * the target is as it was. The temp file gets its mode and owner before the
 * rename: the target never shows another one, even for an instant. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core.h"

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) { if (errno == EINTR) continue; return -1; }
        p += n; len -= (size_t)n;
    }
    return 0;
}

static void fsync_dir_of(const char *path)
{
    char *copy = strdup(path);
    if (!copy) return;
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) { fsync(dfd); close(dfd); }
    free(copy);
}

int provision_write_atomic(const char *path, const void *data, size_t len,
                           int mode, int uid, int gid, char *err, size_t errlen)
{
    struct stat st;
    if (mode < 0) mode = stat(path, &st) == 0 ? (int)(st.st_mode & 07777) : 0644;
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (!tmp) { snprintf(err, errlen, "%s: out of memory", path); return -1; }
    /* NAME.provision-XXXXXX beside it; for a name too long to take the
     * suffix (NAME_MAX), a short .provision-XXXXXX in the same folder */
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (strlen(base) + sizeof ".provision-XXXXXX" - 1 <= NAME_MAX)
        snprintf(tmp, n, "%s.provision-XXXXXX", path);
    else
        snprintf(tmp, n, "%.*s.provision-XXXXXX", (int)(base - path), path);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        free(tmp); errno = e; return -1;
    }
    int e = 0;
    /* the owner first: a chown may clear the set-id bits of the mode */
    if ((uid >= 0 || gid >= 0) && fchown(fd, (uid_t)uid, (gid_t)gid) < 0) e = errno;
    if (!e && (fchmod(fd, (mode_t)mode) < 0 || write_all(fd, data, len) < 0 || fsync(fd) < 0))
        e = errno;
    if (close(fd) < 0 && !e) e = errno;
    if (!e && rename(tmp, path) < 0) e = errno;
    if (e) {
        unlink(tmp);
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        free(tmp); errno = e; return -1;
    }
    free(tmp);
    fsync_dir_of(path);
    return 0;
}

char *provision_read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    size_t cap = 8192, used = 0;
    char *buf = malloc(cap + 1);
    if (!buf) { close(fd); errno = ENOMEM; return NULL; }
    for (;;) {
        if (used == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) { free(buf); close(fd); errno = ENOMEM; return NULL; }
            buf = nb; cap *= 2;
        }
        ssize_t r = read(fd, buf + used, cap - used);
        if (r < 0) { if (errno == EINTR) continue; int e = errno; free(buf); close(fd); errno = e; return NULL; }
        if (r == 0) break;
        used += (size_t)r;
    }
    close(fd);
    buf[used] = '\0';
    if (len) *len = used;
    return buf;
}
