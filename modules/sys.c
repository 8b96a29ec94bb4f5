/* sys.c: "provision._sys": facts about this machine, for preflight checks
 * (lua/provision/sys.lua) and recipes. No process is spawned.
 *
 *   uid() gid() -> number          user() -> name | nil
 *   memory() -> total bytes        memory_available() -> bytes | nil
 *   cpus() -> CPUs this process may run on (sched_getaffinity)
 *   disk_free(path) -> bytes available to an unprivileged user | nil, msg
 *   port_free(port [, host="0.0.0.0"]) -> true | false, "why"   (tries to bind TCP)
 *   getenv(name) -> value | nil    hostname() -> name
 *   uname() -> { sysname, release, version, machine }
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>
#include "core.h"

static int sys_uid(lua_State *L) { lua_pushinteger(L, (lua_Integer)getuid()); return 1; }
static int sys_gid(lua_State *L) { lua_pushinteger(L, (lua_Integer)getgid()); return 1; }

static int sys_user(lua_State *L)
{
    struct passwd *p = getpwuid(getuid());
    if (p) lua_pushstring(L, p->pw_name); else lua_pushnil(L);
    return 1;
}

static int sys_memory(lua_State *L)
{
    struct sysinfo si;
    if (sysinfo(&si) < 0) return luaL_fileresult(L, 0, "sysinfo");
    lua_pushinteger(L, (lua_Integer)si.totalram * (lua_Integer)si.mem_unit);
    return 1;
}

/* MemAvailable from /proc/meminfo (what can be had without swapping) */
static int sys_memory_available(lua_State *L)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return luaL_fileresult(L, 0, "/proc/meminfo");
    char line[256];
    long long kb = -1;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1) break;
    }
    fclose(f);
    if (kb < 0) { lua_pushnil(L); lua_pushliteral(L, "/proc/meminfo: no MemAvailable"); return 2; }
    lua_pushinteger(L, (lua_Integer)kb * 1024);
    return 1;
}

static int sys_cpus(lua_State *L)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        lua_pushinteger(L, CPU_COUNT(&set));
        return 1;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    lua_pushinteger(L, n > 0 ? n : 1);
    return 1;
}

static int sys_disk_free(lua_State *L)
{
    const char *path = luaL_optstring(L, 1, ".");
    struct statvfs vf;
    if (statvfs(path, &vf) < 0) return luaL_fileresult(L, 0, path);
    lua_pushinteger(L, (lua_Integer)vf.f_bavail * (lua_Integer)vf.f_frsize);
    return 1;
}

/* port_free(port, host): bind a TCP socket there (SO_REUSEADDR, so a port
 * in TIME_WAIT counts as free, as it would for the server that wants it). */
static int sys_port_free(lua_State *L)
{
    lua_Integer port = luaL_checkinteger(L, 1);
    luaL_argcheck(L, port > 0 && port < 65536, 1, "port must be 1 to 65535");
    const char *host = luaL_optstring(L, 2, "0.0.0.0");
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", (int)port);
    int gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", host, gai_strerror(gai));
        return 2;
    }
    int fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
    int e = 0;
    if (fd < 0) e = errno;
    else {
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, res->ai_addr, res->ai_addrlen) < 0) e = errno;
        close(fd);
    }
    freeaddrinfo(res);
    if (fd < 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "socket: %s", strerror(e));
        return 2;
    }
    if (e) {
        lua_pushboolean(L, 0);
        if (e == EADDRINUSE)
            lua_pushfstring(L, "port %d on %s is in use", (int)port, host);
        else
            lua_pushfstring(L, "port %d on %s: %s", (int)port, host, strerror(e));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int sys_getenv(lua_State *L)
{
    lua_pushstring(L, getenv(luaL_checkstring(L, 1)));
    return 1;
}

static int sys_hostname(lua_State *L)
{
    char buf[256];
    if (gethostname(buf, sizeof buf) < 0) return luaL_fileresult(L, 0, "gethostname");
    buf[sizeof buf - 1] = '\0';
    lua_pushstring(L, buf);
    return 1;
}

static int sys_uname(lua_State *L)
{
    struct utsname u;
    if (uname(&u) < 0) return luaL_fileresult(L, 0, "uname");
    lua_createtable(L, 0, 4);
    lua_pushstring(L, u.sysname); lua_setfield(L, -2, "sysname");
    lua_pushstring(L, u.release); lua_setfield(L, -2, "release");
    lua_pushstring(L, u.version); lua_setfield(L, -2, "version");
    lua_pushstring(L, u.machine); lua_setfield(L, -2, "machine");
    return 1;
}

static const luaL_Reg sys_funcs[] = {
    { "cpus", sys_cpus },
    { "disk_free", sys_disk_free },
    { "getenv", sys_getenv },
    { "gid", sys_gid },
    { "hostname", sys_hostname },
    { "memory", sys_memory },
    { "memory_available", sys_memory_available },
    { "port_free", sys_port_free },
    { "uid", sys_uid },
    { "uname", sys_uname },
    { "user", sys_user },
    { NULL, NULL }
};

int luaopen_provision_sys(lua_State *L)
{
    luaL_newlib(L, sys_funcs);
    return 1;
}
