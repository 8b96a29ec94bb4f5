/* tunnel.c: the ssh process that forwards an ssh:// engine's socket
 * (docker.h; provision.docker.transport starts one per engine per run). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "core.h"
#include "proc.h"
#include "docker.h"

#define TUNNEL_MT "provision.docker.tunnel"

typedef struct docker_tunnel {
    pid_t pid;          /* 0 once reaped */
    int errfd;          /* its stderr's read end (non-blocking), or -1 */
    char err[2048];     /* the last of what it wrote there */
    size_t errlen;
} docker_tunnel;

/* read what the process wrote on stderr, keeping the last sizeof err - 1 bytes */
static void tunnel_drain(docker_tunnel *t)
{
    char buf[sizeof t->err];
    while (t->errfd >= 0) {
        ssize_t n = read(t->errfd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n == 0) { close(t->errfd); t->errfd = -1; }
            return;
        }
        size_t room = sizeof t->err - 1;
        if ((size_t)n >= room) {
            memcpy(t->err, buf + n - room, room);
            t->errlen = room;
        } else {
            if (t->errlen + (size_t)n > room) {
                size_t drop = t->errlen + (size_t)n - room;
                memmove(t->err, t->err + drop, t->errlen - drop);
                t->errlen -= drop;
            }
            memcpy(t->err + t->errlen, buf, (size_t)n);
            t->errlen += (size_t)n;
        }
        t->err[t->errlen] = 0;
    }
}

/* has it exited? (reaped then) */
static int tunnel_exited(docker_tunnel *t)
{
    if (t->pid <= 0) return 1;
    int st;
    pid_t r = waitpid(t->pid, &st, WNOHANG);
    if (r == t->pid || (r < 0 && errno == ECHILD)) { t->pid = 0; return 1; }
    return 0;
}

static void tunnel_stop(docker_tunnel *t)
{
    if (t->pid > 0 && !tunnel_exited(t)) {
        kill(t->pid, SIGTERM);
        for (int i = 0; i < 200 && !tunnel_exited(t); i++) {
            struct timespec ts = { 0, 10 * 1000 * 1000 };
            nanosleep(&ts, NULL);
        }
        if (t->pid > 0) {
            kill(t->pid, SIGKILL);
            waitpid(t->pid, NULL, 0);
            t->pid = 0;
        }
    }
    if (t->errfd >= 0) { tunnel_drain(t); if (t->errfd >= 0) close(t->errfd); t->errfd = -1; }
}

static int socket_answers(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    memcpy(a.sun_path, path, strlen(path));
    int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* the last non-empty line of s (into out) */
static void last_line(const char *s, char *out, size_t outlen)
{
    const char *end = s + strlen(s);
    while (end > s && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ')) end--;
    const char *b = end;
    while (b > s && b[-1] != '\n') b--;
    snprintf(out, outlen, "%.*s", (int)(end - b), b);
}

/* tunnel(argv, socket [, timeout]) -> tunnel | nil, msg */
int docker_tunnel_start(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *sock = luaL_checkstring(L, 2);
    double timeout = luaL_optnumber(L, 3, 30);
    if (strlen(sock) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return luaL_error(L, "docker.tunnel: socket path too long: %s", sock);
    lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
    luaL_argcheck(L, n >= 1 && n < 200, 1, "an argv of 1 to 199 words");
    const char **argv = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n + 1), 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, i);
        if (lua_type(L, -1) != LUA_TSTRING) return luaL_error(L, "docker.tunnel: argv[%d] is not a string", (int)i);
        argv[i - 1] = lua_tostring(L, -1);
        lua_pop(L, 1);                      /* the table keeps it alive */
    }
    argv[n] = NULL;
    docker_tunnel *t = lua_newuserdatauv(L, sizeof *t, 0);
    memset(t, 0, sizeof *t);
    t->errfd = -1;
    luaL_setmetatable(L, TUNNEL_MT);
    /* from here on nothing raises until the end */
    int errp[2] = { -1, -1 }, rep[2] = { -1, -1 };
    int nul = open("/dev/null", O_WRONLY | O_CLOEXEC);
    char msg[600] = "";
    if (nul < 0 || pipe2(errp, O_CLOEXEC) < 0 || pipe2(rep, O_CLOEXEC) < 0) {
        snprintf(msg, sizeof msg, "%s: cannot start: %s", argv[0], strerror(errno));
        goto out;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) { snprintf(msg, sizeof msg, "%s: fork: %s", argv[0], strerror(errno)); goto out; }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) _exit(1);
        proc_child ch = { .argv = argv, .env = NULL, .cwd = NULL, .cwdfd = -1,
                          .in = -1, .out = nul, .err = errp[1], .report = rep[1] };
        proc_exec_child(&ch);
    }
    t->pid = pid;
    close(errp[1]); errp[1] = -1;
    close(rep[1]); rep[1] = -1;
    ssize_t r;
    do r = read(rep[0], msg, sizeof msg - 1); while (r < 0 && errno == EINTR);
    if (r > 0) {                            /* the exec failed */
        msg[r] = 0;
        waitpid(pid, NULL, 0);
        t->pid = 0;
        goto out;
    }
    t->errfd = errp[0]; errp[0] = -1;
    fcntl(t->errfd, F_SETFL, O_NONBLOCK);
    double waited = 0;
    for (;;) {
        tunnel_drain(t);
        if (tunnel_exited(t)) {
            tunnel_drain(t);
            char line[512];
            last_line(t->err, line, sizeof line);
            snprintf(msg, sizeof msg, "%s", line[0] ? line : "it exited before its socket was there");
            break;
        }
        if (socket_answers(sock)) break;
        if (provision_interrupted()) { snprintf(msg, sizeof msg, "interrupted"); break; }
        if (waited >= timeout) {
            snprintf(msg, sizeof msg, "no forwarded socket after %gs", timeout);
            break;
        }
        struct pollfd p = { .fd = t->errfd, .events = POLLIN };
        poll(&p, t->errfd >= 0 ? 1 : 0, 20);
        waited += 0.02;
    }
out:
    if (nul >= 0) close(nul);
    if (errp[0] >= 0) close(errp[0]);
    if (errp[1] >= 0) close(errp[1]);
    if (rep[0] >= 0) close(rep[0]);
    if (rep[1] >= 0) close(rep[1]);
    if (msg[0]) {
        tunnel_stop(t);
        lua_pushnil(L);
        lua_pushstring(L, msg);
        return 2;
    }
    return 1;
}

static int tunnel_close(lua_State *L)
{
    tunnel_stop(luaL_checkudata(L, 1, TUNNEL_MT));
    return 0;
}

static int tunnel_alive(lua_State *L)
{
    docker_tunnel *t = luaL_checkudata(L, 1, TUNNEL_MT);
    lua_pushboolean(L, !tunnel_exited(t));
    return 1;
}

/* t:stderr([wait_ms]) -> what it wrote (the last 2 KiB) */
static int tunnel_stderr(lua_State *L)
{
    docker_tunnel *t = luaL_checkudata(L, 1, TUNNEL_MT);
    int wait_ms = (int)luaL_optinteger(L, 2, 0);
    if (wait_ms > 0 && t->errfd >= 0) {
        struct pollfd p = { .fd = t->errfd, .events = POLLIN };
        poll(&p, 1, wait_ms);
    }
    tunnel_drain(t);
    lua_pushlstring(L, t->err, t->errlen);
    return 1;
}

static int tunnel_index(lua_State *L)
{
    docker_tunnel *t = luaL_checkudata(L, 1, TUNNEL_MT);
    const char *k = luaL_checkstring(L, 2);
    if (strcmp(k, "pid") == 0) { lua_pushinteger(L, t->pid); return 1; }
    if (strcmp(k, "close") == 0) { lua_pushcfunction(L, tunnel_close); return 1; }
    if (strcmp(k, "alive") == 0) { lua_pushcfunction(L, tunnel_alive); return 1; }
    if (strcmp(k, "stderr") == 0) { lua_pushcfunction(L, tunnel_stderr); return 1; }
    lua_pushnil(L);
    return 1;
}

void docker_tunnel_register(lua_State *L)
{
    if (luaL_newmetatable(L, TUNNEL_MT)) {   /* mt */
        lua_pushcfunction(L, tunnel_close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, tunnel_close);
        lua_setfield(L, -2, "__close");
        lua_pushcfunction(L, tunnel_index);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
}
