from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

if TYPE_CHECKING:
    from ..models.product import Product
    from ..models.product_with_orders_orders import ProductWithOrdersOrders


T = TypeVar("T", bound="ProductWithOrders")


@_attrs_define
class ProductWithOrders:
    """
    Attributes:
        product (Product):
        orders (ProductWithOrdersOrders):
    """

    product: Product
    orders: ProductWithOrdersOrders

    def to_dict(self) -> dict[str, Any]:
        product = self.product.to_dict()

        orders = self.orders.to_dict()

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "product": product,
                "orders": orders,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.product import Product  # noqa: PLC0415
        from ..models.product_with_orders_orders import ProductWithOrdersOrders  # noqa: PLC0415

        d = dict(src_dict)
        product = Product.from_dict(d.pop("product"))

        orders = ProductWithOrdersOrders.from_dict(d.pop("orders"))

        product_with_orders = cls(
            product=product,
            orders=orders,
        )

        return product_with_orders
