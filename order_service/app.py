"""The Connexion app of openapi/order.yaml, wired by `bootstrap`."""

import connexion
import flask

from order_service.bootstrap import bootstrap
from order_service.config import OrderConfig, load_config
from order_service.service import ProductCatalog
from service_kit.config import exit_on_config_error
from service_kit.web import create_service_app


def create_app(
    config: OrderConfig | None = None, *, product_source: ProductCatalog | None = None
) -> connexion.FlaskApp:
    config = config or load_config()
    service, infrastructure = bootstrap(config, product_source=product_source)
    return create_service_app(
        import_name=__name__,
        spec_file="order.yaml",
        handlers_module="order_service.api",
        components={"orders": service},
        readiness_checks=infrastructure.readiness_checks(),
        validate_responses=config.validate_responses,
    )


def create_wsgi_app() -> flask.Flask:
    """gunicorn entry point: `order_service.app:create_wsgi_app()`."""
    return create_app(exit_on_config_error(load_config)).app
