"""/health, /ready and /metrics answers, shared by both services."""

import logging
import threading
import time
from collections.abc import Callable, Mapping

from service_kit.errors import DependencyUnavailable, NotFound
from service_kit.telemetry import metrics as telemetry

Check = Callable[[], None]
_log = logging.getLogger(__name__)


def alive() -> dict[str, str]:
    return {"status": "ok"}


def _failures(checks: Mapping[str, Check]) -> list[str]:
    """Run every check; the failed ones, named (all must pass for the service to be ready)."""
    failures = []
    for name, check in checks.items():
        try:
            check()
        except Exception as exc:  # any failure means "not ready"; the detail says which
            _log.warning("readiness check %s failed: %s", name, exc)
            failures.append(f"{name}: {type(exc).__name__}")
    return failures


class Readiness:
    """The public /ready: its checks run at most once per `max_age_s` in a process, whoever
    asks and however often, so that a caller cannot make the service open a broker connection
    (or query its database, ping its cache) per request. Concurrent requests share one run."""

    def __init__(
        self,
        checks: Mapping[str, Check],
        *,
        max_age_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._checks = checks
        self._max_age_s = max_age_s
        self._clock = clock
        self._lock = threading.Lock()  # gevent's, once gunicorn's worker has patched threading
        self._failures: list[str] = []
        self._checked_at: float | None = None

    def answer(self) -> dict[str, object]:
        with self._lock:
            now = self._clock()
            if self._checked_at is None or now - self._checked_at >= self._max_age_s:
                self._failures = _failures(self._checks)
                self._checked_at = self._clock()
            failures = self._failures
        if failures:
            raise DependencyUnavailable("not ready: " + ", ".join(failures))
        return {"status": "ok", "checks": {name: "ok" for name in self._checks}}


def metrics(*, on_api_port: bool = True) -> tuple[str, int, dict[str, str]]:
    """Every metric of the service's web workers, as Prometheus reads them; with a metrics
    port of their own (`on_api_port` false) the API port answers 404, as for no resource."""
    if not on_api_port:
        raise NotFound("no metrics here: they are served on the service's metrics port")
    body, content_type = telemetry.exposition()
    return body.decode(), 200, {"Content-Type": content_type}
