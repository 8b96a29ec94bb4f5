/* atomicio.c: whole-file writes that a crash or a full disk cannot leave
 * half-done: write a temp file in the same folder, fsync it, rename it over
 * the target, fsync the folder (or, with WRITE_SYNC_DATA / _LATER, leave
 * some of that to one syncfs per filesystem later: core.h). On any failure
 * the temp file is removed and the target is as it was. The temp file gets its mode and owner before the
 * rename: the target never shows another one, even for an instant. The
 * folder is reached as tree.h says, and the temp file has a name no other
 * user can plant first. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/mman.h>
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
    return provision_write_atomic_sync(dfd, name, shown, data, len, mode, uid, gid, temp, WRITE_SYNC_NOW,
                                       err, errlen);
}

/* ---- writes whose sync is left for later (WRITE_SYNC_DATA, _LATER)
 *
 * Each filesystem written to since the last provision_sync_written, with a
 * descriptor on it for syncfs (a duplicate of the first file written there:
 * a folder may not be readable, a file we made is), and that file's path
 * for a message. Few: a run writes to one or two filesystems. */
#define SYNC_MAX 16
static struct { dev_t dev; int fd; char *shown; } sync_fs[SYNC_MAX];
static int sync_n;
static long sync_count;
static int sync_errno;            /* a syncfs that failed: kept */
static char sync_errmsg[TREE_ERR];

/* note the filesystem of fd (a file just written; dev its st_dev): 0, or -1
 * when it cannot be (the caller syncs now) */
static int sync_note(int fd, dev_t dev, const char *shown)
{
    for (int i = 0; i < sync_n; i++)
        if (sync_fs[i].dev == dev) { sync_count++; return 0; }
    if (sync_n == SYNC_MAX) return -1;
    int keep = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (keep < 0) return -1;
    sync_fs[sync_n].dev = dev;
    sync_fs[sync_n].fd = keep;
    sync_fs[sync_n].shown = strdup(shown);
    sync_n++;
    sync_count++;
    return 0;
}

long provision_sync_pending(void) { return sync_count; }

void provision_sync_note_dir(int dirfd, const char *shown)
{
    struct stat st;
    if (fstat(dirfd, &st) == 0)
        for (int i = 0; i < sync_n; i++)
            if (sync_fs[i].dev == st.st_dev) { sync_count++; return; }
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0 && fstat(fd, &st) == 0 && sync_note(fd, st.st_dev, shown) == 0) { close(fd); return; }
    if (fd >= 0) { fsync(fd); close(fd); }
}

int provision_sync_written(char *err, size_t errlen)
{
    for (int i = 0; i < sync_n; i++) {
        if (syncfs(sync_fs[i].fd) < 0 && !sync_errno) {
            sync_errno = errno;
            snprintf(sync_errmsg, sizeof sync_errmsg, "%s: %s", sync_fs[i].shown ? sync_fs[i].shown : "?",
                     strerror(errno));
        }
        close(sync_fs[i].fd);
        free(sync_fs[i].shown);
    }
    sync_n = 0;
    sync_count = 0;
    if (sync_errno) {
        snprintf(err, errlen, "%s", sync_errmsg);
        errno = sync_errno;
        return -1;
    }
    return 0;
}

int provision_write_atomic_sync(int dfd, const char *name, const char *shown, const void *data, size_t len,
                                int mode, int uid, int gid, const char *temp, int sync, char *err, size_t errlen)
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
    /* Made with its mode at once when no owner is to be given and no set-id
     * bit is asked for (the umask or a default ACL may still take bits
     * off: the fstat below sees it, and fchmod puts them back, before any
     * content and before the rename); else 0600, and chown, then chmod. */
    int cmode = uid < 0 && gid < 0 && !(mode & 07000) ? mode : 0600;
    /* NAME.provision.RANDOM beside it (tree_create_temp keeps it short
     * enough for a long NAME): created with O_EXCL, never through a link */
    char prefix[NAME_MAX + 1], tmp[NAME_MAX + 1];
    int fd;
    if (temp) {   /* the caller's name (recorded first, for a killed run's cleanup) */
        snprintf(tmp, sizeof tmp, "%s", temp);
        fd = strchr(temp, '/') || !*temp ? (errno = EINVAL, -1)
           : openat(dfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)cmode);
    } else {
        snprintf(prefix, sizeof prefix, "%.240s.provision", name);
        fd = tree_create_temp(dfd, prefix, cmode, tmp, err, errlen);
    }
    if (fd < 0) {
        e = errno;
        snprintf(err, errlen, "%s: %s", shown, strerror(e));
        errno = e;
        return -1;
    }
    /* the owner first: a chown may clear the set-id bits of the mode */
    struct stat mine;
    if ((uid >= 0 || gid >= 0) && fchown(fd, (uid_t)uid, (gid_t)gid) < 0) e = errno;
    if (!e && fstat(fd, &mine) < 0) e = errno;
    if (!e && (mine.st_mode & 07777) != (mode_t)mode && fchmod(fd, (mode_t)mode) < 0) e = errno;
    if (!e && provision_write_all(fd, data, len) < 0) e = errno;
    /* a sync left for later: the filesystem noted first (else it is now) */
    if (!e && sync != WRITE_SYNC_NOW && sync_note(fd, mine.st_dev, shown) < 0) sync = WRITE_SYNC_NOW;
    if (!e && sync != WRITE_SYNC_LATER && fsync(fd) < 0) e = errno;
    if (!e && renameat(dfd, tmp, dfd, name) < 0) e = errno;
    if (e) {
        unlinkat(dfd, tmp, 0);
    } else {
        /* the name now holds our file, unless another user swapped the
         * temp file under us (a folder they can write to, not sticky) */
        struct stat there;
        if (fstatat(dfd, name, &there, AT_SYMLINK_NOFOLLOW) == 0
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
    if (sync == WRITE_SYNC_NOW) tree_sync_dir(dfd);
    return 0;
}

char *provision_read_file(const char *path, size_t *len)
{
    char err[TREE_ERR];
    return provision_read(path, len, err, sizeof err);
}

/* a buffer of cap + 1 bytes for a whole file: from 2 MiB, aligned to 2 MiB
 * and in 2 MiB pages where the kernel has them (a page fault per 2 MiB, not
 * per 4 KiB: reading the 8.4 MB provision-static, which a fleet run hashes,
 * took ~40 ms of faults in a fresh process, 2,100 of them) */
#define BIG_READ ((size_t)2 << 20)
static char *read_buffer(size_t cap)
{
    if (cap < BIG_READ) return malloc(cap + 1);
    size_t n = (cap + 1 + BIG_READ - 1) & ~(BIG_READ - 1);
    char *p = aligned_alloc(BIG_READ, n);
    if (p) madvise(p, n, MADV_HUGEPAGE);
    return p;
}

char *provision_read(const char *path, size_t *len, char *err, size_t errlen)
{
    int fd = tree_open_regular(path, err, errlen);
    if (fd < 0) return NULL;
    /* sized by the file (one more byte: a file that grew is seen growing,
     * and read on by doubling) */
    struct stat st;
    size_t cap = 8192, used = 0;
    if (fstat(fd, &st) == 0 && st.st_size > 0 && (uintmax_t)st.st_size < SIZE_MAX / 4) cap = (size_t)st.st_size + 1;
    char *buf = read_buffer(cap);
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
