"""Both services' real Flask apps in one process, calling each other through the generated
clients over httpx's WSGI transport (no sockets): the full request path, spec-validated
responses included, on the database backend a test chooses."""

from dataclasses import dataclass
from typing import Any

import flask
import httpx
from flask.testing import FlaskClient

from devstack.throwaway import bearer
from order_service.app import create_app as create_order_app
from order_service.config import load_config as load_order_config
from order_service.product_gateway import HttpProductCatalog
from product_service.app import create_app as create_product_app
from product_service.config import load_config as load_product_config
from product_service.order_gateway import HttpOrdersSource

UNREACHABLE = "http://127.0.0.1:9"  # discard port: nothing listens there


@dataclass
class Stack:
    product: flask.Flask
    order: flask.Flask


def build_stack(
    service_env: dict[str, str],
    *,
    order_service_up: bool = True,
    product_service_up: bool = True,
    fast_path: bool = True,
) -> Stack:
    apps: dict[str, flask.Flask] = {}

    def peer(name: str) -> httpx.WSGITransport:
        return httpx.WSGITransport(app=lambda environ, start: apps[name](environ, start))

    env = {**service_env, "PRODUCT_VALIDATE_RESPONSES": "1", "ORDER_VALIDATE_RESPONSES": "1"}
    product_config, order_config = load_product_config(env), load_order_config(env)
    orders = (
        HttpOrdersSource("http://order-service", 2.0, transport=peer("order"))
        if order_service_up
        else HttpOrdersSource(UNREACHABLE, 0.5)
    )
    catalog = (
        HttpProductCatalog("http://product-service", 2.0, transport=peer("product"))
        if product_service_up
        else HttpProductCatalog(UNREACHABLE, 0.5)
    )
    apps["product"] = create_product_app(product_config, orders=orders, fast_path=fast_path).app
    apps["order"] = create_order_app(order_config, product_source=catalog, fast_path=fast_path).app
    authorization = bearer(env)["Authorization"]
    for app in apps.values():
        app.test_client_class = _authorized_client(authorization)
    return Stack(product=apps["product"], order=apps["order"])


def _authorized_client(authorization: str) -> type[FlaskClient]:
    """Test clients that send a token with every scope, as a user of the API would (a test
    that needs another sends its own Authorization header, "" for none)."""

    class AuthorizedClient(FlaskClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.environ_base["HTTP_AUTHORIZATION"] = authorization

    return AuthorizedClient


def new_product(client: Any, **overrides: Any) -> dict[str, Any]:
    body = {"name": "Laptop Demo", "price": 1500, "qty": 50, **overrides}
    response = client.post("/products", json=body)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()
