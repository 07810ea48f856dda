"""gunicorn's gevent_pywsgi worker, reading requests strictly (RFC 9112) and fast.

gevent's WSGI server reads headers with `http.client.parse_headers`, which runs the whole
`email` package's parser over them (a large share of a web worker's CPU on POST /orders) and
guesses where a request is ambiguous: folded lines, a line without a colon or with space before
it, a bare CR, NUL in a value, several or malformed Content-Lengths, Transfer-Encodings other
than `chunked`, both framings at once, a missing or repeated Host. Behind a proxy that guesses
otherwise, such a request smuggles another. Here the request line and each header line must be
exactly what RFC 9112 allows, the message framing must be unambiguous, and a block over 32 KiB
or of more than 100 lines is refused: every such request gets gevent's 400, and its connection
is closed, so nothing behind it runs.

Each connection's waits on its client have deadlines, and a full worker makes room for a new
connection (process/connection_watch.py).

With the access log on, a request that gevent refuses before it has a WSGI environ is no longer
a traceback in the log (gunicorn's access line needs that environ); with it off, no access line
is prepared at all."""

import re
from collections.abc import Iterator
from typing import Any, BinaryIO

import gevent
from gevent import pywsgi
from gunicorn.workers.ggevent import GeventPyWSGIWorker, PyWSGIHandler

from service_kit.config import ConnectionLimits
from service_kit.process.connection_watch import ConnectionWatch

# RFC 9110/9112: a method and a field name are tokens; a field value is visible characters,
# spaces and tabs (no CR, LF or NUL), its surrounding whitespace not part of it. Lines may end in
# a bare LF (RFC 9112 §2.2 allows a recipient to take it).
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_REQUEST_LINE = re.compile(rf"{_TOKEN} [\x21-\x7e]+ HTTP/1\.[01]\r?\n")
_FIELD_LINE = re.compile(rf"({_TOKEN}):[ \t]*([\t\x20-\x7e\x80-\xff]*?)[ \t]*\r?\n")


class PlainHeaders:
    """The part of http.client's HTTPMessage (as gevent adapts it) that gevent and gunicorn use."""

    __slots__ = ("_fields",)
    status = ""  # what gevent checks for a parse failure

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        self._fields = fields

    def get(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        for key, value in self._fields:
            if key.lower() == name:
                return value
        return default

    getheader = get

    def __delitem__(self, name: str) -> None:
        name = name.lower()
        self._fields = [(key, value) for key, value in self._fields if key.lower() != name]

    @property
    def headers(self) -> Iterator[str]:
        for key, value in self._fields:
            yield f"{key}: {value}\r\n"

    @property
    def typeheader(self) -> str | None:
        return self.get("content-type")

    def items(self) -> list[tuple[str, str]]:
        return list(self._fields)


# Bounds on a request's header block: what clients send fits many times over; more is refused
# with a 400 (gevent's own answer to a header block it cannot read), never a traceback.
MAX_HEADER_BYTES = 32 * 1024
MAX_HEADERS = 100


def read_headers(fp: BinaryIO, http_version: str = "HTTP/1.1") -> Any:
    """A request's headers from `fp`: PlainHeaders, or a message whose `status` says why the
    block is refused."""
    try:
        lines = _header_lines(fp)
    except OSError:  # the connection failed, or was shut at its deadline
        return _refused("The headers did not arrive")
    if isinstance(lines, str):
        return _refused(lines)
    if lines[-1] not in (b"\r\n", b"\n"):
        return _refused("The headers end before their blank line")
    fields = []
    for line in lines[:-1]:
        match = _FIELD_LINE.fullmatch(line.decode("iso-8859-1"))
        if match is None:
            return _refused("A header line that is not `name: value`")
        fields.append((match[1], match[2]))
    problem = _framing_problem(fields, http_version)
    return _refused(problem) if problem else PlainHeaders(fields)


def _framing_problem(fields: list[tuple[str, str]], http_version: str) -> str | None:
    """Why the message's length or target would be ambiguous (RFC 9112 §3.2, §6), if it is."""
    lengths, codings, hosts = [], [], 0
    for name, value in fields:
        lowered = name.lower()
        if lowered == "content-length":
            lengths.append(value)
        elif lowered == "transfer-encoding":
            codings.append(value)
        elif lowered == "host":
            hosts += 1
    if len(lengths) > 1:
        return "More than one Content-Length"
    if lengths and not (lengths[0].isascii() and lengths[0].isdigit()):
        return "A Content-Length that is not digits"
    if codings and (lengths or len(codings) > 1 or codings[0].lower() != "chunked"):
        return "A Transfer-Encoding other than one `chunked` alone"
    if hosts > 1 or (hosts == 0 and http_version == "HTTP/1.1"):
        return "Not exactly one Host"
    return None


def _refused(reason: str) -> Any:
    refused = pywsgi.OldMessage()
    refused.status = reason  # gevent answers 400 and closes the connection
    return refused


def _header_lines(fp: BinaryIO) -> list[bytes] | str:
    """The header block's lines up to the blank one, or why it is refused."""
    lines: list[bytes] = []
    size = 0
    while True:
        line = fp.readline(MAX_HEADER_BYTES - size + 1)
        size += len(line)
        if size > MAX_HEADER_BYTES:
            return "Request header fields too large"
        lines.append(line)
        if line in (b"\r\n", b"\n", b""):
            return lines
        if len(lines) > MAX_HEADERS:
            return "Too many headers"


class Handler(PyWSGIHandler):
    watch: ConnectionWatch  # the worker's own, set on its handler class as the worker starts

    def handle(self) -> None:
        self.watch.make_room(self, self.server.pool)
        try:
            super().handle()
        except OSError:  # the client left while its 400 was written
            pass
        finally:
            self.watch.forget(self)

    def read_requestline(self) -> str:
        self.watch.idle(self)
        try:
            self.rfile.peek(1)  # the next request's first byte
        except OSError:  # the client left, or the connection was shut while idle
            return ""
        self.watch.reading_head(self)
        return super().read_requestline()

    def get_environ(self) -> dict[str, Any]:
        environ = super().get_environ()  # the request's head is read
        self.watch.reading_body(self)
        return environ

    def read_request(self, raw_requestline: str) -> Any:
        if not _REQUEST_LINE.fullmatch(raw_requestline):
            raise ValueError("a request line that is not `method target HTTP/1.x`")  # 400
        return super().read_request(raw_requestline)

    def MessageClass(self, fp: BinaryIO, *_args: Any) -> Any:  # noqa: N802 - gevent's name
        return read_headers(fp, self.request_version)

    def log_request(self) -> None:
        # gunicorn's access line needs the WSGI environ, which a request that gevent refused
        # (400, e.g. a header line too long) never got: it crashed the connection's greenlet
        # with a traceback in the log. gevent has logged why it refused the request.
        # With the access log off, gunicorn would still gather the line's parts (a share of a web
        # worker's CPU on POST /orders) for its logger to drop.
        if self.environ is not None and self.server.log.cfg.accesslog:
            super().log_request()


class Worker(GeventPyWSGIWorker):
    """`worker_class = "service_kit.process.gevent_worker.Worker"`."""

    wsgi_handler = Handler
    connection_limits = ConnectionLimits()  # web_settings' post_fork hook gives the service's

    def run(self) -> None:
        watch = ConnectionWatch(self.connection_limits)
        self.wsgi_handler = type("WatchedHandler", (Handler,), {"watch": watch})
        gevent.spawn(watch.run, self)
        super().run()
