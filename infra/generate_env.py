"""Writes infra/.env: every password of the compose stack, random, readable by its owner only,
and beside it jwks.json: a key to sign and verify bearer tokens with (HS256; a deployment with
an identity provider mounts that provider's public keys instead). Docker Compose reads .env
beside docker-compose.yml; neither file is ever committed.

    python3 infra/generate_env.py infra/.env    (what `make infra/.env` runs)
    AUTH_JWKS_FILE=infra/jwks.json make token   (a token for the compose stack)

With --k8s-dev, for Kubernetes' dev overlay (`make infra/k8s/overlays/dev/.env`), it also writes
each service's credentials beside them, as URLs of the overlay's in-cluster servers.
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


def main(path: str, k8s_dev: bool = False) -> None:
    # URL-safe: they go into database, Redis and AMQP URLs as they are.
    passwords = {name: secrets.token_urlsafe(24) for name in PASSWORDS}
    write_private(Path(path), "".join(f"{n}={value}\n" for n, value in passwords.items()))
    if k8s_dev:
        write_k8s_dev_credentials(Path(path).parent, passwords)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    key = {"kty": "oct", "kid": f"compose-{secrets.token_hex(4)}", "alg": "HS256", "k": secret}
    jwks = Path(path).with_name("jwks.json")
    if not jwks.exists():
        write_private(jwks, json.dumps({"keys": [key]}))


def write_k8s_dev_credentials(folder: Path, passwords: dict[str, str]) -> None:
    """<service>-service.env: its URLs of infra/k8s/overlays/dev/infrastructure.yaml's servers,
    as its own user on each (the servers create them from the same passwords)."""
    for service, database in (("product", "products"), ("order", "orders")):
        prefix, user = service.upper(), f"{service}-service"
        db, redis, broker = (
            passwords[f"{prefix}_{kind}_PASSWORD"] for kind in ("DB", "REDIS", "BROKER")
        )
        write_private(
            folder / f"{service}-service.env",
            f"{prefix}_DATABASE_URL=mysql+pymysql://{user}:{db}@mariadb:3306/{database}\n"
            f"{prefix}_REDIS_URL=redis://{user}:{redis}@redis:6379/0\n"
            f"{prefix}_BROKER_URL=amqp://{user}:{broker}@rabbitmq:5672/%2F\n",
        )


if __name__ == "__main__":
    main(sys.argv[1], k8s_dev="--k8s-dev" in sys.argv[2:])
