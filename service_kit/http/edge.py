"""The HTTP edge: what every answer of both services gets, whichever path serves the request
(Connexion's pipeline or the fast path, service_kit/http/fast_path.py).

- `Edge`, the outermost WSGI middleware: the X-Request-ID accepted (well-formed) or generated,
  bound for the logs, outgoing calls and events of the request, and echoed on every answer.
- Every error as application/problem+json (RFC 9457) with the request id: Connexion's
  validation problems, Werkzeug's HTTP errors (404, 405, 413, ...), use-case errors, an
  unreachable database, and anything unexpected (a 500 without a stack trace).
- The handlers' answers (service_kit/http/answers.py) written by `write_answer` on both paths:
  JSON written exactly (service_kit/exact_json.py), text, or no body.
- Every request counted and timed by operation, and the caller's W3C trace context continued
  (service_kit/telemetry/).
- Answers checked against the spec, when response validation is on, by the validator the
  operation itself names (`validator_map["response"]`)."""

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import connexion
import flask
import werkzeug.exceptions
from connexion.exceptions import ProblemException
from connexion.operations import AbstractOperation
from opentelemetry import trace
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from werkzeug.http import HTTP_STATUS_CODES

from service_kit import errors, exact_json, request_id
from service_kit.http import conditional, outgoing
from service_kit.http.answers import Answer, answer_parts
from service_kit.telemetry import metrics, tracing

JSON = "application/json"
PROBLEM = "application/problem+json"
OPERATION = "service_kit.operation"  # the environ key: the operationId serving the request
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_log = logging.getLogger(__name__)


class Edge:
    """Wraps the whole web app: each request's id and trace context are bound before anything
    runs, the id is echoed on whatever answers it, and every answer is counted and timed by
    operation (service_kit/telemetry/metrics.py), whichever path served it."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._measures: dict[tuple[str, str], tuple[Any, Any]] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        started = time.perf_counter()
        rid = request_id.accept_or_generate(environ.get("HTTP_X_REQUEST_ID"))
        request_id.bind(rid)
        outgoing.forward_credentials(environ.get("HTTP_AUTHORIZATION"))
        span = self._bind_trace_context(environ)
        answered: list[str] = []
        if_none_match = environ.get("HTTP_IF_NONE_MATCH")
        try:
            if if_none_match and environ["REQUEST_METHOD"] in ("GET", "HEAD"):
                return self._conditional(environ, start_response, rid, if_none_match, answered)

            def start_with_request_id(status: str, headers: list, exc_info: Any = None) -> Any:
                answered.append(status)
                return start_response(status, _final_headers(status, headers, rid), exc_info)

            return self._app(environ, start_with_request_id)
        finally:
            status = answered[-1][:3] if answered else "500"
            operation = environ.get(OPERATION, metrics.NO_OPERATION)
            self._measure(operation, status, time.perf_counter() - started)
            if span is not None:
                span.update_name(f"{environ['REQUEST_METHOD']} {operation}")
                span.set_attribute("http.response.status_code", int(status))
                if status >= "500":
                    span.set_status(trace.StatusCode.ERROR)
                span.end()

    @staticmethod
    def _bind_trace_context(environ: dict[str, Any]) -> Any:
        """The caller's trace context, current for the request (a span of its own when spans
        are recorded); with neither, whatever a former request on this connection left is
        cleared."""
        carrier = {}
        if "HTTP_TRACEPARENT" in environ:
            carrier[tracing.TRACEPARENT] = environ["HTTP_TRACEPARENT"]
            if "HTTP_TRACESTATE" in environ:
                carrier[tracing.TRACESTATE] = environ["HTTP_TRACESTATE"]
        if tracing.recording():
            span = tracing.start_server_span(carrier, environ["REQUEST_METHOD"])
            span.set_attribute("http.request.method", environ["REQUEST_METHOD"])
            return span
        tracing.continue_from(carrier)
        return None

    def _measure(self, operation: str, status: str, seconds: float) -> None:
        # The labelled children, looked up once per (operation, status): a look-up by labels
        # takes a lock and builds a key every time.
        measures = self._measures.get((operation, status))
        if measures is None:
            measures = (
                metrics.http_requests.labels(operation, status),
                metrics.http_duration.labels(operation),
            )
            self._measures[(operation, status)] = measures
        measures[0].inc()
        measures[1].observe(seconds)

    def _conditional(
        self,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        rid: str,
        tags: str,
        answered: list[str],
    ) -> Any:
        """A GET whose representation the client holds already: 304, its ETag, no body."""
        not_modified = False

        def start(status: str, headers: list, exc_info: Any = None) -> Any:
            nonlocal not_modified
            current = next((v for k, v in headers if k.lower() == "etag"), None)
            if status.startswith("200") and current and not conditional.none_match(tags, current):
                not_modified = True
                status, headers = "304 NOT MODIFIED", [("ETag", current)]
            answered.append(status)
            return start_response(status, _final_headers(status, headers, rid), exc_info)

        body = self._app(environ, start)
        if not not_modified:
            return body
        if hasattr(body, "close"):
            body.close()
        return []


_REPLACED = frozenset({request_id.HEADER.lower()})
_REPLACED_WITHOUT_BODY = _REPLACED | {"content-type"}  # a 204 has no body, so no media type


def _final_headers(status: str, headers: list[tuple[str, str]], rid: str) -> list:
    dropped = _REPLACED_WITHOUT_BODY if status.startswith("204") else _REPLACED
    kept = [(name, value) for name, value in headers if name.lower() not in dropped]
    kept.append((request_id.HEADER, rid))
    return kept


def write_answer(
    answer: Answer, media_type: str, response_validator: Any | None = None, url: str = ""
) -> tuple[str, list[tuple[str, str]], bytes]:
    """(status line, headers, body) of a handler's answer, on both request paths: JSON written
    exactly (service_kit/exact_json.py) and a newline, text as it is (the handler may name its
    own Content-Type), a 204 without a body; checked by the operation's response validator if
    there is one."""
    data, status, extra_headers = answer_parts(answer)
    if status == 204:
        body, headers = b"", dict(extra_headers)
    elif media_type == JSON:
        body, headers = (exact_json.dumps(data) + "\n").encode(), {"Content-Type": JSON}
        headers.update(extra_headers)
    else:
        body = data.encode() if isinstance(data, str) else bytes(data)
        headers = {"Content-Type": media_type, **extra_headers}
    if response_validator is not None:
        response_validator.validate_response(body, status, headers, url)
    headers["Content-Length"] = str(len(body))
    return f"{status} {HTTP_STATUS_CODES[status].upper()}", list(headers.items()), body


def response_validator(operation: AbstractOperation) -> Any | None:
    """The operation's own response validator (Connexion's pipeline applies the same), or None
    when response validation is off."""
    if not operation.validate_responses:
        return None
    return operation.validator_map["response"](operation, operation.get_mimetype())


# Problems.

# Use-case errors and the status each one is answered with.
_STATUS_OF = {
    errors.Unauthenticated: (401, "Unauthorized"),
    errors.Forbidden: (403, "Forbidden"),
    errors.NotFound: (404, "Not Found"),
    errors.Conflict: (409, "Conflict"),
    errors.PreconditionFailed: (412, "Precondition Failed"),
    errors.PreconditionRequired: (428, "Precondition Required"),
    errors.Unprocessable: (422, "Unprocessable Content"),
    errors.DependencyUnavailable: (503, "Service Unavailable"),
    errors.OutcomeUnknown: (503, "Outcome Unknown"),
}
OUTCOME_UNKNOWN = "urn:order-product:problem:outcome-unknown"
_DATABASE_RETRY_AFTER_S = 5
_CHALLENGE = 'Bearer realm="order-product"'  # RFC 6750


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    problem_type: str = "about:blank",
    **extensions: Any,
) -> flask.Response:
    body = {
        "type": problem_type,
        "title": title,
        "status": status,
        "detail": detail,
        "requestId": request_id.current() or request_id.accept_or_generate(None),
        **extensions,
    }
    response = flask.Response(exact_json.dumps(body), status=status, mimetype=PROBLEM)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _from_connexion(exc: ProblemException) -> flask.Response:
    detail = exc.detail if isinstance(exc.detail, str) else "; ".join(map(str, exc.detail or []))
    # jsonschema appends the whole schema and instance after a blank line: keep the sentence.
    detail = detail.split("\n\n", 1)[0]
    headers = {k: v for k, v in (exc.headers or {}).items() if k.lower() != "content-type"}
    return problem_response(exc.status, exc.title or "Bad Request", detail, headers=headers)


def _from_werkzeug(exc: werkzeug.exceptions.HTTPException) -> flask.Response:
    # Keep meaningful headers (Allow on 405, Retry-After on 503), never the HTML content type.
    headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
    status = exc.code or 500
    if status == 401:  # Connexion's, for a request without a token
        headers.setdefault("WWW-Authenticate", _CHALLENGE)
    if status >= 500:
        _log.error("HTTP %s: %s", status, exc.description)
    return problem_response(status, exc.name, exc.description or exc.name, headers=headers)


def _from_service_error(exc: errors.ServiceError) -> flask.Response:
    kind = next((cls for cls in type(exc).__mro__ if cls in _STATUS_OF), None)
    status, title = _STATUS_OF.get(kind, (500, "Internal Server Error"))
    headers = {}
    if isinstance(exc, errors.DependencyUnavailable):
        headers["Retry-After"] = str(exc.retry_after_s)
        _log.warning("dependency unavailable: %s", exc)
    elif isinstance(exc, errors.OutcomeUnknown):
        _log.warning("outcome unknown: %s", exc)
        detail = (
            f"{exc}. The change may have been stored: repeat the request with the same "
            "Idempotency-Key to get its outcome (or have it made, once)"
        )
        headers["Retry-After"] = "1"
        return problem_response(503, title, detail, headers=headers, problem_type=OUTCOME_UNKNOWN)
    elif isinstance(exc, errors.Unauthenticated):
        invalid = ', error="invalid_token"' if exc.token_given else ""
        headers["WWW-Authenticate"] = _CHALLENGE + invalid
    elif isinstance(exc, errors.Forbidden):
        headers["WWW-Authenticate"] = f'{_CHALLENGE}, error="insufficient_scope"'

    return problem_response(status, title, str(exc), headers=headers)


def handle_exception(exc: Exception) -> flask.Response:
    """The problem+json answer to an exception, itself a WSGI app."""
    if isinstance(exc, ProblemException):
        return _from_connexion(exc)
    if isinstance(exc, werkzeug.exceptions.HTTPException):
        return _from_werkzeug(exc)
    if isinstance(exc, errors.ServiceError):
        return _from_service_error(exc)
    if isinstance(exc, DBAPIError) and _is_connection_failure(exc):
        _log.warning("database unavailable: %s", exc.orig)
        return problem_response(
            503,
            "Service Unavailable",
            "the database is unreachable; retry later",
            headers={"Retry-After": str(_DATABASE_RETRY_AFTER_S)},
        )
    _log.exception("unhandled error")
    return problem_response(
        500,
        "Internal Server Error",
        "an unexpected error occurred; quote the requestId when reporting it",
    )


def _is_connection_failure(exc: DBAPIError) -> bool:
    return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)


def install_problem_handlers(app: connexion.FlaskApp) -> None:
    """Replace Connexion's and Flask's error pages by problem+json everywhere."""
    for code in werkzeug.exceptions.default_exceptions:
        app.add_error_handler(code, handle_exception)
    app.add_error_handler(ProblemException, handle_exception)
    app.add_error_handler(Exception, handle_exception)
