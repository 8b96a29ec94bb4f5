/* archive.c: "provision._archive": safe extraction and reproducible
 * creation of archives through libarchive. The resources (archive.extract,
 * archive.create) are lua/provision/archive.lua.
 *
 *   archive.extract{ src, dest, strip_components=0, owner=false }
 *     -> { entries, bytes, top = { names... }, created_dest,
 *          added = { top-level names that were not in dest before } } | nil, message
 *     Extracts tar, tar.gz, tar.bz2, tar.xz, tar.zst, zip (what libarchive
 *     reads) into a staging folder made beside dest (dest's parent), then
 *     moves the result into place: dest itself when it did not exist, else
 *     entry by entry (an existing entry is replaced; folders merge; a
 *     symlink already in dest is replaced, never followed).
 *     A hostile archive fails before anything reaches dest:
 *       - an entry (or hard link target) with an absolute path or a '..'
 *         component;
 *       - a symlink whose target is absolute, or that resolves, following
 *         the other symlinks of the archive, to somewhere outside dest;
 *       - writing through a symlink (libarchive's SECURE_SYMLINKS).
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
 *   archive.create{ src, dest, format = "tar"|"tar.gz"|"tar.xz"|"zip",
 *                   owner = "root"?, mtime = seconds? }
 *     -> { entries, bytes } | nil, message
 *     src's contents (not src itself) in sorted order, with modes, symlinks,
 *     hard links (tar), devices; no atime/ctime, no user/group names (or
 *     root/root with owner = "root": uid/gid 0), gzip without a timestamp,
 *     every mtime set to `mtime` when given: the same tree gives the same
 *     bytes. Written to a temp file beside dest, renamed into place; when
 *     dest is inside src, neither dest nor the temp file is archived.
 *   archive.list(src) -> { { path, type, size, mode, uid, gid, link, hardlink, mtime }... }
 *   archive.tree_digest(path [, skip]) -> hex: SHA-256 of the tree's names,
 *     types, modes, sizes, mtimes and link targets (what create would read;
 *     skip: create's dest, left out when it is inside the tree, with the
 *     mtime of the folder holding it, which every create changes).
 *   archive.remove_tree(path) -> true | nil, message
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <archive.h>
#include <archive_entry.h>
#include "lazy_archive.h"
#include "core.h"
#include "digest.h"

#define JOB_MT "provision.archive.job"

typedef struct { dev_t dev; ino_t ino; char *path; } link_seen;

/* extract: a staged folder and the mode it is to have in dest (it stays
 * u+rwx until everything moved: read-only folders must take entries) */
typedef struct { dev_t dev; ino_t ino; mode_t mode; int merged; char *rel; } dir_mode;

/* Everything one extraction or creation holds, in a userdata: __gc
 * releases it whatever raises. */
typedef struct {
    struct archive *r, *w;
    struct archive_entry *entry;   /* create: the entry being built */
    int fd;
    char staging[PATH_MAX];        /* extract: the staging folder ("" when none) */
    char tmpfile[PATH_MAX];        /* create: the temp file ("" when none) */
    link_seen *links;
    size_t nlinks, caplinks;
    dir_mode *dirs;                /* extract: the staged folders, parents first */
    size_t ndirs, capdirs;
    size_t *byino;                 /* extract: indexes into dirs by (dev, ino) */
    char err[1024];
} archive_job;

#include <stdarg.h>

__attribute__((format(printf, 3, 4)))
static void say(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

/* the names in folder path (never through a symlink), read and closed:
 * no folder stays open while a walk descends. -1 with errno. */
static int read_names(const char *path, char ***out, size_t *nout)
{
    *out = NULL; *nout = 0;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return -1;
    DIR *d = fdopendir(fd);
    if (!d) { int e = errno; close(fd); errno = e; return -1; }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    int rc = 0;
    errno = 0;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) { rc = -1; break; }
            names = nn;
        }
        if (!(names[n] = strdup(de->d_name))) { rc = -1; break; }
        n++;
    }
    if (!de && errno) rc = -1;
    int e = rc ? (errno ? errno : ENOMEM) : 0;
    closedir(d);
    if (rc) {
        for (size_t i = 0; i < n; i++) free(names[i]);
        free(names);
        errno = e;
        return -1;
    }
    *out = names; *nout = n;
    return 0;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* path: len bytes of a PATH_MAX buffer, restored on return. A folder that
 * is read-only (or unreadable) is made u+rwx first: its entries can go. */
static int remove_walk(char *path, size_t len)
{
    struct stat st;
    if (lstat(path, &st) < 0) return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode)) return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
    if ((st.st_mode & 0700) != 0700) chmod(path, (st.st_mode & 07777) | 0700);
    char **names;
    size_t n;
    int rc = 0, e = 0;
    if (read_names(path, &names, &n) < 0) { rc = -1; e = errno; n = 0; names = NULL; }
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(names[i]);
        if (len + 1 + nl >= PATH_MAX) {
            if (!rc) { rc = -1; e = ENAMETOOLONG; }
            continue;
        }
        path[len] = '/';
        memcpy(path + len + 1, names[i], nl + 1);
        if (remove_walk(path, len + 1 + nl) < 0 && !rc) { rc = -1; e = errno; }
        path[len] = '\0';
    }
    free_names(names, n);
    if (rmdir(path) < 0 && errno != ENOENT && !rc) { rc = -1; e = errno; }
    errno = e;
    return rc;
}

static int remove_tree(const char *path)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);
    if (len >= sizeof buf) { errno = ENAMETOOLONG; return -1; }
    memcpy(buf, path, len + 1);
    return remove_walk(buf, len);
}

static void job_release(archive_job *j)
{
    if (j->r) { archive_read_free(j->r); j->r = NULL; }
    if (j->w) { archive_write_free(j->w); j->w = NULL; }
    if (j->entry) { archive_entry_free(j->entry); j->entry = NULL; }
    if (j->fd >= 0) { close(j->fd); j->fd = -1; }
    if (j->staging[0]) { remove_tree(j->staging); j->staging[0] = '\0'; }
    if (j->tmpfile[0]) { unlink(j->tmpfile); j->tmpfile[0] = '\0'; }
    for (size_t i = 0; i < j->nlinks; i++) free(j->links[i].path);
    free(j->links);
    j->links = NULL;
    j->nlinks = j->caplinks = 0;
    for (size_t i = 0; i < j->ndirs; i++) free(j->dirs[i].rel);
    free(j->dirs);
    free(j->byino);
    j->dirs = NULL;
    j->byino = NULL;
    j->ndirs = j->capdirs = 0;
}

static int job_gc(lua_State *L)
{
    job_release(luaL_checkudata(L, 1, JOB_MT));
    return 0;
}

static archive_job *job_new(lua_State *L)
{
    archive_job *j = lua_newuserdatauv(L, sizeof *j, 0);
    memset(j, 0, sizeof *j);
    j->fd = -1;
    luaL_setmetatable(L, JOB_MT);
    return j;
}

static const char *opt_string(lua_State *L, int t, const char *k, int required)
{
    lua_getfield(L, t, k);
    const char *s = lua_tostring(L, -1);
    if (!s && (required || !lua_isnil(L, -1)))
        luaL_error(L, "archive: option '%s' must be a string", k);
    lua_pop(L, 1);   /* borrowed: the options table keeps it */
    return s;
}

/* ---- extraction */

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
    say(full, sizeof full, "%s/%s", root, rel);
    ssize_t n = readlink(full, target, sizeof target - 1);
    if (n < 0) { say(err, errlen, "%s: %s", rel, strerror(errno)); return -1; }
    target[n] = '\0';
    if (target[0] == '/') {
        say(err, errlen, "symlink '%s' points to the absolute path '%s'", rel, target);
        return -1;
    }
    /* start in the link's folder */
    cur[0] = '\0';
    size_t curlen = 0;
    {
        char dir[PATH_MAX];
        say(dir, sizeof dir, "%s", rel);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = '\0'; else dir[0] = '\0';
        say(todo, sizeof todo, "%s%s%s", dir, *dir ? "/" : "", target);
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
                say(err, errlen, "symlink '%s' -> '%s' leads outside the destination", rel, target);
                return -1;
            }
            curlen = depth_len[--depth];
            cur[curlen] = '\0';
            continue;
        }
        if (depth >= 255 || curlen + strlen(comp) + 2 >= sizeof cur) {
            say(err, errlen, "symlink '%s': path too deep", rel);
            return -1;
        }
        depth_len[depth++] = curlen;
        curlen += (size_t)snprintf(cur + curlen, sizeof cur - curlen, "%s%s", curlen ? "/" : "", comp);
        say(full, sizeof full, "%s/%s", root, cur);
        struct stat st;
        if (lstat(full, &st) == 0 && S_ISLNK(st.st_mode)) {
            if (++hops > 40) {
                say(err, errlen, "symlink '%s': too many levels of symlinks", rel);
                return -1;
            }
            char t2[PATH_MAX];
            ssize_t m = readlink(full, t2, sizeof t2 - 1);
            if (m < 0) continue;
            t2[m] = '\0';
            if (t2[0] == '/') {
                say(err, errlen, "symlink '%s' leads through '%s' to the absolute path '%s'", rel, cur, t2);
                return -1;
            }
            /* replace the link component by its target, then the rest */
            curlen = depth_len[--depth];
            cur[curlen] = '\0';
            char next[PATH_MAX * 2];
            say(next, sizeof next, "%s%s%s", t2, rest ? "/" : "", rest ? rest : "");
            say(todo, sizeof todo, "%s", next);
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
        say(j->err, sizeof j->err, "%s: %s", path, strerror(errno));
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        size_t nl = strlen(names[i]);
        if (len + 1 + nl >= PATH_MAX) {
            say(j->err, sizeof j->err, "%s/%s: %s", path, names[i], strerror(ENAMETOOLONG));
            rc = -1;
            break;
        }
        path[len] = '/';
        memcpy(path + len + 1, names[i], nl + 1);
        struct stat st;
        if (lstat(path, &st) < 0) {
            say(j->err, sizeof j->err, "%s: %s", path, strerror(errno));
            rc = -1;
        } else if (!S_ISLNK(st.st_mode)) {
            mode_t want = st.st_mode & (owner ? 07777 : 01777);
            mode_t now = S_ISDIR(st.st_mode) ? want | 0700 : want;
            if (S_ISDIR(st.st_mode)) {
                if (j->ndirs == j->capdirs) {
                    size_t cap = j->capdirs ? j->capdirs * 2 : 16;
                    dir_mode *nd = realloc(j->dirs, cap * sizeof *nd);
                    if (!nd) { say(j->err, sizeof j->err, "out of memory"); rc = -1; goto next; }
                    j->dirs = nd; j->capdirs = cap;
                }
                dir_mode *dm = &j->dirs[j->ndirs];
                dm->dev = st.st_dev; dm->ino = st.st_ino; dm->mode = want; dm->merged = 0;
                if (!(dm->rel = strdup(path + rootlen + 1))) {
                    say(j->err, sizeof j->err, "out of memory"); rc = -1; goto next;
                }
                j->ndirs++;
            }
            if (now != (st.st_mode & 07777) && chmod(path, now) < 0) {
                say(j->err, sizeof j->err, "%s: %s", path, strerror(errno));
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

/* The staged folders that reached dest (moved there, or merged into a
 * folder already there) get their modes, children before parents. */
static int restore_modes(archive_job *j, const char *dest, int quiet)
{
    int rc = 0;
    for (size_t i = j->ndirs; i-- > 0;) {
        dir_mode *d = &j->dirs[i];
        char p[PATH_MAX * 2];
        say(p, sizeof p, "%s/%s", dest, d->rel);
        struct stat st;
        if (lstat(p, &st) < 0 || !S_ISDIR(st.st_mode)) continue;
        if (!d->merged && (st.st_dev != d->dev || st.st_ino != d->ino)) continue;
        if ((st.st_mode & 07777) != d->mode && chmod(p, d->mode) < 0 && !rc) {
            if (!quiet) say(j->err, sizeof j->err, "%s: %s", p, strerror(errno));
            rc = -1;
        }
    }
    return rc;
}

static archive_job *check_links_job;
static int check_links_root_len;

static int check_link_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)ftw;
    archive_job *j = check_links_job;
    if (flag == FTW_DNR || flag == FTW_NS) {   /* a folder not walked hides its symlinks */
        say(j->err, sizeof j->err, "'%s' cannot be checked: %s", p + check_links_root_len + 1, strerror(errno));
        return 1;
    }
    if (flag != FTW_SL && !(sb && S_ISLNK(sb->st_mode))) return 0;
    return link_inside(j->staging, p + check_links_root_len + 1, j->err, sizeof j->err) < 0 ? 1 : 0;
}

/* Before anything moves into an existing dest: an entry whose kind cannot
 * take the place of what dest has there stops the extract with nothing
 * changed. A folder of the archive where dest has a file or a link cannot
 * go there (the rename fails half-way through the merge), and a file of the
 * archive where dest has a folder would delete that folder and all in it
 * (tar refuses that too). Files over files are replaced, folders merge.
 * 0, or -1 with j->err set. */
static int find_conflict(archive_job *j, const char *src, const char *dst, const char *shown)
{
    struct stat ss, ds;
    if (lstat(dst, &ds) < 0) return 0;   /* nothing there: it moves in */
    if (lstat(src, &ss) < 0) { say(j->err, sizeof j->err, "%s: %s", src, strerror(errno)); return -1; }
    int sdir = S_ISDIR(ss.st_mode), ddir = S_ISDIR(ds.st_mode);
    if (sdir && !ddir) {
        say(j->err, sizeof j->err, "%s is a %s where the archive has a folder; nothing was extracted (move it away, or extract elsewhere)",
            shown, S_ISLNK(ds.st_mode) ? "symbolic link" : "file");
        return -1;
    }
    if (!sdir && ddir) {
        say(j->err, sizeof j->err, "%s is a folder where the archive has a %s; nothing was extracted (move it away, or extract elsewhere)",
            shown, S_ISLNK(ss.st_mode) ? "symbolic link" : "file");
        return -1;
    }
    if (!sdir) return 0;
    char **names;
    size_t n;
    if (read_names(src, &names, &n) < 0) { say(j->err, sizeof j->err, "%s: %s", src, strerror(errno)); return -1; }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char a[PATH_MAX], b[PATH_MAX], c[PATH_MAX];
        say(a, sizeof a, "%s/%s", src, names[i]);
        say(b, sizeof b, "%s/%s", dst, names[i]);
        say(c, sizeof c, "%s/%s", shown, names[i]);
        rc = find_conflict(j, a, b, c);
    }
    free_names(names, n);
    return rc;
}

/* rename src over dst, merging folders; never follows a symlink in dst.
 * A folder already in dst that is read-only is opened (u+rwx) to take
 * entries, and given back its mode if the merge fails (restore_modes gives
 * the archive's once everything moved). */
static int move_into(archive_job *j, const char *src, const char *dst)
{
    char *err = j->err;
    size_t errlen = sizeof j->err;
    struct stat ss, ds;
    if (lstat(src, &ss) < 0) { say(err, errlen, "%s: %s", src, strerror(errno)); return -1; }
    if (lstat(dst, &ds) < 0) {
        if (errno != ENOENT) { say(err, errlen, "%s: %s", dst, strerror(errno)); return -1; }
    } else if (S_ISDIR(ss.st_mode) && S_ISDIR(ds.st_mode)) {
        char **names;
        size_t n;
        if (read_names(src, &names, &n) < 0) { say(err, errlen, "%s: %s", src, strerror(errno)); return -1; }
        int opened = (ds.st_mode & 0700) != 0700;
        if (opened && chmod(dst, (ds.st_mode & 07777) | 0700) < 0) {
            say(err, errlen, "%s: %s", dst, strerror(errno));
            free_names(names, n);
            return -1;
        }
        int rc = 0;
        for (size_t i = 0; i < n && rc == 0; i++) {
            char a[PATH_MAX], b[PATH_MAX];
            say(a, sizeof a, "%s/%s", src, names[i]);
            say(b, sizeof b, "%s/%s", dst, names[i]);
            rc = move_into(j, a, b);
        }
        free_names(names, n);
        if (rc) {
            if (opened) chmod(dst, ds.st_mode & 07777);
            return rc;
        }
        dir_mode *d = find_dir(j, &ss);
        if (d) d->merged = 1;
        else chmod(dst, ss.st_mode & 07777);
        return 0;
    } else if (S_ISDIR(ds.st_mode)) {
        if (remove_tree(dst) < 0) { say(err, errlen, "%s: %s", dst, strerror(errno)); return -1; }
    }
    if (rename(src, dst) < 0) { say(err, errlen, "%s: %s", dst, strerror(errno)); return -1; }
    return 0;
}

static int archive_extract(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    const char *src = opt_string(L, 1, "src", 1);
    const char *dest = opt_string(L, 1, "dest", 1);
    lua_getfield(L, 1, "strip_components");
    int strip_n = (int)luaL_optinteger(L, -1, 0);
    lua_pop(L, 1);
    if (strip_n < 0) return luaL_error(L, "archive.extract: strip_components must be >= 0");
    int owner = 0;
    lua_getfield(L, 1, "owner");
    owner = lua_toboolean(L, -1);
    lua_pop(L, 1);
    lua_newtable(L);                        /* opts top */
    int top = lua_gettop(L);
    lua_newtable(L);                        /* opts top seen */
    int seen = lua_gettop(L);
    lua_newtable(L);                        /* opts top seen added */
    int added = lua_gettop(L);
    archive_job *j = job_new(L);            /* opts top seen added job */
    lua_Integer ntop = 0, entries = 0, nadded = 0;
    long long bytes = 0;
    int created_dest = 0;

    /* the staging folder, beside dest */
    char dcopy[PATH_MAX], bcopy[PATH_MAX];
    say(dcopy, sizeof dcopy, "%s", dest);
    say(bcopy, sizeof bcopy, "%s", dest);
    const char *parent = dirname(dcopy), *base = basename(bcopy);
    char rparent[PATH_MAX];
    if (!realpath(parent, rparent)) {
        say(j->err, sizeof j->err, "%s: %s", parent, strerror(errno));
        goto fail;
    }
    say(j->staging, sizeof j->staging, "%s/.%s.provision-extract-XXXXXX", rparent, base);
    if (!mkdtemp(j->staging)) {
        say(j->err, sizeof j->err, "%s: %s", rparent, strerror(errno));
        j->staging[0] = '\0';
        goto fail;
    }
    j->r = archive_read_new();
    j->w = archive_write_disk_new();
    if (!j->r || !j->w) { say(j->err, sizeof j->err, "out of memory"); goto fail; }
    archive_read_support_filter_all(j->r);
    archive_read_support_format_all(j->r);
    int flags = ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_SECURE_NODOTDOT
              | ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_UNLINK;
    if (owner) flags |= ARCHIVE_EXTRACT_OWNER;
    archive_write_disk_set_options(j->w, flags);
    archive_write_disk_set_standard_lookup(j->w);
    if (archive_read_open_filename(j->r, src, 65536) != ARCHIVE_OK) {
        say(j->err, sizeof j->err, "%s: %s", src, archive_error_string(j->r));
        goto fail;
    }
    for (;;) {
        struct archive_entry *e;
        int rc = archive_read_next_header(j->r, &e);
        if (rc == ARCHIVE_EOF) break;
        if (rc < ARCHIVE_WARN) {
            say(j->err, sizeof j->err, "%s: %s", src, archive_error_string(j->r));
            goto fail;
        }
        if (provision_interrupted()) { say(j->err, sizeof j->err, "interrupted"); goto fail; }
        /* copied: archive_entry_copy_pathname below frees the entry's own */
        char name[PATH_MAX];
        const char *ename = archive_entry_pathname(e);
        say(name, sizeof name, "%s", ename ? ename : "");
        const char *why = ename ? unsafe_path(name) : "no name";
        if (why) {
            say(j->err, sizeof j->err, "%s: refusing a hostile archive: entry '%s' has %s",
                     src, name, why);
            goto fail;
        }
        const char *hl = archive_entry_hardlink(e);
        if (hl && (why = unsafe_path(hl))) {
            say(j->err, sizeof j->err, "%s: refusing a hostile archive: hard link '%s' -> '%s' has %s",
                     src, name, hl, why);
            goto fail;
        }
        const char *sl = archive_entry_symlink(e);
        if (sl && sl[0] == '/') {
            say(j->err, sizeof j->err, "%s: refusing a hostile archive: symlink '%s' points to the absolute path '%s'",
                     src, name, sl);
            goto fail;
        }
        const char *rel = strip(name, strip_n);
        if (!rel) continue;
        const char *special = special_file(archive_entry_filetype(e));
        if (special && !owner) {
            say(j->err, sizeof j->err, "%s: refusing entry '%s': it is a %s (device files, FIFOs "
                "and sockets are extracted only with owner = true)", src, name, special);
            goto fail;
        }
        char path[PATH_MAX * 2];
        say(path, sizeof path, "%s/%s", j->staging, rel);
        archive_entry_copy_pathname(e, path);
        if (hl) {
            const char *hrel = strip(hl, strip_n);
            if (!hrel) continue;
            say(path, sizeof path, "%s/%s", j->staging, hrel);
            archive_entry_copy_hardlink(e, path);
        }
        /* the first component of what lands in dest */
        size_t tl = strcspn(rel, "/");
        lua_pushlstring(L, rel, tl);
        if (lua_rawget(L, seen) == LUA_TNIL) {
            lua_pushlstring(L, rel, tl);
            lua_pushboolean(L, 1);
            lua_rawset(L, seen);
            lua_pushlstring(L, rel, tl);
            lua_rawseti(L, top, ++ntop);
        }
        lua_pop(L, 1);
        rc = archive_write_header(j->w, e);
        if (rc < ARCHIVE_WARN) {
            say(j->err, sizeof j->err, "%s: entry '%s': %s", src, name, archive_error_string(j->w));
            goto fail;
        }
        if (archive_entry_size(e) > 0) {
            const void *buf; size_t len; la_int64_t off;
            while ((rc = archive_read_data_block(j->r, &buf, &len, &off)) == ARCHIVE_OK) {
                if (archive_write_data_block(j->w, buf, len, off) < ARCHIVE_OK) {
                    say(j->err, sizeof j->err, "%s: entry '%s': %s", src, name, archive_error_string(j->w));
                    goto fail;
                }
                bytes += (long long)len;
                if (provision_interrupted()) { say(j->err, sizeof j->err, "interrupted"); goto fail; }
            }
            if (rc != ARCHIVE_EOF) {
                say(j->err, sizeof j->err, "%s: entry '%s': %s", src, name, archive_error_string(j->r));
                goto fail;
            }
        }
        if (archive_write_finish_entry(j->w) < ARCHIVE_WARN) {
            say(j->err, sizeof j->err, "%s: entry '%s': %s", src, name, archive_error_string(j->w));
            goto fail;
        }
        entries++;
    }
    if (archive_write_close(j->w) != ARCHIVE_OK) {   /* sets the folders' modes and times */
        say(j->err, sizeof j->err, "%s: %s", dest, archive_error_string(j->w));
        goto fail;
    }
    {
        char walk_path[PATH_MAX];
        say(walk_path, sizeof walk_path, "%s", j->staging);
        if (settle(j, walk_path, strlen(walk_path), strlen(walk_path), owner) < 0) goto fail;
        if (index_dirs(j) < 0) { say(j->err, sizeof j->err, "out of memory"); goto fail; }
    }
    /* every symlink must stay inside, following the others */
    check_links_job = j;
    check_links_root_len = (int)strlen(j->staging);
    j->err[0] = '\0';
    int walk = nftw(j->staging, check_link_cb, 16, FTW_PHYS);
    if (walk != 0) {
        char why[1024];
        say(why, sizeof why, "%s", j->err[0] ? j->err : strerror(errno));
        say(j->err, sizeof j->err, "%s: refusing a hostile archive: %s", src, why);
        goto fail;
    }
    /* into place */
    struct stat st;
    int have_dest = lstat(dest, &st) == 0;
    if (!have_dest && errno != ENOENT) {
        say(j->err, sizeof j->err, "%s: %s", dest, strerror(errno));
        goto fail;
    }
    if (!have_dest) {
        chmod(j->staging, 0755 & ~(mode_t)0);   /* mkdtemp made it 0700 */
        mode_t um = umask(0); umask(um);
        chmod(j->staging, 0777 & ~um);
        if (rename(j->staging, dest) < 0) {
            say(j->err, sizeof j->err, "%s: %s", dest, strerror(errno));
            goto fail;
        }
        j->staging[0] = '\0';
        created_dest = 1;
        if (restore_modes(j, dest, 0) < 0) goto fail;
    } else if (!S_ISDIR(st.st_mode)) {
        say(j->err, sizeof j->err, "%s: exists and is not a folder", dest);
        goto fail;
    } else {
        if (find_conflict(j, j->staging, dest, dest) < 0) goto fail;
        DIR *d = opendir(j->staging);
        if (!d) { say(j->err, sizeof j->err, "%s: %s", j->staging, strerror(errno)); goto fail; }
        struct dirent *de;
        int rc = 0;
        while (rc == 0 && (de = readdir(d))) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
            char a[PATH_MAX], b[PATH_MAX];
            say(a, sizeof a, "%s/%s", j->staging, de->d_name);
            say(b, sizeof b, "%s/%s", dest, de->d_name);
            struct stat bs;
            if (lstat(b, &bs) < 0 && errno == ENOENT) {
                lua_pushstring(L, de->d_name);
                lua_rawseti(L, added, ++nadded);
            }
            rc = move_into(j, a, b);
        }
        closedir(d);
        /* what moved gets its modes, whether or not everything did */
        if (restore_modes(j, dest, rc != 0) < 0 && !rc) rc = -1;
        if (rc) goto fail;
    }
    job_release(j);
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, entries);
    lua_setfield(L, -2, "entries");
    lua_pushinteger(L, (lua_Integer)bytes);
    lua_setfield(L, -2, "bytes");
    lua_pushvalue(L, top);
    lua_setfield(L, -2, "top");
    lua_pushboolean(L, created_dest);
    lua_setfield(L, -2, "created_dest");
    lua_pushvalue(L, created_dest ? top : added);
    lua_setfield(L, -2, "added");
    return 1;
fail:
    job_release(j);
    lua_pushnil(L);
    lua_pushstring(L, j->err);
    return 2;
}

/* ---- creation */

static int name_cmp(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

typedef struct {
    archive_job *j;
    int root_owner;
    int fixed_mtime;
    la_int64_t mtime;
    int tar;
    lua_Integer entries;
    long long bytes;
    struct stat skip[2];           /* dest and our temp file, when inside src */
    int nskip;
} create_ctx;

static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

static int add_tree(create_ctx *c, const char *full, const char *rel)
{
    archive_job *j = c->j;
    struct dirent **list = NULL;
    int n = scandir(full, &list, NULL, name_cmp);
    if (n < 0) { say(j->err, sizeof j->err, "%s: %s", full, strerror(errno)); return -1; }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        struct dirent *de = list[i];
        if (rc || strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) { free(de); continue; }
        char path[PATH_MAX], name[PATH_MAX];
        say(path, sizeof path, "%s/%s", full, de->d_name);
        say(name, sizeof name, "%s%s%s", rel, *rel ? "/" : "", de->d_name);
        free(de);
        if (provision_interrupted()) { say(j->err, sizeof j->err, "interrupted"); rc = -1; continue; }
        struct stat st;
        if (lstat(path, &st) < 0) { say(j->err, sizeof j->err, "%s: %s", path, strerror(errno)); rc = -1; continue; }
        if (S_ISSOCK(st.st_mode)) continue;     /* no archive holds a socket */
        int ours = 0;                           /* dest inside src: not itself */
        for (int k = 0; k < c->nskip; k++) ours |= same_file(&st, &c->skip[k]);
        if (ours) continue;
        struct archive_entry *e = j->entry = archive_entry_new();
        if (!e) { say(j->err, sizeof j->err, "out of memory"); rc = -1; continue; }
        archive_entry_copy_stat(e, &st);
        archive_entry_unset_atime(e);
        archive_entry_unset_ctime(e);
        archive_entry_unset_birthtime(e);
        archive_entry_set_mtime(e, c->fixed_mtime ? c->mtime : st.st_mtime, 0);
        archive_entry_set_ino64(e, 0);
        archive_entry_set_dev(e, 0);
        if (c->root_owner) {
            archive_entry_set_uid(e, 0); archive_entry_set_gid(e, 0);
            archive_entry_copy_uname(e, "root"); archive_entry_copy_gname(e, "root");
        }
        archive_entry_copy_pathname(e, name);
        if (S_ISLNK(st.st_mode)) {
            char t[PATH_MAX];
            ssize_t m = readlink(path, t, sizeof t - 1);
            if (m < 0) { say(j->err, sizeof j->err, "%s: %s", path, strerror(errno)); rc = -1; continue; }
            t[m] = '\0';
            archive_entry_copy_symlink(e, t);
        }
        int hard = 0;
        if (c->tar && S_ISREG(st.st_mode) && st.st_nlink > 1) {
            for (size_t k = 0; k < j->nlinks; k++)
                if (j->links[k].dev == st.st_dev && j->links[k].ino == st.st_ino) {
                    archive_entry_copy_hardlink(e, j->links[k].path);
                    archive_entry_set_size(e, 0);
                    hard = 1;
                    break;
                }
            if (!hard) {
                if (j->nlinks == j->caplinks) {
                    size_t cap = j->caplinks ? j->caplinks * 2 : 16;
                    link_seen *nl = realloc(j->links, cap * sizeof *nl);
                    if (!nl) { say(j->err, sizeof j->err, "out of memory"); rc = -1; continue; }
                    j->links = nl; j->caplinks = cap;
                }
                j->links[j->nlinks].dev = st.st_dev;
                j->links[j->nlinks].ino = st.st_ino;
                j->links[j->nlinks].path = strdup(name);
                if (j->links[j->nlinks].path) j->nlinks++;
            }
        }
        archive_entry_set_nlink(e, 1);
        if (archive_write_header(j->w, e) < ARCHIVE_WARN) {
            say(j->err, sizeof j->err, "%s: %s", name, archive_error_string(j->w));
            rc = -1; continue;
        }
        if (S_ISREG(st.st_mode) && !hard && st.st_size > 0) {
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0) { say(j->err, sizeof j->err, "%s: %s", path, strerror(errno)); rc = -1; continue; }
            static char buf[65536];
            ssize_t r;
            long long left = st.st_size;
            while (left > 0 && (r = read(fd, buf, sizeof buf)) > 0) {
                if (r > left) r = (ssize_t)left;   /* grew while we read: keep the header's size */
                if (archive_write_data(j->w, buf, (size_t)r) < 0) {
                    say(j->err, sizeof j->err, "%s: %s", name, archive_error_string(j->w));
                    rc = -1; break;
                }
                left -= r;
                c->bytes += r;
                if (provision_interrupted()) { say(j->err, sizeof j->err, "interrupted"); rc = -1; break; }
            }
            close(fd);
            if (!rc && left > 0) { say(j->err, sizeof j->err, "%s: shrank while being read", path); rc = -1; }
        }
        archive_entry_free(e);
        j->entry = NULL;
        c->entries++;
        if (!rc && S_ISDIR(st.st_mode)) rc = add_tree(c, path, name);
    }
    free(list);
    return rc;
}

static int archive_create(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    const char *src = opt_string(L, 1, "src", 1);
    const char *dest = opt_string(L, 1, "dest", 1);
    const char *format = opt_string(L, 1, "format", 0);
    const char *owner = opt_string(L, 1, "owner", 0);
    if (!format) format = "tar";
    if (owner && strcmp(owner, "root") != 0)
        return luaL_error(L, "archive.create: owner must be \"root\" (or nothing: keep the files' owners)");
    create_ctx c;
    memset(&c, 0, sizeof c);
    c.root_owner = owner != NULL;
    lua_getfield(L, 1, "mtime");
    if (!lua_isnil(L, -1)) { c.fixed_mtime = 1; c.mtime = (la_int64_t)luaL_checkinteger(L, -1); }
    lua_pop(L, 1);
    int fmt;
    if (strcmp(format, "tar") == 0) fmt = 0;
    else if (strcmp(format, "tar.gz") == 0 || strcmp(format, "tgz") == 0) fmt = 1;
    else if (strcmp(format, "tar.xz") == 0) fmt = 2;
    else if (strcmp(format, "zip") == 0) fmt = 3;
    else return luaL_error(L, "archive.create: format must be tar, tar.gz, tar.xz or zip, not '%s'", format);
    c.tar = fmt != 3;
    archive_job *j = job_new(L);
    c.j = j;
    struct stat st;
    if (stat(src, &st) < 0 || !S_ISDIR(st.st_mode)) {
        say(j->err, sizeof j->err, "%s: %s", src, errno ? strerror(errno) : "not a folder");
        if (stat(src, &st) == 0) say(j->err, sizeof j->err, "%s: not a folder", src);
        goto fail;
    }
    if (lstat(dest, &c.skip[c.nskip]) == 0) c.nskip++;
    say(j->tmpfile, sizeof j->tmpfile, "%s.provision-XXXXXX", dest);
    j->fd = mkstemp(j->tmpfile);
    if (j->fd < 0) {
        say(j->err, sizeof j->err, "%s: %s", dest, strerror(errno));
        j->tmpfile[0] = '\0';
        goto fail;
    }
    if (fstat(j->fd, &c.skip[c.nskip]) == 0) c.nskip++;
    j->w = archive_write_new();
    if (!j->w) { say(j->err, sizeof j->err, "out of memory"); goto fail; }
    if (fmt == 3) archive_write_set_format_zip(j->w);
    else archive_write_set_format_pax_restricted(j->w);
    if (fmt == 1) {
        archive_write_add_filter_gzip(j->w);
        archive_write_set_filter_option(j->w, "gzip", "timestamp", NULL);   /* none */
    } else if (fmt == 2) {
        archive_write_add_filter_xz(j->w);
    }
    archive_write_set_bytes_in_last_block(j->w, 1);
    if (archive_write_open_fd(j->w, j->fd) != ARCHIVE_OK) {
        say(j->err, sizeof j->err, "%s: %s", dest, archive_error_string(j->w));
        goto fail;
    }
    if (add_tree(&c, src, "") < 0) goto fail;
    if (archive_write_close(j->w) != ARCHIVE_OK) {
        say(j->err, sizeof j->err, "%s: %s", dest, archive_error_string(j->w));
        goto fail;
    }
    mode_t um = umask(0); umask(um);
    if (fchmod(j->fd, 0666 & ~um) < 0 || fsync(j->fd) < 0 || rename(j->tmpfile, dest) < 0) {
        say(j->err, sizeof j->err, "%s: %s", dest, strerror(errno));
        goto fail;
    }
    j->tmpfile[0] = '\0';
    job_release(j);
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, c.entries);
    lua_setfield(L, -2, "entries");
    lua_pushinteger(L, (lua_Integer)c.bytes);
    lua_setfield(L, -2, "bytes");
    return 1;
fail:
    job_release(j);
    lua_pushnil(L);
    lua_pushstring(L, j->err);
    return 2;
}

/* ---- listing, digests, removal */

static const char *type_name(mode_t m)
{
    if (S_ISREG(m)) return "file";
    if (S_ISDIR(m)) return "directory";
    if (S_ISLNK(m)) return "symlink";
    if (S_ISCHR(m)) return "char";
    if (S_ISBLK(m)) return "block";
    if (S_ISFIFO(m)) return "fifo";
    return "other";
}

static int archive_list(lua_State *L)
{
    const char *src = luaL_checkstring(L, 1);
    lua_newtable(L);
    archive_job *j = job_new(L);        /* src list job */
    j->r = archive_read_new();
    if (!j->r) return luaL_error(L, "out of memory");
    archive_read_support_filter_all(j->r);
    archive_read_support_format_all(j->r);
    if (archive_read_open_filename(j->r, src, 65536) != ARCHIVE_OK) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", src, archive_error_string(j->r));
        job_release(j);
        return 2;
    }
    lua_Integer n = 0;
    struct archive_entry *e;
    int rc;
    while ((rc = archive_read_next_header(j->r, &e)) == ARCHIVE_OK || rc == ARCHIVE_WARN) {
        lua_createtable(L, 0, 9);
        lua_pushstring(L, archive_entry_pathname(e));
        lua_setfield(L, -2, "path");
        lua_pushstring(L, type_name(archive_entry_filetype(e)));
        lua_setfield(L, -2, "type");
        lua_pushinteger(L, (lua_Integer)archive_entry_size(e));
        lua_setfield(L, -2, "size");
        lua_pushinteger(L, (lua_Integer)(archive_entry_mode(e) & 07777));
        lua_setfield(L, -2, "mode");
        lua_pushinteger(L, (lua_Integer)archive_entry_uid(e));
        lua_setfield(L, -2, "uid");
        lua_pushinteger(L, (lua_Integer)archive_entry_gid(e));
        lua_setfield(L, -2, "gid");
        lua_pushinteger(L, (lua_Integer)archive_entry_mtime(e));
        lua_setfield(L, -2, "mtime");
        if (archive_entry_symlink(e)) {
            lua_pushstring(L, archive_entry_symlink(e));
            lua_setfield(L, -2, "link");
        }
        if (archive_entry_hardlink(e)) {
            lua_pushstring(L, archive_entry_hardlink(e));
            lua_setfield(L, -2, "hardlink");
        }
        if (archive_entry_uname(e)) {
            lua_pushstring(L, archive_entry_uname(e));
            lua_setfield(L, -2, "uname");
        }
        lua_rawseti(L, -3, ++n);
    }
    if (rc != ARCHIVE_EOF) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", src, archive_error_string(j->r));
        job_release(j);
        return 2;
    }
    job_release(j);
    lua_pop(L, 1);
    return 1;
}

/* skip[0]: a file left out (create's dest); skip[1]: the folder holding
 * it, whose mtime every create changes (also left out). NULL: none; an
 * st_nlink of 0: that one is not there. */
static int digest_tree(provision_digest *md, const char *full, const char *rel, const struct stat *skip)
{
    struct dirent **list = NULL;
    int n = scandir(full, &list, NULL, name_cmp);
    if (n < 0) return -1;
    int rc = 0;
    for (int i = 0; i < n; i++) {
        struct dirent *de = list[i];
        if (!rc && strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            char path[PATH_MAX], name[PATH_MAX], line[PATH_MAX * 2 + 128], t[PATH_MAX] = "";
            say(path, sizeof path, "%s/%s", full, de->d_name);
            say(name, sizeof name, "%s%s%s", rel, *rel ? "/" : "", de->d_name);
            struct stat st;
            if (lstat(path, &st) == 0 && !(skip && skip[0].st_nlink && same_file(&st, &skip[0]))) {
                if (skip && skip[1].st_nlink && same_file(&st, &skip[1])) st.st_mtim.tv_sec = st.st_mtim.tv_nsec = 0;
                if (S_ISLNK(st.st_mode)) {
                    ssize_t m = readlink(path, t, sizeof t - 1);
                    t[m > 0 ? m : 0] = '\0';
                }
                int len = snprintf(line, sizeof line, "%s\t%o\t%lld\t%lld.%09ld\t%u:%u\t%s\n", name,
                                   (unsigned)st.st_mode, (long long)st.st_size, (long long)st.st_mtim.tv_sec,
                                   st.st_mtim.tv_nsec, (unsigned)st.st_uid, (unsigned)st.st_gid, t);
                provision_digest_update(md, line, (size_t)len);
                if (S_ISDIR(st.st_mode)) rc = digest_tree(md, path, name, skip);
            }
        }
        free(de);
    }
    free(list);
    return rc;
}

static int archive_tree_digest(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    const char *skip_path = luaL_optstring(L, 2, NULL);
    struct stat skip[2];
    memset(skip, 0, sizeof skip);
    if (skip_path) {
        char pcopy[PATH_MAX];
        say(pcopy, sizeof pcopy, "%s", skip_path);
        if (lstat(skip_path, &skip[0]) < 0) skip[0].st_nlink = 0;
        if (stat(dirname(pcopy), &skip[1]) < 0) skip[1].st_nlink = 0;
    }
    provision_digest md;
    if (provision_digest_init(&md, DIGEST_SHA256)) {
        provision_digest_free(&md);
        return luaL_error(L, "out of memory");
    }
    int rc = digest_tree(&md, path, "", skip_path ? skip : NULL);
    int e = errno;
    char hx[DIGEST_HEX_MAX];
    provision_digest_hex(&md, hx);
    provision_digest_free(&md);
    if (rc < 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", path, strerror(e));
        return 2;
    }
    lua_pushstring(L, hx);
    return 1;
}

static int archive_remove_tree(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    if (remove_tree(path) < 0) return luaL_fileresult(L, 0, path);
    lua_pushboolean(L, 1);
    return 1;
}

static const luaL_Reg archive_funcs[] = {
    { "create", archive_create },
    { "extract", archive_extract },
    { "list", archive_list },
    { "remove_tree", archive_remove_tree },
    { "tree_digest", archive_tree_digest },
    { NULL, NULL }
};

int luaopen_provision_archive(lua_State *L)
{
    char err[256];
    if (provision_load_archive(err, sizeof err) < 0) return luaL_error(L, "%s", err);
    if (luaL_newmetatable(L, JOB_MT)) {
        lua_pushcfunction(L, job_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    luaL_newlib(L, archive_funcs);
    lua_pushstring(L, archive_version_details());
    lua_setfield(L, -2, "version");
    return 1;
}
