from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

T = TypeVar("T", bound="StockAdjustment")


@_attrs_define
class StockAdjustment:
    """
    Attributes:
        delta (Any): units added (positive) or taken (negative); the stock never goes below 0 Example: 10.
        reason (str):  Example: restock from supplier.
    """

    delta: Any
    reason: str

    def to_dict(self) -> dict[str, Any]:
        delta: Any
        delta = self.delta

        reason = self.reason

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "delta": delta,
                "reason": reason,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)

        def _parse_delta(data: object) -> Any:
            return cast(Any, data)

        delta = _parse_delta(d.pop("delta"))

        reason = d.pop("reason")

        stock_adjustment = cls(
            delta=delta,
            reason=reason,
        )

        return stock_adjustment
