"""Every operation the specs secure, on the fast path and on Connexion's pipeline: no token →
401, a token without the operation's scope → 403, with it → served; the public operations stay
public; the BFF forwards its caller's token to order-service."""

import logging
from typing import Any

import pytest
import yaml

from devstack.throwaway import bearer
from service_kit.http import auth
from service_kit.http.app import SPEC_DIR
from service_kit.http.operations import scopes_by_operation
from tests.helpers import assert_problem
from tests.integration.stack import build_stack, new_product

NO_TOKEN = {"Authorization": ""}


def operations() -> list[tuple[str, str, str, dict[str, Any], frozenset[str] | None]]:
    """(service, method, path, operation, its scopes) of every operation of both specs."""
    found = []
    for service in ("product", "order"):
        spec = yaml.safe_load((SPEC_DIR / f"{service}.yaml").read_text())
        scopes = scopes_by_operation(spec)
        for path, methods in spec["paths"].items():
            for method, operation in methods.items():
                if isinstance(operation, dict) and "operationId" in operation:
                    found.append(
                        (service, method, path, operation, scopes[operation["operationId"]])
                    )
    return found


SECURED = [o for o in operations() if o[4] is not None]
PUBLIC = [o for o in operations() if o[4] is None]


@pytest.fixture(params=[True, False], ids=["fast-path", "pipeline"])
def stack(service_env, request):
    return build_stack(service_env, fast_path=request.param)


def _request(stack, service: str, method: str, path: str, operation: dict, headers: dict) -> Any:
    """The operation's example request, on a product and an order that exist."""
    product = new_product(stack.product.test_client(), price=10, qty=50)
    order = stack.order.test_client().post("/orders", json={"productId": product["id"], "qty": 1})
    ids = {"product": product["id"], "order": order.get_json()["id"]}
    url = path.replace("{productId}", str(product["id"])).replace("{id}", str(ids[service]))
    body = None
    if "requestBody" in operation:
        body = dict(operation["requestBody"]["content"]["application/json"]["example"])
        body.update({"productId": product["id"]} if "productId" in body else {})
    if method == "put":
        headers = {**headers, "If-Match": "*"}
    client = getattr(stack, service).test_client()
    return client.open(url, method=method.upper(), json=body, headers=headers)


@pytest.mark.parametrize(
    ("service", "method", "path", "operation", "scopes"),
    SECURED,
    ids=[o[3]["operationId"] for o in SECURED],
)
def test_a_secured_operation_needs_a_token_with_its_scopes(
    stack, service_env, service, method, path, operation, scopes
):
    without = _request(stack, service, method, path, operation, NO_TOKEN)
    assert_problem(without, 401)
    assert without.headers["WWW-Authenticate"].startswith('Bearer realm="order-product"')

    garbage = _request(stack, service, method, path, operation, {"Authorization": "Bearer x.y.z"})
    assert_problem(garbage, 401)
    assert 'error="invalid_token"' in garbage.headers["WWW-Authenticate"]

    others = sorted({"orders:read", "orders:write", "products:write"} - scopes)
    wrong_scope = _request(stack, service, method, path, operation, bearer(service_env, others))
    assert_problem(wrong_scope, 403)
    assert 'error="insufficient_scope"' in wrong_scope.headers["WWW-Authenticate"]

    right = _request(stack, service, method, path, operation, bearer(service_env, sorted(scopes)))
    assert 200 <= right.status_code < 300, right.get_data(as_text=True)


@pytest.mark.parametrize(
    ("service", "method", "path", "operation", "scopes"),
    PUBLIC,
    ids=[o[3]["operationId"] for o in PUBLIC],
)
def test_a_public_operation_needs_no_token(stack, service, method, path, operation, scopes):
    assert _request(stack, service, method, path, operation, NO_TOKEN).status_code == 200


@pytest.mark.parametrize(
    ("service", "path", "scope"),
    [
        ("order", "/orders", "orders:read"),  # create_order: a fast-path operation
        ("product", "/products", "orders:read"),  # create_product: the pipeline's only
        ("product", "/products/{id}/stock-adjustments", "orders:write"),
    ],
)
@pytest.mark.parametrize("body", [{"qty": "many"}, "{", None], ids=["invalid", "broken", "none"])
def test_scope_is_checked_before_the_body(stack, service_env, service, path, scope, body):
    """Authentication, then scope, then validation, on both paths: a token without the
    operation's scope gets 403 whatever its body, and no token 401."""
    product = new_product(stack.product.test_client(), price=10, qty=5)
    client = getattr(stack, service).test_client()
    url = path.replace("{id}", str(product["id"]))
    options = {"json": body} if isinstance(body, dict) else {"data": body}
    options["content_type"] = "application/json"
    under_scoped = client.post(url, headers=bearer(service_env, [scope]), **options)
    assert_problem(under_scoped, 403)
    assert_problem(client.post(url, headers=NO_TOKEN, **options), 401)
    # With its scope, the same body is the validation's 400.
    if body is not None:
        rightly_scoped = client.post(url, headers=bearer(service_env, None), **options)
        assert_problem(rightly_scoped, 400)


@pytest.mark.parametrize(
    ("body", "status"),
    [({"qty": 1}, 201), ({"qty": 0}, 400)],
    ids=["served", "handed-to-the-pipeline"],
)
def test_authorize_runs_once_per_request(stack, service_env, monkeypatch, body, status):
    """Once on either path, also when the fast path admits a request and hands it on."""
    product = new_product(stack.product.test_client(), price=10, qty=5)
    calls = []
    authorize = auth.authorize
    monkeypatch.setattr(auth, "authorize", lambda *args: calls.append(args) or authorize(*args))
    answer = stack.order.test_client().post(
        "/orders", json={"productId": product["id"], **body}, headers=bearer(service_env)
    )
    assert answer.status_code == status
    assert len(calls) == 1


def test_options_stays_flasks_and_needs_no_token(stack):
    answer = stack.order.test_client().options("/orders", headers=NO_TOKEN)
    assert answer.status_code == 200
    assert {"POST", "OPTIONS"} <= set(answer.headers["Allow"].split(", "))


def test_the_specs_secure_every_write_and_every_order_read():
    secured = {o[3]["operationId"]: o[4] for o in SECURED}
    assert secured == {
        "create_product": {"products:write"},
        "update_product": {"products:write"},
        "delete_product": {"products:write"},
        "adjust_stock": {"products:write"},
        "get_product_with_orders": {"orders:read"},
        "create_order": {"orders:write"},
        "get_order": {"orders:read"},
        "list_orders_by_product": {"orders:read"},
    }


def test_the_bff_forwards_its_callers_token(stack, service_env):
    product = new_product(stack.product.test_client(), price=10, qty=5)
    stack.order.test_client().post("/orders", json={"productId": product["id"], "qty": 1})
    answer = stack.product.test_client().get(
        f"/products/{product['id']}/with-orders", headers=bearer(service_env, ["orders:read"])
    )
    assert answer.status_code == 200
    assert answer.get_json()["orders"]["available"] is True  # order-service accepted the token
    assert len(answer.get_json()["orders"]["items"]) == 1


def test_no_token_reaches_the_logs(stack, service_env, caplog):
    caplog.set_level(logging.DEBUG)
    token = bearer(service_env)["Authorization"].removeprefix("Bearer ")
    product = new_product(stack.product.test_client(), price=10, qty=5)
    stack.product.test_client().get(
        f"/products/{product['id']}/with-orders", headers={"Authorization": f"Bearer {token}"}
    )
    stack.order.test_client().get("/orders/1", headers={"Authorization": f"Bearer {token}x"})
    assert token not in caplog.text
