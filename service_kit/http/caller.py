"""Who sent a request, as its verified bearer token says (service_kit/http/auth.py): what a
handler that names a `caller` parameter receives."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Caller:
    subject: str
    scopes: frozenset[str]
