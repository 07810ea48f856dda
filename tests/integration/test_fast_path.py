"""The fast path (service_kit/http/fast_path.py) of POST /orders, GET /orders/{id} and
GET /products/{id}: well-formed requests skip Flask and Connexion's pipeline, every other
request takes it, both paths answer alike, and an operation declared for it that it cannot
serve fails the start."""

import flask
import pytest
from connexion.apis.flask_api import FlaskApi
from prometheus_client import REGISTRY

from order_service import app as order_app
from product_service import app as product_app
from service_kit.http.fast_path import FastPathUnsuitable
from service_kit.telemetry import metrics
from tests.helpers import assert_problem
from tests.integration.stack import build_stack, new_product

JSON = "application/json"


@pytest.fixture
def pipeline_requests(monkeypatch):
    """The requests that went through Connexion's pipeline."""
    seen: list[str] = []
    get_request = FlaskApi.get_request.__func__

    def counting(cls, *args, **kwargs):  # noqa: ANN001, ANN202
        seen.append(flask.request.full_path)
        return get_request(cls, *args, **kwargs)

    monkeypatch.setattr(FlaskApi, "get_request", classmethod(counting))
    return seen


@pytest.fixture
def stack(service_env):
    return build_stack(service_env)


@pytest.fixture
def product(stack):
    return new_product(stack.product.test_client(), price=1500, qty=50)


# Requests that the pipeline answers; with the status it answers them with.
NOT_PLAIN = [
    ({"json": {"qty": 1}}, 400),  # no productId
    ({"json": {"productId": 1, "qty": 0}}, 400),
    ({"json": {"productId": 1, "qty": 1, "note": "x"}}, 400),
    ({"json": {"productId": "1", "qty": 1}}, 400),
    ({"json": [1]}, 400),
    ({"data": "{", "content_type": "application/json"}, 400),
    ({"data": "productId=1", "content_type": "text/plain"}, 415),
    ({"data": '{"productId": 1, "qty": 1}', "content_type": "application/merge-patch+json"}, 415),
    ({"json": {"productId": 1, "qty": 1}, "query_string": {"qty": "2"}}, 400),
    ({"data": '{"productId": 1, "qty": 1, "x": "' + "y" * 2**20 + '"}', "content_type": JSON}, 413),
]


def test_well_formed_orders_skip_connexions_pipeline(stack, product, pipeline_requests):
    orders = stack.order.test_client()
    for headers in ({}, {"X-Request-ID": "fast-1"}):
        response = orders.post(
            "/orders", json={"productId": product["id"], "qty": 1}, headers=headers
        )
        assert response.status_code == 201, response.get_data(as_text=True)
        assert response.headers["Location"] == f"/orders/{response.get_json()['id']}"
    assert response.headers["X-Request-ID"] == "fast-1"
    assert pipeline_requests == []
    # The use case's own refusals are answered from the fast path too, as problem+json.
    assert_problem(orders.post("/orders", json={"productId": product["id"], "qty": 51}), 409)
    assert_problem(orders.post("/orders", json={"productId": 2147483000, "qty": 1}), 422)
    assert pipeline_requests == []


def test_a_media_type_parameter_keeps_the_fast_path(stack, product, pipeline_requests):
    body = f'{{"productId": {product["id"]}, "qty": 1}}'
    response = stack.order.test_client().post(
        "/orders", data=body, content_type="application/json; charset=utf-8"
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    assert pipeline_requests == []


def test_the_fast_paths_answers_are_checked_against_the_spec(
    stack, product, monkeypatch, pipeline_requests
):
    # With response validation on (as in every test), an answer the spec does not allow is a
    # 500 problem on the fast path too.
    monkeypatch.setattr("order_service.api.created", lambda order, location: ({"id": "x"}, 201, {}))
    response = stack.order.test_client().post(
        "/orders", json={"productId": product["id"], "qty": 1}
    )
    assert_problem(response, 500)
    assert pipeline_requests == []


@pytest.mark.parametrize(("request_options", "status"), NOT_PLAIN)
def test_other_requests_take_connexions_pipeline(stack, pipeline_requests, request_options, status):
    response = stack.order.test_client().post("/orders", **request_options)
    assert_problem(response, status)
    assert len(pipeline_requests) == 1


def test_both_paths_answer_alike(service_env):
    fast = build_stack(service_env)
    pipeline_only = build_stack(service_env, fast_path=False)
    product = new_product(fast.product.test_client(), price=1500, qty=50)
    cases = [
        ({"json": {"productId": product["id"], "qty": 2}}, 201),
        ({"json": {"productId": product["id"], "qty": 51}}, 409),
        ({"json": {"productId": 2147483000, "qty": 1}}, 422),
        *NOT_PLAIN,
    ]
    for options, status in cases:
        answers = [
            stack.order.test_client().post("/orders", headers={"X-Request-ID": "same"}, **options)
            for stack in (fast, pipeline_only)
        ]
        assert [answer.status_code for answer in answers] == [status, status]
        headers = [dict(answer.headers) for answer in answers]
        bodies = [answer.get_json(force=True) for answer in answers]
        if status == 201:
            for header, body in zip(headers, bodies, strict=True):
                assert header.pop("Location") == f"/orders/{body.pop('id')}"
                body.pop("createdAt")
        # Both stacks on one Redis count in one window: each answer one unit fewer left.
        assert [h.pop("RateLimit").partition(";")[0] for h in headers] == ['"order-writes"'] * 2
        assert headers[0] == headers[1], options
        assert bodies[0] == bodies[1], options


# GET requests by path: (service, path, status, whether the fast path answers it).
GETS = [
    ("product", "/products/{product}", 200, True),
    ("product", "/products/2147483000", 404, True),
    ("product", "/products/0", 400, False),  # below the minimum
    ("product", "/products/2147483648", 400, False),  # above the maximum
    ("product", "/products/abc", 400, False),
    ("product", "/products/1_0", 400, False),  # int() would read these as integers
    ("product", "/products/+1", 400, False),
    ("product", "/products/%201", 400, False),
    ("product", "/products/%EF%BC%91", 400, False),  # a full-width 1
    ("product", "/products/{product}?fields=x", 400, False),
    ("order", "/orders/product/{product}?limit=1_0", 400, False),  # queries alike
    ("order", "/orders/{order}", 200, True),
    ("order", "/orders/9223372036854775807", 404, True),
    ("order", "/orders/-1", 400, False),
    ("order", "/orders/1.5", 400, False),
    ("order", "/orders/99999999999999999999", 400, False),
]


@pytest.fixture
def order(stack, product):
    response = stack.order.test_client().post(
        "/orders", json={"productId": product["id"], "qty": 1}
    )
    return response.get_json()


@pytest.mark.parametrize(("service", "path", "status", "fast"), GETS)
def test_which_reads_take_the_fast_path(
    stack, product, order, pipeline_requests, service, path, status, fast
):
    url = path.format(product=product["id"], order=order["id"])
    response = getattr(stack, service).test_client().get(url)
    assert response.status_code == status, response.get_data(as_text=True)
    if status != 200:
        assert_problem(response, status)
    assert len(pipeline_requests) == (0 if fast else 1)


def test_both_paths_read_alike(service_env):
    fast = build_stack(service_env)
    pipeline_only = build_stack(service_env, fast_path=False)
    product = new_product(fast.product.test_client(), price=1500, qty=50)
    order = fast.order.test_client().post("/orders", json={"productId": product["id"], "qty": 1})
    for service, path, status, _ in GETS:
        url = path.format(product=product["id"], order=order.get_json()["id"])
        answers = [
            getattr(stack, service).test_client().get(url, headers={"X-Request-ID": "same"})
            for stack in (fast, pipeline_only)
        ]
        assert [answer.status_code for answer in answers] == [status, status], url
        headers = [dict(answer.headers) for answer in answers]
        # What each stack counted differs (the fast one served the order's price look-up).
        assert len({h.pop("RateLimit").partition(";")[0] for h in headers}) == 1, url
        assert headers[0] == headers[1], url
        assert answers[0].get_data() == answers[1].get_data(), url


@pytest.mark.parametrize(
    ("app", "operation_id", "reason"),
    [
        (order_app, "list_orders_by_product", "parameter limit in query"),
        (order_app, "health", "a GET is served with integer path parameters only"),
        (product_app, "create_product", r"decimal arithmetic \(multipleOf\)"),
        (product_app, "update_product", "parameter id in path is not a plain header"),
        (product_app, "delete_product", "parameter id in path is not a plain header"),
        (order_app, "metrics", "it answers text/plain, not application/json"),
        (order_app, "cancel_order", "no such operation in the spec"),
    ],
)
def test_an_operation_the_fast_path_cannot_serve_fails_the_start(
    service_env, monkeypatch, app, operation_id, reason
):
    monkeypatch.setattr(app, "FAST_OPERATIONS", (*app.FAST_OPERATIONS, operation_id))
    with pytest.raises(FastPathUnsuitable, match=reason):
        build_stack(service_env)


def _answered(operation: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "http_server_requests_total", {"operation": operation, "status": status}
    )
    return value or 0.0


@pytest.mark.parametrize("fast_path", [True, False])
def test_the_edge_measures_every_answer_on_either_path(service_env, fast_path, pipeline_requests):
    stack = build_stack(service_env, fast_path=fast_path)
    product = new_product(stack.product.test_client())
    orders = stack.order.test_client()
    before = {status: _answered("create_order", status) for status in ("201", "400", "401", "422")}
    well_formed = {"productId": product["id"], "qty": 1}
    pipeline_before = len(pipeline_requests)
    assert orders.post("/orders", json=well_formed).status_code == 201
    served_by_pipeline = len(pipeline_requests) - pipeline_before
    assert orders.post("/orders", json={"qty": 0}).status_code == 400
    assert (
        orders.post("/orders", json=well_formed, headers={"Authorization": ""}).status_code == 401
    )
    assert orders.post("/orders", json={"productId": 10**9, "qty": 1}).status_code == 422
    for status in before:
        assert _answered("create_order", status) - before[status] == 1, status
    # (without the fast path, order-service's look-up of the product takes the pipeline too)
    assert (served_by_pipeline == 0) is fast_path
    unknown = _answered(metrics.NO_OPERATION, "404")
    assert orders.get("/nowhere").status_code == 404
    assert _answered(metrics.NO_OPERATION, "404") == unknown + 1
