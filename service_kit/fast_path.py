"""A fast path in front of the Flask app, for the operations whose inputs are simple.

A request through Flask and Connexion 2 costs ~80 µs (request and app contexts, URL binding,
signals, the response object) plus ~100 µs (Connexion's five wrappers: a copy of the request
with its form, cookies and URL, URI parsing, parameter and body validation, argument mapping,
response building) on this project's machine: together over a third of a web worker's CPU on
POST /orders, more than the order's own work, and half of a cached GET /products/{id}. So two
kinds of operations (header parameters being plain strings) are also served from here:

- POST with a JSON object body as the only input, on a path without parameters
  (POST /orders);
- GET with integer path parameters as the only inputs (GET /products/{id}, GET /orders/{id}).

A request that is plainly well formed — no query string, ASCII digits for each path parameter,
and for a body `Content-Type: application/json`, a length within the limit — and that the
schemas compiled from the spec accept goes from the WSGI server straight to the handler. Every
other request, so every validation error, takes Flask and Connexion's own pipeline, unchanged
(a body already read is handed on).

What the pipeline adds to every answer, the fast path adds too: the X-Request-ID (accepted or
generated, bound for the logs, echoed), Connexion's JSON body, the use case's errors as the same
problem+json (service_kit/problems.py), and the response checked against the spec when response
validation is on. The routes stay the spec's; tests/integration/test_fast_path.py checks that
both paths answer alike."""

import io
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import fastjsonschema
import flask
from connexion.apis.flask_api import FlaskApi
from connexion.decorators.response import ResponseValidator
from connexion.operations import AbstractOperation
from werkzeug.http import HTTP_STATUS_CODES

from service_kit import exact_json, problems, request_id
from service_kit.body_validation import compile_body_schema

_log = logging.getLogger(__name__)
JSON = "application/json"
StartResponse = Callable[..., Any]


@dataclass(frozen=True)
class FastRoute:
    handler: Callable[..., Any]
    accepts_body: Callable[[Any], Any] | None  # raises fastjsonschema.JsonSchemaException
    accepts_path: dict[str, Callable[[Any], Any]]  # path parameter → its compiled schema
    response_validator: ResponseValidator | None


class FastPathFlaskApi(FlaskApi):
    """Connexion's Flask API, noting the operations the fast path can serve by (method, path)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.fast_routes: dict[tuple[str, str], FastRoute] = {}
        super().__init__(*args, **kwargs)  # adds the spec's operations

    def _add_operation_internal(self, method: str, path: str, operation: Any) -> None:
        super()._add_operation_internal(method, path, operation)
        inputs = _fast_path_inputs(method.upper(), path, operation)
        if inputs is not None:
            _log.debug("fast path for %s", operation.operation_id)
            self.fast_routes[(method.upper(), self.base_path + path)] = FastRoute(
                handler=self.resolver.resolve_function_from_operation_id(operation.operation_id),
                accepts_body=inputs[0],
                accepts_path=inputs[1],
                response_validator=ResponseValidator(operation, JSON)
                if operation.validate_responses
                else None,
            )


def _fast_path_inputs(
    method: str, path: str, operation: AbstractOperation
) -> tuple[Callable[[Any], Any] | None, dict[str, Callable[[Any], Any]]] | None:
    """(the body's compiled schema, each path parameter's) when the fast path suits the
    operation (see above), else None."""
    if operation.get_mimetype() != JSON:
        return None
    path_parameters = {}
    for parameter in operation.parameters:
        schema = parameter.get("schema", {})
        if parameter.get("in") == "path" and method == "GET" and schema.get("type") == "integer":
            if set(schema) - {"type", "minimum", "maximum"} or not parameter["name"].isidentifier():
                return None  # e.g. a format, which fastjsonschema does not check on numbers
            path_parameters[parameter["name"]] = fastjsonschema.compile(schema)
        elif parameter.get("in") != "header" or schema != {"type": "string"}:
            return None
    if method == "GET":
        return (None, path_parameters) if path_parameters and not operation.body_schema else None
    if method != "POST" or "{" in path or operation.consumes != [JSON]:
        return None
    body_schema = operation.body_schema
    if not body_schema or body_schema.get("type") != "object" or "default" in repr(body_schema):
        return None  # Connexion would fill in defaults
    accepts_body = compile_body_schema(body_schema)
    return None if accepts_body is None else (accepts_body, {})


def _path_pattern(path: str) -> re.Pattern[str]:
    """`/orders/{id}` → a pattern taking ASCII digits for `id` (anything else: the pipeline)."""
    parts = re.split(r"\{([^}]+)\}", path)
    pattern = "".join(
        re.escape(part) if index % 2 == 0 else f"(?P<{part}>[0-9]{{1,19}})"
        for index, part in enumerate(parts)
    )
    return re.compile(pattern)


class FastPath:
    """The WSGI middleware: serves the fast routes' well-formed requests, passes on the rest."""

    def __init__(self, flask_app: flask.Flask, api: FastPathFlaskApi) -> None:
        self._flask_app = flask_app
        self._pipeline = flask_app.wsgi_app
        self._fixed = {key: route for key, route in api.fast_routes.items() if "{" not in key[1]}
        self._templated = [
            (method, _path_pattern(path), route)
            for (method, path), route in api.fast_routes.items()
            if "{" in path
        ]
        self._jsonifier = api.jsonifier
        self._max_body = flask_app.config["MAX_CONTENT_LENGTH"]

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("QUERY_STRING"):
            return self._pipeline(environ, start_response)
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        route, arguments = self._fixed.get((method, path)), {}
        if route is None:
            route, arguments = self._match_template(method, path)
            if route is None:
                return self._pipeline(environ, start_response)
        try:
            for name, accepts in route.accepts_path.items():
                accepts(arguments[name])
            if route.accepts_body is not None:
                body = self._plain_json_object(environ)
                if body is None:
                    return self._pipeline(environ, start_response)
                route.accepts_body(body)
                arguments["body"] = body
        except fastjsonschema.JsonSchemaException:
            return self._pipeline(environ, start_response)  # which answers with Connexion's 400
        rid = request_id.accept_or_generate(environ.get("HTTP_X_REQUEST_ID"))
        request_id.bind(rid)
        with self._flask_app.app_context():  # handlers reach their components through it
            try:
                result = route.handler(**arguments)
                return self._respond(route, result, rid, environ, start_response)
            except Exception as exc:  # noqa: BLE001 - answered as the pipeline answers it
                response = problems.handle_exception(exc)
                response.headers[request_id.HEADER] = rid
                return response(environ, start_response)

    def _match_template(self, method: str, path: str) -> tuple[FastRoute | None, dict[str, Any]]:
        for route_method, pattern, route in self._templated:
            if route_method == method and (match := pattern.fullmatch(path)):
                return route, {name: int(value) for name, value in match.groupdict().items()}
        return None, {}

    def _plain_json_object(self, environ: dict[str, Any]) -> dict[str, Any] | None:
        """The body when it is a JSON object sent as such within the size limit, else None;
        what was read is put back for the pipeline."""
        if environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower() != JSON:
            return None
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            return None  # no length (chunked): the pipeline reads it
        if not 0 < length <= self._max_body:
            return None
        data = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(data)
        try:
            body = exact_json.loads(data)
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def _respond(
        self,
        route: FastRoute,
        result: Any,
        rid: str,
        environ: dict[str, Any],
        start_response: StartResponse,
    ) -> Iterable[bytes]:
        data, status, headers = _parts(result)
        body = self._jsonifier.dumps(data).encode()
        headers = {"Content-Type": JSON, **headers}
        if route.response_validator is not None:
            route.response_validator.validate_response(
                body, status, headers, environ.get("PATH_INFO", "")
            )
        headers.update({"Content-Length": str(len(body)), request_id.HEADER: rid})
        start_response(f"{status} {HTTP_STATUS_CODES[status].upper()}", list(headers.items()))
        return [body]


def _parts(result: Any) -> tuple[Any, int, dict[str, str]]:
    """(body, status, headers) of a handler's answer: a body, (body, status) or
    (body, status, headers), as the kit's `created` and plain handlers return them."""
    if not isinstance(result, tuple):
        return result, 200, {}
    if len(result) == 2:
        return result[0], result[1], {}
    return result
