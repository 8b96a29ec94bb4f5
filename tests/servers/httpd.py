#!/usr/bin/env python3
"""tests/servers/httpd.py: a configurable HTTP/1.1 test server on loopback.

    python3 tests/servers/httpd.py [--port 0] [--root DIR] [--tls CERT KEY]
                                   [--bind 127.0.0.1]

Prints the port it listens on (one line, "PORT\n") on stdout as soon as it
is ready, then serves until killed (SIGTERM/SIGINT; tests stop it by its pid).
Threaded; keep-alive; every reply has a Content-Length unless a route says
otherwise. Bodies of /file, /slow, /drop, /flaky and /badlength are the same
deterministic bytes for the same (seed, size), so a test can compute the
expected SHA-256 with /sha256 (or byte i = BLOCK(seed)[i % 65521]).

Routes (query parameters in brackets, defaults after '='):

  /file/NAME [size=1024, seed=NAME, version=1, etag=1, lastmod=1, ranges=1,
              weak=0]
      Deterministic content. ETag "NAME-seed-size-version" (W/ when weak=1;
      etag=0: none), Last-Modified (a fixed date + version days; lastmod=0:
      none), honours If-None-Match / If-Modified-Since (304), Range "bytes=a-"
      / "bytes=a-b" with If-Range (206 + Content-Range; ranges=0: ignores
      Range and sends 200 without Accept-Ranges).
  /static/PATH        a file under --root, sent with sendfile; ETag from
                      size+mtime, Range supported (fast: for benchmarks).
  /sha256 [size, seed]  the hex SHA-256 of /file's body for that size/seed.
  /slow/NAME [size=65536, seed=NAME, rate=65536 (bytes/s), delay=0 (s before
              the headers)]
      Like /file (same ETag, Range) but trickles the body at `rate`.
  /drop/NAME [size=65536, seed=NAME, after=size/2, times=1]
      Claims the full Content-Length, sends `after` bytes of the body, then
      drops the connection; only the first `times` requests for that NAME
      (counted per NAME) drop, later ones (and Range requests, which it
      honours with ETag/If-Range) are served in full.
  /flaky/NAME [fail=1, status=500, size=1024, seed=NAME]
      The first `fail` requests for NAME get `status` (body "flaky failure N"),
      then /file behaviour.
  /badlength/NAME [size=1024, claim=size*2, seed=NAME]
      Content-Length: claim, sends `size` bytes, closes the connection.
  /stream/NAME [size=1024, seed=NAME, mode=chunked]
      /file's body with no Content-Length: chunked (mode=chunked), or ended
      by closing the connection (mode=close).
  /redirect [n=1, to=/file/redirected, code=302]
      A chain of n redirects (status `code`) ending at `to`, which may be an
      absolute URL (another port, another scheme).  /redirect-loop loops
      forever.
  /auth [user=user, password=password, realm=test]
      401 with WWW-Authenticate unless Basic credentials match; then 200 with
      JSON {"user": ...}.  Appending /file/NAME (/auth/file/NAME?...) serves a
      /file behind the same check.
  /status/CODE [body=..., type=text/plain]   that status with that body.
  /json [any query]   200 application/json: {"ok": true, "name": "provision",
                      "items": [1, 2, {"id": 3, "tags": ["a", "b"]}],
                      "query": {query params}, "nested": {"a": {"b": "c"}}}
  /echo [status=200]  any method: that status with JSON {"method", "path",
                      "headers", "body"} (the request's headers, as sent).
  /delay [seconds=1, status=200]   waits before answering.
  /until/NAME [after=2 (requests), status=503, ok=200, body_ok=ready]
      `status` until NAME has been asked for `after` times, then `ok`.
  /count              JSON {"total": N, "paths": {path: N}} of all requests
                      except /count*;  /count/reset sets them to zero.
"""
import argparse
import email.utils
import hashlib
import http.server
import json
import os
import socket
import socketserver
import ssl
import sys
import threading
import time
import urllib.parse
from base64 import b64decode

PERIOD = 65521
_blocks = {}
_lock = threading.Lock()
counts = {"total": 0, "paths": {}}
per_name = {}
BASE_DATE = 1_600_000_000


def block(seed):
    with _lock:
        b = _blocks.get(seed)
        if b is None:
            out = bytearray()
            h = hashlib.sha256(seed.encode()).digest()
            while len(out) < PERIOD:
                out += h
                h = hashlib.sha256(h).digest()
            b = bytes(out[:PERIOD])
            # a doubled copy so any window of <= PERIOD bytes is one slice
            _blocks[seed] = b = b + b
    return b


def content_chunks(seed, start, end, chunk=65536):
    """bytes [start, end) of the deterministic body, in chunks"""
    b = block(seed)
    pos = start
    while pos < end:
        n = min(chunk, end - pos, PERIOD)
        off = pos % PERIOD
        yield b[off:off + n]
        pos += n


def content_sha256(seed, size):
    h = hashlib.sha256()
    for c in content_chunks(seed, 0, size, 1 << 20 if size > PERIOD else 65536):
        h.update(c)
    return h.hexdigest()


def bump(name):
    with _lock:
        per_name[name] = per_name.get(name, 0) + 1
        return per_name[name]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "provision-test-httpd/1"

    def log_message(self, fmt, *args):
        if os.environ.get("HTTPD_LOG"):
            sys.stderr.write("httpd: " + (fmt % args) + "\n")

    # ---- helpers
    def q(self, name, default=None, conv=str):
        v = self.query.get(name)
        if v is None:
            return default
        return conv(v[-1])

    def send_plain(self, status, body, ctype="text/plain", extra=None):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status, obj):
        self.send_plain(status, json.dumps(obj), "application/json")

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def validators(self, name, seed, size):
        version = self.q("version", 1, int)
        etag = None
        if self.q("etag", 1, int):
            etag = '"%s-%s-%d-%d"' % (name, seed, size, version)
            if self.q("weak", 0, int):
                etag = "W/" + etag
        lastmod = None
        if self.q("lastmod", 1, int):
            lastmod = email.utils.formatdate(BASE_DATE + version * 86400, usegmt=True)
        return etag, lastmod

    def not_modified(self, etag, lastmod):
        inm = self.headers.get("If-None-Match")
        if inm is not None:
            return etag is not None and etag.replace("W/", "") in [t.strip().replace("W/", "") for t in inm.split(",")]
        ims = self.headers.get("If-Modified-Since")
        if ims and lastmod:
            try:
                return email.utils.parsedate_to_datetime(ims) >= email.utils.parsedate_to_datetime(lastmod)
            except (TypeError, ValueError):
                return False
        return False

    def wanted_range(self, size, etag, lastmod, ranges=True):
        """(start, end) for a satisfiable Range that If-Range allows, else None"""
        r = self.headers.get("Range")
        if not r or not ranges or not r.startswith("bytes="):
            return None
        ir = self.headers.get("If-Range")
        if ir is not None and ir != etag and ir != lastmod:
            return None
        try:
            a, b = r[6:].split(",")[0].split("-")
            start = int(a)
            end = int(b) + 1 if b else size
        except ValueError:
            return None
        end = min(end, size)
        if start >= size or start >= end:
            return "unsatisfiable"
        return (start, end)

    def serve_generated(self, name, seed, size, rate=None, drop_after=None, claim=None,
                        ranges=True):
        etag, lastmod = self.validators(name, seed, size)
        hdrs = {}
        if etag:
            hdrs["ETag"] = etag
        if lastmod:
            hdrs["Last-Modified"] = lastmod
        if self.not_modified(etag, lastmod):
            self.send_response(304)
            for k, v in hdrs.items():
                self.send_header(k, v)
            self.end_headers()
            return
        rng = self.wanted_range(size, etag, lastmod, ranges)
        if rng == "unsatisfiable":
            self.send_plain(416, "range not satisfiable", extra={"Content-Range": "bytes */%d" % size})
            return
        start, end = rng if rng else (0, size)
        self.send_response(206 if rng else 200)
        self.send_header("Content-Type", "application/octet-stream")
        if ranges:
            self.send_header("Accept-Ranges", "bytes")
        if rng:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end - 1, size))
        self.send_header("Content-Length", str(claim if claim is not None else end - start))
        for k, v in hdrs.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command == "HEAD":
            return
        sent = 0
        t0 = time.monotonic()
        chunk = 65536 if rate is None else max(1, min(65536, rate // 10))
        for c in content_chunks(seed, start, end, chunk):
            if drop_after is not None and sent + len(c) > drop_after:
                c = c[:max(0, drop_after - sent)]
                self.wfile.write(c)
                self.wfile.flush()
                self.drop()
                return
            self.wfile.write(c)
            sent += len(c)
            if rate:
                self.wfile.flush()
                ahead = sent / rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)
        if claim is not None and claim != end - start:
            self.wfile.flush()
            self.drop()

    def serve_stream(self, seed, size, mode):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if mode == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command == "HEAD":
            return
        for c in content_chunks(seed, 0, size, 4096):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(c), c) if mode == "chunked" else c)
        if mode == "chunked":
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def check_auth(self):
        user, password = self.q("user", "user"), self.q("password", "password")
        got = self.headers.get("Authorization", "")
        if got.startswith("Basic "):
            try:
                u, _, p = b64decode(got[6:]).decode().partition(":")
                if u == user and p == password:
                    return u
            except ValueError:
                pass
        self.send_plain(401, "authentication required\n",
                        extra={"WWW-Authenticate": 'Basic realm="%s"' % self.q("realm", "test")})
        return None

    # ---- dispatch
    def handle_any(self):
        u = urllib.parse.urlsplit(self.path)
        self.query = urllib.parse.parse_qs(u.query)
        # read the request's body whatever the route: left unread, it would
        # be taken for the start of the next request on this connection
        self.body = self.read_body()
        path = u.path
        if not path.startswith("/count"):
            with _lock:
                counts["total"] += 1
                counts["paths"][path] = counts["paths"].get(path, 0) + 1
        parts = path.strip("/").split("/")
        route = parts[0]
        name = "/".join(parts[1:]) or "default"
        if route == "auth":
            if self.check_auth() is None:
                return
            if len(parts) > 2 and parts[1] == "file":
                name = "/".join(parts[2:])
                return self.serve_generated(name, self.q("seed", name), self.q("size", 1024, int))
            return self.send_json(200, {"user": self.q("user", "user")})
        if route == "file":
            return self.serve_generated(name, self.q("seed", name), self.q("size", 1024, int),
                                        ranges=bool(self.q("ranges", 1, int)))
        if route == "sha256":
            return self.send_plain(200, content_sha256(self.q("seed", "default"), self.q("size", 1024, int)))
        if route == "slow":
            time.sleep(self.q("delay", 0, float))
            return self.serve_generated(name, self.q("seed", name), self.q("size", 65536, int),
                                        rate=self.q("rate", 65536, int))
        if route == "drop":
            size = self.q("size", 65536, int)
            n = bump("drop/" + name)
            after = self.q("after", size // 2, int) if n <= self.q("times", 1, int) else None
            return self.serve_generated(name, self.q("seed", name), size, drop_after=after)
        if route == "flaky":
            n = bump("flaky/" + name)
            if n <= self.q("fail", 1, int):
                return self.send_plain(self.q("status", 500, int), "flaky failure %d\n" % n)
            return self.serve_generated(name, self.q("seed", name), self.q("size", 1024, int))
        if route == "badlength":
            size = self.q("size", 1024, int)
            return self.serve_generated(name, self.q("seed", name), size,
                                        claim=self.q("claim", size * 2, int))
        if route == "stream":
            return self.serve_stream(self.q("seed", name), self.q("size", 1024, int), self.q("mode", "chunked"))
        if route == "redirect":
            n = self.q("n", 1, int)
            to = self.q("to", "/file/redirected")
            loc = to if n <= 1 else "/redirect?" + urllib.parse.urlencode({"n": n - 1, "to": to, "code": self.q("code", 302)})
            return self.send_plain(self.q("code", 302, int), "redirecting\n", extra={"Location": loc})
        if route == "redirect-loop":
            return self.send_plain(302, "loop\n", extra={"Location": "/redirect-loop"})
        if route == "status":
            code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 200
            return self.send_plain(code, self.q("body", "status %d\n" % code), self.q("type", "text/plain"))
        if route == "json":
            q = {k: v[-1] for k, v in self.query.items()}
            return self.send_json(200, {"ok": True, "name": "provision",
                                        "items": [1, 2, {"id": 3, "tags": ["a", "b"]}],
                                        "query": q, "nested": {"a": {"b": "c"}}})
        if route == "echo":
            return self.send_json(self.q("status", 200, int), {"method": self.command, "path": self.path,
                                        "headers": {k.lower(): v for k, v in self.headers.items()},
                                        "body": self.body.decode("utf-8", "replace")})
        if route == "delay":
            time.sleep(self.q("seconds", 1, float))
            return self.send_plain(self.q("status", 200, int), "delayed\n")
        if route == "until":
            n = bump("until/" + name)
            if n <= self.q("after", 2, int):
                return self.send_plain(self.q("status", 503, int), "not yet (%d)\nsecond line\nthird line\n" % n)
            return self.send_plain(self.q("ok", 200, int), self.q("body_ok", "ready") + "\n")
        if route == "static" and self.server.root:
            return self.serve_static("/".join(parts[1:]))
        if route == "count":
            if len(parts) > 1 and parts[1] == "reset":
                with _lock:
                    counts["total"] = 0
                    counts["paths"] = {}
                    per_name.clear()
            with _lock:
                return self.send_json(200, counts)
        return self.send_plain(404, "no route for %s\n" % path)

    def serve_static(self, rel):
        root = os.path.realpath(self.server.root)
        p = os.path.realpath(os.path.join(root, rel))
        if not p.startswith(root + os.sep) or not os.path.isfile(p):
            return self.send_plain(404, "not found\n")
        st = os.stat(p)
        etag = '"%x-%x"' % (st.st_size, int(st.st_mtime))
        lastmod = email.utils.formatdate(st.st_mtime, usegmt=True)
        if self.not_modified(etag, lastmod):
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        rng = self.wanted_range(st.st_size, etag, lastmod)
        if rng == "unsatisfiable":
            return self.send_plain(416, "range not satisfiable\n")
        start, end = rng if rng else (0, st.st_size)
        self.send_response(206 if rng else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", lastmod)
        if rng:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end - 1, st.st_size))
        self.send_header("Content-Length", str(end - start))
        self.end_headers()
        if self.command == "HEAD":
            return
        self.wfile.flush()
        with open(p, "rb") as f:
            self.connection.sendfile(f, start, end - start)

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    root = None


def main():
    ap = argparse.ArgumentParser(description="provision's test HTTP server")
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--root", default=None, help="folder served under /static/")
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"), default=None)
    a = ap.parse_args()
    srv = Server((a.bind, a.port), Handler)
    srv.root = a.root
    if a.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls[0], a.tls[1])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print(srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
