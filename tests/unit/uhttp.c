/* Unit tests of core/uhttp.c, the HTTP/1.1 client the Docker Engine API
 * goes through on a unix socket:
 *   - the reply parser: good replies (Content-Length, chunked with
 *     extensions, trailers and bare LF, to the end of the connection, HEAD,
 *     204/304, interim 1xx) give the same status, headers and body however
 *     they are split (every split in two, byte by byte, random pieces);
 *     bad ones fail with the message that names what is wrong (not HTTP,
 *     a status line, Content-Length, chunk sizes, too big, headers too
 *     long, cut short); and thousands of random mutations and truncations
 *     of the good ones never crash it (run under the sanitizers by
 *     tests/ci-extra.sh) and either parse or say why;
 *   - what the http module's plain path asks of the parser (issue 19):
 *     a body cut at max_body (truncate), the headers only (stop_at_body),
 *     a header line over max_line, and what failed (why), at every split;
 *   - the connection, against a scripted server (a thread) on a unix
 *     socket and again over TCP on 127.0.0.1 (and "localhost"): one
 *     connection kept for several requests, a connection the server
 *     closed while idle, or at the request, replaced without the caller
 *     seeing it, a file body streamed whole, an early reply to a body not
 *     read, a timeout, a reply that is not HTTP, a socket nobody listens
 *     on (a port nobody listens on: refused), the request head as sent
 *     (Host and User-Agent left out when "", more header lines). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "core.h"
#include "uhttp.h"

static int failures;
static int tcp;   /* the connection tests: over TCP (1, their names marked) or a unix socket (0) */
#define CHECK(name, cond) do { if (cond) printf("PASS %s%s\n", name, tcp ? " [tcp]" : ""); \
    else { printf("FAIL %s%s: %s (line %d)\n", name, tcp ? " [tcp]" : "", #cond, __LINE__); failures++; } } while (0)

static unsigned long long rng = 88172645463325252ULL;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (unsigned)(rng % n);
}

typedef struct result {
    int rc;              /* 1 whole, -1 failed, 0 wants more (after EOF: never) */
    int status;
    char body[4096];
    size_t blen;
    char headers[4096];
    int reusable;
    char err[UHTTP_ERR];
    size_t leftover;
    int truncated, stopped, why;
} result;

/* the parser's options for the plain path, set on every parser run() makes */
static int opt_truncate, opt_stop;
static size_t opt_max_line;

/* feed s in the pieces cuts[] says (sorted offsets), then EOF when eof */
static void run(const char *s, size_t n, const size_t *cuts, size_t ncuts, int head, size_t max_body, int eof,
                result *r)
{
    uhttp_parser p;
    uhttp_parser_init(&p, head, max_body);
    p.truncate = opt_truncate;
    p.stop_at_body = opt_stop;
    p.max_line = opt_max_line;
    memset(r, 0, sizeof *r);
    size_t at = 0;
    int rc = 0;
    for (size_t k = 0; k <= ncuts && rc == 0; k++) {
        size_t end = k < ncuts ? cuts[k] : n;
        size_t used = 0;
        rc = uhttp_parse(&p, s + at, end - at, &used);
        if (rc == 1) r->leftover = (end - at - used) + (n - end);
        at = end;
    }
    if (rc == 0 && eof) rc = uhttp_parse_eof(&p);
    r->rc = rc;
    r->status = p.status;
    r->blen = p.body.len;
    if (p.body.len < sizeof r->body) memcpy(r->body, p.body.p ? p.body.p : "", p.body.len);
    snprintf(r->headers, sizeof r->headers, "%s", p.headers.p ? p.headers.p : "");
    r->reusable = rc == 1 && uhttp_reusable(&p);
    snprintf(r->err, sizeof r->err, "%s", p.err);
    r->truncated = p.truncated;
    r->stopped = p.stopped;
    r->why = p.why;
    uhttp_parser_free(&p);
}

static int same(const result *a, const result *b)
{
    return a->rc == b->rc && a->status == b->status && a->blen == b->blen && memcmp(a->body, b->body, a->blen) == 0
           && strcmp(a->headers, b->headers) == 0 && a->reusable == b->reusable && strcmp(a->err, b->err) == 0;
}

typedef struct good {
    const char *name, *text;
    int head, eof;         /* a HEAD request; EOF after the text */
    int status;
    const char *body;
    int reusable;
} good;

static const good GOOD[] = {
    { "content-length", "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\n"
      "Content-Length: 13\r\n\r\n{\"a\":[1,2,3]}", 0, 0, 200, "{\"a\":[1,2,3]}", 1 },
    { "no reason phrase", "HTTP/1.1 404\r\nContent-Length: 2\r\n\r\n{}", 0, 0, 404, "{}", 1 },
    { "chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n",
      0, 0, 200, "hello, world", 1 },
    { "chunked: extensions, upper-case hex, leading zeros, blanks",
      "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, Chunked\r\n\r\n000A;name=value\r\n0123456789\r\n"
      "1B \t; ext\r\nabcdefghijklmnopqrstuvwxyz!\r\n0;last\r\n\r\n",
      0, 0, 200, "0123456789abcdefghijklmnopqrstuvwxyz!", 1 },
    { "chunked: trailers", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n"
      "X-Trailer: 1\r\nX-Other: 2\r\n\r\n", 0, 0, 200, "abc", 1 },
    { "bare LF line ends", "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n2\nhi\n0\n\n", 0, 0, 200, "hi", 1 },
    { "chunked and Content-Length: chunked wins, connection not kept",
      "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
      0, 0, 200, "ok", 0 },
    { "to the end of the connection", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it, until EOF",
      0, 1, 200, "all of it, until EOF", 0 },
    { "an unknown coding: to the end", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n\x1f\x8b...",
      0, 1, 200, "\x1f\x8b...", 0 },
    { "Connection: close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", 0, 0, 200, "x", 0 },
    { "HTTP/1.0: not kept", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", 0, 0, 200, "x", 0 },
    { "HTTP/1.0 with keep-alive", "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\nx",
      0, 0, 200, "x", 1 },
    { "HEAD: no body whatever Content-Length says", "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
      1, 0, 200, "", 1 },
    { "204: no body", "HTTP/1.1 204 No Content\r\nServer: Docker\r\n\r\n", 0, 0, 204, "", 1 },
    { "304: no body", "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n", 0, 0, 304, "", 1 },
    { "100 Continue, then the reply", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nX-A: b\r\n"
      "Content-Length: 4\r\n\r\ndone", 0, 0, 201, "done", 1 },
    { "an empty line before the status line", "\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0, 0, 200, "", 1 },
    { "an empty body", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0, 0, 200, "", 1 },
    { "Content-Length twice, the same", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length:  2 \r\n\r\nab",
      0, 0, 200, "ab", 1 },
    { "a body with NUL bytes and CRLFs", "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n\1\0\0\0\r\n\r\n",
      0, 0, 200, "\1\0\0\0\r\n\r\n", 1 },
};

static size_t text_len(const good *g)
{
    /* the texts hold NUL bytes in one case: their lengths by hand there */
    if (strcmp(g->name, "a body with NUL bytes and CRLFs") == 0) return strlen("HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n") + 8;
    return strlen(g->text);
}
static size_t body_len(const good *g)
{
    return strcmp(g->name, "a body with NUL bytes and CRLFs") == 0 ? 8 : strlen(g->body);
}

static void test_good(void)
{
    for (size_t i = 0; i < sizeof GOOD / sizeof *GOOD; i++) {
        const good *g = &GOOD[i];
        size_t n = text_len(g);
        result whole, r;
        char name[200];
        run(g->text, n, NULL, 0, g->head, 0, g->eof, &whole);
        snprintf(name, sizeof name, "parse: %s", g->name);
        CHECK(name, whole.rc == 1 && whole.status == g->status && whole.blen == body_len(g)
              && memcmp(whole.body, g->body, whole.blen) == 0 && whole.reusable == g->reusable
              && whole.leftover == 0);
        if (whole.rc != 1) printf("    err: %s\n", whole.err);
        /* every split in two, byte by byte, and random pieces: the same */
        int ok = 1;
        for (size_t cut = 0; cut <= n; cut++) {
            run(g->text, n, &cut, 1, g->head, 0, g->eof, &r);
            if (!same(&whole, &r)) { ok = 0; printf("    split at %zu differs: %s\n", cut, r.err); break; }
        }
        size_t *cuts = malloc(sizeof *cuts * (n + 1));
        for (size_t k = 0; k < n; k++) cuts[k] = k + 1;
        run(g->text, n, cuts, n ? n - 1 : 0, g->head, 0, g->eof, &r);
        if (!same(&whole, &r)) { ok = 0; printf("    byte by byte differs: %s\n", r.err); }
        for (int t = 0; t < 200 && ok; t++) {
            size_t nc = 0, at = 0;
            while (at < n) { at += 1 + rnd(8); if (at < n) cuts[nc++] = at; }
            run(g->text, n, cuts, nc, g->head, 0, g->eof, &r);
            if (!same(&whole, &r)) { ok = 0; printf("    random split %d differs: %s\n", t, r.err); }
        }
        free(cuts);
        snprintf(name, sizeof name, "parse: %s: the same in any pieces", g->name);
        CHECK(name, ok);
    }
    /* the header lines as received, for client:request's headers = true */
    result r;
    run(GOOD[0].text, strlen(GOOD[0].text), NULL, 0, 0, 0, 0, &r);
    CHECK("parse: the header lines kept as they came",
          strcmp(r.headers, "Api-Version: 1.41\r\nContent-Type: application/json\r\nContent-Length: 13\r\n") == 0);
    run(GOOD[15].text, strlen(GOOD[15].text), NULL, 0, 0, 0, 0, &r);
    CHECK("parse: an interim reply's headers are not the reply's", strcmp(r.headers, "X-A: b\r\nContent-Length: 4\r\n") == 0);
    /* what follows a whole reply is not taken */
    const char *two = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n";
    run(two, strlen(two), NULL, 0, 0, 0, 0, &r);
    CHECK("parse: the bytes after the reply are left", r.rc == 1 && r.leftover == strlen("HTTP/1.1 200 OK\r\n"));
}

typedef struct bad {
    const char *name, *text;
    int eof;
    size_t max_body;
    const char *err;     /* what the message must hold */
} bad;

static const bad BAD[] = {
    { "an ssh banner", "SSH-2.0-OpenSSH_9.6\r\n", 0, 0, "the reply is not HTTP: it starts \"SSH-2.0-OpenSSH_9.6\\r\\n\"" },
    { "binary bytes", "\x00\x01\x02\x03", 0, 0, "the reply is not HTTP" },
    { "HTML", "<html><body>hi</body></html>", 0, 0, "the reply is not HTTP: it starts \"<html>" },
    { "lower-case http", "http/1.1 200 OK\r\n\r\n", 0, 0, "the reply is not HTTP" },
    { "HTTP/2", "HTTP/2 200\r\n\r\n", 0, 0, "the reply's status line cannot be read: \"HTTP/2 200\"" },
    { "a two-digit status", "HTTP/1.1 20 OK\r\n\r\n", 0, 0, "status line cannot be read" },
    { "status 099", "HTTP/1.1 099 X\r\n\r\n", 0, 0, "status line cannot be read" },
    { "no space after the status", "HTTP/1.1 200OK\r\n\r\n", 0, 0, "status line cannot be read" },
    { "Content-Length not a number", "HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\n", 0, 0,
      "Content-Length is not a number" },
    { "Content-Length negative", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 0, 0, "Content-Length is not a number" },
    { "Content-Length empty", "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n", 0, 0, "Content-Length is empty" },
    { "Content-Length overflowing", "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n", 0, 0,
      "too large to be true" },
    { "two different Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc", 0, 0,
      "two different Content-Length" },
    { "Content-Length over the limit", "HTTP/1.1 200 OK\r\nContent-Length: 1001\r\n\r\n", 0, 1000,
      "the reply's body is 1001 bytes (Content-Length), over the 1000 allowed" },
    { "a chunked body over the limit", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3E8\r\n", 0, 999,
      "over the 999 bytes allowed" },
    { "chunks adding up over the limit", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n12345\r\n"
      "5\r\n67890\r\n", 0, 8, "over the 8 bytes allowed" },
    { "a body to the end over the limit", "HTTP/1.1 200 OK\r\n\r\n0123456789", 0, 5, "over the 5 bytes allowed" },
    { "a chunk size that is not hex", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0, 0,
      "bad chunk size line: \"zz\"" },
    { "an empty chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", 0, 0, "bad chunk size line" },
    { "a negative chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n", 0, 0, "bad chunk size line" },
    { "a chunk size with junk after it", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 x\r\n", 0, 0,
      "bad chunk size line" },
    { "a chunk size overflowing", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1FFFFFFFFFFFFFFFF\r\n", 0, 0,
      "chunk size too large to be true" },
    { "a chunk longer than its size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
      0, 0, "a chunk that does not end where its size says: \"c\"" },
    { "a folded header", "HTTP/1.1 200 OK\r\nX-A: 1\r\n  continued\r\n\r\n", 0, 0, "folded header line" },
    { "a header without a colon", "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", 0, 0, "header line without a name" },
    { "a header with a blank before the colon", "HTTP/1.1 200 OK\r\nX-A : 1\r\n\r\n", 0, 0, "header name that cannot be" },
    { "101 Switching Protocols", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: tcp\r\n\r\n", 0, 0,
      "101 Switching Protocols" },
    { "nothing at all", "", 1, 0, "the connection was closed before any reply came" },
    { "cut in the status line", "HTTP/1.1 20", 1, 0, "in the middle of the reply's headers (11 bytes came)" },
    { "cut in the headers", "HTTP/1.1 200 OK\r\nContent-Len", 1, 0, "in the middle of the reply's headers" },
    { "cut in the body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123", 1, 0,
      "closed after 4 of the 10 bytes of the reply's body" },
    { "cut in a chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", 1, 0,
      "in the middle of the reply's chunked body (2 bytes of it came)" },
    { "cut before the last chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n", 1, 0,
      "in the middle of the reply's chunked body" },
    { "cut in the trailers", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: 1\r\n", 1, 0,
      "chunked body" },
};

static void test_bad(void)
{
    for (size_t i = 0; i < sizeof BAD / sizeof *BAD; i++) {
        const bad *b = &BAD[i];
        size_t n = strcmp(b->name, "binary bytes") == 0 ? 4 : strlen(b->text);
        result whole, r;
        char name[200];
        run(b->text, n, NULL, 0, 0, b->max_body, b->eof, &whole);
        snprintf(name, sizeof name, "refused: %s", b->name);
        CHECK(name, whole.rc == -1 && strstr(whole.err, b->err) != NULL);
        if (!(whole.rc == -1 && strstr(whole.err, b->err))) printf("    rc %d, err: %s\n", whole.rc, whole.err);
        /* split anywhere: still refused (the words may show fewer bytes) */
        int ok = 1;
        for (size_t cut = 0; cut <= n && ok; cut++) {
            run(b->text, n, &cut, 1, 0, b->max_body, b->eof, &r);
            if (r.rc != -1 || !r.err[0]) { ok = 0; printf("    split at %zu: rc %d\n", cut, r.rc); }
        }
        snprintf(name, sizeof name, "refused: %s: in any pieces", b->name);
        CHECK(name, ok);
    }
    /* headers over the limit: one long line, and many short ones */
    size_t big = UHTTP_MAX_HEAD + 100;
    char *s = malloc(big + 64);
    strcpy(s, "HTTP/1.1 200 OK\r\nX-Long: ");
    size_t at = strlen(s);
    memset(s + at, 'a', big - at);
    result r;
    run(s, big, NULL, 0, 0, 0, 0, &r);
    CHECK("refused: a header line over the limit", r.rc == -1 && strstr(r.err, "the reply's headers are over 256 KiB"));
    strcpy(s, "HTTP/1.1 200 OK\r\n");
    for (at = strlen(s); at + 8 < big; at += 8) memcpy(s + at, "X-A: 1\r\n", 8);
    run(s, at, NULL, 0, 0, 0, 0, &r);
    CHECK("refused: too many header lines", r.rc == -1 && strstr(r.err, "headers are over 256 KiB"));
    free(s);
    /* a chunk size line that never ends */
    char cs[3000] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    at = strlen(cs);
    memset(cs + at, '0', sizeof cs - at - 1);
    cs[sizeof cs - 1] = 0;
    run(cs, strlen(cs), NULL, 0, 0, 0, 0, &r);
    CHECK("refused: a chunk size line over 1 KiB", r.rc == -1 && strstr(r.err, "chunk size line over 1024 bytes"));
}

/* random mutations and cuts of the good replies: no crash, no read past
 * the input (the sanitizers say), and an answer: whole, or a reason */
static void test_mutations(void)
{
    static const char alphabet[] = "\r\n :;0123456789abcdefABCDEFxHTTP/1.\t\0\xff";
    int ok = 1;
    char buf[1024];
    for (int t = 0; t < 20000; t++) {
        const good *g = &GOOD[rnd(sizeof GOOD / sizeof *GOOD)];
        size_t n = text_len(g);
        memcpy(buf, g->text, n);
        int muts = 1 + (int)rnd(4);
        for (int m = 0; m < muts; m++) {
            size_t pos = rnd((unsigned)n + 1);
            switch (rnd(4)) {
            case 0: if (pos < n) buf[pos] = alphabet[rnd(sizeof alphabet - 1)]; break;
            case 1: if (pos < n) { memmove(buf + pos, buf + pos + 1, n - pos - 1); n--; } break;   /* drop */
            case 2: if (n + 1 < sizeof buf) { memmove(buf + pos + 1, buf + pos, n - pos); buf[pos] = alphabet[rnd(sizeof alphabet - 1)]; n++; } break;
            default: n = pos; break;   /* cut */
            }
        }
        size_t cuts[6], nc = 0;
        for (size_t c = rnd(6); c > 0; c--) cuts[nc++] = rnd((unsigned)n + 1);
        for (size_t a = 0; a < nc; a++)   /* sorted */
            for (size_t b = a + 1; b < nc; b++)
                if (cuts[b] < cuts[a]) { size_t x = cuts[a]; cuts[a] = cuts[b]; cuts[b] = x; }
        result r, whole;
        run(buf, n, cuts, nc, rnd(4) == 0, rnd(2) ? 0 : 64, 1, &r);
        run(buf, n, NULL, 0, 0, 0, 1, &whole);
        if (r.rc == 0 || whole.rc == 0 || (r.rc == -1 && !r.err[0]) || (r.rc == 1 && (r.status < 100 || r.status > 999)))
            { ok = 0; printf("    mutation %d: rc %d err %s\n", t, r.rc, r.err); break; }
    }
    CHECK("parse: 20000 random mutations and cuts: each whole or refused with a reason, no crash", ok);
}

/* ---- the plain path's options: each at every split in two, and byte by byte */

typedef struct opt_case {
    const char *name, *text;
    int truncate, stop;
    size_t max_body, max_line;
    int rc, status, truncated, stopped, reusable, why;
    const char *body;
} opt_case;

static const opt_case OPTS[] = {
    { "truncate: Content-Length over max_body: cut, the rest read", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789",
      1, 0, 4, 0, 1, 200, 1, 0, 1, UHW_OTHER, "0123" },
    { "truncate: chunked over max_body: cut, the rest read",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n",
      1, 0, 7, 0, 1, 200, 1, 0, 1, UHW_OTHER, "0123456" },
    { "truncate: a body that fits is whole", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
      1, 0, 3, 0, 1, 200, 0, 0, 1, UHW_OTHER, "abc" },
    { "no truncate: over max_body is refused", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789",
      0, 0, 4, 0, -1, 200, 0, 0, 0, UHW_OTHER, "" },
    { "headers only: stopped at the body, the connection not kept", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789",
      0, 1, 0, 0, 1, 200, 0, 1, 0, UHW_OTHER, "" },
    { "headers only: a 304 has no body to stop at", "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n",
      0, 1, 0, 0, 1, 304, 0, 0, 1, UHW_OTHER, "" },
    { "headers only: Content-Length 0 is whole", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
      0, 1, 0, 0, 1, 200, 0, 0, 1, UHW_OTHER, "" },
    { "headers only: after an interim 100", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
      0, 1, 0, 0, 1, 200, 0, 1, 0, UHW_OTHER, "" },
    { "max_line: a header line over it is refused, said so", "HTTP/1.1 200 OK\r\nX-Long: 0123456789012345678901234567890123456789\r\nContent-Length: 0\r\n\r\n",
      0, 0, 0, 32, -1, 200, 0, 0, 0, UHW_LINE, "" },
    { "max_line: lines up to it pass", "HTTP/1.1 200 OK\r\nX-Long: 0123456789012345678901\r\nContent-Length: 1\r\n\r\nz",
      0, 0, 0, 32, 1, 200, 0, 0, 1, UHW_OTHER, "z" },
    { "why: not HTTP", "SSH-2.0-OpenSSH_9.6\r\n", 0, 0, 0, 0, -1, 0, 0, 0, 0, UHW_NOT_HTTP, "" },
    { "why: cut short in the body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123",
      0, 0, 0, 0, -1, 200, 0, 0, 0, UHW_CUT, "0123" },
    { "why: cut short in the headers", "HTTP/1.1 200 OK\r\nContent-Le", 0, 0, 0, 0, -1, 200, 0, 0, 0, UHW_CUT, "" },
};

static void test_options(void)
{
    char name[160];
    for (size_t i = 0; i < sizeof OPTS / sizeof OPTS[0]; i++) {
        const opt_case *o = &OPTS[i];
        size_t n = strlen(o->text);
        opt_truncate = o->truncate; opt_stop = o->stop; opt_max_line = o->max_line;
        int ok = 1;
        result r;
        for (size_t cut = 0; cut <= n + 1 && ok; cut++) {   /* cut n + 1: byte by byte */
            size_t cuts[1024], nc = 0;
            if (cut <= n) cuts[nc++] = cut;
            else for (size_t k = 1; k < n && nc < 1024; k++) cuts[nc++] = k;
            run(o->text, n, cuts, nc, 0, o->max_body, 1, &r);
            ok = r.rc == o->rc && (o->rc == 1 ? r.status == o->status : 1) && r.truncated == o->truncated
                 && r.stopped == o->stopped && r.reusable == o->reusable && r.why == o->why
                 && r.blen == strlen(o->body) && memcmp(r.body, o->body, r.blen) == 0;
            if (!ok) printf("    split %zu: rc %d status %d truncated %d stopped %d reusable %d why %d body %.*s err %s\n",
                            cut, r.rc, r.status, r.truncated, r.stopped, r.reusable, r.why, (int)r.blen, r.body, r.err);
        }
        snprintf(name, sizeof name, "options: %s", o->name);
        CHECK(name, ok);
    }
    opt_truncate = opt_stop = 0;
    opt_max_line = 0;
}

/* ---- the connection, against a scripted server */

typedef struct server {
    char path[108];      /* "": TCP on 127.0.0.1, port */
    int port;
    char head[4096];     /* the last request's head */
    int lfd;
    int script;          /* which behaviour */
    int accepts;         /* connections accepted */
    int requests;        /* requests read */
    size_t body_bytes;   /* of the last request's body */
    pthread_t th;
} server;

/* read one request head (to the empty line) and its body by
 * Content-Length: 1, or 0 at EOF */
static int read_request(int fd, size_t *body, char *head)
{
    char b[65536];
    size_t n = 0;
    for (;;) {
        ssize_t k = read(fd, b + n, 1);
        if (k <= 0) return 0;
        n++;
        if (n >= 4 && memcmp(b + n - 4, "\r\n\r\n", 4) == 0) break;
        if (n == sizeof b) return 0;
    }
    b[n] = 0;
    if (head) { size_t k = n < 4095 ? n : 4095; memcpy(head, b, k); head[k] = 0; }
    size_t len = 0;
    char *cl = strcasestr(b, "Content-Length: ");
    if (cl) len = strtoul(cl + 16, NULL, 10);
    *body = 0;
    while (*body < len) {
        size_t want = len - *body < sizeof b ? len - *body : sizeof b;
        ssize_t k = read(fd, b, want);
        if (k <= 0) return 0;
        *body += (size_t)k;
    }
    return 1;
}

static void say(int fd, const char *s) { if (write(fd, s, strlen(s)) < 0) return; }

static void *serve(void *arg)
{
    server *sv = arg;
    for (;;) {
        int fd = accept(sv->lfd, NULL, NULL);
        if (fd < 0) return NULL;
        sv->accepts++;
        size_t body = 0;
        switch (sv->script) {
        case 0:   /* keep-alive: answer every request on the connection */
            while (read_request(fd, &body, sv->head)) {
                sv->requests++;
                sv->body_bytes = body;
                say(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            }
            break;
        case 1:   /* one request per connection, closed after it without saying so */
            if (read_request(fd, &body, sv->head)) { sv->requests++; say(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); }
            break;
        case 2:   /* the first connection: one answer, then the next request is read and dropped */
            if (sv->accepts == 1) {
                if (read_request(fd, &body, sv->head)) { sv->requests++; say(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); }
                if (read_request(fd, &body, sv->head)) sv->requests++;
            } else {
                while (read_request(fd, &body, sv->head)) {
                    sv->requests++;
                    say(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nagain\r\n0\r\n\r\n");
                }
            }
            break;
        case 3: {   /* an early reply: the head read, the body not, 413 and close */
            char b[4096];
            ssize_t k = read(fd, b, sizeof b);
            (void)k;
            sv->requests++;
            say(fd, "HTTP/1.1 413 Request Entity Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo long");
            shutdown(fd, SHUT_WR);
            /* read and drop what comes, as a server does for a while */
            while (read(fd, b, sizeof b) > 0) {}
            break;
        }
        case 4:   /* says nothing: the client's timeout */
            read_request(fd, &body, sv->head);
            sv->requests++;
            sleep(1);
            break;
        case 5:   /* not HTTP */
            say(fd, "SSH-2.0-OpenSSH_9.6\r\n");
            sleep(1);
            break;
        }
        close(fd);
    }
}

/* a TCP socket on 127.0.0.1, bound to a port of the kernel's choice */
static int tcp_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t l = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || getsockname(fd, (struct sockaddr *)&a, &l) < 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static int server_start(server *sv, int script)
{
    memset(sv, 0, sizeof *sv);
    sv->script = script;
    if (tcp) {
        sv->lfd = tcp_listener(&sv->port);
        if (sv->lfd < 0 || listen(sv->lfd, 8) < 0) return -1;
        return pthread_create(&sv->th, NULL, serve, sv);
    }
    snprintf(sv->path, sizeof sv->path, "/tmp/provision-uhttp-%d-%d.sock", (int)getpid(), script);
    unlink(sv->path);
    sv->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    strcpy(a.sun_path, sv->path);
    if (sv->lfd < 0 || bind(sv->lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(sv->lfd, 8) < 0) return -1;
    return pthread_create(&sv->th, NULL, serve, sv);
}

/* a connection to sv's server */
static void conn_to(uhttp_conn *c, const server *sv)
{
    if (tcp) uhttp_conn_init_tcp(c, "127.0.0.1", (unsigned)sv->port);
    else uhttp_conn_init(c, sv->path);
}

static void server_stop(server *sv)
{
    shutdown(sv->lfd, SHUT_RDWR);   /* its accept fails: the thread returns */
    pthread_join(sv->th, NULL);
    close(sv->lfd);
    if (!tcp) unlink(sv->path);
}

static int get(uhttp_conn *c, uhttp_parser *p, const char *method, double timeout, char *err, int *eno)
{
    uhttp_request rq = { .method = method, .target = "/_ping", .body_fd = -1, .timeout = timeout };
    return uhttp_exchange(c, &rq, p, err, UHTTP_ERR + 64, eno);
}

static void test_connection(void)
{
    server sv;
    uhttp_conn c;
    uhttp_parser p;
    char err[UHTTP_ERR + 64];
    int eno = 0;
    uhttp_parser_init(&p, 0, 0);

    if (server_start(&sv, 0) < 0) { CHECK("server", 0); return; }
    conn_to(&c, &sv);
    int ok = 1;
    for (int i = 0; i < 5; i++)
        ok = ok && get(&c, &p, "GET", 5, err, &eno) == UHTTP_OK && p.status == 200 && strcmp(p.body.p, "ok") == 0;
    CHECK("connection: five requests, one connection (keep-alive)", ok && sv.accepts == 1 && sv.requests == 5);
    uhttp_request post = { .method = "POST", .target = "/x", .content_type = "application/json", .body = "{\"a\":1}",
                           .body_len = 7, .body_fd = -1, .timeout = 5 };
    CHECK("connection: a body in memory", uhttp_exchange(&c, &post, &p, err, sizeof err, &eno) == UHTTP_OK
          && sv.body_bytes == 7 && sv.accepts == 1);
    /* a file body, 3 MiB, streamed */
    char fpath[] = "/tmp/provision-uhttp-body.XXXXXX";
    int fd = mkstemp(fpath);
    static char block[65536];
    memset(block, 'z', sizeof block);
    for (int i = 0; i < 48; i++) if (write(fd, block, sizeof block) < 0) break;
    lseek(fd, 0, SEEK_SET);
    uhttp_request file = { .method = "POST", .target = "/images/create?fromSrc=-", .content_type = "application/x-tar",
                           .body_fd = fd, .body_len = 48 * sizeof block, .timeout = 10 };
    CHECK("connection: a file body streamed whole", uhttp_exchange(&c, &file, &p, err, sizeof err, &eno) == UHTTP_OK
          && p.status == 200 && sv.body_bytes == 48 * sizeof block);
    /* a file that is shorter than said */
    lseek(fd, 0, SEEK_SET);
    file.body_len = 48 * sizeof block + 10;
    CHECK("connection: a file shorter than its size: a file error",
          uhttp_exchange(&c, &file, &p, err, sizeof err, &eno) == UHTTP_FILE && eno == EIO
          && strstr(err, "shorter") != NULL);
    close(fd);
    unlink(fpath);
    CHECK("connection: HEAD", get(&c, &p, "HEAD", 5, err, &eno) == UHTTP_OK && p.status == 200);
    uhttp_conn_close(&c);
    server_stop(&sv);

    /* the server closes each connection after one reply, without saying so */
    server_start(&sv, 1);
    conn_to(&c, &sv);
    ok = 1;
    for (int i = 0; i < 3; i++) {
        ok = ok && get(&c, &p, "GET", 5, err, &eno) == UHTTP_OK && p.status == 200;
        usleep(20000);   /* the close reaches us while the connection is idle */
    }
    CHECK("connection: one closed while idle is replaced", ok && sv.accepts == 3 && sv.requests == 3);
    uhttp_conn_close(&c);
    server_stop(&sv);

    /* the server reads the second request and closes without a reply: sent again on a new connection */
    server_start(&sv, 2);
    conn_to(&c, &sv);
    int r1 = get(&c, &p, "GET", 5, err, &eno);
    int r2 = get(&c, &p, "GET", 5, err, &eno);
    CHECK("connection: a kept one that drops the request: sent once more on a new one",
          r1 == UHTTP_OK && r2 == UHTTP_OK && p.status == 200 && strcmp(p.body.p, "again") == 0 && sv.accepts == 2);
    uhttp_conn_close(&c);
    server_stop(&sv);

    /* an early reply to a body it does not read */
    server_start(&sv, 3);
    conn_to(&c, &sv);
    static char big[8 << 20];
    uhttp_request up = { .method = "POST", .target = "/big", .body = big, .body_len = sizeof big, .body_fd = -1,
                         .timeout = 10 };
    int r = uhttp_exchange(&c, &up, &p, err, sizeof err, &eno);
    CHECK("connection: a reply before the body's end is the reply", r == UHTTP_OK && p.status == 413
          && strcmp(p.body.p, "too long") == 0 && c.fd < 0);
    if (r != UHTTP_OK) printf("    %d: %s\n", r, err);
    server_stop(&sv);

    /* no answer: the timeout */
    server_start(&sv, 4);
    conn_to(&c, &sv);
    double t0 = provision_now();
    r = get(&c, &p, "GET", 0.3, err, &eno);
    double took = provision_now() - t0;
    CHECK("connection: no answer within the timeout", r == UHTTP_TIMEOUT && took >= 0.29 && took < 1.5 && c.fd < 0);
    server_stop(&sv);

    /* not HTTP */
    server_start(&sv, 5);
    conn_to(&c, &sv);
    r = get(&c, &p, "GET", 5, err, &eno);
    CHECK("connection: a reply that is not HTTP", r == UHTTP_PROTOCOL && strstr(err, "the reply is not HTTP: it starts \"SSH-2.0-"));
    server_stop(&sv);

    /* nobody there */
    if (tcp) {
        int port = 0, lfd = tcp_listener(&port);   /* bound, not listening: refused */
        uhttp_conn_init_tcp(&c, "127.0.0.1", (unsigned)port);
        r = get(&c, &p, "GET", 5, err, &eno);
        CHECK("connection: a port nobody listens on: refused", r == UHTTP_CONNECT && eno == ECONNREFUSED);
        uhttp_conn_init_tcp(&c, "localhost", (unsigned)port);
        r = get(&c, &p, "GET", 5, err, &eno);
        CHECK("connection: localhost, nobody on 127.0.0.1 nor ::1: refused",
              r == UHTTP_CONNECT && (eno == ECONNREFUSED || eno == EADDRNOTAVAIL || eno == ENETUNREACH));
        close(lfd);
    } else {
        uhttp_conn_init(&c, "/nonexistent/docker.sock");
        r = get(&c, &p, "GET", 5, err, &eno);
        CHECK("connection: no socket: connect's errno", r == UHTTP_CONNECT && eno == ENOENT);
    }
    uhttp_parser_free(&p);
}

/* TCP only: localhost, the request head as sent, what is not an address */
static void test_tcp(void)
{
    server sv;
    uhttp_conn c;
    uhttp_parser p;
    char err[UHTTP_ERR + 64];
    int eno = 0;
    uhttp_parser_init(&p, 0, 0);
    if (server_start(&sv, 0) < 0) { CHECK("tcp server", 0); return; }
    CHECK("tcp: localhost is an address", uhttp_conn_init_tcp(&c, "localhost", (unsigned)sv.port) == 0);
    int r = get(&c, &p, "GET", 5, err, &eno);
    CHECK("tcp: localhost reaches 127.0.0.1", r == UHTTP_OK && p.status == 200 && strcmp(p.body.p, "ok") == 0);
    uhttp_request rq = { .method = "GET", .target = "/x?y=1", .host = "", .user_agent = "",
                         .headers = "Accept: */*\r\nX-One: 1\r\n", .body_fd = -1, .timeout = 5 };
    r = uhttp_exchange(&c, &rq, &p, err, sizeof err, &eno);
    CHECK("tcp: the head as asked: no Host, no User-Agent, the lines given",
          r == UHTTP_OK && strcmp(sv.head, "GET /x?y=1 HTTP/1.1\r\nAccept: */*\r\nX-One: 1\r\n\r\n") == 0);
    rq.host = "127.0.0.1:8080";
    rq.user_agent = NULL;
    rq.headers = NULL;
    r = uhttp_exchange(&c, &rq, &p, err, sizeof err, &eno);
    CHECK("tcp: the head by default: Host, User-Agent",
          r == UHTTP_OK && strcmp(sv.head, "GET /x?y=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: provision\r\n\r\n") == 0);
    CHECK("tcp: one connection for the three", sv.accepts == 1 && sv.requests == 3);
    uhttp_conn_close(&c);
    server_stop(&sv);
    CHECK("tcp: a name is not an address, nor a port 0 or over 65535",
          uhttp_conn_init_tcp(&c, "example.org", 80) < 0 && uhttp_conn_init_tcp(&c, "127.0.0.1", 0) < 0
          && uhttp_conn_init_tcp(&c, "127.0.0.1", 65536) < 0 && uhttp_conn_init_tcp(&c, "::1", 80) == 0
          && uhttp_conn_init_tcp(&c, "1.2.3", 80) < 0);
    uhttp_parser_free(&p);
}

int main(void)
{
    test_good();
    test_bad();
    test_mutations();
    test_options();
    test_connection();
    tcp = 1;
    test_connection();
    test_tcp();
    return failures ? 1 : 0;
}
