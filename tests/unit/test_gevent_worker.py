"""The web workers' reading of request headers: plain blocks give what gevent's own reading
gives; every ambiguity RFC 9112 names is refused (gevent then answers 400 and closes)."""

import io

import pytest
from gevent import pywsgi

from service_kit.process.gevent_worker import PlainHeaders, read_headers

PLAIN = [
    b"Host: a\r\nContent-Type: application/json\r\nContent-Length: 23\r\n\r\n",
    b"Host:a\r\nX-A:  spaced\r\nx-a: second\r\n\r\n",  # repeated names: the first counts
    b"Host: a\nX: b\n\n",
    b"Host: a\r\nX: caf\xe9\r\n\r\n",
    b"Host: a\r\nEmpty:\r\n\r\n",
    b"Host: a\r\nTransfer-Encoding: chunked\r\n\r\n",
]
NAMES = ["host", "HOST", "x", "x-a", "content-type", "content-length", "empty", "absent"]
REFUSED = {
    "folded line": b"Host: a\r\nX: folded\r\n  more\r\n\r\n",
    "no colon": b"Host: a\r\nno colon\r\n\r\n",
    "space in the name": b"Bad Name: x\r\nHost: a\r\n\r\n",
    "space before the colon": b"Host: a\r\nContent-Length : 5\r\n\r\n",
    "bare CR": b"Host: a\r\nX: b\rc\r\n\r\n",
    "NUL in a value": b"Host: a\r\nX: b\x00c\r\n\r\n",
    "no blank line": b"Host: a\r\nX: b",
    "two lengths": b"Host: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    "two equal lengths": b"Host: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
    "a signed length": b"Host: a\r\nContent-Length: +23\r\n\r\n",
    "a length with _": b"Host: a\r\nContent-Length: 2_3\r\n\r\n",
    "two chunked": b"Host: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
    "gzip, chunked": b"Host: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    "chunked, identity": b"Host: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
    "an unknown coding": b"Host: a\r\nTransfer-Encoding: identity\r\n\r\n",
    "chunked and a length": b"Host: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
    "no Host": b"X: b\r\n\r\n",
    "two Hosts": b"Host: a\r\nHost: b\r\n\r\n",
    "70 KB in one line": b"Host: a\r\nX: " + b"y" * 70_000 + b"\r\n\r\n",
    "35 KB in all": b"Host: a\r\n"
    + b"".join(b"X-%d: %s\r\n" % (n, b"y" * 5000) for n in range(7))
    + b"\r\n",
    "101 lines": b"Host: a\r\n" + b"".join(b"X-%d: y\r\n" % n for n in range(100)) + b"\r\n",
}


def answers(headers):  # noqa: ANN001, ANN201
    return (
        headers.status,
        list(headers.headers),
        [headers.get(name) for name in NAMES],
        [headers.getheader(name, "default") for name in NAMES],
        headers.typeheader,
        list(headers.items()),
    )


@pytest.mark.parametrize("block", PLAIN)
def test_plain_headers_read_as_gevent_reads_them(block):
    ours = read_headers(io.BytesIO(block + b"body"))
    assert isinstance(ours, PlainHeaders)
    assert answers(ours) == answers(pywsgi.headers_factory(io.BytesIO(block + b"body")))


@pytest.mark.parametrize("block", REFUSED.values(), ids=REFUSED.keys())
def test_ambiguous_or_oversized_blocks_are_refused(block):
    assert read_headers(io.BytesIO(block + b"body")).status


def test_whitespace_around_a_value_is_not_part_of_it():
    headers = read_headers(io.BytesIO(b"Host: a\r\nX: \t value \t\r\n\r\n"))
    assert headers.get("x") == "value"


def test_http_1_0_needs_no_host():
    assert isinstance(read_headers(io.BytesIO(b"X: b\r\n\r\n"), "HTTP/1.0"), PlainHeaders)
    assert read_headers(io.BytesIO(b"Host: a\r\nHost: b\r\n\r\n"), "HTTP/1.0").status


def test_the_body_is_left_in_the_stream():
    stream = io.BytesIO(PLAIN[0] + b'{"productId":1,"qty":1}')
    read_headers(stream)
    assert stream.read() == b'{"productId":1,"qty":1}'


def test_a_block_just_within_the_bounds_is_read():
    lines = b"".join(b"X-%d: %s\r\n" % (n, b"y" * 300) for n in range(99))
    assert len(lines) < 32 * 1024
    headers = read_headers(io.BytesIO(b"Host: a\r\n" + lines + b"\r\n"))
    assert isinstance(headers, PlainHeaders) and headers.get("x-98") == "y" * 300
