/* service.c: "provision._service": what the service resources
 * (lua/provision/service.lua) need to check a service without spawning.
 *
 *   service.unit(name) -> { active=, sub=, load=, file_state=, via= } | nil, "why"
 *       asks systemd over D-Bus (its private socket as root, else the system
 *       bus) for a unit's ActiveState, SubState, LoadState, UnitFileState.
 *       libsystemd is opened at run time (dlopen "libsystemd.so.0": every
 *       Debian and Ubuntu system has it, apt depends on it), so the binary
 *       needs no libsystemd at build time and runs where it is missing.
 *   service.alive(pid) -> true | false          (a zombie counts as dead)
 *   service.rc_links(name [, etc]) -> { "/etc/rc2.d/S01name", ... }
 *       the SysV start links of a service in runlevels 2-5 (enabled?)
 *   service.socket_request(path, data, timeout) -> reply | nil, "path: why"
 *       connect to a unix socket, write data (may be ""), read the reply until
 *       the peer closes it (at most 64 KiB). With data "", returns "" once
 *       connected: something listens there.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "core.h"

/* ---------------------------------------------------------------- D-Bus */

/* The few sd-bus entry points we use, with their documented (stable) ABI. */
typedef struct sd_bus sd_bus;
typedef struct { const char *name, *message; int need_free; } sd_bus_error;

static struct {
    int tried;
    void *lib;
    char why[200];
    int (*bus_new)(sd_bus **);
    int (*set_address)(sd_bus *, const char *);
    int (*start)(sd_bus *);
    int (*open_system)(sd_bus **);
    sd_bus *(*unref)(sd_bus *);
    int (*get_string)(sd_bus *, const char *, const char *, const char *, const char *,
                      sd_bus_error *, char **);
    int (*path_encode)(const char *, const char *, char **);
    void (*error_free)(sd_bus_error *);
} sdb;

static int service_load_sdbus(void)
{
    if (sdb.tried) return sdb.lib != NULL;
    sdb.tried = 1;
    sdb.lib = dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!sdb.lib) {
        snprintf(sdb.why, sizeof sdb.why, "libsystemd.so.0 not available: %s", dlerror());
        return 0;
    }
#define SYM(field, name) \
    if (!(*(void **)&sdb.field = dlsym(sdb.lib, name))) { \
        snprintf(sdb.why, sizeof sdb.why, "libsystemd.so.0 has no %s", name); \
        dlclose(sdb.lib); sdb.lib = NULL; return 0; }
    SYM(bus_new, "sd_bus_new")
    SYM(set_address, "sd_bus_set_address")
    SYM(start, "sd_bus_start")
    SYM(open_system, "sd_bus_open_system")
    SYM(unref, "sd_bus_flush_close_unref")
    SYM(get_string, "sd_bus_get_property_string")
    SYM(path_encode, "sd_bus_path_encode")
    SYM(error_free, "sd_bus_error_free")
#undef SYM
    return 1;
}

/* a connection to systemd: the private socket (root), else the system bus */
static sd_bus *service_bus(const char **via, char *why, size_t whylen)
{
    sd_bus *bus = NULL;
    int r;
    if (geteuid() == 0 && access("/run/systemd/private", F_OK) == 0) {
        if ((r = sdb.bus_new(&bus)) >= 0 &&
            (r = sdb.set_address(bus, "unix:path=/run/systemd/private")) >= 0 &&
            (r = sdb.start(bus)) >= 0) {
            *via = "D-Bus (/run/systemd/private)";
            return bus;
        }
        if (bus) sdb.unref(bus);
        bus = NULL;
    }
    r = sdb.open_system(&bus);
    if (r >= 0) { *via = "D-Bus (system bus)"; return bus; }
    snprintf(why, whylen, "cannot reach systemd over D-Bus: %s", strerror(-r));
    return NULL;
}

#define UNIT_PROPS 4
static const char *const unit_props[UNIT_PROPS] = { "ActiveState", "SubState", "LoadState", "UnitFileState" };
static const char *const unit_keys[UNIT_PROPS] = { "active", "sub", "load", "file_state" };

static int service_unit(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    char why[300] = "";
    char vals[UNIT_PROPS][64];
    const char *via = "";
    if (!service_load_sdbus()) {
        lua_pushnil(L);
        lua_pushstring(L, sdb.why);
        return 2;
    }
    /* No Lua call between here and the end of the bus work: nothing raises
     * while the bus or a libsystemd string is live. */
    sd_bus *bus = service_bus(&via, why, sizeof why);
    char *path = NULL;
    int ok = bus != NULL;
    if (ok) {
        int r = sdb.path_encode("/org/freedesktop/systemd1/unit", name, &path);
        if (r < 0) {
            snprintf(why, sizeof why, "%s: bad unit name: %s", name, strerror(-r));
            ok = 0;
        }
    }
    for (int i = 0; ok && i < UNIT_PROPS; i++) {
        sd_bus_error err = { NULL, NULL, 0 };
        char *s = NULL;
        int r = sdb.get_string(bus, "org.freedesktop.systemd1", path,
                               "org.freedesktop.systemd1.Unit", unit_props[i], &err, &s);
        if (r < 0) {
            snprintf(why, sizeof why, "%s: %s: %s", name, unit_props[i],
                     err.message ? err.message : strerror(-r));
            ok = 0;
        } else {
            snprintf(vals[i], sizeof vals[i], "%s", s ? s : "");
        }
        free(s);
        sdb.error_free(&err);
    }
    free(path);
    if (bus) sdb.unref(bus);
    if (!ok) {
        lua_pushnil(L);
        lua_pushstring(L, why);
        return 2;
    }
    lua_createtable(L, 0, UNIT_PROPS + 1);
    for (int i = 0; i < UNIT_PROPS; i++) {
        lua_pushstring(L, vals[i]);
        lua_setfield(L, -2, unit_keys[i]);
    }
    lua_pushstring(L, via);
    lua_setfield(L, -2, "via");
    return 1;
}

/* ---------------------------------------------------------------- SysV */

static int service_alive(lua_State *L)
{
    lua_Integer pid = luaL_checkinteger(L, 1);
    if (pid <= 0 || pid > 0x7fffffff) { lua_pushboolean(L, 0); return 1; }
    if (kill((pid_t)pid, 0) < 0 && errno != EPERM) { lua_pushboolean(L, 0); return 1; }
    /* alive, unless a zombie: /proc/PID/stat's state after "(comm) " */
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%lld/stat", (long long)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int alive = 1;
    if (fd >= 0) {
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n > 0) {
            buf[n] = '\0';
            char *rp = strrchr(buf, ')');
            if (rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X')) alive = 0;
        }
    }
    lua_pushboolean(L, alive);
    return 1;
}

/* rc_links(name [, etc]): /etc/rc[2-5].d/S<NN><name> */
static int service_rc_links(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    const char *etc = luaL_optstring(L, 2, "/etc");
    size_t nlen = strlen(name);
    lua_newtable(L);
    lua_Integer n = 0;
    for (char level = '2'; level <= '5'; level++) {
        char dir[512];
        snprintf(dir, sizeof dir, "%s/rc%c.d", etc, level);
        DIR *d = opendir(dir);
        if (!d) continue;
        struct dirent *e;
        char found[8][256];
        int nf = 0;
        while ((e = readdir(d)) != NULL && nf < 8) {
            const char *s = e->d_name;
            if (s[0] == 'S' && s[1] >= '0' && s[1] <= '9' && s[2] >= '0' && s[2] <= '9' &&
                strlen(s + 3) == nlen && memcmp(s + 3, name, nlen) == 0)
                snprintf(found[nf++], sizeof found[0], "%s", s);
        }
        closedir(d);   /* before any Lua call */
        for (int i = 0; i < nf; i++) {
            lua_pushfstring(L, "%s/%s", dir, found[i]);
            lua_rawseti(L, -2, ++n);
        }
    }
    return 1;
}

/* ---------------------------------------------------------------- sockets */

static int service_socket_request(lua_State *L)
{
    const char *path = provision_checkpath(L, 1);
    size_t dlen;
    const char *data = luaL_optlstring(L, 2, "", &dlen);
    double timeout = luaL_optnumber(L, 3, 5);
    struct sockaddr_un sa;
    if (strlen(path) >= sizeof sa.sun_path) return luaL_argerror(L, 1, "socket path too long");
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);

    char buf[65536];
    size_t got = 0;
    char why[300] = "";
    double deadline = provision_now() + timeout;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, sizeof why, "%s: socket: %s", path, strerror(errno));
        goto done;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        snprintf(why, sizeof why, "%s: %s", path, strerror(errno));
        goto done;
    }
    if (dlen == 0) goto done;
    size_t off = 0;
    while (off < dlen) {
        ssize_t w = send(fd, data + off, dlen - off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR && !provision_interrupted()) continue;
            snprintf(why, sizeof why, "%s: write: %s", path, strerror(errno));
            goto done;
        }
        off += (size_t)w;
    }
    for (;;) {
        if (provision_interrupted()) { snprintf(why, sizeof why, "%s: interrupted", path); goto done; }
        double left = deadline - provision_now();
        if (left <= 0) { snprintf(why, sizeof why, "%s: no reply within %gs", path, timeout); goto done; }
        struct pollfd p = { fd, POLLIN, 0 };
        int pr = poll(&p, 1, left > 0.2 ? 200 : (int)(left * 1000) + 1);
        if (pr < 0 && errno != EINTR) { snprintf(why, sizeof why, "%s: poll: %s", path, strerror(errno)); goto done; }
        if (pr <= 0) continue;
        ssize_t r = read(fd, buf + got, sizeof buf - got);
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            snprintf(why, sizeof why, "%s: read: %s", path, strerror(errno));
            goto done;
        }
        if (r == 0) break;
        got += (size_t)r;
        if (got == sizeof buf) break;
    }
done:
    if (fd >= 0) close(fd);
    if (why[0]) {
        lua_pushnil(L);
        lua_pushstring(L, why);
        return 2;
    }
    lua_pushlstring(L, buf, got);
    return 1;
}

static const luaL_Reg service_funcs[] = {
    { "alive", service_alive },
    { "rc_links", service_rc_links },
    { "socket_request", service_socket_request },
    { "unit", service_unit },
    { NULL, NULL }
};

int luaopen_provision_service(lua_State *L)
{
    luaL_newlib(L, service_funcs);
    return 1;
}
