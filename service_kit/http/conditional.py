"""Entity tags of versioned resources (RFC 9110 §8.8.3, §13): a resource's ETag is its version,
strong. Free of any web framework: handlers use it. The edge answers If-None-Match (304)."""

import re
from collections.abc import Collection

_TAG = re.compile(r'\s*(W/)?"([^"]*)"\s*(?:,|$)')
MAX_VERSION = 2**31 - 1  # the largest a version column (INTEGER) holds


def etag(version: int) -> str:
    return f'"{version}"'


def versions_in(if_match: str) -> Collection[int] | None:
    """The versions an If-Match header accepts: None for `*` (any), else those of its strong
    tags (none, if it holds nothing this service would have sent: the request then fails)."""
    if if_match.strip() == "*":
        return None
    return {
        int(tag)
        for weak, tag in _tags(if_match)
        # A tag beyond what a version can be matches nothing (412), never goes to the database.
        if not weak and _is_version(tag)
    }


def _is_version(tag: str) -> bool:
    return tag.isascii() and tag.isdigit() and len(tag) <= 10 and int(tag) <= MAX_VERSION


def none_match(if_none_match: str, current: str) -> bool:
    """Whether an If-None-Match header lets the request go on, given the current ETag (weak
    comparison, as RFC 9110 §13.1.2 says)."""
    if if_none_match.strip() == "*":
        return False
    opaque = current.removeprefix("W/")
    return all(f'"{tag}"' != opaque for _, tag in _tags(if_none_match))


def _tags(header: str) -> list[tuple[str, str]]:
    return [(match[1] or "", match[2]) for match in _TAG.finditer(header)]
