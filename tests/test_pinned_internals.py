"""Each private or undocumented API of a dependency that the services still use, pinned: one test
per entry of "Seams into dependencies" in docs/architecture.md, asserting the shape relied on
(name, signature, attribute), so that an upgrade which changes one fails here, naming it,
rather than somewhere on a request path. The gevent worker's own seams
(service_kit/process/gevent_worker.py, connection_watch.py) are listed there too and tested by
tests/unit/test_gevent_worker.py."""

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pika
import pika.channel
import pika.connection
import pytest
from connexion import FlaskApp
from connexion.apis import flask_utils
from connexion.decorators.validation import (
    ParameterValidator,
    RequestBodyValidator,
    TypeValidationError,
)
from connexion.resolver import Resolver
from gunicorn.config import Config
from gunicorn.glogging import Logger

from service_kit.http.app import SPEC_DIR
from service_kit.http.request_validation import (
    ExactRequestBodyValidator,
    PlainIntegerParameterValidator,
)


def _parameters(function: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(function).parameters)


def _pinned(what: str, holds: bool) -> None:
    assert holds, (
        f"{what}: the dependency no longer has the shape the services rely on "
        "(docs/architecture.md, Seams into dependencies, says where and why)"
    )


@pytest.fixture(scope="module")
def api() -> Any:
    """openapi/order.yaml as Connexion 2 adds it, with the options the services use."""
    app = FlaskApp(__name__, specification_dir=str(SPEC_DIR))
    return app.add_api(
        "order.yaml",
        resolver=Resolver(function_resolver=lambda _operation_id: lambda **_arguments: None),
        strict_validation=True,
        validate_responses=True,
        validator_map={
            "body": ExactRequestBodyValidator,
            "parameter": PlainIntegerParameterValidator,
        },
        options={"swagger_ui": True},
    )


def test_connexion_make_operation(api):
    """service_kit/http/fast_path.py: `make_operation` builds an operation as `add_operation`
    does, for its resolved body schema and its response validator."""
    from connexion.operations import make_operation

    operation = make_operation(
        api.specification,
        api,
        "/orders",
        "post",
        api.resolver,
        validate_responses=api.validate_responses,
        validator_map=api.validator_map,
        strict_validation=api.strict_validation,
    )
    _pinned(
        "Operation.body_schema (references resolved)", operation.body_schema["type"] == "object"
    )
    _pinned("Operation.get_mimetype()", operation.get_mimetype() == "application/json")
    _pinned("Operation.validate_responses", operation.validate_responses is True)
    validator = operation.validator_map["response"](operation, operation.get_mimetype())
    _pinned(
        "ResponseValidator.validate_response(data, status_code, headers, url)",
        _parameters(validator.validate_response) == ["data", "status_code", "headers", "url"],
    )


def test_connexion_api_attributes(api):
    """service_kit/http/fast_path.py and app.py read these attributes of the API `add_api`
    returns."""
    for name in (
        "specification",
        "resolver",
        "validator_map",
        "strict_validation",
        "validate_responses",
        "base_path",
    ):
        _pinned(f"AbstractAPI.{name}", hasattr(api, name))
    _pinned("AbstractAPI.specification['paths']", "/orders" in api.specification["paths"])
    _pinned("FlaskApi.blueprint.name", isinstance(api.blueprint.name, str))
    _pinned("FlaskApi.options.openapi_spec_path", api.options.openapi_spec_path == "/openapi.json")


def test_connexion_names_endpoints_after_operation_ids():
    """service_kit/http/app.py: the admit hook finds an operation's record by the Flask
    endpoint Connexion gives it, `<blueprint>.<operationId>`."""
    app = FlaskApp(__name__, specification_dir=str(SPEC_DIR))
    added = app.add_api(
        "order.yaml",
        resolver=Resolver(function_resolver=lambda _operation_id: lambda **_arguments: None),
    )
    endpoints = {rule.endpoint for rule in app.app.url_map.iter_rules()}
    _pinned(
        "Connexion's endpoint name `<blueprint>.<operationId>`",
        {f"{added.blueprint.name}.create_order", f"{added.blueprint.name}.get_order"} <= endpoints,
    )


def test_connexion_routes_integers_through_werkzeugs_int_converter():
    """service_kit/http/app.py replaces the Flask app's `int` converter (through the public
    `url_map.converters`) so that a malformed id reaches validation (400), not a 404: that
    works only while Connexion routes integer path parameters through `int`."""
    _pinned(
        "connexion.apis.flask_utils.PATH_PARAMETER_CONVERTERS['integer'] == 'int'",
        flask_utils.PATH_PARAMETER_CONVERTERS.get("integer") == "int",
    )
    app = FlaskApp(__name__, specification_dir=str(SPEC_DIR))
    app.add_api(
        "order.yaml",
        resolver=Resolver(function_resolver=lambda _operation_id: lambda **_arguments: None),
    )
    _pinned(
        "GET /orders/{id} routed as /orders/<int:id>",
        "/orders/<int:id>" in {rule.rule for rule in app.app.url_map.iter_rules()},
    )


def test_connexion_validator_hooks():
    """service_kit/http/request_validation.py overrides these methods of the validators
    `validator_map` takes (the map is documented, the methods are not)."""
    _pinned(
        "RequestBodyValidator.__init__(schema, consumes, api, is_null_value_valid, ...)",
        _parameters(RequestBodyValidator.__init__)[:5]
        == ["self", "schema", "consumes", "api", "is_null_value_valid"],
    )
    _pinned(
        "RequestBodyValidator.validate_schema(data, url)",
        _parameters(RequestBodyValidator.validate_schema) == ["self", "data", "url"],
    )
    _pinned(
        "RequestBodyValidator.__call__(function)",
        _parameters(RequestBodyValidator.__call__) == ["self", "function"],
    )
    _pinned(
        "ParameterValidator.validate_parameter(parameter_type, value, param, param_name)",
        isinstance(inspect.getattr_static(ParameterValidator, "validate_parameter"), staticmethod)
        and _parameters(ParameterValidator.validate_parameter)
        == ["parameter_type", "value", "param", "param_name"],
    )
    _pinned(
        "TypeValidationError(schema_type, parameter_type, parameter_name)",
        "integer" in str(TypeValidationError("integer", "path", "id")),
    )


def test_gunicorn_logger_atoms():
    """service_kit/process/gunicorn_settings.py: `ServiceLogger` escapes the values of
    `Logger.atoms` (undocumented; the `logger_class` setting is) and reads `Logger.cfg`."""
    _pinned(
        "gunicorn.glogging.Logger.atoms(resp, req, environ, request_time)",
        _parameters(Logger.atoms) == ["self", "resp", "req", "environ", "request_time"],
    )
    _pinned(
        "gunicorn.glogging.Logger.access(resp, req, environ, request_time)",
        _parameters(Logger.access) == ["self", "resp", "req", "environ", "request_time"],
    )
    logger = Logger(Config())
    _pinned("gunicorn.glogging.Logger.cfg.accesslog", logger.cfg.accesslog is None)


@pytest.fixture
def blocking_connection(rabbitmq_url: str) -> Iterator[pika.BlockingConnection]:
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    try:
        yield connection
    finally:
        connection.close()


def test_pika_blocking_adapters_underlying_objects(blocking_connection):
    """service_kit/messaging/amqp.py publishes a batch through the blocking channel's underlying
    `Channel.basic_publish` and gathers its frames by shadowing the underlying connection's
    `_adapter_emit_data`, so that a batch is one write, not three per message."""
    channel = blocking_connection.channel()
    _pinned(
        "BlockingChannel._impl is a pika.channel.Channel",
        isinstance(getattr(channel, "_impl", None), pika.channel.Channel),
    )
    _pinned(
        "Channel.basic_publish(exchange, routing_key, body, properties, mandatory)",
        _parameters(pika.channel.Channel.basic_publish)
        == ["self", "exchange", "routing_key", "body", "properties", "mandatory"],
    )
    impl = getattr(blocking_connection, "_impl", None)
    _pinned(
        "BlockingConnection._impl is a pika.connection.Connection",
        isinstance(impl, pika.connection.Connection),
    )
    _pinned(
        "Connection._adapter_emit_data(data) as a method (shadowed per instance)",
        "_adapter_emit_data" not in vars(impl)
        and _parameters(type(impl)._adapter_emit_data) == ["self", "data"],
    )
