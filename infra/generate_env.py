"""Writes infra/.env: every password of the compose stack, random, readable by its owner only.
Docker Compose reads it beside docker-compose.yml; it is never committed.

    python3 infra/generate_env.py infra/.env    (what `make infra/.env` runs)
"""

import os
import secrets
import sys

PASSWORDS = [
    "MYSQL_ROOT_PASSWORD",
    "PRODUCT_DB_PASSWORD",
    "ORDER_DB_PASSWORD",
    "PRODUCT_REDIS_PASSWORD",
    "ORDER_REDIS_PASSWORD",
    "PRODUCT_BROKER_PASSWORD",
    "ORDER_BROKER_PASSWORD",
]


def main(path: str) -> None:
    # URL-safe: they go into database, Redis and AMQP URLs as they are.
    lines = "".join(f"{name}={secrets.token_urlsafe(24)}\n" for name in PASSWORDS)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never overwritten
    with os.fdopen(descriptor, "w") as env_file:
        env_file.write(lines)


if __name__ == "__main__":
    main(sys.argv[1])
