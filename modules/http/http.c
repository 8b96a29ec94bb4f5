/* http.c: "provision._http": HTTP through libcurl, the primitives the Lua
 * half (lua/provision/http.lua: http.file, http.expect, http.request) builds
 * its policy on: retries, backoff, validators, resume, checksums.
 *
 *   h = http.new()                       a curl easy handle (reused: keeps
 *                                        connections alive); h:close(), <close>
 *   h:request{ url, method=, headers=, body=, user=, password=, timeout=,
 *              connect_timeout=, ca_file=, insecure=, max_redirects=,
 *              max_body=, headers_only= }
 *     -> { status, headers = { lowercase-name = value }, body, url, seconds,
 *          truncated } | nil, message, kind
 *   h:download{ url, dest, part, create=, offset=, headers=, user=, password=,
 *               timeout=, connect_timeout=, ca_file=, insecure=, max_redirects=,
 *               if_none_match=, if_modified_since=, if_range=, mode=, max_size=,
 *               commit = mode, expect = hex,
 *               progress = function(done, total) end,
 *               on_headers = function(status, headers) end, fsync=,
 *               digest = "sha256" | "xxh128" }
 *     Streams the body of a 200/206 reply into the part file `part` (a
 *     name, in the folder of dest, reached as core/tree.h says), while its
 *     digest (default SHA-256; digest.h) is computed over the whole file (a
 *     ring feeding a hashing and a writing thread: sink.c). create: the part
 *     file is made anew (O_CREAT | O_EXCL | O_NOFOLLOW, mode, default 0600:
 *     the caller picks a name nobody can guess); else it must be the very
 *     file made then (part_id: its "device:inode", which on_headers gets as
 *     its third argument), a regular file of ours with one link, and
 *     offset > 0 asks for "Range: bytes=
 *     offset-" (offset rounded down to 4 KiB where the file is written with
 *     O_DIRECT): the first offset bytes already there are hashed first; a
 *     206 whose Content-Range starts there is appended, a 200 replaces the
 *     file. Any other status leaves the file alone and keeps the first 4 KiB
 *     of the reply's body. max_size: a reply that says (Content-Length) or
 *     sends more than that many bytes in all fails (kind "too_large").
 *     commit = mode: once whole, and when expect is given only if the digest
 *     is expect, the part file gets that mode, is fsync'd and renamed over
 *     dest through the folder's descriptor (then committed = true).
 *     -> { status, headers, bytes, size, sha256 | xxh128, seconds, url, resumed,
 *          committed, part_id, body }
 *      | nil, message, kind, { bytes, size, status, headers, part_id }
 *   Redirects (up to max_redirects, default 10) are followed here, not by
 *   libcurl: one from https to plain http is refused (kind "redirects"), and
 *   once one leads to another origin (scheme, host or port) the caller's
 *   headers (but Accept*, Content-Type, User-Agent) and credentials are no
 *   longer sent; 303 (and 301/302 of a POST) make the request a GET. url
 *   (in a result and in a message) is the last one, without user:password@.
 *   kind: "interrupted", "timeout", "connect", "partial" (the connection
 *   broke mid-reply), "tls", "redirects", "too_large", "write", "callback",
 *   "protocol", "other". Lua callbacks run under lua_pcall (at most 10 times
 *   a second for progress); an error in one aborts the transfer (kind
 *   "callback"). SIGINT/SIGTERM abort a transfer at once (kind "interrupted").
 *
 * Memory stays flat whatever the size: the body goes from curl's buffer to
 * the file descriptor (and, read back, to the digest), never into a Lua
 * string. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include "lazy_curl.h"
#include "core.h"
#include "digest.h"
#include "tree.h"
#include "http.h"

#define HANDLE_MT "provision.http"
#define XFER_MT "provision.http.xfer"
#define ERR_BODY_MAX 4096
#define DEFAULT_MAX_BODY (64 * 1024 * 1024)



static void http_buf_free(http_buf *b) { free(b->p); b->p = NULL; b->len = b->cap = 0; }

/* append, keeping a NUL after the data; 0 or -1 (out of memory) */
static int http_buf_add(http_buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return -1;
        b->p = p; b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

/* idempotent: the end of a transfer, and __gc */
static void xfer_release(http_xfer *x)
{
    http_sink_stop(x);   /* first: its threads use the fds, the ring and the digest */
    if (x->mu_init) { pthread_cond_destroy(&x->cv); pthread_mutex_destroy(&x->mu); x->mu_init = 0; }
    free(x->ring);
    x->ring = NULL;
    if (x->fd >= 0) { close(x->fd); x->fd = -1; }
    if (x->rfd >= 0) { close(x->rfd); x->rfd = -1; }
    provision_digest_free(&x->dg);
    if (x->req_headers) { curl_slist_free_all(x->req_headers); x->req_headers = NULL; }
    if (x->own_headers) { curl_slist_free_all(x->own_headers); x->own_headers = NULL; }
    if (x->user_headers) { curl_slist_free_all(x->user_headers); x->user_headers = NULL; }
    if (x->dirfd >= 0) { close(x->dirfd); x->dirfd = -1; }
    free(x->next_url);
    x->next_url = NULL;
    http_buf_free(&x->hdrs);
    http_buf_free(&x->body);
}

static int xfer_gc(lua_State *L)
{
    xfer_release(luaL_checkudata(L, 1, XFER_MT));
    return 0;
}

static http_xfer *xfer_new(lua_State *L)
{
    http_xfer *x = lua_newuserdatauv(L, sizeof *x, 0);
    memset(x, 0, sizeof *x);
    x->fd = x->rfd = x->dirfd = -1;   /* the safe "closed" state first */
    luaL_setmetatable(L, XFER_MT);
    x->L = L;
    return x;
}

static int handle_close(lua_State *L)
{
    http_handle *h = luaL_checkudata(L, 1, HANDLE_MT);
    if (h->curl) { curl_easy_cleanup(h->curl); h->curl = NULL; }
    return 0;
}

static int http_new(lua_State *L)
{
    http_handle *h = lua_newuserdatauv(L, sizeof *h, 0);
    h->curl = NULL;
    luaL_setmetatable(L, HANDLE_MT);
    h->curl = curl_easy_init();
    if (!h->curl) return luaL_error(L, "http.new: curl_easy_init failed");
    return 1;
}

static http_handle *handle_check(lua_State *L)
{
    http_handle *h = luaL_checkudata(L, 1, HANDLE_MT);
    if (!h->curl) luaL_argerror(L, 1, "the handle is closed");
    return h;
}

/* ---- option helpers (all raise on misuse, before anything is acquired) */

static const char *opt_string(lua_State *L, int t, const char *k)
{
    lua_getfield(L, t, k);
    const char *s = NULL;
    if (!lua_isnil(L, -1)) {
        if (!lua_isstring(L, -1)) luaL_error(L, "http: option '%s' must be a string", k);
        s = lua_tostring(L, -1);
    }
    lua_pop(L, 1);   /* borrowed from the options table, which stays on the stack */
    return s;
}

static double opt_number(lua_State *L, int t, const char *k, double def)
{
    lua_getfield(L, t, k);
    double v = def;
    if (!lua_isnil(L, -1)) {
        if (!lua_isnumber(L, -1)) luaL_error(L, "http: option '%s' must be a number", k);
        v = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

static int opt_bool(lua_State *L, int t, const char *k)
{
    lua_getfield(L, t, k);
    int v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

static int opt_function(lua_State *L, int t, const char *k)
{
    lua_getfield(L, t, k);
    if (lua_isnil(L, -1)) { lua_pop(L, 1); return 0; }
    if (!lua_isfunction(L, -1)) luaL_error(L, "http: option '%s' must be a function", k);
    return lua_gettop(L);   /* left on the stack for the transfer */
}

static int add_to(struct curl_slist **list, const char *line)
{
    struct curl_slist *n = curl_slist_append(*list, line);
    if (!n) return -1;
    *list = n;
    return 0;
}
/* provision's own header (a condition, Range): sent on every hop */
static int add_header(http_xfer *x, const char *line) { return add_to(&x->own_headers, line); }

/* What a redirect to another origin keeps of the caller's headers: these
 * describe the request, never who makes it. Everything else (a token, a
 * cookie, an API key under any name) goes only to the first origin. */
static int keeps_across_origins(const char *line)
{
    static const char *const keep[] = { "accept", "accept-encoding", "accept-language", "content-type",
                                        "user-agent", NULL };
    size_t n = strcspn(line, ":;");   /* "Name: value", or "Name;" (empty) */
    for (int i = 0; keep[i]; i++)
        if (strlen(keep[i]) == n && strncasecmp(line, keep[i], n) == 0) return 1;
    return 0;
}

/* the header list of the next hop: own headers, and the caller's while
 * the redirects stay on the first origin (a few plain ones after). 0 or -1 */
static int set_request_headers(http_xfer *x)
{
    struct curl_slist *all = NULL;
    for (struct curl_slist *h = x->own_headers; h; h = h->next)
        if (add_to(&all, h->data) < 0) goto oom;
    for (struct curl_slist *h = x->user_headers; h; h = h->next)
        if ((!x->cross_origin || keeps_across_origins(h->data)) && add_to(&all, h->data) < 0) goto oom;
    curl_easy_setopt(x->curl, CURLOPT_HTTPHEADER, all);
    if (x->req_headers) curl_slist_free_all(x->req_headers);
    x->req_headers = all;
    return 0;
oom:
    if (all) curl_slist_free_all(all);
    return -1;
}

/* headers = { ["Name"] = "value", ... } or { "Name: value", ... } */
static void opt_headers(lua_State *L, int t, http_xfer *x)
{
    lua_getfield(L, t, "headers");
    if (lua_isnil(L, -1)) { lua_pop(L, 1); return; }
    luaL_checktype(L, -1, LUA_TTABLE);
    int ht = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, ht)) {
        if (lua_type(L, -2) == LUA_TNUMBER) {
            if (!lua_isstring(L, -1)) luaL_error(L, "http: headers[%d] must be a string", (int)lua_tointeger(L, -2));
            lua_pushvalue(L, -1);
        } else {
            if (lua_type(L, -2) != LUA_TSTRING || !lua_isstring(L, -1))
                luaL_error(L, "http: headers must map names to strings");
            const char *v = lua_tostring(L, -1);
            /* "Name:" with no value would keep curl's own; "Name;" sends it empty */
            lua_pushfstring(L, *v ? "%s: %s" : "%s;", lua_tostring(L, -2), v);
        }
        if (strpbrk(lua_tostring(L, -1), "\r\n"))
            luaL_error(L, "http: a header may not hold a line break");
        if (add_to(&x->user_headers, lua_tostring(L, -1)) < 0) luaL_error(L, "http: out of memory");
        lua_pop(L, 2);
    }
    lua_pop(L, 1);
}

static void opt_header_value(lua_State *L, int t, http_xfer *x, const char *k, const char *name)
{
    const char *v = opt_string(L, t, k);
    if (!v) return;
    if (strpbrk(v, "\r\n")) luaL_error(L, "http: option '%s' may not hold a line break", k);
    lua_pushfstring(L, "%s: %s", name, v);
    if (add_header(x, lua_tostring(L, -1)) < 0) luaL_error(L, "http: out of memory");
    lua_pop(L, 1);
}

/* ---- curl callbacks: never raise, never longjmp */

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
    http_xfer *x = ud;
    size_t len = size * n;
    if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) x->hdrs.len = 0;   /* a new response */
    if (http_buf_add(&x->hdrs, data, len) < 0) return 0;
    return len;
}

/* the value of header name in the latest response, copied into out */
static int find_header(http_xfer *x, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    const char *p = x->hdrs.p, *end = p ? p + x->hdrs.len : NULL;
    while (p && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
        if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t')) v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            size_t l = (size_t)(ve - v);
            if (l >= outlen) l = outlen - 1;
            memcpy(out, v, l);
            out[l] = '\0';
            return 1;
        }
        p = eol + 1;
    }
    return 0;
}

/* push { lowercase-name = value } of the latest response; repeats are
 * joined with ", " */
static void push_headers(lua_State *L, http_xfer *x)
{
    lua_newtable(L);
    const char *p = x->hdrs.p, *end = p ? p + x->hdrs.len : NULL;
    while (p && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (colon && strncmp(p, "HTTP/", 5) != 0) {
            luaL_Buffer b;
            luaL_buffinit(L, &b);
            for (const char *c = p; c < colon; c++) luaL_addchar(&b, (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c));
            luaL_pushresult(&b);                             /* t name */
            const char *v = colon + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t')) v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            lua_pushvalue(L, -1);
            lua_rawget(L, -3);                               /* t name old */
            if (lua_isnil(L, -1)) {
                lua_pop(L, 1);
                lua_pushlstring(L, v, (size_t)(ve - v));
            } else {
                lua_pushliteral(L, ", ");
                lua_pushlstring(L, v, (size_t)(ve - v));
                lua_concat(L, 3);
            }
            lua_rawset(L, -3);                               /* t */
        }
        p = eol + 1;
    }
}

void http_set_abort(http_xfer *x, int kind, const char *msg)
{
    if (x->abort_kind) return;
    x->abort_kind = kind;
    snprintf(x->abort_msg, sizeof x->abort_msg, "%s", msg);
}

/* call the Lua function at stack slot idx with the values already pushed
 * (nargs); an error (or a false result) aborts the transfer */
static int call_lua(http_xfer *x, int idx, int nargs, const char *what)
{
    lua_State *L = x->L;
    lua_pushvalue(L, idx);
    lua_insert(L, -nargs - 1);
    if (lua_pcall(L, nargs, 1, 0) != LUA_OK) {
        char msg[400];
        snprintf(msg, sizeof msg, "%s: %s", what, lua_isstring(L, -1) ? lua_tostring(L, -1) : "error");
        lua_pop(L, 1);
        http_set_abort(x, provision_interrupted() ? AB_INTERRUPTED : AB_CALLBACK,
                  provision_interrupted() ? "interrupted" : msg);
        return -1;
    }
    int stop = lua_isboolean(L, -1) && !lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (stop) { http_set_abort(x, AB_CALLBACK, what); return -1; }
    return 0;
}

static int is_redirect(long status)
{
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/* The first body byte (or the end of a reply without one): decide where
 * the body goes. 0, or -1 to abort. */
static int begin_body(http_xfer *x)
{
    if (x->body_started) return x->abort_kind ? -1 : 0;
    x->body_started = 1;
    long status = 0;
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
    if (x->headers_only) {
        /* a redirect's body is read to its end: curl resolves the Location
         * (CURLINFO_REDIRECT_URL) only for a reply that completed */
        char loc[8];
        if (is_redirect(status) && find_header(x, "Location", loc, sizeof loc)) return 0;
        x->stopped = 1;
        return -1;
    }
    if (!x->download) return 0;
    if (status == 200 || status == 206) {
        curl_off_t len = -1;
        curl_easy_getinfo(x->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
        curl_off_t total = len >= 0 ? (status == 206 ? x->offset : 0) + len : -1;
        if (x->max_size > 0 && total > x->max_size) {
            char msg[256];
            snprintf(msg, sizeof msg, "the file is %lld bytes, more than max_size (%lld)",
                     (long long)total, (long long)x->max_size);
            http_set_abort(x, AB_TOO_LARGE, msg);
            return -1;
        }
    }
    if (status == 206 && x->offset > 0) {
        char cr[128];
        long long start = -1;
        if (!find_header(x, "Content-Range", cr, sizeof cr) || sscanf(cr, "bytes %lld-", &start) != 1
            || start != (long long)x->offset) {
            char msg[256];
            snprintf(msg, sizeof msg, "asked for bytes %lld- but the reply has Content-Range '%s'",
                     (long long)x->offset, start >= 0 ? cr : "(none)");
            http_set_abort(x, AB_PROTOCOL, msg);
            return -1;
        }
        x->to_file = 1;
    } else if (status == 200 || status == 206) {
        if (status == 206) {   /* a range we did not ask for */
            http_set_abort(x, AB_PROTOCOL, "206 Partial Content to a request without Range");
            return -1;
        }
        if (x->offset > 0) {   /* the server sends it all: start over */
            x->offset = 0;
            if (ftruncate(x->fd, 0) < 0) {
                char msg[256];
                snprintf(msg, sizeof msg, "%s", strerror(errno));
                http_set_abort(x, AB_WRITE, msg);
                return -1;
            }
        }
        x->to_file = 1;
    }
    if (x->to_file && http_sink_start(x) < 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "cannot start the hashing and writing threads: %s", strerror(errno));
        http_set_abort(x, AB_WRITE, msg);
        return -1;
    }
    if (x->to_file && x->on_headers_idx) {
        lua_State *L = x->L;
        if (!lua_checkstack(L, 8)) { http_set_abort(x, AB_CALLBACK, "Lua stack overflow"); return -1; }
        lua_pushinteger(L, status);
        push_headers(L, x);
        lua_pushstring(L, x->part_id);
        if (call_lua(x, x->on_headers_idx, 3, "on_headers") < 0) return -1;
    }
    return 0;
}

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    http_xfer *x = ud;
    size_t len = size * n;
    if (begin_body(x) < 0) return 0;   /* != len: curl aborts with CURLE_WRITE_ERROR */
    if (x->to_file) {   /* into the ring: the threads hash and write it */
        if (x->max_size > 0 && x->offset + x->written + (curl_off_t)len > x->max_size) {
            char msg[256];
            snprintf(msg, sizeof msg, "more than max_size (%lld bytes) arrived", (long long)x->max_size);
            http_set_abort(x, AB_TOO_LARGE, msg);
            return 0;
        }
        if (http_sink_put(x, data, len) < 0) return 0;
        x->written += (curl_off_t)len;
        return len;
    }
    /* to memory: the whole body (request) or its start (an error reply) */
    size_t room = x->max_body > x->body.len ? x->max_body - x->body.len : 0;
    size_t keep = len < room ? len : room;
    if (keep < len) x->truncated = 1;
    if (keep && http_buf_add(&x->body, data, keep) < 0) {
        http_set_abort(x, AB_WRITE, "out of memory");
        return 0;
    }
    return len;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    http_xfer *x = ud;
    (void)ultotal; (void)ulnow;
    if (provision_interrupted()) { http_set_abort(x, AB_INTERRUPTED, "interrupted"); return 1; }
    double now = provision_now();
    /* a slow body: hand over a slot that has waited a second, full or not,
     * so that the part file on disk (what a killed run resumes from) stays
     * about a second behind what arrived. The short slot turns O_DIRECT
     * off for the rest of the transfer, which a slow one does not need. */
    if (x->sink_on && x->fill > 0 && now - x->fill_since >= SLOT_MAX_WAIT && http_sink_publish(x, 0) < 0) return 1;
    if (!x->progress_idx || !x->to_file) return 0;
    if (now - x->last_progress < 0.1) return 0;
    x->last_progress = now;
    lua_State *L = x->L;
    if (!lua_checkstack(L, 4)) return 0;
    lua_pushinteger(L, (lua_Integer)(x->offset + dlnow));
    if (dltotal > 0) lua_pushinteger(L, (lua_Integer)(x->offset + dltotal));
    else lua_pushnil(L);
    return call_lua(x, x->progress_idx, 2, "progress") < 0 ? 1 : 0;
}

/* ---- the shared part of request and download */

/* set the options common to both; raises on misuse (nothing live but the
 * xfer userdata, which __gc frees) */
static void setup(lua_State *L, http_handle *h, http_xfer *x, int t, int total_timeout)
{
    CURL *c = h->curl;
    curl_easy_reset(c);
    x->curl = c;
    lua_getfield(L, t, "url");
    const char *url = luaL_optstring(L, -1, NULL);
    if (!url) luaL_error(L, "http: option 'url' is required");
    lua_pop(L, 1);   /* borrowed: the options table keeps it */
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    /* redirects are followed by perform() below, which decides what a new
     * origin may see: libcurl would send the caller's headers anywhere */
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    double max_redirects = opt_number(L, t, "max_redirects", 10);
    if (max_redirects < 0) luaL_error(L, "http: option 'max_redirects' must be >= 0");
    x->max_redirects = (long)max_redirects;
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, opt_bool(L, t, "insecure") ? 0L : 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, opt_bool(L, t, "insecure") ? 0L : 2L);
    const char *ca = opt_string(L, t, "ca_file");
    if (ca) curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "provision/" PROVISION_VERSION);
    const char *user = opt_string(L, t, "user");
    const char *password = opt_string(L, t, "password");
    if (user || password) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERNAME, user ? user : "");
        curl_easy_setopt(c, CURLOPT_PASSWORD, password ? password : "");
    }
    double timeout = opt_number(L, t, "timeout", 0);
    double connect = opt_number(L, t, "connect_timeout", timeout > 0 && timeout < 30 ? timeout : 30);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(connect * 1000));
    if (timeout > 0) {
        if (total_timeout) {
            curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000));
        } else {   /* a download: give up when nothing arrives for that long */
            curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
            curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)(timeout < 1 ? 1 : timeout));
        }
    }
    opt_headers(L, t, x);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
}

/* ---- redirects */

/* The authority of an absolute URL: it starts at *a, after the "://" at
 * *sep, its host at *hp (after any user:password@), and ends at *end.
 * 0, or -1 when url is not absolute. */
static int url_authority(const char *url, const char **sep, const char **a, const char **hp, const char **end)
{
    *sep = strstr(url, "://");
    if (!*sep || *sep == url) return -1;
    *a = *sep + 3;
    *end = *a + strcspn(*a, "/?#");
    *hp = *a;
    for (const char *q = *a; q < *end; q++) if (*q == '@') *hp = q + 1;
    return 0;
}

/* url as it may be shown (a message, the result's url): without the
 * user:password@ that curl writes into a redirect's URL it resolves from
 * the options user and password */
static void url_shown(const char *url, char *out, size_t n)
{
    const char *sep, *a, *hp, *end;
    if (url_authority(url, &sep, &a, &hp, &end) < 0) snprintf(out, n, "%s", url);
    else snprintf(out, n, "%.*s%s", (int)(a - url), url, hp);
}

static void push_url_shown(lua_State *L, const char *url)
{
    const char *sep, *a, *hp, *end;
    if (url_authority(url, &sep, &a, &hp, &end) < 0) { lua_pushstring(L, url); return; }
    lua_pushlstring(L, url, (size_t)(a - url));
    lua_pushstring(L, hp);
    lua_concat(L, 2);
}

/* The origin of an absolute URL: its scheme and host, lowercased, and its
 * port (the scheme's when none is written). 0, or -1 when it has none. */
static int url_origin(const char *url, char *scheme, size_t sl, char *host, size_t hl, long *port)
{
    const char *sep, *a, *h, *end;
    if (url_authority(url, &sep, &a, &h, &end) < 0 || (size_t)(sep - url) >= sl) return -1;
    for (size_t i = 0; url + i < sep; i++) scheme[i] = (char)(url[i] >= 'A' && url[i] <= 'Z' ? url[i] + 32 : url[i]);
    scheme[sep - url] = '\0';
    const char *he, *colon = NULL;
    if (*h == '[') {   /* [v6] */
        he = memchr(h, ']', (size_t)(end - h));
        if (!he) return -1;
        he++;
        if (he < end && *he == ':') colon = he;
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        he = colon ? colon : end;
    }
    if ((size_t)(he - h) >= hl) return -1;
    for (size_t i = 0; h + i < he; i++) host[i] = (char)(h[i] >= 'A' && h[i] <= 'Z' ? h[i] + 32 : h[i]);
    host[he - h] = '\0';
    *port = colon && colon + 1 < end ? strtol(colon + 1, NULL, 10)
          : strcmp(scheme, "https") == 0 ? 443 : strcmp(scheme, "http") == 0 ? 80 : -1;
    return 0;
}

/* Follow the redirect that the reply just read asks for, if any: 1 when
 * the next hop is set up, 0 when this reply is the answer, -1 when it must
 * not be followed (abort set: https to http, too many). To another origin
 * (scheme, host or port) the caller's headers and credentials do not go,
 * from then on; 303 (and 301/302 of a POST) turn the request into a GET. */
static int next_hop(http_xfer *x, int hops)
{
    long status = 0;
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
    if (!is_redirect(status)) return 0;
    char *loc = NULL, *cur = NULL;
    curl_easy_getinfo(x->curl, CURLINFO_REDIRECT_URL, &loc);
    if (!loc) return 0;
    curl_easy_getinfo(x->curl, CURLINFO_EFFECTIVE_URL, &cur);
    char msg[512], shown[320];
    url_shown(loc, shown, sizeof shown);
    if (hops >= x->max_redirects) {
        snprintf(msg, sizeof msg, "stopped after %ld redirects (the last to %s)", x->max_redirects, shown);
        http_set_abort(x, AB_REDIRECTS, msg);
        return -1;
    }
    char s1[16], s2[16], h1[256], h2[256];
    long p1 = -1, p2 = -1;
    int o1 = cur ? url_origin(cur, s1, sizeof s1, h1, sizeof h1, &p1) : -1;
    int o2 = url_origin(loc, s2, sizeof s2, h2, sizeof h2, &p2);
    if (o2 < 0 || (strcmp(s2, "http") != 0 && strcmp(s2, "https") != 0)) {
        snprintf(msg, sizeof msg, "refusing a redirect to %s (not an http or https URL)", shown);
        http_set_abort(x, AB_REDIRECTS, msg);
        return -1;
    }
    if (o1 == 0 && strcmp(s1, "https") == 0 && strcmp(s2, "http") == 0) {
        snprintf(msg, sizeof msg, "refusing a redirect from https to plain http (%s): "
                 "what is sent or received there is not protected", shown);
        http_set_abort(x, AB_REDIRECTS, msg);
        return -1;
    }
    if (o1 < 0 || strcmp(s1, s2) != 0 || strcmp(h1, h2) != 0 || p1 != p2) {
        if (!x->cross_origin) {
            x->cross_origin = 1;
            curl_easy_setopt(x->curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_NONE);
            curl_easy_setopt(x->curl, CURLOPT_USERNAME, (char *)NULL);
            curl_easy_setopt(x->curl, CURLOPT_PASSWORD, (char *)NULL);
        }
    }
    char *next = strdup(loc);   /* loc is curl's, valid until the next perform */
    if (!next) { http_set_abort(x, AB_WRITE, "out of memory"); return -1; }
    free(x->next_url);
    x->next_url = next;
    /* a GET or a HEAD stays what it is; another method (PUT, DELETE) keeps
     * its method and body through a 301/302, as only a POST turns into a GET */
    char *method = NULL;
    curl_easy_getinfo(x->curl, CURLINFO_EFFECTIVE_METHOD, &method);
    if (method && strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0
        && (status == 303 || ((status == 301 || status == 302) && strcmp(method, "POST") == 0))) {
        curl_easy_setopt(x->curl, CURLOPT_CUSTOMREQUEST, (char *)NULL);
        curl_easy_setopt(x->curl, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(x->curl, CURLOPT_URL, x->next_url);
    /* the next reply starts afresh */
    x->body_started = x->stopped = x->truncated = 0;
    x->body.len = 0;
    if (x->body.p) x->body.p[0] = '\0';
    return 1;
}

/* curl_easy_perform, and the redirects after it */
static CURLcode perform(http_xfer *x)
{
    for (int hops = 0;; hops++) {
        if (set_request_headers(x) < 0) { http_set_abort(x, AB_WRITE, "out of memory"); return CURLE_OUT_OF_MEMORY; }
        CURLcode rc = curl_easy_perform(x->curl);
        if (rc != CURLE_OK && !(x->stopped && rc == CURLE_WRITE_ERROR)) return rc;
        int n = next_hop(x, hops);
        if (n < 0) return CURLE_ABORTED_BY_CALLBACK;
        if (n == 0) return rc;
    }
}

static const char *error_kind(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST: case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
        return "connect";
    case CURLE_OPERATION_TIMEDOUT:
        return "timeout";
    case CURLE_PARTIAL_FILE: case CURLE_RECV_ERROR: case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING: case CURLE_HTTP2: case CURLE_HTTP2_STREAM:
    case CURLE_BAD_CONTENT_ENCODING:
        return "partial";
    case CURLE_PEER_FAILED_VERIFICATION: case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM: case CURLE_SSL_CIPHER: case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
        return "tls";
    case CURLE_TOO_MANY_REDIRECTS:
        return "redirects";
    case CURLE_WEIRD_SERVER_REPLY: case CURLE_UNSUPPORTED_PROTOCOL: case CURLE_URL_MALFORMAT:
        return "protocol";
    default:
        return "other";
    }
}

/* nil, message, kind after a failed perform */
static int push_failure(lua_State *L, http_xfer *x, CURLcode rc, const char *errbuf)
{
    static const char *abort_names[] = { "other", "interrupted", "callback", "write", "protocol",
                                         "redirects", "too_large" };
    lua_pushnil(L);
    if (x->abort_kind) {
        lua_pushstring(L, x->abort_msg);
        lua_pushstring(L, abort_names[x->abort_kind]);
    } else {
        lua_pushstring(L, *errbuf ? errbuf : curl_easy_strerror(rc));
        lua_pushstring(L, error_kind(rc));
    }
    return 3;
}

static void push_common(lua_State *L, http_xfer *x, double t0)
{
    long status = 0;
    char *eff = NULL;
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(x->curl, CURLINFO_EFFECTIVE_URL, &eff);
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
    push_headers(L, x);
    lua_setfield(L, -2, "headers");
    push_url_shown(L, eff ? eff : "");
    lua_setfield(L, -2, "url");
    lua_pushnumber(L, provision_now() - t0);
    lua_setfield(L, -2, "seconds");
}

static int http_request(lua_State *L)
{
    http_handle *h = handle_check(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    http_xfer *x = xfer_new(L);                      /* h opts xfer */
    setup(L, h, x, 2, 1);
    CURL *c = h->curl;
    const char *method = opt_string(L, 2, "method");
    if (!method) method = "GET";
    x->max_body = (size_t)opt_number(L, 2, "max_body", DEFAULT_MAX_BODY);
    x->headers_only = opt_bool(L, 2, "headers_only");
    opt_header_value(L, 2, x, "if_none_match", "If-None-Match");
    opt_header_value(L, 2, x, "if_modified_since", "If-Modified-Since");
    lua_getfield(L, 2, "body");
    size_t blen = 0;
    const char *body = lua_isnil(L, -1) ? NULL : luaL_checklstring(L, -1, &blen);
    lua_pop(L, 1);   /* borrowed from the options table */
    if (strcasecmp(method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (strcasecmp(method, "GET") != 0 || body) {
        if (body) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);   /* the options table keeps it alive */
            if (add_header(x, "Expect:") < 0) return luaL_error(L, "http: out of memory");
        }
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    double t0 = provision_now();
    CURLcode rc = perform(x);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
    if (rc != CURLE_OK && !(x->stopped && rc == CURLE_WRITE_ERROR)) {
        if (provision_interrupted()) http_set_abort(x, AB_INTERRUPTED, "interrupted");
        return push_failure(L, x, rc, errbuf);
    }
    lua_createtable(L, 0, 7);
    push_common(L, x, t0);
    lua_pushlstring(L, x->body.p ? x->body.p : "", x->body.len);
    lua_setfield(L, -2, "body");
    lua_pushboolean(L, x->truncated);
    lua_setfield(L, -2, "truncated");
    return 1;
}

/* the part file: opened (created, with create) in the folder of dest,
 * which x->dirfd then holds. A part file to resume must be a regular file
 * of ours with one link: anything else under that name is left alone and
 * reported. 0, or -1 with a message pushed (nil, msg, "write"). */
static int open_part(lua_State *L, http_xfer *x, const char *dest, const char *part, const char *part_id,
                     int create, int mode, char name[NAME_MAX + 1])
{
    char err[TREE_ERR];
    x->dirfd = tree_walk(dest, 0, name, err, sizeof err);
    if (x->dirfd < 0) goto failed;
    struct stat st;
    if (create) {
        x->fd = openat(x->dirfd, part, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)mode);
        if (x->fd < 0) { snprintf(err, sizeof err, "%s (beside %s): %s", part, dest, strerror(errno)); goto failed; }
        if (fstat(x->fd, &st) == 0) tree_identity(&st, x->part_id, sizeof x->part_id);
        return 0;
    }
    x->fd = openat(x->dirfd, part, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (x->fd < 0) { snprintf(err, sizeof err, "%s (beside %s): %s", part, dest, strerror(errno)); goto failed; }
    char id[64] = "";
    if (fstat(x->fd, &st) == 0) tree_identity(&st, id, sizeof id);
    if (!S_ISREG(st.st_mode) || !tree_trusted_uid(st.st_uid) || st.st_nlink != 1 || !part_id || strcmp(id, part_id) != 0) {
        snprintf(err, sizeof err, "%s (beside %s): not the partial download made for this (another file was "
                 "put in its place): left alone", part, dest);
        close(x->fd);
        x->fd = -1;
        errno = EPERM;
        goto failed;
    }
    return 0;
failed:
    lua_pushnil(L);
    lua_pushstring(L, err);
    lua_pushliteral(L, "write");
    return -1;
}

/* The download landed whole (and its digest is the one expected): give
 * the part file its mode, make it durable, rename it over dest in the same
 * folder, check that dest is now that very file, sync the folder. 0, or -1
 * with the message in msg. */
static int commit_part(http_xfer *x, const char *dest, const char *name, const char *part, int mode,
                       char *msg, size_t n)
{
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) { snprintf(msg, n, "%s: not a file name", dest); return -1; }
    struct stat mine, there;
    if (fchmod(x->fd, (mode_t)mode) < 0 || fsync(x->fd) < 0 || fstat(x->fd, &mine) < 0) {
        snprintf(msg, n, "%s: %s", dest, strerror(errno));
        return -1;
    }
    if (renameat(x->dirfd, part, x->dirfd, name) < 0) {
        snprintf(msg, n, "%s: %s", dest, strerror(errno));
        return -1;
    }
    if (fstatat(x->dirfd, name, &there, AT_SYMLINK_NOFOLLOW) < 0 || there.st_dev != mine.st_dev
        || there.st_ino != mine.st_ino) {
        snprintf(msg, n, "%s: replaced by another file while being moved into place", dest);
        return -1;
    }
    tree_sync_dir(x->dirfd);
    return 0;
}

static int http_download(lua_State *L)
{
    http_handle *h = handle_check(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    http_xfer *x = xfer_new(L);                      /* h opts xfer */
    setup(L, h, x, 2, 0);
    CURL *c = h->curl;
    x->download = 1;
    x->max_body = ERR_BODY_MAX;
    lua_getfield(L, 2, "dest");
    size_t dest_len = 0;
    const char *dest = luaL_optlstring(L, -1, NULL, &dest_len);
    if (!dest) return luaL_error(L, "http.download: option 'dest' is required");
    if (strlen(dest) != dest_len) return luaL_error(L, "http.download: option 'dest' holds a NUL byte");
    lua_pop(L, 1);   /* borrowed from the options table */
    const char *part = opt_string(L, 2, "part");
    if (!part || !*part || strchr(part, '/') || strcmp(part, ".") == 0 || strcmp(part, "..") == 0)
        return luaL_error(L, "http.download: option 'part' must be a file name (no '/')");
    int create = opt_bool(L, 2, "create");
    const char *part_id = opt_string(L, 2, "part_id");   /* to resume: the very file made then */
    lua_Integer offset = (lua_Integer)opt_number(L, 2, "offset", 0);
    if (offset < 0) return luaL_error(L, "http.download: option 'offset' must be >= 0");
    if (create) offset = 0;
    int mode = (int)opt_number(L, 2, "mode", 0600);
    lua_Number max_size = opt_number(L, 2, "max_size", 0);
    if (max_size < 0) return luaL_error(L, "http.download: option 'max_size' must be >= 0");
    x->max_size = (curl_off_t)max_size;
    /* commit = mode: rename it over dest once whole (and, with expect, only
     * when its digest is that) */
    lua_getfield(L, 2, "commit");
    int commit = lua_isnil(L, -1) ? -1 : (int)luaL_checkinteger(L, -1);
    lua_pop(L, 1);
    if (commit > 07777) return luaL_error(L, "http.download: option 'commit' must be a mode");
    const char *expect = opt_string(L, 2, "expect");
    lua_getfield(L, 2, "digest");
    if (!lua_isnoneornil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
        return luaL_error(L, "http.download: option 'digest' must be a string, not a %s", luaL_typename(L, -1));
    const char *kname = luaL_optstring(L, -1, "sha256");
    int kind = provision_digest_kind(kname);
    if (kind < 0) return luaL_error(L, "http.download: option 'digest' must be \"sha256\" or \"xxh128\", not \"%s\"", kname);
    lua_pop(L, 1);
    int do_fsync = 1;
    lua_getfield(L, 2, "fsync");
    if (lua_isboolean(L, -1)) do_fsync = lua_toboolean(L, -1);
    lua_pop(L, 1);
    opt_header_value(L, 2, x, "if_none_match", "If-None-Match");
    opt_header_value(L, 2, x, "if_modified_since", "If-Modified-Since");
    if (offset > 0) opt_header_value(L, 2, x, "if_range", "If-Range");
    x->progress_idx = opt_function(L, 2, "progress");
    x->on_headers_idx = opt_function(L, 2, "on_headers");
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 256L * 1024);

    /* from here on, only the xfer userdata owns anything */
    if (provision_digest_init(&x->dg, kind))
        return luaL_error(L, "http.download: cannot set up the %s digest", provision_digest_name(kind));
    char name[NAME_MAX + 1];
    if (open_part(L, x, dest, part, part_id, create, mode, name) < 0) return 3;
    if (!create) snprintf(x->part_id, sizeof x->part_id, "%s", part_id);
    http_sink_use_direct(x);
    struct stat st;
    if (fstat(x->fd, &st) < 0 || (offset > 0 && st.st_size < offset)) offset = 0;
    if (x->direct) offset -= offset % DIO_ALIGN;   /* direct writes go on from a boundary */
    x->offset = (curl_off_t)offset;
    /* the hasher hashes the kept prefix, read through a buffered descriptor
     * of the same file (not of the name, which another user might swap) */
    if (offset > 0) {
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", x->fd);
        if ((x->rfd = open(proc, O_RDONLY | O_CLOEXEC)) < 0) offset = x->offset = 0;
    }
    if (ftruncate(x->fd, (off_t)offset) < 0) {
        int e = errno;
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", dest, strerror(e));
        lua_pushliteral(L, "write");
        return 3;
    }
    if (offset > 0) {   /* our own header, so that a 200 reply is not an error */
        char range[64];
        snprintf(range, sizeof range, "Range: bytes=%lld-", (long long)offset);
        if (add_header(x, range) < 0) return luaL_error(L, "http: out of memory");
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    double t0 = provision_now();
    CURLcode rc = perform(x);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
    if (rc == CURLE_OK) begin_body(x);   /* a reply with an empty body */
    if (rc == CURLE_OK && x->abort_kind) rc = CURLE_ABORTED_BY_CALLBACK;
    if (x->to_file && x->sink_on) {
        char msg[256] = "";
        if (rc != CURLE_OK && (x->abort_kind == AB_INTERRUPTED || provision_interrupted())) {
            http_sink_stop(x);
        } else if (http_sink_finish(x, msg, sizeof msg) < 0 && rc == CURLE_OK) {
            /* a failed transfer flushes too: a retry resumes after what arrived */
            char full[512];
            snprintf(full, sizeof full, "%s: %s", dest, errno == EINTR ? "interrupted" : msg);
            http_set_abort(x, errno == EINTR ? AB_INTERRUPTED : AB_WRITE, full);
            rc = CURLE_WRITE_ERROR;
        }
    }
    if (rc == CURLE_OK && x->to_file && do_fsync && fsync(x->fd) < 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s: fsync: %s", dest, strerror(errno));
        http_set_abort(x, AB_WRITE, msg);
        rc = CURLE_WRITE_ERROR;
    }
    struct stat fin;
    curl_off_t size = fstat(x->fd, &fin) == 0 ? (curl_off_t)fin.st_size : 0;
    if (rc != CURLE_OK) {
        if (provision_interrupted()) http_set_abort(x, AB_INTERRUPTED, "interrupted");
        int n = push_failure(L, x, rc, errbuf);
        lua_createtable(L, 0, 4);
        lua_pushinteger(L, (lua_Integer)x->written);
        lua_setfield(L, -2, "bytes");
        lua_pushinteger(L, (lua_Integer)(x->to_file ? size : x->offset));
        lua_setfield(L, -2, "size");
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        lua_pushinteger(L, status);
        lua_setfield(L, -2, "status");
        push_headers(L, x);
        lua_setfield(L, -2, "headers");
        lua_pushstring(L, x->part_id);
        lua_setfield(L, -2, "part_id");
        xfer_release(x);
        return n + 1;
    }
    char hx[DIGEST_HEX_MAX] = "";
    if (x->to_file) provision_digest_hex(&x->dg, hx);
    int committed = 0;
    char cmsg[TREE_ERR] = "";
    if (x->to_file && commit >= 0 && (!expect || strcmp(expect, hx) == 0)) {
        if (commit_part(x, dest, name, part, commit, cmsg, sizeof cmsg) < 0) {
            xfer_release(x);
            lua_pushnil(L);
            lua_pushstring(L, cmsg);
            lua_pushliteral(L, "write");
            return 3;
        }
        committed = 1;
    }
    lua_createtable(L, 0, 11);
    push_common(L, x, t0);
    lua_pushinteger(L, (lua_Integer)x->written);
    lua_setfield(L, -2, "bytes");
    lua_pushinteger(L, (lua_Integer)size);
    lua_setfield(L, -2, "size");
    lua_pushboolean(L, x->to_file && x->offset > 0);
    lua_setfield(L, -2, "resumed");
    lua_pushboolean(L, committed);
    lua_setfield(L, -2, "committed");
    lua_pushstring(L, x->part_id);
    lua_setfield(L, -2, "part_id");
    if (x->to_file) {
        lua_pushstring(L, hx);
        lua_setfield(L, -2, provision_digest_name(x->dg.kind));
    }
    lua_pushlstring(L, x->body.p ? x->body.p : "", x->body.len);
    lua_setfield(L, -2, "body");
    xfer_release(x);
    return 1;
}

static const luaL_Reg handle_methods[] = {
    { "close", handle_close },
    { "download", http_download },
    { "request", http_request },
    { NULL, NULL }
};

static const luaL_Reg http_funcs[] = {
    { "new", http_new },
    { NULL, NULL }
};

int luaopen_provision_http(lua_State *L)
{
    char err[256];
    if (provision_load_curl(err, sizeof err) < 0) return luaL_error(L, "%s", err);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (luaL_newmetatable(L, HANDLE_MT)) {
        luaL_newlib(L, handle_methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, handle_close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, handle_close);
        lua_setfield(L, -2, "__close");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, XFER_MT)) {
        lua_pushcfunction(L, xfer_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    luaL_newlib(L, http_funcs);
    lua_pushstring(L, curl_version());
    lua_setfield(L, -2, "curl_version");
    return 1;
}
