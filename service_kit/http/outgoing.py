"""Settings for the generated inter-service clients: bounded timeouts, and the current request's
X-Request-ID, trace context and credentials on every outgoing call (the caller's own token: the
other service then checks what this caller may do there)."""

import contextvars
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from service_kit import request_id
from service_kit.errors import DependencyUnavailable
from service_kit.telemetry import tracing

ResponseT = TypeVar("ResponseT")


_credentials: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "credentials", default=None
)


def forward_credentials(authorization: str | None) -> None:
    """The current request's Authorization header, sent on with its calls to the other service."""
    _credentials.set(authorization)


def _send_request_context(request: httpx.Request) -> None:
    current = request_id.current()
    if current:
        request.headers[request_id.HEADER] = current
    credentials = _credentials.get()
    if credentials:
        request.headers["Authorization"] = credentials
    tracing.inject(request.headers)


def client_settings(
    base_url: str, timeout_s: float, transport: httpx.BaseTransport | None = None
) -> dict[str, Any]:
    """Keyword arguments for a generated `Client(...)`."""
    httpx_args: dict[str, Any] = {
        "event_hooks": {"request": [_send_request_context]},
        # Idle connections expire soon: a peer shutting down gracefully waits for them.
        "limits": httpx.Limits(
            max_connections=100, max_keepalive_connections=20, keepalive_expiry=2.0
        ),
    }
    if transport is not None:
        httpx_args["transport"] = transport
    return {
        "base_url": base_url,
        "timeout": httpx.Timeout(timeout_s, connect=min(timeout_s, 1.0)),
        "raise_on_unexpected_status": False,
        "httpx_args": httpx_args,
    }


def call_peer(peer: str, call: Callable[[], ResponseT]) -> ResponseT:
    """Run one generated-client call; a peer that cannot be reached or does not answer in
    time is a DependencyUnavailable (503 with Retry-After, or a degraded answer)."""
    try:
        return call()
    except httpx.HTTPError as exc:
        raise DependencyUnavailable(f"{peer}: {type(exc).__name__}") from exc


def peer_failed(peer: str, status: int) -> DependencyUnavailable:
    return DependencyUnavailable(f"{peer} answered {int(status)}")
