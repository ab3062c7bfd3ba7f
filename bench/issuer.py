#!/usr/bin/env python3
"""A throwaway OIDC issuer on loopback, for the benchmark only.

Generates an RSA key at start (with the `openssl` command, so that nothing
needs installing), serves OIDC discovery and the JWKS, and writes one RS256
access token for a service identity to a file: the token Backplane verifies on
every benchmark request, exactly as it would verify one from the company's
identity provider.

    python3 bench/issuer.py --port 18490 --audience backplane-bench \
        --scope "backplane:read:customers backplane:read:billing" \
        --token-file bench/out/token
"""

import argparse
import base64
import http.server
import json
import os
import subprocess
import sys
import tempfile
import time


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def openssl(*args: str, stdin: bytes | None = None) -> bytes:
    return subprocess.run(
        ["openssl", *args], input=stdin, check=True, capture_output=True
    ).stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--audience", required=True)
    parser.add_argument("--scope", required=True)
    parser.add_argument("--subject", default="bench-script")
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--person-token-file",
                        help="also write a token of a person (support, signed in with a second factor)")
    parser.add_argument("--person-subject", default="bench-agent")
    args = parser.parse_args()

    issuer = f"http://127.0.0.1:{args.port}"
    kid = "bench-1"
    workdir = tempfile.mkdtemp(prefix="backplane-bench-issuer.")
    key = os.path.join(workdir, "key.pem")
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key)
    modulus_hex = openssl("rsa", "-in", key, "-noout", "-modulus").decode().strip().split("=", 1)[1]
    n = bytes.fromhex(modulus_hex)
    jwks = {
        "keys": [
            {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
             "n": b64url(n), "e": b64url((65537).to_bytes(3, "big"))}
        ]
    }
    discovery = {
        "issuer": issuer,
        "jwks_uri": f"{issuer}/jwks",
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }

    now = int(time.time())
    header = {"alg": "RS256", "typ": "JWT", "kid": kid}
    claims = {
        "iss": issuer,
        "aud": args.audience,
        "sub": args.subject,
        "client_id": args.subject,
        "scope": args.scope,
        "iat": now,
        "nbf": now - 60,
        "exp": now + 6 * 3600,
    }

    def sign(claims: dict) -> str:
        signing_input = (
            b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        signature = openssl("dgst", "-sha256", "-sign", key, stdin=signing_input.encode())
        return signing_input + "." + b64url(signature)

    def write(path: str, token: str) -> None:
        with open(path + ".tmp", "w") as f:
            f.write(token)
        os.replace(path + ".tmp", path)

    token = sign(claims)
    person = None
    if args.person_token_file:
        person = sign({
            "iss": issuer, "aud": args.audience, "sub": args.person_subject,
            "email": f"{args.person_subject}@staff.example", "name": "Bench Agent",
            "roles": ["support"], "amr": ["pwd", "otp"], "auth_time": now,
            "iat": now, "nbf": now - 60, "exp": now + 6 * 3600,
        })
    os.remove(key)
    os.rmdir(workdir)
    if person is not None:
        write(args.person_token_file, person)
    # The service token last: its file's presence says both are written.
    write(args.token_file, token)

    routes = {
        "/.well-known/openid-configuration": json.dumps(discovery).encode(),
        "/jwks": json.dumps(jwks).encode(),
    }

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            body = routes.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"issuer: {issuer} (kid {kid}), token in {args.token_file}", file=sys.stderr)
    server.serve_forever()


if __name__ == "__main__":
    main()
