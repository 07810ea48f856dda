"""The web workers' HTTP framing (service_kit/process/http_framing.py, gevent_worker.py): over raw
sockets against a real gunicorn worker serving a tiny app, every malformed or ambiguous request
is answered once and its connection closed, so nothing smuggled behind it runs; worst-case inputs
cost time linear in their size; and on generated requests the framing agrees with h11's."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h11
import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service_kit.process.http_framing import MAX_HEAD_BYTES, Refusal, Request, RequestReader

ROOT = Path(__file__).resolve().parents[2]
MAX_BODY = 1024 * 1024  # the services' limit (service_kit/http/app.py)
HEADER_S = BODY_S = 2

CONFIG = f"""
from service_kit.config import ConnectionLimits

bind = "127.0.0.1:{{port}}"
workers = 1
worker_class = "service_kit.process.gevent_worker.Worker"
control_socket_disable = True
graceful_timeout = 1
accesslog = "-"

def post_fork(_arbiter, worker):
    worker.connection_limits = ConnectionLimits(
        connections=50, idle_timeout_s=5, header_timeout_s={HEADER_S}, body_timeout_s={BODY_S}
    )
"""


class Served:
    """A gunicorn master with one worker of the services' class, serving tests/unit/framing_app."""

    def __init__(self, port: int, app_log: Path, master: subprocess.Popen) -> None:
        self.port, self.app_log, self.master = port, app_log, master

    @property
    def worker(self) -> psutil.Process:
        return psutil.Process(self.master.pid).children()[0]

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)

    def paths_run(self) -> list[str]:
        if not self.app_log.exists():
            return []
        return [json.loads(line)["path"] for line in self.app_log.read_text().splitlines()]

    def exchange(self, data: bytes, *, half_close: bool = False) -> bytes:
        """Send `data`; everything answered until the server closes the connection."""
        with self.connect() as connection:
            connection.sendall(data)
            if half_close:
                connection.shutdown(socket.SHUT_WR)
            return read_until_closed(connection)


def read_until_closed(connection: socket.socket) -> bytes:
    answer = b""
    while chunk := connection.recv(65536):
        answer += chunk
    return answer


def read_response(reader: Any) -> tuple[bytes, bytes]:
    """One response's head and body (Content-Length or chunked) from a socket's file."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        line = reader.readline()
        assert line, f"the connection closed within a response: {head!r}"
        head += line
    if length := re.search(rb"(?i)\r\ncontent-length: (\d+)", head):
        return head, reader.read(int(length[1]))
    body = b""
    if re.search(rb"(?i)\r\ntransfer-encoding: chunked", head):
        while size := int(reader.readline().strip(), 16):
            body += reader.read(size)
            reader.readline()
        reader.readline()
    return head, body


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("framing")
    port = free_port()
    config = folder / "gunicorn.conf.py"
    config.write_text(CONFIG.replace("{port}", str(port)))
    app_log = folder / "app.log"
    log = (folder / "gunicorn.log").open("wb")
    master = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(config), "tests.unit.framing_app:app"],
        cwd=ROOT,
        env=os.environ | {"FRAMING_APP_LOG": str(app_log)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    running = Served(port, app_log, master)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = running.exchange(
                    b"GET /up HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                )
                if answer.startswith(b"HTTP/1.1 200 "):
                    break
            except OSError:
                pass
            assert master.poll() is None, (folder / "gunicorn.log").read_text()
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.2)
        yield running
    finally:
        master.send_signal(signal.SIGTERM)
        master.wait(timeout=15)
        log.close()
    assert "Traceback" not in (folder / "gunicorn.log").read_text()


# Well-formed requests.


def test_a_request_is_served_and_the_connection_kept(served):
    with served.connect() as connection:
        reader = connection.makefile("rb")
        for n in range(3):
            connection.sendall(
                b"POST /kept?n=%d HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc" % n
            )
            head, body = read_response(reader)
            assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"\r\nDate: " in head
            seen = json.loads(body)
            assert (seen["method"], seen["path"], seen["query"]) == ("POST", "/kept", f"n={n}")
            assert (seen["length"], seen["body"]) == ("3", "abc")


def test_pipelined_requests_are_answered_in_order(served):
    requests = b"".join(b"GET /pipelined/%d HTTP/1.1\r\nHost: x\r\n\r\n" % n for n in range(3))
    answer = served.exchange(
        requests + b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    paths = [json.loads(body)["path"] for body in re.findall(rb"\r\n\r\n(\{[^\n]*?\}\})", answer)]
    assert paths == ["/pipelined/0", "/pipelined/1", "/pipelined/2", "/last"]
    assert answer.count(b"Connection: close") == 1


def test_a_chunked_body_is_given_to_the_app_whole_with_its_length_and_trailers_ignored(served):
    answer = served.exchange(
        b"POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n"
        b"\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: ignored\r\n\r\n"
    )
    seen = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert (seen["body"], seen["length"]) == ("abcde", "5")
    assert "HTTP_TRANSFER_ENCODING" not in seen["headers"]
    assert "HTTP_X_TRAILER" not in seen["headers"]


def test_header_values_lose_their_surrounding_whitespace_and_underscored_names_are_dropped(served):
    answer = served.exchange(
        b"GET /h HTTP/1.1\r\nHost: x\r\nX-A: \t a b \t\r\nX-A: c\r\nX_Forwarded_For: spoof\r\n"
        b"Connection: close\r\n\r\n"
    )
    headers = json.loads(answer.partition(b"\r\n\r\n")[2])["headers"]
    assert headers["HTTP_X_A"] == "a b,c"
    assert "HTTP_X_FORWARDED_FOR" not in headers


def test_expect_100_continue_is_answered_before_the_body(served):
    with served.connect() as connection:
        reader = connection.makefile("rb")
        connection.sendall(
            b"POST /continue HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Length: 2\r\n\r\n"
        )
        assert reader.readline() == b"HTTP/1.1 100 Continue\r\n" and reader.readline() == b"\r\n"
        connection.sendall(b"ok")
        head, body = read_response(reader)
        assert head.startswith(b"HTTP/1.1 200 ") and json.loads(body)["body"] == "ok"


def test_an_answer_without_a_length_is_chunked_for_http_1_1_and_ends_the_connection_for_1_0(served):
    with served.connect() as connection:
        reader = connection.makefile("rb")
        connection.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        head, body = read_response(reader)
        assert b"Transfer-Encoding: chunked" in head and body == b"one,two"
        connection.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")  # still open
        assert read_response(reader)[1] == b"one,two"
    answer = served.exchange(b"GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"Connection: close" in head and b"chunked" not in head and body == b"one,two"


def test_http_1_0_closes_unless_kept_alive(served):
    answer = served.exchange(b"GET /ten HTTP/1.0\r\n\r\nGET /never HTTP/1.0\r\n\r\n")
    assert answer.count(b"HTTP/1.1 200 ") == 1 and b"Connection: close" in answer
    with served.connect() as connection:
        reader = connection.makefile("rb")
        for _ in range(2):
            connection.sendall(b"GET /ten-kept HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            head, _ = read_response(reader)
            assert b"Connection: keep-alive" in head
    assert "/never" not in served.paths_run()


# Refused requests: one answer, then the connection closed, and nothing behind them run.

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
CHUNKED = b"POST /refused HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"


def post(headers: bytes, body: bytes = b"") -> bytes:
    return b"POST /refused HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n" + body


REFUSED = {
    # chunked bodies
    "a chunk size line ending in a bare LF": (400, CHUNKED + b"3\nabc\r\n0\r\n\r\n"),
    "a 0x chunk size": (400, CHUNKED + b"0x3\r\nabc\r\n0\r\n\r\n"),
    "a chunk size with trailing junk": (400, CHUNKED + b"0 x\r\n\r\n"),
    "a chunk size with a space": (400, CHUNKED + b"3 \r\nabc\r\n0\r\n\r\n"),
    "a chunk size overflowing": (400, CHUNKED + b"1" + b"0" * 20 + b"\r\nabc\r\n0\r\n\r\n"),
    "a negative chunk size": (400, CHUNKED + b"-3\r\nabc\r\n0\r\n\r\n"),
    "no CRLF after chunk data": (400, CHUNKED + b"3\r\nabcX\r\n0\r\n\r\n"),
    "a bad chunk extension": (400, CHUNKED + b"3;\r\nabc\r\n0\r\n\r\n"),
    "a bad trailer": (400, CHUNKED + b"0\r\nX y\r\n\r\n"),
    "a trailer with a bare LF": (400, CHUNKED + b"0\r\nX: y\n\r\n"),
    "HTTP/1.0 with Transfer-Encoding": (
        400,
        b"POST /refused HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    ),
    # framing headers
    "two chunked": (400, post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n")),
    "gzip, chunked": (400, post(b"Transfer-Encoding: gzip, chunked\r\n", b"0\r\n\r\n")),
    "chunked, identity": (400, post(b"Transfer-Encoding: chunked, identity\r\n")),
    "an unknown coding": (400, post(b"Transfer-Encoding: identity\r\n")),
    "chunked and a length": (
        400,
        post(b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n", b"0\r\n\r\n"),
    ),
    "a length and chunked": (
        400,
        post(b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"),
    ),
    "two lengths": (400, post(b"Content-Length: 4\r\nContent-Length: 40\r\n", b"body")),
    "two equal lengths": (400, post(b"Content-Length: 4\r\nContent-Length: 4\r\n", b"body")),
    "a list of lengths": (400, post(b"Content-Length: 4, 4\r\n", b"body")),
    "a signed length": (400, post(b"Content-Length: +4\r\n", b"body")),
    "a length with _": (400, post(b"Content-Length: 0_4\r\n", b"body")),
    "an empty length": (400, post(b"Content-Length: \r\n", b"body")),
    "space before the colon": (400, post(b"Content-Length : 4\r\n", b"body")),
    "a line without a colon": (400, post(b"Content-Length 4\r\n", b"body")),
    "a bare CR": (400, post(b"X: a\rContent-Length: 4\r\n", b"body")),
    "a bare LF": (400, post(b"X: a\nContent-Length: 4\r\n", b"body")),
    "a folded line": (400, post(b"X: a\r\n Content-Length: 4\r\n", b"body")),
    "NUL in a value": (400, post(b"X: a\x00b\r\n")),
    "no Host": (400, b"POST /refused HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
    "a second Host": (400, post(b"Host: y\r\n")),
    # request lines, versions, upgrades
    "HTTP/0.9": (400, b"GET /refused\r\n\r\n"),
    "HTTP/1.2": (400, b"GET /refused HTTP/1.2\r\nHost: x\r\n\r\n"),
    "HTTP/2.0 in text": (400, b"GET /refused HTTP/2.0\r\nHost: x\r\n\r\n"),
    "the HTTP/2 preface": (400, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
    "a fourth word": (400, b"GET /refused HTTP/1.1 x\r\nHost: x\r\n\r\n"),
    "an unknown method": (400, b"FOO /refused HTTP/1.1\r\nHost: x\r\n\r\n"),
    "an escape in the target": (400, b"GET /refused/\x1b[2J HTTP/1.1\r\nHost: x\r\n\r\n"),
    "an upgrade": (
        400,
        b"GET /refused HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
    ),
    "CONNECT": (400, b"CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n"),
    # limits
    "a body over the limit": (413, post(b"Content-Length: %d\r\n" % (MAX_BODY + 1), b"abc")),
    "a header section over 32 KiB": (431, post(b"X: " + b"y" * MAX_HEAD_BYTES + b"\r\n")),
    "101 header fields": (431, post(b"".join(b"X-%d: y\r\n" % n for n in range(101)))),
}


@pytest.mark.parametrize(("status", "request_bytes"), REFUSED.values(), ids=REFUSED.keys())
def test_a_malformed_request_gets_one_answer_and_nothing_behind_it_runs(
    served, status, request_bytes
):
    answer = served.exchange(request_bytes + SMUGGLED)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % status), answer[:200]
    assert answer.count(b"HTTP/1.1 ") == 1, answer
    assert b"\r\nContent-Type: application/problem+json" in head
    assert b"\r\nConnection: close" in head
    problem = json.loads(body)
    assert problem["status"] == status
    assert problem["requestId"] == re.search(rb"\r\nX-Request-ID: (\S+)", head)[1].decode()
    assert "/smuggled" not in served.paths_run() and "/refused" not in served.paths_run()


def test_a_chunked_body_over_the_limit_is_a_413(served):
    chunk = b"%x\r\n%s\r\n" % (MAX_BODY + 1, b"y" * (MAX_BODY + 1))
    answer = served.exchange(CHUNKED + chunk + b"0\r\n\r\n" + SMUGGLED)
    assert answer.startswith(b"HTTP/1.1 413 ") and answer.count(b"HTTP/1.1 ") == 1


def test_a_refusal_echoes_a_well_formed_request_id(served):
    answer = served.exchange(post(b"X-Request-ID: probe-1\r\nContent-Length: 4, 4\r\n"))
    assert b"\r\nX-Request-ID: probe-1\r\n" in answer
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["requestId"] == "probe-1"


def test_a_request_cut_short_is_a_400(served):
    answer = served.exchange(post(b"Content-Length: 40\r\n", b"short"), half_close=True)
    assert answer.startswith(b"HTTP/1.1 400 ") and answer.count(b"HTTP/1.1 ") == 1


def test_a_request_after_a_good_one_on_the_same_connection_is_refused_alone(served):
    answer = served.exchange(
        b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n" + post(b"Content-Length: 1, 2\r\n") + SMUGGLED
    )
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert answer.count(b"HTTP/1.1 400 ") == 1 and answer.count(b"HTTP/1.1 ") == 2
    assert "/smuggled" not in served.paths_run()


@pytest.mark.parametrize(
    "partial",
    [b"GET /slow HTTP/1.1\r\nHost: x\r\nX-Slow: a", post(b"Content-Length: 10\r\n", b"abc")],
    ids=["head", "body"],
)
def test_a_late_head_or_body_is_a_400_at_its_deadline(served, partial):
    with served.connect() as connection:
        connection.sendall(partial)
        started = time.monotonic()
        answer = read_until_closed(connection)
    assert answer.startswith(b"HTTP/1.1 400 ") and b"application/problem+json" in answer
    assert HEADER_S - 0.1 < time.monotonic() - started < HEADER_S + 1.5


# Worst cases cost time linear in their size.


def cpu_of(data: bytes, *, times: int = 5) -> float:
    """The least CPU time (s) the framing takes over `data`, fed in 64 KiB pieces."""
    best = float("inf")
    for _ in range(times):
        reader = RequestReader(max_body=MAX_BODY)
        started = time.process_time()
        for start in range(0, len(data), 65536):
            reader.feed(data[start : start + 65536])
        best = min(best, time.process_time() - started)
        assert reader.refusal is None and len(reader.requests) == 1, reader.refusal
    return best


def head_with(value: bytes) -> bytes:
    return b"GET /health HTTP/1.1\r\nHost: x\r\nX: " + value + b"\r\n\r\n"


def test_worst_case_header_sections_cost_what_plain_ones_of_their_size_do():
    size = 32_000
    plain = cpu_of(head_with(b"a" * size))
    worst = {
        "a run of spaces": head_with(b"a" + b" " * size + b"b"),
        "a run of tabs": head_with(b"a" + b"\t" * size + b"b"),
        "spaces and tabs": head_with(b"a" + b" \t" * (size // 2) + b"b"),
        "leading whitespace": head_with(b" " * size + b"b"),
        "trailing whitespace": head_with(b"b" + b" " * size),
        "many tiny headers": b"GET / HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X%d: y\r\n" % n for n in range(98))
        + b"\r\n",
        "a long name": b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X" * size + b": y\r\n\r\n",
        "a long target": b"GET /" + b"a" * size + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    }
    for name, data in worst.items():
        cost = cpu_of(data)
        assert cost < 0.020, (name, cost)
        assert cost < 5 * plain + 0.001, (name, cost, plain)


def test_chunked_bodies_cost_time_linear_in_their_chunks():
    def chunked(count: int, extension: bytes = b"") -> bytes:
        return CHUNKED + b"1%s\r\ny\r\n" % extension * count + b"0\r\n\r\n"

    small, large = cpu_of(chunked(2_000)), cpu_of(chunked(20_000))
    assert large < 0.5, large
    assert large < 15 * small + 0.002, (small, large)
    long_extensions = cpu_of(chunked(10, b";e=" + b"x" * 30_000))
    assert long_extensions < 0.020, long_extensions


def worker_cpu_per_request(served: Served, request: bytes, times: int = 40) -> float:
    worker = served.worker
    with served.connect() as connection:
        reader = connection.makefile("rb")
        connection.sendall(request)  # a first one outside the count
        read_response(reader)
        before = sum(worker.cpu_times()[:2])
        for _ in range(times):
            connection.sendall(request)
            read_response(reader)
        return (sum(worker.cpu_times()[:2]) - before) / times


def test_a_header_of_32_000_spaces_costs_the_worker_what_a_plain_request_does(served):
    plain = worker_cpu_per_request(served, head_with(b"a" * 32_002))
    spaces = worker_cpu_per_request(served, head_with(b"a" + b" " * 32_000 + b"b"))
    assert spaces < 0.020, spaces
    assert spaces < 2 * plain + 0.002, (spaces, plain)


# Agreement with h11 on generated requests.

TOKEN = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-!#$%&'*+.^_`|~",
    min_size=1,
    max_size=12,
)
VALUE_CHARS = st.sampled_from(
    [bytes([c]) for c in range(0x21, 0x7F)] + [b"\xe9", b"\xff", b" ", b"\t"]
)
PATH = st.text("abcdefghijklmnopqrstuvwxyz0123456789-._~%/=&+", max_size=20)
# Mutations: bytes that matter to framing, inserted, or put in place of another, or one deleted.
SPECIAL = [b" ", b"\t", b"\r", b"\n", b"\r\n", b"\x00", b":", b";", b",", b"0", b"x", b"-", b"\x7f"]
FRAMING_LINES = [
    b"Content-Length: 3\r\n",
    b"Content-Length: 0\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: gzip\r\n",
    b"Host: y\r\n",
    b"Connection: close\r\n",
]


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    method = draw(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]))
    version = draw(st.sampled_from(["1.1", "1.1", "1.1", "1.0"]))
    target = "/" + draw(PATH) + (("?" + draw(PATH)) if draw(st.booleans()) else "")
    head = f"{method} {target} HTTP/{version}\r\n".encode()
    fields = [(b"Host", b"x")] if version == "1.1" or draw(st.booleans()) else []
    for _ in range(draw(st.integers(0, 4))):
        name = draw(TOKEN).encode()
        value = b"".join(draw(st.lists(VALUE_CHARS, max_size=12))).strip(b" \t")
        space = draw(st.sampled_from([b"", b" ", b"\t ", b"  "]))
        fields.append((name, space + value + space[::-1]))
    body = draw(st.binary(max_size=40))
    framing = draw(st.sampled_from(["none", "length", "chunked"]))
    if framing == "length" or (framing == "chunked" and version == "1.0"):
        fields.append((b"Content-Length", b"%d" % len(body)))
        framed = body
    elif framing == "chunked":
        fields.append((b"Transfer-Encoding", b"chunked"))
        cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=4)))
        pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True) if b > a]
        extension = draw(st.sampled_from([b"", b";a=b", b';q="x y"']))
        trailer = draw(st.sampled_from([b"", b"X-T: v\r\n"]))
        framed = b"".join(b"%x%s\r\n%s\r\n" % (len(p), extension, p) for p in pieces)
        framed += b"0\r\n" + trailer + b"\r\n"
    else:
        framed = b""
    draw(st.randoms()).shuffle(fields)
    data = head + b"".join(n + b":" + v + b"\r\n" for n, v in fields) + b"\r\n" + framed
    mutation = draw(st.sampled_from(["none", "none", "insert", "replace", "delete", "line"]))
    if mutation == "none":
        return data
    at = draw(st.integers(0, len(data) - 1))
    if mutation == "line":
        at = data.index(b"\r\n") + 2
        return data[:at] + draw(st.sampled_from(FRAMING_LINES)) + data[at:]
    special = draw(st.sampled_from(SPECIAL))
    if mutation == "insert":
        return data[:at] + special + data[at:]
    if mutation == "replace":
        return data[:at] + special + data[at + 1 :]
    return data[:at] + data[at + 1 :]


def ours(data: bytes) -> Request | Refusal:
    reader = RequestReader(max_body=MAX_BODY)
    reader.feed(data)
    if reader.requests:
        return reader.requests[0]
    return reader.refusal or Refusal(400, "The request ended before it was complete")


def h11s(data: bytes) -> tuple[h11.Request, bytes] | str:
    """h11's first request and its body, or why h11 refuses it."""
    connection = h11.Connection(h11.SERVER)
    connection.receive_data(data)
    connection.receive_data(b"")
    request, body = None, b""
    try:
        while True:
            event = connection.next_event()
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return request, body
            else:
                return f"no complete request: {event}"
    except h11.RemoteProtocolError as exc:
        return str(exc)


# What llhttp refuses (strictly, as RFC 9112 allows) and h11 tolerates, by llhttp's words; and
# this service's own rules, which h11 leaves to its user.
STRICTER = re.compile(
    "|".join(
        [
            # line endings: bare CR or LF, folded lines
            "Expected CRLF|Missing expected (CR|LF)|Expected LF|Unexpected whitespace",
            # characters: control characters in values, methods llhttp does not know, targets
            # that are neither origin nor absolute form
            "Invalid header (value|field|token)|Invalid method|Expected space after method",
            "in url|Unexpected space after start line",
            # framing h11 resolves and llhttp refuses (RFC 9112 §6.3 allows either)
            "Invalid character in (chunk size|Content-Length|chunk extensions)",
            "Duplicate Content-Length|can.t be present with|[Ii]nvalid `Transfer-Encoding`",
            # this service's own rules
            "Transfer-Encoding in an HTTP/1.0|Transfer-Encoding other than|Not exactly one Host",
            "HTTP/\\S+ is not served|Upgrades|Invalid HTTP version",
        ]
    )
)


def without_llhttp_leniencies(data: bytes) -> bytes:
    """`data` as llhttp reads it, for h11: llhttp skips CR and LF before a request line
    (RFC 9112 §2.2 asks a server to skip at least one empty line there) and takes several spaces
    after the method or the target (h11 exactly one). Neither can move where a message ends."""
    data = data.lstrip(b"\r\n")
    line, crlf, rest = data.partition(b"\r\n")
    return re.sub(b"  +", b" ", line) + crlf + rest


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(requests())
def test_the_framing_agrees_with_h11(data):
    mine, theirs = ours(data), h11s(without_llhttp_leniencies(data))
    if isinstance(mine, Request):
        assert not isinstance(theirs, str), (data, theirs)
        request, body = theirs
        assert mine.method.encode() == request.method
        assert mine.target == request.target
        assert mine.version.encode() == request.http_version
        assert [(n.lower(), v) for n, v in mine.headers] == list(request.headers)
        assert mine.body == body
    elif not isinstance(theirs, str):
        assert STRICTER.search(mine.detail), (data, mine.detail, theirs)
