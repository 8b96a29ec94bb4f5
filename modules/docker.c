/* docker.c: "provision._docker": the Docker Engine API over HTTP through
 * libcurl, on the engine's unix socket (or tcp://). The API calls and the
 * resources are Lua (lua/provision/docker/api.lua, docker/init.lua); this
 * is the transport.
 *
 *   docker.open([host [, tls]]) -> client | nil, "why"
 *       host: "unix:///var/run/docker.sock" (the default) or "tcp://H:P".
 *       tls: { ca = path, cert = path, key = path }: HTTPS to tcp://H:P,
 *       the engine's certificate checked against ca (its name or address
 *       too), ours from cert and key; each file is opened here first, and
 *       one that cannot be read is named ("DOCKER_CERT_PATH: path: why").
 *       One curl handle per client, reused across requests (keep-alive).
 *   client:request(method, path [, opts]) -> status, body | nil, "why" [, errno]
 *       opts: body = string, file = path (streamed as the body),
 *             content_type = "...", timeout = seconds (default 60),
 *             connect_timeout = seconds (default 5),
 *             headers = true (a third result: { ["lower-case-name"] = value })
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
 * The curl handle, the reply buffer and the header list live in the
 * userdata; __gc and __close free them, and nothing raises while a FILE*
 * is open. Transfers poll provision_interrupted() and give up. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <curl/curl.h>
#include "lazy_curl.h"
#include "core.h"
#include "tree.h"
#include "proc.h"

#define CLIENT_MT "provision.docker.client"
#define TUNNEL_MT "provision.docker.tunnel"
#define CERT_PATH_MAX 1024

typedef struct docker_client {
    CURL *curl;
    char *buf;          /* reply body, malloc'd; freed by close */
    size_t len, cap;
    char *hbuf;         /* reply headers (when asked for), malloc'd */
    size_t hlen, hcap;
    int oom;
    int unix_socket;
    char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char base_url[256]; /* http://localhost or http://host:port */
    char host[320];
    int tls;
    char ca[CERT_PATH_MAX], cert[CERT_PATH_MAX], key[CERT_PATH_MAX];
    char curl_err[CURL_ERROR_SIZE];
} docker_client;

static void docker_free(docker_client *c)
{
    if (c->curl) { curl_easy_cleanup(c->curl); c->curl = NULL; }
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
    free(c->hbuf);
    c->hbuf = NULL;
    c->hlen = c->hcap = 0;
}

static docker_client *docker_check(lua_State *L)
{
    docker_client *c = luaL_checkudata(L, 1, CLIENT_MT);
    if (!c->curl) luaL_error(L, "docker client is closed");
    return c;
}

static int docker_gc(lua_State *L)
{
    docker_client *c = luaL_checkudata(L, 1, CLIENT_MT);
    docker_free(c);
    return 0;
}

static size_t docker_write_cb(char *data, size_t size, size_t nmemb, void *ud)
{
    docker_client *c = ud;
    size_t n = size * nmemb;
    if (c->len + n + 1 > c->cap) {
        size_t cap = c->cap ? c->cap : 16384;
        while (cap < c->len + n + 1) cap *= 2;
        char *b = realloc(c->buf, cap);
        if (!b) { c->oom = 1; return 0; }
        c->buf = b;
        c->cap = cap;
    }
    memcpy(c->buf + c->len, data, n);
    c->len += n;
    return n;
}

static size_t docker_header_cb(char *data, size_t size, size_t nmemb, void *ud)
{
    docker_client *c = ud;
    size_t n = size * nmemb;
    if (c->hlen + n + 1 > c->hcap) {
        size_t cap = c->hcap ? c->hcap : 1024;
        while (cap < c->hlen + n + 1) cap *= 2;
        char *b = realloc(c->hbuf, cap);
        if (!b) { c->oom = 1; return 0; }
        c->hbuf = b;
        c->hcap = cap;
    }
    memcpy(c->hbuf + c->hlen, data, n);
    c->hlen += n;
    return n;
}

/* push the headers of the last reply as { ["lower-case-name"] = value } */
static void push_headers(lua_State *L, const char *h, size_t n)
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

static size_t docker_read_cb(char *dest, size_t size, size_t nmemb, void *ud)
{
    FILE *f = ud;
    size_t n = fread(dest, 1, size * nmemb, f);
    if (n == 0 && ferror(f)) return CURL_READFUNC_ABORT;
    return n;
}

static int docker_progress_cb(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)ud; (void)dt; (void)dn; (void)ut; (void)un;
    return provision_interrupted() ? 1 : 0;
}

/* Why a unix socket did not answer: reproduce the connect to get errno. */
static void docker_explain_unix(const docker_client *c, char *out, size_t outlen)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int err = 0;
    if (fd < 0) err = errno;
    else {
        struct sockaddr_un a;
        memset(&a, 0, sizeof a);
        a.sun_family = AF_UNIX;
        memcpy(a.sun_path, c->socket_path, strlen(c->socket_path));
        if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) err = errno;
        close(fd);
    }
    if (err == EACCES || err == EPERM)
        snprintf(out, outlen, "permission denied on %s (add the user to the docker group)", c->socket_path);
    else if (err)
        snprintf(out, outlen, "no Docker engine answers at %s: connect: %s", c->socket_path, strerror(err));
    else
        snprintf(out, outlen, "no Docker engine answers at %s", c->socket_path);
}

/* why a request failed (rc: what curl_easy_perform said) */
static void docker_explain(const docker_client *c, CURLcode rc, const char *method, const char *path,
                           double timeout, char *out, size_t outlen)
{
    if (provision_interrupted())
        snprintf(out, outlen, "docker %s %s: interrupted", method, path);
    else if (c->oom)
        snprintf(out, outlen, "docker %s %s: out of memory", method, path);
    else if (c->unix_socket && rc == CURLE_COULDNT_CONNECT)
        docker_explain_unix(c, out, outlen);
    else if (rc == CURLE_COULDNT_CONNECT)
        snprintf(out, outlen, "no Docker engine answers at %s: %s", c->host, curl_easy_strerror(rc));
    else if (c->tls && rc == CURLE_PEER_FAILED_VERIFICATION)
        snprintf(out, outlen, "the engine at %.100s is not the one DOCKER_CERT_PATH's %.120s vouches for: %.200s",
                 c->host, c->ca, c->curl_err[0] ? c->curl_err : curl_easy_strerror(rc));
    else if (c->tls && (rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_SSL_CACERT_BADFILE))
        snprintf(out, outlen, "TLS to %.100s: DOCKER_CERT_PATH's %.80s, %.80s or %.80s cannot be used: %.90s",
                 c->host, c->ca, c->cert, c->key, c->curl_err[0] ? c->curl_err : curl_easy_strerror(rc));
    else if (c->tls && (rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR))
        snprintf(out, outlen, "TLS to %.100s failed (is it a TLS endpoint that accepts %.120s?): %.200s",
                 c->host, c->cert, c->curl_err[0] ? c->curl_err : curl_easy_strerror(rc));
    else if (rc == CURLE_OPERATION_TIMEDOUT)
        snprintf(out, outlen, "docker %s %s: no answer within %gs", method, path, timeout);
    else
        snprintf(out, outlen, "docker %s %s: %s", method, path, curl_easy_strerror(rc));
}

/* the TLS files of opts table t into c (each must be readable by us):
 * 0, or -1 with a message pushed */
static int docker_tls_files(lua_State *L, int t, docker_client *c)
{
    static const char *const keys[] = { "ca", "cert", "key" };
    char *dest[] = { c->ca, c->cert, c->key };
    for (int i = 0; i < 3; i++) {
        lua_getfield(L, t, keys[i]);
        const char *p = lua_tostring(L, -1);
        if (!p || !*p || strlen(p) >= CERT_PATH_MAX) {
            lua_pushfstring(L, "docker TLS: no usable %s file given", keys[i]);
            return -1;
        }
        int fd = open(p, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0) {
            lua_pushfstring(L, "DOCKER_CERT_PATH: %s: %s", p, strerror(errno));
            return -1;
        }
        close(fd);
        strcpy(dest[i], p);
        lua_pop(L, 1);
    }
    c->tls = 1;
    return 0;
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
        snprintf(c->base_url, sizeof c->base_url, "http://localhost");
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
    c->curl = curl_easy_init();
    if (!c->curl) {
        lua_pushnil(L);
        lua_pushstring(L, "docker: cannot create a curl handle");
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

/* client:request(method, path [, opts]) -> status, body | nil, msg */
static int docker_request(lua_State *L)
{
    docker_client *c = docker_check(L);
    const char *method = luaL_checkstring(L, 2);
    const char *path = luaL_checkstring(L, 3);
    if (path[0] != '/') return luaL_argerror(L, 3, "the API path must start with /");
    if (!lua_isnoneornil(L, 4)) luaL_checktype(L, 4, LUA_TTABLE);
    double timeout = opt_number(L, 4, "timeout", 60);
    double ctimeout = opt_number(L, 4, "connect_timeout", 5);
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
    char hdr_ctype[200];
    snprintf(hdr_ctype, sizeof hdr_ctype, "Content-Type: %s",
             ctype ? ctype : file ? "application/x-tar" : "application/json");
    lua_pushfstring(L, "%s%s", c->base_url, path);
    const char *url = lua_tostring(L, -1);
    STACK_ENTER(L);

    /* From here on: no Lua call that can raise until cleanup. */
    char err[512] = "";
    int err_no = 0;   /* the file's errno, when it is what failed */
    FILE *f = NULL;
    struct curl_slist *headers = NULL;
    long status = 0;
    CURLcode rc;
    CURL *h = c->curl;
    curl_easy_reset(h);
    c->len = 0;
    c->hlen = 0;
    c->oom = 0;
    if (want_headers) {
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, docker_header_cb);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    if (c->unix_socket) curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, c->socket_path);
    c->curl_err[0] = 0;
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->curl_err);
    if (c->tls) {
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca);
        curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert);
        curl_easy_setopt(h, CURLOPT_SSLKEY, c->key);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    }
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(ctimeout * 1000));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, docker_write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, docker_progress_cb);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "provision");
    headers = curl_slist_append(headers, "Expect:");
    if (body || file) headers = curl_slist_append(headers, hdr_ctype);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    if (file) {
        /* reached as core/tree.h says: no link of another user's, no FIFO */
        struct stat st;
        char terr[TREE_ERR];
        int ffd = tree_open_regular(file, terr, sizeof terr);
        f = ffd >= 0 ? fdopen(ffd, "rb") : NULL;
        if (!f || fstat(fileno(f), &st) < 0) {
            err_no = errno;
            if (ffd < 0) snprintf(err, sizeof err, "%.500s", terr);
            else snprintf(err, sizeof err, "%s: %s", file, strerror(err_no));
            if (ffd >= 0 && !f) close(ffd);
            goto cleanup;
        }
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, docker_read_cb);
        curl_easy_setopt(h, CURLOPT_READDATA, f);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)st.st_size);
    } else if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    if (strcmp(method, "GET") != 0 && !(strcmp(method, "POST") == 0 && (body || file)))
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "POST") == 0 && !body && !file) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    }
    if (strcmp(method, "HEAD") == 0) curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
        docker_explain(c, rc, method, path, timeout, err, sizeof err);
        goto cleanup;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
cleanup:
    if (f) fclose(f);
    curl_slist_free_all(headers);
    if (err_no) return provision_fail(L, err_no, "%s", err);
    if (err[0]) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushinteger(L, status);
    lua_pushlstring(L, c->buf ? c->buf : "", c->len);
    if (c->cap > (1u << 22)) { free(c->buf); c->buf = NULL; c->cap = 0; }
    c->len = 0;
    if (!want_headers) { STACK_LEAVE(L, 2); return 2; }
    push_headers(L, c->hbuf ? c->hbuf : "", c->hlen);
    c->hlen = 0;
    STACK_LEAVE(L, 3);
    return 3;
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

/* ---- the tunnel: one process (ssh -N -L socket:...) kept for the run */

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
static int docker_tunnel_start(lua_State *L)
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

/* a metatable registered as name: __gc and __close close, __index looks up */
static int new_metatable(lua_State *L, const char *name, lua_CFunction close, lua_CFunction index)
{
    if (!luaL_newmetatable(L, name)) return 0;  /* mt */
    lua_pushcfunction(L, close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, index);
    lua_setfield(L, -2, "__index");
    return 1;
}

int luaopen_provision_docker(lua_State *L)
{
    char err[256];
    if (provision_load_curl(err, sizeof err) < 0) return luaL_error(L, "%s", err);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    STACK_ENTER(L);
    if (new_metatable(L, CLIENT_MT, docker_gc, docker_index)) {   /* mt */
        luaL_newlib(L, client_methods);         /* mt methods */
        lua_setfield(L, -2, "methods");         /* mt */
    }
    lua_pop(L, 1);
    new_metatable(L, TUNNEL_MT, tunnel_close, tunnel_index);
    lua_pop(L, 1);
    luaL_newlib(L, docker_funcs);
    STACK_LEAVE(L, 1);
    return 1;
}
