/* extract.c: archive.extract, and what undoes and checks it.
 *
 *   archive.stage{ dest, name } -> id | nil, message
 *     Makes the staging folder `name` (0700: a name the caller picked
 *     nobody can guess, and recorded first) beside dest, in the folder of
 *     dest reached as core/tree.h says; its "device:inode", which the caller
 *     records too: a killed run leaves it for the next one to remove, and
 *     only that very folder is removed.
 *   archive.extract{ src, dest, staging, staging_id, strip_components=0,
 *                    owner=false, max_size=, max_entries= }
 *     -> { entries, bytes, created_dest, dest_id, files = { rel = code } }
 *      | nil, message
 *     Extracts tar, tar.gz, tar.bz2, tar.xz, tar.zst, zip (what libarchive
 *     reads) into that staging folder (refused when it is not that very
 *     one). The extraction runs with the working folder
 *     inside the staging folder (fchdir), so every path libarchive and the
 *     checks below use is relative to it, and then moves the result into
 *     place through descriptors: dest itself when it did not exist, else
 *     entry by entry (an existing entry is replaced; folders merge; a link
 *     already in dest is replaced, never followed).
 *     A hostile archive fails before anything reaches dest:
 *       - an entry (or hard link target) with an absolute path or a '..'
 *         component, or a name that is not UTF-8 (the state is JSON);
 *       - a symlink whose target is absolute, or that resolves, following
 *         the other symlinks of the archive, to somewhere outside dest;
 *       - writing through a symlink (libarchive's SECURE_SYMLINKS);
 *       - more than max_size bytes or max_entries entries in all (a small
 *         archive may expand to gigabytes): 0 is no limit.
 *     The staging folder is removed on every failure (and on SIGINT/SIGTERM).
 *     Folders get the archive's modes, read-only ones too: staged folders
 *     stay u+rwx until everything moved (and are walked for symlinks even
 *     when the archive makes them unreadable), a read-only folder already in
 *     dest is opened while it takes entries; as non-root too.
 *     owner = false (the default: an untrusted, downloaded archive): entries
 *     are owned by the user extracting, setuid/setgid bits are dropped
 *     (mode & 01777), and a device file, FIFO or socket entry fails the
 *     extraction naming it, before anything reaches dest: as root, such an
 *     archive would otherwise plant a crw-rw-rw- /dev/mem or a setuid-root
 *     shell. owner = true trusts the archive (an image root filesystem):
 *     owners and setuid/setgid bits as recorded, and device files and FIFOs
 *     are created (devices need root: else the entry fails).
 *     files: every entry that reached dest, by its path under dest, with a
 *     code: "f" (file), "l" (link), "o" (other) and its stamp (digest.h), or
 *     "d" (folder) and its device:inode; "=" in front when something was
 *     there before (replaced, or a folder merged into): not the extract's
 *     own. dest_id: dest's device:inode.
 *   archive.unextract{ dest, dest_id, files, created_dest }
 *     -> { removed = n, left = { "rel: why", ... }, nleft = n }
 *     What an extract placed, removed while it is the very thing placed
 *     (same stamp: an edited file is left), folders only when empty (a
 *     folder holding files it did not make is left), deepest first, never
 *     following a link below dest, dest itself only when the extract made
 *     it and it is empty, and only while dest is the folder extracted into.
 *   archive.verify{ dest, files } -> true | false, why
 *     Is every entry still there as placed (a no-op check: drift)?
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "lazy_archive.h"
#include "digest.h"
#include "tree.h"
#include "archive.h"

/* the names in folder path (never through a symlink) */
static int read_names(const char *path, char ***out, size_t *nout)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) { *out = NULL; *nout = 0; return -1; }
    return archive_names_of(fd, 0, out, nout);
}

static int read_names_fd(int dfd, char ***out, size_t *nout) { return archive_names(dfd, 0, out, nout); }
#define free_names archive_free_names

/* is a relative path, with no '..' component? */
static const char *unsafe_path(const char *p)
{
    if (!*p) return "an empty path";
    if (p[0] == '/') return "an absolute path";
    const char *s = p;
    while (*s) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 2 && s[0] == '.' && s[1] == '.') return "a '..' component";
        if (!e) break;
        s = e + 1;
    }
    return NULL;
}

/* a device file, FIFO or socket: what it is; else NULL */
static const char *special_file(mode_t type)
{
    switch (type & AE_IFMT) {
    case AE_IFCHR: return "character device";
    case AE_IFBLK: return "block device";
    case AE_IFIFO: return "FIFO";
    case AE_IFSOCK: return "socket";
    default: return NULL;
    }
}

/* p without its first n components (NULL when nothing is left) */
static const char *strip(const char *p, int n)
{
    while (*p == '/') p++;
    while (n-- > 0) {
        const char *e = strchr(p, '/');
        if (!e) return NULL;
        p = e + 1;
        while (*p == '/') p++;
    }
    while (p[0] == '.' && p[1] == '/') p += 2;   /* "./x" is "x" */
    return *p && strcmp(p, ".") != 0 ? p : NULL;
}

/* Does the symlink at root/rel resolve (following symlinks inside root,
 * '..' never above root) to somewhere inside root? 0 yes, -1 no (why in err) */
static int link_inside(const char *root, const char *rel, char *err, size_t errlen)
{
    /* a work list of components still to walk, and the resolved stack */
    char todo[PATH_MAX * 2], cur[PATH_MAX];
    size_t depth_len[256];
    int depth = 0, hops = 0;
    char target[PATH_MAX];
    char full[PATH_MAX * 2];
    archive_say(full, sizeof full, "%s/%s", root, rel);
    ssize_t n = readlink(full, target, sizeof target - 1);
    if (n < 0) { archive_say(err, errlen, "%s: %s", rel, strerror(errno)); return -1; }
    target[n] = '\0';
    if (target[0] == '/') {
        archive_say(err, errlen, "symlink '%s' points to the absolute path '%s'", rel, target);
        return -1;
    }
    /* start in the link's folder */
    cur[0] = '\0';
    size_t curlen = 0;
    {
        char dir[PATH_MAX];
        archive_say(dir, sizeof dir, "%s", rel);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = '\0'; else dir[0] = '\0';
        archive_say(todo, sizeof todo, "%s%s%s", dir, *dir ? "/" : "", target);
    }
    /* the link's own folder components are walked too: they are inside */
    char *rest = todo;
    while (rest && *rest) {
        char *e = strchr(rest, '/');
        if (e) *e = '\0';
        char *comp = rest;
        rest = e ? e + 1 : NULL;
        if (!*comp || strcmp(comp, ".") == 0) continue;
        if (strcmp(comp, "..") == 0) {
            if (depth == 0) {
                archive_say(err, errlen, "symlink '%s' -> '%s' leads outside the destination", rel, target);
                return -1;
            }
            curlen = depth_len[--depth];
            cur[curlen] = '\0';
            continue;
        }
        if (depth >= 255 || curlen + strlen(comp) + 2 >= sizeof cur) {
            archive_say(err, errlen, "symlink '%s': path too deep", rel);
            return -1;
        }
        depth_len[depth++] = curlen;
        curlen += (size_t)snprintf(cur + curlen, sizeof cur - curlen, "%s%s", curlen ? "/" : "", comp);
        archive_say(full, sizeof full, "%s/%s", root, cur);
        struct stat st;
        if (lstat(full, &st) == 0 && S_ISLNK(st.st_mode)) {
            if (++hops > 40) {
                archive_say(err, errlen, "symlink '%s': too many levels of symlinks", rel);
                return -1;
            }
            char t2[PATH_MAX];
            ssize_t m = readlink(full, t2, sizeof t2 - 1);
            if (m < 0) continue;
            t2[m] = '\0';
            if (t2[0] == '/') {
                archive_say(err, errlen, "symlink '%s' leads through '%s' to the absolute path '%s'", rel, cur, t2);
                return -1;
            }
            /* replace the link component by its target, then the rest */
            curlen = depth_len[--depth];
            cur[curlen] = '\0';
            char next[PATH_MAX * 2];
            archive_say(next, sizeof next, "%s%s%s", t2, rest ? "/" : "", rest ? rest : "");
            archive_say(todo, sizeof todo, "%s", next);
            rest = todo;
        }
    }
    return 0;
}

/* After extraction, before anything moves: every entry below path (a
 * folder, len bytes of a PATH_MAX buffer; rootlen: the staging folder's)
 * loses its setuid/setgid bits unless owner (the archive is trusted), and
 * every folder is made u+rwx, its mode to have in dest kept in j->dirs: a
 * read-only folder must be walked (for symlinks), emptied when merged or
 * removed, and moved (a rename into another folder writes its '..').
 * -1 with the reason in j->err. */
static int settle(archive_job *j, char *path, size_t len, size_t rootlen, int owner)
{
    char **names;
    size_t n;
    if (read_names(path, &names, &n) < 0) {
        archive_say(j->err, sizeof j->err, "%s: %s", path, strerror(errno));
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        size_t nl = strlen(names[i]);
        if (len + 1 + nl >= PATH_MAX) {
            archive_say(j->err, sizeof j->err, "%s/%s: %s", path, names[i], strerror(ENAMETOOLONG));
            rc = -1;
            break;
        }
        path[len] = '/';
        memcpy(path + len + 1, names[i], nl + 1);
        struct stat st;
        if (lstat(path, &st) < 0) {
            archive_say(j->err, sizeof j->err, "%s: %s", path, strerror(errno));
            rc = -1;
        } else if (!S_ISLNK(st.st_mode)) {
            mode_t want = st.st_mode & (owner ? 07777 : 01777);
            mode_t now = S_ISDIR(st.st_mode) ? want | 0700 : want;
            if (S_ISDIR(st.st_mode)) {
                if (j->ndirs == j->capdirs) {
                    size_t cap = j->capdirs ? j->capdirs * 2 : 16;
                    dir_mode *nd = realloc(j->dirs, cap * sizeof *nd);
                    if (!nd) { archive_say(j->err, sizeof j->err, "out of memory"); rc = -1; goto next; }
                    j->dirs = nd; j->capdirs = cap;
                }
                dir_mode *dm = &j->dirs[j->ndirs];
                dm->dev = st.st_dev; dm->ino = st.st_ino; dm->mode = want; dm->merged = 0;
                if (!(dm->rel = strdup(path + rootlen + 1))) {
                    archive_say(j->err, sizeof j->err, "out of memory"); rc = -1; goto next;
                }
                j->ndirs++;
            }
            if (now != (st.st_mode & 07777) && chmod(path, now) < 0) {
                archive_say(j->err, sizeof j->err, "%s: %s", path, strerror(errno));
                rc = -1;
            } else if (S_ISDIR(st.st_mode)) {
                rc = settle(j, path, len + 1 + nl, rootlen, owner);
            }
        }
    next:
        path[len] = '\0';
    }
    free_names(names, n);
    return rc;
}

static const archive_job *byino_job;
static int byino_cmp(const void *a, const void *b)
{
    const dir_mode *x = &byino_job->dirs[*(const size_t *)a], *y = &byino_job->dirs[*(const size_t *)b];
    if (x->dev != y->dev) return x->dev < y->dev ? -1 : 1;
    return x->ino < y->ino ? -1 : x->ino > y->ino;
}

static int index_dirs(archive_job *j)
{
    if (!j->ndirs) return 0;
    if (!(j->byino = malloc(j->ndirs * sizeof *j->byino))) return -1;
    for (size_t i = 0; i < j->ndirs; i++) j->byino[i] = i;
    byino_job = j;
    qsort(j->byino, j->ndirs, sizeof *j->byino, byino_cmp);
    return 0;
}

static dir_mode *find_dir(archive_job *j, const struct stat *st)
{
    size_t lo = 0, hi = j->ndirs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        dir_mode *d = &j->dirs[j->byino[mid]];
        if (d->dev == st->st_dev && d->ino == st->st_ino) return d;
        if (d->dev < st->st_dev || (d->dev == st->st_dev && d->ino < st->st_ino)) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

static archive_job *check_links_job;
static int check_links_root_len;

static int check_link_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)ftw;
    archive_job *j = check_links_job;
    if (flag == FTW_DNR || flag == FTW_NS) {   /* a folder not walked hides its symlinks */
        archive_say(j->err, sizeof j->err, "'%s' cannot be checked: %s", p + check_links_root_len + 1, strerror(errno));
        return 1;
    }
    if (flag != FTW_SL && !(sb && S_ISLNK(sb->st_mode))) return 0;
    return link_inside(".", p + check_links_root_len + 1, j->err, sizeof j->err) < 0 ? 1 : 0;
}


/* ---- into place, through descriptors */

/* remember that rel reached dest (existed: something was there) */
static int note_placed(archive_job *j, const char *rel, int existed)
{
    if (j->nplaced == j->capplaced) {
        size_t cap = j->capplaced ? j->capplaced * 2 : 64;
        placed *np = realloc(j->placed, cap * sizeof *np);
        if (!np) return -1;
        j->placed = np; j->capplaced = cap;
    }
    if (!(j->placed[j->nplaced].rel = strdup(rel))) return -1;
    j->placed[j->nplaced++].existed = existed;
    return 0;
}

/* rel (a/b/c) under dfd: the folder holding its last component, walked one
 * component at a time with O_NOFOLLOW (a link on the way: ELOOP), and that
 * component in base. A new descriptor, or -1 with errno. */
static int rel_parent(int dfd, const char *rel, char base[NAME_MAX + 1])
{
    int fd = dup(dfd);
    if (fd < 0) return -1;
    const char *p = rel;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 0 || n > NAME_MAX) { close(fd); errno = n ? ENAMETOOLONG : EINVAL; return -1; }
        if (!slash) { memcpy(base, p, n); base[n] = '\0'; return fd; }
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

/* Before anything moves into an existing dest: an entry whose kind cannot
 * take the place of what dest has there stops the extract with nothing
 * changed. A folder of the archive where dest has a file or a link cannot
 * go there (the rename fails half-way through the merge), and a file of the
 * archive where dest has a folder would delete that folder and all in it
 * (tar refuses that too). Files over files are replaced, folders merge.
 * sdir/ddir: the staged and the dest folder holding name; shown: for
 * messages. 0, or -1 with j->err set. */
static int find_conflict(archive_job *j, int sdir, int ddir, const char *name, const char *shown)
{
    struct stat ss, ds;
    if (fstatat(ddir, name, &ds, AT_SYMLINK_NOFOLLOW) < 0) return 0;   /* nothing there: it moves in */
    if (fstatat(sdir, name, &ss, AT_SYMLINK_NOFOLLOW) < 0) {
        archive_say(j->err, sizeof j->err, "%s: %s", shown, strerror(errno));
        return -1;
    }
    int sd = S_ISDIR(ss.st_mode), dd = S_ISDIR(ds.st_mode);
    if (sd && !dd) {
        archive_say(j->err, sizeof j->err, "%s is a %s where the archive has a folder; nothing was extracted "
                    "(move it away, or extract elsewhere)", shown, S_ISLNK(ds.st_mode) ? "symbolic link" : "file");
        return -1;
    }
    if (!sd && dd) {
        archive_say(j->err, sizeof j->err, "%s is a folder where the archive has a %s; nothing was extracted "
                    "(move it away, or extract elsewhere)", shown, S_ISLNK(ss.st_mode) ? "symbolic link" : "file");
        return -1;
    }
    if (!sd) return 0;
    int s2 = openat(sdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int d2 = openat(ddir, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    char **names = NULL;
    size_t n = 0;
    int rc = 0;
    if (s2 < 0 || d2 < 0 || read_names_fd(s2, &names, &n) < 0) {
        archive_say(j->err, sizeof j->err, "%s: %s", shown, strerror(errno));
        rc = -1;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        char sub[PATH_MAX];
        archive_say(sub, sizeof sub, "%s/%s", shown, names[i]);
        rc = find_conflict(j, s2, d2, names[i], sub);
    }
    free_names(names, n);
    if (s2 >= 0) close(s2);
    if (d2 >= 0) close(d2);
    return rc;
}

/* chmod through a descriptor (an O_PATH one: through /proc) */
static int fd_chmod(int fd, mode_t mode)
{
    char proc[64];
    archive_say(proc, sizeof proc, "/proc/self/fd/%d", fd);
    return chmod(proc, mode);
}

/* rename sdir/name over ddir/name, merging folders, never following a
 * link in dest; rel: its path under dest. A folder already in dest that
 * is read-only is opened (u+rwx) to take entries, and given back its mode
 * if the merge fails (restore_modes gives the archive's once everything
 * moved). */
static int move_into(archive_job *j, int sdir, int ddir, const char *name, const char *rel)
{
    char *err = j->err;
    size_t errlen = sizeof j->err;
    struct stat ss, ds;
    if (provision_interrupted()) { archive_say(err, errlen, "interrupted"); return -1; }
    if (fstatat(sdir, name, &ss, AT_SYMLINK_NOFOLLOW) < 0) { archive_say(err, errlen, "%s: %s", rel, strerror(errno)); return -1; }
    int there = fstatat(ddir, name, &ds, AT_SYMLINK_NOFOLLOW) == 0;
    if (!there && errno != ENOENT) { archive_say(err, errlen, "%s: %s", rel, strerror(errno)); return -1; }
    if (there && S_ISDIR(ss.st_mode) && S_ISDIR(ds.st_mode)) {
        int s2 = openat(sdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int d2 = openat(ddir, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        char **names = NULL;
        size_t n = 0;
        if (s2 < 0 || d2 < 0 || read_names_fd(s2, &names, &n) < 0) {
            archive_say(err, errlen, "%s: %s", rel, strerror(errno));
            if (s2 >= 0) close(s2);
            if (d2 >= 0) close(d2);
            return -1;
        }
        int opened = (ds.st_mode & 0700) != 0700;
        int rc = 0;
        if (opened && fd_chmod(d2, (ds.st_mode & 07777) | 0700) < 0) {
            archive_say(err, errlen, "%s: %s", rel, strerror(errno));
            rc = -1;
        }
        if (rc == 0 && note_placed(j, rel, 1) < 0) { archive_say(err, errlen, "out of memory"); rc = -1; }
        for (size_t i = 0; i < n && rc == 0; i++) {
            char sub[PATH_MAX];
            archive_say(sub, sizeof sub, "%s/%s", rel, names[i]);
            rc = move_into(j, s2, d2, names[i], sub);
        }
        free_names(names, n);
        if (rc && opened) fd_chmod(d2, ds.st_mode & 07777);
        if (rc == 0) {
            dir_mode *d = find_dir(j, &ss);
            if (d) d->merged = 1;
            else fd_chmod(d2, ss.st_mode & 07777);
        }
        close(s2);
        close(d2);
        return rc;
    }
    if (there && S_ISDIR(ds.st_mode)) {   /* find_conflict stops this before */
        archive_say(err, errlen, "%s is a folder where the archive has a file", rel);
        return -1;
    }
    if (renameat(sdir, name, ddir, name) < 0) { archive_say(err, errlen, "%s: %s", rel, strerror(errno)); return -1; }
    if (note_placed(j, rel, there) < 0) { archive_say(err, errlen, "out of memory"); return -1; }
    return 0;
}

/* The staged folders that reached dest (moved there, or merged into a
 * folder already there) get their modes, children before parents. */
static int restore_modes(archive_job *j, int destfd, int quiet)
{
    int rc = 0;
    for (size_t i = j->ndirs; i-- > 0;) {
        dir_mode *d = &j->dirs[i];
        char base[NAME_MAX + 1];
        int pfd = rel_parent(destfd, d->rel, base);
        if (pfd < 0) continue;
        struct stat st;
        if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)
            && (d->merged || (st.st_dev == d->dev && st.st_ino == d->ino))
            && (st.st_mode & 07777) != d->mode) {
            char err[TREE_ERR];
            if (tree_set_attrs_at(pfd, base, d->rel, -1, -1, (int)d->mode, NULL, err, sizeof err) < 0 && !rc) {
                if (!quiet) archive_say(j->err, sizeof j->err, "%s", err);
                rc = -1;
            }
        }
        close(pfd);
    }
    return rc;
}

/* ---- the manifest: files = { rel = code } */

/* A file with several names (an archive's hard links) is "h" and its stamp
 * without the ctime: removing one of its names changes the ctime of all. */
static void code_of(const struct stat *st, int existed, int linked, char *out, size_t n)
{
    char stamp[128];
    const char *eq = existed ? "=" : "";
    if (S_ISDIR(st->st_mode)) {
        tree_identity(st, stamp, sizeof stamp);
        archive_say(out, n, "%sd%s", eq, stamp);
    } else if (S_ISREG(st->st_mode) && linked) {
        archive_say(out, n, "%sh%llu:%llu:%lld:%lld.%ld", eq, (unsigned long long)st->st_dev,
                    (unsigned long long)st->st_ino, (long long)st->st_size,
                    (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
    } else {
        provision_stamp(st, stamp, sizeof stamp);
        archive_say(out, n, "%s%c%s", eq, S_ISREG(st->st_mode) ? 'f' : S_ISLNK(st->st_mode) ? 'l' : 'o', stamp);
    }
}

/* is what st describes the entry code recorded ("=" aside)? */
static int same_as_recorded(const struct stat *st, const char *code)
{
    char now[160];
    if (code[0] == '=') code++;
    code_of(st, 0, code[0] == 'h', now, sizeof now);
    return strcmp(now, code) == 0;
}

/* files[rel] = code for the entry at ddir/name and, for a new folder,
 * everything under it (all new); the table at index t. 0 or -1 (j->err) */
static int push_manifest(lua_State *L, archive_job *j, int t, int ddir, const char *name, const char *rel,
                         int existed, int depth)
{
    struct stat st;
    if (fstatat(ddir, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        archive_say(j->err, sizeof j->err, "%s: %s", rel, strerror(errno));
        return -1;
    }
    char code[160];
    code_of(&st, existed, S_ISREG(st.st_mode) && st.st_nlink > 1, code, sizeof code);
    lua_pushstring(L, code);
    lua_setfield(L, t, rel);
    if (!S_ISDIR(st.st_mode) || existed) return 0;
    if (depth > 4000) { archive_say(j->err, sizeof j->err, "%s: too deep", rel); return -1; }
    int fd = openat(ddir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    char **names = NULL;
    size_t n = 0;
    if (fd < 0 || read_names_fd(fd, &names, &n) < 0) {
        archive_say(j->err, sizeof j->err, "%s: %s", rel, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char sub[PATH_MAX];
        archive_say(sub, sizeof sub, "%s/%s", rel, names[i]);
        rc = push_manifest(L, j, t, fd, names[i], sub, 0, depth + 1);
    }
    free_names(names, n);
    close(fd);
    return rc;
}

/* ---- extract */

static lua_Integer opt_integer(lua_State *L, int t, const char *k)
{
    lua_getfield(L, t, k);
    lua_Integer v = luaL_optinteger(L, -1, 0);
    lua_pop(L, 1);
    if (v < 0) luaL_error(L, "archive.extract: %s must be >= 0", k);
    return v;
}

/* stage{ dest, name } -> the new staging folder's "device:inode" | nil, message:
 * made (0700) beside dest, in dest's folder reached as tree.h says */
int archive_stage(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *dest = archive_opt_string(L, 1, "dest", 1);
    const char *name = archive_opt_string(L, 1, "name", 1);
    if (!*name || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return luaL_error(L, "archive.stage: name must be a file name");
    char base[NAME_MAX + 1], err[TREE_ERR];
    int pfd = tree_walk(dest, 0, base, err, sizeof err);
    if (pfd < 0) { lua_pushnil(L); lua_pushstring(L, err); return 2; }
    struct stat st;
    int r = mkdirat(pfd, name, 0700), e = errno;
    if (r == 0 && fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) { r = -1; e = errno; }
    close(pfd);
    if (r < 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s (beside %s): %s", name, dest, strerror(e));
        return 2;
    }
    char id[64];
    tree_identity(&st, id, sizeof id);
    lua_pushstring(L, id);
    return 1;
}

int archive_extract(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    const char *src = archive_opt_string(L, 1, "src", 1);
    const char *dest = archive_opt_string(L, 1, "dest", 1);
    const char *staging = archive_opt_string(L, 1, "staging", 1);
    const char *staging_id = archive_opt_string(L, 1, "staging_id", 1);
    if (!*staging || strchr(staging, '/') || (staging[0] == '.' && (!staging[1] || (staging[1] == '.' && !staging[2]))))
        return luaL_error(L, "archive.extract: staging must be a file name");
    int strip_n = (int)opt_integer(L, 1, "strip_components");
    lua_Integer max_size = opt_integer(L, 1, "max_size"), max_entries = opt_integer(L, 1, "max_entries");
    lua_getfield(L, 1, "owner");
    int owner = lua_toboolean(L, -1);
    lua_pop(L, 1);
    archive_job *j = archive_job_new(L);     /* opts job */
    lua_Integer entries = 0;
    long long bytes = 0;
    int created_dest = 0, destfd = -1;
    char name[NAME_MAX + 1];

    j->pfd = tree_walk(dest, 0, name, j->err, sizeof j->err);
    if (j->pfd < 0) goto fail;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
        archive_say(j->err, sizeof j->err, "%s: not a folder name (it ends in . or ..)", dest);
        goto fail;
    }
    {   /* something that is not a folder at dest: said before any work */
        struct stat ds;
        size_t dl = strlen(dest);
        if (fstatat(j->pfd, name, &ds, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(ds.st_mode)) {
            if (dl > 0 && dest[dl - 1] == '/') archive_say(j->err, sizeof j->err, "%s: %s", dest, strerror(ENOTDIR));
            else archive_say(j->err, sizeof j->err, "%s: exists and is %s, not a folder", dest,
                             S_ISLNK(ds.st_mode) ? "a symbolic link" : "a file");
            goto fail;
        }
    }
    /* the staging folder archive.stage made beside dest (its name and
     * identity recorded): the very one, from here on the working folder */
    j->sfd = openat(j->pfd, staging, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    {
        struct stat ss;
        char id[64] = "";
        if (j->sfd >= 0 && fstat(j->sfd, &ss) == 0) tree_identity(&ss, id, sizeof id);
        if (j->sfd < 0 || strcmp(id, staging_id) != 0 || !tree_trusted_uid(ss.st_uid)) {
            archive_say(j->err, sizeof j->err, "%s (beside %s): %s", staging, dest,
                        j->sfd < 0 ? strerror(errno) : "not the staging folder made for this extraction");
            goto fail;
        }
    }
    archive_say(j->staging, sizeof j->staging, "%s", staging);
    j->cwdfd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (j->cwdfd < 0 || fchdir(j->sfd) < 0) {
        archive_say(j->err, sizeof j->err, "%s: %s", staging, strerror(errno));
        goto fail;
    }
    j->r = archive_read_new();
    j->w = archive_write_disk_new();
    if (!j->r || !j->w) { archive_say(j->err, sizeof j->err, "out of memory"); goto fail; }
    archive_read_support_filter_all(j->r);
    archive_read_support_format_all(j->r);
    int flags = ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_SECURE_NODOTDOT
              | ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS | ARCHIVE_EXTRACT_UNLINK;
    if (owner) flags |= ARCHIVE_EXTRACT_OWNER;
    archive_write_disk_set_options(j->w, flags);
    archive_write_disk_set_standard_lookup(j->w);
    {
        /* src as the caller named it: relative to the working folder the
         * run started in, not to the staging folder */
        int sfdsrc = src[0] == '/' ? tree_open_regular(src, j->err, sizeof j->err) : -1;
        if (src[0] != '/') {
            if (fchdir(j->cwdfd) < 0) { archive_say(j->err, sizeof j->err, "%s", strerror(errno)); goto fail; }
            sfdsrc = tree_open_regular(src, j->err, sizeof j->err);
            if (fchdir(j->sfd) < 0) { archive_say(j->err, sizeof j->err, "%s", strerror(errno)); if (sfdsrc >= 0) close(sfdsrc); goto fail; }
        }
        if (sfdsrc < 0) goto fail;
        j->fd = sfdsrc;
        if (archive_read_open_fd(j->r, j->fd, 65536) != ARCHIVE_OK) {
            archive_say(j->err, sizeof j->err, "%s: %s", src, archive_error_string(j->r));
            goto fail;
        }
    }
    for (;;) {
        struct archive_entry *e;
        int rc = archive_read_next_header(j->r, &e);
        if (rc == ARCHIVE_EOF) break;
        if (rc < ARCHIVE_WARN) {
            archive_say(j->err, sizeof j->err, "%s: %s", src, archive_error_string(j->r));
            goto fail;
        }
        if (provision_interrupted()) { archive_say(j->err, sizeof j->err, "interrupted"); goto fail; }
        /* copied: archive_entry_copy_pathname below frees the entry's own */
        char ename_buf[PATH_MAX];
        const char *ename = archive_entry_pathname(e);
        if (ename && strlen(ename) >= sizeof ename_buf - 1) {
            archive_say(j->err, sizeof j->err, "%s: refusing entry '%.200s...': its name is too long (%zu bytes)",
                        src, ename, strlen(ename));
            goto fail;
        }
        archive_say(ename_buf, sizeof ename_buf, "%s", ename ? ename : "");
        const char *why = ename ? unsafe_path(ename_buf) : "no name";
        if (!why && !provision_utf8_valid(ename_buf, strlen(ename_buf))) why = "a name that is not UTF-8";
        if (why) {
            archive_say(j->err, sizeof j->err, "%s: refusing a hostile archive: entry '%s' has %s", src, ename_buf, why);
            goto fail;
        }
        const char *hl = archive_entry_hardlink(e);
        if (hl && (why = unsafe_path(hl))) {
            archive_say(j->err, sizeof j->err, "%s: refusing a hostile archive: hard link '%s' -> '%s' has %s",
                        src, ename_buf, hl, why);
            goto fail;
        }
        const char *sl = archive_entry_symlink(e);
        if (sl && sl[0] == '/') {
            archive_say(j->err, sizeof j->err, "%s: refusing a hostile archive: symlink '%s' points to the absolute path '%s'",
                        src, ename_buf, sl);
            goto fail;
        }
        const char *rel = strip(ename_buf, strip_n);
        if (!rel) continue;
        const char *special = special_file(archive_entry_filetype(e));
        if (special && !owner) {
            archive_say(j->err, sizeof j->err, "%s: refusing entry '%s': it is a %s (device files, FIFOs "
                        "and sockets are extracted only with owner = true)", src, ename_buf, special);
            goto fail;
        }
        if (max_entries > 0 && entries >= max_entries) {
            archive_say(j->err, sizeof j->err, "%s: more than max_entries (%lld) entries; nothing was extracted "
                        "(raise max_entries to allow it)", src, (long long)max_entries);
            goto fail;
        }
        if (max_size > 0 && archive_entry_size(e) > max_size - bytes) {
            archive_say(j->err, sizeof j->err, "%s: entry '%s' would take it past max_size (%lld bytes); nothing "
                        "was extracted (raise max_size to allow it)", src, ename_buf, (long long)max_size);
            goto fail;
        }
        archive_entry_copy_pathname(e, rel);   /* relative to the staging folder */
        if (hl) {
            const char *hrel = strip(hl, strip_n);
            if (!hrel) continue;
            archive_entry_copy_hardlink(e, hrel);
        }
        rc = archive_write_header(j->w, e);
        if (rc < ARCHIVE_WARN) {
            archive_say(j->err, sizeof j->err, "%s: entry '%s': %s", src, ename_buf, archive_error_string(j->w));
            goto fail;
        }
        if (archive_entry_size(e) > 0) {
            const void *buf; size_t len; la_int64_t off;
            while ((rc = archive_read_data_block(j->r, &buf, &len, &off)) == ARCHIVE_OK) {
                if (max_size > 0 && (long long)len > max_size - bytes) {
                    archive_say(j->err, sizeof j->err, "%s: more than max_size (%lld bytes) in all; nothing was "
                                "extracted (raise max_size to allow it)", src, (long long)max_size);
                    goto fail;
                }
                if (archive_write_data_block(j->w, buf, len, off) < ARCHIVE_OK) {
                    archive_say(j->err, sizeof j->err, "%s: entry '%s': %s", src, ename_buf, archive_error_string(j->w));
                    goto fail;
                }
                bytes += (long long)len;
                if (provision_interrupted()) { archive_say(j->err, sizeof j->err, "interrupted"); goto fail; }
            }
            if (rc != ARCHIVE_EOF) {
                archive_say(j->err, sizeof j->err, "%s: entry '%s': %s", src, ename_buf, archive_error_string(j->r));
                goto fail;
            }
        }
        if (archive_write_finish_entry(j->w) < ARCHIVE_WARN) {
            archive_say(j->err, sizeof j->err, "%s: entry '%s': %s", src, ename_buf, archive_error_string(j->w));
            goto fail;
        }
        entries++;
    }
    if (archive_write_close(j->w) != ARCHIVE_OK) {   /* sets the folders' modes and times */
        archive_say(j->err, sizeof j->err, "%s: %s", dest, archive_error_string(j->w));
        goto fail;
    }
    {
        char walk_path[PATH_MAX] = ".";
        if (settle(j, walk_path, 1, 1, owner) < 0) goto fail;
        if (index_dirs(j) < 0) { archive_say(j->err, sizeof j->err, "out of memory"); goto fail; }
    }
    /* every symlink must stay inside, following the others */
    check_links_job = j;
    check_links_root_len = 1;
    j->err[0] = '\0';
    if (nftw(".", check_link_cb, 16, FTW_PHYS) != 0) {
        char why2[1024];
        archive_say(why2, sizeof why2, "%s", j->err[0] ? j->err : strerror(errno));
        archive_say(j->err, sizeof j->err, "%s: refusing a hostile archive: %s", src, why2);
        goto fail;
    }
    /* back to the working folder: what follows goes through descriptors */
    if (fchdir(j->cwdfd) < 0) { archive_say(j->err, sizeof j->err, "%s", strerror(errno)); goto fail; }
    close(j->cwdfd);
    j->cwdfd = -1;
    struct stat st;
    int have_dest = fstatat(j->pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (!have_dest && errno != ENOENT) {
        archive_say(j->err, sizeof j->err, "%s: %s", dest, strerror(errno));
        goto fail;
    }
    if (!have_dest) {
        mode_t um = umask(0); umask(um);
        if (fchmod(j->sfd, 0777 & ~um) < 0 || renameat(j->pfd, staging, j->pfd, name) < 0) {
            archive_say(j->err, sizeof j->err, "%s: %s", dest, strerror(errno));
            goto fail;
        }
        j->staging[0] = '\0';
        created_dest = 1;
        destfd = dup(j->sfd);   /* the staging folder is dest now */
        if (destfd < 0) { archive_say(j->err, sizeof j->err, "%s: %s", dest, strerror(errno)); goto fail; }
    } else if (!S_ISDIR(st.st_mode)) {
        archive_say(j->err, sizeof j->err, "%s: exists and is %s, not a folder", dest,
                    S_ISLNK(st.st_mode) ? "a symbolic link" : "a file");
        goto fail;
    } else {
        destfd = openat(j->pfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        char **names = NULL;
        size_t n = 0;
        if (destfd < 0 || read_names_fd(j->sfd, &names, &n) < 0) {
            archive_say(j->err, sizeof j->err, "%s: %s", dest, strerror(errno));
            goto fail;
        }
        int rc = 0;
        for (size_t i = 0; i < n && rc == 0; i++) {
            char shown[PATH_MAX];
            archive_say(shown, sizeof shown, "%s/%s", dest, names[i]);
            rc = find_conflict(j, j->sfd, destfd, names[i], shown);
        }
        for (size_t i = 0; i < n && rc == 0; i++) rc = move_into(j, j->sfd, destfd, names[i], names[i]);
        free_names(names, n);
        if (rc) {   /* what moved gets its modes all the same */
            restore_modes(j, destfd, 1);
            goto fail;
        }
    }
    /* the result, and the manifest of what reached dest */
    lua_createtable(L, 0, 5);                   /* opts job res */
    lua_pushinteger(L, entries);
    lua_setfield(L, -2, "entries");
    lua_pushinteger(L, (lua_Integer)bytes);
    lua_setfield(L, -2, "bytes");
    lua_pushboolean(L, created_dest);
    lua_setfield(L, -2, "created_dest");
    {
        struct stat ds;
        char id[64] = "";
        if (fstat(destfd, &ds) == 0) tree_identity(&ds, id, sizeof id);
        lua_pushstring(L, id);
        lua_setfield(L, -2, "dest_id");
    }
    lua_newtable(L);                            /* opts job res files */
    int t = lua_gettop(L);
    if (created_dest) {
        char **names = NULL;
        size_t n = 0;
        int dfd = openat(destfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int rc = dfd < 0 || read_names_fd(dfd, &names, &n) < 0 ? -1 : 0;
        if (rc) archive_say(j->err, sizeof j->err, "%s: %s", dest, strerror(errno));
        for (size_t i = 0; i < n && rc == 0; i++) rc = push_manifest(L, j, t, destfd, names[i], names[i], 0, 0);
        free_names(names, n);
        if (dfd >= 0) close(dfd);
        if (rc) { close(destfd); goto fail; }
    } else {
        for (size_t i = 0; i < j->nplaced; i++) {
            char base[NAME_MAX + 1];
            int pfd = rel_parent(destfd, j->placed[i].rel, base);
            int rc = pfd < 0 ? -1 : push_manifest(L, j, t, pfd, base, j->placed[i].rel, j->placed[i].existed, 0);
            if (pfd < 0) archive_say(j->err, sizeof j->err, "%s: %s", j->placed[i].rel, strerror(errno));
            if (pfd >= 0) close(pfd);
            if (rc) { close(destfd); goto fail; }
        }
    }
    lua_setfield(L, -2, "files");               /* opts job res */
    /* the folders' own modes last: read-only ones were walked above */
    if (restore_modes(j, destfd, 0) < 0) { close(destfd); goto fail; }
    close(destfd);
    archive_job_release(j);
    return 1;
fail:
    if (destfd >= 0) close(destfd);
    archive_job_release(j);
    lua_settop(L, 2);
    lua_pushnil(L);
    lua_pushstring(L, j->err);
    return 2;
}

/* ---- undoing and checking what an extract placed */

typedef struct { const char *rel; const char *code; int depth; } entry_ref;

static int by_depth(const void *a, const void *b)
{
    const entry_ref *x = a, *y = b;
    if (x->depth != y->depth) return y->depth - x->depth;   /* deepest first */
    return strcmp(y->rel, x->rel);
}

/* the manifest table at index t as an array (strings borrowed from it) */
static entry_ref *manifest_refs(lua_State *L, int t, size_t *n)
{
    size_t cap = 64, k = 0;
    entry_ref *v = malloc(cap * sizeof *v);
    if (!v) return NULL;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING) {
            if (k == cap) {
                entry_ref *nv = realloc(v, cap * 2 * sizeof *nv);
                if (!nv) { free(v); lua_pop(L, 2); return NULL; }
                v = nv; cap *= 2;
            }
            v[k].rel = lua_tostring(L, -2);
            v[k].code = lua_tostring(L, -1);
            int d = 0;
            for (const char *p = v[k].rel; *p; p++) d += *p == '/';
            v[k].depth = d;
            k++;
        }
        lua_pop(L, 1);
    }
    *n = k;
    return v;
}

/* dest's folder and dest, without following a link at dest; -1 with why */
static int open_dest(const char *dest, const char *dest_id, int *pfd, char name[NAME_MAX + 1], char *why, size_t n)
{
    *pfd = tree_walk(dest, 0, name, why, n);
    if (*pfd < 0) return -1;
    int fd = openat(*pfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ELOOP || errno == ENOTDIR)
            archive_say(why, n, "%s is not the folder extracted into (a link or a file now)", dest);
        else
            archive_say(why, n, "%s: %s", dest, strerror(errno));
        return -1;
    }
    struct stat st;
    char id[64];
    if (dest_id && *dest_id && fstat(fd, &st) == 0 && (tree_identity(&st, id, sizeof id), strcmp(id, dest_id) != 0)) {
        close(fd);
        archive_say(why, n, "%s is not the folder extracted into (replaced since)", dest);
        errno = ESTALE;
        return -1;
    }
    return fd;
}

int archive_unextract(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    const char *dest = archive_opt_string(L, 1, "dest", 1);
    const char *dest_id = archive_opt_string(L, 1, "dest_id", 0);
    lua_getfield(L, 1, "created_dest");
    int created_dest = lua_toboolean(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, 1, "files");
    luaL_checktype(L, -1, LUA_TTABLE);
    int t = lua_gettop(L);                      /* opts files */
    lua_newtable(L);                            /* opts files left */
    int lt = lua_gettop(L);
    lua_Integer removed = 0, nleft = 0;
    char name[NAME_MAX + 1], why[TREE_ERR];
    int pfd = -1;
    int destfd = open_dest(dest, dest_id, &pfd, name, why, sizeof why);
    if (destfd < 0) {
        if (pfd >= 0) close(pfd);
        if (errno == ENOENT) goto done;        /* gone already */
        lua_pushstring(L, why);
        lua_rawseti(L, lt, ++nleft);
        goto done;
    }
    size_t n = 0;
    entry_ref *v = manifest_refs(L, t, &n);
    if (!v) { close(destfd); close(pfd); return luaL_error(L, "archive.unextract: out of memory"); }
    qsort(v, n, sizeof *v, by_depth);
    for (size_t i = 0; i < n; i++) {
        if (provision_interrupted()) { free(v); close(destfd); close(pfd); lua_pushnil(L); lua_pushliteral(L, "interrupted"); return 2; }
        const char *code = v[i].code;
        if (code[0] == '=') continue;   /* it was there before: not the extract's */
        char base[NAME_MAX + 1];
        const char *reason = NULL;
        int dfd = rel_parent(destfd, v[i].rel, base);
        struct stat st;
        if (dfd < 0) {
            if (errno != ENOENT) reason = "reached through a link, or its folder replaced: not followed";
        } else if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno != ENOENT) reason = strerror(errno);
        } else {
            if (!same_as_recorded(&st, code)) {
                reason = code[0] == 'd' ? "not the folder it made (replaced since)" : "changed since it was extracted";
            } else if (unlinkat(dfd, base, code[0] == 'd' ? AT_REMOVEDIR : 0) == 0) {
                removed++;
            } else if (errno == ENOTEMPTY || errno == EEXIST) {
                reason = "holds files it did not make";
            } else if (errno != ENOENT) {
                reason = strerror(errno);
            }
        }
        if (dfd >= 0) close(dfd);
        if (reason) {
            if (nleft < 20) {
                lua_pushfstring(L, "%s/%s: %s", dest, v[i].rel, reason);
                lua_rawseti(L, lt, nleft + 1);
            }
            nleft++;
        }
    }
    free(v);
    close(destfd);
    if (created_dest) {
        if (unlinkat(pfd, name, AT_REMOVEDIR) == 0) removed++;
        else if (errno == ENOTEMPTY || errno == EEXIST) {
            if (nleft < 20) { lua_pushfstring(L, "%s: holds files it did not make", dest); lua_rawseti(L, lt, nleft + 1); }
            nleft++;
        }
    }
    close(pfd);
done:
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, removed);
    lua_setfield(L, -2, "removed");
    lua_pushvalue(L, lt);
    lua_setfield(L, -2, "left");
    lua_pushinteger(L, nleft);
    lua_setfield(L, -2, "nleft");
    return 1;
}

int archive_verify(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    const char *dest = archive_opt_string(L, 1, "dest", 1);
    lua_getfield(L, 1, "files");
    luaL_checktype(L, -1, LUA_TTABLE);
    char err[TREE_ERR];
    int dfd = tree_open(dest, O_PATH | O_DIRECTORY, 1, err, sizeof err);
    if (dfd < 0) {
        lua_pushboolean(L, 0);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING) {
            const char *rel = lua_tostring(L, -2), *code = lua_tostring(L, -1);
            if (code[0] == '=') code++;
            struct stat st;
            const char *why = NULL;
            if (fstatat(dfd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0) why = "is gone";
            else if (code[0] == 'd' ? !S_ISDIR(st.st_mode) : !same_as_recorded(&st, code))
                why = "changed since it was extracted";
            if (why) {
                close(dfd);
                lua_pushboolean(L, 0);
                lua_pushfstring(L, "%s/%s %s", dest, rel, why);
                return 2;
            }
        }
        lua_pop(L, 1);
    }
    close(dfd);
    lua_pushboolean(L, 1);
    return 1;
}
