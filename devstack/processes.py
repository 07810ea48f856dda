"""Starting the services as real processes, the way `make run` does (same gunicorn configs)."""

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from devstack import throwaway
from devstack.ports import below_the_ephemeral_range
from service_kit.http.dev_tokens import write_signing_key

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


_handed_out: set[int] = set()
_handing_out = threading.Lock()


def free_port() -> int:
    """A port nothing uses now, below the ephemeral range: there no outgoing connection of any
    process can take it before the service binds it, as one the kernel hands out for port 0
    could be; never the same one twice in a process. Where that range is unknown, the
    kernel's choice."""
    candidates = below_the_ephemeral_range()
    for _ in range(1000 if candidates else 0):
        port = random.choice(candidates)
        with _handing_out, socket.socket() as probe:
            if port in _handed_out:
                continue
            try:  # no SO_REUSEADDR: a port in TIME_WAIT is not free
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            _handed_out.add(port)
            return port
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_answering(
    url: str, timeout_s: float, process: subprocess.Popen | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout_s}s")


def stop(*processes: subprocess.Popen) -> None:
    """SIGTERM every process group at once (they hold connections to each other), then
    SIGKILL whatever is left after the graceful period."""
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@dataclass
class RunningStack:
    product_url: str
    order_url: str
    logs: dict[str, Path]
    processes: dict[str, subprocess.Popen]
    env: dict[str, str]
    metrics_urls: dict[str, str]  # every process's /metrics, by process name
    process_env: dict[str, str]  # the whole environment the processes were started with

    def kill_and_restart(self, name: str) -> None:
        """SIGKILL one process (a crash: no drain), then start it again as before."""
        old = self.processes[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(old.pid, signal.SIGKILL)
        old.wait()
        self.processes[name] = _start(name, self.process_env, self.logs[name], mode="a")

    def log_of(self, service: str) -> str:
        return self.logs[service].read_text()

    def client(
        self, service: str, *, timeout: float = 10, scopes: list[str] | None = None
    ) -> httpx.Client:
        """An HTTP client of one service, sending a token (every scope unless told)."""
        return httpx.Client(
            base_url=getattr(self, f"{service}_url"),
            timeout=timeout,
            headers=throwaway.bearer(self.env, scopes),
        )


def _commands() -> dict[str, list[str]]:
    """The processes of the Procfile that `make run` starts, by name."""
    commands: dict[str, list[str]] = {}
    for service in ("product", "order"):
        commands[service] = [
            str(BIN / "gunicorn"),
            "-c",
            f"{service}_service/gunicorn.conf.py",
            f"{service}_service.app:create_wsgi_app()",
        ]
        commands[f"{service}-worker"] = [sys.executable, "-m", f"{service}_service.worker"]
    return commands


def _start(name: str, env: dict[str, str], log: Path, *, mode: str) -> subprocess.Popen:
    return subprocess.Popen(
        _commands()[name],
        cwd=ROOT,
        env=env,
        stdout=log.open(mode),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


@contextmanager
def running_stack(
    service_env: dict[str, str],
    log_dir: Path,
    *,
    validate_responses: bool = True,
    metrics_ports: bool = False,
) -> Iterator[RunningStack]:
    """Both web services and both workers, as `make run` starts them (tests also check every
    response against the spec; benchmarks do not). `metrics_ports`: each web service's
    metrics on a port of its own (<S>_METRICS_PORT), as Kubernetes runs them."""
    names = ["product", "order", "product-worker", "order-worker"]
    if metrics_ports:
        names += ["product-metrics", "order-metrics"]
    ports = {name: free_port() for name in names}
    if "AUTH_JWKS_FILE" not in service_env:  # the stack's own signing key, not var/'s
        write_signing_key(log_dir / "jwks.json")
        service_env = {**service_env, "AUTH_JWKS_FILE": str(log_dir / "jwks.json")}
    env = {
        **os.environ,
        **service_env,
        "PRODUCT_PORT": str(ports["product"]),
        "ORDER_PORT": str(ports["order"]),
        "PRODUCT_WORKER_METRICS_PORT": str(ports["product-worker"]),
        "ORDER_WORKER_METRICS_PORT": str(ports["order-worker"]),
        "PRODUCT_VALIDATE_RESPONSES": "1" if validate_responses else "0",
        "ORDER_VALIDATE_RESPONSES": "1" if validate_responses else "0",
    }
    if metrics_ports:
        env["PRODUCT_METRICS_PORT"] = str(ports.pop("product-metrics"))
        env["ORDER_METRICS_PORT"] = str(ports.pop("order-metrics"))
    processes, logs = {}, {}
    try:
        for name in _commands():
            logs[name] = log_dir / f"{name}.log"
            processes[name] = _start(name, env, logs[name], mode="w")
        urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        for service in ("product", "order"):
            wait_until_answering(f"{urls[service]}/ready", 30, processes[service])
        metrics_urls = {name: f"{url}/metrics" for name, url in urls.items()}
        for service in ("product", "order") if metrics_ports else ():
            port = env[f"{service.upper()}_METRICS_PORT"]
            metrics_urls[service] = f"http://127.0.0.1:{port}/metrics"
        yield RunningStack(
            urls["product"], urls["order"], logs, processes, service_env, metrics_urls, env
        )
    finally:
        stop(*processes.values())
