"""Small helpers the tests share."""

from typing import Any

from service_kit.messaging.events import Event, new_event, read_message

PROBLEM = "application/problem+json"


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    """The response is a problem+json with the uniform fields and the echoed request id."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.headers["Content-Type"].startswith(PROBLEM)
    body = response.get_json(force=True)
    assert body["status"] == status
    assert body["title"] and body["type"] and isinstance(body["detail"], str)
    assert body["requestId"] == response.headers["X-Request-ID"]
    return body


def order_created(order_id: int, product_id: int, qty: int) -> Event:
    """An order.created event as order-service publishes it (price 1 per unit)."""
    return new_event(
        "order.created",
        {
            "id": order_id,
            "productId": product_id,
            "qty": qty,
            "totalPrice": qty,
            "status": "PENDING",
            "createdAt": "2026-11-21T10:00:00Z",
        },
    )


def parse_event(body: bytes, routing_key: str) -> Event:
    """The one event a message body (or an outbox row's body) holds."""
    events, poison = read_message(body, routing_key)
    assert not poison and len(events) == 1, poison
    return events[0]


class Machine:
    """/proc/stat's two figures, advanced by hand: `share` of the CPUs busy at normal priority
    for each tick of the clock."""

    def __init__(self) -> None:
        self.now, self.busy, self.total = 0.0, 0.0, 0.0

    def read(self) -> tuple[float, float]:
        return self.busy, self.total

    def clock(self) -> float:
        return self.now

    def run(self, seconds: float, share: float) -> None:
        self.now += seconds
        self.total += seconds * 200  # two CPUs at 100 ticks a second
        self.busy += seconds * 200 * share
