"""X-Request-ID: accepted when well-formed, generated otherwise, kept in a context variable so
that logs and outgoing calls of the same request carry it (greenlets and threads each have their
own context)."""

import contextvars
import re
import uuid

HEADER = "X-Request-ID"
_WELL_FORMED = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


def accept_or_generate(candidate: str | None) -> str:
    if candidate and _WELL_FORMED.fullmatch(candidate):
        return candidate
    return uuid.uuid4().hex


def bind(request_id: str) -> None:
    _current.set(request_id)


def current() -> str | None:
    return _current.get()
