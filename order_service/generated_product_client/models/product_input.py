from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="ProductInput")


@_attrs_define
class ProductInput:
    """
    Attributes:
        name (str): Display name; must contain a non-blank character. Example: Laptop Demo.
        price (float): Unit price, at most two fractional digits. Example: 1500.
        qty (int): Units in stock. Example: 50.
    """

    name: str
    price: float
    qty: int

    def to_dict(self) -> dict[str, Any]:
        name = self.name

        price = self.price

        qty = self.qty

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "name": name,
                "price": price,
                "qty": qty,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        name = d.pop("name")

        price = d.pop("price")

        qty = d.pop("qty")

        product_input = cls(
            name=name,
            price=price,
            qty=qty,
        )

        return product_input
