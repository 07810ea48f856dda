"""gunicorn settings both services share; each `<service>/gunicorn.conf.py` feeds it its port
and worker count, read (and checked) from the environment before any worker starts."""

from typing import Any

from gunicorn.glogging import Logger

from service_kit.logs import logging_config


class ServiceLogger(Logger):
    """gunicorn's logger, but with `accesslog` unset there is no access line at all: gunicorn
    itself still formats every request's line once a `logconfig_dict` is set (~6% of a worker
    on POST /orders), only to drop it."""

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        if self.cfg.accesslog:
            super().access(resp, req, environ, request_time)


def web_settings(
    *, port: int, workers: int, log_level: str = "INFO", access_log: bool = True
) -> dict[str, Any]:
    return {
        "bind": f"0.0.0.0:{port}",
        "workers": workers,
        # gevent's own WSGI server: tighter tail latency than `-k gevent` on this hot path.
        "worker_class": "gevent_pywsgi",
        "worker_connections": 1000,
        # With gevent_pywsgi one worker tends to accept most keep-alive connections;
        # SO_REUSEPORT lets the kernel spread them.
        "reuse_port": True,
        # On SIGTERM a worker finishes its requests, waiting at most this long (idle keep-alive
        # connections count as busy, so keep it short).
        "graceful_timeout": 5,
        "keepalive": 30,
        "logconfig_dict": logging_config(log_level),
        "logger_class": "service_kit.gunicorn_settings.ServiceLogger",
        "accesslog": "-" if access_log else None,
        "access_log_format": '%(h)s "%(r)s" %(s)s %(b)sB %(M)sms',
    }
