from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.problem import Problem
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    x_request_id: str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(x_request_id, Unset):
        headers["X-Request-ID"] = x_request_id

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/metrics",
    }

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Problem | str | None:
    if response.status_code == 200:
        response_200 = response.text
        return response_200

    if response.status_code == 404:
        response_404 = Problem.from_dict(response.json())

        return response_404

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[Problem | str]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient | Client,
    x_request_id: str | Unset = UNSET,
) -> Response[Problem | str]:
    """Prometheus metrics of every web worker of the service

     The text exposition format: requests by operation and status and their durations
    (`http_server_requests_total`, `http_server_request_duration_seconds`), the group
    commit, database connections in use, cache look-ups, the business counters. Public,
    like /health, on this port only while `<S>_METRICS_PORT` is unset: set, the same
    metrics are served on that port of their own (which a deployment opens to its scraper
    alone, as infra/k8s does) and this operation answers 404. The worker process serves
    its own metrics on `<S>_WORKER_METRICS_PORT`.

    Args:
        x_request_id (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | str]
    """

    kwargs = _get_kwargs(
        x_request_id=x_request_id,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient | Client,
    x_request_id: str | Unset = UNSET,
) -> Problem | str | None:
    """Prometheus metrics of every web worker of the service

     The text exposition format: requests by operation and status and their durations
    (`http_server_requests_total`, `http_server_request_duration_seconds`), the group
    commit, database connections in use, cache look-ups, the business counters. Public,
    like /health, on this port only while `<S>_METRICS_PORT` is unset: set, the same
    metrics are served on that port of their own (which a deployment opens to its scraper
    alone, as infra/k8s does) and this operation answers 404. The worker process serves
    its own metrics on `<S>_WORKER_METRICS_PORT`.

    Args:
        x_request_id (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | str
    """

    return sync_detailed(
        client=client,
        x_request_id=x_request_id,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient | Client,
    x_request_id: str | Unset = UNSET,
) -> Response[Problem | str]:
    """Prometheus metrics of every web worker of the service

     The text exposition format: requests by operation and status and their durations
    (`http_server_requests_total`, `http_server_request_duration_seconds`), the group
    commit, database connections in use, cache look-ups, the business counters. Public,
    like /health, on this port only while `<S>_METRICS_PORT` is unset: set, the same
    metrics are served on that port of their own (which a deployment opens to its scraper
    alone, as infra/k8s does) and this operation answers 404. The worker process serves
    its own metrics on `<S>_WORKER_METRICS_PORT`.

    Args:
        x_request_id (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | str]
    """

    kwargs = _get_kwargs(
        x_request_id=x_request_id,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient | Client,
    x_request_id: str | Unset = UNSET,
) -> Problem | str | None:
    """Prometheus metrics of every web worker of the service

     The text exposition format: requests by operation and status and their durations
    (`http_server_requests_total`, `http_server_request_duration_seconds`), the group
    commit, database connections in use, cache look-ups, the business counters. Public,
    like /health, on this port only while `<S>_METRICS_PORT` is unset: set, the same
    metrics are served on that port of their own (which a deployment opens to its scraper
    alone, as infra/k8s does) and this operation answers 404. The worker process serves
    its own metrics on `<S>_WORKER_METRICS_PORT`.

    Args:
        x_request_id (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | str
    """

    return (
        await asyncio_detailed(
            client=client,
            x_request_id=x_request_id,
        )
    ).parsed
