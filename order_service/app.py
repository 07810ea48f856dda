"""Wiring: configuration → adapters → use cases → the Connexion app of openapi/order.yaml."""

import connexion
import flask

from order_service.config import load_config
from order_service.product_gateway import HttpProductCatalog
from order_service.repository import SqlOrderRepository
from order_service.service import OrderService, ProductCatalog
from service_kit.config import ServiceConfig, exit_on_config_error
from service_kit.db import create_engine_for, ping
from service_kit.web import create_connexion_app


def create_app(
    config: ServiceConfig | None = None, *, catalog: ProductCatalog | None = None
) -> connexion.FlaskApp:
    config = config or load_config()
    engine = create_engine_for(config.database_url, pool_size=config.db_pool_size)
    app = create_connexion_app(
        import_name=__name__,
        spec_file="order.yaml",
        handlers_module="order_service.api",
        validate_responses=config.validate_responses,
    )
    catalog = catalog or HttpProductCatalog(config.peer_url, config.peer_timeout_s)
    app.app.extensions["orders"] = OrderService(SqlOrderRepository(engine), catalog)
    app.app.extensions["readiness_checks"] = {"database": lambda: ping(engine)}
    return app


def create_wsgi_app() -> flask.Flask:
    """gunicorn entry point: `order_service.app:create_wsgi_app()`."""
    return create_app(exit_on_config_error(load_config)).app
