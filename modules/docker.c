/* docker.c: "provision._docker": the Docker Engine API over HTTP through
 * libcurl, on the engine's unix socket (or tcp://). The API calls and the
 * resources are Lua (lua/provision/docker/api.lua, docker/init.lua); this
 * is the transport.
 *
 *   docker.open([host]) -> client
 *       host: "unix:///var/run/docker.sock" (the default) or "tcp://H:P".
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
 *   docker.demux(logs) -> text: the engine's multiplexed log stream (8-byte
 *       frame headers) as plain text; a stream without frames (a tty
 *       container) is returned as it is.
 *
 * The curl handle, the reply buffer and the header list live in the
 * userdata; __gc and __close free them, and nothing raises while a FILE*
 * is open. Transfers poll provision_interrupted() and give up. */
#include <ctype.h>
#include <errno.h>
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

#define CLIENT_MT "provision.docker.client"

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
    else if (rc == CURLE_OPERATION_TIMEDOUT)
        snprintf(out, outlen, "docker %s %s: no answer within %gs", method, path, timeout);
    else
        snprintf(out, outlen, "docker %s %s: %s", method, path, curl_easy_strerror(rc));
}

/* open([host]) -> client | nil, msg */
static int docker_open(lua_State *L)
{
    const char *host = luaL_optstring(L, 1, NULL);
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
        snprintf(c->base_url, sizeof c->base_url, "http://%.*s", (int)n, hp);
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

static const luaL_Reg client_methods[] = {
    { "close", docker_close },
    { "request", docker_request },
    { NULL, NULL }
};

static const luaL_Reg docker_funcs[] = {
    { "demux", docker_demux },
    { "open", docker_open },
    { NULL, NULL }
};

int luaopen_provision_docker(lua_State *L)
{
    char err[256];
    if (provision_load_curl(err, sizeof err) < 0) return luaL_error(L, "%s", err);
    curl_global_init(CURL_GLOBAL_DEFAULT);
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
    luaL_newlib(L, docker_funcs);
    STACK_LEAVE(L, 1);
    return 1;
}
