"""Wiring: configuration → adapters → use cases → the Connexion app of openapi/order.yaml."""

import connexion
import flask

from order_service.config import load_config
from order_service.product_gateway import HttpProductCatalog
from order_service.repository import SqlOrderRepository
from order_service.service import OrderService, ProductCatalog
from service_kit.config import ServiceConfig, exit_on_config_error
from service_kit.web import create_service_app


def create_app(
    config: ServiceConfig | None = None, *, catalog: ProductCatalog | None = None
) -> connexion.FlaskApp:
    config = config or load_config()
    app, engine = create_service_app(
        config, import_name=__name__, spec_file="order.yaml", handlers_module="order_service.api"
    )
    catalog = catalog or HttpProductCatalog(config.peer_url, config.peer_timeout_s)
    app.app.extensions["orders"] = OrderService(SqlOrderRepository(engine), catalog)
    return app


def create_wsgi_app() -> flask.Flask:
    """gunicorn entry point: `order_service.app:create_wsgi_app()`."""
    return create_app(exit_on_config_error(load_config)).app
