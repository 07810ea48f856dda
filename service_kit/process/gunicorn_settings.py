"""gunicorn settings both services share; each `<service>/gunicorn.conf.py` feeds it its port
and worker count, read (and checked) from the environment before any worker starts."""

import os
from pathlib import Path
from typing import Any

from gunicorn.glogging import Logger

from service_kit.config import ConnectionLimits
from service_kit.logs import logging_config
from service_kit.process import memory
from service_kit.process.files import run_dir


class ServiceLogger(Logger):
    """gunicorn's logger, but with `accesslog` unset there is no access line at all: gunicorn
    itself still formats every request's line once a `logconfig_dict` is set (a share of a worker
    on POST /orders), only to drop it. What the client wrote (request line, path, headers) is
    logged escaped: control characters would reach the operator's terminal as they are."""

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        if self.cfg.accesslog:
            super().access(resp, req, environ, request_time)

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        # With reuse_port the master holds no socket (each worker opens its own), so gunicorn's
        # "Listening at: %s (%s)" line would name no address: name the configured one.
        if msg.startswith("Listening at:") and args and not args[0]:
            bound = ",".join(f"http://{address}" for address in self.cfg.bind)
            args = (f"{bound} (a SO_REUSEPORT socket per worker)", *args[1:])
        super().info(msg, *args, **kwargs)

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        return {name: escaped(v) if isinstance(v, str) else v for name, v in atoms.items()}


def escaped(text: str) -> str:
    """`text` with every character that is not printable ASCII as a backslash escape."""
    if text.isascii() and text.isprintable():
        return text
    return "".join(c if " " <= c <= "~" else c.encode("unicode_escape").decode() for c in text)


def prepare_worker(_worker: Any = None) -> None:
    """gunicorn's post_worker_init hook: once the app is loaded, the worker's collector is
    settled, and its pauses timed."""
    memory.settle_garbage_collector()
    from service_kit.telemetry import metrics  # in the worker: its multiprocess folder is set

    metrics.time_gc_pauses()


# Not imported here: prometheus_client picks its kind of values when it is first imported, and
# the workers forked from this master must find the folder named before that.
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess_dir(directory: Path) -> Path:
    """An empty folder for the workers' metrics (service_kit/telemetry/metrics.py), named in
    the environment they inherit: files of a former run would be added to this one's."""
    directory = Path(os.environ.setdefault(MULTIPROCESS_DIR, str(directory.resolve())))
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for former in directory.glob("*.db"):  # only the samples: the folder may be an operator's
        former.unlink()
    return directory


def _nothing(_arbiter: Any) -> None:
    """gunicorn's default hook: no metrics port."""


def forget_process(pid: int) -> None:
    """A dead worker's live gauges (connections in use) no longer count; its counters stay, as
    Prometheus expects of counters."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)


class WorkersMetricsServer:
    """The web workers' metrics, added up, served by the master on a port of its own
    (prometheus_client's HTTP server on a registry of its multiprocess collector, started in
    gunicorn's `when_ready` hook), so that the API port need not answer /metrics."""

    def __init__(self, host: str, port: int) -> None:
        self._address = (host, port)
        self._server: Any = None

    def start(self, arbiter: Any) -> None:
        from prometheus_client import CollectorRegistry, multiprocess, start_http_server

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=os.environ[MULTIPROCESS_DIR])
        host, port = self._address
        try:
            self._server, _thread = start_http_server(port, addr=host, registry=registry)
        except OSError as exc:  # metrics nowhere would go unnoticed: stop, naming the port
            arbiter.log.error("metrics port %s:%d: %s", host, port, exc)
            raise SystemExit(1) from None
        arbiter.log.info("metrics of every worker on http://%s:%d/metrics", host, port)

    def close_in_worker(self) -> None:
        """A forked worker's copy of the listening socket, closed: the port is the master's
        alone (freed with it)."""
        if self._server is not None:
            self._server.socket.close()


DEFAULT_LIMITS = ConnectionLimits()


def web_settings(
    *,
    service: str = "service",
    host: str = "127.0.0.1",
    port: int,
    workers: int,
    log_level: str = "INFO",
    log_format: str = "text",
    access_log: bool = True,
    limits: ConnectionLimits = DEFAULT_LIMITS,
    metrics_port: int = 0,
) -> dict[str, Any]:
    """The settings of `service`'s gunicorn. As its master starts, before any worker, the
    workers are given a fresh folder for their metrics (one per service and port, so that two
    instances on one host never mix theirs); with `metrics_port` the master serves them there."""
    metrics_server = WorkersMetricsServer(host, metrics_port) if metrics_port else None

    def prepare_metrics(_arbiter: Any) -> None:
        prepare_multiprocess_dir(run_dir() / "metrics" / f"{service}-{port}")

    def give_connection_limits(_arbiter: Any, worker: Any) -> None:
        worker.connection_limits = limits
        if metrics_server is not None:
            metrics_server.close_in_worker()

    def forget_worker(_arbiter: Any, worker: Any) -> None:
        forget_process(worker.pid)

    return {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers,
        # gunicorn's gevent worker with requests framed by llhttp (process/gevent_worker.py).
        "worker_class": "service_kit.process.gevent_worker.Worker",
        # Past this many connections a worker accepts a new one by closing its longest-idle.
        "worker_connections": limits.connections,
        "on_starting": prepare_metrics,
        "when_ready": metrics_server.start if metrics_server else _nothing,
        "post_fork": give_connection_limits,
        "child_exit": forget_worker,
        # With gevent one worker tends to accept most keep-alive connections;
        # SO_REUSEPORT (a socket per worker) lets the kernel spread them. It would also let a
        # second gunicorn share the port silently: `make run` refuses a port already listened
        # on (devstack/ports.py), and a container has one master per network namespace.
        "reuse_port": True,
        # On SIGTERM a worker finishes its requests, waiting at most this long (idle keep-alive
        # connections count as busy, so keep it short).
        "graceful_timeout": 5,
        # gunicorn's control socket has one default path per user: both services (and any other
        # gunicorn of that user) would share it. Nothing here uses it.
        "control_socket_disable": True,
        "keepalive": limits.idle_timeout_s,
        "logconfig_dict": logging_config(log_level, log_format),
        "logger_class": "service_kit.process.gunicorn_settings.ServiceLogger",
        "post_worker_init": prepare_worker,
        "accesslog": "-" if access_log else None,
        "access_log_format": '%(h)s "%(r)s" %(s)s %(b)sB %(M)sms',
    }
