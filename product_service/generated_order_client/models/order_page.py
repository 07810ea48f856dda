from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

if TYPE_CHECKING:
    from ..models.order import Order


T = TypeVar("T", bound="OrderPage")


@_attrs_define
class OrderPage:
    """
    Attributes:
        items (list[Order]):
        next_before (int | None): Pass as `before` to get the next (older) page; null on the last page.
    """

    items: list[Order]
    next_before: int | None

    def to_dict(self) -> dict[str, Any]:
        items = []
        for items_item_data in self.items:
            items_item = items_item_data.to_dict()
            items.append(items_item)

        next_before: int | None
        next_before = self.next_before

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "items": items,
                "nextBefore": next_before,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.order import Order  # noqa: PLC0415

        d = dict(src_dict)
        items = []
        _items = d.pop("items")
        for items_item_data in _items:
            items_item = Order.from_dict(items_item_data)

            items.append(items_item)

        def _parse_next_before(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        next_before = _parse_next_before(d.pop("nextBefore"))

        order_page = cls(
            items=items,
            next_before=next_before,
        )

        return order_page
