/* atomicio.c: whole-file writes that a crash or a full disk cannot leave
 * half-done: write a temp file in the same folder, fsync it, rename it over
 * the target, fsync the folder. On any failure the temp file is removed and
 * the target is as it was. The temp file gets its mode and owner before the
 * rename: the target never shows another one, even for an instant. The
 * folder is reached as tree.h says, and the temp file has a name no other
 * user can plant first. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core.h"
#include "tree.h"

int provision_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) { if (errno == EINTR) continue; return -1; }
        p += n; len -= (size_t)n;
    }
    return 0;
}

int provision_write_atomic(const char *path, const void *data, size_t len,
                           int mode, int uid, int gid, char *err, size_t errlen)
{
    return provision_write_atomic_as(path, data, len, mode, uid, gid, NULL, err, errlen);
}

int provision_write_atomic_as(const char *path, const void *data, size_t len, int mode, int uid, int gid,
                              const char *temp, char *err, size_t errlen)
{
    char name[NAME_MAX + 1];
    int dfd = tree_walk(path, 0, name, err, errlen);
    if (dfd < 0) return -1;
    int r = provision_write_atomic_at(dfd, name, path, data, len, mode, uid, gid, temp, err, errlen);
    int e = errno;
    close(dfd);
    errno = e;
    return r;
}

int provision_write_atomic_at(int dfd, const char *name, const char *shown, const void *data, size_t len,
                              int mode, int uid, int gid, const char *temp, char *err, size_t errlen)
{
    int e = 0;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
        snprintf(err, errlen, "%s: not a file name", shown);
        errno = EISDIR;
        return -1;
    }
    struct stat st;
    if (mode < 0) {   /* keep the mode of a file of ours; never take another user's */
        mode = fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)
               && tree_trusted_uid(st.st_uid) ? (int)(st.st_mode & 07777) : 0644;
    }
    /* NAME.provision.RANDOM beside it (tree_create_temp keeps it short
     * enough for a long NAME): created with O_EXCL, never through a link */
    char prefix[NAME_MAX + 1], tmp[NAME_MAX + 1];
    int fd;
    if (temp) {   /* the caller's name (recorded first, for a killed run's cleanup) */
        snprintf(tmp, sizeof tmp, "%s", temp);
        fd = strchr(temp, '/') || !*temp ? (errno = EINVAL, -1)
           : openat(dfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    } else {
        snprintf(prefix, sizeof prefix, "%.240s.provision", name);
        fd = tree_create_temp(dfd, prefix, 0600, tmp, err, errlen);
    }
    if (fd < 0) {
        e = errno;
        snprintf(err, errlen, "%s: %s", shown, strerror(e));
        errno = e;
        return -1;
    }
    /* the owner first: a chown may clear the set-id bits of the mode */
    if ((uid >= 0 || gid >= 0) && fchown(fd, (uid_t)uid, (gid_t)gid) < 0) e = errno;
    if (!e && (fchmod(fd, (mode_t)mode) < 0 || provision_write_all(fd, data, len) < 0 || fsync(fd) < 0))
        e = errno;
    if (!e && renameat(dfd, tmp, dfd, name) < 0) e = errno;
    if (e) {
        unlinkat(dfd, tmp, 0);
    } else {
        /* the name now holds our file, unless another user swapped the
         * temp file under us (a folder they can write to, not sticky) */
        struct stat mine, there;
        if (fstat(fd, &mine) == 0 && fstatat(dfd, name, &there, AT_SYMLINK_NOFOLLOW) == 0
            && (mine.st_dev != there.st_dev || mine.st_ino != there.st_ino)) {
            close(fd);
            snprintf(err, errlen, "%s: replaced by another file while being written", shown);
            errno = EBUSY;
            return -1;
        }
    }
    close(fd);
    if (e) {
        snprintf(err, errlen, "%s: %s", shown, strerror(e));
        errno = e;
        return -1;
    }
    tree_sync_dir(dfd);
    return 0;
}

char *provision_read_file(const char *path, size_t *len)
{
    char err[TREE_ERR];
    return provision_read(path, len, err, sizeof err);
}

char *provision_read(const char *path, size_t *len, char *err, size_t errlen)
{
    int fd = tree_open_regular(path, err, errlen);
    if (fd < 0) return NULL;
    size_t cap = 8192, used = 0;
    char *buf = malloc(cap + 1);
    if (!buf) { close(fd); snprintf(err, errlen, "%s: out of memory", path); errno = ENOMEM; return NULL; }
    for (;;) {
        if (used == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) { free(buf); close(fd); snprintf(err, errlen, "%s: out of memory", path); errno = ENOMEM; return NULL; }
            buf = nb; cap *= 2;
        }
        ssize_t r = read(fd, buf + used, cap - used);
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            free(buf); close(fd);
            snprintf(err, errlen, "%s: %s", path, strerror(e));
            errno = e;
            return NULL;
        }
        if (r == 0) break;
        used += (size_t)r;
    }
    close(fd);
    buf[used] = '\0';
    if (len) *len = used;
    return buf;
}
