/* http.c: "provision._http": HTTP through libcurl, the primitives the Lua
 * half (lua/provision/http.lua: http.file, http.expect, http.request) builds
 * its policy on: retries, backoff, validators, resume, checksums.
 *
 *   h = http.new()                       a handle (reused: keeps connections
 *                                        alive); h:close(), <close>. Its curl
 *                                        easy handle is made, and libcurl
 *                                        loaded (lazylib.h), at the first
 *                                        request that needs it: a plain
 *                                        http:// request to this machine goes
 *                                        through core/uhttp.c (plain.c)
 *   http.curl_version()                  libcurl's version line (loads it)
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
 * string.
 *
 * The files of the module (http.h): this one (the module, handles,
 * options, a transfer and its failures, request), plain.c, response.c,
 * redirect.c, download.c, sink.c. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <curl/curl.h>
#include "lazy_curl.h"
#include "core.h"
#include "digest.h"
#include "http.h"

#define HANDLE_MT "provision.http"
#define XFER_MT "provision.http.xfer"

/* idempotent: the end of a transfer, and __gc */
void http_xfer_release(http_xfer *x)
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
    http_xfer_release(luaL_checkudata(L, 1, XFER_MT));
    return 0;
}

http_xfer *http_xfer_new(lua_State *L)
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
    http_plain_close(&h->plain);
    h->closed = 1;
    return 0;
}

static int http_new(lua_State *L)
{
    http_handle *h = lua_newuserdatauv(L, sizeof *h, 0);
    memset(h, 0, sizeof *h);
    luaL_setmetatable(L, HANDLE_MT);
    return 1;
}

static http_handle *open_handle(lua_State *L)
{
    http_handle *h = luaL_checkudata(L, 1, HANDLE_MT);
    if (h->closed) luaL_argerror(L, 1, "the handle is closed");
    return h;
}

/* libcurl is loaded here, at the first request that needs it, not when
 * the module is required or a handle made: a run whose downloads are all
 * in place, and whose requests are plain http:// to this machine
 * (plain.c), never loads it */
http_handle *http_handle_check(lua_State *L)
{
    http_handle *h = open_handle(L);
    if (!h->curl) {
        char err[256];
        if (provision_curl_ready(err, sizeof err) < 0) luaL_error(L, "%s", err);
        h->curl = curl_easy_init();
        if (!h->curl) luaL_error(L, "http: curl_easy_init failed");
    }
    return h;
}

/* ---- option helpers (all raise on misuse, before anything is acquired) */

const char *http_opt_string(lua_State *L, int t, const char *k)
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

double http_opt_number(lua_State *L, int t, const char *k, double def)
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

int http_opt_bool(lua_State *L, int t, const char *k)
{
    lua_getfield(L, t, k);
    int v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

int http_opt_function(lua_State *L, int t, const char *k)
{
    lua_getfield(L, t, k);
    if (lua_isnil(L, -1)) { lua_pop(L, 1); return 0; }
    if (!lua_isfunction(L, -1)) luaL_error(L, "http: option '%s' must be a function", k);
    return lua_gettop(L);   /* left on the stack for the transfer */
}

int http_slist_add(struct curl_slist **list, const char *line)
{
    struct curl_slist *n = curl_slist_append(*list, line);
    if (!n) return -1;
    *list = n;
    return 0;
}
int http_add_header(http_xfer *x, const char *line) { return http_slist_add(&x->own_headers, line); }

/* headers = { ["Name"] = "value", ... } or { "Name: value", ... } */
void http_opt_headers(lua_State *L, int t, int (*add)(void *ud, const char *line), void *ud)
{
    STACK_ENTER(L);
    lua_getfield(L, t, "headers");
    if (lua_isnil(L, -1)) { lua_pop(L, 1); return; }
    luaL_checktype(L, -1, LUA_TTABLE);
    int ht = lua_gettop(L);                     /* ... headers */
    lua_pushnil(L);
    while (lua_next(L, ht)) {                   /* ... headers k v */
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
        if (add(ud, lua_tostring(L, -1)) < 0) luaL_error(L, "http: out of memory");
        lua_pop(L, 2);                          /* ... headers k */
    }
    lua_pop(L, 1);
    STACK_LEAVE(L, 0);
}

static int add_user_header(void *ud, const char *line)
{
    http_xfer *x = ud;
    return http_slist_add(&x->user_headers, line);
}

void http_opt_header_value(lua_State *L, int t, http_xfer *x, const char *k, const char *name)
{
    const char *v = http_opt_string(L, t, k);
    if (!v) return;
    if (strpbrk(v, "\r\n")) luaL_error(L, "http: option '%s' may not hold a line break", k);
    lua_pushfstring(L, "%s: %s", name, v);
    if (http_add_header(x, lua_tostring(L, -1)) < 0) luaL_error(L, "http: out of memory");
    lua_pop(L, 1);
}

/* ---- the shared part of request and download */

/* set the options common to both; raises on misuse (nothing live but the
 * xfer userdata, which __gc frees) */
void http_setup(lua_State *L, http_handle *h, http_xfer *x, int t, int total_timeout)
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
    /* redirects are followed by http_perform (and redirect.c), which decides what a new
     * origin may see: libcurl would send the caller's headers anywhere */
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    double max_redirects = http_opt_number(L, t, "max_redirects", 10);
    if (max_redirects < 0) luaL_error(L, "http: option 'max_redirects' must be >= 0");
    x->max_redirects = (long)max_redirects;
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, http_opt_bool(L, t, "insecure") ? 0L : 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, http_opt_bool(L, t, "insecure") ? 0L : 2L);
    const char *ca = http_opt_string(L, t, "ca_file");
    if (ca) curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "provision/" PROVISION_VERSION);
    const char *user = http_opt_string(L, t, "user");
    const char *password = http_opt_string(L, t, "password");
    if (user || password) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERNAME, user ? user : "");
        curl_easy_setopt(c, CURLOPT_PASSWORD, password ? password : "");
    }
    double timeout = http_opt_number(L, t, "timeout", 0);
    double connect = http_opt_number(L, t, "connect_timeout", timeout > 0 && timeout < 30 ? timeout : 30);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(connect * 1000));
    if (timeout > 0) {
        if (total_timeout) {
            curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000));
        } else {   /* a download: give up when nothing arrives for that long */
            curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
            curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)(timeout < 1 ? 1 : timeout));
        }
    }
    http_opt_headers(L, t, add_user_header, x);
#if LIBCURL_VERSION_NUM >= 0x074000
    /* a reply that is not HTTP reaches http_on_body, which shows its first
     * bytes, rather than libcurl's "Received HTTP/0.9 when not allowed" */
    curl_easy_setopt(c, CURLOPT_HTTP09_ALLOWED, 1L);
#endif
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, http_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, http_on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
}

/* curl_easy_perform, and the redirects after it */
CURLcode http_perform(http_xfer *x) { return http_perform_from(x, 0); }

CURLcode http_perform_from(http_xfer *x, int hops)
{
    for (;; hops++) {
        if (http_set_request_headers(x) < 0) { http_set_abort(x, AB_WRITE, "out of memory"); return CURLE_OUT_OF_MEMORY; }
        x->got_status = 0;
        CURLcode rc = curl_easy_perform(x->curl);
        if (rc != CURLE_OK && !(x->stopped && rc == CURLE_WRITE_ERROR)) return rc;
        int n = http_next_hop(x, hops);
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

/* headers libcurl refused, said as what the server sent: one line over
 * CURL_MAX_HTTP_HEADER (libcurl before 8.6 says only "Out of memory"), or
 * more lines than it keeps in all ("Too large response headers"). 1 with
 * msg set, or 0 */
static int header_too_large(http_xfer *x, CURLcode rc, const char *why, char *msg, size_t n)
{
    if (x->body_started) return 0;
    if (strstr(why, "Too large response headers")) {
        snprintf(msg, n, "the server sent too many header lines: %zu bytes of them before libcurl "
                 "stopped (libcurl: %s)", x->hdrs.len, why);
        return 1;
    }
    int line = rc == CURLE_OUT_OF_MEMORY || (strstr(why, "header") && strstr(why, "max is"));
#if LIBCURL_VERSION_NUM >= 0x080600
    line = line || rc == CURLE_TOO_LARGE;
#endif
    if (!line) return 0;
    snprintf(msg, n, "the server sent a header line over %d KiB%s (libcurl: %s)", CURL_MAX_HTTP_HEADER / 1024,
             x->got_status ? "" : " before any status line", why);
    return 1;
}

/* nil, message, kind after a failed perform */
int http_push_failure(lua_State *L, http_xfer *x, CURLcode rc, const char *errbuf)
{
    static const char *abort_names[] = { "other", "interrupted", "callback", "write", "protocol",
                                         "redirects", "too_large" };
    char msg[CURL_ERROR_SIZE + 200];
    const char *why = *errbuf ? errbuf : curl_easy_strerror(rc);
    lua_pushnil(L);
    if (x->abort_kind) {
        lua_pushstring(L, x->abort_msg);
        lua_pushstring(L, abort_names[x->abort_kind]);
    } else if (header_too_large(x, rc, why, msg, sizeof msg)) {
        lua_pushstring(L, msg);
        lua_pushliteral(L, "protocol");
    } else {
        lua_pushstring(L, *errbuf ? errbuf : curl_easy_strerror(rc));
        lua_pushstring(L, error_kind(rc));
    }
    return 3;
}

void http_push_common(lua_State *L, http_xfer *x, double t0)
{
    STACK_ENTER(L);                             /* ... t */
    long status = 0;
    char *eff = NULL;
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(x->curl, CURLINFO_EFFECTIVE_URL, &eff);
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
    http_push_headers(L, x);
    lua_setfield(L, -2, "headers");
    http_push_url_shown(L, eff ? eff : "");
    lua_setfield(L, -2, "url");
    lua_pushnumber(L, provision_now() - t0);
    lua_setfield(L, -2, "seconds");
    STACK_LEAVE(L, 0);
}

static int http_request(lua_State *L)
{
    http_handle *h = open_handle(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    /* a plain http:// request to this machine: without libcurl (plain.c) */
    http_buf next = { 0 };
    long redirect_status = 0;
    int n = http_plain_request(L, &h->plain, 2, &next, &redirect_status);
    if (n > 0) return n;
    const char *loc = NULL;   /* its redirect: libcurl follows it, from the next hop on */
    if (n < 0) {
        lua_pushlstring(L, next.p, next.len);             /* h opts loc */
        http_buf_free(&next);
        loc = lua_tostring(L, -1);
    }
    h = http_handle_check(L);
    http_xfer *x = http_xfer_new(L);                      /* h opts xfer */
    http_setup(L, h, x, 2, 1);
    STACK_ENTER(L);
    CURL *c = h->curl;
    const char *method = http_opt_string(L, 2, "method");
    if (!method) method = "GET";
    x->max_body = (size_t)http_opt_number(L, 2, "max_body", HTTP_DEFAULT_MAX_BODY);
    x->headers_only = http_opt_bool(L, 2, "headers_only");
    http_opt_header_value(L, 2, x, "if_none_match", "If-None-Match");
    http_opt_header_value(L, 2, x, "if_modified_since", "If-Modified-Since");
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
            if (http_add_header(x, "Expect:") < 0) return luaL_error(L, "http: out of memory");
        }
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    double t0 = provision_now();
    CURLcode rc;
    if (loc) {
        lua_getfield(L, 2, "url");
        const char *sent = strcasecmp(method, "HEAD") == 0 ? "HEAD"
                         : strcasecmp(method, "GET") == 0 && !body ? "GET" : method;
        int f = http_follow(x, 0, redirect_status, loc, lua_tostring(L, -1), sent);
        lua_pop(L, 1);
        rc = f < 0 ? CURLE_ABORTED_BY_CALLBACK : http_perform_from(x, 1);
    } else {
        rc = http_perform(x);
    }
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
    if (rc != CURLE_OK && !(x->stopped && rc == CURLE_WRITE_ERROR)) {
        if (provision_interrupted()) http_set_abort(x, AB_INTERRUPTED, "interrupted");
        return http_push_failure(L, x, rc, errbuf);
    }
    lua_createtable(L, 0, 7);                   /* h opts xfer res */
    http_push_common(L, x, t0);
    lua_pushlstring(L, x->body.p ? x->body.p : "", x->body.len);
    lua_setfield(L, -2, "body");
    lua_pushboolean(L, x->truncated);
    lua_setfield(L, -2, "truncated");
    STACK_LEAVE(L, 1);
    return 1;
}

/* h:begin(opts) -> an early request (plain.c), or nil */
static int http_begin(lua_State *L)
{
    open_handle(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    return http_plain_begin(L, 2);
}

static const luaL_Reg handle_methods[] = {
    { "begin", http_begin },
    { "close", handle_close },
    { "download", http_download },
    { "request", http_request },
    { NULL, NULL }
};

/* curl_version() -> "libcurl/8.x OpenSSL/3.x ..." (loads libcurl) */
static int http_curl_version(lua_State *L)
{
    char err[256];
    if (provision_curl_ready(err, sizeof err) < 0) return luaL_error(L, "%s", err);
    lua_pushstring(L, curl_version());
    return 1;
}

static const luaL_Reg http_funcs[] = {
    { "curl_version", http_curl_version },
    { "new", http_new },
    { NULL, NULL }
};

/* libcurl is not loaded here (http_new and curl_version load it) */
int luaopen_provision_http(lua_State *L)
{
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
    http_plain_open(L);
    luaL_newlib(L, http_funcs);
    return 1;
}
