"""The Connexion app of openapi/product.yaml: the use cases `bootstrap` wires, bound to their
handlers."""

import connexion
import flask

from product_service.api import FAST_OPERATIONS, ProductApi
from product_service.bootstrap import bootstrap
from product_service.config import load_config
from product_service.service import OrdersSource
from service_kit.config import ServiceConfig, exit_on_config_error
from service_kit.http.app import create_service_app
from service_kit.telemetry import tracing


def create_app(
    config: ServiceConfig | None = None,
    *,
    orders: OrdersSource | None = None,
    fast_path: bool = True,
) -> connexion.FlaskApp:
    """`fast_path=False` serves every request through Connexion's pipeline (tests compare)."""
    config = config or load_config()
    service, infrastructure = bootstrap(config, orders=orders)
    return create_service_app(
        import_name=__name__,
        spec_file="product.yaml",
        handlers=ProductApi(
            service,
            infrastructure.readiness(),
            metrics_on_api_port=config.metrics_port == 0,
        ),
        auth_settings=config.auth,
        rate_limit_settings=config.rate_limits,
        fast_operations=FAST_OPERATIONS if fast_path else (),
        validate_responses=config.validate_responses,
    )


def create_wsgi_app() -> flask.Flask:
    """gunicorn entry point: `product_service.app:create_wsgi_app()`, in each worker process."""
    tracing.configure("product-service")
    return create_app(exit_on_config_error(load_config)).app
