"""HTTP handlers of openapi/product.yaml, one per operationId: HTTP in and out only."""

from typing import Any

from product_service.service import ProductService
from service_kit import health as health_checks
from service_kit.web import component, created, no_content


def _products() -> ProductService:
    return component("products")


def create_product(body: dict[str, Any]) -> Any:
    product = _products().create(**body)
    return created(product, f"/products/{product['id']}")


def list_products(limit: int, after: int) -> Any:
    return _products().list_page(after=after, limit=limit)


def get_product(id: int) -> Any:  # noqa: A002 - the contract names the path parameter `id`
    return _products().get(id)


def update_product(id: int, body: dict[str, Any]) -> Any:  # noqa: A002
    return _products().update(id, **body)


def delete_product(id: int) -> Any:  # noqa: A002
    _products().delete(id)
    return no_content()


def get_product_with_orders(id: int, limit: int) -> Any:  # noqa: A002
    return _products().with_orders(id, limit=limit)


def health() -> Any:
    return health_checks.alive()


def ready() -> Any:
    return health_checks.readiness(component("readiness_checks"))
