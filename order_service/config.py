"""order-service configuration: ORDER_* variables, and PRODUCT_SERVICE_URL to check products."""

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

from service_kit.config import ServiceConfig, env_int, load_service_config


@dataclass(frozen=True)
class OrderConfig(ServiceConfig):
    price_fresh_s: float  # ORDER_PRICE_FRESH_MS: a known price is used without asking again
    price_stale_s: float  # ORDER_PRICE_STALE_S: after that, served while one refresh runs
    # ORDER_GROUP_COMMIT_INTERVAL_MS: under load, commits start at most this often
    group_commit_interval_s: float


def load_config(env: Mapping[str, str] = os.environ) -> OrderConfig:
    base = load_service_config(
        env,
        service="order",
        default_port=4000,
        peer="product",
        peer_default_port=3000,
        peer_default_timeout_ms=2000,
    )
    return OrderConfig(
        **{field.name: getattr(base, field.name) for field in fields(base)},  # not deep copies
        price_fresh_s=env_int(env, "ORDER_PRICE_FRESH_MS", 5000, minimum=0, maximum=600_000) / 1000,
        price_stale_s=env_int(env, "ORDER_PRICE_STALE_S", 300, minimum=0, maximum=86_400),
        group_commit_interval_s=env_int(
            env, "ORDER_GROUP_COMMIT_INTERVAL_MS", 12, minimum=0, maximum=1000
        )
        / 1000,
    )
