"""Writes infra/.env: every password of the compose stack, random, readable by its owner only,
and beside it jwks.json: a key to sign and verify bearer tokens with (HS256; a deployment with
an identity provider mounts that provider's public keys instead). Docker Compose reads .env
beside docker-compose.yml; neither file is ever committed.

    python3 infra/generate_env.py infra/.env    (what `make infra/.env` runs)
    AUTH_JWKS_FILE=infra/jwks.json make token   (a token for the compose stack)
"""

import base64
import json
import os
import secrets
import sys
from pathlib import Path

PASSWORDS = [
    "MYSQL_ROOT_PASSWORD",
    "PRODUCT_DB_PASSWORD",
    "ORDER_DB_PASSWORD",
    "PRODUCT_REDIS_PASSWORD",
    "ORDER_REDIS_PASSWORD",
    "PRODUCT_BROKER_PASSWORD",
    "ORDER_BROKER_PASSWORD",
]


def write_private(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never overwritten
    with os.fdopen(descriptor, "w") as private_file:
        private_file.write(text)


def main(path: str) -> None:
    # URL-safe: they go into database, Redis and AMQP URLs as they are.
    write_private(Path(path), "".join(f"{n}={secrets.token_urlsafe(24)}\n" for n in PASSWORDS))
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    key = {"kty": "oct", "kid": f"compose-{secrets.token_hex(4)}", "alg": "HS256", "k": secret}
    jwks = Path(path).with_name("jwks.json")
    if not jwks.exists():
        write_private(jwks, json.dumps({"keys": [key]}))


if __name__ == "__main__":
    main(sys.argv[1])
