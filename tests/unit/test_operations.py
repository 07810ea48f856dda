"""The operation records both request paths read (service_kit/http/operations.py): compiled from
the spec once, and a start-up that refuses an operation whose security is not written down."""

import copy
from typing import Any

import pytest
import yaml

from order_service.api import OrderApi
from product_service.api import ProductApi
from service_kit.errors import Forbidden, Unauthenticated
from service_kit.http.app import SPEC_DIR
from service_kit.http.caller import Caller
from service_kit.http.operations import (
    ADMITTED,
    OperationsError,
    compile_operations,
    plain_integer,
    scopes_by_operation,
)


def _spec(name: str) -> dict[str, Any]:
    return yaml.safe_load((SPEC_DIR / f"{name}.yaml").read_text())


def _handlers(api: type) -> object:
    # The records need the handlers' signatures only: no use case runs here.
    return api.__new__(api)


def test_the_records_say_what_the_spec_says():
    records = compile_operations(_spec("product"), _handlers(ProductApi))
    update = records["update_product"]
    assert (update.method, update.path, update.scopes) == (
        "PUT",
        "/products/{id}",
        frozenset({"products:write"}),
    )
    assert [(h.argument, h.header, h.environ_key) for h in update.headers] == [
        ("if_match", "If-Match", "HTTP_IF_MATCH")
    ]
    assert update.path_integers == ("id",)
    assert update.consumes == ("application/json",)
    assert update.label == "update_product"
    assert records["get_product"].scopes is None  # security: [] in the spec
    assert records["get_product"].headers == ()  # If-None-Match: the edge's, not the handler's
    assert records["metrics"].produces == "text/plain"
    orders = compile_operations(_spec("order"), _handlers(OrderApi))
    assert [h.argument for h in orders["create_order"].headers] == ["idempotency_key"]
    assert orders["get_order"].wants_caller and not orders["health"].wants_caller


@pytest.mark.parametrize("where", ["operation", "spec"])
def test_an_operation_without_security_stops_the_start(where):
    spec = _spec("order")
    del spec["paths"]["/orders/{id}"]["get"]["security"]
    if where == "spec":  # a global default is a declaration: it covers the operation
        spec["security"] = [{"bearer": ["orders:read"]}]
        assert scopes_by_operation(spec)["get_order"] == {"orders:read"}
        return
    with pytest.raises(OperationsError, match=r"get_order: the spec declares no `security`"):
        compile_operations(spec, _handlers(OrderApi))


def test_public_is_written_down():
    spec = copy.deepcopy(_spec("order"))
    spec["paths"]["/orders/{id}"]["get"]["security"] = []
    assert scopes_by_operation(spec)["get_order"] is None
    del spec["paths"]["/orders/{id}"]["get"]["security"]
    spec["security"] = []
    assert scopes_by_operation(spec)["get_order"] is None


def test_an_operation_without_a_handler_stops_the_start():
    with pytest.raises(OperationsError, match="create_order: ProductApi has no handler"):
        compile_operations(_spec("order"), _handlers(ProductApi))


class _Verifier:
    """Stands for the token verifier: names a caller by the Authorization header's value."""

    def __init__(self) -> None:
        self.calls = 0

    def caller(self, authorization: str | None) -> Caller:
        self.calls += 1
        if not authorization:
            raise Unauthenticated("no token", token_given=False)
        return Caller(subject="someone", scopes=frozenset(authorization.split()))


def test_admit_authenticates_then_checks_the_scope_once_per_request():
    record = compile_operations(_spec("order"), _handlers(OrderApi))["create_order"]
    verifier = _Verifier()
    with pytest.raises(Unauthenticated):
        record.admit({}, verifier)  # type: ignore[arg-type]
    with pytest.raises(Forbidden):
        record.admit({"HTTP_AUTHORIZATION": "orders:read"}, verifier)  # type: ignore[arg-type]
    environ = {"HTTP_AUTHORIZATION": "orders:write"}
    caller = record.admit(environ, verifier)  # type: ignore[arg-type]
    assert environ[ADMITTED] == (record, caller)
    calls = verifier.calls
    assert record.admit(environ, verifier) is caller  # type: ignore[arg-type]
    assert verifier.calls == calls  # the pipeline after the fast path: admitted once


@pytest.mark.parametrize(
    ("text", "value"),
    [("7", 7), ("007", 7), ("-3", -3), ("1_0", None), ("+1", None), (" 1", None), ("١", None)],
)
def test_plain_integers_only(text, value):
    assert plain_integer(text) == value
