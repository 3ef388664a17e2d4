"""Malformed HTTP/2 against the gateway, frame by frame (hyperframe + hpack,
the h2 package's own layers), each case on a fresh TLS connection with ALPN
h2. Prints one JSON object: {case: {"outcome", "code", "status", ...}}.

outcome: "response" (with :status), "reset" (RST_STREAM with code),
"goaway" (GOAWAY with code), "closed" (connection closed without either),
"timeout" (nothing decisive within 5 s).

Usage: h2_attacks.py PORT TOKEN
"""

import json
import socket
import ssl
import sys

from hpack import Decoder, Encoder
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    HeadersFrame,
    RstStreamFrame,
    SettingsFrame,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
TIMEOUT = 5.0


class Conn:
    def __init__(self, port):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2"])
        raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        assert self.sock.selected_alpn_protocol() == "h2", self.sock.selected_alpn_protocol()
        self.enc = Encoder()
        self.dec = Decoder()
        self.buf = b""
        self.sock.sendall(PREFACE + SettingsFrame(0).serialize())

    def send(self, *frames):
        self.sock.sendall(b"".join(f if isinstance(f, bytes) else f.serialize() for f in frames))

    def block(self, headers):
        return self.enc.encode(headers, huffman=False)

    def headers(self, stream, headers, end_stream=True):
        f = HeadersFrame(stream)
        f.data = self.block(headers)
        f.flags.add("END_HEADERS")
        if end_stream:
            f.flags.add("END_STREAM")
        return f

    def frames(self):
        """Yields (type, flags, stream, payload) until the socket closes or times out."""
        while True:
            while len(self.buf) >= 9:
                length = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) < 9 + length:
                    break
                ftype, flags = self.buf[3], self.buf[4]
                stream = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
                payload = self.buf[9 : 9 + length]
                self.buf = self.buf[9 + length :]
                if ftype == 4 and not flags & 1:
                    self.send(b"\x00\x00\x00\x04\x01\x00\x00\x00\x00")  # SETTINGS ACK
                yield ftype, flags, stream, payload
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                yield "timeout", 0, 0, b""
                return
            except (ConnectionError, ssl.SSLError):
                data = b""
            if not data:
                yield "closed", 0, 0, b""
                return
            self.buf += data

    def outcome(self, stream=1):
        """Reads until the fate of `stream` (or the connection) is known."""
        status = None
        body = b""
        for ftype, flags, sid, payload in self.frames():
            if ftype in ("timeout", "closed"):
                return {"outcome": ftype, "status": status}
            if ftype == 7:  # GOAWAY
                code = int.from_bytes(payload[4:8], "big")
                if status is not None and sid == 0 and code == 0:
                    continue
                return {"outcome": "goaway", "code": code, "status": status}
            if sid != stream:
                continue
            if ftype == 3:  # RST_STREAM
                return {"outcome": "reset", "code": int.from_bytes(payload[:4], "big"), "status": status}
            if ftype == 1:  # HEADERS
                block = payload
                if flags & 0x8:  # PADDED
                    block = block[1 : len(block) - block[0]]
                if flags & 0x20:  # PRIORITY
                    block = block[5:]
                for name, value in self.dec.decode(block):
                    if name == ":status":
                        status = int(value)
                if flags & 0x1:
                    return {"outcome": "response", "status": status, "body": body.decode("utf-8", "replace")}
            if ftype == 0:  # DATA
                body += payload
                if flags & 0x1:
                    return {"outcome": "response", "status": status, "body": body.decode("utf-8", "replace")}


def base(token, path="/v1/customers", method="GET"):
    return [
        (":method", method),
        (":scheme", "https"),
        (":authority", "localhost"),
        (":path", path),
        ("authorization", f"Bearer {token}"),
    ]


def single(port, headers, end_stream=True, data=None):
    c = Conn(port)
    c.send(c.headers(1, headers, end_stream=end_stream))
    if data is not None:
        f = DataFrame(1)
        f.data = data
        f.flags.add("END_STREAM")
        c.send(f)
    return c.outcome()


def main():
    port, token = int(sys.argv[1]), sys.argv[2]
    ok = base(token)
    results = {}

    results["control"] = single(port, ok)

    header_cases = {
        "uppercase header name": ok + [("X-Upper", "1")],
        "connection header": ok + [("connection", "keep-alive")],
        "keep-alive header": ok + [("keep-alive", "timeout=5")],
        "upgrade header": ok + [("upgrade", "h2c")],
        "te other than trailers": ok + [("te", "gzip")],
        "transfer-encoding header": ok + [("transfer-encoding", "chunked")],
        "missing :path": [h for h in ok if h[0] != ":path"],
        "missing :method": [h for h in ok if h[0] != ":method"],
        "missing :scheme": [h for h in ok if h[0] != ":scheme"],
        "empty :path": [h if h[0] != ":path" else (":path", "") for h in ok],
        "relative :path": [h if h[0] != ":path" else (":path", "v1/customers") for h in ok],
        "duplicate :path": ok + [(":path", "/admin")],
        "pseudo-header after a regular one": [("x-a", "1")] + ok,
        "unknown pseudo-header": ok + [(":foo", "bar")],
        "CRLF in a header value": ok + [("x-injected", "a\r\nx-evil: 1")],
        "NUL in a header value": ok + [("x-nul", "a\x00b")],
        "space in a header name": ok + [("x y", "1")],
        "colon in a header name": ok + [("x:y", "1")],
        "host differs from :authority": ok + [("host", "evil.example")],
        ":authority with user info": [h if h[0] != ":authority" else (":authority", "evil@localhost") for h in ok],
        "dot segment in :path": [h if h[0] != ":path" else (":path", "/open/../v1/customers") for h in ok],
        "encoded slash in :path": [h if h[0] != ":path" else (":path", "/open%2f..%2fv1/customers") for h in ok],
        "CONNECT without :protocol": [(":method", "CONNECT"), (":authority", "api.partnercenter.microsoft.com:443"), ("authorization", f"Bearer {token}")],
        "two authorization headers": ok + [("authorization", f"Bearer {token}")],
        "connection-specific via Connection: authorization": ok + [("connection", "authorization")],
    }
    for name, headers in header_cases.items():
        results[name] = single(port, headers)

    post = base(token, method="POST")
    results["content-length larger than the data"] = single(port, post + [("content-length", "10")], False, b"hello")
    results["content-length smaller than the data"] = single(port, post + [("content-length", "2")], False, b"hello")
    results["two content-lengths"] = single(port, post + [("content-length", "5"), ("content-length", "6")], False, b"hello")

    # HEADERS on an even (server-initiated) stream id.
    c = Conn(port)
    c.send(c.headers(2, ok))
    results["even stream id"] = c.outcome(2)

    # DATA on stream 0.
    c = Conn(port)
    f = DataFrame(1)
    f.stream_id = 0
    f.data = b"x"
    c.send(f)
    results["DATA on stream 0"] = c.outcome(0)

    # CONTINUATION flood: one header block far over any limit, 16 KiB at a time.
    c = Conn(port)
    junk = ok + [(f"x-junk-{i}", "a" * 1000) for i in range(400)]
    block = c.block(junk)
    pieces = [block[i : i + 16384] for i in range(0, len(block), 16384)]
    first = HeadersFrame(1)
    first.data = pieces[0]
    first.flags.add("END_STREAM")
    frames = [first]
    for i, piece in enumerate(pieces[1:], 1):
        cont = ContinuationFrame(1)
        cont.data = piece
        if i == len(pieces) - 1:
            cont.flags.add("END_HEADERS")
        frames.append(cont)
    try:
        c.send(*frames)
        results["CONTINUATION flood"] = c.outcome()
    except (ConnectionError, ssl.SSLError):
        results["CONTINUATION flood"] = {"outcome": "closed", "status": None}

    # Rapid reset (CVE-2023-44487): open and cancel 500 streams at once.
    c = Conn(port)
    frames = []
    for i in range(500):
        sid = 1 + 2 * i
        frames.append(c.headers(sid, base("none", path="/nowhere")))
        frames.append(RstStreamFrame(sid, error_code=8))
    try:
        c.send(*frames)
        last = 1 + 2 * 499
        results["rapid reset"] = c.outcome(last + 2)
    except (ConnectionError, ssl.SSLError):
        results["rapid reset"] = {"outcome": "closed", "status": None}

    # More open streams than allowed: POSTs that never finish their body.
    c = Conn(port)
    frames = [c.headers(1 + 2 * i, base("none", method="POST"), end_stream=False) for i in range(30)]
    c.send(*frames)
    refused = 0
    answered = 0
    for ftype, flags, sid, payload in c.frames():
        if ftype in ("timeout", "closed"):
            break
        if ftype == 3 and int.from_bytes(payload[:4], "big") == 7:
            refused += 1
        if ftype == 1:
            answered += 1
        if refused + answered >= 30:
            break
    results["streams over the limit"] = {"outcome": "counted", "refused": refused, "answered": answered}

    print(json.dumps(results))


if __name__ == "__main__":
    main()
