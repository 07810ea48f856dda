"""Contains all the data models used in inputs/outputs"""

from .health import Health
from .health_checks import HealthChecks
from .health_status import HealthStatus
from .order import Order
from .order_input import OrderInput
from .order_page import OrderPage
from .order_status import OrderStatus
from .problem import Problem

__all__ = (
    "Health",
    "HealthChecks",
    "HealthStatus",
    "Order",
    "OrderInput",
    "OrderPage",
    "OrderStatus",
    "Problem",
)
