"""What gunicorn is told, the hook it runs in every web worker, and the event workers' like
settling of the garbage collector."""

import gc
import signal
import socket

import httpx
import pytest

from service_kit.process.gunicorn_settings import escaped, prepare_worker, web_settings
from service_kit.process.worker import run_tasks


def test_web_workers_settle_the_collector_after_loading_the_app():
    settings = web_settings(port=4000, workers=2, access_log=False)
    assert settings["post_worker_init"] is prepare_worker
    assert (
        settings["accesslog"] is None
        and settings["worker_class"] == "service_kit.process.gevent_worker.Worker"
    )
    threshold = gc.get_threshold()
    try:
        prepare_worker()
        assert gc.get_freeze_count() > 0  # what was loaded is out of the collector's sight
        assert gc.get_threshold()[0] > threshold[0]
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_what_clients_write_is_logged_escaped():
    assert escaped("GET /orders HTTP/1.1") == "GET /orders HTTP/1.1"
    assert escaped("GET /\x1b[2Jcaf\xe9\r\n HTTP/1.1") == "GET /\\x1b[2Jcaf\\xe9\\r\\n HTTP/1.1"


def test_event_workers_settle_the_collector_before_their_tasks_run():
    seen = {}

    def task(stop):
        seen.update(frozen=gc.get_freeze_count(), threshold=gc.get_threshold())

    threshold = gc.get_threshold()
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        run_tasks("test worker", {"task": task})
        assert seen["frozen"] > 0 and seen["threshold"][0] > threshold[0]
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str, *args: object) -> None:
        self.lines.append(message % args)

    error = info


class _Arbiter:
    """What the master hook reads of gunicorn's arbiter: its log."""

    def __init__(self) -> None:
        self.log = _Log()


def test_a_taken_metrics_port_stops_the_master_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        settings = web_settings(port=4000, workers=2, metrics_port=port)
        arbiter = _Arbiter()
        with pytest.raises(SystemExit) as stopped:
            settings["when_ready"](arbiter)
    assert stopped.value.code == 1
    assert f"metrics port 127.0.0.1:{port}" in arbiter.log.lines[0]


def test_the_master_serves_the_workers_metrics_on_its_port(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = web_settings(port=4000, workers=2, metrics_port=port)
    settings["when_ready"](_Arbiter())
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    finally:
        server = settings["when_ready"].__self__._server  # the master's, which outlives none
        server.shutdown()
        server.server_close()
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    assert web_settings(port=4000, workers=2)["when_ready"](_Arbiter()) is None  # no port: none
