"""Swagger UI in a real browser: headless Debian Chromium (driven by Playwright) opens /ui of
both services, is refused (401) until it authorizes with a token as `make token` prints it,
then creates a product and an order with "Try it out", checks the 201s shown on the page, and
saves screenshots in screenshots/ (ignored by git)."""

import json
import os
from pathlib import Path

import pytest

from devstack.processes import ROOT, running_stack
from devstack.throwaway import bearer, embedded_env, sqlite_databases

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "screenshots"
# As the machine's own browser check starts it: no sandbox as root, no calls to the internet.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser():
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is not installed (make browser installs it)"
        if os.environ.get("REQUIRE_INFRA") == "1":
            pytest.fail(message + " (REQUIRE_INFRA=1)")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def stack(tmp_path):
    env = embedded_env(tmp_path, sqlite_databases(tmp_path))
    with running_stack(env, tmp_path) as running:
        yield running


def authorize(page, token: str) -> None:
    """Swagger UI's "Authorize": the bearer token pasted, then the dialog closed."""
    page.locator(".auth-wrapper .authorize").click()
    dialog = page.locator(".dialog-ux")
    dialog.locator("input").first.fill(token)
    dialog.get_by_role("button", name="Authorize", exact=True).click()
    dialog.get_by_role("button", name="Close").click()


def try_it_out(page, operation_block: str, body: dict, screenshot: Path) -> dict:
    """Expand an operation (if it is not), fill its request body, execute; the response shown
    on the page."""
    block = page.locator(operation_block)
    if block.locator("textarea.body-param__text").count():
        block.get_by_role("button", name="Clear").click()  # the previous response
    else:
        block.locator(".opblock-summary").first.click()
        block.get_by_role("button", name="Try it out").click()
    block.locator("textarea.body-param__text").fill(json.dumps(body))
    block.get_by_role("button", name="Execute").click()
    live = block.locator(".live-responses-table .response").first
    live.wait_for(timeout=15_000)
    status = live.locator(".response-col_status").inner_text().strip()
    text = live.locator(".response-col_description pre").first.inner_text()
    block.locator(".responses-inner").first.screenshot(path=str(screenshot))
    return {"status": status, "body": json.loads(text)}


def test_try_it_out_creates_a_product_then_an_order(stack, browser):
    SHOTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 1600})

    token = bearer(stack.env)["Authorization"].removeprefix("Bearer ")
    page.goto(f"{stack.product_url}/ui/")
    page.locator("#operations-products-create_product").wait_for(timeout=15_000)
    product = {"name": "From the browser", "price": 12.5, "qty": 7}
    refused = try_it_out(
        page, "#operations-products-create_product", product, SHOTS / "product-service-401.png"
    )
    assert refused["status"] == "401" and refused["body"]["title"] == "Unauthorized"
    authorize(page, token)
    created = try_it_out(
        page,
        "#operations-products-create_product",
        {"name": "From the browser", "price": 12.5, "qty": 7},
        SHOTS / "product-service-try-it-out.png",
    )
    assert created["status"] == "201"
    assert created["body"]["name"] == "From the browser" and created["body"]["qty"] == 7

    page.goto(f"{stack.order_url}/ui/")
    page.locator("#operations-orders-create_order").wait_for(timeout=15_000)
    authorize(page, token)
    ordered = try_it_out(
        page,
        "#operations-orders-create_order",
        {"productId": created["body"]["id"], "qty": 2},
        SHOTS / "order-service-try-it-out.png",
    )
    assert ordered["status"] == "201"
    assert ordered["body"]["totalPrice"] == 25 and ordered["body"]["status"] == "PENDING"
