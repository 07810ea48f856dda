"""Bearer tokens (JWT) as the specs declare them.

Each operation's `security` in the spec is the truth: `[]` is public, `[{bearer: [scopes]}]`
needs a valid token carrying every listed scope. A token is valid when one of the configured
keys (a JWKS file: HS256 secrets, RS256/ES256 public keys, chosen by `kid`) signed it with that
key's algorithm, and its issuer, audience, expiry and not-before hold (with some clock skew).
Verified tokens are remembered until they expire, so a request pays a dictionary look-up, not a
signature check. No token is ever logged.

Both request paths check the same way, through the operation's record
(service_kit/http/operations.py: `Operation.admit`, which calls `TokenVerifier.caller` and
`authorize` once per request, before anything else of the request is read or validated).
Missing, invalid or expired → 401 with `WWW-Authenticate: Bearer`; valid without a scope →
403. What scopes an operation needs is read from the spec in operations.py only."""

import json
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import flask
import jwt

from service_kit import errors
from service_kit.config import AuthSettings, ConfigError
from service_kit.http.caller import Caller

SCHEME = "bearer"
EXTENSION = "service_kit.auth"  # where a Flask app keeps its verifier
ADMITTED = "service_kit.admitted"  # the environ key: (operation, caller) once admitted
_CACHE_LIMIT = 10_000


class TokenVerifier:
    def __init__(self, settings: AuthSettings) -> None:
        self._settings = settings
        self._keys = load_keys(settings.jwks_file)
        self._verified: dict[str, tuple[Caller, float, float]] = {}  # token → caller, nbf, exp

    def caller(self, authorization: str | None) -> Caller:
        """The caller an `Authorization` header value names; Unauthenticated if it does not."""
        if not authorization:
            raise errors.Unauthenticated("this operation needs a bearer token", token_given=False)
        kind, _, token = authorization.partition(" ")
        if kind.lower() != SCHEME or not token:
            raise errors.Unauthenticated("the Authorization header is not `Bearer <token>`")
        return self.verify(token.strip())

    def verify(self, token: str) -> Caller:
        now = time.time()
        known = self._verified.get(token)
        leeway = self._settings.leeway_s
        if known is not None:
            caller, not_before, expires = known
            if not_before - leeway <= now < expires + leeway:
                return caller
            raise errors.Unauthenticated("the token has expired or is not valid yet")
        claims = self._decode(token)
        caller = Caller(subject=claims["sub"], scopes=_scopes(claims))
        if len(self._verified) >= _CACHE_LIMIT:
            self._verified.clear()
        self._verified[token] = (caller, float(claims.get("nbf", 0)), float(claims["exp"]))
        return caller

    def _decode(self, token: str) -> dict[str, Any]:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self._keys.get(kid) if kid else next(iter(self._keys.values()), None)
            if key is None or (kid is None and len(self._keys) > 1):
                raise errors.Unauthenticated("the token names no key this service knows")
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm_name],
                audience=self._settings.audience,
                issuer=self._settings.issuer,
                leeway=self._settings.leeway_s,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise errors.Unauthenticated("the token has expired") from None
        except jwt.InvalidTokenError as exc:
            raise errors.Unauthenticated(f"the token is not valid: {exc}") from None
        if not isinstance(claims["sub"], str) or not claims["sub"]:
            raise errors.Unauthenticated("the token's subject is not a string")
        return claims


def load_keys(jwks_file: str) -> dict[str | None, jwt.PyJWK]:
    """The keys of a JWKS file by `kid`; a key's algorithm follows from its type (or its
    `alg`). ConfigError, naming AUTH_JWKS_FILE, if the file is missing or not a key set."""
    try:
        keys = jwt.PyJWKSet.from_dict(json.loads(Path(jwks_file).read_text())).keys
    except OSError as exc:
        raise ConfigError(f"AUTH_JWKS_FILE={jwks_file!r}: {exc.strerror}") from None
    except (ValueError, jwt.PyJWKError, jwt.PyJWKSetError) as exc:
        raise ConfigError(f"AUTH_JWKS_FILE={jwks_file!r} is not a usable JWKS: {exc}") from None
    return {key.key_id: key for key in keys}


def _scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    scope = claims.get("scope", claims.get("scp", ""))
    return frozenset(scope.split() if isinstance(scope, str) else scope)


def authorize(caller: Caller | None, scopes: Iterable[str]) -> None:
    if caller is None:
        raise errors.Unauthenticated("this operation needs a bearer token", token_given=False)
    missing = sorted(set(scopes) - caller.scopes)
    if missing:
        raise errors.Forbidden(f"the token lacks the scope {', '.join(missing)}")


def token_info(token: str) -> dict[str, Any]:
    """Connexion's `x-bearerInfoFunc`. The pipeline's admit hook (service_kit/http/app.py) has
    already verified the token and checked its scopes before Connexion's security runs, so
    this hands Connexion that caller without verifying the token again."""
    admitted = flask.request.environ.get(ADMITTED)
    if admitted is None or admitted[1] is None:  # not admitted by the hook: verify here
        verifier: TokenVerifier = flask.current_app.extensions[EXTENSION]
        caller = verifier.verify(token)
    else:
        caller = admitted[1]
    return {"sub": caller.subject, "caller": caller}
