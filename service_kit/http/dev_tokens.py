"""Tokens for development, signed with a key of the configured JWKS file.

Without `AUTH_JWKS_FILE` both services verify tokens with the key in `var/auth/jwks.json`, which
`ensure_dev_keys` creates on first start (a random HS256 secret, readable by its owner only).
`make token` prints a token for the running configuration, alone on its last line:

    python -m service_kit.http.dev_tokens [--scopes "orders:read orders:write"] [--subject me]

In production the JWKS file holds the identity provider's public keys only; tokens come from
that provider, and this tool says it has no key to sign with."""

import argparse
import base64
import functools
import json
import os
import secrets
import sys
import time
from pathlib import Path

import jwt
import yaml

from service_kit.config import DEV_JWKS_FILE, AuthSettings, auth_settings
from service_kit.http.auth import load_keys
from service_kit.http.operations import every_scope as scopes_of

SPEC_DIR = Path(__file__).resolve().parents[2] / "openapi"
DEV_TOKEN_LIFETIME_S = 24 * 3600


def ensure_dev_keys(settings: AuthSettings) -> None:
    """Creates the development key file if the configuration uses it and it does not exist."""
    if settings.jwks_file == DEV_JWKS_FILE and not Path(settings.jwks_file).exists():
        write_signing_key(Path(settings.jwks_file))


def write_signing_key(path: Path) -> None:
    """A JWKS file of one random HS256 secret, readable by its owner only (kept if it exists:
    another process of the stack may have made it meanwhile)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    key = {"kty": "oct", "kid": f"dev-{secrets.token_hex(4)}", "alg": "HS256", "k": secret}
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(descriptor, "w") as jwks:
        json.dump({"keys": [key]}, jwks)


@functools.cache  # the specs do not change while a process runs; parsing them takes a while
def _scopes_of_the_specs() -> tuple[str, ...]:
    specs = [yaml.safe_load(spec.read_text()) for spec in sorted(SPEC_DIR.glob("*.yaml"))]
    return tuple(sorted(scopes_of(spec for spec in specs if "paths" in spec)))


def every_scope() -> list[str]:
    """Every scope the specs' operations ask for."""
    return list(_scopes_of_the_specs())


def mint(
    settings: AuthSettings,
    scopes: list[str],
    *,
    subject: str = "developer",
    lifetime_s: int = DEV_TOKEN_LIFETIME_S,
) -> str:
    """A token signed with the first key of the JWKS file that can sign; ValueError if none."""
    for kid, key in load_keys(settings.jwks_file).items():
        if key.key_type == "oct" or _has_private_part(key):
            now = int(time.time())
            claims = {
                "sub": subject,
                "iss": settings.issuer,
                "aud": settings.audience,
                "iat": now,
                "exp": now + lifetime_s,
                "scope": " ".join(scopes),
            }
            headers = {"kid": kid} if kid else None
            return jwt.encode(claims, key.key, algorithm=key.algorithm_name, headers=headers)
    raise ValueError(
        f"{settings.jwks_file} holds no key to sign with (public keys only): "
        "tokens come from your identity provider"
    )


def _has_private_part(key: jwt.PyJWK) -> bool:
    return hasattr(key.key, "private_bytes")


def main() -> None:
    parser = argparse.ArgumentParser(description="Print a token for the running configuration.")
    parser.add_argument("--scopes", default="", help="space-separated; default: every scope")
    parser.add_argument("--subject", default="developer")
    args = parser.parse_args()
    settings = auth_settings(os.environ)
    ensure_dev_keys(settings)
    scopes = args.scopes.split() or every_scope()
    try:
        token = mint(settings, scopes, subject=args.subject)
    except ValueError as exc:
        print(f"make token: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"# {args.subject}, scopes: {' '.join(scopes)}, valid 24 h", file=sys.stderr)
    print(token)


if __name__ == "__main__":
    main()
