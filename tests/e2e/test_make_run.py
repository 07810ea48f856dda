"""`make run` as a new user runs it: both Swagger UIs answer within 60 s, a process that dies is
restarted while the others serve on, and SIGTERM to make stops every process it started."""

import os
import re
import signal
import subprocess
import time

import httpx
import psutil
import pytest

from devstack.processes import ROOT, free_port, stop, wait_until_answering


@pytest.fixture
def make_run(tmp_path):
    ports = {"PRODUCT_PORT": free_port(), "ORDER_PORT": free_port()}
    worker_ports = {
        "PRODUCT_WORKER_METRICS_PORT": free_port(),
        "ORDER_WORKER_METRICS_PORT": free_port(),
    }
    env = {
        **os.environ,
        **{name: str(port) for name, port in {**ports, **worker_ports}.items()},
        "PRODUCT_DATABASE_URL": f"sqlite:///{tmp_path}/product.db",
        "ORDER_DATABASE_URL": f"sqlite:///{tmp_path}/order.db",
        "BROKER_URL": f"sqlite:///{tmp_path}/events.db",
        "CACHE_DIR": str(tmp_path / "cache"),
    }
    log = (tmp_path / "make-run.log").open("w")
    process = subprocess.Popen(
        ["make", "run"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield process, ports, worker_ports, tmp_path / "make-run.log"
    finally:
        stop(process)


NEW = {"name": "From make run", "price": 2, "qty": 3}


def make_token(root, scopes: str) -> str:  # noqa: ANN001
    completed = subprocess.run(
        ["make", "-s", "token", f"SCOPES={scopes}"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return completed.stdout.strip().splitlines()[-1]


def test_make_run_serves_both_uis_and_stops_cleanly(make_run):
    process, ports, worker_ports, log = make_run
    started = time.monotonic()
    for port in ports.values():
        wait_until_answering(
            f"http://127.0.0.1:{port}/ui/", 60 - (time.monotonic() - started), process
        )
    for port in ports.values():
        assert b"swagger-ui" in httpx.get(f"http://127.0.0.1:{port}/ui/").content
    output = log.read_text()
    # What the services wrote is their user's alone: databases, spool, cache, heartbeats.
    folder = log.parent
    heartbeats = ROOT / "var" / "run"
    deadline = time.monotonic() + 30
    while len(list(heartbeats.glob("*-worker.heartbeat"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)  # the workers start beating once their tasks run
    written = [
        *folder.glob("*.db*"),
        *(folder / "cache").rglob("*"),
        *heartbeats.glob("*-worker.heartbeat"),
    ]
    assert {path.name for path in written} >= {"product.db", "order.db", "events.db"}
    assert len([path for path in written if path.name.endswith(".heartbeat")]) == 2
    for path in written:
        expected = 0o700 if path.is_dir() else 0o600
        assert path.stat().st_mode & 0o777 == expected, path
    for port in ports.values():  # the banner names Swagger UI's own URL (no redirect)
        assert f"(Swagger UI: http://127.0.0.1:{port}/ui/)" in output
        assert f"Listening at: http://127.0.0.1:{port} " in output  # not gunicorn's blank
    # It printed a token with every scope; `make token` prints others, alone on their last line.
    printed = re.search(r"^(eyJ[\w-]+\.[\w-]+\.[\w-]+)$", output, re.MULTILINE)[1]
    products = f"http://127.0.0.1:{ports['PRODUCT_PORT']}/products"
    created = httpx.post(products, json=NEW, headers={"Authorization": f"Bearer {printed}"})
    assert created.status_code == 201
    # Every process's metrics, the web's adding up its workers: that one product, once.
    metrics = httpx.get(f"http://127.0.0.1:{ports['PRODUCT_PORT']}/metrics").text
    assert 'http_server_requests_total{operation="create_product",status="201"} 1.0' in metrics
    for port in worker_ports.values():
        assert "outbox_backlog_rows" in httpx.get(f"http://127.0.0.1:{port}/metrics").text
    reader = make_token(ROOT, "orders:read")
    refused = httpx.post(products, json=NEW, headers={"Authorization": f"Bearer {reader}"})
    assert refused.status_code == 403
    orders = f"http://127.0.0.1:{ports['ORDER_PORT']}/orders/1"
    assert httpx.get(orders, headers={"Authorization": f"Bearer {reader}"}).status_code == 404

    started_processes = psutil.Process(process.pid).children(recursive=True)
    commands = " ".join(" ".join(p.cmdline()) for p in started_processes)
    assert "product_service.worker" in commands and "order_service.worker" in commands
    assert len(started_processes) >= 8  # 2 gunicorn masters and their workers, 2 workers

    process.send_signal(signal.SIGTERM)  # to make alone, as `kill <pid>` would
    process.wait(timeout=30)
    gone, alive = psutil.wait_procs(started_processes, timeout=30)
    assert alive == [], f"left running: {alive}"
    for port in ports.values():
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)


def test_a_process_that_dies_is_restarted_and_the_others_serve_on(make_run):
    process, ports, _, log = make_run
    for port in ports.values():
        wait_until_answering(f"http://127.0.0.1:{port}/ready", 60, process)
    token = {"Authorization": f"Bearer {make_token(ROOT, '')}"}
    product_url, order_url = (f"http://127.0.0.1:{ports[p]}" for p in ports)
    supervisor = psutil.Process(process.pid).children()[0]
    worker = child_running(supervisor, "order_service.worker")
    worker.kill()
    said = wait_for_line(log, rf"order-worker \(pid {worker.pid}\) killed by SIGKILL; restarting")
    assert "restarting it in 1s" in said
    # Meanwhile, and after, every web service answers.
    assert httpx.get(f"{product_url}/ready").status_code == 200
    new_worker = wait_for(lambda: child_running(supervisor, "order_service.worker"))
    assert new_worker.pid != worker.pid
    # gunicorn replaces its own dead workers: kill every one, and the new ones serve.
    master = child_running(supervisor, "order_service/gunicorn.conf.py")
    killed = {w.pid for w in master.children()}
    for web_worker in master.children():
        web_worker.kill()
    wait_for(lambda: len({w.pid for w in master.children()} - killed) >= 2 or None)
    product = httpx.post(
        f"{product_url}/products", json={"name": "p", "price": 1, "qty": 5}, headers=token
    ).json()
    order = wait_for(
        lambda: answered(
            httpx.post(
                f"{order_url}/orders", json={"productId": product["id"], "qty": 1}, headers=token
            )
        )
    )
    # The restarted order worker relays order.created and settles the order.
    settled = wait_for(
        lambda: (
            httpx.get(f"{order_url}/orders/{order['id']}", headers=token).json()["status"]
            == "CONFIRMED"
            or None
        )
    )
    assert settled
    assert process.poll() is None  # make run goes on


def child_running(parent: psutil.Process, part_of_command: str) -> psutil.Process | None:
    for child in parent.children():
        if any(part_of_command in argument for argument in child.cmdline()):
            return child
    return None


def answered(response: httpx.Response) -> dict | None:
    return response.json() if response.status_code == 201 else None


def wait_for(probe, timeout_s: float = 30):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if (result := probe()) is not None:
                return result
        except (httpx.HTTPError, psutil.Error):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"nothing within {timeout_s}s")


def wait_for_line(log, pattern: str) -> str:  # noqa: ANN001
    return wait_for(lambda: (m := re.search(f".*{pattern}.*", log.read_text())) and m[0])
