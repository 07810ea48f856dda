"""Wiring: configuration → adapters → use cases → the Connexion app of openapi/product.yaml."""

import connexion
import flask

from product_service.config import load_config
from product_service.order_gateway import HttpOrdersSource
from product_service.repository import SqlProductRepository
from product_service.service import OrdersSource, ProductService
from service_kit.config import ServiceConfig, exit_on_config_error
from service_kit.db import create_engine_for, ping
from service_kit.web import create_connexion_app


def create_app(
    config: ServiceConfig | None = None, *, orders: OrdersSource | None = None
) -> connexion.FlaskApp:
    config = config or load_config()
    engine = create_engine_for(config.database_url, pool_size=config.db_pool_size)
    app = create_connexion_app(
        import_name=__name__,
        spec_file="product.yaml",
        handlers_module="product_service.api",
        validate_responses=config.validate_responses,
    )
    orders = orders or HttpOrdersSource(config.peer_url, config.peer_timeout_s)
    app.app.extensions["products"] = ProductService(SqlProductRepository(engine), orders)
    app.app.extensions["readiness_checks"] = {"database": lambda: ping(engine)}
    return app


def create_wsgi_app() -> flask.Flask:
    """gunicorn entry point: `product_service.app:create_wsgi_app()`."""
    return create_app(exit_on_config_error(load_config)).app
