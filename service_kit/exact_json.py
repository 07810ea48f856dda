"""JSON with exact money: numbers with a fraction are read as Decimal and Decimals are written as
JSON numbers (not strings, not floats). Aware datetimes are written as RFC 3339 in UTC."""

import datetime
from typing import Any

import simplejson
from flask.json.provider import DefaultJSONProvider


def _default(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(value: Any) -> str:
    return simplejson.dumps(
        value, use_decimal=True, default=_default, separators=(",", ":"), ensure_ascii=False
    )


def loads(text: str | bytes) -> Any:
    try:
        value = simplejson.loads(text, use_decimal=True, allow_nan=False)
    except RecursionError:  # e.g. "[[[[..." nested deeper than the parser recurses
        raise ValueError("JSON nested too deeply") from None
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if "\\u" in text or "\\U" in text:
        _reject_lone_surrogates(value)
    return value


def _reject_lone_surrogates(value: Any) -> None:
    # "\ud800" is valid JSON but no valid text: it would fail later, in the database driver.
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError("string with an unpaired surrogate") from exc
    elif isinstance(value, dict):
        for key, item in value.items():
            _reject_lone_surrogates(key)
            _reject_lone_surrogates(item)
    elif isinstance(value, list):
        for item in value:
            _reject_lone_surrogates(item)


class ExactJSONProvider(DefaultJSONProvider):
    """Flask JSON provider used for request bodies and responses alike."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:  # kwargs (e.g. indent) are ignored: compact
        return dumps(obj)

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s)
