"""product-service configuration: PRODUCT_* variables, and ORDER_SERVICE_URL for the BFF."""

import os
from collections.abc import Mapping

from service_kit.config import ServiceConfig, load_service_config


def load_config(env: Mapping[str, str] = os.environ) -> ServiceConfig:
    return load_service_config(
        env,
        service="product",
        default_port=3000,
        peer="order",
        peer_default_port=4000,
        peer_default_timeout_ms=1000,  # the BFF answers without orders rather than wait long
    )
