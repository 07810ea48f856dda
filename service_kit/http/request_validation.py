"""Connexion's request validators, made exact: bodies for decimal numbers (and fast), integer
parameters for their text.

Integer parameters are taken only as plain ASCII integers (`operations.plain_integer`, as on the
fast path): Connexion converts them with `int()`, which also reads `1_0` as 10 and `+1`, ` 1` or
a full-width digit as 1.

Bodies are parsed with numbers as Decimal (see `exact_json`). jsonschema's `multipleOf` divides by
the schema's float (0.01 is not exact in binary, and Decimal / float raises), and float bounds
such as 99999999.99 compare inexactly; schemas with `multipleOf` are therefore checked by
jsonschema with both done in decimal arithmetic. Every other schema (POST /orders among them) is
compiled once with fastjsonschema, an order of magnitude faster than jsonschema."""

import decimal
import functools
from collections.abc import Callable, Iterator
from typing import Any

import fastjsonschema
import flask
from connexion.decorators.validation import (
    ParameterValidator,
    RequestBodyValidator,
    TypeValidationError,
)
from connexion.exceptions import BadRequestProblem, UnsupportedMediaTypeProblem
from connexion.json_schema import Draft4RequestValidator
from connexion.utils import is_null
from jsonschema import Draft4Validator, ValidationError
from jsonschema.validators import extend

from service_kit.http.operations import ADMITTED, plain_integer


def _as_decimal(number: Any) -> decimal.Decimal:
    return decimal.Decimal(repr(number)) if isinstance(number, float) else decimal.Decimal(number)


def _multiple_of(
    validator: Any, divisor: Any, instance: Any, schema: dict
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "number"):
        return
    try:
        exact = _as_decimal(instance) % _as_decimal(divisor) == 0
    except decimal.InvalidOperation:  # e.g. 1E+999999: far beyond any bound, and not exact
        exact = False
    if not exact:
        yield ValidationError(f"{instance} is not a multiple of {divisor}")


def _exact_bound(keyword: str) -> Callable[..., Iterator[ValidationError]]:
    original = Draft4Validator.VALIDATORS[keyword]

    def check(validator: Any, bound: Any, instance: Any, schema: dict) -> Iterator[ValidationError]:
        if isinstance(instance, decimal.Decimal) and isinstance(bound, float):
            bound = _as_decimal(bound)
        yield from original(validator, bound, instance, schema)

    return check


ExactDraft4RequestValidator = extend(
    Draft4RequestValidator,
    {
        "multipleOf": _multiple_of,
        "minimum": _exact_bound("minimum"),
        "maximum": _exact_bound("maximum"),
    },
)


_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
_SUBSCHEMA_MAPS = ("properties", "patternProperties", "definitions")
_SUBSCHEMAS = ("items", "additionalProperties", "not")


def schema_keywords(schema: Any) -> set[str]:
    """The keywords a (resolved) schema and all its subschemas use; property names are not
    keywords."""
    if not isinstance(schema, dict):
        return set()
    found = set(schema)
    for keyword in _SUBSCHEMAS:
        found |= schema_keywords(schema.get(keyword))
    items = schema.get("items")
    for subschema in [
        *(items if isinstance(items, list) else []),
        *(sub for keyword in _SUBSCHEMA_LISTS for sub in schema.get(keyword, [])),
        *(sub for keyword in _SUBSCHEMA_MAPS for sub in schema.get(keyword, {}).values()),
    ]:
        found |= schema_keywords(subschema)
    return found


def compile_body_schema(schema: dict) -> Callable[[Any], Any] | None:
    """The schema compiled by fastjsonschema (raising JsonSchemaException on a body it rejects),
    or None when it needs decimal arithmetic (`multipleOf`) and jsonschema checks it."""
    if "multipleOf" in schema_keywords(schema):
        return None
    return fastjsonschema.compile(schema, use_default=False)


class ExactRequestBodyValidator(RequestBodyValidator):
    """Plugged in through `add_api(validator_map={"body": ...})`. A body is taken only in a
    media type the operation's record lists (service_kit/http/operations.py), as on the fast
    path: Connexion takes any JSON-like one (`…+json`)."""

    def __call__(self, function: Callable[..., Any]) -> Callable[..., Any]:
        validated = super().__call__(function)

        @functools.wraps(function)
        def wrapper(request: Any) -> Any:
            content_type = request.headers.get("Content-Type", "")
            record, _caller = flask.request.environ[ADMITTED]
            if request.body and not record.takes_media_type(content_type):
                raise UnsupportedMediaTypeProblem(
                    detail=f"Invalid Content-type ({content_type}), expected JSON data"
                )
            return validated(request)

        return wrapper

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.validator = ExactDraft4RequestValidator(
            self.schema, format_checker=Draft4Validator.FORMAT_CHECKER
        )
        self._compiled = compile_body_schema(self.schema)

    def validate_schema(self, data: Any, url: str) -> None:
        if self._compiled is None:
            return super().validate_schema(data, url)
        if self.is_null_value_valid and is_null(data):
            return None
        try:
            self._compiled(data)
        except fastjsonschema.JsonSchemaException as exc:
            raise BadRequestProblem(detail=exc.message) from None
        return None


class PlainIntegerParameterValidator(ParameterValidator):
    """Plugged in through `add_api(validator_map={"parameter": ...})`."""

    @staticmethod
    def validate_parameter(
        parameter_type: str, value: Any, param: dict, param_name: str | None = None
    ) -> str | None:
        schema = param.get("schema", param)
        integer = schema.get("type") == "integer"
        if integer and isinstance(value, str) and plain_integer(value) is None:
            return str(TypeValidationError("integer", parameter_type, param["name"]))
        return ParameterValidator.validate_parameter(parameter_type, value, param, param_name)
