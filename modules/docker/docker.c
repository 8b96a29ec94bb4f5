/* docker.c: "provision._docker": the Docker Engine API over HTTP, on the
 * engine's unix socket through core/uhttp.c (a small HTTP/1.1 client: no
 * libcurl), or tcp:// through libcurl (tcp.c, loaded when such an engine
 * is opened). The API calls and the resources are Lua
 * (lua/provision/docker/api.lua, docker/init.lua); this is the transport.
 *
 *   docker.open([host [, tls]]) -> client | nil, "why"
 *       host: "unix:///var/run/docker.sock" (the default) or "tcp://H:P".
 *       tls: { ca = path, cert = path, key = path }: HTTPS to tcp://H:P,
 *       the engine's certificate checked against ca (its name or address
 *       too), ours from cert and key; each file is opened here first, and
 *       one that cannot be read is named ("DOCKER_CERT_PATH: path: why").
 *       One connection per client, reused across requests (keep-alive):
 *       uhttp's for a unix socket, a curl handle's for tcp://.
 *   client:request(method, path [, opts]) -> status, body | nil, "why" [, errno]
 *       opts: body = string, file = path (streamed as the body),
 *             content_type = "...", timeout = seconds (default 60),
 *             connect_timeout = seconds (default 5),
 *             headers = true (a third result: { ["lower-case-name"] = value }),
 *             max_body = bytes (default 1 GiB: a longer reply fails)
 *       "why" says whether no engine answers or the socket is not permitted;
 *       file cannot be read: nil, "file: why", errno.
 *   client:close()
 *   client.host
 *   docker.tunnel(argv, socket [, timeout]) -> tunnel | nil, "why"
 *       starts argv (an `ssh -N -L socket:...` command line, no shell) in a
 *       session of its own, stdin and stdout /dev/null, its stderr kept,
 *       and waits (timeout seconds, default 30) until socket accepts a
 *       connection; it dies with provision (PR_SET_PDEATHSIG). "why": the
 *       last line it wrote on stderr when it exited first.
 *   tunnel.pid; tunnel:alive() -> bool; tunnel:stderr([wait_ms]) -> the
 *       last lines it wrote (waiting up to wait_ms for more);
 *       tunnel:close(): SIGTERM to its pid (SIGKILL 2 s later), reaped.
 *       __gc and __close close it too.
 *   docker.demux(logs) -> text: the engine's multiplexed log stream (8-byte
 *       frame headers) as plain text; a stream without frames (a tty
 *       container) is returned as it is.
 *
 * The connection, the curl handle, the reply buffers and the header list
 * live in the userdata; __gc and __close free them, and nothing raises
 * while a file is open. Transfers poll provision_interrupted() and give up.
 * The files of the module: docker.h. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core.h"
#include "tree.h"
#include "uhttp.h"
#include "docker.h"

#define CLIENT_MT "provision.docker.client"
#define DEFAULT_MAX_BODY ((size_t)1 << 30)

static void docker_free(docker_client *c)
{
    if (c->unix_socket) {
        uhttp_conn_close(&c->conn);
        uhttp_parser_free(&c->reply);
    }
    c->open = 0;
    docker_tcp_free(c);
}

static docker_client *docker_check(lua_State *L)
{
    docker_client *c = luaL_checkudata(L, 1, CLIENT_MT);
    if (!c->open) luaL_error(L, "docker client is closed");
    return c;
}

static int docker_gc(lua_State *L)
{
    docker_client *c = luaL_checkudata(L, 1, CLIENT_MT);
    docker_free(c);
    return 0;
}

/* push the headers of the last reply as { ["lower-case-name"] = value } */
void docker_push_headers(lua_State *L, const char *h, size_t n)
{
    STACK_ENTER(L);
    lua_newtable(L);                                /* t */
    size_t i = 0;
    while (i < n) {
        size_t e = i;
        while (e < n && h[e] != '\n') e++;
        size_t le = e;
        if (le > i && h[le - 1] == '\r') le--;
        const char *colon = memchr(h + i, ':', le - i);
        if (colon) {
            luaL_Buffer b;
            luaL_buffinit(L, &b);
            for (const char *p = h + i; p < colon; p++) luaL_addchar(&b, (char)tolower((unsigned char)*p));
            luaL_pushresult(&b);                    /* t name */
            const char *v = colon + 1;
            while (v < h + le && (*v == ' ' || *v == '\t')) v++;
            lua_pushlstring(L, v, (size_t)(h + le - v));   /* t name value */
            lua_settable(L, -3);                    /* t */
        }
        i = e + 1;
    }
    STACK_LEAVE(L, 1);
}

/* why the unix socket did not answer (err: connect's errno) */
static void docker_explain_unix(const docker_client *c, int err, char *out, size_t outlen)
{
    if (err == EACCES || err == EPERM)
        snprintf(out, outlen, "permission denied on %s (add the user to the docker group)", c->socket_path);
    else if (err)
        snprintf(out, outlen, "no Docker engine answers at %s: connect: %s", c->socket_path, strerror(err));
    else
        snprintf(out, outlen, "no Docker engine answers at %s", c->socket_path);
}

/* open([host [, tls]]) -> client | nil, msg */
static int docker_open(lua_State *L)
{
    const char *host = luaL_optstring(L, 1, NULL);
    if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);   /* the client goes at 3 */
    if (!host || !*host) host = "unix:///var/run/docker.sock";
    docker_client *c = lua_newuserdatauv(L, sizeof *c, 0);
    memset(c, 0, sizeof *c);
    luaL_setmetatable(L, CLIENT_MT);
    if (strncmp(host, "unix://", 7) == 0) {
        const char *path = host + 7;
        if (strlen(path) == 0 || strlen(path) >= sizeof c->socket_path) {
            lua_pushnil(L);
            lua_pushfstring(L, "DOCKER_HOST %s: not a usable socket path", host);
            return 2;
        }
        c->unix_socket = 1;
        strcpy(c->socket_path, path);
        uhttp_conn_init(&c->conn, path);
        uhttp_parser_init(&c->reply, 0, 0);
    } else if (strncmp(host, "tcp://", 6) == 0 || strncmp(host, "http://", 7) == 0) {
        const char *hp = strchr(host, '/') + 2;
        size_t n = strcspn(hp, "/");
        if (n == 0 || n > 200) {
            lua_pushnil(L);
            lua_pushfstring(L, "DOCKER_HOST %s: no host:port", host);
            return 2;
        }
        if (!lua_isnil(L, 2)) {
            if (docker_tls_files(L, 2, c) < 0) { lua_pushnil(L); lua_insert(L, -2); return 2; }
        }
        snprintf(c->base_url, sizeof c->base_url, "%s://%.*s", c->tls ? "https" : "http", (int)n, hp);
    } else {
        lua_pushnil(L);
        lua_pushfstring(L, "DOCKER_HOST %s: only unix:// and tcp:// are supported", host);
        return 2;
    }
    snprintf(c->host, sizeof c->host, "%s", host);
    c->open = 1;
    if (c->unix_socket) return 1;
    char err[256];
    if (docker_tcp_init(c, err, sizeof err) < 0) {   /* tcp://: libcurl, loaded now */
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    return 1;
}

static double opt_number(lua_State *L, int t, const char *k, double def)
{
    if (lua_type(L, t) != LUA_TTABLE) return def;
    lua_getfield(L, t, k);
    double v = luaL_optnumber(L, -1, def);
    lua_pop(L, 1);
    return v;
}

static const char *opt_string(lua_State *L, int t, const char *k, size_t *len)
{
    if (lua_type(L, t) != LUA_TTABLE) return NULL;
    lua_getfield(L, t, k);   /* left on the stack: the string stays alive */
    if (lua_isnil(L, -1)) return NULL;
    return luaL_checklstring(L, -1, len);
}

/* the reply of the last request pushed: status, body [, headers] */
static int push_reply(lua_State *L, int status, const char *body, size_t len, int want_headers, const char *h, size_t hlen)
{
    lua_pushinteger(L, status);
    lua_pushlstring(L, body ? body : "", len);
    if (!want_headers) return 2;
    docker_push_headers(L, h ? h : "", hlen);
    return 3;
}

/* one request on the unix socket (core/uhttp.c) */
static int request_unix(lua_State *L, docker_client *c, const docker_req *r)
{
    uhttp_request rq = { .method = r->method, .target = r->path, .content_type = r->ctype, .body = r->body,
                         .body_len = r->body_len, .body_fd = -1, .timeout = r->timeout,
                         .connect_timeout = r->connect_timeout, .max_body = r->max_body };
    const char *method = r->method, *path = r->path, *file = r->file;
    int want_headers = r->want_headers;
    char err[UHTTP_ERR + 64];
    int eno = 0;
    if (file) {
        /* reached as core/tree.h says: no link of another user's, no FIFO */
        struct stat st;
        char terr[TREE_ERR];
        int fd = tree_open_regular(file, terr, sizeof terr);
        if (fd < 0) return provision_fail(L, errno, "%s", terr);
        if (fstat(fd, &st) < 0) {
            eno = errno;
            close(fd);
            return provision_fail(L, eno, "%s: %s", file, strerror(eno));
        }
        rq.body_fd = fd;
        rq.body_len = (size_t)st.st_size;
    }
    int rc = uhttp_exchange(&c->conn, &rq, &c->reply, err, sizeof err, &eno);
    if (rq.body_fd >= 0) close(rq.body_fd);
    char msg[UHTTP_ERR + 600];
    if (rc == UHTTP_OK) {
        uhttp_parser *p = &c->reply;
        int n = push_reply(L, p->status, p->body.p, p->body.len, want_headers, p->headers.p, p->headers.len);
        if (p->body.cap > (1u << 22)) { free(p->body.p); p->body.p = NULL; p->body.len = p->body.cap = 0; }
        return n;
    }
    if (rc == UHTTP_FILE) return provision_fail(L, eno, "%s: %s", file, err);
    if (rc == UHTTP_INTERRUPTED || provision_interrupted())
        snprintf(msg, sizeof msg, "docker %s %s: interrupted", method, path);
    else if (rc == UHTTP_CONNECT)
        docker_explain_unix(c, eno, msg, sizeof msg);
    else if (rc == UHTTP_TIMEOUT)
        snprintf(msg, sizeof msg, "docker %s %s: no answer within %gs (the engine at %.300s)", method, path,
                 rq.timeout, c->socket_path);
    else if (rc == UHTTP_NOMEM)
        snprintf(msg, sizeof msg, "docker %s %s: out of memory", method, path);
    else if (rc == UHTTP_IO)   /* (the connection failed mid-request: the engine stopped, say; which one) */
        snprintf(msg, sizeof msg, "docker %s %s: %s (the engine at %.300s)", method, path, err, c->socket_path);
    else
        snprintf(msg, sizeof msg, "docker %s %s: %s", method, path, err);
    lua_pushnil(L);
    lua_pushstring(L, msg);
    return 2;
}

/* a method or a request target fit for a request line */
static int fit(const char *s, int target)
{
    if (!*s) return 0;
    for (const unsigned char *q = (const unsigned char *)s; *q; q++)
        if (*q <= 0x20 || *q == 0x7f || (!target && !isalpha(*q))) return 0;
    return 1;
}

/* client:request(method, path [, opts]) -> status, body | nil, msg */
static int docker_request(lua_State *L)
{
    docker_client *c = docker_check(L);
    const char *method = luaL_checkstring(L, 2);
    const char *path = luaL_checkstring(L, 3);
    if (path[0] != '/') return luaL_argerror(L, 3, "the API path must start with /");
    if (!fit(path, 1)) return luaL_argerror(L, 3, "no blanks or control characters in an API path");
    if (!fit(method, 0)) return luaL_argerror(L, 2, "a method is letters (GET, POST, ...)");
    if (!lua_isnoneornil(L, 4)) luaL_checktype(L, 4, LUA_TTABLE);
    double timeout = opt_number(L, 4, "timeout", 60);
    double ctimeout = opt_number(L, 4, "connect_timeout", 5);
    double max_body = opt_number(L, 4, "max_body", (double)DEFAULT_MAX_BODY);
    size_t body_len = 0;
    const char *body = opt_string(L, 4, "body", &body_len);
    const char *file = opt_string(L, 4, "file", NULL);
    const char *ctype = opt_string(L, 4, "content_type", NULL);
    int want_headers = 0;
    if (lua_type(L, 4) == LUA_TTABLE) {
        lua_getfield(L, 4, "headers");
        want_headers = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    if (ctype && strpbrk(ctype, "\r\n")) return luaL_argerror(L, 4, "content_type may not hold a line break");
    if (!ctype) ctype = file ? "application/x-tar" : "application/json";
    docker_req r = { .method = method, .path = path, .timeout = timeout, .connect_timeout = ctimeout,
                     .max_body = max_body > 0 ? (size_t)max_body : 0, .body = body, .body_len = body_len,
                     .file = file, .ctype = ctype, .want_headers = want_headers };
    return c->unix_socket ? request_unix(L, c, &r) : docker_tcp_request(L, c, &r);
}

static int docker_close(lua_State *L)
{
    docker_client *c = luaL_checkudata(L, 1, CLIENT_MT);
    docker_free(c);
    return 0;
}

static int docker_index(lua_State *L)
{
    docker_client *c = luaL_checkudata(L, 1, CLIENT_MT);
    const char *k = luaL_checkstring(L, 2);
    if (strcmp(k, "host") == 0) { lua_pushstring(L, c->host); return 1; }
    if (strcmp(k, "socket") == 0) {
        if (c->unix_socket) lua_pushstring(L, c->socket_path); else lua_pushnil(L);
        return 1;
    }
    luaL_getmetatable(L, CLIENT_MT);
    lua_getfield(L, -1, "methods");
    lua_getfield(L, -1, k);
    return 1;
}

/* demux(stream) -> text */
static int docker_demux(lua_State *L)
{
    size_t n;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
    /* framed: [stream 0|1|2, 0, 0, 0, size BE32] payload */
    size_t i = 0;
    int framed = n >= 8;
    while (framed && i < n) {
        if (n - i < 8 || s[i] > 2 || s[i + 1] || s[i + 2] || s[i + 3]) { framed = 0; break; }
        size_t len = ((size_t)s[i + 4] << 24) | ((size_t)s[i + 5] << 16) | ((size_t)s[i + 6] << 8) | s[i + 7];
        if (len > n - i - 8) { framed = 0; break; }
        i += 8 + len;
    }
    if (!framed) { lua_settop(L, 1); return 1; }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (i = 0; i < n;) {
        size_t len = ((size_t)s[i + 4] << 24) | ((size_t)s[i + 5] << 16) | ((size_t)s[i + 6] << 8) | s[i + 7];
        luaL_addlstring(&b, (const char *)s + i + 8, len);
        i += 8 + len;
    }
    luaL_pushresult(&b);
    return 1;
}

static const luaL_Reg client_methods[] = {
    { "close", docker_close },
    { "request", docker_request },
    { NULL, NULL }
};

static const luaL_Reg docker_funcs[] = {
    { "demux", docker_demux },
    { "open", docker_open },
    { "tunnel", docker_tunnel_start },
    { NULL, NULL }
};

/* libcurl is not loaded here: only docker.open of a tcp:// engine does */
int luaopen_provision_docker(lua_State *L)
{
    STACK_ENTER(L);
    if (luaL_newmetatable(L, CLIENT_MT)) {      /* mt */
        lua_pushcfunction(L, docker_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, docker_gc);
        lua_setfield(L, -2, "__close");
        lua_pushcfunction(L, docker_index);
        lua_setfield(L, -2, "__index");
        luaL_newlib(L, client_methods);         /* mt methods */
        lua_setfield(L, -2, "methods");         /* mt */
    }
    lua_pop(L, 1);
    docker_tunnel_register(L);
    luaL_newlib(L, docker_funcs);
    STACK_LEAVE(L, 1);
    return 1;
}
