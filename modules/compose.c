/* compose.c: "provision._compose": the few syscalls compose.lua needs to
 * check a stack without spawning anything: file hashes (has the compose
 * file or .env changed since the last up?), stat (has the compose binary
 * changed since it was detected?) and realpath (the project name is the
 * folder's name).
 *
 *   compose.sha256_file(path) -> hex | false (no such file) | nil, "path: why"
 *   compose.stat(path) -> { size=, mtime=, mode= } | nil, "path: why"
 *   compose.realpath(path) -> absolute path | nil, "path: why"
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core.h"
#include "digest.h"

static int compose_fail(lua_State *L, const char *path, int err)
{
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, strerror(err));
    return 2;
}

static int compose_sha256_file(lua_State *L)
{
    const char *path = provision_checkpath(L, 1);
    char hx[DIGEST_HEX_MAX];
    int e = provision_digest_file(path, DIGEST_SHA256, 0, hx);
    if (e == ENOENT) { lua_pushboolean(L, 0); return 1; }
    if (e) return compose_fail(L, path, e);
    lua_pushstring(L, hx);
    return 1;
}

static int compose_stat(lua_State *L)
{
    const char *path = provision_checkpath(L, 1);
    struct stat st;
    if (stat(path, &st) < 0) return compose_fail(L, path, errno);
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, (lua_Integer)st.st_size);
    lua_setfield(L, -2, "size");
    lua_pushnumber(L, (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec / 1e9);
    lua_setfield(L, -2, "mtime");
    lua_pushinteger(L, (lua_Integer)(st.st_mode & 07777));
    lua_setfield(L, -2, "mode");
    lua_pushboolean(L, S_ISDIR(st.st_mode));
    lua_setfield(L, -2, "dir");
    return 1;
}

static int compose_realpath(lua_State *L)
{
    const char *path = provision_checkpath(L, 1);
    char buf[PATH_MAX];
    if (!realpath(path, buf)) return compose_fail(L, path, errno);
    lua_pushstring(L, buf);
    return 1;
}

static const luaL_Reg compose_funcs[] = {
    { "realpath", compose_realpath },
    { "sha256_file", compose_sha256_file },
    { "stat", compose_stat },
    { NULL, NULL }
};

int luaopen_provision_compose(lua_State *L)
{
    luaL_newlib(L, compose_funcs);
    return 1;
}
