/* tree.c: symlink-safe walks, changes and removals (tree.h says the rules).
 *
 * A walk first asks the kernel for the folder with openat2() and
 * RESOLVE_NO_SYMLINKS: one call, and the usual case (no link anywhere on the
 * path). When a link is on the way (or openat2 is missing), it walks one
 * component at a time, following only trusted links, as the rules say. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/openat2.h>
#include "core.h"
#include "tree.h"

#define MAX_HOPS 40

__attribute__((format(printf, 4, 5)))
static int fail(char *err, size_t errlen, int e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    errno = e;
    return -1;
}

/* strerror(e), looked up once an errno: provision never sets a locale, so
 * each message stays the C library's constant string */
static const char *why(int e)
{
    static const char *seen[134];
    if (e <= 0 || e >= (int)(sizeof seen / sizeof *seen)) return strerror(e);
    if (!seen[e]) seen[e] = strerror(e);
    return seen[e];
}

/* "path: strerror(e)", the usual failure, without printf: a plan of
 * 142,000 new files fails three walks a file */
static int fail_path(char *err, size_t errlen, int e, const char *path)
{
    if (errlen) {
        const char *w = why(e);
        size_t pl = strlen(path), wl = strlen(w), at = 0;
        if (pl > errlen - 1) pl = errlen - 1;
        memcpy(err, path, pl); at = pl;
        if (at + 2 < errlen) { memcpy(err + at, ": ", 2); at += 2; }
        if (wl > errlen - 1 - at) wl = errlen - 1 - at;
        memcpy(err + at, w, wl); at += wl;
        err[at] = '\0';
    }
    errno = e;
    return -1;
}

int tree_trusted_uid(uid_t uid)
{
    static uid_t me = (uid_t)-1;
    if (me == (uid_t)-1) me = geteuid();
    return uid == 0 || uid == me;
}

/* ---- walking */

static int openat2_nolinks(int dirfd, const char *path, int flags)
{
#ifdef SYS_openat2
    static int missing;
    if (!missing) {
        struct open_how how;
        memset(&how, 0, sizeof how);
        how.flags = (unsigned long long)(flags | O_CLOEXEC);
        how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
        long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
        if (fd >= 0 || errno != ENOSYS) return (int)fd;
        missing = 1;
    }
#endif
    errno = ENOSYS;
    return -1;
}

/* the textual parts of path: its folder (copied into dir, "." or "/" when
 * none) and its last component (name); -1 when the last component is "."
 * or ".." or there is none (the slow walk handles those) */
static int split(const char *path, char *dir, size_t dirlen, char name[NAME_MAX + 1])
{
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/') len--;
    size_t b = len;
    while (b > 0 && path[b - 1] != '/') b--;
    size_t nl = len - b;
    if (nl == 0 || nl > NAME_MAX) return -1;
    if ((nl == 1 && path[b] == '.') || (nl == 2 && path[b] == '.' && path[b + 1] == '.')) return -1;
    memcpy(name, path + b, nl);
    name[nl] = '\0';
    if (b == 0) { snprintf(dir, dirlen, "."); return 0; }
    size_t dl = b;
    while (dl > 1 && path[dl - 1] == '/') dl--;
    if (dl >= dirlen) return -1;
    memcpy(dir, path, dl);
    dir[dl] = '\0';
    return 0;
}

/* The walk one component at a time. walked: the path reached so far, for
 * messages. */
static int slow_walk(const char *path, int follow_last, char name[NAME_MAX + 1], char *err, size_t errlen)
{
    char todo[PATH_MAX], next_todo[PATH_MAX], walked[PATH_MAX];
    size_t plen = strlen(path);
    if (plen >= sizeof todo) return fail_path(err, errlen, ENAMETOOLONG, path);
    memcpy(todo, path, plen + 1);
    int fd = open(path[0] == '/' ? "/" : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return fail(err, errlen, errno, "%s: %s", path[0] == '/' ? "/" : ".", why(errno));
    snprintf(walked, sizeof walked, "%s", path[0] == '/' ? "" : ".");
    int hops = 0;
    const char *p = todo;
    for (;;) {
        while (*p == '/') p++;
        size_t n = strcspn(p, "/");
        const char *next = p + n;
        while (*next == '/') next++;
        int last = *next == '\0';
        if (n == 0) {   /* nothing left: the folder reached is the object */
            snprintf(name, NAME_MAX + 1, ".");
            return fd;
        }
        if (n > NAME_MAX) {
            close(fd);
            return fail_path(err, errlen, ENAMETOOLONG, path);
        }
        char comp[NAME_MAX + 1];
        memcpy(comp, p, n);
        comp[n] = '\0';
        if (last && (!follow_last || strcmp(comp, ".") == 0 || strcmp(comp, "..") == 0)) {
            memcpy(name, comp, n + 1);
            return fd;
        }
        if (strcmp(comp, ".") == 0) { p = next; continue; }
        int nfd = openat(fd, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (nfd < 0) {
            int e = errno;
            if (e == ENOENT && last) { memcpy(name, comp, n + 1); return fd; }
            close(fd);
            if (e == ENOENT || e == ENOTDIR) return fail_path(err, errlen, e, path);
            return fail(err, errlen, e, "%s/%s: %s", walked, comp, why(e));
        }
        struct stat st;
        if (fstat(nfd, &st) < 0) {
            int e = errno;
            close(nfd); close(fd);
            return fail(err, errlen, e, "%s/%s: %s", walked, comp, why(e));
        }
        if (S_ISLNK(st.st_mode)) {
            if (!tree_trusted_uid(st.st_uid)) {
                close(nfd); close(fd);
                return fail(err, errlen, ELOOP, "%s/%s: a symbolic link owned by uid %ld, not followed "
                            "(provision follows only links owned by root or by the user running it)",
                            walked, comp, (long)st.st_uid);
            }
            /* one of ours, but in a folder others can change: it may be a
             * link of ours moved here from elsewhere (a rename needs no
             * ownership of what is renamed, only of the folders) */
            struct stat ds;
            if (fstat(fd, &ds) == 0 && tree_open_to_others(&ds)) {
                close(nfd); close(fd);
                return fail(err, errlen, ELOOP, "%s/%s: a symbolic link in a folder other users can change "
                            "(owner uid %ld, mode %04o), not followed", walked, comp, (long)ds.st_uid,
                            (unsigned)(ds.st_mode & 07777));
            }
            char target[PATH_MAX];
            ssize_t tl = readlinkat(nfd, "", target, sizeof target - 1);
            int e = errno;
            close(nfd);
            if (tl < 0) { close(fd); return fail(err, errlen, e, "%s/%s: %s", walked, comp, why(e)); }
            target[tl] = '\0';
            if (++hops > MAX_HOPS) {
                close(fd);
                return fail_path(err, errlen, ELOOP, path);
            }
            int w = snprintf(next_todo, sizeof next_todo, "%s%s%s", target, *next ? "/" : "", next);
            if (w < 0 || (size_t)w >= sizeof next_todo) {
                close(fd);
                return fail_path(err, errlen, ENAMETOOLONG, path);
            }
            memcpy(todo, next_todo, (size_t)w + 1);
            p = todo;
            if (target[0] == '/') {
                close(fd);
                fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0) return fail(err, errlen, errno, "/: %s", why(errno));
                walked[0] = '\0';
            }
            continue;
        }
        if (last) {   /* follow_last, and not a link: comp in fd is the object */
            close(nfd);
            memcpy(name, comp, n + 1);
            return fd;
        }
        if (!S_ISDIR(st.st_mode)) {
            close(nfd); close(fd);
            return fail_path(err, errlen, ENOTDIR, path);
        }
        close(fd);
        fd = nfd;
        if (strcmp(comp, "..") == 0) {
            char *s = strrchr(walked, '/');
            if (s && strcmp(s, "/..") != 0 && strcmp(s, "/.") != 0 && s != walked) *s = '\0';
            else { size_t wl = strlen(walked); snprintf(walked + wl, sizeof walked - wl, "/.."); }
        } else {
            size_t wl = strlen(walked);
            snprintf(walked + wl, sizeof walked - wl, "/%s", comp);
        }
        p = next;
    }
}

int tree_walk(const char *path, int follow_last, char name[NAME_MAX + 1], char *err, size_t errlen)
{
    if (!path[0]) return fail(err, errlen, ENOENT, "an empty path");
    char dir[PATH_MAX];
    if (split(path, dir, sizeof dir, name) == 0) {
        int fd = openat2_nolinks(AT_FDCWD, dir, O_PATH | O_DIRECTORY);
        if (fd >= 0) {
            if (!follow_last) return fd;
            struct stat st;
            if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISLNK(st.st_mode)) return fd;
            close(fd);   /* a link at the end: the slow walk follows it, if trusted */
        } else if (errno == ENOENT || errno == ENOTDIR) {
            return fail_path(err, errlen, errno, path);
        } else if (errno != ELOOP && errno != ENOSYS && errno != EXDEV && errno != EAGAIN) {
            return fail_path(err, errlen, errno, dir);
        }
    }
    return slow_walk(path, follow_last, name, err, errlen);
}

/* The folder the last tree_walk_kept looked in, kept open for the next
 * (a no-op's checks look in one folder after another, thousands of times
 * in the same one). A descriptor of a folder stays that folder whatever is
 * made or removed in it; what can make it stale is a folder or a link on
 * the way changed, so every change here forgets it, and the runner forgets
 * it before and after a step applies or reverts (tree_forget_folders). */
static struct { int fd; char dir[PATH_MAX]; } kept = { -1, "" };

void tree_forget_folders(void)
{
    if (kept.fd >= 0) close(kept.fd);
    kept.fd = -1;
}

int tree_walk_kept(const char *path, char name[NAME_MAX + 1], int *owned, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    *owned = 0;
    if (path[0] && split(path, dir, sizeof dir, name) == 0) {
        if (kept.fd >= 0 && strcmp(dir, kept.dir) == 0) return kept.fd;
        int fd = tree_walk(path, 0, name, err, errlen);
        if (fd < 0) return -1;
        tree_forget_folders();
        kept.fd = fd;
        memcpy(kept.dir, dir, strlen(dir) + 1);
        return fd;
    }
    *owned = 1;
    return tree_walk(path, 0, name, err, errlen);
}

int tree_walk_at(int dfd, const char *rel, char name[NAME_MAX + 1])
{
    int fd = dup(dfd);
    if (fd < 0) return -1;
    const char *p = rel;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 0 || n > NAME_MAX) { close(fd); errno = n ? ENAMETOOLONG : EINVAL; return -1; }
        if (!slash) { memcpy(name, p, n); name[n] = '\0'; return fd; }
        char comp[NAME_MAX + 1];
        memcpy(comp, p, n);
        comp[n] = '\0';
        int nfd = openat(fd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        close(fd);
        if (nfd < 0) { errno = e == ENOTDIR ? ELOOP : e; return -1; }
        fd = nfd;
        p = slash + 1;
    }
}

/* the whole path in one openat2 when no link is on it (the usual case):
 * a descriptor, or -1 with errno; ELOOP and ENOSYS: take the slow walk */
static int open_fast(const char *path, int flags, int follow_last)
{
    if (!path[0]) { errno = ENOENT; return -1; }
    int fd = openat2_nolinks(AT_FDCWD, path, flags | (follow_last ? 0 : O_NOFOLLOW));
    if (fd < 0 && (errno == EXDEV || errno == EAGAIN)) errno = ENOSYS;
    return fd;
}

int tree_open(const char *path, int flags, int follow_last, char *err, size_t errlen)
{
    int ffd = open_fast(path, flags, follow_last);
    if (ffd >= 0) return ffd;
    if (errno == ENOENT || errno == ENOTDIR) return fail_path(err, errlen, errno, path);
    if (errno != ELOOP && errno != ENOSYS) return fail_path(err, errlen, errno, path);
    char name[NAME_MAX + 1];
    for (int tries = 0; tries < 2; tries++) {
        int dfd = tree_walk(path, follow_last, name, err, errlen);
        if (dfd < 0) return -1;
        int fd = openat(dfd, name, flags | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        close(dfd);
        if (fd >= 0) {
            if (!follow_last || !(flags & O_PATH)) return fd;
            struct stat st;   /* O_PATH | O_NOFOLLOW opens a link as itself */
            if (fstat(fd, &st) == 0 && !S_ISLNK(st.st_mode)) return fd;
            close(fd);
            e = ELOOP;
        }
        /* a link put there since the walk looked: walk again, once */
        if (e != ELOOP || !follow_last) return fail_path(err, errlen, e, path);
    }
    return fail(err, errlen, ELOOP, "%s: changed while being opened (a link put in its place)", path);
}

int tree_open_regular(const char *path, char *err, size_t errlen)
{
    int fd = tree_open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY, 1, err, errlen);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) < 0) {   /* (st not filled: its mode is not looked at) */
        int e = errno;
        close(fd);
        return fail_path(err, errlen, e, path);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        if (S_ISDIR(st.st_mode)) return fail_path(err, errlen, EISDIR, path);
        return fail(err, errlen, EINVAL, "%s: not a regular file", path);
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}

int tree_stat(const char *path, int follow_last, struct stat *st, char *err, size_t errlen)
{
    int ffd = open_fast(path, O_PATH, follow_last);
    if (ffd >= 0) {
        int r = fstat(ffd, st), e = errno;
        close(ffd);
        if (r < 0) return fail_path(err, errlen, e, path);
        return 0;
    }
    if (errno == ENOENT || errno == ENOTDIR) return fail_path(err, errlen, errno, path);
    if (errno != ELOOP && errno != ENOSYS) return fail_path(err, errlen, errno, path);
    char name[NAME_MAX + 1];
    int dfd = tree_walk(path, follow_last, name, err, errlen);
    if (dfd < 0) return -1;
    int r = fstatat(dfd, name, st, AT_SYMLINK_NOFOLLOW);
    int e = errno;
    close(dfd);
    if (r < 0) return fail_path(err, errlen, e, path);
    if (follow_last && S_ISLNK(st->st_mode))   /* put there since the walk */
        return fail(err, errlen, ELOOP, "%s: changed while being read (a link put in its place)", path);
    return 0;
}

/* ---- changes through a descriptor */

int tree_chmod_fd(int fd, mode_t mode)
{
    tree_forget_folders();
    /* fchmod needs a real descriptor: /proc/self/fd names this very inode
     * for an O_PATH one too */
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    return chmod(proc, mode);
}

int tree_set_attrs_at(int dirfd, const char *name, const char *shown, long uid, long gid, int mode,
                      const char *expect, char *err, size_t errlen)
{
    tree_forget_folders();
    int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return fail_path(err, errlen, errno, shown);
    struct stat st;
    int rc = 0, e = 0;
    if (fstat(fd, &st) < 0) { e = errno; goto out; }
    if (expect) {
        char id[64];
        tree_identity(&st, id, sizeof id);
        if (strcmp(id, expect) != 0) {
            e = ESTALE;
            snprintf(err, errlen, "%s: replaced by another file since it was looked at: its mode and owner are "
                     "not changed", shown);
            rc = -1;
            goto out;
        }
    }
    if (S_ISLNK(st.st_mode)) {
        e = ELOOP;
        snprintf(err, errlen, "%s: a symbolic link: its mode and owner are not changed through it", shown);
        rc = -1;
        goto out;
    }
    if (S_ISREG(st.st_mode) && st.st_nlink > 1) {
        e = EMLINK;
        snprintf(err, errlen, "%s: has %ld hard links: its mode and owner are not changed in place "
                 "(another name of it may be any file)", shown, (long)st.st_nlink);
        rc = -1;
        goto out;
    }
    if ((uid >= 0 && (uid_t)uid != st.st_uid) || (gid >= 0 && (gid_t)gid != st.st_gid)) {
        if (fchownat(fd, "", (uid_t)uid, (gid_t)gid, AT_EMPTY_PATH) < 0) { e = errno; goto out; }
        if (fstat(fd, &st) < 0) { e = errno; goto out; }
    }
    if (mode >= 0 && (st.st_mode & 07777) != (mode_t)mode) {
        if (tree_chmod_fd(fd, (mode_t)mode) < 0) {
            e = errno;
            /* no /proc: a real descriptor of the same inode, where one opens */
            int ofd = e == ENOENT && (S_ISDIR(st.st_mode) || S_ISREG(st.st_mode))
                      ? openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY) : -1;
            struct stat os;
            if (ofd >= 0 && fstat(ofd, &os) == 0 && os.st_dev == st.st_dev && os.st_ino == st.st_ino
                && fchmod(ofd, (mode_t)mode) == 0)
                e = 0;
            else if (ofd >= 0)
                e = errno ? errno : e;
            if (ofd >= 0) close(ofd);
            if (e) goto out;
        }
    }
out:
    close(fd);
    if (e && !rc) { rc = -1; snprintf(err, errlen, "%s: %s", shown, why(e)); }
    errno = e;
    return rc;
}

int tree_mkdir_at(int dirfd, const char *name, const char *shown, int mode, char *err, size_t errlen)
{
    tree_forget_folders();
    if (mkdirat(dirfd, name, (mode_t)(mode & 0777)) < 0) return fail_path(err, errlen, errno, shown);
    /* the umask filtered it: say exactly what was asked, on the new folder */
    return tree_set_attrs_at(dirfd, name, shown, -1, -1, mode, NULL, err, errlen);
}

int tree_mkdirs(const char *path, int mode, char *err, size_t errlen)
{
    tree_forget_folders();
    size_t len = strlen(path);
    if (len == 0) return fail(err, errlen, ENOENT, "an empty path");
    char *p = strdup(path);
    if (!p) return fail(err, errlen, ENOMEM, "out of memory");
    int rc = 0;
    for (char *s = p + 1; ; s++) {
        if (*s != '/' && *s != '\0') continue;
        char c = *s;
        *s = '\0';
        int last = c == '\0' || s[1 + strspn(s + 1, "/")] == '\0';
        struct stat st;
        if (tree_stat(p, 1, &st, err, errlen) < 0) {
            char name[NAME_MAX + 1];
            int dfd = errno == ENOENT ? tree_walk(p, 0, name, err, errlen) : -1;
            int r = dfd >= 0 ? tree_mkdir_at(dfd, name, p, last ? mode : 0755, err, errlen) : -1;
            if (r < 0 && errno == EEXIST) r = 0;   /* raced: made by another run */
            if (dfd >= 0) close(dfd);
            if (r < 0) { rc = -1; break; }
        } else if (!S_ISDIR(st.st_mode)) {
            rc = fail_path(err, errlen, ENOTDIR, p);
            break;
        }
        *s = c;
        if (c == '\0') break;
    }
    int e = errno;
    free(p);
    errno = e;
    return rc;
}

/* ---- listings */

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int tree_names(int dfd, int sorted, char ***out, size_t *nout)
{
    *out = NULL; *nout = 0;
    int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    DIR *d = fdopendir(fd);
    if (!d) { int e = errno; close(fd); errno = e; return -1; }
    char **v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    int rc = 0;
    errno = 0;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **nv = realloc(v, ncap * sizeof *nv);
            if (!nv) { rc = -1; errno = ENOMEM; break; }
            v = nv; cap = ncap;
        }
        if (!(v[n] = strdup(de->d_name))) { rc = -1; errno = ENOMEM; break; }
        n++;
        errno = 0;
    }
    int e = errno;
    closedir(d);
    if (rc < 0 || e) { tree_free_names(v, n); errno = e ? e : ENOMEM; return -1; }
    if (sorted && n > 1) qsort(v, n, sizeof *v, by_name);
    *out = v; *nout = n;
    return 0;
}

void tree_free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* ---- removal */

/* shown: a growable text of the path, for messages */
typedef struct { char *p; size_t len, cap; } path_text;

static int text_push(path_text *t, const char *name)
{
    size_t nl = strlen(name);
    if (t->len + nl + 2 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->len + nl + 2) cap *= 2;
        char *np = realloc(t->p, cap);
        if (!np) return -1;
        t->p = np; t->cap = cap;
    }
    t->p[t->len] = '/';
    memcpy(t->p + t->len + 1, name, nl + 1);
    t->len += nl + 1;
    return 0;
}

int tree_open_to_others(const struct stat *st)
{
    return !tree_trusted_uid(st->st_uid) || ((st->st_mode & 022) && !(st->st_mode & S_ISVTX));
}

/* dirfd (a folder) lets others put a folder of root's or ours under a name
 * we mean to remove whole: refuse it. 0 or -1 (EPERM, err set) */
static int guard_tree(int dirfd, const struct stat *st, const char *shown, char *err, size_t errlen)
{
    struct stat ds;
    if (!tree_trusted_uid(st->st_uid) || fstat(dirfd, &ds) < 0 || !tree_open_to_others(&ds)) return 0;
    return fail(err, errlen, EPERM, "%s: not removed: it is a folder in a folder other users can change "
                "(owner uid %ld, mode %04o), so it may not be the one meant; remove it by hand",
                shown, (long)ds.st_uid, (unsigned)(ds.st_mode & 07777));
}

static int remove_walk(int dirfd, const char *name, path_text *shown, int depth, int max_depth,
                       int flags, char *err, size_t errlen)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT) return 0;
        return fail(err, errlen, errno, "%s: %s", shown->p, why(errno));
    }
    if (!S_ISDIR(st.st_mode)) {
        if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
            return fail(err, errlen, errno, "%s: %s", shown->p, why(errno));
        return 0;
    }
    if (!(flags & TREE_OURS) && guard_tree(dirfd, &st, shown->p, err, errlen) < 0) return -1;
    if (depth >= max_depth) return fail(err, errlen, EMFILE, "%s: too deep to remove (%d levels)", shown->p, depth);
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == EACCES) {
        /* a folder we made read-only or unreadable (an archive's modes):
         * ours to open, through its descriptor, never a link's */
        int pfd = openat(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (pfd >= 0) {
            if (tree_chmod_fd(pfd, (st.st_mode & 07777) | 0700) == 0)
                fd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            close(pfd);
        }
    }
    if (fd < 0) return fail(err, errlen, errno, "%s: %s", shown->p, why(errno));
    if ((st.st_mode & 0300) != 0300)   /* to unlink its entries */
        tree_chmod_fd(fd, (st.st_mode & 07777) | 0700);
    char **names = NULL;
    size_t nnames = 0;
    if (tree_names(fd, 0, &names, &nnames) < 0) {
        int e = errno;
        close(fd);
        return fail(err, errlen, e, "%s: %s", shown->p, why(e));
    }
    int rc = 0;
    size_t len = shown->len;
    for (size_t i = 0; i < nnames && rc == 0; i++) {
        if ((flags & TREE_INTERRUPTIBLE) && provision_interrupted()) {
            rc = fail(err, errlen, EINTR, "%s: interrupted", shown->p);
            break;
        }
        if (text_push(shown, names[i]) < 0) { rc = fail(err, errlen, ENOMEM, "out of memory"); break; }
        rc = remove_walk(fd, names[i], shown, depth + 1, max_depth, flags, err, errlen);
        shown->len = len;
        shown->p[len] = '\0';
    }
    tree_free_names(names, nnames);
    close(fd);
    if (rc == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        rc = fail(err, errlen, errno, "%s: %s", shown->p, why(errno));
    return rc;
}

int tree_remove_at(int dirfd, const char *name, const char *shown, int flags, char *err, size_t errlen)
{
    tree_forget_folders();
    if (!name[0] || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return fail(err, errlen, EINVAL, "refusing to remove %s: it ends in . or ..", shown);
    if (!(flags & TREE_RECURSIVE)) {
        struct stat st;
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT) return 0;
            return fail_path(err, errlen, errno, shown);
        }
        if (unlinkat(dirfd, name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) < 0 && errno != ENOENT)
            return fail_path(err, errlen, errno, shown);
        return 0;
    }
    /* a descriptor per level: as deep as the descriptor limit allows */
    struct rlimit rl;
    int max_depth = 1000;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur > 64)
        max_depth = (int)(rl.rlim_cur - 48);
    path_text t = { 0 };
    size_t sl = strlen(shown);
    if (!(t.p = malloc(sl + 256))) return fail(err, errlen, ENOMEM, "out of memory");
    memcpy(t.p, shown, sl + 1);
    t.len = sl; t.cap = sl + 256;
    int rc = remove_walk(dirfd, name, &t, 0, max_depth, flags, err, errlen);
    int e = errno;
    free(t.p);
    errno = e;
    return rc;
}

/* ---- names nobody can plant first */

/* random bytes come from getrandom() a pool at a time (one call for
 * about twenty names, not one per name: a first apply writes thousands);
 * a pool per thread */
static void random_bytes(unsigned char *r, size_t n)
{
    static _Thread_local unsigned char pool[256];
    static _Thread_local size_t left;
    while (n > 0) {
        if (left == 0) {
            size_t got = 0;
            while (got < sizeof pool) {
                ssize_t k = getrandom(pool + got, sizeof pool - got, 0);
                if (k < 0) {
                    if (errno == EINTR) continue;
                    /* no entropy source: O_EXCL still makes the create safe */
                    for (; got < sizeof pool; got++) pool[got] = (unsigned char)(rand() ^ (got * 131));
                    break;
                }
                got += (size_t)k;
            }
            left = sizeof pool;
        }
        size_t take = n < left ? n : left;
        memcpy(r, pool + sizeof pool - left, take);
        memset(pool + sizeof pool - left, 0, take);   /* each byte given once */
        left -= take;
        r += take;
        n -= take;
    }
}

void tree_random_name(char *out, size_t n)
{
    static const char abc[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char r[64];
    if (n > sizeof r) n = sizeof r;
    if (n == 0) return;
    random_bytes(r, n - 1);
    for (size_t i = 0; i < n - 1; i++) out[i] = abc[r[i] % (sizeof abc - 1)];
    out[n - 1] = '\0';
}

static int temp_name(const char *prefix, char out[NAME_MAX + 1])
{
    char rnd[13];
    tree_random_name(rnd, sizeof rnd);
    size_t pl = strlen(prefix);
    if (pl + 1 + 12 > NAME_MAX) pl = NAME_MAX - 13;   /* a long name: its start */
    memcpy(out, prefix, pl);
    out[pl] = '.';
    memcpy(out + pl + 1, rnd, 13);
    return 0;
}

int tree_create_temp(int dirfd, const char *prefix, int mode, char out[NAME_MAX + 1], char *err, size_t errlen)
{
    for (int tries = 0; tries < 100; tries++) {
        temp_name(prefix, out);
        int fd = openat(dirfd, out, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)mode);
        if (fd >= 0) return fd;
        if (errno != EEXIST) return fail_path(err, errlen, errno, out);
    }
    return fail(err, errlen, EEXIST, "%s: cannot find a free temporary name", prefix);
}

int tree_mkdir_temp(int dirfd, const char *prefix, int mode, char out[NAME_MAX + 1], char *err, size_t errlen)
{
    tree_forget_folders();
    for (int tries = 0; tries < 100; tries++) {
        temp_name(prefix, out);
        if (mkdirat(dirfd, out, (mode_t)mode) == 0) return 0;
        if (errno != EEXIST) return fail_path(err, errlen, errno, out);
    }
    return fail(err, errlen, EEXIST, "%s: cannot find a free temporary name", prefix);
}

void tree_sync_dir(int dirfd)
{
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) { fsync(fd); close(fd); }
}

void tree_identity(const struct stat *st, char *out, size_t n)
{
    snprintf(out, n, "%llu:%llu", (unsigned long long)st->st_dev, (unsigned long long)st->st_ino);
}
