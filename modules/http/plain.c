/* plain.c: h:request{...} to a plain http:// URL without libcurl, over
 * provision's own HTTP/1.1 client (core/uhttp.c), so that a run whose
 * requests all go to a local service (an endpoint check, a conditional
 * GET of a file served on this machine) never loads libcurl.
 *
 * Taken here: http:// to an IP literal or "localhost" (127.0.0.1, then
 * ::1, as libcurl has it), no user:password@ in the URL, a path of
 * printable ASCII without a fragment, no proxy in the environment
 * (http_proxy, HTTP_PROXY, all_proxy, ALL_PROXY), no Content-Length or
 * Transfer-Encoding among the caller's headers. Everything else (https,
 * a name to resolve, a proxy) goes to libcurl, as before. What is sent is
 * what libcurl sends: Host, User-Agent, Accept: \*\/\*, the caller's
 * headers over those (libcurl's rules: "Name:" drops one, "Name;" sends it
 * empty), Basic auth from user/password, a body with Content-Type
 * application/x-www-form-urlencoded unless the caller gives one; and a
 * failure is said in the same words and kinds where tests and callers
 * look at them. A redirect is followed by libcurl from the next hop on
 * (http.c): the policy of redirect.c applies to it as to any other. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "core.h"
#include "uhttp.h"
#include "http.h"

#define MAX_HEADER_LINE (100 * 1024)   /* libcurl's CURL_MAX_HTTP_HEADER: the same limit, the same words */

void http_plain_close(http_plain *pl)
{
    if (!pl->ready) return;
    uhttp_conn_close(&pl->conn);
    uhttp_parser_free(&pl->reply);
    pl->ready = 0;
}

static int env_set(const char *name)
{
    const char *v = getenv(name);
    return v && *v;
}

/* url -> host (without []), port and target; 0 when the URL is not one
 * this path takes */
static int split_url(const char *url, char *host, size_t hl, unsigned *port, const char **target)
{
    if (strncasecmp(url, "http://", 7) != 0) return 0;
    const char *a = url + 7, *end = a + strcspn(a, "/?#");
    if (memchr(a, '@', (size_t)(end - a))) return 0;
    const char *h = a, *he, *colon = NULL;
    if (*h == '[') {
        h++;
        he = memchr(h, ']', (size_t)(end - h));
        if (!he) return 0;
        if (he + 1 < end) { if (he[1] != ':') return 0; colon = he + 1; }
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        he = colon ? colon : end;
    }
    if (he == h || (size_t)(he - h) >= hl) return 0;
    memcpy(host, h, (size_t)(he - h));
    host[he - h] = '\0';
    *port = 80;
    if (colon) {
        unsigned long p = 0;
        const char *q = colon + 1;
        if (q == end || end - q > 5) return 0;
        for (; q < end; q++) {
            if (*q < '0' || *q > '9') return 0;
            p = p * 10 + (unsigned long)(*q - '0');
        }
        if (p == 0 || p > 65535) return 0;
        *port = (unsigned)p;
    }
    for (const char *q = end; *q; q++)
        if (*q <= 0x20 || *q >= 0x7f || *q == '#') return 0;
    *target = end;
    return 1;
}

static int is_token(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')
              || strchr("!#$%&'*+-.^_`|~", *s)))
            return 0;
    return 1;
}

static void b64(const char *s, size_t n, http_buf *out, int *oom)
{
    static const char T[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)s[i] << 16;
        if (i + 1 < n) v |= (unsigned char)s[i + 1] << 8;
        if (i + 2 < n) v |= (unsigned char)s[i + 2];
        char q[4] = { T[v >> 18 & 63], T[v >> 12 & 63], i + 1 < n ? T[v >> 6 & 63] : '=', i + 2 < n ? T[v & 63] : '=' };
        if (http_buf_add(out, q, 4) < 0) *oom = 1;
    }
}

/* what the request sends, built from the options (http_opt_* raise on
 * misuse, as for libcurl) */
typedef struct {
    http_buf lines;           /* header lines after Host and User-Agent */
    int own_host, own_agent, own_accept, own_type, own_auth, refuse, oom;
} heads;

static void free_heads(heads *hd)
{
    if (hd->lines.p) memset(hd->lines.p, 0, hd->lines.cap);   /* it may hold a password */
    http_buf_free(&hd->lines);
}

/* one "Name: value" or "Name;" line of the caller's (or provision's own):
 * libcurl's rules, said in http.c */
static int add_line(void *ud, const char *line)
{
    heads *hd = ud;
    size_t n = strcspn(line, ":;");
    const char *v = line + n;
    int empty_form = *v == ';';
    if (*v) v++;
    while (*v == ' ' || *v == '\t') v++;
    static const struct { const char *name; size_t off; } own[] = {
        { "host", offsetof(heads, own_host) }, { "user-agent", offsetof(heads, own_agent) },
        { "accept", offsetof(heads, own_accept) }, { "content-type", offsetof(heads, own_type) },
        { "authorization", offsetof(heads, own_auth) },
    };
    if ((n == 14 && strncasecmp(line, "content-length", 14) == 0)
        || (n == 17 && strncasecmp(line, "transfer-encoding", 17) == 0)) {
        hd->refuse = 1;   /* libcurl's way with these is its own: it sends it */
        return 0;
    }
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (strlen(own[i].name) == n && strncasecmp(line, own[i].name, n) == 0) *(int *)((char *)hd + own[i].off) = 1;
    if (!*v && !empty_form) return 0;   /* "Name:": drops libcurl's own, sends nothing */
    if (http_buf_add(&hd->lines, line, n) < 0 || http_buf_add(&hd->lines, ": ", 2) < 0
        || http_buf_add(&hd->lines, v, strlen(v)) < 0 || http_buf_add(&hd->lines, "\r\n", 2) < 0)
        hd->oom = 1;
    return 0;
}

static void own_value(lua_State *L, int t, heads *hd, const char *k, const char *name)
{
    const char *v = http_opt_string(L, t, k);
    if (!v) return;
    if (strpbrk(v, "\r\n")) luaL_error(L, "http: option '%s' may not hold a line break", k);
    lua_pushfstring(L, "%s: %s", name, v);
    add_line(hd, lua_tostring(L, -1));
    lua_pop(L, 1);
}

/* nil, message, kind for what uhttp_exchange returned */
static int push_failure(lua_State *L, int rc, uhttp_conn *c, uhttp_parser *p, const char *err, int eno,
                        double t0)
{
    char msg[UHTTP_ERR + 256], shown[200];
    const char *kind = "other";
    switch (rc) {
    case UHTTP_CONNECT:
        snprintf(msg, sizeof msg, "Failed to connect to %s port %u: Couldn't connect to server (%s)", c->host, c->port,
                 strerror(eno));
        kind = "connect";
        break;
    case UHTTP_TIMEOUT:
        snprintf(msg, sizeof msg, "Operation timed out after %.0f milliseconds with %zu bytes received",
                 (provision_now() - t0) * 1000, p->body.len);
        kind = "timeout";
        break;
    case UHTTP_INTERRUPTED:
        snprintf(msg, sizeof msg, "interrupted");
        kind = "interrupted";
        break;
    case UHTTP_IO:
        snprintf(msg, sizeof msg, "%s", err);
        kind = "partial";
        break;
    case UHTTP_PROTOCOL:
        kind = "protocol";
        if (p->why == UHW_NOT_HTTP) {
            http_show_bytes(p->first, p->nfirst, 40, shown, sizeof shown);
            snprintf(msg, sizeof msg, "the server did not answer HTTP (first bytes: \"%s\")", shown);
        } else if (p->why == UHW_LINE) {
            snprintf(msg, sizeof msg, "the server sent a header line over %d KiB", MAX_HEADER_LINE / 1024);
        } else if (p->why == UHW_HEAD) {
            snprintf(msg, sizeof msg, "the server sent too many header lines: %zu bytes of them before provision "
                     "stopped", p->head_bytes);
        } else {
            snprintf(msg, sizeof msg, "%s", err);
            if (p->why == UHW_CUT) kind = "partial";
        }
        break;
    default:
        snprintf(msg, sizeof msg, "out of memory");
    }
    lua_pushnil(L);
    lua_pushstring(L, msg);
    lua_pushstring(L, kind);
    return 3;
}

/* Location of the reply, absolute (resolved against url), into out; 0 when none */
static int location(const uhttp_parser *p, const char *url, http_buf *out)
{
    const char *s = p->headers.p, *end = s ? s + p->headers.len : NULL, *loc = NULL;
    size_t ln = 0;
    while (s && s < end && !loc) {
        const char *eol = memchr(s, '\n', (size_t)(end - s));
        if (!eol) eol = end;
        if (eol - s > 9 && strncasecmp(s, "location:", 9) == 0) {
            loc = s + 9;
            while (loc < eol && (*loc == ' ' || *loc == '\t')) loc++;
            const char *le = eol;
            while (le > loc && (le[-1] == '\r' || le[-1] == ' ' || le[-1] == '\t')) le--;
            ln = (size_t)(le - loc);
        }
        s = eol + 1;
    }
    if (!loc || ln == 0) return 0;
    size_t k = 0;
    while (k < ln && (loc[k] == '+' || loc[k] == '-' || loc[k] == '.' || (loc[k] >= '0' && loc[k] <= '9')
                      || (loc[k] >= 'A' && loc[k] <= 'Z') || (loc[k] >= 'a' && loc[k] <= 'z')))
        k++;
    const char *origin_end = url + 7 + strcspn(url + 7, "/?#");
    size_t keep;
    if (k > 0 && k < ln && loc[k] == ':' && !(loc[0] >= '0' && loc[0] <= '9')) keep = 0;   /* absolute */
    else if (ln >= 2 && loc[0] == '/' && loc[1] == '/') keep = 5;                           /* "http:" */
    else if (loc[0] == '/') keep = (size_t)(origin_end - url);
    else if (loc[0] == '?') keep = (size_t)(origin_end - url) + strcspn(origin_end, "?#");
    else {   /* relative to the folder of the path */
        const char *pe = origin_end + strcspn(origin_end, "?#"), *slash = pe;
        while (slash > origin_end && slash[-1] != '/') slash--;
        keep = (size_t)(slash - url);
        if (slash == origin_end && http_buf_add(out, url, keep) == 0 && http_buf_add(out, "/", 1) == 0
            && http_buf_add(out, loc, ln) == 0)
            return 1;
    }
    return http_buf_add(out, url, keep) == 0 && http_buf_add(out, loc, ln) == 0;
}

/* a request as the options at t give it (plain_prepare), until it is sent */
typedef struct {
    const char *url, *target;   /* borrowed from the options table */
    char host[64], hosthdr[80];
    unsigned port;
    http_buf pre;               /* the header lines (credentials among them): wiped by plain_release */
    http_buf query;             /* "/?q" for "http://h?q" */
    uhttp_request rq;
} plain_req;

static void plain_release(plain_req *r)
{
    if (r->pre.p) memset(r->pre.p, 0, r->pre.cap);
    http_buf_free(&r->pre);
    http_buf_free(&r->query);
}

/* the request of the options at t -> 1 (r to release), or 0: not for this
 * path (nothing to release); raises on misuse, as libcurl's path does */
static int plain_prepare(lua_State *L, int t, plain_req *r)
{
    memset(r, 0, sizeof *r);
    lua_getfield(L, t, "url");
    const char *url = lua_tostring(L, -1);
    lua_pop(L, 1);   /* the options table keeps it */
    const char *target;
    if (!url || !split_url(url, r->host, sizeof r->host, &r->port, &target)) return 0;
    if (env_set("http_proxy") || env_set("HTTP_PROXY") || env_set("all_proxy") || env_set("ALL_PROXY")) return 0;
    uhttp_conn probe;
    if (uhttp_conn_init_tcp(&probe, r->host, r->port) < 0) return 0;   /* a name to resolve: libcurl */
    const char *method = http_opt_string(L, t, "method");
    lua_getfield(L, t, "body");
    size_t blen = 0;
    const char *body = lua_isnil(L, -1) ? NULL : luaL_checklstring(L, -1, &blen);
    lua_pop(L, 1);
    if (!method) method = "GET";
    if (strcasecmp(method, "HEAD") == 0) method = "HEAD";
    else if (strcasecmp(method, "GET") == 0 && !body) method = "GET";
    if (!is_token(method)) return 0;
    double timeout = http_opt_number(L, t, "timeout", 0);
    double connect = http_opt_number(L, t, "connect_timeout", timeout > 0 && timeout < 30 ? timeout : 30);
    double max_redirects = http_opt_number(L, t, "max_redirects", 10);
    if (max_redirects < 0) luaL_error(L, "http: option 'max_redirects' must be >= 0");
    size_t max_body = (size_t)http_opt_number(L, t, "max_body", HTTP_DEFAULT_MAX_BODY);
    int headers_only = http_opt_bool(L, t, "headers_only");
    http_opt_bool(L, t, "insecure");   /* for https only: checked as libcurl's path does */
    http_opt_string(L, t, "ca_file");
    const char *user = http_opt_string(L, t, "user"), *password = http_opt_string(L, t, "password");

    heads hd;
    memset(&hd, 0, sizeof hd);
    own_value(L, t, &hd, "if_none_match", "If-None-Match");
    own_value(L, t, &hd, "if_modified_since", "If-Modified-Since");
    http_opt_headers(L, t, add_line, &hd);   /* raises on a bad header, as for libcurl */
    if (hd.refuse || (hd.own_auth && (user || password))) { free_heads(&hd); return 0; }
    /* Accept and the credentials first, as libcurl sends them */
    http_buf *pre = &r->pre;
    if (!hd.own_accept && http_buf_add(pre, "Accept: */*\r\n", 13) < 0) hd.oom = 1;
    if (user || password) {
        http_buf cred = { 0 };
        if (http_buf_add(&cred, user ? user : "", strlen(user ? user : "")) < 0 || http_buf_add(&cred, ":", 1) < 0
            || http_buf_add(&cred, password ? password : "", strlen(password ? password : "")) < 0)
            hd.oom = 1;
        if (http_buf_add(pre, "Authorization: Basic ", 21) < 0) hd.oom = 1;
        b64(cred.p ? cred.p : "", cred.len, pre, &hd.oom);
        if (http_buf_add(pre, "\r\n", 2) < 0) hd.oom = 1;
        if (cred.p) memset(cred.p, 0, cred.cap);
        http_buf_free(&cred);
    }
    if (hd.lines.len && http_buf_add(pre, hd.lines.p, hd.lines.len) < 0) hd.oom = 1;
    free_heads(&hd);
    const char *host = r->host;
    if (r->port == 80) snprintf(r->hosthdr, sizeof r->hosthdr, strchr(host, ':') ? "[%s]" : "%s", host);
    else snprintf(r->hosthdr, sizeof r->hosthdr, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, r->port);
    /* "http://h?q": libcurl asks for "/?q" */
    if (*target == '?' && (http_buf_add(&r->query, "/", 1) < 0 || http_buf_add(&r->query, target, strlen(target) + 1) < 0))
        hd.oom = 1;
    if (hd.oom) {
        plain_release(r);
        return luaL_error(L, "http: out of memory");
    }
    r->url = url;
    r->target = target;
    r->rq = (uhttp_request){
        .method = method, .target = *target == '?' ? r->query.p : *target ? target : "/",
        .host = hd.own_host ? "" : r->hosthdr,
        .user_agent = hd.own_agent ? "" : "provision/" PROVISION_VERSION, .headers = pre->p,
        .content_type = body && !hd.own_type ? "application/x-www-form-urlencoded" : NULL,
        .body = body, .body_len = blen, .body_fd = -1, .timeout = timeout, .connect_timeout = connect,
        .max_body = max_body, .truncate = 1, .headers_only = headers_only, .max_line = MAX_HEADER_LINE,
    };
    return 1;
}

/* the result table of reply p to the request of url (its target) */
static int push_reply(lua_State *L, uhttp_parser *p, const char *url, const char *target, double t0)
{
    lua_createtable(L, 0, 7);
    lua_pushinteger(L, p->status);
    lua_setfield(L, -2, "status");
    http_xfer view;   /* http_push_headers reads only the header lines */
    memset(&view, 0, sizeof view);
    view.hdrs.p = p->headers.p;
    view.hdrs.len = p->headers.len;
    http_push_headers(L, &view);
    lua_setfield(L, -2, "headers");
    if (*target == '/') {
        http_push_url_shown(L, url);
    } else {   /* "http://h:p" or "http://h:p?q": libcurl's effective URL has the "/" */
        lua_pushfstring(L, "%s/%s", lua_pushlstring(L, url, (size_t)(target - url)), target);
        lua_remove(L, -2);
    }
    lua_setfield(L, -2, "url");
    lua_pushnumber(L, provision_now() - t0);
    lua_setfield(L, -2, "seconds");
    lua_pushlstring(L, p->body.p ? p->body.p : "", p->stopped ? 0 : p->body.len);
    lua_setfield(L, -2, "body");
    lua_pushboolean(L, p->truncated);
    lua_setfield(L, -2, "truncated");
    return 1;
}

int http_plain_request(lua_State *L, http_plain *pl, int t, http_buf *redirect, long *status)
{
    plain_req r;
    if (!plain_prepare(L, t, &r)) return 0;
    /* the connection: kept between requests to the same host and port */
    if (pl->ready && (strcmp(pl->conn.host, r.host) != 0 || pl->conn.port != r.port)) http_plain_close(pl);
    if (!pl->ready) {
        uhttp_conn_init_tcp(&pl->conn, r.host, r.port);
        uhttp_parser_init(&pl->reply, 0, 0);
        pl->ready = 1;
    }
    char err[UHTTP_ERR + 64];
    int eno = 0;
    double t0 = provision_now();
    int rc = uhttp_exchange(&pl->conn, &r.rq, &pl->reply, err, sizeof err, &eno);
    plain_release(&r);
    if (rc == UHTTP_OK && provision_interrupted()) rc = UHTTP_INTERRUPTED;
    if (rc != UHTTP_OK) return push_failure(L, rc, &pl->conn, &pl->reply, err, eno, t0);
    uhttp_parser *p = &pl->reply;
    if (http_is_redirect(p->status) && location(p, r.url, redirect)) {   /* libcurl from the next hop on */
        *status = p->status;
        return -1;
    }
    http_buf_free(redirect);
    return push_reply(L, p, r.url, r.target, t0);
}

/* ---- an early request: sent now, its reply read when a check wants it */

#define EARLY_MT "provision.http.early"
#define EARLY_CONNECT 0.01   /* seconds: a loopback connect takes microseconds; one that waits is not early */
typedef struct {
    int open;
    uhttp_conn conn;
    uhttp_parser reply;
    double timeout;      /* the request's, counted from when it was sent */
    double t0;           /* when it was sent */
    size_t target;       /* the target's offset in the URL (the userdata's user value) */
} http_early;

static void early_release(http_early *e)
{
    if (!e->open) return;
    uhttp_conn_close(&e->conn);
    uhttp_parser_free(&e->reply);
    e->open = 0;
}

static int early_close(lua_State *L)
{
    early_release(luaL_checkudata(L, 1, EARLY_MT));
    return 0;
}

/* to this machine: 127.0.0.0/8, ::1 or "localhost" */
static int loopback(const char *host)
{
    return strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0;
}

int http_plain_begin(lua_State *L, int t)
{
    /* first: memory for it can fail before anything holds credentials */
    http_early *e = lua_newuserdatauv(L, sizeof *e, 1);
    memset(e, 0, sizeof *e);
    luaL_setmetatable(L, EARLY_MT);
    plain_req r;
    if (!plain_prepare(L, t, &r)) {
        lua_pushnil(L);
        return 1;
    }
    int rc = UHTTP_CONNECT;
    if (loopback(r.host)) {
        uhttp_conn_init_tcp(&e->conn, r.host, r.port);
        uhttp_parser_init(&e->reply, 0, 0);
        e->open = 1;
        e->timeout = r.rq.timeout;
        e->target = (size_t)(r.target - r.url);
        lua_pushstring(L, r.url);
        lua_setiuservalue(L, -2, 1);
        r.rq.connect_timeout = EARLY_CONNECT;
        e->t0 = provision_now();
        char err[UHTTP_ERR + 64];
        int eno = 0;
        rc = uhttp_send(&e->conn, &r.rq, &e->reply, err, sizeof err, &eno);
    }
    plain_release(&r);
    if (rc != UHTTP_OK) {   /* not sent: the check asks as it would have */
        early_release(e);
        lua_pushnil(L);
    }
    return 1;
}

/* early:finish() -> the result h:request(opts) would give; nil, message,
 * kind when it timed out (the request's timeout, from when it was sent) or
 * was interrupted; or nil for anything else but a whole reply that is not
 * a redirect (the caller asks again, the usual way, which says what went
 * wrong). Once: it is closed after. */
static int early_finish(lua_State *L)
{
    http_early *e = luaL_checkudata(L, 1, EARLY_MT);
    lua_settop(L, 1);
    if (!e->open) return 0;
    lua_getiuservalue(L, 1, 1);
    const char *url = lua_tostring(L, 2);
    double left = 0;
    if (e->timeout > 0) {
        left = e->timeout - (provision_now() - e->t0);
        if (left < 0.001) left = 0.001;   /* (the reply may be there already) */
    }
    char err[UHTTP_ERR + 64];
    int eno = 0;
    int rc = uhttp_receive(&e->conn, &e->reply, left, err, sizeof err, &eno);
    if (rc == UHTTP_OK && provision_interrupted()) rc = UHTTP_INTERRUPTED;
    int n;
    if (rc == UHTTP_TIMEOUT || rc == UHTTP_INTERRUPTED) n = push_failure(L, rc, &e->conn, &e->reply, err, eno, e->t0);
    else if (rc != UHTTP_OK || http_is_redirect(e->reply.status)) { lua_pushnil(L); n = 1; }
    else n = push_reply(L, &e->reply, url, url + e->target, e->t0);
    early_release(e);
    return n;
}

void http_plain_open(lua_State *L)
{
    static const luaL_Reg methods[] = { { "finish", early_finish }, { "close", early_close }, { NULL, NULL } };
    if (luaL_newmetatable(L, EARLY_MT)) {
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, early_close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, early_close);
        lua_setfield(L, -2, "__close");
    }
    lua_pop(L, 1);
}
