from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

from ..models.order_status import OrderStatus

T = TypeVar("T", bound="Order")


@_attrs_define
class Order:
    """
    Attributes:
        id (int):  Example: 1.
        product_id (int):  Example: 1.
        qty (int):  Example: 2.
        total_price (float): price × qty at the time of ordering, exact to the cent; always written with two decimals
            (3000.00), on every operation Example: 3000.
        status (OrderStatus):  Example: PENDING.
        created_at (datetime.datetime):  Example: 2026-11-21T10:00:00.000000Z.
    """

    id: int
    product_id: int
    qty: int
    total_price: float
    status: OrderStatus
    created_at: datetime.datetime

    def to_dict(self) -> dict[str, Any]:
        id = self.id

        product_id = self.product_id

        qty = self.qty

        total_price = self.total_price

        status = self.status.value

        created_at = self.created_at.isoformat()

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "id": id,
                "productId": product_id,
                "qty": qty,
                "totalPrice": total_price,
                "status": status,
                "createdAt": created_at,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        id = d.pop("id")

        product_id = d.pop("productId")

        qty = d.pop("qty")

        total_price = d.pop("totalPrice")

        status = OrderStatus(d.pop("status"))

        created_at = datetime.datetime.fromisoformat(d.pop("createdAt"))

        order = cls(
            id=id,
            product_id=product_id,
            qty=qty,
            total_price=total_price,
            status=status,
            created_at=created_at,
        )

        return order
