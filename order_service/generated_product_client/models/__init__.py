"""Contains all the data models used in inputs/outputs"""

from .health import Health
from .health_checks import HealthChecks
from .health_status import HealthStatus
from .order import Order
from .order_status import OrderStatus
from .problem import Problem
from .product import Product
from .product_input import ProductInput
from .product_page import ProductPage
from .product_with_orders import ProductWithOrders
from .product_with_orders_orders import ProductWithOrdersOrders
from .stock_adjustment import StockAdjustment

__all__ = (
    "Health",
    "HealthChecks",
    "HealthStatus",
    "Order",
    "OrderStatus",
    "Problem",
    "Product",
    "ProductInput",
    "ProductPage",
    "ProductWithOrders",
    "ProductWithOrdersOrders",
    "StockAdjustment",
)
