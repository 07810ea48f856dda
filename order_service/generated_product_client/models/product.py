from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="Product")


@_attrs_define
class Product:
    """
    Attributes:
        id (int):  Example: 1.
        name (str):  Example: Laptop Demo.
        price (float): Unit price, always written with two decimals (1500.00), on every operation. Example: 1500.0.
        qty (int):  Example: 50.
        version (int): grows with every change of the product, its stock included; the ETag is "<version>" Example: 1.
        created_at (datetime.datetime):  Example: 2026-11-21T10:00:00.000000Z.
        updated_at (datetime.datetime):  Example: 2026-11-21T10:00:00.000000Z.
    """

    id: int
    name: str
    price: float
    qty: int
    version: int
    created_at: datetime.datetime
    updated_at: datetime.datetime

    def to_dict(self) -> dict[str, Any]:
        id = self.id

        name = self.name

        price = self.price

        qty = self.qty

        version = self.version

        created_at = self.created_at.isoformat()

        updated_at = self.updated_at.isoformat()

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "id": id,
                "name": name,
                "price": price,
                "qty": qty,
                "version": version,
                "createdAt": created_at,
                "updatedAt": updated_at,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        id = d.pop("id")

        name = d.pop("name")

        price = d.pop("price")

        qty = d.pop("qty")

        version = d.pop("version")

        created_at = datetime.datetime.fromisoformat(d.pop("createdAt"))

        updated_at = datetime.datetime.fromisoformat(d.pop("updatedAt"))

        product = cls(
            id=id,
            name=name,
            price=price,
            qty=qty,
            version=version,
            created_at=created_at,
            updated_at=updated_at,
        )

        return product
