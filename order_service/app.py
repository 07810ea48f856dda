"""The Connexion app of openapi/order.yaml: the use cases `bootstrap` wires, bound to their
handlers."""

import connexion
import flask

from order_service.api import FAST_OPERATIONS, OrderApi
from order_service.bootstrap import bootstrap
from order_service.config import OrderConfig, load_config
from order_service.service import ProductCatalog
from service_kit.config import exit_on_config_error
from service_kit.http.app import create_service_app
from service_kit.telemetry import tracing


def create_app(
    config: OrderConfig | None = None,
    *,
    product_source: ProductCatalog | None = None,
    fast_path: bool = True,
) -> connexion.FlaskApp:
    """`fast_path=False` serves every request through Connexion's pipeline (tests compare)."""
    config = config or load_config()
    service, infrastructure = bootstrap(config, product_source=product_source)
    return create_service_app(
        import_name=__name__,
        spec_file="order.yaml",
        handlers=OrderApi(
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
    """gunicorn entry point: `order_service.app:create_wsgi_app()`, in each worker process."""
    tracing.configure("order-service")
    return create_app(exit_on_config_error(load_config)).app
