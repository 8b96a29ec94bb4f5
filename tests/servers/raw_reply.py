#!/usr/bin/env python3
"""tests/servers/raw_reply.py: a stand-in server on 127.0.0.1 that answers
every connection with fixed bytes, HTTP or not, whatever was asked.

    python3 tests/servers/raw_reply.py MODE

Prints its port (one line) once listening; serves until killed (tests stop
it by its pid). MODE:
  garbage       bytes that are not HTTP: "\\x00\\x01SSH-2.0-OpenSSH_9.6\\r\\n..."
  binary        8 bytes of binary noise with high bytes, then the close
  bigheader     HTTP/1.1 200 with one header line of 300,000 bytes
  manyheaders   HTTP/1.1 200 with 400 header lines of 1,000 bytes each
"""
import socket
import sys

REPLIES = {
    "garbage": b"\x00\x01SSH-2.0-OpenSSH_9.6\r\n\x1b[31mhello\r\n",
    "binary": b"\xff\xfe\x80\x7f\x00abc",
    "bigheader": b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 300000 + b"\r\nContent-Length: 2\r\n\r\nok",
    "manyheaders": b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 1000) for i in range(400))
                   + b"Content-Length: 2\r\n\r\nok",
}
reply = REPLIES[sys.argv[1]]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(16)
print(s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept()
    try:
        c.settimeout(5)
        c.recv(65536)
        c.sendall(reply)
    except OSError:
        pass
    c.close()
