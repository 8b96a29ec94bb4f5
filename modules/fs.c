/* fs.c: "provision._fs": the file primitives of the whole project (fs,
 * http, archive, compose and the state use these, not copies of their own).
 * All in-process: a no-op re-run of a recipe with a thousand fs steps is a
 * few thousand syscalls, not a thousand processes. Every path is walked as
 * core/tree.h says: a symbolic link owned by another user than root or the
 * one running provision is never followed, and nothing is changed through a
 * link.
 *
 * One failure convention, luaL_fileresult's: nil, "path: why", errno.
 *
 *   stat(path) / lstat(path) -> { type=, mode=, uid=, gid=, size=, mtime=,
 *                                 nlink=, id= } | nil, msg, errno
 *       type: "file", "directory", "link" (lstat only), "fifo", "socket", "device"
 *       id: "device:inode", to know the very file or folder again
 *       stat follows a trusted link at the end; lstat does not
 *   probe(path) -> lstat's table, with sha256 = hex for a regular file (one
 *       walk: what a file's check needs) | nil, msg, errno
 *   probe(path, content) -> the same with .same (the file holds content)
 *       instead of .sha256, and no .id
 *   holds(path, content, mode, uid) -> boolean, absent: path is a regular
 *       file of uid's with one name, exactly content and mode (-1: any
 *       mode); the same walk and reads as probe's, no table. absent: true
 *       when nothing is there (where probe would say ENOENT or ENOTDIR)
 *   exists(path) -> boolean [, msg]          (lstat: a dangling link exists;
 *                                             false, msg when it cannot tell)
 *   dir_id(path) -> "device:inode" of the folder holding path | nil, msg, errno
 *   mkdir(path [, mode=0755 [, later]]) -> true, id | nil, msg, errno  (one level; exactly mode;
 *       id: the new folder's "device:inode"; later: on disk at core.sync_written,
 *       as a write with sync "later" is: provision.batch)
 *   chmod(path, mode [, id]) / chown(path, owner, group [, id]) -> true | nil, msg, errno
 *       through a descriptor; a trusted link at the end is followed; a file
 *       with several hard links is refused (EMLINK); id ("device:inode"):
 *       only while it is that very file (ESTALE)
 *       owner/group: a name, a number, or nil (left as is)
 *   uid_of(user) / gid_of(group) -> number | nil, msg     (a number is checked only for range)
 *   user_name(uid) / group_name(gid) -> name | nil
 *   readlink(path) -> target | nil, msg, errno
 *   symlink(target, path [, replace [, later]]) -> true | nil, msg, errno
 *       replace: made under a random name beside path, renamed over it;
 *       later: as mkdir's
 *   remove(path) -> true | nil, msg, errno  (a file, a link or an empty folder)
 *   remove_tree(path) -> true | nil, msg, errno   (recursive; never follows
 *       a link; a missing path is not an error; stops at SIGINT/SIGTERM;
 *       refuses "/" and paths ending in . or ..)
 *   sha256(path) / xxh128(path) -> hex | nil, msg, errno   (streamed;
 *       XXH3-128: core/digest.c; both stop at SIGINT/SIGTERM)
 *   stamp(path) -> text | nil, msg, errno   (device, inode, size, mtime, ctime)
 *   sha256_string(s [, i, j]) / xxh128_string(s [, i, j]) -> hex   (of s,
 *       a string or bytes, or of its bytes i to j)
 *   listdir(path) -> { names, sorted } | nil, msg, errno
 *   remove_own(path [, id]) -> true | nil, msg, errno   (what a run of ours
 *       left: a file of ours; a folder with all under it only when id, its
 *       "device:inode" recorded when it was made, says it is that very one,
 *       else only when empty)
 *   remove_if(path, { type=, dir=, id=, uid=, sha256= | xxh128=, target= })
 *       -> true | false, why | nil, msg, errno: what a record says was made,
 *       removed only while it is what was made, through one descriptor of
 *       its folder (teardown)
 *   temp_name(prefix) -> "prefix.RANDOM", a name no other user can guess
 *   realpath(path) -> absolute path | nil, msg, errno
 *   euid() -> the effective user id
 *   forget_folders()   (probe walks to a folder once for a run of probes
 *       in it, until a change: the runner calls this before and after a
 *       step applies or reverts)
 *   readonly(path) -> true | false | nil, msg, errno: is the folder that
 *       holds path on a read-only filesystem (fstatvfs through the walk)
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include "core.h"
#include "digest.h"
#include "tree.h"

/* nil, "path: why", errno: the operational-failure convention */
/* (provision_digest_strerror: strerror's, but ELIBACC names libcrypto and why it could not be loaded) */
static int fs_fail(lua_State *L, const char *path, int e) { return provision_fail(L, e, "%s: %s", path, provision_digest_strerror(e)); }

/* the same with tree.c's message */
static int fs_failmsg(lua_State *L, const char *msg, int e) { return provision_fail(L, e, "%s", msg); }

static int fs_ok(lua_State *L)
{
    lua_pushboolean(L, 1);
    return 1;
}

static const char *fs_type_name(mode_t m)
{
    if (S_ISREG(m)) return "file";
    if (S_ISDIR(m)) return "directory";
    if (S_ISLNK(m)) return "link";
    if (S_ISFIFO(m)) return "fifo";
    if (S_ISSOCK(m)) return "socket";
    return "device";
}

static mode_t fs_checkmode(lua_State *L, int idx, lua_Integer def)
{
    lua_Integer m = luaL_optinteger(L, idx, def);
    luaL_argcheck(L, m >= 0 && m <= 07777, idx, "mode out of range (0 to 07777)");
    return (mode_t)m;
}

/* with_id: the "device:inode" too (a content probe has no use for it, and
 * its table then fits 8 slots, not 16: a no-op check's garbage halved) */
static void push_stat_table(lua_State *L, const struct stat *stp, int with_id)
{
    const struct stat st = *stp;
    lua_createtable(L, 0, with_id ? 9 : 8);
    lua_pushstring(L, fs_type_name(st.st_mode));
    lua_setfield(L, -2, "type");
    lua_pushinteger(L, st.st_mode & 07777);
    lua_setfield(L, -2, "mode");
    lua_pushinteger(L, st.st_uid);
    lua_setfield(L, -2, "uid");
    lua_pushinteger(L, st.st_gid);
    lua_setfield(L, -2, "gid");
    lua_pushinteger(L, (lua_Integer)st.st_size);
    lua_setfield(L, -2, "size");
    lua_pushnumber(L, (double)st.st_mtim.tv_sec + (double)st.st_mtim.tv_nsec / 1e9);
    lua_setfield(L, -2, "mtime");
    lua_pushinteger(L, (lua_Integer)st.st_nlink);
    lua_setfield(L, -2, "nlink");
    if (!with_id) return;
    char id[64];
    tree_identity(&st, id, sizeof id);
    lua_pushstring(L, id);
    lua_setfield(L, -2, "id");
}

static int fs_pushstat(lua_State *L, int follow)
{
    const char *path = provision_checkpath(L, 1);
    struct stat st;
    char err[TREE_ERR];
    if (tree_stat(path, follow, &st, err, sizeof err) < 0) return fs_failmsg(L, err, errno);
    push_stat_table(L, &st, 1);
    return 1;
}

/* same_content(fd, want, n, size) -> 0 (differs), 1 (the same), or
 * -errno: the file at fd holds exactly the n bytes of want (read in
 * chunks, compared as they come; a read asks for one byte more than is
 * left, so a short one that ends at n, on a file fstat says is n bytes,
 * is the end: no read past it) */
static int same_content(int fd, const char *want, size_t n, off_t size)
{
    char buf[65536];
    size_t at = 0;
    for (;;) {
        size_t room = n - at < sizeof buf ? n - at + 1 : sizeof buf;
        ssize_t got = read(fd, buf, room);
        if (got < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (got == 0) return at == n;
        if ((size_t)got > n - at || memcmp(buf, want + at, (size_t)got) != 0) return 0;
        at += (size_t)got;
        if (at == n && (size_t)got < room && size == (off_t)n) return 1;
    }
}

/* probe(path [, content]) -> lstat's table, with .sha256 when it is a
 * regular file | nil, msg, errno: what a file's check needs, in one walk
 * (the file read through a descriptor of the very inode looked at). With
 * content (a string): .same (true | false) instead of .sha256, the file
 * compared with it byte for byte, and not read at all when its size
 * differs (a no-op's check needs no digest), and no .id.
 *
 * The folder is walked once for a run of probes in it (tree_walk_kept),
 * and the file is opened first and looked at through its descriptor
 * (O_NOFOLLOW: a link is not opened, O_NONBLOCK: a FIFO does not wait;
 * nothing but a regular file is read): 4 syscalls a file already right,
 * the floor's count. When it cannot be opened (a link, a socket, no
 * permission), lstat says what is there. */
struct look { struct stat st; int same; char hx[DIGEST_HEX_MAX]; int walk_failed; char err[TREE_ERR]; };

/* what probe and holds find at path -> 0 | errno (lk->walk_failed: the
 * walk to its folder failed, lk->err says why; else "path: strerror") */
static int look(const char *path, const char *want, size_t wantn, struct look *lk)
{
    int owned;
    char name[NAME_MAX + 1];
    lk->same = -1;
    lk->hx[0] = '\0';
    lk->walk_failed = 0;
    int dfd = tree_walk_kept(path, name, &owned, lk->err, sizeof lk->err);
    if (dfd < 0) { lk->walk_failed = 1; return errno ? errno : EIO; }
    struct stat *st = &lk->st;
    int e = 0;
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    int oe = fd < 0 ? errno : 0;
    if (fd >= 0) {
        if (fstat(fd, st) < 0) e = errno;
    } else if (oe == ENOENT || oe == ENOTDIR) {
        e = oe;
    } else if (fstatat(dfd, name, st, AT_SYMLINK_NOFOLLOW) < 0) {
        e = errno;
    }
    if (e || !S_ISREG(st->st_mode)) {
        /* nothing there, or not a file to read */
    } else if (want && (size_t)st->st_size != wantn) {
        lk->same = 0;   /* another size: not the same, nothing to read */
    } else if (fd < 0) {
        e = oe;   /* a regular file that could not be opened (EACCES) */
    } else if (want) {
        lk->same = same_content(fd, want, wantn, st->st_size);
        if (lk->same < 0) { e = -lk->same; lk->same = -1; }
    } else {
        e = provision_digest_fd(fd, DIGEST_SHA256, 1, lk->hx);
    }
    if (fd >= 0) close(fd);
    if (owned) close(dfd);
    return e;
}

static int fs_probe(lua_State *L)
{
    const char *path = provision_checkpath(L, 1);
    size_t wantn = 0;
    const char *want = lua_isstring(L, 2) ? lua_tolstring(L, 2, &wantn) : NULL;
    struct look lk;
    int e = look(path, want, wantn, &lk);
    if (e) return lk.walk_failed ? fs_failmsg(L, lk.err, e) : fs_fail(L, path, e);
    push_stat_table(L, &lk.st, !want);
    if (lk.hx[0]) {
        lua_pushstring(L, lk.hx);
        lua_setfield(L, -2, "sha256");
    }
    if (lk.same >= 0) {
        lua_pushboolean(L, lk.same);
        lua_setfield(L, -2, "same");
    }
    return 1;
}

/* holds(path, content, mode, uid) -> true when path is a regular file of
 * uid's with one name, exactly content, and mode (-1: any): a re-run's
 * fs.file check in one call, with no table; false for anything else (the
 * full check, probe's, then says what differs or what is wrong), and then
 * true beside it when nothing is there (a new file: no probe needed), and
 * a third true when not even its folder is (the walk to it found no such
 * folder: a plan's new file in a new folder, which need not be walked to
 * again to learn that) */
static int fs_holds(lua_State *L)
{
    const char *path = provision_checkpath(L, 1);
    size_t wantn;
    const char *want = luaL_checklstring(L, 2, &wantn);
    lua_Integer mode = luaL_checkinteger(L, 3), uid = luaL_checkinteger(L, 4);
    struct look lk;
    int e = look(path, want, wantn, &lk);
    lua_pushboolean(L, !e && lk.same == 1 && lk.st.st_nlink == 1 && (lua_Integer)lk.st.st_uid == uid
                       && (mode < 0 || (lua_Integer)(lk.st.st_mode & 07777) == mode));
    lua_pushboolean(L, e == ENOENT || e == ENOTDIR);
    lua_pushboolean(L, lk.walk_failed && e == ENOENT);
    return 3;
}

static int fs_stat(lua_State *L) { return fs_pushstat(L, 1); }
static int fs_lstat(lua_State *L) { return fs_pushstat(L, 0); }

/* stamp(path) -> text | nil, msg, errno (digest.h) */
static int fs_stamp(lua_State *L)
{
    const char *path = provision_checkpath(L, 1);
    struct stat st;
    char err[TREE_ERR];
    if (tree_stat(path, 1, &st, err, sizeof err) < 0) return fs_failmsg(L, err, errno);
    char stamp[128];
    provision_stamp(&st, stamp, sizeof stamp);
    lua_pushstring(L, stamp);
    return 1;
}

static int fs_exists(lua_State *L)
{
    const char *path = provision_checkpath(L, 1);
    struct stat st;
    char err[TREE_ERR];
    if (tree_stat(path, 0, &st, err, sizeof err) == 0) return fs_ok(L);
    lua_pushboolean(L, 0);
    if (errno == ENOENT || errno == ENOTDIR) return 1;
    lua_pushstring(L, err);
    return 2;
}

static int fs_dir_id(lua_State *L)
{
    const char *path = provision_checkpath(L, 1);
    char name[NAME_MAX + 1], err[TREE_ERR];
    int dfd = tree_walk(path, 0, name, err, sizeof err);
    if (dfd < 0) return fs_failmsg(L, err, errno);
    struct stat st;
    int r = fstat(dfd, &st), e = errno;
    close(dfd);
    if (r < 0) return fs_fail(L, path, e);
    char id[64];
    tree_identity(&st, id, sizeof id);
    lua_pushstring(L, id);
    return 1;
}

static int fs_readonly(lua_State *L)
{
    const char *path = provision_checkpath(L, 1);
    char name[NAME_MAX + 1], err[TREE_ERR];
    int dfd = tree_walk(path, 0, name, err, sizeof err);
    if (dfd < 0) return fs_failmsg(L, err, errno);
    struct statvfs sv;
    int r = fstatvfs(dfd, &sv), e = errno;
    close(dfd);
    if (r < 0) return fs_fail(L, path, e);
    lua_pushboolean(L, (sv.f_flag & ST_RDONLY) != 0);
    return 1;
}

/* the folder holding path and its last component; -1 with the failure pushed */
static int fs_parent(lua_State *L, const char *path, int follow, char name[NAME_MAX + 1], int *pushed)
{
    char err[TREE_ERR];
    int dfd = tree_walk(path, follow, name, err, sizeof err);
    if (dfd < 0) *pushed = fs_failmsg(L, err, errno);
    return dfd;
}

static int fs_mkdir(lua_State *L)
{
    tree_forget_folders();
    const char *path = provision_checkpath(L, 1);
    mode_t mode = fs_checkmode(L, 2, 0755);
    char name[NAME_MAX + 1], err[TREE_ERR];
    int n, dfd = fs_parent(L, path, 0, name, &n);
    if (dfd < 0) return n;
    int r = tree_mkdir_at(dfd, name, path, (int)mode, err, sizeof err), e = errno;
    struct stat st;
    char id[64] = "";
    if (r == 0 && fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) tree_identity(&st, id, sizeof id);
    if (r == 0 && lua_toboolean(L, 3)) provision_sync_note_dir(dfd, path);   /* later: on disk at sync_written */
    close(dfd);
    if (r < 0) return fs_failmsg(L, err, e);
    lua_pushboolean(L, 1);
    lua_pushstring(L, id);
    return 2;
}

static int fs_chmod(lua_State *L)
{
    tree_forget_folders();
    const char *path = provision_checkpath(L, 1);
    luaL_checkinteger(L, 2);
    mode_t mode = fs_checkmode(L, 2, 0);
    const char *expect = luaL_optstring(L, 3, NULL);
    char name[NAME_MAX + 1], err[TREE_ERR];
    int n, dfd = fs_parent(L, path, 1, name, &n);
    if (dfd < 0) return n;
    int r = tree_set_attrs_at(dfd, name, path, -1, -1, (int)mode, expect, err, sizeof err), e = errno;
    close(dfd);
    return r < 0 ? fs_failmsg(L, err, e) : fs_ok(L);
}

/* a user or group given as a name or a number -> id; -1 for nil.
 * Returns 0, or -1 with a message pushed (an unknown name is an operational
 * failure: the user may be created by an earlier step). */
static int fs_resolve_id(lua_State *L, int idx, int is_group, long *out)
{
    if (lua_isnoneornil(L, idx)) { *out = -1; return 0; }
    if (lua_type(L, idx) == LUA_TNUMBER) {
        lua_Integer n = luaL_checkinteger(L, idx);
        luaL_argcheck(L, n >= 0 && n < (lua_Integer)UINT_MAX, idx, "id out of range");
        *out = (long)n;
        return 0;
    }
    const char *name = luaL_checkstring(L, idx);
    if (is_group) {
        struct group *g = getgrnam(name);
        if (g) { *out = (long)g->gr_gid; return 0; }
        lua_pushfstring(L, "no such group: %s", name);
    } else {
        struct passwd *p = getpwnam(name);
        if (p) { *out = (long)p->pw_uid; return 0; }
        lua_pushfstring(L, "no such user: %s", name);
    }
    return -1;
}

static int fs_chown(lua_State *L)
{
    tree_forget_folders();
    const char *path = provision_checkpath(L, 1);
    const char *expect = luaL_optstring(L, 4, NULL);
    long uid, gid;
    if (fs_resolve_id(L, 2, 0, &uid) < 0 || fs_resolve_id(L, 3, 1, &gid) < 0) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    char name[NAME_MAX + 1], err[TREE_ERR];
    int n, dfd = fs_parent(L, path, 1, name, &n);
    if (dfd < 0) return n;
    int r = tree_set_attrs_at(dfd, name, path, uid, gid, -1, expect, err, sizeof err), e = errno;
    close(dfd);
    return r < 0 ? fs_failmsg(L, err, e) : fs_ok(L);
}

static int fs_id_of(lua_State *L, int is_group)
{
    long id;
    luaL_checkany(L, 1);
    if (fs_resolve_id(L, 1, is_group, &id) < 0) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    lua_pushinteger(L, id);
    return 1;
}
static int fs_uid_of(lua_State *L) { return fs_id_of(L, 0); }
static int fs_gid_of(lua_State *L) { return fs_id_of(L, 1); }

static int fs_user_name(lua_State *L)
{
    struct passwd *p = getpwuid((uid_t)luaL_checkinteger(L, 1));
    if (p) lua_pushstring(L, p->pw_name); else lua_pushnil(L);
    return 1;
}

static int fs_group_name(lua_State *L)
{
    struct group *g = getgrgid((gid_t)luaL_checkinteger(L, 1));
    if (g) lua_pushstring(L, g->gr_name); else lua_pushnil(L);
    return 1;
}

static int fs_readlink(lua_State *L)
{
    const char *path = provision_checkpath(L, 1);
    char name[NAME_MAX + 1];
    int n, dfd = fs_parent(L, path, 0, name, &n);
    if (dfd < 0) return n;
    char buf[PATH_MAX];
    ssize_t r = readlinkat(dfd, name, buf, sizeof buf);
    int e = errno;
    close(dfd);
    if (r < 0) return fs_fail(L, path, e);
    if ((size_t)r == sizeof buf) return fs_fail(L, path, ENAMETOOLONG);
    lua_pushlstring(L, buf, (size_t)r);
    return 1;
}

static int fs_symlink(lua_State *L)
{
    tree_forget_folders();
    const char *target = provision_checkpath(L, 1);
    const char *path = provision_checkpath(L, 2);
    int replace = lua_toboolean(L, 3);
    char name[NAME_MAX + 1];
    int n, dfd = fs_parent(L, path, 0, name, &n);
    if (dfd < 0) return n;
    int e = 0;
    if (!replace) {
        if (symlinkat(target, dfd, name) < 0) e = errno;
    } else {
        /* a random name nobody can plant first, then renamed over path */
        char tmp[NAME_MAX + 1], prefix[NAME_MAX + 1];
        snprintf(prefix, sizeof prefix, "%.240s.provision", name);
        for (int tries = 0; tries < 100; tries++) {
            char rnd[13];
            tree_random_name(rnd, sizeof rnd);
            snprintf(tmp, sizeof tmp, "%.*s.%s", NAME_MAX - 13, prefix, rnd);
            if (symlinkat(target, dfd, tmp) == 0) { e = 0; break; }
            e = errno;
            if (e != EEXIST) break;
        }
        if (!e && renameat(dfd, tmp, dfd, name) < 0) {
            e = errno;
            unlinkat(dfd, tmp, 0);
        }
    }
    if (!e && lua_toboolean(L, 4)) provision_sync_note_dir(dfd, path);   /* later: on disk at sync_written */
    close(dfd);
    return e ? fs_fail(L, path, e) : fs_ok(L);
}

static int fs_remove(lua_State *L)
{
    tree_forget_folders();
    const char *path = provision_checkpath(L, 1);
    char name[NAME_MAX + 1], err[TREE_ERR];
    int n, dfd = fs_parent(L, path, 0, name, &n);
    if (dfd < 0) return n;
    struct stat st;
    int r = fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW), e = errno;
    if (r == 0) { r = tree_remove_at(dfd, name, path, 0, err, sizeof err); e = errno; }
    else snprintf(err, sizeof err, "%s: %s", path, strerror(e));
    close(dfd);
    return r < 0 ? fs_failmsg(L, err, e) : fs_ok(L);
}

static int fs_remove_tree(lua_State *L)
{
    tree_forget_folders();
    size_t len;
    const char *path = provision_checkpath(L, 1);
    len = strlen(path);
    luaL_argcheck(L, len > 0, 1, "empty path");
    /* never the root, however it is spelled ("/.", "/tmp/..", "//"), and
     * never a path ending in . or .. (what it names depends on how it is
     * read; rm -r refuses them too) */
    const char *last = path + len;
    while (last > path && last[-1] == '/') last--;
    const char *slash = last;
    while (slash > path && slash[-1] != '/') slash--;
    if ((last - slash == 1 && slash[0] == '.') || (last - slash == 2 && slash[0] == '.' && slash[1] == '.'))
        return luaL_argerror(L, 1, lua_pushfstring(L, "refusing to remove %s: it ends in . or ..", path));
    if (last == path) return luaL_argerror(L, 1, "refusing to remove /");
    char name[NAME_MAX + 1], err[TREE_ERR];
    int n, dfd = fs_parent(L, path, 0, name, &n);
    if (dfd < 0) {
        if (lua_tointeger(L, -1) == ENOENT) { lua_settop(L, 1); return fs_ok(L); }
        return n;
    }
    int r = tree_remove_at(dfd, name, path, TREE_RECURSIVE | TREE_INTERRUPTIBLE, err, sizeof err), e = errno;
    close(dfd);
    return r < 0 ? fs_failmsg(L, err, e) : fs_ok(L);
}

/* remove_own(path): what a run of ours left (a part file, a staging
 * folder): removed (a folder with all under it) only when it is ours */
static int fs_remove_own(lua_State *L)
{
    tree_forget_folders();
    const char *path = provision_checkpath(L, 1);
    const char *want = luaL_optstring(L, 2, NULL);
    char name[NAME_MAX + 1], err[TREE_ERR], id[64];
    int n, dfd = fs_parent(L, path, 0, name, &n);
    if (dfd < 0) {
        if (lua_tointeger(L, -1) == ENOENT) { lua_settop(L, 1); return fs_ok(L); }
        return n;
    }
    struct stat st;
    int r = 0, e = 0;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        e = errno;
        if (e != ENOENT) r = -1;
        snprintf(err, sizeof err, "%s: %s", path, strerror(e));
    } else if (!tree_trusted_uid(st.st_uid) || (S_ISREG(st.st_mode) && st.st_nlink > 1)
               || (want && (tree_identity(&st, id, sizeof id), strcmp(id, want) != 0))) {
        r = -1; e = EPERM;
        snprintf(err, sizeof err, "%s: not the one a run of ours left: left alone", path);
    } else if (S_ISDIR(st.st_mode) && !want) {
        /* a folder we cannot tell is ours: only when empty */
        r = tree_remove_at(dfd, name, path, 0, err, sizeof err);
        e = errno;
    } else {
        r = tree_remove_at(dfd, name, path, S_ISDIR(st.st_mode) ? TREE_RECURSIVE | TREE_OURS : 0, err, sizeof err);
        e = errno;
    }
    close(dfd);
    return r < 0 ? fs_failmsg(L, err, e) : fs_ok(L);
}

/* remove_if(path, expect) -> true | false, why | nil, msg, errno: remove
 * what a record says was made, only while it is what was made, all through
 * one descriptor of its folder (a folder swapped in between the check and
 * the removal cannot be reached). expect: { type = "file" | "directory" |
 * "link", dir = folder id, id = its own id, uid = the owner it was given
 * (a file: another user's file in its place, even with the same content,
 * is theirs), sha256 = | xxh128 = (a file's digest), target = (a link's) }.
 * false: left (gone, changed, not empty, replaced, another user's), with
 * why. */
static int fs_remove_if(lua_State *L)
{
    tree_forget_folders();
    const char *path = provision_checkpath(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getfield(L, 2, "type");
    const char *type = luaL_optstring(L, -1, "file");
    lua_getfield(L, 2, "dir");
    const char *dir = luaL_optstring(L, -1, NULL);
    lua_getfield(L, 2, "id");
    const char *want_id = luaL_optstring(L, -1, NULL);
    lua_getfield(L, 2, "sha256");
    const char *sha = luaL_optstring(L, -1, NULL);
    lua_getfield(L, 2, "xxh128");
    const char *xxh = luaL_optstring(L, -1, NULL);
    lua_getfield(L, 2, "target");
    const char *target = luaL_optstring(L, -1, NULL);   /* all borrowed: the table keeps them */
    lua_getfield(L, 2, "uid");
    lua_Integer want_uid = luaL_optinteger(L, -1, -1);
    char name[NAME_MAX + 1], err[TREE_ERR], id[64];
    const char *why = NULL;
    int dfd = tree_walk(path, 0, name, err, sizeof err);
    if (dfd < 0) {
        if (errno == ENOENT || errno == ENOTDIR) { lua_pushboolean(L, 0); lua_pushliteral(L, "gone already"); return 2; }
        return fs_failmsg(L, err, errno);
    }
    struct stat ds, st;
    if (dir && fstat(dfd, &ds) == 0 && (tree_identity(&ds, id, sizeof id), strcmp(id, dir) != 0)) {
        why = "its folder is not the one it was written in (moved or replaced since)";
        goto left;
    }
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) { why = "gone already"; goto left; }
    tree_identity(&st, id, sizeof id);
    if (want_id && strcmp(id, want_id) != 0) { why = "not the one made (replaced since)"; goto left; }
    if (strcmp(type, "directory") == 0) {
        if (!S_ISDIR(st.st_mode)) { why = "not a folder now"; goto left; }
        if (unlinkat(dfd, name, AT_REMOVEDIR) < 0) {
            if (errno == ENOTEMPTY || errno == EEXIST) { why = "not empty"; goto left; }
            int e = errno;
            close(dfd);
            return fs_fail(L, path, e);
        }
    } else if (strcmp(type, "link") == 0) {
        char t[PATH_MAX];
        ssize_t n = S_ISLNK(st.st_mode) ? readlinkat(dfd, name, t, sizeof t - 1) : -1;
        if (n < 0 || (target && (t[n] = '\0', strcmp(t, target) != 0))) { why = "changed since it was made"; goto left; }
        if (unlinkat(dfd, name, 0) < 0) { int e = errno; close(dfd); return fs_fail(L, path, e); }
    } else {
        if (!S_ISREG(st.st_mode)) { why = "not a file now"; goto left; }
        if (want_uid >= 0 && (lua_Integer)st.st_uid != want_uid) { why = "another user's file now"; goto left; }
        int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
        struct stat fst;
        char hx[DIGEST_HEX_MAX] = "";
        int e = fd < 0 ? errno : fstat(fd, &fst) < 0 ? errno : !S_ISREG(fst.st_mode) || fst.st_ino != st.st_ino ? EAGAIN : 0;
        if (!e && (sha || xxh)) e = provision_digest_fd(fd, xxh ? DIGEST_XXH128 : DIGEST_SHA256, 0, hx);
        if (fd >= 0) close(fd);
        if (e == EAGAIN) { why = "replaced while being checked"; goto left; }
        if (e) { close(dfd); return fs_fail(L, path, e); }
        if ((sha || xxh) && strcmp(hx, xxh ? xxh : sha) != 0) { why = "changed since it was written"; goto left; }
        /* still that very file under that name, in that very folder */
        struct stat now;
        if (fstatat(dfd, name, &now, AT_SYMLINK_NOFOLLOW) < 0 || now.st_dev != st.st_dev || now.st_ino != st.st_ino
            || now.st_uid != st.st_uid) {
            why = "replaced while being checked";
            goto left;
        }
        if (unlinkat(dfd, name, 0) < 0) { e = errno; close(dfd); return fs_fail(L, path, e); }
    }
    close(dfd);
    lua_pushboolean(L, 1);
    return 1;
left:
    close(dfd);
    lua_pushboolean(L, 0);
    lua_pushstring(L, why);
    return 2;
}

/* temp_name(prefix) -> prefix.RANDOM: a name no other user can guess */
static int fs_temp_name(lua_State *L)
{
    size_t pl;
    const char *prefix = luaL_checklstring(L, 1, &pl);
    luaL_argcheck(L, !strchr(prefix, '/'), 1, "a name, not a path");
    char rnd[13];
    tree_random_name(rnd, sizeof rnd);
    if (pl > NAME_MAX - 13) pl = NAME_MAX - 13;
    lua_pushlstring(L, prefix, pl);
    lua_pushfstring(L, ".%s", rnd);
    lua_concat(L, 2);
    return 1;
}

/* sha256(path) / xxh128(path): the file's digest in hex (digest.c) */
static int fs_digest(lua_State *L, int kind)
{
    const char *path = provision_checkpath(L, 1);
    char hx[DIGEST_HEX_MAX], err[TREE_ERR];
    int e = provision_digest_file(path, kind, 1, hx, err, sizeof err);
    if (e) return fs_failmsg(L, err, e);
    lua_pushstring(L, hx);
    return 1;
}
static int fs_sha256(lua_State *L) { return fs_digest(L, DIGEST_SHA256); }
static int fs_xxh128(lua_State *L) { return fs_digest(L, DIGEST_XXH128); }

static int fs_digest_string(lua_State *L, int kind)
{
    size_t len;
    const char *s = provision_checkbytes(L, 1, &len);   /* a string, or bytes */
    lua_Integer i = luaL_optinteger(L, 2, 1), j = luaL_optinteger(L, 3, (lua_Integer)len);
    luaL_argcheck(L, i >= 1 && i <= (lua_Integer)len + 1, 2, "out of the text");
    luaL_argcheck(L, j >= i - 1 && j <= (lua_Integer)len, 3, "out of the text");
    s += i - 1;
    len = (size_t)(j - i + 1);
    char hx[DIGEST_HEX_MAX];
    int e = provision_digest_mem(s, len, kind, hx);
    if (e) return luaL_error(L, "%s: %s", provision_digest_name(kind), provision_digest_strerror(e));
    lua_pushstring(L, hx);
    return 1;
}
static int fs_sha256_string(lua_State *L) { return fs_digest_string(L, DIGEST_SHA256); }
static int fs_xxh128_string(lua_State *L) { return fs_digest_string(L, DIGEST_XXH128); }

/* listdir: the names read at once (tree.c), sorted byte by byte (what
 * table.sort does in the C locale provision runs in), then into a table
 * made before they were read: only an out-of-memory raise while pushing
 * could leak the list, nothing worse. */
static int fs_listdir(lua_State *L)
{
    const char *path = provision_checkpath(L, 1);
    lua_newtable(L);                                  /* path t */
    char err[TREE_ERR];
    int fd = tree_open(path, O_RDONLY | O_DIRECTORY, 1, err, sizeof err);
    if (fd < 0) return fs_failmsg(L, err, errno);
    char **names;
    size_t n;
    int r = tree_names(fd, 1, &names, &n), e = errno;
    close(fd);
    if (r < 0) return fs_fail(L, path, e);
    for (size_t i = 0; i < n; i++) {
        lua_pushstring(L, names[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    tree_free_names(names, n);
    return 1;
}

/* realpath(path): what the kernel resolves it to (every link followed:
 * for naming a file, never for changing one) */
static int fs_realpath(lua_State *L)
{
    const char *path = provision_checkpath(L, 1);
    char buf[PATH_MAX];
    if (!realpath(path, buf)) return fs_fail(L, path, errno);
    lua_pushstring(L, buf);
    return 1;
}

/* forget_folders(): the folder probe keeps open is forgotten (the runner,
 * before and after a step changes anything: tree_walk_kept) */
static int fs_forget_folders(lua_State *L)
{
    (void)L;
    tree_forget_folders();
    return 0;
}

static int fs_euid(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)geteuid());
    return 1;
}

static const luaL_Reg fs_funcs[] = {
    { "chmod", fs_chmod },
    { "chown", fs_chown },
    { "dir_id", fs_dir_id },
    { "euid", fs_euid },
    { "exists", fs_exists },
    { "forget_folders", fs_forget_folders },
    { "gid_of", fs_gid_of },
    { "holds", fs_holds },
    { "group_name", fs_group_name },
    { "listdir", fs_listdir },
    { "lstat", fs_lstat },
    { "mkdir", fs_mkdir },
    { "probe", fs_probe },
    { "readlink", fs_readlink },
    { "readonly", fs_readonly },
    { "realpath", fs_realpath },
    { "remove", fs_remove },
    { "remove_if", fs_remove_if },
    { "remove_own", fs_remove_own },
    { "remove_tree", fs_remove_tree },
    { "sha256", fs_sha256 },
    { "sha256_string", fs_sha256_string },
    { "xxh128_string", fs_xxh128_string },
    { "stamp", fs_stamp },
    { "stat", fs_stat },
    { "symlink", fs_symlink },
    { "temp_name", fs_temp_name },
    { "uid_of", fs_uid_of },
    { "user_name", fs_user_name },
    { "xxh128", fs_xxh128 },
    { NULL, NULL }
};

int luaopen_provision_fs(lua_State *L)
{
    luaL_newlib(L, fs_funcs);
    return 1;
}
