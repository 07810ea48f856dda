"""order-service as seen by product-service's BFF, through the client generated from
openapi/order.yaml."""

import httpx

from product_service.generated_order_client import Client
from product_service.generated_order_client.api.orders import list_orders_by_product
from product_service.service import Order
from service_kit import exact_json
from service_kit.http.outgoing import call_peer, client_settings, peer_failed


class HttpOrdersSource:
    def __init__(
        self, base_url: str, timeout_s: float, transport: httpx.BaseTransport | None = None
    ) -> None:
        # `transport` lets tests call the real peer app in-process (httpx.WSGITransport).
        self._client = Client(**client_settings(base_url, timeout_s, transport))

    def newest_of(self, product_id: int, limit: int) -> list[Order]:
        response = call_peer(
            "order-service",
            lambda: list_orders_by_product.sync_detailed(
                product_id, client=self._client, limit=limit
            ),
        )
        if response.status_code != 200:
            raise peer_failed("order-service", response.status_code)
        # Re-read the body exactly (the generated model holds money as float).
        return exact_json.loads(response.content)["items"]
