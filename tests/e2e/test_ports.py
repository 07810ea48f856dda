"""`make run` refuses to start while a port it needs is taken, even by a listener that set
SO_REUSEPORT as the web services' own gunicorns do (which a second gunicorn would share
silently), naming the port and the process holding it; nothing is started."""

import os
import random
import socket
import subprocess
import time

import pytest

from devstack.ports import below_the_ephemeral_range, problems, taken
from devstack.processes import ROOT

PORT_NAMES = (
    "PRODUCT_PORT",
    "ORDER_PORT",
    "PRODUCT_WORKER_METRICS_PORT",
    "ORDER_WORKER_METRICS_PORT",
)


@pytest.fixture
def ports() -> dict[str, str]:
    # Below the ephemeral range, where no outgoing connection of another test's processes can
    # take one between the choice and the check.
    candidates = random.sample(below_the_ephemeral_range(), 200)
    free = [port for port in candidates if taken("127.0.0.1", port) is None]
    assert len(free) >= len(PORT_NAMES), "too few free ports below the ephemeral range"
    return {name: str(port) for name, port in zip(PORT_NAMES, free, strict=False)}


def listening_like_gunicorn(port: int) -> socket.socket:
    held = socket.socket()
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    held.bind(("127.0.0.1", port))
    held.listen(8)
    return held


def test_free_ports_are_no_problem(ports):
    assert problems({**os.environ, **ports}) == []


@pytest.mark.parametrize("taken", PORT_NAMES)
def test_a_taken_port_is_named_with_its_holder(ports, taken):
    with listening_like_gunicorn(int(ports[taken])):
        found = problems({**os.environ, **ports})
    assert len(found) == 1
    assert f"port {ports[taken]} on 127.0.0.1" in found[0] and f"({taken})" in found[0]
    assert f"held by pid {os.getpid()} " in found[0]


def test_make_run_exits_at_once_when_a_port_is_taken(ports, tmp_path):
    env = {
        **os.environ,
        **ports,
        "PRODUCT_DATABASE_URL": f"sqlite:///{tmp_path}/product.db",
        "ORDER_DATABASE_URL": f"sqlite:///{tmp_path}/order.db",
    }
    with listening_like_gunicorn(int(ports["ORDER_PORT"])):
        started = time.monotonic()
        completed = subprocess.run(
            ["make", "run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
    assert completed.returncode != 0
    assert time.monotonic() - started < 15
    assert f"port {ports['ORDER_PORT']} on 127.0.0.1 for order-service" in completed.stderr
    assert f"held by pid {os.getpid()} " in completed.stderr
    # Nothing was migrated or started.
    assert not (tmp_path / "product.db").exists() and not (tmp_path / "order.db").exists()
    assert "supervise" not in completed.stdout
