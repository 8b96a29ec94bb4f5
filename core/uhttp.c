/* uhttp.c: a small HTTP/1.1 client over a unix socket or TCP (what and
 * why: uhttp.h). The reply parser first, then the connection. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "core.h"
#include "uhttp.h"

#define LINE_MAX_CHUNK 1024      /* a chunk-size line, with its extensions */

/* ---- buffers: always a NUL after the bytes */

static int buf_reserve(uhttp_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len - 1) return -1;
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *q = realloc(b->p, cap);
    if (!q) return -1;
    b->p = q;
    b->cap = cap;
    return 0;
}

static int buf_add(uhttp_buf *b, const void *s, size_t n)
{
    if (buf_reserve(b, n) < 0) return -1;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

static void buf_free(uhttp_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ---- the parser */

void uhttp_parser_init(uhttp_parser *p, int head, size_t max_body)
{
    memset(p, 0, sizeof *p);
    p->head = head;
    p->max_body = max_body;
    p->state = UH_STATUS;
}

void uhttp_parser_reset(uhttp_parser *p, int head, size_t max_body)
{
    uhttp_buf line = p->line, headers = p->headers, body = p->body;
    /* a large body's memory is not kept for the next reply */
    if (body.cap > (4u << 20)) buf_free(&body);
    uhttp_parser_init(p, head, max_body);
    p->line = line; p->line.len = 0;
    p->headers = headers; p->headers.len = 0;
    p->body = body; p->body.len = 0;
    if (p->line.p) p->line.p[0] = 0;
    if (p->headers.p) p->headers.p[0] = 0;
    if (p->body.p) p->body.p[0] = 0;
}

void uhttp_parser_free(uhttp_parser *p)
{
    buf_free(&p->line);
    buf_free(&p->headers);
    buf_free(&p->body);
}

/* s (n bytes) as text a message can show: printable ASCII as is, the rest
 * as \r, \n, \t or \xNN; at most max bytes of s */
static void show_bytes(const char *s, size_t n, size_t max, char *out, size_t outlen)
{
    size_t o = 0;
    if (outlen == 0) return;
    for (size_t i = 0; i < n && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        char tmp[5];
        if (c == '\r') strcpy(tmp, "\\r");
        else if (c == '\n') strcpy(tmp, "\\n");
        else if (c == '\t') strcpy(tmp, "\\t");
        else if (c == '"' || c == '\\') { tmp[0] = '\\'; tmp[1] = (char)c; tmp[2] = 0; }
        else if (c >= 0x20 && c < 0x7f) { tmp[0] = (char)c; tmp[1] = 0; }
        else snprintf(tmp, sizeof tmp, "\\x%02x", c);
        size_t k = strlen(tmp);
        if (o + k + 1 > outlen) break;
        memcpy(out + o, tmp, k);
        o += k;
    }
    if (n > max && o + 4 <= outlen) { memcpy(out + o, "...", 3); o += 3; }
    out[o] = 0;
}

static int fail(uhttp_parser *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, sizeof p->err, fmt, ap);
    va_end(ap);
    p->state = UH_FAILED;
    return -1;
}

static int fail_line(uhttp_parser *p, const char *what, const char *s, size_t n)
{
    char shown[160];
    show_bytes(s, n, 100, shown, sizeof shown);
    return fail(p, "%s: \"%s\"", what, shown);
}

static int not_http(uhttp_parser *p)
{
    char shown[200];
    show_bytes(p->first, p->nfirst, sizeof p->first, shown, sizeof shown);
    p->why = UHW_NOT_HTTP;
    return fail(p, "the reply is not HTTP: it starts \"%s\"", shown);
}

/* "a, b , c" -> does the list hold tok (case-insensitive)? last: tok must
 * be its last item */
static int list_has(const char *v, size_t n, const char *tok, int last)
{
    size_t tl = strlen(tok), i = 0;
    int found = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && v[j] != ',') j++;
        size_t a = i, b = j;
        while (a < b && (v[a] == ' ' || v[a] == '\t')) a++;
        while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t')) b--;
        if (b > a) found = (b - a == tl && strncasecmp(v + a, tok, tl) == 0) ? 1 : (last ? 0 : found);
        i = j + 1;
    }
    return found;
}

static int is_tchar(unsigned char c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static void clear_reply(uhttp_parser *p)
{
    p->status = p->minor = 0;
    p->chunked = p->have_length = p->conn_close = p->keep_alive = p->other_coding = 0;
    p->length = 0;
    p->headers.len = 0;
    if (p->headers.p) p->headers.p[0] = 0;
}

static int status_line(uhttp_parser *p, const char *s, size_t n)
{
    if (n == 0) return 0;   /* an empty line before the status line: passed over */
    if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)s[7]) || s[8] != ' '
        || !isdigit((unsigned char)s[9]) || !isdigit((unsigned char)s[10]) || !isdigit((unsigned char)s[11])
        || (n > 12 && s[12] != ' '))
        return fail_line(p, "the reply's status line cannot be read", s, n);
    clear_reply(p);
    p->minor = s[7] - '0';
    p->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    if (p->status < 100) return fail_line(p, "the reply's status line cannot be read", s, n);
    p->state = UH_HEADER;
    return 0;
}

static int content_length(uhttp_parser *p, const char *v, size_t n)
{
    uint64_t x = 0;
    size_t i = 0;
    while (i < n && (v[i] == ' ' || v[i] == '\t')) i++;
    while (n > i && (v[n - 1] == ' ' || v[n - 1] == '\t')) n--;
    if (i == n) return fail(p, "the reply's Content-Length is empty");
    for (; i < n; i++) {
        if (!isdigit((unsigned char)v[i])) return fail_line(p, "the reply's Content-Length is not a number", v, n);
        unsigned d = (unsigned)(v[i] - '0');
        if (x > (UINT64_MAX - d) / 10) return fail(p, "the reply's Content-Length is too large to be true");
        x = x * 10 + d;
    }
    if (p->have_length && p->length != x) return fail(p, "the reply has two different Content-Length headers");
    p->have_length = 1;
    p->length = x;
    return 0;
}

static int header_line(uhttp_parser *p, const char *s, size_t n)
{
    if (s[0] == ' ' || s[0] == '\t') return fail_line(p, "the reply has a folded header line", s, n);
    const char *colon = memchr(s, ':', n);
    if (!colon || colon == s) return fail_line(p, "the reply has a header line without a name", s, n);
    for (const char *q = s; q < colon; q++)
        if (!is_tchar((unsigned char)*q)) return fail_line(p, "the reply has a header name that cannot be", s, n);
    if (buf_add(&p->headers, s, n) < 0 || buf_add(&p->headers, "\r\n", 2) < 0) {
        p->oom = 1;
        return fail(p, "out of memory");
    }
    size_t nl = (size_t)(colon - s);
    const char *v = colon + 1;
    size_t vn = n - nl - 1;
    if (nl == 14 && strncasecmp(s, "content-length", 14) == 0) return content_length(p, v, vn);
    if (nl == 17 && strncasecmp(s, "transfer-encoding", 17) == 0) {
        /* the last coding decides: chunked, or the body runs to the end */
        if (list_has(v, vn, "chunked", 1)) { p->chunked = 1; p->other_coding = 0; }
        else { p->chunked = 0; p->other_coding = 1; }
        return 0;
    }
    if (nl == 10 && strncasecmp(s, "connection", 10) == 0) {
        if (list_has(v, vn, "close", 0)) p->conn_close = 1;
        if (list_has(v, vn, "keep-alive", 0)) p->keep_alive = 1;
    }
    return 0;
}

static int headers_done(uhttp_parser *p)
{
    if (p->status == 101) return fail(p, "the reply is 101 Switching Protocols, which this client does not follow");
    if (p->status < 200) {   /* 100 Continue, 102, 103: an interim reply; the real one follows */
        clear_reply(p);
        p->state = UH_STATUS;
        return 0;
    }
    if (p->head || p->status == 204 || p->status == 304
        || (p->have_length && p->length == 0 && !p->chunked && !p->other_coding)) {
        p->state = UH_DONE;
        return 0;
    }
    if (p->stop_at_body) {   /* the caller wants the headers only: the body is left unread */
        p->stopped = 1;
        p->conn_close = 1;
        p->state = UH_DONE;
        return 0;
    }
    if (p->other_coding) {   /* a coding it cannot undo: the body runs to the end of the connection */
        p->conn_close = 1;
        p->state = UH_BODY_EOF;
        return 0;
    }
    if (p->chunked) {
        if (p->have_length) p->conn_close = 1;   /* both: chunked wins, the connection is not trusted after */
        p->state = UH_CHUNK_SIZE;
        return 0;
    }
    if (p->have_length) {
        if (p->max_body && p->length > p->max_body && !p->truncate)
            return fail(p, "the reply's body is %llu bytes (Content-Length), over the %zu allowed",
                        (unsigned long long)p->length, p->max_body);
        uint64_t want = p->max_body && p->length > p->max_body ? p->max_body : p->length;
        if (want < (64u << 20) && buf_reserve(&p->body, (size_t)want) < 0) {
            p->oom = 1;
            return fail(p, "out of memory");
        }
        p->state = UH_BODY_LEN;
        return 0;
    }
    p->conn_close = 1;
    p->state = UH_BODY_EOF;
    return 0;
}

static int chunk_size(uhttp_parser *p, const char *s, size_t n)
{
    uint64_t x = 0;
    size_t i = 0;
    for (; i < n && isxdigit((unsigned char)s[i]); i++) {
        if (x > (UINT64_MAX >> 4)) return fail(p, "the reply has a chunk size too large to be true");
        x = (x << 4) | (uint64_t)(isdigit((unsigned char)s[i]) ? s[i] - '0' : (tolower((unsigned char)s[i]) - 'a' + 10));
    }
    size_t j = i;
    while (j < n && (s[j] == ' ' || s[j] == '\t')) j++;
    if (i == 0 || (j < n && s[j] != ';')) return fail_line(p, "the reply has a bad chunk size line", s, n);
    if (x == 0) { p->state = UH_TRAILER; return 0; }
    if (p->max_body && x > p->max_body - p->body.len && !p->truncate)
        return fail(p, "the reply's body is over the %zu bytes allowed", p->max_body);
    p->length = x;
    p->state = UH_CHUNK_DATA;
    return 0;
}

/* a whole line s (n bytes, without its end of line) in state p->state */
static int line_done(uhttp_parser *p, const char *s, size_t n)
{
    switch (p->state) {
    case UH_STATUS: return status_line(p, s, n);
    case UH_HEADER: return n == 0 ? headers_done(p) : header_line(p, s, n);
    case UH_CHUNK_SIZE: return chunk_size(p, s, n);
    case UH_CHUNK_END:
        if (n != 0) return fail_line(p, "the reply has a chunk that does not end where its size says", s, n);
        p->state = UH_CHUNK_SIZE;
        return 0;
    case UH_TRAILER:
        if (n == 0) p->state = UH_DONE;
        return 0;
    default:
        return fail(p, "internal error: a line in state %d", (int)p->state);
    }
}

static int body_add(uhttp_parser *p, const char *s, size_t n)
{
    if (p->max_body && n > p->max_body - p->body.len && p->truncate) {   /* kept to max_body, the rest dropped */
        p->truncated = 1;
        n = p->max_body - p->body.len;
        if (n == 0) return 0;
    } else if (p->max_body && n > p->max_body - p->body.len)
        return fail(p, "the reply's body is over the %zu bytes allowed", p->max_body);
    if (buf_add(&p->body, s, n) < 0) { p->oom = 1; return fail(p, "out of memory"); }
    return 0;
}

int uhttp_parse(uhttp_parser *p, const char *d, size_t n, size_t *used)
{
    size_t i = 0;
    /* the first bytes of the reply, for a message */
    if (p->nfirst == p->fed && p->nfirst < sizeof p->first) {
        size_t k = sizeof p->first - p->nfirst;
        if (k > n) k = n;
        memcpy(p->first + p->nfirst, d, k);
        p->nfirst += k;
    }
    while (i < n && p->state != UH_DONE && p->state != UH_FAILED) {
        switch (p->state) {
        case UH_STATUS: case UH_HEADER: case UH_TRAILER: case UH_CHUNK_SIZE: case UH_CHUNK_END: {
            const char *nl = memchr(d + i, '\n', n - i);
            size_t take = nl ? (size_t)(nl - (d + i)) + 1 : n - i;
            int in_head = p->state == UH_STATUS || p->state == UH_HEADER || p->state == UH_TRAILER;
            if (in_head) {
                if (take > UHTTP_MAX_HEAD - p->head_bytes) {
                    p->why = UHW_HEAD;
                    return *used = i, fail(p, "the reply's headers are over %d KiB", UHTTP_MAX_HEAD / 1024);
                }
                if (p->max_line && p->line.len + take > p->max_line + 2) {   /* + its CR LF */
                    p->why = UHW_LINE;
                    return *used = i, fail(p, "the reply has a header line over %zu KiB", p->max_line / 1024);
                }
                p->head_bytes += take;
            } else if (p->line.len + take > LINE_MAX_CHUNK) {
                return *used = i, fail(p, "the reply has a chunk size line over %d bytes", LINE_MAX_CHUNK);
            }
            if (buf_add(&p->line, d + i, take) < 0) { p->oom = 1; return *used = i, fail(p, "out of memory"); }
            i += take;
            p->fed += take;
            if (p->state == UH_STATUS) {   /* not HTTP: said at the first byte that cannot be */
                const char *l = p->line.p;
                size_t k = p->line.len < 5 ? p->line.len : 5;
                if (!(l[0] == '\r' || l[0] == '\n') && memcmp(l, "HTTP/", k) != 0)
                    return *used = i, not_http(p);
            }
            if (!nl) break;
            size_t len = p->line.len - 1;
            if (len > 0 && p->line.p[len - 1] == '\r') len--;
            int r = line_done(p, p->line.p, len);
            p->line.len = 0;
            if (r < 0) return *used = i, -1;
            break;
        }
        case UH_BODY_LEN: case UH_CHUNK_DATA: {
            size_t take = n - i;
            if ((uint64_t)take > p->length) take = (size_t)p->length;
            if (body_add(p, d + i, take) < 0) return *used = i, -1;
            i += take;
            p->fed += take;
            p->length -= take;
            if (p->length == 0) p->state = p->state == UH_BODY_LEN ? UH_DONE : UH_CHUNK_END;
            break;
        }
        case UH_BODY_EOF:
            if (body_add(p, d + i, n - i) < 0) return *used = i, -1;
            p->fed += n - i;
            i = n;
            break;
        default:
            break;
        }
    }
    *used = i;
    if (p->state == UH_FAILED) return -1;
    return p->state == UH_DONE ? 1 : 0;
}

int uhttp_parse_eof(uhttp_parser *p)
{
    switch (p->state) {
    case UH_DONE: return 1;
    case UH_BODY_EOF: p->state = UH_DONE; return 1;
    case UH_FAILED: return -1;
    case UH_STATUS:
        p->why = UHW_CUT;
        if (p->fed == 0) return fail(p, "the connection was closed before any reply came");
        /* fall through */
    case UH_HEADER:
        p->why = UHW_CUT;
        return fail(p, "the connection was closed in the middle of the reply's headers (%zu bytes came)", p->fed);
    case UH_BODY_LEN:
        p->why = UHW_CUT;
        return fail(p, "the connection was closed after %zu of the %llu bytes of the reply's body", p->body.len,
                    (unsigned long long)(p->body.len + p->length));
    default:
        p->why = UHW_CUT;
        return fail(p, "the connection was closed in the middle of the reply's chunked body (%zu bytes of it came)",
                    p->body.len);
    }
}

int uhttp_reusable(const uhttp_parser *p)
{
    return p->state == UH_DONE && !p->conn_close && (p->minor >= 1 || p->keep_alive);
}

/* ---- the connection */

void uhttp_conn_init(uhttp_conn *c, const char *path)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    snprintf(c->path, sizeof c->path, "%s", path);
}

/* host as addresses to try: "localhost" is 127.0.0.1 then ::1 (as curl
 * has it, without a resolver); else one IP literal. How many (0: none) */
static int tcp_addrs(const char *host, unsigned port, struct sockaddr_storage *out, socklen_t *lens)
{
    struct sockaddr_in *a4 = (struct sockaddr_in *)&out[0];
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&out[0];
    memset(out, 0, 2 * sizeof *out);
    if (strcasecmp(host, "localhost") == 0) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        lens[0] = sizeof *a4;
        a6 = (struct sockaddr_in6 *)&out[1];
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        a6->sin6_addr = in6addr_loopback;
        lens[1] = sizeof *a6;
        return 2;
    }
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        lens[0] = sizeof *a4;
        return 1;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        lens[0] = sizeof *a6;
        return 1;
    }
    return 0;
}

int uhttp_conn_init_tcp(uhttp_conn *c, const char *host, unsigned port)
{
    struct sockaddr_storage a[2];
    socklen_t l[2];
    memset(c, 0, sizeof *c);
    c->fd = -1;
    if (port == 0 || port > 65535 || strlen(host) >= sizeof c->host || tcp_addrs(host, port, a, l) == 0) return -1;
    snprintf(c->host, sizeof c->host, "%s", host);
    c->port = port;
    return 0;
}

void uhttp_conn_close(uhttp_conn *c)
{
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
}

/* wait until fd is ready for events (POLLIN / POLLOUT), a slice at a time
 * to notice an interrupt. 1 ready (revents in *got), or UHTTP_TIMEOUT /
 * UHTTP_INTERRUPTED (negated) */
static int wait_fd(int fd, short events, double deadline, short *got)
{
    for (;;) {
        if (provision_interrupted()) return -UHTTP_INTERRUPTED;
        int ms = 50;
        if (deadline > 0) {
            double left = deadline - provision_now();
            if (left <= 0) return -UHTTP_TIMEOUT;
            if (left < 0.05) ms = (int)(left * 1000) + 1;
        }
        struct pollfd pf = { .fd = fd, .events = events };
        int r = poll(&pf, 1, ms);
        if (r > 0) { *got = pf.revents; return 1; }
        if (r < 0 && errno != EINTR) { *got = POLLERR; return 1; }
    }
}

/* one TCP address: connected (UHTTP_OK), or why not */
static int connect_one(uhttp_conn *c, const struct sockaddr *a, socklen_t alen, double cend, int *errnum)
{
    int fd = socket(a->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) { *errnum = errno; return UHTTP_CONNECT; }
    int r;
    do r = connect(fd, a, alen); while (r < 0 && errno == EINTR);
    if (r < 0 && errno != EINPROGRESS) { *errnum = errno; close(fd); return UHTTP_CONNECT; }
    if (r < 0) {
        short ev = 0;
        int w = wait_fd(fd, POLLOUT, cend, &ev);
        if (w < 0) { close(fd); return -w; }
        int e = 0;
        socklen_t el = sizeof e;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0) e = errno;
        if (e) { *errnum = e; close(fd); return UHTTP_CONNECT; }
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    return UHTTP_OK;
}

static int connect_tcp(uhttp_conn *c, double connect_timeout, double deadline, int *errnum)
{
    struct sockaddr_storage a[2];
    socklen_t l[2];
    int n = tcp_addrs(c->host, c->port, a, l);
    if (n == 0) { *errnum = EINVAL; return UHTTP_CONNECT; }
    double cend = provision_now() + (connect_timeout > 0 ? connect_timeout : 5);
    if (deadline > 0 && deadline < cend) cend = deadline;
    int r = UHTTP_CONNECT;
    for (int i = 0; i < n; i++) {   /* the next address only after a refusal, not a timeout */
        r = connect_one(c, (struct sockaddr *)&a[i], l[i], cend, errnum);
        if (r != UHTTP_CONNECT) break;
    }
    return r;
}

static int connect_unix(uhttp_conn *c, double connect_timeout, double deadline, int *errnum)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) { *errnum = errno; return UHTTP_CONNECT; }
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    memcpy(a.sun_path, c->path, strlen(c->path));
    double cend = provision_now() + (connect_timeout > 0 ? connect_timeout : 5);
    if (deadline > 0 && deadline < cend) cend = deadline;
    for (;;) {
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) break;
        int e = errno;
        if (e == EINTR) continue;
        if (e == EAGAIN || e == EINPROGRESS) {   /* the engine's backlog is full: try again shortly */
            if (provision_interrupted()) { close(fd); return UHTTP_INTERRUPTED; }
            if (provision_now() >= cend) { close(fd); return UHTTP_TIMEOUT; }
            struct timespec ts = { 0, 5 * 1000 * 1000 };
            nanosleep(&ts, NULL);
            continue;
        }
        close(fd);
        *errnum = e;
        return UHTTP_CONNECT;
    }
    c->fd = fd;
    return UHTTP_OK;
}

/* did the engine close (or write to) a connection that waits idle? */
static int idle_gone(int fd)
{
    struct pollfd pf = { .fd = fd, .events = POLLIN | POLLRDHUP };
    return poll(&pf, 1, 0) != 0;
}

typedef struct xchg {
    uhttp_conn *c;
    uhttp_parser *p;
    double deadline;
    int early;       /* a reply came while the body was being sent */
    int got;         /* any byte of the reply came */
    int send_errno;  /* sending failed with this (the reply is read anyway) */
    char *err;
    size_t errlen;
    int *errnum;
} xchg;

static int io_fail(xchg *x, const char *what, int e)
{
    snprintf(x->err, x->errlen, "%s: %s", what, strerror(e));
    return UHTTP_IO;
}

/* send n bytes; stops early (x->early) when the reply starts while the
 * engine takes no more (it answered before the body's end), or on a send
 * error (x->send_errno): either way the reply is read next */
static int send_all(xchg *x, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t k = send(x->c->fd, s, n, MSG_NOSIGNAL);
        if (k >= 0) {
            s += k;
            n -= (size_t)k;
            continue;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN) { x->send_errno = errno; break; }
        short ev = 0;
        int w = wait_fd(x->c->fd, POLLOUT | POLLIN, x->deadline, &ev);
        if (w < 0) return -w;
        if (ev & POLLIN) { x->early = 1; break; }
    }
    return UHTTP_OK;
}

static int send_request(xchg *x, const uhttp_request *rq)
{
    uhttp_buf b = { 0 };
    int with_body = rq->body || rq->body_fd >= 0;
    int r = UHTTP_NOMEM;
    char line[160];
    /* Content-Length: with a body, or for a method that has one, empty */
    int cl = with_body || strcmp(rq->method, "POST") == 0 || strcmp(rq->method, "PUT") == 0
             || strcmp(rq->method, "PATCH") == 0;
    const char *host = rq->host ? rq->host : "localhost";
    if (buf_add(&b, rq->method, strlen(rq->method)) < 0 || buf_add(&b, " ", 1) < 0
        || buf_add(&b, rq->target, strlen(rq->target)) < 0 || buf_add(&b, " HTTP/1.1\r\n", 11) < 0)
        goto out;
    if (*host && (buf_add(&b, "Host: ", 6) < 0 || buf_add(&b, host, strlen(host)) < 0 || buf_add(&b, "\r\n", 2) < 0))
        goto out;
    if (!rq->user_agent || *rq->user_agent) {
        snprintf(line, sizeof line, "User-Agent: %.100s\r\n", rq->user_agent ? rq->user_agent : "provision");
        if (buf_add(&b, line, strlen(line)) < 0) goto out;
    }
    if (rq->headers && buf_add(&b, rq->headers, strlen(rq->headers)) < 0) goto out;
    if (with_body && rq->content_type) {
        if (buf_add(&b, "Content-Type: ", 14) < 0 || buf_add(&b, rq->content_type, strlen(rq->content_type)) < 0
            || buf_add(&b, "\r\n", 2) < 0)
            goto out;
    }
    if (cl) {
        snprintf(line, sizeof line, "Content-Length: %zu\r\n", with_body ? rq->body_len : 0);
        if (buf_add(&b, line, strlen(line)) < 0) goto out;
    }
    if (buf_add(&b, "\r\n", 2) < 0) goto out;
    /* a body in memory goes in the same write as the head */
    if (rq->body && buf_add(&b, rq->body, rq->body_len) < 0) goto out;
    r = send_all(x, b.p, b.len);
    if (r != UHTTP_OK || rq->body_fd < 0) goto out;
    char chunk[65536];
    size_t left = rq->body_len;
    while (left > 0 && !x->early && !x->send_errno) {
        ssize_t k = read(rq->body_fd, chunk, left < sizeof chunk ? left : sizeof chunk);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            *x->errnum = k < 0 ? errno : EIO;
            snprintf(x->err, x->errlen, "%s", k < 0 ? strerror(errno) : "it became shorter while it was sent");
            r = UHTTP_FILE;
            goto out;
        }
        left -= (size_t)k;
        r = send_all(x, chunk, (size_t)k);
        if (r != UHTTP_OK) goto out;
        if (provision_interrupted()) { r = UHTTP_INTERRUPTED; goto out; }
    }
out:
    if (b.p) memset(b.p, 0, b.cap);   /* it held the credentials */
    buf_free(&b);
    return r;
}

static int read_reply(xchg *x)
{
    char rb[65536];
    uhttp_parser *p = x->p;
    for (;;) {
        short ev = 0;
        int w = wait_fd(x->c->fd, POLLIN, x->deadline, &ev);
        if (w < 0) return -w;
        ssize_t n = recv(x->c->fd, rb, sizeof rb, 0);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            if (x->send_errno) return io_fail(x, "sending the request", x->send_errno);
            return io_fail(x, x->got ? "receiving the reply" : "no reply", errno);
        }
        if (n == 0) {
            if (uhttp_parse_eof(p) == 1) return UHTTP_OK;
            if (x->send_errno && !x->got) return io_fail(x, "sending the request", x->send_errno);
            snprintf(x->err, x->errlen, "%s", p->err);
            return x->got ? UHTTP_PROTOCOL : UHTTP_IO;
        }
        x->got = 1;
        size_t used = 0;
        int r = uhttp_parse(p, rb, (size_t)n, &used);
        if (r < 0) {
            snprintf(x->err, x->errlen, "%s", p->err);
            return p->oom ? UHTTP_NOMEM : UHTTP_PROTOCOL;
        }
        if (r == 1) {
            if (used < (size_t)n) p->conn_close = 1;   /* more than the reply: the connection is not trusted */
            return UHTTP_OK;
        }
    }
}

/* p made ready for the reply to rq */
static void reply_setup(uhttp_parser *p, const uhttp_request *rq)
{
    uhttp_parser_reset(p, strcmp(rq->method, "HEAD") == 0, rq->max_body);
    p->truncate = rq->truncate;
    p->stop_at_body = rq->headers_only;
    p->max_line = rq->max_line;
}

/* uhttp_send: the first half of an exchange, on a new connection: connect
 * and send rq (its body in memory only); the reply waits for uhttp_receive.
 * One answered before it was all sent, or not all sent, is UHTTP_IO here:
 * the caller asks again with uhttp_exchange, which reads such a reply. */
int uhttp_send(uhttp_conn *c, const uhttp_request *rq, uhttp_parser *p, char *err, size_t errlen, int *errnum)
{
    double deadline = rq->timeout > 0 ? provision_now() + rq->timeout : 0;
    int dummy = 0;
    if (!errnum) errnum = &dummy;
    *errnum = 0;
    err[0] = 0;
    if (c->fd >= 0 || rq->body_fd >= 0) {
        snprintf(err, errlen, "uhttp_send: a new connection and a body in memory only");
        return UHTTP_IO;
    }
    int r = c->path[0] ? connect_unix(c, rq->connect_timeout, deadline, errnum)
                       : connect_tcp(c, rq->connect_timeout, deadline, errnum);
    if (r != UHTTP_OK) return r;
    reply_setup(p, rq);
    xchg x = { .c = c, .p = p, .deadline = deadline, .err = err, .errlen = errlen, .errnum = errnum };
    r = send_request(&x, rq);
    if (r == UHTTP_OK && (x.early || x.send_errno)) {
        snprintf(err, errlen, "the request was not all sent");
        r = UHTTP_IO;
    }
    if (r != UHTTP_OK) uhttp_conn_close(c);
    return r;
}

/* uhttp_receive: the second half: the whole reply to what uhttp_send sent
 * into p, within timeout seconds from now (<= 0: none); the connection is
 * closed after (it carried one request) */
int uhttp_receive(uhttp_conn *c, uhttp_parser *p, double timeout, char *err, size_t errlen, int *errnum)
{
    int dummy = 0;
    xchg x = { .c = c, .p = p, .deadline = timeout > 0 ? provision_now() + timeout : 0, .err = err,
               .errlen = errlen, .errnum = errnum ? errnum : &dummy };
    err[0] = 0;
    int r = c->fd >= 0 ? read_reply(&x) : UHTTP_IO;
    uhttp_conn_close(c);
    return r;
}

int uhttp_exchange(uhttp_conn *c, const uhttp_request *rq, uhttp_parser *p, char *err, size_t errlen, int *errnum)
{
    double deadline = rq->timeout > 0 ? provision_now() + rq->timeout : 0;
    off_t start = rq->body_fd >= 0 ? lseek(rq->body_fd, 0, SEEK_CUR) : 0;
    int dummy = 0;
    if (!errnum) errnum = &dummy;
    *errnum = 0;
    err[0] = 0;
    for (int attempt = 0;; attempt++) {
        int reused = 0;
        if (c->fd >= 0) {
            if (idle_gone(c->fd)) uhttp_conn_close(c);
            else reused = 1;
        }
        if (c->fd < 0) {
            int r = c->path[0] ? connect_unix(c, rq->connect_timeout, deadline, errnum)
                               : connect_tcp(c, rq->connect_timeout, deadline, errnum);
            if (r != UHTTP_OK) return r;
        }
        reply_setup(p, rq);
        xchg x = { .c = c, .p = p, .deadline = deadline, .err = err, .errlen = errlen, .errnum = errnum };
        int r = send_request(&x, rq);
        if (r == UHTTP_OK) r = read_reply(&x);
        if (r == UHTTP_OK) {
            if (x.early || x.send_errno || !uhttp_reusable(p)) uhttp_conn_close(c);
            return UHTTP_OK;
        }
        uhttp_conn_close(c);
        /* a kept connection the engine closed just as the request went: once
         * more on a new one (the engine saw nothing of it) */
        if (r == UHTTP_IO && reused && !x.got && attempt == 0
            && (rq->body_fd < 0 || (start >= 0 && lseek(rq->body_fd, start, SEEK_SET) == start))) {
            err[0] = 0;
            continue;
        }
        return r;
    }
}
