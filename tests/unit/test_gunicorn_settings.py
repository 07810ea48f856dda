"""What gunicorn is told, and the hook it runs in every web worker."""

import gc

from service_kit.process.gunicorn_settings import escaped, settle_garbage_collector, web_settings


def test_web_workers_settle_the_collector_after_loading_the_app():
    settings = web_settings(port=4000, workers=2, access_log=False)
    assert settings["post_worker_init"] is settle_garbage_collector
    assert (
        settings["accesslog"] is None
        and settings["worker_class"] == "service_kit.process.gevent_worker.Worker"
    )
    threshold = gc.get_threshold()
    try:
        settle_garbage_collector()
        assert gc.get_freeze_count() > 0  # what was loaded is out of the collector's sight
        assert gc.get_threshold()[0] > threshold[0]
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_what_clients_write_is_logged_escaped():
    assert escaped("GET /orders HTTP/1.1") == "GET /orders HTTP/1.1"
    assert escaped("GET /\x1b[2Jcaf\xe9\r\n HTTP/1.1") == "GET /\\x1b[2Jcaf\\xe9\\r\\n HTTP/1.1"
