"""Wiring: configuration → adapters → use cases → the Connexion app of openapi/product.yaml."""

import connexion
import flask

from product_service.config import load_config
from product_service.order_gateway import HttpOrdersSource
from product_service.repository import SqlProductRepository
from product_service.service import OrdersSource, ProductService
from service_kit.config import ServiceConfig, exit_on_config_error
from service_kit.web import create_service_app


def create_app(
    config: ServiceConfig | None = None, *, orders: OrdersSource | None = None
) -> connexion.FlaskApp:
    config = config or load_config()
    app, engine = create_service_app(
        config,
        import_name=__name__,
        spec_file="product.yaml",
        handlers_module="product_service.api",
    )
    orders = orders or HttpOrdersSource(config.peer_url, config.peer_timeout_s)
    app.app.extensions["products"] = ProductService(SqlProductRepository(engine), orders)
    return app


def create_wsgi_app() -> flask.Flask:
    """gunicorn entry point: `product_service.app:create_wsgi_app()`."""
    return create_app(exit_on_config_error(load_config)).app
