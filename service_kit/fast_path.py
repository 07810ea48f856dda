"""A fast path in front of the Flask app, for operations whose only input is a JSON body.

A request through Flask and Connexion 2 costs ~80 µs (request and app contexts, URL binding,
signals, the response object) plus ~100 µs (Connexion's five wrappers: a copy of the request
with its form, cookies and URL, URI parsing, body and parameter validation, argument mapping,
response building) on this project's machine: together over a third of a web worker's CPU on
POST /orders, more than the order's own work. So for an operation that takes nothing but a JSON
body (header parameters being plain strings) and has no path parameter, a request that is
plainly well formed — no query string, `Content-Type: application/json`, a length within the
limit, a body that the schema compiled from the spec accepts — goes from the WSGI server
straight to the handler. Every other request, so every validation error, takes Flask and
Connexion's own pipeline, unchanged (the body it reads is the one already read).

What the pipeline adds to every answer, the fast path adds too: the X-Request-ID (accepted or
generated, bound for the logs, echoed), Connexion's JSON body, the use case's errors as the same
problem+json (service_kit/problems.py), and the response checked against the spec when response
validation is on. The routes stay the spec's; tests/integration/test_fast_path.py checks that
both paths answer alike."""

import io
import logging
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
    accepts: Callable[[Any], Any]  # raises fastjsonschema.JsonSchemaException
    response_validator: ResponseValidator | None


class FastPathFlaskApi(FlaskApi):
    """Connexion's Flask API, noting the operations the fast path can serve by (method, path)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.fast_routes: dict[tuple[str, str], FastRoute] = {}
        super().__init__(*args, **kwargs)  # adds the spec's operations

    def _add_operation_internal(self, method: str, path: str, operation: Any) -> None:
        super()._add_operation_internal(method, path, operation)
        accepts = _suits_fast_path(path, operation)
        if accepts is not None:
            _log.debug("fast path for %s", operation.operation_id)
            self.fast_routes[(method.upper(), self.base_path + path)] = FastRoute(
                handler=self.resolver.resolve_function_from_operation_id(operation.operation_id),
                accepts=accepts,
                response_validator=ResponseValidator(operation, JSON)
                if operation.validate_responses
                else None,
            )


def _suits_fast_path(path: str, operation: AbstractOperation) -> Callable[[Any], Any] | None:
    """The body's compiled validator when the operation takes only a JSON object body (and
    header parameters that any string satisfies) on a path without parameters, else None."""
    if "{" in path or operation.consumes != [JSON] or not operation.body_schema:
        return None
    if operation.get_mimetype() != JSON:
        return None
    if operation.body_schema.get("type") != "object" or "default" in repr(operation.body_schema):
        return None  # Connexion would fill in defaults
    for parameter in operation.parameters:
        if parameter.get("in") != "header" or parameter.get("schema") != {"type": "string"}:
            return None
    return compile_body_schema(operation.body_schema)


class FastPath:
    """The WSGI middleware: serves the fast routes' well-formed requests, passes on the rest."""

    def __init__(self, flask_app: flask.Flask, api: FastPathFlaskApi) -> None:
        self._flask_app = flask_app
        self._pipeline = flask_app.wsgi_app
        self._routes = api.fast_routes
        self._jsonifier = api.jsonifier
        self._max_body = flask_app.config["MAX_CONTENT_LENGTH"]

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        route = self._routes.get((environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")))
        if route is None or environ.get("QUERY_STRING"):
            return self._pipeline(environ, start_response)
        body = self._plain_json_object(environ)
        if body is None:
            return self._pipeline(environ, start_response)
        try:
            route.accepts(body)
        except fastjsonschema.JsonSchemaException:
            return self._pipeline(environ, start_response)  # which answers with Connexion's 400
        rid = request_id.accept_or_generate(environ.get("HTTP_X_REQUEST_ID"))
        request_id.bind(rid)
        with self._flask_app.app_context():  # handlers reach their components through it
            try:
                return self._respond(route, route.handler(body=body), rid, environ, start_response)
            except Exception as exc:  # noqa: BLE001 - answered as the pipeline answers it
                response = problems.handle_exception(exc)
                response.headers[request_id.HEADER] = rid
                return response(environ, start_response)

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
