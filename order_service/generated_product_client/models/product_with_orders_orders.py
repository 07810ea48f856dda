from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.order import Order


T = TypeVar("T", bound="ProductWithOrdersOrders")


@_attrs_define
class ProductWithOrdersOrders:
    """
    Attributes:
        available (bool): False when order-service could not be asked; `items` is then empty.
        items (list[Order]):
        detail (str | Unset): Why the orders are unavailable.
    """

    available: bool
    items: list[Order]
    detail: str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        available = self.available

        items = []
        for items_item_data in self.items:
            items_item = items_item_data.to_dict()
            items.append(items_item)

        detail = self.detail

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "available": available,
                "items": items,
            }
        )
        if detail is not UNSET:
            field_dict["detail"] = detail

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.order import Order  # noqa: PLC0415

        d = dict(src_dict)
        available = d.pop("available")

        items = []
        _items = d.pop("items")
        for items_item_data in _items:
            items_item = Order.from_dict(items_item_data)

            items.append(items_item)

        detail = d.pop("detail", UNSET)

        product_with_orders_orders = cls(
            available=available,
            items=items,
            detail=detail,
        )

        return product_with_orders_orders
