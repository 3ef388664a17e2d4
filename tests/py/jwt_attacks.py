"""Mints attack tokens with PyJWT and jwcrypto (independent JOSE libraries)
against the test identity provider's keys, and prints them as JSON:
[{"name": ..., "token": ..., "status": ..., "reason": ...}, ...].

Usage: jwt_attacks.py KEYS.json
KEYS.json: {"rsa_private_pem", "rsa_public_pem", "rsa_kid", "ec_kid", "tid",
            "other_tid", "audience", "attacker_url"}
"""

import base64
import json
import sys
import time

import jwt
from jwcrypto import jwk, jws
from jwcrypto.common import json_encode


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main() -> None:
    with open(sys.argv[1]) as f:
        k = json.load(f)
    now = int(time.time())
    tid, other = k["tid"], k["other_tid"]

    def claims(tenant=tid, **extra):
        c = {
            "aud": k["audience"],
            "iss": f"https://sts.windows.net/{tenant}/",
            "iat": now - 60,
            "nbf": now - 60,
            "exp": now + 3600,
            "amr": ["pwd", "mfa"],
            "appid": "23ec45a3-5f8b-4c3d-9e1a-7b6c5d4e3f21",
            "appidacr": "1",
            "oid": "02223b6b-aa1d-42d4-9ec0-1b2bb9194438",
            "scp": "user_impersonation",
            "tid": tenant,
            "ver": "1.0",
        }
        c.update(extra)
        return c

    rsa_header = {"kid": k["rsa_kid"], "typ": "JWT"}
    out = []

    def add(name, token, status, reason):
        out.append({"name": name, "token": token, "status": status, "reason": reason})

    # A control: PyJWT's RS256 with the real key must pass.
    add("pyjwt valid", jwt.encode(claims(), k["rsa_private_pem"], algorithm="RS256", headers=rsa_header), 200, None)

    # alg none, as PyJWT makes it, and spelled otherwise by hand.
    add("pyjwt alg none", jwt.encode(claims(), None, algorithm="none", headers=rsa_header), 401, "disallowed_alg")
    payload = b64(json.dumps(claims()).encode())
    for alg in ["None", "NONE", "nOnE"]:
        header = b64(json.dumps({"alg": alg, "kid": k["rsa_kid"], "typ": "JWT"}).encode())
        add(f"alg {alg}", f"{header}.{payload}.", 401, "disallowed_alg")

    # Key confusion: HS256 keyed with the RSA public key (PEM and DER forms).
    pem = k["rsa_public_pem"].encode()
    for label, secret in [("PEM", pem), ("PEM without newline", pem.rstrip(b"\n"))]:
        key = jwk.JWK(kty="oct", k=b64(secret))
        s = jws.JWS(json.dumps(claims()))
        s.add_signature(key, None, json_encode({"alg": "HS256", "kid": k["rsa_kid"], "typ": "JWT"}))
        add(f"jwcrypto HS256 with the public key ({label})", s.serialize(compact=True), 401, "disallowed_alg")

    # An attacker's own RSA key, advertised through jku, x5u and an embedded jwk.
    attacker = jwk.JWK.generate(kty="RSA", size=2048, kid="attacker-kid")
    public = json.loads(attacker.export_public())
    for label, extra in [
        ("jku", {"jku": k["attacker_url"]}),
        ("x5u", {"x5u": k["attacker_url"]}),
        ("embedded jwk", {"jwk": public}),
    ]:
        for kid, reason in [("attacker-kid", "unknown_key"), (k["rsa_kid"], "bad_signature")]:
            s = jws.JWS(json.dumps(claims()))
            s.add_signature(attacker, None, json_encode({"alg": "RS256", "kid": kid, "typ": "JWT", **extra}))
            add(f"jwcrypto {label}, kid {kid}", s.serialize(compact=True), 401, reason)

    # Critical header the gateway does not understand.
    add(
        "pyjwt unknown crit",
        jwt.encode(claims(), k["rsa_private_pem"], algorithm="RS256", headers={**rsa_header, "crit": ["exp2"], "exp2": 1}),
        401,
        "malformed_token",
    )
    # Properly signed but not yet valid, and for another tenant.
    add(
        "pyjwt nbf in the future",
        jwt.encode(claims(nbf=now + 3600, exp=now + 7200), k["rsa_private_pem"], algorithm="RS256", headers=rsa_header),
        401,
        "not_yet_valid",
    )
    add(
        "pyjwt valid token for another tenant",
        jwt.encode(claims(tenant=other), k["rsa_private_pem"], algorithm="RS256", headers=rsa_header),
        403,
        "tenant_not_allowed",
    )
    add(
        "pyjwt another tenant's issuer with our tid",
        jwt.encode(
            claims(iss=f"https://sts.windows.net/{other}/"), k["rsa_private_pem"], algorithm="RS256", headers=rsa_header
        ),
        401,
        "bad_issuer",
    )

    # ECDSA r = s = 0 (CVE-2022-21449), raw and DER encoded.
    header = b64(json.dumps({"alg": "ES256", "kid": k["ec_kid"], "typ": "JWT"}).encode())
    add("ES256 r=s=0", f"{header}.{payload}.{b64(bytes(64))}", 401, "bad_signature")
    add("ES256 r=s=0 DER", f"{header}.{payload}.{b64(bytes.fromhex('3006020100020100'))}", 401, "bad_signature")

    print(json.dumps(out))


if __name__ == "__main__":
    main()
