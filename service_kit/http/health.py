"""/health, /ready and /metrics answers, shared by both services."""

import logging
from collections.abc import Callable, Mapping

from service_kit.errors import DependencyUnavailable
from service_kit.telemetry import metrics as telemetry

Check = Callable[[], None]
_log = logging.getLogger(__name__)


def alive() -> dict[str, str]:
    return {"status": "ok"}


def readiness(checks: Mapping[str, Check]) -> dict[str, object]:
    """Run every check; all must pass, or the service is not ready (503 naming the failures)."""
    failures = []
    for name, check in checks.items():
        try:
            check()
        except Exception as exc:  # any failure means "not ready"; the detail says which
            _log.warning("readiness check %s failed: %s", name, exc)
            failures.append(f"{name}: {type(exc).__name__}")
    if failures:
        raise DependencyUnavailable("not ready: " + ", ".join(failures))
    return {"status": "ok", "checks": {name: "ok" for name in checks}}


def metrics() -> tuple[str, int, dict[str, str]]:
    """Every metric of the service's web workers, as Prometheus reads them."""
    body, content_type = telemetry.exposition()
    return body.decode(), 200, {"Content-Type": content_type}
