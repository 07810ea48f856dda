"""product-service as seen by order-service, through the client generated from
openapi/product.yaml."""

import decimal

import httpx

from order_service.generated_product_client import Client
from order_service.generated_product_client.api.products import get_product
from order_service.service import ProductSnapshot
from service_kit import exact_json
from service_kit.http.outgoing import call_peer, client_settings, peer_failed


class HttpProductCatalog:
    def __init__(
        self, base_url: str, timeout_s: float, transport: httpx.BaseTransport | None = None
    ) -> None:
        # `transport` lets tests call the real peer app in-process (httpx.WSGITransport).
        self._client = Client(**client_settings(base_url, timeout_s, transport))

    def lookup(self, product_id: int) -> ProductSnapshot | None:
        response = call_peer(
            "product-service", lambda: get_product.sync_detailed(product_id, client=self._client)
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise peer_failed("product-service", response.status_code)
        # Re-read the body exactly (the generated model holds money as float).
        product = exact_json.loads(response.content)
        return ProductSnapshot(
            price=decimal.Decimal(product["price"]), qty=product["qty"], version=product["version"]
        )
