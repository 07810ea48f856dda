"""A tiny WSGI app for tests/unit/test_http_framing.py, served by the real web worker class: it
answers what it was given and notes every request it runs in the file $FRAMING_APP_LOG."""

import json
import os
from collections.abc import Callable, Iterable
from typing import Any


def app(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
    body = environ["wsgi.input"].read()
    seen = {
        "method": environ["REQUEST_METHOD"],
        "path": environ["PATH_INFO"],
        "query": environ["QUERY_STRING"],
        "length": environ.get("CONTENT_LENGTH"),
        "body": body.decode("latin-1"),
        "headers": {k: v for k, v in environ.items() if k.startswith("HTTP_")},
    }
    with open(os.environ["FRAMING_APP_LOG"], "a") as log:
        log.write(json.dumps(seen) + "\n")
    if environ["PATH_INFO"] == "/stream":  # no length: chunked to HTTP/1.1, to the end for 1.0
        start_response("200 OK", [("Content-Type", "text/plain")])
        return iter([b"one,", b"two"])
    answer = json.dumps(seen).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))]
    )
    return [answer]
