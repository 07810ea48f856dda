"""Idempotency-Key (IETF httpapi draft; Stripe's semantics): a client that repeats a POST with
the key it sent the first time gets the first answer again, never a second resource. A key
belongs to its caller (the token's subject) and to one request: the same key with another
operation, other path parameters or another body is refused."""

import decimal
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service_kit.errors import Unprocessable

HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class IdempotencyKey:
    scope: str  # whose key it is: the caller's subject
    key: str
    fingerprint: str  # what the first request asked for

    @classmethod
    def of(
        cls,
        scope: str,
        key: str | None,
        body: Mapping[str, Any],
        *,
        operation: str,
        path: Mapping[str, Any] | None = None,
    ) -> "IdempotencyKey | None":
        """The key of a request to `operation` with these path parameters and this body: a
        repeat to another resource (POST /products/4/… after /products/3/…) is another request."""
        if key is None:
            return None
        request = {"operation": operation, "path": dict(path or {}), "body": body}
        return cls(scope, key, fingerprint(request))


def fingerprint(request: Mapping[str, Any]) -> str:
    """A digest of a request that equal requests share (key order and number spelling aside)."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=_number)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _number(value: Any) -> str:
    if isinstance(value, decimal.Decimal):
        return format(value.normalize(), "f")
    raise TypeError(f"{type(value).__name__} in a request body")


class KeyReused(Unprocessable):
    """The key came with another request before."""

    def __init__(self, key: IdempotencyKey) -> None:
        super().__init__(
            f"the Idempotency-Key {key.key!r} was first sent with another request (operation, "
            "resource or body); use a new key for a new request"
        )


class AnsweredMeanwhile(Exception):
    """Another request with the same key committed first: answer with its outcome."""
