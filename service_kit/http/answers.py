"""What a handler returns: a body, `(body, status)` or `(body, status, headers)`, as Connexion
takes them; the edge writes them (service_kit/http/edge.py). Free of any web framework, so that
handlers are too."""

from typing import Any

Answer = Any  # a body, (body, status) or (body, status, headers)


def created(body: dict[str, Any], location: str) -> tuple[dict[str, Any], int, dict[str, str]]:
    return body, 201, {"Location": location}


def no_content() -> tuple[str, int]:
    return "", 204


def answer_parts(answer: Answer) -> tuple[Any, int, dict[str, str]]:
    """(body, status, headers) of a handler's answer."""
    if not isinstance(answer, tuple):
        return answer, 200, {}
    if len(answer) == 2:
        return answer[0], answer[1], {}
    return answer
