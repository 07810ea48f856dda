"""The architecture's rules, read from the code.

Both services have the same shape: spec → handlers (api.py, a method per operationId, given
their use cases when the app is wired) → use cases (service.py, free of HTTP, SQL and broker
code, also through what they import) → adapters. The kit's rooms depend inward only: the
modules at its top (errors, request ids, exact JSON, configuration, logs) on no room, telemetry
on them, storage on telemetry, messaging on storage, http on telemetry, process on all; no kit
module imports another in a cycle, and the kit imports no service. perf/, contract_tests/ and
devstack/ do not import the tests."""

import ast
import inspect
from functools import cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SERVICES = [
    ("product_service", "ProductApi", "openapi/product.yaml"),
    ("order_service", "OrderApi", "openapi/order.yaml"),
]
FORBIDDEN_IN_USE_CASES = {
    "flask",
    "connexion",
    "werkzeug",
    "sqlalchemy",
    "httpx",
    "pymysql",
    "pika",
}
PROJECT_PACKAGES = ("service_kit", "product_service", "order_service", "devstack", "perf", "tests")
KIT_CORE = {"errors", "request_id", "exact_json", "config", "logs", "idempotency"}
# Which parts of the kit each part may import (besides itself and the core).
KIT_ROOMS = {
    "core": set(),
    "telemetry": set(),
    "storage": {"telemetry"},
    "messaging": {"storage", "telemetry"},
    "http": {"telemetry"},
    "process": {"storage", "messaging", "http", "telemetry"},
}


def _module_of(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _project_modules() -> dict[str, Path]:
    return {
        _module_of(path): path
        for package in PROJECT_PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "generated_" not in str(path)
    }


@cache
def _imports(module: str) -> frozenset[str]:
    """What a project module imports: project modules by full name, others by top package."""
    found = set()
    for node in ast.walk(ast.parse(_project_modules()[module].read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in _project_modules() else node.module)
    resolved = set()
    for name in found:
        if name in _project_modules():
            resolved.add(name)
            # Importing a module imports its parent packages first.
            parts = name.split(".")
            resolved |= {".".join(parts[:n]) for n in range(1, len(parts))}
        else:
            resolved.add(name.split(".")[0])
    return frozenset(resolved - {module})


def _reachable(module: str) -> set[str]:
    seen, todo = set(), [module]
    while todo:
        for name in _imports(todo.pop()):
            if name not in seen:
                seen.add(name)
                if name in _project_modules():
                    todo.append(name)
    return seen


def _room(module: str) -> str:
    parts = module.split(".")
    return "core" if len(parts) == 2 and parts[1] in KIT_CORE else parts[1]


def _kit_modules() -> list[str]:
    return sorted(m for m in _project_modules() if m.startswith("service_kit."))


def _operation_ids(spec: str) -> set[str]:
    document = yaml.safe_load((ROOT / spec).read_text())
    return {
        operation["operationId"]
        for path in document["paths"].values()
        for operation in path.values()
        if isinstance(operation, dict) and "operationId" in operation
    }


@pytest.mark.parametrize(("package", "handlers", "spec"), SERVICES)
def test_every_operation_has_exactly_one_handler(package, handlers, spec):
    api = __import__(f"{package}.api", fromlist=[handlers])
    cls = getattr(api, handlers)
    methods = {
        name
        for name, value in vars(cls).items()
        if inspect.isfunction(value) and not name.startswith("_")
    }
    assert methods == _operation_ids(spec)


@pytest.mark.parametrize(("package", "handlers", "spec"), SERVICES)
def test_handlers_are_given_their_use_cases(package, handlers, spec):
    # No look-up at request time: nothing of Flask's or Connexion's in the handlers.
    imported = _reachable(f"{package}.api") - {f"{package}.service"}
    assert not {"flask", "connexion"} & imported
    text = (ROOT / package / "api.py").read_text()
    assert "current_app" not in text and "extensions" not in text


@pytest.mark.parametrize(("package", "handlers", "spec"), SERVICES)
def test_use_cases_import_no_http_sql_or_broker_code(package, handlers, spec):
    # Also not through the modules they import, the kit's included.
    imported = _reachable(f"{package}.service")
    assert imported.isdisjoint(FORBIDDEN_IN_USE_CASES), imported & FORBIDDEN_IN_USE_CASES


@pytest.mark.parametrize(("package", "handlers", "spec"), SERVICES)
def test_no_route_is_declared_in_python(package, handlers, spec):
    for source in (ROOT / package).rglob("*.py"):
        text = source.read_text()
        assert ".route(" not in text and "add_url_rule(" not in text, source


def test_the_kit_has_no_import_cycle():
    assert [module for module in _kit_modules() if module in _reachable(module)] == []


@pytest.mark.parametrize("module", _kit_modules())
def test_each_kit_room_depends_inward_only(module):
    room = _room(module)
    allowed = {room, "core"} | KIT_ROOMS.get(room, set())
    kit_imports = {name for name in _imports(module) if name.startswith("service_kit.")}
    wrong = {name for name in kit_imports if _room(name) not in allowed}
    assert wrong == set(), f"{module} ({room}) imports {wrong}"
    others = {name.split(".")[0] for name in _imports(module)} & set(PROJECT_PACKAGES)
    assert others <= {"service_kit"}, f"{module} imports {others - {'service_kit'}}"


@pytest.mark.parametrize("package", ["perf", "contract_tests", "devstack"])
def test_tools_do_not_import_the_tests(package):
    for source in (ROOT / package).rglob("*.py"):
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert node.module.split(".")[0] != "tests", source
            elif isinstance(node, ast.Import):
                assert all(alias.name.split(".")[0] != "tests" for alias in node.names), source
