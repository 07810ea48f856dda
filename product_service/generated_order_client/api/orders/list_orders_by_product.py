from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.order_page import OrderPage
from ...models.problem import Problem
from ...types import UNSET, Response, Unset


def _get_kwargs(
    product_id: int,
    *,
    limit: int | Unset = 20,
    before: int | Unset = UNSET,
    x_request_id: str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(x_request_id, Unset):
        headers["X-Request-ID"] = x_request_id

    params: dict[str, Any] = {}

    params["limit"] = limit

    params["before"] = before

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/orders/product/{product_id}".format(
            product_id=quote(str(product_id), safe=""),
        ),
        "params": params,
    }

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> OrderPage | Problem | None:
    if response.status_code == 200:
        response_200 = OrderPage.from_dict(response.json())

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
) -> Response[OrderPage | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    product_id: int,
    *,
    client: AuthenticatedClient,
    limit: int | Unset = 20,
    before: int | Unset = UNSET,
    x_request_id: str | Unset = UNSET,
) -> Response[OrderPage | Problem]:
    """Orders of a product, newest first

    Args:
        product_id (int):
        limit (int | Unset):  Default: 20.
        before (int | Unset):
        x_request_id (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[OrderPage | Problem]
    """

    kwargs = _get_kwargs(
        product_id=product_id,
        limit=limit,
        before=before,
        x_request_id=x_request_id,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    product_id: int,
    *,
    client: AuthenticatedClient,
    limit: int | Unset = 20,
    before: int | Unset = UNSET,
    x_request_id: str | Unset = UNSET,
) -> OrderPage | Problem | None:
    """Orders of a product, newest first

    Args:
        product_id (int):
        limit (int | Unset):  Default: 20.
        before (int | Unset):
        x_request_id (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        OrderPage | Problem
    """

    return sync_detailed(
        product_id=product_id,
        client=client,
        limit=limit,
        before=before,
        x_request_id=x_request_id,
    ).parsed


async def asyncio_detailed(
    product_id: int,
    *,
    client: AuthenticatedClient,
    limit: int | Unset = 20,
    before: int | Unset = UNSET,
    x_request_id: str | Unset = UNSET,
) -> Response[OrderPage | Problem]:
    """Orders of a product, newest first

    Args:
        product_id (int):
        limit (int | Unset):  Default: 20.
        before (int | Unset):
        x_request_id (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[OrderPage | Problem]
    """

    kwargs = _get_kwargs(
        product_id=product_id,
        limit=limit,
        before=before,
        x_request_id=x_request_id,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    product_id: int,
    *,
    client: AuthenticatedClient,
    limit: int | Unset = 20,
    before: int | Unset = UNSET,
    x_request_id: str | Unset = UNSET,
) -> OrderPage | Problem | None:
    """Orders of a product, newest first

    Args:
        product_id (int):
        limit (int | Unset):  Default: 20.
        before (int | Unset):
        x_request_id (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        OrderPage | Problem
    """

    return (
        await asyncio_detailed(
            product_id=product_id,
            client=client,
            limit=limit,
            before=before,
            x_request_id=x_request_id,
        )
    ).parsed
