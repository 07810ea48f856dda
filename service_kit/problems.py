"""Every error as application/problem+json (RFC 9457) with the request id: Connexion's own
validation problems, Werkzeug's HTTP errors (404, 405, 413, ...), use-case errors, an unreachable
database, and anything unexpected (a 500 without a stack trace)."""

import logging
from typing import Any

import connexion
import flask
import werkzeug.exceptions
from connexion.exceptions import ProblemException
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from service_kit import errors, exact_json, request_id

MEDIA_TYPE = "application/problem+json"
_log = logging.getLogger(__name__)

# Use-case errors and the status each one is answered with.
_STATUS_OF = {
    errors.NotFound: (404, "Not Found"),
    errors.Conflict: (409, "Conflict"),
    errors.Unprocessable: (422, "Unprocessable Content"),
    errors.DependencyUnavailable: (503, "Service Unavailable"),
}
_DATABASE_RETRY_AFTER_S = 5


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> flask.Response:
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "requestId": request_id.current() or request_id.accept_or_generate(None),
        **extensions,
    }
    response = flask.Response(exact_json.dumps(body), status=status, mimetype=MEDIA_TYPE)
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
    if status >= 500:
        _log.error("HTTP %s: %s", status, exc.description)
    return problem_response(status, exc.name, exc.description or exc.name, headers=headers)


def _from_service_error(exc: errors.ServiceError) -> flask.Response:
    status, title = _STATUS_OF.get(type(exc), (500, "Internal Server Error"))
    headers = {}
    if isinstance(exc, errors.DependencyUnavailable):
        headers["Retry-After"] = str(exc.retry_after_s)
        _log.warning("dependency unavailable: %s", exc)
    return problem_response(status, title, str(exc), headers=headers)


def handle_exception(exc: Exception) -> flask.Response:
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


def install(app: connexion.FlaskApp) -> None:
    """Replace Connexion's and Flask's error pages by problem+json everywhere."""
    for code in werkzeug.exceptions.default_exceptions:
        app.add_error_handler(code, handle_exception)
    app.add_error_handler(ProblemException, handle_exception)
    app.add_error_handler(Exception, handle_exception)
