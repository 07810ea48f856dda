"""gunicorn's gevent worker serving the WSGI app over connections framed by llhttp.

gunicorn accepts the connections (its gevent machinery: a pool of greenlets per listener, its
signals and graceful stop); each connection is read here: its requests are framed by
`http_framing.RequestReader` (llhttp through httptools, strict), each one's body read in full
before the app runs, and the app's answer written here with its length, or chunked for an
HTTP/1.1 client when the app gives none. A request that is refused gets one problem+json answer
(400, 413 or 431, with an X-Request-ID) and its connection is closed, lingering: the write side
shut, what the client still sends drained for a moment, then closed, so the answer arrives and
nothing after a framing error ever runs as a request.

Each connection's waits on its client have deadlines, and a full worker makes room for a new
connection (process/connection_watch.py). A head or body cut at its deadline is answered 400.
"""

import contextlib
import datetime
import socket
import time
from collections.abc import Iterable
from email.utils import formatdate
from typing import Any
from urllib.parse import unquote_to_bytes

import gevent
import orjson
from gunicorn.http.wsgi import base_environ
from gunicorn.workers.ggevent import GeventWorker
from werkzeug.http import HTTP_STATUS_CODES

from service_kit import request_id
from service_kit.config import ConnectionLimits
from service_kit.process.connection_watch import ConnectionWatch
from service_kit.process.http_framing import Refusal, Request, RequestReader

RECV_BYTES = 64 * 1024
# After a refusal: how long, and how much, the client's remaining bytes are read and dropped so
# that closing does not reset the connection before it has read the answer.
LINGER_S = 1.0
LINGER_BYTES = 4 * 1024 * 1024
_NO_BODY_STATUS = ("1", "204", "304")


class _Date:
    """The Date header's value, formatted once a second."""

    second = -1
    value = ""

    @classmethod
    def now(cls) -> str:
        second = int(time.time())
        if second != cls.second:
            cls.second, cls.value = second, formatdate(second, usegmt=True)
        return cls.value


class _Response:
    """What gunicorn's access logger reads of a response."""

    __slots__ = ("headers", "sent", "status")

    def __init__(self, status: str, headers: list[tuple[str, str]], sent: int) -> None:
        self.status, self.headers, self.sent = status, headers, sent


class Connection:
    """One client connection: its requests read, run and answered in order."""

    def __init__(self, worker: "Worker", sock: socket.socket, addr: Any) -> None:
        self.worker = worker
        self.socket = sock  # what ConnectionWatch shuts at a deadline
        self.addr = addr
        watch = worker.watch
        self.reader = RequestReader(
            max_body=worker.max_body,
            on_head_start=lambda: watch.reading_head(self),
            on_head_end=lambda: watch.reading_body(self),
            on_complete=lambda: watch.working(self),
        )
        self.base_environ = self._connection_environ()

    def _connection_environ(self) -> dict[str, Any]:
        environ = self.worker.base_environ.copy()
        with contextlib.suppress(OSError, TypeError, ValueError):
            host, port = self.socket.getsockname()[:2]
            environ["SERVER_NAME"], environ["SERVER_PORT"] = str(host), str(port)
        if isinstance(self.addr, tuple):
            environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = str(self.addr[0]), str(self.addr[1])
        return environ

    def serve(self) -> None:
        reader, watch = self.reader, self.worker.watch
        continued = False
        while True:
            while reader.requests:
                continued = False
                if not self._answer(reader.requests.popleft()):
                    self._close_lingering()
                    return
            if reader.refusal is not None:
                self._refuse(reader.refusal)
                return
            if not reader.in_message:
                watch.idle(self)
            elif reader.expects_continue and not continued:
                self.socket.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                continued = True
            try:
                data = self.socket.recv(RECV_BYTES)
            except OSError:
                data = b""
            if not data:  # the client is gone, or the connection was shut at a deadline
                if reader.in_message:
                    self._refuse(Refusal(400, "The request ended before it was complete"))
                return
            reader.feed(data)

    def _answer(self, request: Request) -> bool:
        """Run `request` through the app and write its answer; whether to keep the connection."""
        started = time.monotonic()
        environ = self._environ(request)
        state: dict[str, Any] = {"keep_alive": request.keep_alive and self.worker.alive}

        def start_response(status: str, headers: list, exc_info: Any = None) -> Any:
            if exc_info is not None and state.get("sent"):
                raise exc_info[1].with_traceback(exc_info[2])
            state["status"], state["headers"] = status, headers
            return write

        def write(data: bytes) -> None:
            self._write(state, request, [data])

        try:
            result = self.worker.wsgi(environ, start_response)
            try:
                self._write(state, request, result, final=True)
            finally:
                if hasattr(result, "close"):
                    result.close()
        except OSError:  # the client left while its answer was written
            return False
        except Exception:
            self.worker.log.exception("Error handling request %s", environ["RAW_URI"][:200])
            if state.get("sent"):
                return False
            state.update(status="500 Internal Server Error", headers=[], keep_alive=False)
            self._problem(500, "The request failed", state, environ.get("HTTP_X_REQUEST_ID"))
        if self.worker.access_log:
            took = datetime.timedelta(seconds=time.monotonic() - started)
            response = _Response(state["status"], state["headers"], state.get("length", 0))
            headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in request.headers]
            self.worker.log.access(response, headers, environ, took)
        return state["keep_alive"]

    def _write(
        self, state: dict[str, Any], request: Request, body: Iterable[bytes], *, final: bool = False
    ) -> None:
        """Write (more of) the answer, the head first with the framing it needs; with `final`,
        `body` is the rest of it. `state["keep_alive"]` ends up saying whether the connection is
        kept."""
        if "status" not in state:
            raise RuntimeError("the app wrote before start_response")
        if not state.get("sent"):
            state["head"] = self._head(state, request, body, final)
        out = [state.pop("head")] if "head" in state else []
        sent = 0
        for part in body:
            if part and not state["no_body"]:
                sent += len(part)
                out.append(b"%x\r\n%s\r\n" % (len(part), part) if state["chunked"] else part)
                if len(out) > 1 or sent > RECV_BYTES:  # keep a long answer streaming
                    self.socket.sendall(b"".join(out))
                    out = []
        if final and state["chunked"]:
            out.append(b"0\r\n\r\n")
        if out:
            self.socket.sendall(b"".join(out))
        state["length"] += sent

    @staticmethod
    def _head(state: dict[str, Any], request: Request, body: Iterable[bytes], final: bool) -> bytes:
        status: str = state["status"]
        headers: list[tuple[str, str]] = state["headers"]
        length = None
        for name, value in headers:
            lowered = name.lower()
            if lowered == "content-length":
                length = int(value)
            elif lowered == "connection" and value.lower() == "close":
                state["keep_alive"] = False
        no_body = request.method == "HEAD" or status.startswith(_NO_BODY_STATUS)
        if length is None and not no_body and final and isinstance(body, list | tuple):
            length = sum(len(part) for part in body)
            headers = [*headers, ("Content-Length", str(length))]
        chunked = length is None and not no_body and request.version == "1.1"
        if length is None and not no_body and not chunked:
            state["keep_alive"] = False  # an HTTP/1.0 client reads to the end of the connection
        lines = [f"HTTP/1.1 {status}\r\n"]
        lines += [f"{name}: {value}\r\n" for name, value in headers]
        lines.append(f"Date: {_Date.now()}\r\n")
        if chunked:
            lines.append("Transfer-Encoding: chunked\r\n")
        if not state["keep_alive"]:
            lines.append("Connection: close\r\n")
        elif request.version == "1.0":
            lines.append("Connection: keep-alive\r\n")
        lines.append("\r\n")
        state.update(sent=True, chunked=chunked, no_body=no_body, length=0)
        return "".join(lines).encode("latin-1")

    def _environ(self, request: Request) -> dict[str, Any]:
        environ = self.base_environ.copy()
        target = request.target
        if not target.startswith(b"/"):  # absolute form (or `*`): the path is what follows
            scheme, _, rest = target.partition(b"://")
            target = b"/" + rest.partition(b"/")[2] if rest else target
        path, _, query = target.partition(b"?")
        path = path.partition(b"#")[0]
        environ.update(
            {
                "REQUEST_METHOD": request.method,
                "SCRIPT_NAME": "",
                "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
                "QUERY_STRING": query.partition(b"#")[0].decode("latin-1"),
                "RAW_URI": request.target.decode("latin-1"),
                "SERVER_PROTOCOL": f"HTTP/{request.version}",
                "wsgi.input": _Body(request.body),
                "wsgi.input_terminated": True,
            }
        )
        chunked = False
        for name, value in request.headers:
            key = name.decode("latin-1").upper()
            if "_" in key:
                continue  # X_Forwarded_For must not pass for X-Forwarded-For
            text = value.decode("latin-1")
            if key == "CONTENT-TYPE":
                environ["CONTENT_TYPE"] = text
                continue
            if key == "CONTENT-LENGTH":
                environ["CONTENT_LENGTH"] = text
                continue
            if key == "TRANSFER-ENCODING":
                chunked = True  # the app gets the decoded body and its length instead
                continue
            key = "HTTP_" + key.replace("-", "_")
            environ[key] = f"{environ[key]},{text}" if key in environ else text
        if chunked:
            environ["CONTENT_LENGTH"] = str(len(request.body))
        return environ

    def _refuse(self, refusal: Refusal) -> None:
        rid = self.reader.request_id
        # The detail is the parser's or ours, never the client's bytes: safe to log as it is.
        peer = self.addr[0] if isinstance(self.addr, tuple) else "-"
        self.worker.log.info(
            "Refused a request from %s: %s %s", peer, refusal.status, refusal.detail
        )
        self._problem(
            refusal.status,
            refusal.detail,
            {},
            rid.decode("latin-1") if rid is not None else None,
        )
        self._close_lingering()

    def _problem(self, status: int, detail: str, state: dict[str, Any], rid: str | None) -> None:
        """A problem+json answer of our own, the connection to be closed after it."""
        title = HTTP_STATUS_CODES[status]
        rid = request_id.accept_or_generate(rid)
        body = orjson.dumps(
            {
                "type": "about:blank",
                "title": title,
                "status": status,
                "detail": detail,
                "requestId": rid,
            }
        )
        head = (
            f"HTTP/1.1 {status} {title}\r\nContent-Type: application/problem+json\r\n"
            f"Content-Length: {len(body)}\r\n{request_id.HEADER}: {rid}\r\n"
            f"Date: {_Date.now()}\r\nConnection: close\r\n\r\n"
        )
        state["length"] = len(body)
        with contextlib.suppress(OSError):  # the client left already
            self.socket.sendall(head.encode("latin-1") + body)

    def _close_lingering(self) -> None:
        sock = self.socket
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
            drained = 0
            with gevent.Timeout(LINGER_S, False):
                while drained < LINGER_BYTES and (data := sock.recv(RECV_BYTES)):
                    drained += len(data)


class _Body:
    """wsgi.input over a body read in full."""

    __slots__ = ("_data", "_position")

    def __init__(self, data: bytes) -> None:
        self._data, self._position = data, 0

    def read(self, size: int | None = -1) -> bytes:
        start = self._position
        end = len(self._data) if size is None or size < 0 else min(start + size, len(self._data))
        self._position = end
        return self._data[start:end]

    def readline(self, size: int | None = -1) -> bytes:
        start = self._position
        end = self._data.find(b"\n", start) + 1 or len(self._data)
        if size is not None and size >= 0:
            end = min(end, start + size)
        self._position = end
        return self._data[start:end]

    def readlines(self, hint: int = -1) -> list[bytes]:
        return list(iter(self.readline, b""))

    def __iter__(self) -> Any:
        return iter(self.readline, b"")


class Worker(GeventWorker):
    """`worker_class = "service_kit.process.gevent_worker.Worker"`."""

    connection_limits = ConnectionLimits()  # web_settings' post_fork hook gives the service's

    def run(self) -> None:
        # Imported once the worker runs: gunicorn imports this module before gevent patches.
        from service_kit.http.app import MAX_BODY_BYTES

        self.max_body = MAX_BODY_BYTES
        # Read once: gunicorn's settings are looked up by name on every access.
        self.access_log = bool(self.cfg.accesslog)
        self.watch = ConnectionWatch(self.connection_limits)
        self.base_environ = base_environ(self.cfg) | {
            "wsgi.multithread": True,
            "wsgi.url_scheme": "http",
            "SERVER_NAME": "localhost",
            "SERVER_PORT": "80",
        }
        self._open: dict[Any, int] = {}
        gevent.spawn(self.watch.run, self)
        super().run()

    def handle(self, listener: Any, client: socket.socket, addr: Any) -> None:
        client.setblocking(True)  # gevent's cooperative blocking; deadlines are the watch's
        connection = Connection(self, client, addr)
        self._open[listener] = open_now = self._open.get(listener, 0) + 1
        try:
            self.watch.make_room(connection, self.worker_connections - open_now)
            connection.serve()
        except OSError:  # the client left
            pass
        except Exception:
            self.log.exception("Error on a connection")
        finally:
            self.watch.forget(connection)
            self._open[listener] -= 1
            with contextlib.suppress(OSError):
                client.close()
