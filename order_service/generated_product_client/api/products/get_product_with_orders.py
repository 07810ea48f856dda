from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.problem import Problem
from ...models.product_with_orders import ProductWithOrders
from ...types import UNSET, Response, Unset


def _get_kwargs(
    id: int,
    *,
    limit: int | Unset = 20,
    x_request_id: str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(x_request_id, Unset):
        headers["X-Request-ID"] = x_request_id

    params: dict[str, Any] = {}

    params["limit"] = limit

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/products/{id}/with-orders".format(
            id=quote(str(id), safe=""),
        ),
        "params": params,
    }

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Problem | ProductWithOrders | None:
    if response.status_code == 200:
        response_200 = ProductWithOrders.from_dict(response.json())

        return response_200

    if response.status_code == 400:
        response_400 = Problem.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())

        return response_401

    if response.status_code == 403:
        response_403 = Problem.from_dict(response.json())

        return response_403

    if response.status_code == 404:
        response_404 = Problem.from_dict(response.json())

        return response_404

    if response.status_code == 429:
        response_429 = Problem.from_dict(response.json())

        return response_429

    if response.status_code == 503:
        response_503 = Problem.from_dict(response.json())

        return response_503

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[Problem | ProductWithOrders]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    id: int,
    *,
    client: AuthenticatedClient,
    limit: int | Unset = 20,
    x_request_id: str | Unset = UNSET,
) -> Response[Problem | ProductWithOrders]:
    """The product and its newest orders in one call (BFF)

     Fetches the orders from order-service with a short timeout, forwarding `X-Request-ID`.
    When order-service cannot answer, the product still comes back (200) and
    `orders.available` is `false` with the reason in `orders.detail`.

    Args:
        id (int):
        limit (int | Unset):  Default: 20.
        x_request_id (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | ProductWithOrders]
    """

    kwargs = _get_kwargs(
        id=id,
        limit=limit,
        x_request_id=x_request_id,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    id: int,
    *,
    client: AuthenticatedClient,
    limit: int | Unset = 20,
    x_request_id: str | Unset = UNSET,
) -> Problem | ProductWithOrders | None:
    """The product and its newest orders in one call (BFF)

     Fetches the orders from order-service with a short timeout, forwarding `X-Request-ID`.
    When order-service cannot answer, the product still comes back (200) and
    `orders.available` is `false` with the reason in `orders.detail`.

    Args:
        id (int):
        limit (int | Unset):  Default: 20.
        x_request_id (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | ProductWithOrders
    """

    return sync_detailed(
        id=id,
        client=client,
        limit=limit,
        x_request_id=x_request_id,
    ).parsed


async def asyncio_detailed(
    id: int,
    *,
    client: AuthenticatedClient,
    limit: int | Unset = 20,
    x_request_id: str | Unset = UNSET,
) -> Response[Problem | ProductWithOrders]:
    """The product and its newest orders in one call (BFF)

     Fetches the orders from order-service with a short timeout, forwarding `X-Request-ID`.
    When order-service cannot answer, the product still comes back (200) and
    `orders.available` is `false` with the reason in `orders.detail`.

    Args:
        id (int):
        limit (int | Unset):  Default: 20.
        x_request_id (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | ProductWithOrders]
    """

    kwargs = _get_kwargs(
        id=id,
        limit=limit,
        x_request_id=x_request_id,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    id: int,
    *,
    client: AuthenticatedClient,
    limit: int | Unset = 20,
    x_request_id: str | Unset = UNSET,
) -> Problem | ProductWithOrders | None:
    """The product and its newest orders in one call (BFF)

     Fetches the orders from order-service with a short timeout, forwarding `X-Request-ID`.
    When order-service cannot answer, the product still comes back (200) and
    `orders.available` is `false` with the reason in `orders.detail`.

    Args:
        id (int):
        limit (int | Unset):  Default: 20.
        x_request_id (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | ProductWithOrders
    """

    return (
        await asyncio_detailed(
            id=id,
            client=client,
            limit=limit,
            x_request_id=x_request_id,
        )
    ).parsed
