"""The Connexion app factory both services use: the spec drives routing and validation, each
operationId is a method of the service's handler object, and the edge (service_kit/http/edge.py)
wraps both request paths."""

import functools
import inspect
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import connexion
import flask
import werkzeug.routing
import yaml
from connexion.resolver import Resolver
from flask.json.provider import DefaultJSONProvider

from service_kit import exact_json, idempotency
from service_kit.config import AuthSettings
from service_kit.http import auth, edge
from service_kit.http.dev_tokens import ensure_dev_keys
from service_kit.http.fast_path import FastPath, fast_routes
from service_kit.http.request_validation import (
    ExactRequestBodyValidator,
    PlainIntegerParameterValidator,
)

SPEC_DIR = Path(__file__).resolve().parents[2] / "openapi"
MAX_BODY_BYTES = 1024 * 1024


def create_service_app(
    *,
    import_name: str,
    spec_file: str,
    handlers: object,
    auth_settings: AuthSettings,
    fast_operations: Sequence[str] = (),
    validate_responses: bool = False,
) -> connexion.FlaskApp:
    """The service's Connexion app. `handlers` has one method per operationId of the spec,
    called only for callers its security requirement admits (service_kit/http/auth.py);
    `fast_operations` are also served by the fast path (service_kit/http/fast_path.py), and
    the start fails if one of them does not suit it."""
    app = connexion.FlaskApp(import_name, specification_dir=str(SPEC_DIR))
    flask_app = app.app
    ensure_dev_keys(auth_settings)
    verifier = auth.TokenVerifier(auth_settings)
    flask_app.extensions[auth.EXTENSION] = verifier
    scopes = _scopes_by_operation(yaml.safe_load((SPEC_DIR / spec_file).read_text()))
    flask_app.url_map.converters["int"] = _AnyPathSegment
    # No redirect, whose Location Werkzeug builds from the client's Host: `/orders//1` and
    # `/orders/1/` are not merged or slashed into another URL but answered as they are.
    flask_app.url_map.merge_slashes = False
    flask_app.url_map.strict_slashes = False
    flask_app.json = ExactJSONProvider(flask_app)
    flask_app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    edge.install_problem_handlers(app)
    api = app.add_api(
        spec_file,
        resolver=Resolver(
            function_resolver=lambda operation_id: auth.guarded(
                _given_headers(getattr(handlers, operation_id)), scopes[operation_id]
            )
        ),
        strict_validation=True,
        validate_responses=validate_responses,
        validator_map={
            "body": ExactRequestBodyValidator,
            "parameter": PlainIntegerParameterValidator,
        },
        options={"swagger_ui": True},
    )
    _repair_swagger_ui_home(flask_app, api)
    _name_operations(flask_app, api.blueprint.name, scopes)
    pipeline = flask_app.wsgi_app
    if fast_operations:
        routes = fast_routes(api, fast_operations)
        pipeline = FastPath(pipeline, routes, MAX_BODY_BYTES, verifier)
    flask_app.wsgi_app = edge.Edge(pipeline)
    return app


# Headers a handler may name as parameters: Connexion validates them against the spec but, being
# headers, does not pass them (the fast path passes what it takes).
_HEADER_PARAMETERS = {"idempotency_key": idempotency.HEADER, "if_match": "If-Match"}


def _given_headers(handler: Callable[..., Any]) -> Callable[..., Any]:
    wanted = {
        name: header
        for name, header in _HEADER_PARAMETERS.items()
        if name in inspect.signature(handler).parameters
    }
    if not wanted:
        return handler

    @functools.wraps(handler)
    def call(**arguments: Any) -> Any:
        for name, header in wanted.items():
            if name not in arguments:
                arguments[name] = flask.request.headers.get(header)
        return handler(**arguments)

    return call


def _name_operations(flask_app: flask.Flask, blueprint: str, operation_ids: Iterable[str]) -> None:
    """Each request the pipeline routes to an operation is measured under its operationId
    (the edge reads it): Connexion names an operation's Flask endpoint after it. Set before
    validation runs, so a refused request counts for its operation too."""
    operation_of = {f"{blueprint}.{operation_id}": operation_id for operation_id in operation_ids}

    @flask_app.before_request
    def name_the_operation() -> None:
        rule = flask.request.url_rule
        if rule is not None and rule.endpoint in operation_of:
            flask.request.environ[edge.OPERATION] = operation_of[rule.endpoint]


def _scopes_by_operation(spec: dict[str, Any]) -> dict[str, frozenset[str] | None]:
    return {
        operation["operationId"]: auth.required_scopes(operation, spec)
        for methods in spec["paths"].values()
        for operation in methods.values()
        if isinstance(operation, dict) and "operationId" in operation
    }


def _repair_swagger_ui_home(flask_app: flask.Flask, api: Any) -> None:
    # Connexion 2.15 looks the spec's URL up under a wrong endpoint name when the API has no
    # base path (BuildError, so /ui/ answered 500). Serve the same page with the known URL.
    index = Path(api.options.openapi_console_ui_from_dir) / "index.j2"
    spec_url = api.base_path + api.options.openapi_spec_path
    # Its assets by absolute path: /ui is served as /ui/ is (no redirect), and a page at /ui
    # would look for ./swagger-ui.css at the root.
    ui_path = api.base_path + api.options.openapi_console_ui_path
    page = index.read_text().replace('"./', f'"{ui_path}/')

    def swagger_ui_home() -> str:
        return flask.render_template_string(
            page,
            openapi_spec_url=spec_url,
            **api.options.openapi_console_ui_index_template_variables,
        )

    blueprint = api.blueprint.name
    flask_app.view_functions[f"{blueprint}.{blueprint}_swagger_ui_index"] = swagger_ui_home


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
