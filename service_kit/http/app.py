"""The Connexion app factory both services use: the spec drives routing and validation, each
operationId is a method of the service's handler object, and the edge (service_kit/http/edge.py)
wraps both request paths."""

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import connexion
import flask
import werkzeug.routing
import yaml
from connexion.resolver import Resolver
from flask.json.provider import DefaultJSONProvider

from service_kit import exact_json
from service_kit.config import AuthSettings, RateLimitSettings
from service_kit.http import auth, edge, rate_limits
from service_kit.http.dev_tokens import ensure_dev_keys
from service_kit.http.fast_path import FastPath, fast_routes
from service_kit.http.operations import ADMITTED, MAX_BODY_BYTES, Operation, compile_operations
from service_kit.http.request_validation import (
    ExactRequestBodyValidator,
    PlainIntegerParameterValidator,
)

SPEC_DIR = Path(__file__).resolve().parents[2] / "openapi"


def create_service_app(
    *,
    import_name: str,
    spec_file: str,
    handlers: object,
    auth_settings: AuthSettings,
    fast_operations: Sequence[str] = (),
    validate_responses: bool = False,
    rate_limit_settings: RateLimitSettings | None = None,
) -> connexion.FlaskApp:
    """The service's Connexion app. `handlers` has one method per operationId of the spec,
    called only for callers its security requirement admits; each operation is compiled once
    into its record (service_kit/http/operations.py), which both request paths read.
    `fast_operations` are also served by the fast path (service_kit/http/fast_path.py), and
    the start fails if one of them does not suit it, or if an operation declares no
    security."""
    app = connexion.FlaskApp(import_name, specification_dir=str(SPEC_DIR))
    flask_app = app.app
    ensure_dev_keys(auth_settings)
    verifier = auth.TokenVerifier(auth_settings)
    flask_app.extensions[auth.EXTENSION] = verifier
    spec = yaml.safe_load((SPEC_DIR / spec_file).read_text())
    records = compile_operations(spec, handlers)
    limiter = rate_limits.Limiter(spec, rate_limit_settings, verifier)
    # Connexion routes an integer path parameter through Werkzeug's `int` converter, which
    # would answer a malformed id with an undocumented 404: any segment is routed, and the
    # operation's parameter validation answers the spec's 400.
    flask_app.url_map.converters["int"] = _AnyPathSegment
    flask_app.json = ExactJSONProvider(flask_app)
    flask_app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    edge.install_problem_handlers(app)
    api = app.add_api(
        spec_file,
        resolver=Resolver(
            function_resolver=lambda operation_id: _pipeline_handler(records[operation_id])
        ),
        strict_validation=True,
        validate_responses=validate_responses,
        validator_map={
            "body": ExactRequestBodyValidator,
            "parameter": PlainIntegerParameterValidator,
        },
        options={"swagger_ui": True},
    )
    _serve_swagger_ui_home(flask_app, api)
    _admit_before_validation(flask_app, api.blueprint.name, records, verifier, limiter)
    pipeline = flask_app.wsgi_app
    if fast_operations:
        routes = fast_routes(api, records, fast_operations)
        pipeline = FastPath(pipeline, routes, verifier, limiter)
    flask_app.wsgi_app = rate_limits.with_headers(edge.Edge(pipeline))
    return app


def _admit_before_validation(
    flask_app: flask.Flask,
    blueprint: str,
    records: Mapping[str, Operation],
    verifier: auth.TokenVerifier,
    limiter: rate_limits.Limiter,
) -> None:
    """Before Connexion's view runs (it validates parameters and body), the request routed to
    an operation is named for the metrics and admitted by its record: authentication, then
    scope, then the rate limit, then validation, as on the fast path. Connexion names an
    operation's Flask endpoint after its operationId."""
    record_of = {f"{blueprint}.{operation_id}": record for operation_id, record in records.items()}

    @flask_app.before_request
    def admit() -> edge.WsgiApp | None:
        rule = flask.request.url_rule
        record = record_of.get(rule.endpoint) if rule is not None else None
        if record is not None:
            environ = flask.request.environ
            environ[edge.OPERATION] = record.label
            # Flask answers OPTIONS itself (its Allow header), without the operation's view.
            if flask.request.method != "OPTIONS" or record.method == "OPTIONS":
                caller = record.admit(environ, verifier)
                return limiter.check(environ, record.operation_id, caller)  # a 429, or None
        return None


def _pipeline_handler(record: Operation) -> Callable[..., flask.Response]:
    """What Connexion calls with the validated arguments: the record's handler, given the
    caller its admit hook found and the header parameters it takes, its answer written by
    the edge as on the fast path (Connexion's response validation still checks it)."""

    def call(*, token_info: Any = None, user: Any = None, **arguments: Any) -> flask.Response:
        environ = flask.request.environ
        _operation, caller = environ[ADMITTED]
        arguments.update(record.header_arguments(environ))
        status, headers, body = edge.write_answer(record.call(arguments, caller), record.produces)
        return flask.Response(body, status=status, headers=headers)

    call.__name__ = record.operation_id
    return call


def _serve_swagger_ui_home(flask_app: flask.Flask, api: Any) -> None:
    """Connexion 2.15's Swagger UI page looks its spec's URL up under a wrong endpoint name when
    the API has no base path (a BuildError: /ui/ answered 500). Flask's own seam for a URL it
    cannot build answers with the spec's URL."""
    spec_url = api.base_path + api.options.openapi_spec_path
    blueprint = api.blueprint.name

    def spec_url_for(error: Exception, endpoint: str, values: dict[str, Any]) -> str | None:
        if (
            endpoint.endswith("_openapi_json")
            and endpoint != f"{blueprint}.{blueprint}_openapi_json"
        ):
            return spec_url
        return None

    flask_app.url_build_error_handlers.append(spec_url_for)


class _AnyPathSegment(werkzeug.routing.BaseConverter):
    """Route `{id}` of any shape, so a malformed id is the spec's 400 ("wrong type"), not an
    undocumented routing 404: the value is left for validation, as text."""

    regex = r"[^/]+"


class ExactJSONProvider(DefaultJSONProvider):
    """Flask's JSON for request bodies and responses alike: service_kit/exact_json.py."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:  # kwargs (e.g. indent) are ignored: compact
        return exact_json.dumps(obj)

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return exact_json.loads(s)
