"""A fast path beside Connexion's pipeline, for the operations each app names.

A request through Flask and Connexion 2 pays for request and app contexts, URL binding, signals,
a copy of the request, URI parsing, parameter and body validation, argument mapping and response
building: more than the work of a cached read or of an order (docs/performance.md). So the
operations an app declares (`fast_routes`) are also served from here, when they are of one of
two kinds (header parameters being plain strings):

- POST with a JSON object body as the only input, on a path without parameters
  (POST /orders);
- GET with integer path parameters as the only inputs (GET /products/{id}, GET /orders/{id}).

A declared operation of another kind fails the start (`FastPathUnsuitable`): it is never
silently left to the pipeline.

Each route is built from its operation's record (service_kit/http/operations.py), as the
pipeline's handlers are: the same admission (authentication, then scope, before anything else
is read), header binding, integer parsing, media types, body limit, handler and answer writer.
A request that is plainly well formed — no query string, plain integers for the path
parameters, a body in the operation's media type within its limit — and that the schemas
compiled from the spec accept goes from the WSGI server straight to the handler. Every
other request, so every validation error, takes Flask and Connexion's own pipeline, unchanged
(a body already read is handed on).

The answers are the edge's (service_kit/http/edge.py), as on the pipeline: the request id, JSON
written the same way, problem+json errors, the operation's response validator.
tests/integration/test_fast_path.py checks that both paths answer alike, byte for byte."""

import io
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import fastjsonschema
from connexion.apis.abstract import AbstractAPI
from connexion.operations import make_operation
from werkzeug.exceptions import ClientDisconnected

from service_kit import exact_json
from service_kit.errors import ServiceError
from service_kit.http import auth, edge
from service_kit.http.operations import JSON, Operation, plain_integer
from service_kit.http.request_validation import compile_body_schema, schema_keywords

StartResponse = Callable[..., Any]
_PATH_INTEGER_KEYWORDS = {"type", "minimum", "maximum"}  # what fastjsonschema checks exactly
_HEADER_STRING_KEYWORDS = {"type", "minLength", "maxLength", "pattern"}


class FastPathUnsuitable(Exception):
    """An operation declared for the fast path that it cannot serve as the pipeline would."""


@dataclass(frozen=True)
class FastRoute:
    """An operation's record (service_kit/http/operations.py) with what the fast path checks
    itself: its schemas compiled by fastjsonschema (a request one rejects goes to the
    pipeline, which answers with Connexion's 400) and its response validator."""

    operation: Operation
    path: str  # the route, the API's base path included
    accepts_body: Callable[[Any], Any] | None  # raises fastjsonschema.JsonSchemaException
    accepts_path: dict[str, Callable[[Any], Any]]  # path parameter → its compiled schema
    accepts_headers: dict[str, Callable[[Any], Any]]  # WSGI environ key → its compiled schema
    response_validator: Any | None


def fast_routes(
    api: AbstractAPI, records: Mapping[str, Operation], operation_ids: Sequence[str]
) -> list[FastRoute]:
    """The routes of these operations; FastPathUnsuitable if one is not in the spec or not of a
    kind the fast path serves."""
    routes = []
    for operation_id in operation_ids:
        record = records.get(operation_id)
        if record is None:
            raise FastPathUnsuitable(f"{operation_id}: no such operation in the spec")
        # The operation as Connexion's own `add_operation` makes it: its body schema with every
        # reference resolved, and its response validator.
        operation = make_operation(
            api.specification,
            api,
            record.path,
            record.method.lower(),
            api.resolver,
            validate_responses=api.validate_responses,
            validator_map=api.validator_map,
            strict_validation=api.strict_validation,
        )
        accepts_body, accepts_path, accepts_headers = _inputs(record, operation.body_schema)
        routes.append(
            FastRoute(
                operation=record,
                path=api.base_path + record.path,
                accepts_body=accepts_body,
                accepts_path=accepts_path,
                accepts_headers=accepts_headers,
                response_validator=edge.response_validator(operation),
            )
        )
    return routes


def _inputs(
    record: Operation, body_schema: Mapping[str, Any] | None
) -> tuple[
    Callable[[Any], Any] | None, dict[str, Callable[[Any], Any]], dict[str, Callable[[Any], Any]]
]:
    """(the body's compiled schema, each path parameter's, each header's), or
    FastPathUnsuitable saying why the operation is not of a kind the fast path serves."""
    method, path = record.method, record.path

    def unsuitable(reason: str) -> FastPathUnsuitable:
        return FastPathUnsuitable(f"{record.operation_id} ({method} {path}): {reason}")

    if record.produces != JSON:
        raise unsuitable(f"it answers {record.produces}, not {JSON}")
    path_parameters, headers = {}, {}
    for parameter in record.parameters:
        schema, where, name = parameter.get("schema", {}), parameter.get("in"), parameter["name"]
        if where == "header" and schema.get("type") == "string":
            if set(schema) - _HEADER_STRING_KEYWORDS:
                raise unsuitable(f"header {name} needs more than a length and a pattern")
            headers["HTTP_" + name.upper().replace("-", "_")] = fastjsonschema.compile(schema)
            continue
        if where != "path" or method != "GET" or name not in record.path_integers:
            raise unsuitable(f"parameter {name} in {where} is not a plain header or GET path id")
        if set(schema) - _PATH_INTEGER_KEYWORDS or not name.isidentifier():
            raise unsuitable(f"path parameter {name} needs more than type and bounds")
        path_parameters[name] = fastjsonschema.compile(schema)
    if method == "GET":
        if not path_parameters or body_schema:
            raise unsuitable("a GET is served with integer path parameters only")
        return None, path_parameters, headers
    if method != "POST" or "{" in path or record.consumes != (JSON,):
        raise unsuitable("only GETs by id and POSTs of a JSON body to a fixed path qualify")
    if not body_schema or body_schema.get("type") != "object":
        raise unsuitable("its body is not a JSON object")
    if "default" in schema_keywords(body_schema):
        raise unsuitable("its body schema has defaults, which Connexion fills in")
    accepts_body = compile_body_schema(dict(body_schema))
    if accepts_body is None:
        raise unsuitable("its body schema needs decimal arithmetic (multipleOf)")
    return accepts_body, {}, headers


def _path_pattern(path: str) -> re.Pattern[str]:
    """`/orders/{id}` → a pattern taking one path segment for `id`, parsed as the record says."""
    parts = re.split(r"\{([^}]+)\}", path)
    pattern = "".join(
        re.escape(part) if index % 2 == 0 else f"(?P<{part}>[^/]+)"
        for index, part in enumerate(parts)
    )
    return re.compile(pattern)


class FastPath:
    """The WSGI middleware: serves the fast routes' well-formed requests, passes on the rest."""

    def __init__(
        self,
        pipeline: edge.WsgiApp,
        routes: Sequence[FastRoute],
        verifier: auth.TokenVerifier,
        limiter: Any,  # service_kit/http/rate_limits.py's Limiter
    ) -> None:
        self._pipeline = pipeline
        self._verifier = verifier
        self._limiter = limiter
        self._fixed = {(r.operation.method, r.path): r for r in routes if "{" not in r.path}
        self._templated = [
            (r.operation.method, _path_pattern(r.path), r) for r in routes if "{" in r.path
        ]

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("QUERY_STRING"):
            return self._pipeline(environ, start_response)
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        route, texts = self._fixed.get((method, path)), {}
        if route is None:
            route, texts = self._match_template(method, path)
            if route is None:
                return self._pipeline(environ, start_response)
        record = route.operation
        environ[edge.OPERATION] = record.label
        try:  # as on the pipeline: authentication and scope before anything else is read
            caller = record.admit(environ, self._verifier)
        except ServiceError as exc:
            return edge.handle_exception(exc)(environ, start_response)
        refused = self._limiter.check(environ, record.operation_id, caller)
        if refused is not None:  # over a rate limit: service_kit/http/rate_limits.py
            return refused(environ, start_response)
        try:
            arguments: dict[str, Any] = {}
            for name, accepts in route.accepts_path.items():
                value = plain_integer(texts[name])
                if value is None:
                    return self._pipeline(environ, start_response)
                accepts(value)
                arguments[name] = value
            for header, accepts in route.accepts_headers.items():
                if header in environ:
                    accepts(environ[header])
            arguments.update(record.header_arguments(environ))
            if route.accepts_body is not None:
                body = self._plain_json_object(environ, record)
                if body is None:
                    return self._pipeline(environ, start_response)
                route.accepts_body(body)
                arguments["body"] = body
        except fastjsonschema.JsonSchemaException:
            return self._pipeline(environ, start_response)  # which answers with Connexion's 400
        except ClientDisconnected as exc:
            return edge.handle_exception(exc)(environ, start_response)
        try:
            status, headers, body = edge.write_answer(
                record.call(arguments, caller), record.produces, route.response_validator, path
            )
        except Exception as exc:  # noqa: BLE001 - answered as the pipeline answers it
            return edge.handle_exception(exc)(environ, start_response)
        start_response(status, headers)
        return [body]

    def _match_template(self, method: str, path: str) -> tuple[FastRoute | None, dict[str, str]]:
        for route_method, pattern, route in self._templated:
            if route_method == method and (match := pattern.fullmatch(path)):
                return route, match.groupdict()
        return None, {}

    def _plain_json_object(
        self, environ: dict[str, Any], record: Operation
    ) -> dict[str, Any] | None:
        """The body when it is a JSON object sent as such within the size limit, else None;
        what was read is put back for the pipeline."""
        if not record.takes_media_type(environ.get("CONTENT_TYPE", "")):
            return None
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            return None  # no length (chunked): the pipeline reads it
        if not 0 < length <= record.max_body:
            return None
        try:
            data = environ["wsgi.input"].read(length)
        except OSError as exc:  # the body ended before its Content-Length: Werkzeug's 400 too
            raise ClientDisconnected() from exc
        environ["wsgi.input"] = io.BytesIO(data)
        try:
            body = exact_json.loads(data)
        except ValueError:
            return None
        return body if isinstance(body, dict) else None
