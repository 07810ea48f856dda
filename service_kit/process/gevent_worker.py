"""gunicorn's gevent_pywsgi worker with a faster reading of request headers.

gevent's WSGI server reads headers with `http.client.parse_headers`, which runs the whole
`email` package's parser over them: a large share of a web worker's CPU on POST /orders.
Here, header blocks made only of plain `Name: value` lines (the ones clients send) are split
directly, with the same result; any other block (folded lines, a line without a name, bytes the
`email` parser treats specially, no blank line at the end) still goes through the `email`
parser as before. A block over 32 KiB or of more than 100 lines is refused with a 400.

With the access log on, a request that gevent refuses before it has a WSGI environ is no longer
a traceback in the log (gunicorn's access line needs that environ); with it off, no access line
is prepared at all."""

import email.parser
import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from gevent import pywsgi
from gunicorn.workers.ggevent import GeventPyWSGIWorker, PyWSGIHandler

# The `email` parser's header name (printable ASCII but ':'), a value on the same line.
_PLAIN_LINE = re.compile(r"([\x21-\x39\x3b-\x7e]+):[ \t]*([^\r\n]*)\r?\n")
_END = ("\r\n", "\n")


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


def read_headers(fp: BinaryIO) -> Any:
    """A request's headers from `fp`: PlainHeaders, what gevent's own reading gives, or a
    message whose `status` says why the block is refused."""
    lines = _header_lines(fp)
    if isinstance(lines, str):
        refused = pywsgi.OldMessage()
        refused.status = lines  # gevent answers 400
        return refused
    text = b"".join(lines).decode("iso-8859-1")
    fields, position = [], 0
    for line in lines[:-1]:
        match = _PLAIN_LINE.match(text, position)
        if match is None or match.end() != position + len(line):
            return _parsed_by_email(text)
        fields.append((match[1], match[2]))
        position = match.end()
    if text[position:] not in _END:  # no blank line: the stream ended inside the headers
        return _parsed_by_email(text)
    return PlainHeaders(fields)


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


def _parsed_by_email(text: str) -> Any:
    # http.client.parse_headers' own second step, into gevent's message class.
    return email.parser.Parser(_class=pywsgi.OldMessage).parsestr(text)


class Handler(PyWSGIHandler):
    def MessageClass(self, fp: BinaryIO, *_args: Any) -> Any:  # noqa: N802 - gevent's name
        return read_headers(fp)

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
