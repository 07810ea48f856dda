"""The web workers' reading of request headers gives what gevent's own reading gives."""

import io

import pytest
from gevent import pywsgi

from service_kit.process.gevent_worker import PlainHeaders, read_headers

PLAIN = [
    b"Host: a\r\nContent-Type: application/json\r\nContent-Length: 23\r\n\r\n",
    b"Host:a\r\nX-A:  spaced  \r\nx-a: second\r\n\r\n",  # repeated names: the first counts
    b"Host: a\nX: b\n\n",
    b"Host: a\r\nX: caf\xe9\r\n\r\n",
    b"Host: a\r\nEmpty:\r\n\r\n",
    b"\r\n",
]
UNUSUAL = [
    b"Host: a\r\nX: folded\r\n  more\r\n\r\n",
    b"Host: a\r\nno colon\r\n\r\n",
    b"Bad Name: x\r\n\r\n",
    b"Host: a\r\nX: b",  # the stream ends inside the headers
    b"Host: a\r\nX: b\rc\r\n\r\n",
]
# Refused (gevent answers 400): too long in all, or too many lines.
REFUSED = [
    b"Host: a\r\nX: " + b"y" * 70_000 + b"\r\n\r\n",
    b"Host: a\r\n" + b"".join(b"X-%d: %s\r\n" % (n, b"y" * 5000) for n in range(7)) + b"\r\n",
    b"".join(b"X-%d: y\r\n" % n for n in range(101)) + b"\r\n",
]
NAMES = ["host", "HOST", "x", "x-a", "content-type", "content-length", "empty", "absent"]


def answers(headers):  # noqa: ANN001, ANN201
    return (
        headers.status,
        list(headers.headers),
        [headers.get(name) for name in NAMES],
        [headers.getheader(name, "default") for name in NAMES],
        headers.typeheader,
        list(headers.items()),
    )


@pytest.mark.parametrize("block", PLAIN + UNUSUAL)
def test_headers_read_as_gevent_reads_them(block):
    ours = read_headers(io.BytesIO(block + b"body"))
    assert answers(ours) == answers(pywsgi.headers_factory(io.BytesIO(block + b"body")))
    assert isinstance(ours, PlainHeaders) is (block in PLAIN)


def test_the_body_is_left_in_the_stream():
    stream = io.BytesIO(PLAIN[0] + b'{"productId":1,"qty":1}')
    read_headers(stream)
    assert stream.read() == b'{"productId":1,"qty":1}'


def test_a_chunked_request_loses_its_content_length_as_in_gevent():
    block = b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\nHost: a\r\n\r\n"
    ours, theirs = read_headers(io.BytesIO(block)), pywsgi.headers_factory(io.BytesIO(block))
    del ours["content-length"]
    del theirs["content-length"]
    assert answers(ours) == answers(theirs)
    assert ours.get("Content-Length") is None


@pytest.mark.parametrize("block", REFUSED)
def test_header_blocks_too_big_or_too_long_are_refused(block):
    assert read_headers(io.BytesIO(block + b"body")).status


def test_a_block_just_within_the_bounds_is_read():
    lines = b"".join(b"X-%d: %s\r\n" % (n, b"y" * 300) for n in range(99))
    assert len(lines) < 32 * 1024
    headers = read_headers(io.BytesIO(b"Host: a\r\n" + lines + b"\r\n"))
    assert isinstance(headers, PlainHeaders) and headers.get("x-98") == "y" * 300
