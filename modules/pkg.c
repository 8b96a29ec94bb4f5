/* pkg.c: "provision._pkg": the dpkg status database read in-process, so the
 * check of pkg.installed spawns no dpkg-query or apt. The resources
 * (pkg.installed, pkg.absent) and apt-get are lua/provision/pkg.lua.
 *
 *   pkg.read_status(path [, names]) -> { [name] = info, ... } | nil, "path: why"
 *       names: a set { ["hello"] = true, ["libc6:amd64"] = true } to keep only
 *       those (a key "name:arch" matches that architecture only); without it,
 *       every package, by name.
 *       info = { status = "install ok installed", version = "2.10-3",
 *                arch = "amd64", installed = true }
 *       A name with several instances (multi-arch) gives the installed one.
 *   pkg.lists_age(dir) -> seconds since the newest *_Packages* file in dir
 *                         changed, count | nil, "why" (none there)
 *
 * The status file is a list of paragraphs ("Field: value" lines, continuation
 * lines starting with a blank, paragraphs separated by an empty line). It is
 * mapped once and scanned; only four fields are looked at. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "core.h"

#define MAP_MT "provision.pkg.map"

/* The mapping lives in userdata so that a Lua error (out of memory while
 * building the result) still unmaps it, through __gc. */
typedef struct { char *p; size_t len; } pkg_map;

static int pkg_map_close(lua_State *L)
{
    pkg_map *m = luaL_checkudata(L, 1, MAP_MT);
    if (m->p) { munmap(m->p, m->len); m->p = NULL; m->len = 0; }
    return 0;
}

typedef struct { const char *p; size_t n; } span;

typedef struct {
    span name, status, version, arch;
} pkg_para;

static int span_eq(span a, const char *s)
{
    size_t n = strlen(s);
    return a.n == n && memcmp(a.p, s, n) == 0;
}

/* "install ok installed", "hold ok installed": the third word is the state */
static int pkg_is_installed(span status)
{
    const char *end = status.p + status.n;
    const char *sp = memrchr(status.p, ' ', status.n);
    span last = sp ? (span){ sp + 1, (size_t)(end - sp - 1) } : status;
    return span_eq(last, "installed");
}

static span pkg_trim(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r')) end--;
    return (span){ p, (size_t)(end - p) };
}

/* stack: ... result ; pushes info table for para into result[key] unless a
 * installed instance is already there */
static void pkg_store(lua_State *L, int result, const char *key, size_t keylen, const pkg_para *pp)
{
    int installed = pkg_is_installed(pp->status);
    lua_pushlstring(L, key, keylen);
    if (lua_rawget(L, result) == LUA_TTABLE && !installed) {
        lua_pop(L, 1);
        return;   /* keep the first (or the installed) instance */
    }
    lua_pop(L, 1);
    lua_pushlstring(L, key, keylen);
    lua_createtable(L, 0, 4);
    lua_pushlstring(L, pp->status.p, pp->status.n);
    lua_setfield(L, -2, "status");
    lua_pushlstring(L, pp->version.p, pp->version.n);
    lua_setfield(L, -2, "version");
    lua_pushlstring(L, pp->arch.p, pp->arch.n);
    lua_setfield(L, -2, "arch");
    lua_pushboolean(L, installed);
    lua_setfield(L, -2, "installed");
    lua_rawset(L, result);
}

/* one paragraph done: keep it if asked for */
static void pkg_emit(lua_State *L, int result, int names, const pkg_para *pp)
{
    if (pp->name.n == 0) return;
    if (names == 0) {
        pkg_store(L, result, pp->name.p, pp->name.n, pp);
        return;
    }
    lua_pushlstring(L, pp->name.p, pp->name.n);
    int want = lua_rawget(L, names) != LUA_TNIL;
    lua_pop(L, 1);
    if (want) pkg_store(L, result, pp->name.p, pp->name.n, pp);
    if (pp->arch.n > 0) {
        char key[512];
        if (pp->name.n + 1 + pp->arch.n < sizeof key) {
            memcpy(key, pp->name.p, pp->name.n);
            key[pp->name.n] = ':';
            memcpy(key + pp->name.n + 1, pp->arch.p, pp->arch.n);
            size_t kl = pp->name.n + 1 + pp->arch.n;
            lua_pushlstring(L, key, kl);
            want = lua_rawget(L, names) != LUA_TNIL;
            lua_pop(L, 1);
            if (want) pkg_store(L, result, key, kl, pp);
        }
    }
}

static int pkg_read_status(lua_State *L)
{
    const char *path = provision_checkpath(L, 1);
    int names = 0;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        names = 2;
    }
    lua_settop(L, 2);
    pkg_map *m = lua_newuserdatauv(L, sizeof *m, 0);   /* closed until mapped */
    m->p = NULL; m->len = 0;
    luaL_setmetatable(L, MAP_MT);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return luaL_fileresult(L, 0, path);
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return luaL_fileresult(L, 0, path);
    }
    if (st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            errno = e;
            return luaL_fileresult(L, 0, path);
        }
        m->p = p;
        m->len = (size_t)st.st_size;
    }
    close(fd);
    lua_newtable(L);
    int result = lua_gettop(L);

    const char *s = m->p, *end = m->p + m->len;
    pkg_para pp;
    memset(&pp, 0, sizeof pp);
    while (s && s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *eol = nl ? nl : end;
        if (eol == s || (eol == s + 1 && *s == '\r')) {          /* paragraph ends */
            pkg_emit(L, result, names, &pp);
            memset(&pp, 0, sizeof pp);
        } else if (*s != ' ' && *s != '\t') {
            const char *colon = memchr(s, ':', (size_t)(eol - s));
            if (colon) {
                span field = { s, (size_t)(colon - s) };
                span *dst = NULL;
                switch (field.n) {
                case 6: if (span_eq(field, "Status")) dst = &pp.status; break;
                case 7:
                    if (span_eq(field, "Package")) dst = &pp.name;
                    else if (span_eq(field, "Version")) dst = &pp.version;
                    break;
                case 12: if (span_eq(field, "Architecture")) dst = &pp.arch; break;
                default: break;
                }
                if (dst) *dst = pkg_trim(colon + 1, eol);
            }
        }
        s = nl ? nl + 1 : end;
    }
    pkg_emit(L, result, names, &pp);
    /* stack: path names map result */
    lua_pushcfunction(L, pkg_map_close);
    lua_pushvalue(L, result - 1);
    lua_call(L, 1, 0);
    return 1;
}

static int pkg_lists_age(lua_State *L)
{
    const char *dir = provision_checkpath(L, 1);
    DIR *d = opendir(dir);
    if (!d) return luaL_fileresult(L, 0, dir);
    int dfd = dirfd(d);
    time_t newest = 0;
    lua_Integer count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strstr(e->d_name, "_Packages")) continue;
        struct stat st;
        if (fstatat(dfd, e->d_name, &st, 0) < 0 || !S_ISREG(st.st_mode)) continue;
        count++;
        if (st.st_mtime > newest) newest = st.st_mtime;
    }
    closedir(d);
    if (count == 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: no package lists (*_Packages*)", dir);
        return 2;
    }
    lua_pushnumber(L, difftime(time(NULL), newest));
    lua_pushinteger(L, count);
    return 2;
}

static const luaL_Reg pkg_funcs[] = {
    { "lists_age", pkg_lists_age },
    { "read_status", pkg_read_status },
    { NULL, NULL }
};

int luaopen_provision_pkg(lua_State *L)
{
    if (luaL_newmetatable(L, MAP_MT)) {
        lua_pushcfunction(L, pkg_map_close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, pkg_map_close);
        lua_setfield(L, -2, "__close");
    }
    lua_pop(L, 1);
    luaL_newlib(L, pkg_funcs);
    return 1;
}
