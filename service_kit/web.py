"""The Connexion app factory both services use: the spec drives routing and validation, errors
are problem+json, X-Request-ID is accepted or generated and echoed, JSON money is exact."""

from pathlib import Path
from typing import Any

import connexion
import flask
import werkzeug.routing
from connexion.resolver import RelativeResolver

from service_kit import exact_json, problems, request_id
from service_kit.body_validation import ExactRequestBodyValidator
from service_kit.fast_path import FastPath, FastPathFlaskApi
from service_kit.health import Check

SPEC_DIR = Path(__file__).resolve().parent.parent / "openapi"
MAX_BODY_BYTES = 1024 * 1024


def create_service_app(
    *,
    import_name: str,
    spec_file: str,
    handlers_module: str,
    components: dict[str, Any],
    readiness_checks: dict[str, Check],
    validate_responses: bool = False,
    fast_path: bool = True,
) -> connexion.FlaskApp:
    """The service's Connexion app; handlers reach `components` through `component(name)`.
    `fast_path`: see service_kit/fast_path.py (off only to compare the two paths)."""
    app = connexion.FlaskApp(import_name, specification_dir=str(SPEC_DIR))
    if fast_path:
        app.api_cls = FastPathFlaskApi
    flask_app = app.app
    flask_app.url_map.converters["int"] = _AnyPathSegment
    flask_app.json = exact_json.ExactJSONProvider(flask_app)
    flask_app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    flask_app.before_request(_bind_request_id)
    flask_app.after_request(_echo_request_id)
    problems.install(app)
    api = app.add_api(
        spec_file,
        resolver=RelativeResolver(handlers_module),
        strict_validation=True,
        validate_responses=validate_responses,
        validator_map={"body": ExactRequestBodyValidator},
        options={"swagger_ui": True},
    )
    _repair_swagger_ui_home(flask_app, api)
    if fast_path and api.fast_routes:
        flask_app.wsgi_app = FastPath(flask_app, api)
    flask_app.extensions.update(components)
    flask_app.extensions["readiness_checks"] = readiness_checks
    return app


def _repair_swagger_ui_home(flask_app: flask.Flask, api: Any) -> None:
    # Connexion 2.15 looks the spec's URL up under a wrong endpoint name when the API has no
    # base path (BuildError, so /ui/ answered 500). Serve the same page with the known URL.
    index = Path(api.options.openapi_console_ui_from_dir) / "index.j2"
    spec_url = api.base_path + api.options.openapi_spec_path

    def swagger_ui_home() -> str:
        return flask.render_template_string(
            index.read_text(),
            openapi_spec_url=spec_url,
            **api.options.openapi_console_ui_index_template_variables,
        )

    blueprint = api.blueprint.name
    flask_app.view_functions[f"{blueprint}.{blueprint}_swagger_ui_index"] = swagger_ui_home


class _AnyPathSegment(werkzeug.routing.BaseConverter):
    """Route `{id}` of any shape, so a malformed id is the spec's 400 ("wrong type"), not an
    undocumented routing 404. Integers are converted; anything else is left for validation."""

    regex = r"[^/]+"

    def to_python(self, value: str) -> int | str:
        try:
            return int(value)
        except ValueError:
            return value


def _bind_request_id() -> None:
    request_id.bind(request_id.accept_or_generate(flask.request.headers.get(request_id.HEADER)))


def _echo_request_id(response: flask.Response) -> flask.Response:
    response.headers[request_id.HEADER] = request_id.current() or ""
    if response.status_code == 204:
        del response.headers["Content-Type"]  # no body, so no media type
    return response


def created(body: dict[str, Any], location: str) -> tuple[dict[str, Any], int, dict[str, str]]:
    return body, 201, {"Location": location}


def no_content() -> tuple[str, int]:
    return "", 204


def component(name: str) -> Any:
    """A use-case object the app factory registered under `name`."""
    return flask.current_app.extensions[name]
