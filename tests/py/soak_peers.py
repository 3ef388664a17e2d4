"""The gateway's peers for benches/soak.sh: an identity provider serving a
JWK Set over HTTP, a TLS upstream that answers every request with a small
JSON body (HTTP/1.1 keep-alive), and tokens signed with the identity
provider's key. Writes {"jwks_url", "upstream", "allowed", "denied",
"malformed"} to OUT as JSON, then serves until killed.

Usage: soak_peers.py CERT KEY OUT
"""

import base64
import json
import os
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

TID = "df845f1a-1e2f-4f5e-9a7c-0b1c2d3e4f50"


def b64(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass


def main() -> None:
    cert, key, out = sys.argv[1:4]
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = private.public_key().public_numbers()
    jwks = json.dumps({"keys": [{"kty": "RSA", "use": "sig", "kid": "soak", "n": b64(numbers.n), "e": b64(numbers.e)}]}).encode()

    class Keys(Quiet):
        def do_GET(self):
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(jwks)))
            self.end_headers()
            self.wfile.write(jwks)

    class Upstream(Quiet):
        def answer(self):
            length = int(self.headers.get("content-length") or 0)
            if length:
                self.rfile.read(length)
            body = b'{"totalCount":0,"items":[]}'
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = answer
        do_POST = answer

    keys = ThreadingHTTPServer(("127.0.0.1", 0), Keys)
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    upstream.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    upstream.socket = ctx.wrap_socket(upstream.socket, server_side=True)
    for server in (keys, upstream):
        threading.Thread(target=server.serve_forever, daemon=True).start()

    now = int(time.time())

    def token(**extra):
        claims = {
            "aud": "https://api.partnercenter.microsoft.com",
            "iss": f"https://sts.windows.net/{TID}/",
            "iat": now - 60,
            "nbf": now - 60,
            "exp": now + 6 * 3600,
            "amr": ["pwd", "mfa"],
            "appid": "23ec45a3-5f8b-4c3d-9e1a-7b6c5d4e3f21",
            "appidacr": "1",
            "oid": "02223b6b-aa1d-42d4-9ec0-1b2bb9194438",
            "scp": "user_impersonation",
            "tid": TID,
            "ver": "1.0",
        }
        claims.update(extra)
        return jwt.encode(claims, private, algorithm="RS256", headers={"kid": "soak"})

    with open(out + ".tmp", "w") as f:
        json.dump(
            {
                "jwks_url": f"http://127.0.0.1:{keys.server_address[1]}/keys",
                "upstream": f"https://127.0.0.1:{upstream.server_address[1]}",
                "allowed": token(),
                "denied": token(amr=["pwd"]),
                "malformed": "eyJhbGciOiJub25lIn0.e30.",
            },
            f,
        )
    os.rename(out + ".tmp", out)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
