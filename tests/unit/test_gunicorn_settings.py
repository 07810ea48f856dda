"""What gunicorn is told, the hook it runs in every web worker, and the event workers' like
settling of the garbage collector."""

import gc
import signal

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
