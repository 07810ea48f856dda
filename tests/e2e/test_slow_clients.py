"""Idle and trickling clients against a web service with small connection limits: they get
their deadlines, and however many there are, a normal request is still served promptly."""

import contextlib
import json
import re
import signal
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psutil
import pytest

from devstack import throwaway
from devstack.processes import RunningStack, running_stack
from devstack.throwaway import bearer
from perf import openloop

CONNECTIONS = 20  # per web worker
IDLE_S, HEADER_S, BODY_S = 3, 2, 2
LIMITS = {
    f"{service}_{name}": str(value)
    for service in ("ORDER", "PRODUCT")
    for name, value in (
        ("WEB_WORKERS", 1),
        ("WEB_CONNECTIONS", CONNECTIONS),
        ("IDLE_TIMEOUT_S", IDLE_S),
        ("HEADER_TIMEOUT_S", HEADER_S),
        ("BODY_TIMEOUT_S", BODY_S),
    )
}


def json_post(stack: RunningStack, path: str = "/orders") -> bytes:
    """The head of an authorized JSON POST, up to its Content-Length."""
    authorization = bearer(stack.env)["Authorization"]
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: {authorization}\r\n"
    ).encode()


@pytest.fixture
def stack(tmp_path) -> Iterator[RunningStack]:
    env = throwaway.embedded_env(tmp_path, throwaway.sqlite_databases(tmp_path)) | LIMITS
    with running_stack(env, tmp_path) as running:
        yield running


def connect(stack: RunningStack, service: str = "order") -> socket.socket:
    url = getattr(stack, f"{service}_url")
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=15)


def read_until_closed(connection: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and when it closed (monotonic)."""
    answer = b""
    while chunk := connection.recv(65536):
        answer += chunk
    return answer, time.monotonic()


def read_response(reader: Any) -> bytes:
    """One whole response (head and Content-Length body) from a socket's file."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        line = reader.readline()
        assert line, "the connection closed before the response"
        head += line
    length = re.search(rb"(?i)content-length: (\d+)", head)
    return head + reader.read(int(length[1]) if length else 0)


class Trickle:
    """Sends one more byte on each of its connections every 0.3 s, in a thread."""

    def __init__(self, connections: list[socket.socket], byte: bytes) -> None:
        self.connections, self.byte = connections, byte
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.3):
            for connection in self.connections:
                with contextlib.suppress(OSError):  # closed by the server, as it should be
                    connection.sendall(self.byte)

    def __enter__(self) -> "Trickle":
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join()


def test_a_normal_request_is_served_among_many_more_idle_and_trickling_clients(stack):
    idle = [connect(stack) for _ in range(3 * CONNECTIONS)]
    heads = [connect(stack) for _ in range(CONNECTIONS)]
    for connection in heads:
        connection.sendall(b"GET /health HTTP/1.1\r\nX-Slow: ")
    bodies = [connect(stack) for _ in range(CONNECTIONS)]
    for connection in bodies:
        connection.sendall(json_post(stack) + b"Content-Length: 100000\r\n\r\n{")
    with Trickle(heads, b"a"), Trickle(bodies, b" "):
        time.sleep(0.5)
        for _ in range(5):
            started = time.monotonic()
            response = httpx.get(f"{stack.order_url}/health", timeout=10)
            took = time.monotonic() - started
            assert response.status_code == 200
            assert took < 1.0, f"a plain GET /health took {took:.2f} s"
    for connection in idle + heads + bodies:
        connection.close()
    time.sleep(0.3)  # let the log lines be written
    assert "Traceback" not in stack.log_of("order")


def test_health_is_answered_promptly_beside_slow_32_kb_header_sections(stack):
    # Each header section is one line of 32,000 spaces, sent in pieces within the head's deadline:
    # framing it costs the worker what any 32 KB head costs, so /health beside it waits little.
    def slow_head(connection: socket.socket, answers: list[bytes]) -> None:
        connection.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX: a")
        for _ in range(8):
            time.sleep(0.15)
            connection.sendall(b" " * 4000)
        connection.sendall(b"b\r\nConnection: close\r\n\r\n")
        answers.append(read_until_closed(connection)[0])

    answers: list[bytes] = []
    connections = [connect(stack) for _ in range(2)]
    senders = [
        threading.Thread(target=slow_head, args=(connection, answers)) for connection in connections
    ]
    for sender in senders:
        sender.start()
    slowest = 0.0
    while any(sender.is_alive() for sender in senders):
        started = time.monotonic()
        assert httpx.get(f"{stack.order_url}/health", timeout=10).status_code == 200
        slowest = max(slowest, time.monotonic() - started)
        time.sleep(0.05)
    for sender in senders:
        sender.join()
    for connection in connections:
        connection.close()
    assert slowest < 1.0, f"GET /health took {slowest:.2f} s beside the slow heads"
    assert len(answers) == 2 and all(a.startswith(b"HTTP/1.1 200 ") for a in answers), answers


def test_a_trickling_head_is_cut_at_its_deadline(stack):
    with connect(stack) as connection:
        connection.sendall(b"GET /health HTTP/1.1\r\nX-Slow: ")
        started = time.monotonic()
        with Trickle([connection], b"a"):
            answer, closed = read_until_closed(connection)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:80]
    assert HEADER_S - 0.1 < closed - started < HEADER_S + 1.5


@pytest.mark.parametrize(
    ("service", "path", "body"),
    [("order", "/orders", b'{"productId": 1'), ("product", "/products", b"{")],
)
def test_a_trickling_body_is_a_400_problem_at_its_deadline(stack, service, path, body):
    # POST /orders takes the fast path, POST /products Connexion's pipeline: the same answer.
    with connect(stack, service) as connection:
        connection.sendall(json_post(stack, path))
        connection.sendall(b"Content-Length: 1000\r\n\r\n" + body)
        started = time.monotonic()
        with Trickle([connection], b" "):
            answer, closed = read_until_closed(connection)
    head, _, problem = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), head
    assert b"Content-Type: application/problem+json" in head
    assert json.loads(problem)["status"] == 400
    assert BODY_S - 0.1 < closed - started < BODY_S + 1.5


def test_an_idle_keep_alive_connection_is_closed_after_its_timeout(stack):
    request = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    with connect(stack) as connection:
        reader = connection.makefile("rb")
        connection.sendall(request)
        assert read_response(reader).startswith(b"HTTP/1.1 200 ")
        time.sleep(IDLE_S - 1)  # within the timeout: still open for the next request
        connection.sendall(request)
        assert read_response(reader).startswith(b"HTTP/1.1 200 ")
        started = time.monotonic()
        answer, closed = read_until_closed(connection)
    assert answer == b""
    assert IDLE_S - 0.1 < closed - started < IDLE_S + 1.5


def test_idle_connections_do_not_hold_a_stopping_worker(stack):
    idle = [connect(stack) for _ in range(CONNECTIONS // 2)]
    master = stack.processes["order"]
    started = time.monotonic()
    master.send_signal(signal.SIGTERM)
    master.wait(timeout=15)
    took = time.monotonic() - started
    # gunicorn's graceful timeout is 5 s: idle connections no longer run it out.
    assert took < 4, f"the master took {took:.1f} s to stop"
    assert "graceful timeout" not in stack.log_of("order")
    assert not psutil.pid_exists(master.pid)
    for connection in idle:
        connection.close()


def test_the_benchmark_client_reconnects_where_the_server_closed_an_idle_connection(stack):
    # 8 connections taking turns at 1 request/s: each is idle about 8 s, past the 3 s timeout.
    result = openloop.run(f"{stack.order_url}/health", rate=1, seconds=12, connections=8)
    assert result.completed >= 6
    assert result.failed(200) == 0, result.summary()
