/* fs.c: "provision._fs": file-system primitives for the fs resources
 * (lua/provision/fs.lua) and for recipes. All in-process: a no-op re-run of a
 * recipe with a thousand fs steps is a thousand stat()s and hashes, not a
 * thousand processes.
 *
 *   stat(path) / lstat(path) -> { type=, mode=, uid=, gid=, size=, mtime= } | nil, msg, errno
 *       type: "file", "directory", "link" (lstat only), "fifo", "socket", "device"
 *   exists(path) -> boolean                  (lstat: a dangling link exists)
 *   mkdir(path [, mode=0755]) -> true | nil, msg, errno      (one level)
 *   chmod(path, mode) -> true | nil, msg, errno
 *   chown(path, owner, group) -> true | nil, msg, errno
 *       owner/group: a name, a number, or nil (left as is)
 *   uid_of(user) / gid_of(group) -> number | nil, msg     (a number is checked only for range)
 *   user_name(uid) / group_name(gid) -> name | nil
 *   readlink(path) -> target | nil, msg, errno
 *   symlink(target, path) -> true | nil, msg, errno
 *   remove(path) -> true | nil, msg, errno  (a file, a link or an empty folder)
 *   remove_tree(path) -> true | nil, msg    (recursive; never follows links;
 *                                            a missing path is not an error)
 *   write(path, data [, mode]) -> true | nil, msg, errno   (atomic: temp, fsync, rename)
 *   read(path) -> data | nil, msg, errno
 *   sha256(path) -> hex | nil, msg, errno   (streamed)
 *   xxh128(path) -> hex | nil, msg, errno   (XXH3-128; core/digest.c)
 *   stamp(path) -> text | nil, msg, errno   (device, inode, size, mtime, ctime)
 *   sha256_string(s) -> hex
 *   listdir(path) -> { names, sorted } | nil, msg, errno
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core.h"
#include "digest.h"

/* nil, "path: why", errno: the operational-failure convention */
static int fs_fail(lua_State *L, const char *path, int e)
{
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, strerror(e));
    lua_pushinteger(L, e);
    return 3;
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

static int fs_pushstat(lua_State *L, const char *path, int follow)
{
    struct stat st;
    int r = follow ? stat(path, &st) : lstat(path, &st);
    if (r < 0) return fs_fail(L, path, errno);
    lua_createtable(L, 0, 6);
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
    return 1;
}

static int fs_stat(lua_State *L) { return fs_pushstat(L, provision_checkpath(L, 1), 1); }
static int fs_lstat(lua_State *L) { return fs_pushstat(L, provision_checkpath(L, 1), 0); }

/* stamp(path) -> text | nil, msg, errno (digest.h): without loading what
 * provision._http loads (libcurl), for docker.image and archive.extract */
static int fs_stamp(lua_State *L)
{
    const char *path = provision_checkpath(L, 1);
    struct stat st;
    if (stat(path, &st) < 0) return fs_fail(L, path, errno);
    char stamp[128];
    provision_stamp(&st, stamp, sizeof stamp);
    lua_pushstring(L, stamp);
    return 1;
}

static int fs_exists(lua_State *L)
{
    struct stat st;
    lua_pushboolean(L, lstat(provision_checkpath(L, 1), &st) == 0);
    return 1;
}

static mode_t fs_checkmode(lua_State *L, int idx, lua_Integer def)
{
    lua_Integer m = luaL_optinteger(L, idx, def);
    luaL_argcheck(L, m >= 0 && m <= 07777, idx, "mode out of range (0 to 07777)");
    return (mode_t)m;
}

static int fs_mkdir(lua_State *L)
{
    const char *path = provision_checkpath(L, 1);
    mode_t mode = fs_checkmode(L, 2, 0755);
    if (mkdir(path, mode) < 0) return fs_fail(L, path, errno);
    /* mkdir's mode is filtered by the umask: say exactly what was asked */
    if (chmod(path, mode) < 0) return fs_fail(L, path, errno);
    lua_pushboolean(L, 1);
    return 1;
}

static int fs_chmod(lua_State *L)
{
    const char *path = provision_checkpath(L, 1);
    mode_t mode = fs_checkmode(L, 2, 0);
    luaL_checkinteger(L, 2);
    if (chmod(path, mode) < 0) return fs_fail(L, path, errno);
    lua_pushboolean(L, 1);
    return 1;
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
    const char *path = provision_checkpath(L, 1);
    long uid, gid;
    if (fs_resolve_id(L, 2, 0, &uid) < 0 || fs_resolve_id(L, 3, 1, &gid) < 0) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    if (lchown(path, (uid_t)uid, (gid_t)gid) < 0) return fs_fail(L, path, errno);
    lua_pushboolean(L, 1);
    return 1;
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
    char buf[PATH_MAX];
    ssize_t n = readlink(path, buf, sizeof buf);
    if (n < 0) return fs_fail(L, path, errno);
    if ((size_t)n == sizeof buf) return fs_fail(L, path, ENAMETOOLONG);
    lua_pushlstring(L, buf, (size_t)n);
    return 1;
}

static int fs_symlink(lua_State *L)
{
    const char *target = provision_checkpath(L, 1);
    const char *path = provision_checkpath(L, 2);
    if (symlink(target, path) < 0) return fs_fail(L, path, errno);
    lua_pushboolean(L, 1);
    return 1;
}

static int fs_remove(lua_State *L)
{
    const char *path = provision_checkpath(L, 1);
    struct stat st;
    if (lstat(path, &st) < 0) return fs_fail(L, path, errno);
    if ((S_ISDIR(st.st_mode) ? rmdir(path) : unlink(path)) < 0) return fs_fail(L, path, errno);
    lua_pushboolean(L, 1);
    return 1;
}

/* Remove name (relative to dirfd) and everything under it, never following
 * a link. parent is a folder fd (or AT_FDCWD); path is the name's full path, for messages; path has room for
 * PATH_MAX bytes. Returns 0, or -1 with err set. */
static int fs_rm_at(int parent, const char *name, char *path, char *err, size_t errlen)
{
    struct stat st;
    if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT) return 0;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        if (unlinkat(parent, name, 0) < 0 && errno != ENOENT) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            return -1;
        }
        return 0;
    }
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) { snprintf(err, errlen, "%s: %s", path, strerror(errno)); return -1; }
    DIR *d = fdopendir(fd);
    if (!d) { snprintf(err, errlen, "%s: %s", path, strerror(errno)); close(fd); return -1; }
    size_t plen = strlen(path);
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        if (provision_interrupted()) { snprintf(err, errlen, "%s: interrupted", path); rc = -1; break; }
        size_t nlen = strlen(de->d_name);
        if (plen + 1 + nlen >= PATH_MAX) {
            snprintf(err, errlen, "%s/%s: %s", path, de->d_name, strerror(ENAMETOOLONG));
            rc = -1;
            break;
        }
        path[plen] = '/';
        memcpy(path + plen + 1, de->d_name, nlen + 1);
        rc = fs_rm_at(dirfd(d), de->d_name, path, err, errlen);
        path[plen] = '\0';
    }
    closedir(d);
    if (rc == 0 && unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        rc = -1;
    }
    return rc;
}

static int fs_remove_tree(lua_State *L)
{
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
    struct stat here, root;
    if (lstat(path, &here) == 0 && stat("/", &root) == 0 && here.st_dev == root.st_dev && here.st_ino == root.st_ino)
        return luaL_argerror(L, 1, "refusing to remove /");
    if (len >= PATH_MAX) return fs_fail(L, path, ENAMETOOLONG);
    char buf[PATH_MAX], err[PATH_MAX + 128];
    memcpy(buf, path, len + 1);
    if (fs_rm_at(AT_FDCWD, path, buf, err, sizeof err) < 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}


/* sha256(path) / xxh128(path): the file's digest in hex (digest.c) */
static int fs_digest(lua_State *L, int kind)
{
    const char *path = provision_checkpath(L, 1);
    char hx[DIGEST_HEX_MAX];
    int e = provision_digest_file(path, kind, 0, hx);
    if (e) return fs_fail(L, path, e);
    lua_pushstring(L, hx);
    return 1;
}
static int fs_sha256(lua_State *L) { return fs_digest(L, DIGEST_SHA256); }
static int fs_xxh128(lua_State *L) { return fs_digest(L, DIGEST_XXH128); }

static int fs_sha256_string(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    provision_digest d;
    char hx[DIGEST_HEX_MAX];
    int e = provision_digest_init(&d, DIGEST_SHA256);
    if (!e) {
        provision_digest_update(&d, s, len);
        provision_digest_hex(&d, hx);
    }
    provision_digest_free(&d);
    if (e) return luaL_error(L, "sha256: libcrypto failed");
    lua_pushstring(L, hx);
    return 1;
}

/* listdir: the names go into a Lua table as they are read; the DIR* is
 * closed before anything that could raise (the table is built first). */
static int fs_listdir(lua_State *L)
{
    const char *path = provision_checkpath(L, 1);
    lua_newtable(L);
    DIR *d = opendir(path);
    if (!d) return fs_fail(L, path, errno);
    lua_Integer n = 0;
    struct dirent *de;
    int ok = lua_checkstack(L, 4);
    while (ok && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        /* lua_pushstring can only fail on out-of-memory, where Lua's
         * allocator has already failed and the process is in trouble; the
         * DIR* would leak then, nothing worse. */
        lua_pushstring(L, de->d_name);
        lua_rawseti(L, -2, ++n);
    }
    closedir(d);
    /* sort with table.sort */
    lua_getglobal(L, "table");
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "sort");
        lua_pushvalue(L, -3);
        lua_call(L, 1, 0);
    }
    lua_pop(L, 1);
    return 1;
}

static const luaL_Reg fs_funcs[] = {
    { "chmod", fs_chmod },
    { "chown", fs_chown },
    { "exists", fs_exists },
    { "gid_of", fs_gid_of },
    { "group_name", fs_group_name },
    { "listdir", fs_listdir },
    { "lstat", fs_lstat },
    { "mkdir", fs_mkdir },
    { "readlink", fs_readlink },
    { "remove", fs_remove },
    { "remove_tree", fs_remove_tree },
    { "sha256", fs_sha256 },
    { "xxh128", fs_xxh128 },
    { "stamp", fs_stamp },
    { "sha256_string", fs_sha256_string },
    { "stat", fs_stat },
    { "symlink", fs_symlink },
    { "uid_of", fs_uid_of },
    { "user_name", fs_user_name },
    { NULL, NULL }
};

int luaopen_provision_fs(lua_State *L)
{
    luaL_newlib(L, fs_funcs);
    return 1;
}
