"""Requests framed from a connection's bytes by llhttp (through httptools), strictly.

llhttp is the HTTP/1.1 parser of Node.js and uvicorn, in C, and linear in its input: it is used
here without any of its leniencies. It refuses what RFC 9112 does not allow in a request line,
a header line or a chunked body (bare CR or LF, folded lines, a space before a colon, bad chunk
sizes or extensions, data without its CRLF, bad trailers) and ambiguous framing (several or
malformed Content-Lengths, Content-Length with Transfer-Encoding). On top of it, this module
refuses what llhttp lets through but this service never wants: HTTP versions other than 1.0 and
1.1, a Transfer-Encoding other than exactly `chunked`, any Transfer-Encoding in HTTP/1.0
(RFC 9112 §6.1), upgrades and CONNECT, not exactly one Host in HTTP/1.1, header sections over
32 KiB or 100 fields (431) and bodies over the services' limit (413).

A reader holds one connection's parser: `feed` it bytes, and it queues each complete request
(the body read in full, so an application never waits on its client); once it refuses, it stays
refused, and the connection must be closed after the answer: nothing that follows a framing
error is ever read as a request.
"""

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import httptools

MAX_HEAD_BYTES = 32 * 1024
MAX_HEADERS = 100
# Each field line's framing (": " and CRLF) and the request line's (two spaces, "HTTP/1.1",
# CRLF) count in a header section's size besides the callbacks' bytes.
_LINE_OVERHEAD = 4
_REQUEST_LINE_OVERHEAD = 12


@dataclass(slots=True)
class Request:
    """One request as framed: `headers` in the order sent, values without surrounding
    whitespace; `body` decoded from its chunks if it was chunked."""

    method: str
    target: bytes
    version: str  # "1.0" or "1.1"
    headers: list[tuple[bytes, bytes]]
    body: bytes
    keep_alive: bool


class Refusal(Exception):  # noqa: N818 - it is not an error of ours but an answer
    """Why a request is refused: the status to answer with (400, 413 or 431) and a detail."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class RequestReader:
    """Frames the requests of one connection, refusing bodies over `max_body` bytes (413).
    `on_head_start`, `on_head_end` and `on_complete`
    are told when a request's first byte, its blank line and its last byte are read (the
    connection's deadlines follow them)."""

    def __init__(
        self,
        *,
        max_body: int,
        on_head_start: Callable[[], None] | None = None,
        on_head_end: Callable[[], None] | None = None,
        on_complete: Callable[[], None] | None = None,
    ) -> None:
        self.requests: deque[Request] = deque()
        self.refusal: Refusal | None = None
        self.in_message = False  # a request has begun and is not complete
        self.expects_continue = False  # its head asked for `100 Continue` before its body
        self.request_id: bytes | None = None  # its X-Request-ID, for a refusal's answer
        self._max_body = max_body
        self._on_head_start = on_head_start
        self._on_head_end = on_head_end
        self._on_complete = on_complete
        self._parser = httptools.HttpRequestParser(self)
        self._reset()

    def _reset(self) -> None:
        self._target = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_size = _REQUEST_LINE_OVERHEAD
        self._raw_head = 0  # bytes fed while a head is incomplete, beyond its first chunk
        self._head_done = False
        self._body: list[bytes] = []
        self._body_size = 0
        self._keep_alive = False

    def feed(self, data: bytes) -> None:
        """Read `data`; complete requests are queued in `requests`, a refusal kept in
        `refusal` (after which nothing more is read)."""
        if self.refusal is not None:
            return
        if self.in_message and not self._head_done:
            self._raw_head += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            self._refuse(exc.__context__ if isinstance(exc.__context__, Refusal) else None, exc)
            return
        except httptools.HttpParserUpgrade:
            self._refuse(Refusal(400, "Upgrades and CONNECT are not served"))
            return
        except httptools.HttpParserError as exc:
            self._refuse(None, exc)
            return
        if self.in_message and not self._head_done and self._raw_head > MAX_HEAD_BYTES:
            # Whitespace that no callback sees (around values) counts too.
            self._refuse(Refusal(431, f"The header section is over {MAX_HEAD_BYTES} bytes"))

    def _refuse(self, refusal: Refusal | None, exc: Exception | None = None) -> None:
        self.refusal = refusal or Refusal(400, f"Malformed request: {exc}")
        self.expects_continue = False

    # llhttp's callbacks (httptools calls them by name).

    def on_message_begin(self) -> None:
        self.in_message = True
        self.request_id = None
        if self._on_head_start is not None:
            self._on_head_start()

    def on_url(self, url: bytes) -> None:
        self._target += url
        self._grow_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._head_done:
            return  # a trailer field: read (llhttp checks its syntax) and ignored
        if len(self._headers) >= MAX_HEADERS:
            raise Refusal(431, f"More than {MAX_HEADERS} header fields")
        self._grow_head(len(name) + len(value) + _LINE_OVERHEAD)
        value = value.rstrip(b" \t")  # llhttp leaves a value's trailing whitespace on it
        self._headers.append((name, value))
        if name.lower() == b"x-request-id":
            self.request_id = value

    def _grow_head(self, size: int) -> None:
        self._head_size += size
        if self._head_size > MAX_HEAD_BYTES:
            raise Refusal(431, f"The header section is over {MAX_HEAD_BYTES} bytes")

    def on_headers_complete(self) -> None:
        parser = self._parser
        version = parser.get_http_version()
        if version not in ("1.1", "1.0"):
            raise Refusal(400, f"HTTP/{version} is not served")
        if parser.should_upgrade():
            raise Refusal(400, "Upgrades and CONNECT are not served")
        hosts = 0
        length = None
        chunked = False
        expect = None
        for name, value in self._headers:
            lowered = name.lower()
            if lowered == b"host":
                hosts += 1
            elif lowered == b"content-length":
                length = int(value)  # llhttp let through only digits, once
            elif lowered == b"transfer-encoding":
                if version == "1.0":
                    raise Refusal(400, "Transfer-Encoding in an HTTP/1.0 request")
                if chunked or value.lower() != b"chunked":
                    raise Refusal(400, "A Transfer-Encoding other than one `chunked` alone")
                chunked = True
            elif lowered == b"expect":
                expect = value.lower()
        if hosts > 1 or (hosts == 0 and version == "1.1"):
            raise Refusal(400, "Not exactly one Host")
        if length is not None and length > self._max_body:
            raise Refusal(413, f"The body is over {self._max_body} bytes")
        self._keep_alive = parser.should_keep_alive()
        self._head_done = True
        self.expects_continue = expect == b"100-continue" and version == "1.1"
        if self._on_head_end is not None:
            self._on_head_end()

    def on_body(self, data: bytes) -> None:
        self._body_size += len(data)
        if self._body_size > self._max_body:
            raise Refusal(413, f"The body is over {self._max_body} bytes")
        self._body.append(data)

    def on_message_complete(self) -> None:
        parser = self._parser
        self.requests.append(
            Request(
                method=parser.get_method().decode("ascii"),
                target=self._target,
                version=parser.get_http_version(),
                headers=self._headers,
                body=b"".join(self._body),
                keep_alive=self._keep_alive,
            )
        )
        self.in_message = False
        self.expects_continue = False
        self._reset()
        if self._on_complete is not None:
            self._on_complete()
