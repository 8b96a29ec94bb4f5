/* lstate.c: the state folder (lua/provision/state.lua keeps what is in it).
 * What the state says is what teardown removes, so the folder and every
 * file in it must be ones only the user running provision could have
 * written: a folder of another user's (or one others can write to), a
 * state file planted in it, or a lock that is a symbolic link to some
 * other file, is refused with what to do about it, before anything is
 * read or written. Everything after the folder is opened goes through its
 * descriptor (openat, O_NOFOLLOW): swapping the folder's name afterwards
 * changes nothing.
 *
 *   _core.state_dir(path, create) -> dir | nil, message, why
 *       why: "missing" (not there, and create false), "untrusted", "error"
 *   dir:read(name [, "bytes"]) -> text | false (no such file) | nil, message
 *       "bytes": the text as a bytes userdata (provision_checkbytes; #b,
 *       b:sub(i, j), tostring(b)), read
 *       straight into it: a string would be the file's size twice over
 *       while it is made (luaL_Buffer's box, then the string)
 *   dir:write(name, text) -> true | nil, message   (atomic: temp, fsync, rename, 0600)
 *   dir:append(name, text) -> true | nil, message  (O_APPEND, 0600; no fsync)
 *   dir:remove(name) -> true | nil, message
 *   dir:lock(name, wait, shared) -> lock | nil, message, holder_pid
 *   dir:close()
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core.h"
#include "tree.h"

#define STATEDIR_MT "provision.statedir"
#define BYTES_MT "provision.bytes"
#define LOCK_MT "provision.lock"

/* afd: the file append() last wrote to (aname), kept open: a journal line
 * per step is then one write() */
typedef struct { int fd; int afd; char aname[NAME_MAX + 1]; char path[PATH_MAX]; } state_dir;

static void drop_append(state_dir *d)
{
    if (d->afd >= 0) { close(d->afd); d->afd = -1; }
    d->aname[0] = '\0';
}

static state_dir *check_dir(lua_State *L)
{
    state_dir *d = luaL_checkudata(L, 1, STATEDIR_MT);
    if (d->fd < 0) luaL_argerror(L, 1, "the state folder is closed");
    return d;
}

static const char *check_name(lua_State *L, int arg)
{
    const char *n = provision_checkpath(L, arg);
    if (!*n || strchr(n, '/') || strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
        luaL_argerror(L, arg, "a file name in the state folder");
    return n;
}

static int fail3(lua_State *L, const char *why, const char *fmt, ...)
{
    char msg[TREE_ERR + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    lua_pushnil(L);
    lua_pushstring(L, msg);
    lua_pushstring(L, why);
    return 3;
}

/* is what st describes fit to be trusted: ours, and no one else may write
 * it; NULL, or why not */
static const char *untrusted(const struct stat *st, char *buf, size_t n)
{
    if (st->st_uid != geteuid()) {
        snprintf(buf, n, "it belongs to uid %ld, not to the user running provision (uid %ld)",
                 (long)st->st_uid, (long)geteuid());
        return buf;
    }
    if (st->st_mode & 022) {
        snprintf(buf, n, "others can write to it (mode %04o)", (unsigned)(st->st_mode & 07777));
        return buf;
    }
    if (S_ISREG(st->st_mode) && st->st_nlink != 1) {
        snprintf(buf, n, "it has %ld hard links", (long)st->st_nlink);
        return buf;
    }
    return NULL;
}

/* state_dir(path, create) */
static int core_state_dir(lua_State *L)
{
    const char *path = provision_checkpath(L, 1);
    int create = lua_toboolean(L, 2);
    char err[TREE_ERR];
    STACK_ENTER(L);
    state_dir *d = lua_newuserdatauv(L, sizeof *d, 0);   /* ... d */
    d->fd = d->afd = -1;              /* the safe "closed" state first */
    d->aname[0] = '\0';
    luaL_setmetatable(L, STATEDIR_MT);
    snprintf(d->path, sizeof d->path, "%s", path);
    int fd = tree_open(path, O_RDONLY | O_DIRECTORY, 1, err, sizeof err);
    if (fd < 0 && errno == ENOENT && create) {
        /* its parents as mkdir -p makes them (0755), the folder itself 0700 */
        if (tree_mkdirs(path, 0700, err, sizeof err) < 0) return fail3(L, "error", "state folder %s", err);
        fd = tree_open(path, O_RDONLY | O_DIRECTORY, 1, err, sizeof err);
    }
    if (fd < 0) {
        if (errno == ENOENT) return fail3(L, "missing", "state folder %s", err);
        return fail3(L, errno == ELOOP ? "untrusted" : "error", "state folder %s", err);
    }
    struct stat st;
    char why[256];
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return fail3(L, "error", "state folder %s: %s", path, strerror(e));
    }
    if (untrusted(&st, why, sizeof why)) {
        close(fd);
        return fail3(L, "untrusted", "state folder %s is not safe to use: %s. What is recorded there decides "
                     "what teardown removes; remove it, or make it yours and private (chown %ld %s; chmod 0700 %s)",
                     path, why, (long)geteuid(), path, path);
    }
    d->fd = fd;
    STACK_LEAVE(L, 1);
    return 1;
}

static int dir_close(lua_State *L)
{
    state_dir *d = luaL_checkudata(L, 1, STATEDIR_MT);
    drop_append(d);
    if (d->fd >= 0) { close(d->fd); d->fd = -1; }
    return 0;
}

/* open name in the folder with flags; a file there must be trustworthy.
 * -1 with a message pushed (nil, msg) or, ENOENT without O_CREAT, errno set */
static int open_in(lua_State *L, state_dir *d, const char *name, int flags, int *pushed)
{
    *pushed = 0;
    int fd = openat(d->fd, name, flags | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT && !(flags & O_CREAT)) return -1;
        if (e == ELOOP || e == EMLINK) {
            *pushed = fail3(L, "untrusted", "state folder %s: %s is a symbolic link: refusing it (remove it)",
                            d->path, name);
        } else {
            *pushed = fail3(L, "error", "%s/%s: %s", d->path, name, strerror(e));
        }
        errno = e;
        return -1;
    }
    struct stat st;
    char why[256];
    const char *bad = NULL;
    if (fstat(fd, &st) < 0) { snprintf(why, sizeof why, "%s", strerror(errno)); bad = why; }
    else if (!S_ISREG(st.st_mode)) bad = "it is not a regular file";
    else bad = untrusted(&st, why, sizeof why);
    if (bad) {
        close(fd);
        *pushed = fail3(L, "untrusted", "state file %s/%s is not safe to use: %s. What is recorded there decides "
                        "what teardown removes; move it away (or make it yours: chown %ld, chmod 0600)",
                        d->path, name, bad, (long)geteuid());
        errno = EPERM;
        return -1;
    }
    return fd;
}

typedef struct { size_t len; char data[]; } bytes;

const char *provision_checkbytes(lua_State *L, int idx, size_t *len)
{
    if (lua_type(L, idx) == LUA_TSTRING) return lua_tolstring(L, idx, len);
    bytes *b = luaL_testudata(L, idx, BYTES_MT);
    if (!b) luaL_typeerror(L, idx, "string or bytes");
    *len = b->len;
    return b->data;
}

static int bytes_len(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)((bytes *)luaL_checkudata(L, 1, BYTES_MT))->len);
    return 1;
}

/* bytes:sub(i, j) -> string: bytes i to j (1-based, within the text) */
static int bytes_sub(lua_State *L)
{
    bytes *b = luaL_checkudata(L, 1, BYTES_MT);
    lua_Integer i = luaL_checkinteger(L, 2), j = luaL_optinteger(L, 3, (lua_Integer)b->len);
    if (i < 1) i = 1;
    if (j > (lua_Integer)b->len) j = (lua_Integer)b->len;
    lua_pushlstring(L, i <= j ? b->data + i - 1 : "", i <= j ? (size_t)(j - i + 1) : 0);
    return 1;
}

static int bytes_tostring(lua_State *L)
{
    bytes *b = luaL_checkudata(L, 1, BYTES_MT);
    lua_pushlstring(L, b->data, b->len);
    return 1;
}

/* the file at fd (closed here) into a bytes userdata of its size: what is
 * read then (a file that grew: its first bytes; shrank: what there is) */
static int read_bytes(lua_State *L, state_dir *d, const char *name, int fd)
{
    struct stat st;
    size_t size = fstat(fd, &st) == 0 && st.st_size > 0 ? (size_t)st.st_size : 0;
    bytes *b = lua_newuserdatauv(L, sizeof *b + size, 0);
    luaL_setmetatable(L, BYTES_MT);
    b->len = 0;
    while (b->len < size) {
        ssize_t r = read(fd, b->data + b->len, size - b->len);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            return fail3(L, "error", "%s/%s: %s", d->path, name, strerror(e));
        }
        if (r == 0) break;
        b->len += (size_t)r;
    }
    close(fd);
    return 1;
}

static int dir_read(lua_State *L)
{
    state_dir *d = check_dir(L);
    const char *name = check_name(L, 2);
    int as_bytes = lua_isstring(L, 3) && strcmp(lua_tostring(L, 3), "bytes") == 0;
    int pushed, fd = open_in(L, d, name, O_RDONLY, &pushed);
    if (fd < 0) {
        if (pushed) return pushed;
        lua_pushboolean(L, 0);   /* no such file */
        return 1;
    }
    if (as_bytes) return read_bytes(L, d, name, fd);
    /* in one read of the file's size and a byte more (a state file is read
     * whole; then the buffer never grows: a 4 MB state once, not twice
     * over), smaller ones if it grew meanwhile */
    STACK_ENTER(L);
    struct stat st;
    size_t block = fstat(fd, &st) == 0 && st.st_size > 0 ? (size_t)st.st_size + 1 : 8192;
    luaL_Buffer b;
    luaL_buffinitsize(L, &b, block);
    for (;;) {
        if (b.size > b.n) block = b.size - b.n;   /* the room left first */
        char *p = luaL_prepbuffsize(&b, block);
        ssize_t r = read(fd, p, block);
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            return fail3(L, "error", "%s/%s: %s", d->path, name, strerror(e));
        }
        if (r == 0) break;
        luaL_addsize(&b, (size_t)r);
    }
    close(fd);
    luaL_pushresult(&b);                       /* ... text */
    STACK_LEAVE(L, 1);
    return 1;
}

static int dir_write(lua_State *L)
{
    state_dir *d = check_dir(L);
    const char *name = check_name(L, 2);
    size_t len;
    const char *data = luaL_checklstring(L, 3, &len);
    char shown[PATH_MAX + NAME_MAX + 2], err[TREE_ERR];
    snprintf(shown, sizeof shown, "%s/%s", d->path, name);
    if (provision_write_atomic_at(d->fd, name, shown, data, len, 0600, -1, -1, NULL, err, sizeof err) < 0)
        return fail3(L, "error", "%s", err);
    lua_pushboolean(L, 1);
    return 1;
}

static int dir_append(lua_State *L)
{
    state_dir *d = check_dir(L);
    const char *name = check_name(L, 2);
    size_t len;
    const char *data = luaL_checklstring(L, 3, &len);
    if (d->afd < 0 || strcmp(d->aname, name) != 0) {
        drop_append(d);
        int pushed, fd = open_in(L, d, name, O_WRONLY | O_APPEND | O_CREAT, &pushed);
        if (fd < 0) return pushed;
        d->afd = fd;
        snprintf(d->aname, sizeof d->aname, "%s", name);
    }
    int e = provision_write_all(d->afd, data, len) < 0 ? errno : 0;
    if (e) { drop_append(d); return fail3(L, "error", "%s/%s: %s", d->path, name, strerror(e)); }
    lua_pushboolean(L, 1);
    return 1;
}

static int dir_remove(lua_State *L)
{
    state_dir *d = check_dir(L);
    const char *name = check_name(L, 2);
    if (strcmp(d->aname, name) == 0) drop_append(d);
    if (unlinkat(d->fd, name, 0) < 0 && errno != ENOENT)
        return fail3(L, "error", "%s/%s: %s", d->path, name, strerror(errno));
    lua_pushboolean(L, 1);
    return 1;
}

/* ---- the run lock: flock on a file of the folder; the holder's pid in it */
typedef struct { int fd; } run_lock;

static int lock_close(lua_State *L)
{
    run_lock *lk = luaL_checkudata(L, 1, LOCK_MT);
    if (lk->fd >= 0) { close(lk->fd); lk->fd = -1; }
    return 0;
}

/* lock(name, wait, shared) -> lock | nil, message, holder_pid (held by
 * another run) | nil, message (the lock file cannot be opened or locked) */
static int dir_lock(lua_State *L)
{
    state_dir *d = check_dir(L);
    const char *name = check_name(L, 2);
    int wait = lua_toboolean(L, 3);
    int shared = lua_toboolean(L, 4);
    STACK_ENTER(L);
    run_lock *lk = lua_newuserdatauv(L, sizeof *lk, 0);   /* ... lk */
    lk->fd = -1;                       /* safe "closed" state first */
    luaL_setmetatable(L, LOCK_MT);
    int pushed;
    lk->fd = open_in(L, d, name, shared ? O_RDONLY : O_RDWR | O_CREAT, &pushed);
    if (lk->fd < 0) {
        if (pushed) { lua_pop(L, 1); return 2; }   /* nil, message (no pid) */
        lua_pushnil(L);
        lua_pushfstring(L, "%s/%s: %s", d->path, name, strerror(errno));
        return 2;
    }
    for (;;) {
        if (flock(lk->fd, (shared ? LOCK_SH : LOCK_EX) | LOCK_NB) == 0) break;
        if (errno != EWOULDBLOCK && errno != EINTR) {
            int e = errno;
            close(lk->fd); lk->fd = -1;
            lua_pushnil(L);
            lua_pushfstring(L, "%s/%s: %s", d->path, name, strerror(e));
            return 2;
        }
        if (!wait || provision_interrupted()) {
            char buf[32] = "";
            ssize_t n = pread(lk->fd, buf, sizeof buf - 1, 0);
            buf[n > 0 ? n : 0] = '\0';
            close(lk->fd); lk->fd = -1;
            lua_pushnil(L);
            lua_pushfstring(L, "%s/%s is held by another run", d->path, name);
            /* the holder's pid, 0 when the file holds none (strtol, not
             * atoi: a planted or damaged file's digits may not fit an int) */
            char *end;
            errno = 0;
            long pid = strtol(buf, &end, 10);
            if (errno || end == buf || pid <= 0 || pid > INT_MAX) pid = 0;
            lua_pushinteger(L, pid);
            return 3;
        }
        provision_sleep(0.1);
    }
    if (!shared) {
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
        /* written over the last holder's pid, then cut to length: not cut
         * to 0 first, which frees the file's block, and on a file system
         * mounted with discard waits for the disk (issue 19: the 10-step
         * no-op blocked ~2 ms in ftruncate's discard on this VM). The pid
         * is a courtesy: errors are ignored */
        if (pwrite(lk->fd, buf, (size_t)n, 0) == n) {
            if (ftruncate(lk->fd, n) < 0) { /* ignored */ }
        } else if (ftruncate(lk->fd, 0) < 0) { /* a pid half written: none, rather */ }
    }
    STACK_LEAVE(L, 1);
    return 1;
}

static const luaL_Reg dir_methods[] = {
    { "append", dir_append },
    { "close", dir_close },
    { "lock", dir_lock },
    { "read", dir_read },
    { "remove", dir_remove },
    { "write", dir_write },
    { NULL, NULL }
};

/* registered into _core by luaopen_provision_core */
void provision_open_statedir(lua_State *L)
{
    STACK_ENTER(L);                             /* _core */
    if (luaL_newmetatable(L, STATEDIR_MT)) {    /* _core mt */
        luaL_newlib(L, dir_methods);            /* _core mt methods */
        lua_setfield(L, -2, "__index");         /* _core mt */
        lua_pushcfunction(L, dir_close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, dir_close);
        lua_setfield(L, -2, "__close");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, LOCK_MT)) {
        lua_pushcfunction(L, lock_close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, lock_close);
        lua_setfield(L, -2, "__close");
        lua_pushcfunction(L, lock_close);
        lua_setfield(L, -2, "unlock");
        lua_pushvalue(L, -1);                   /* _core mt mt */
        lua_setfield(L, -2, "__index");         /* _core mt: its own methods */
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, BYTES_MT)) {
        lua_pushcfunction(L, bytes_len);
        lua_setfield(L, -2, "__len");
        lua_pushcfunction(L, bytes_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_createtable(L, 0, 1);
        lua_pushcfunction(L, bytes_sub);
        lua_setfield(L, -2, "sub");
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);                              /* _core */
    lua_pushcfunction(L, core_state_dir);
    lua_setfield(L, -2, "state_dir");
    STACK_LEAVE(L, 0);
}
