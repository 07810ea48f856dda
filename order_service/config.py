"""order-service configuration: ORDER_* variables, and PRODUCT_SERVICE_URL to check products."""

import os
from collections.abc import Mapping

from service_kit.config import ServiceConfig, load_service_config


def load_config(env: Mapping[str, str] = os.environ) -> ServiceConfig:
    return load_service_config(
        env,
        service="order",
        default_port=4000,
        peer="product",
        peer_default_port=3000,
        peer_default_timeout_ms=2000,
    )
