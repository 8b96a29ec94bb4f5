/* response.c: what the http module keeps of a reply, as it arrives: the
 * curl callbacks (headers, body, progress; they never raise, never
 * longjmp: a Lua callback runs under lua_pcall and its error aborts the
 * transfer), the header lines and the Lua table of them, and where a body
 * goes (http.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <curl/curl.h>
#include "lazy_curl.h"
#include "http.h"

void http_buf_free(http_buf *b) { free(b->p); b->p = NULL; b->len = b->cap = 0; }

int http_buf_add(http_buf *b, const char *s, size_t n)
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

size_t http_on_header(char *data, size_t size, size_t n, void *ud)
{
    http_xfer *x = ud;
    size_t len = size * n;
    if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {   /* a new response */
        x->hdrs.len = 0;
        x->got_status = 1;
    }
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
void http_push_headers(lua_State *L, http_xfer *x)
{
    STACK_ENTER(L);
    lua_newtable(L);                                         /* t */
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
    STACK_LEAVE(L, 1);
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
    STACK_ENTER(L);                             /* ... args */
    lua_pushvalue(L, idx);
    lua_insert(L, -nargs - 1);                  /* ... fn args */
    if (lua_pcall(L, nargs, 1, 0) != LUA_OK) {  /* ... err */
        char msg[400];
        snprintf(msg, sizeof msg, "%s: %s", what, lua_isstring(L, -1) ? lua_tostring(L, -1) : "error");
        lua_pop(L, 1);
        http_set_abort(x, provision_interrupted() ? AB_INTERRUPTED : AB_CALLBACK,
                  provision_interrupted() ? "interrupted" : msg);
        STACK_LEAVE(L, -nargs);
        return -1;
    }
    int stop = lua_isboolean(L, -1) && !lua_toboolean(L, -1);
    lua_pop(L, 1);                              /* ... */
    STACK_LEAVE(L, -nargs);
    if (stop) { http_set_abort(x, AB_CALLBACK, what); return -1; }
    return 0;
}

int http_is_redirect(long status)
{
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/* The first body byte (or the end of a reply without one): decide where
 * the body goes. 0, or -1 to abort. */
int http_begin_body(http_xfer *x)
{
    if (x->body_started) return x->abort_kind ? -1 : 0;
    x->body_started = 1;
    long status = 0;
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
    if (x->headers_only) {
        /* a redirect's body is read to its end: curl resolves the Location
         * (CURLINFO_REDIRECT_URL) only for a reply that completed */
        char loc[8];
        if (http_is_redirect(status) && find_header(x, "Location", loc, sizeof loc)) return 0;
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
        http_push_headers(L, x);
        lua_pushstring(L, x->part_id);
        if (call_lua(x, x->on_headers_idx, 3, "on_headers") < 0) return -1;
    }
    return 0;
}

/* up to max bytes of p as text for a message: printable ASCII as it is,
 * \r \n \t \\ \" escaped, any other byte \xNN; "..." after when there was more */
void http_show_bytes(const char *p, size_t len, size_t max, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < len && i < max && o + 5 < outlen; i++) {
        unsigned char c = (unsigned char)p[i];
        const char *esc = c == '\r' ? "\\r" : c == '\n' ? "\\n" : c == '\t' ? "\\t"
                        : c == '\\' ? "\\\\" : c == '"' ? "\\\"" : NULL;
        if (esc) o += (size_t)snprintf(out + o, outlen - o, "%s", esc);
        else if (c >= 0x20 && c < 0x7f) out[o++] = (char)c;
        else o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
    }
    if (len > max && o + 4 < outlen) o += (size_t)snprintf(out + o, outlen - o, "...");
    out[o < outlen ? o : outlen - 1] = '\0';
}

size_t http_on_body(char *data, size_t size, size_t n, void *ud)
{
    http_xfer *x = ud;
    size_t len = size * n;
    if (!x->got_status) {
        /* bytes with no status line before them (libcurl lets them through
         * as HTTP/0.9 so that they can be shown): not an HTTP server */
        char shown[200], msg[300];
        http_show_bytes(data, len, 40, shown, sizeof shown);
        snprintf(msg, sizeof msg, "the server did not answer HTTP (first bytes: \"%s\")", shown);
        http_set_abort(x, AB_PROTOCOL, msg);
        return 0;
    }
    if (http_begin_body(x) < 0) return 0;   /* != len: curl aborts with CURLE_WRITE_ERROR */
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

int http_on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
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

