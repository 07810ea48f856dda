"""Both services have the same shape: spec → handlers (api.py, one per operationId) → use cases
(service.py, free of HTTP, SQL and broker code) → adapters."""

import ast
import importlib
import inspect
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SERVICES = [("product_service", "openapi/product.yaml"), ("order_service", "openapi/order.yaml")]
FORBIDDEN_IN_USE_CASES = {"flask", "connexion", "sqlalchemy", "httpx", "pymysql", "pika"}


def _operation_ids(spec: str) -> set[str]:
    document = yaml.safe_load((ROOT / spec).read_text())
    return {
        operation["operationId"]
        for path in document["paths"].values()
        for operation in path.values()
        if isinstance(operation, dict) and "operationId" in operation
    }


@pytest.mark.parametrize(("package", "spec"), SERVICES)
def test_every_operation_has_exactly_one_handler(package, spec):
    api = importlib.import_module(f"{package}.api")
    handlers = {
        name
        for name, value in vars(api).items()
        if inspect.isfunction(value)
        and value.__module__ == api.__name__
        and not name.startswith("_")
    }
    assert handlers == _operation_ids(spec)


@pytest.mark.parametrize(("package", "spec"), SERVICES)
def test_use_cases_import_no_http_sql_or_broker_code(package, spec):
    tree = ast.parse((ROOT / package / "service.py").read_text())
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported.isdisjoint(FORBIDDEN_IN_USE_CASES), imported & FORBIDDEN_IN_USE_CASES


@pytest.mark.parametrize(("package", "spec"), SERVICES)
def test_no_route_is_declared_in_python(package, spec):
    for source in (ROOT / package).rglob("*.py"):
        text = source.read_text()
        assert ".route(" not in text and "add_url_rule(" not in text, source
