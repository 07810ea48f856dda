"""docs/events.html, the event contract for people (AsyncAPI's React component, make
docs/events.html): current with asyncapi/events.yaml, and in headless Chromium it shows every
channel, operation and message of the document, with no error."""

from pathlib import Path

import pytest

from contract_tests.render_events import page
from service_kit.messaging import events
from tests.e2e.test_swagger_ui import SHOTS, browser  # noqa: F401 (the fixture)

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "events.html"


def test_the_page_is_generated_from_the_current_contract():
    assert DOCS.read_text() == page(DOCS), "make docs/events.html"


def test_chromium_shows_every_channel_and_message(browser):  # noqa: F811
    if not (ROOT / "node_modules/@asyncapi/react-component").is_dir():
        pytest.fail("node_modules missing: make node_modules/.installed")
    tab = browser.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.goto(DOCS.as_uri())
    tab.wait_for_selector("#introduction", timeout=30_000)
    text = tab.inner_text("body")
    assert "Order and product events" in text
    assert "Error" not in tab.inner_text("#asyncapi")[:200]
    for channel in events.contract()["channels"].values():
        assert channel["address"] in text, channel["address"]
    for operation_id in events.contract()["operations"]:
        assert tab.locator(
            f"[id='operation-send-{operation_id}'], [id='operation-receive-{operation_id}']"
        ).count(), operation_id
    for message in events.contract()["components"]["messages"].values():
        assert message["name"] in text, message["name"]
    SHOTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(SHOTS / "events.png"), full_page=False)
    assert errors == []
