from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="OrderInput")


@_attrs_define
class OrderInput:
    """
    Attributes:
        product_id (int):  Example: 1.
        qty (int):  Example: 2.
    """

    product_id: int
    qty: int

    def to_dict(self) -> dict[str, Any]:
        product_id = self.product_id

        qty = self.qty

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "productId": product_id,
                "qty": qty,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        product_id = d.pop("productId")

        qty = d.pop("qty")

        order_input = cls(
            product_id=product_id,
            qty=qty,
        )

        return order_input
