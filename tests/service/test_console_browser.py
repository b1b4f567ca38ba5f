"""The console in a real headless Chromium (Debian's `chromium`, driven by Playwright):
what a reviewer sees and clicks. Screenshots go to test-output/console/ (not committed)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, unavailable
from tests.service.console_support import PAN, REVIEWER, REVIEWER_KEY, console_app, stopped_request
from tests.service_support import running_server

SHOTS = ROOT / "test-output" / "console"
CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        unavailable("no chromium on this machine (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield b
        b.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    with running_server(console_app(tmp_path)) as url:
        yield url


def _sign_in(page: Any, url: str) -> None:
    page.goto(f"{url}/console")
    page.get_by_label("Name").fill(REVIEWER)
    page.get_by_label("Key").fill(REVIEWER_KEY)
    page.get_by_label("Key").press("Enter")  # keyboard: Enter submits
    page.wait_for_url("**/console/queues")


def test_a_reviewer_signs_in_sees_the_stop_and_assigns_it(browser: Any, served: str) -> None:
    decision = httpx.post(f"{served}/v1/decide", json=stopped_request()).json()
    assert decision["effect"] == "escalate"
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    _sign_in(page, served)
    assert page.get_by_role("button", name="Sign out").is_visible()
    row = page.locator("table").get_by_role("link", name="desk-1").first
    assert row.is_visible()
    page.screenshot(path=str(SHOTS / "queue.png"), full_page=True)
    row.click()
    page.wait_for_url("**/console/escalations/**")
    for name in ("Assign to me", "Approve", "Deny", "Resolve"):
        assert page.get_by_role("button", name=name).is_visible(), name
    assert decision["decision_id"] in page.content()
    page.screenshot(path=str(SHOTS / "escalation.png"), full_page=True)
    for html in (page.content(), page.inner_text("body")):
        assert PAN not in html.replace(" ", "")
    page.get_by_role("button", name="Assign to me").click()
    page.wait_for_load_state()
    assert page.get_by_role("status").inner_text() == "Assigned to you."
    assert f"by {REVIEWER}" in page.inner_text("body")
    page.close()


def test_the_console_reads_at_phone_width(browser: Any, served: str) -> None:
    httpx.post(f"{served}/v1/decide", json=stopped_request())
    page = browser.new_page(viewport={"width": 390, "height": 844})
    _sign_in(page, served)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1, f"the queue page scrolls sideways at phone width ({width}px)"
    page.locator("table").get_by_role("link", name="desk-1").first.click()
    page.wait_for_url("**/console/escalations/**")
    assert page.evaluate("document.documentElement.scrollWidth") <= 391
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "escalation-phone.png"), full_page=True)
    page.close()


def test_a_signed_out_browser_cannot_act(browser: Any, served: str) -> None:
    httpx.post(f"{served}/v1/decide", json=stopped_request())
    page = browser.new_page()
    _sign_in(page, served)
    page.locator("table").get_by_role("link", name="desk-1").first.click()
    page.wait_for_url("**/console/escalations/**")
    link = page.url
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/console/login**")
    page.goto(link)
    assert "/console/login" in page.url  # the page itself needs a session
    page.close()


def test_approve_in_the_page_lets_the_agent_retry_once_and_deny_relays_the_reason(browser: Any, served: str) -> None:
    approve_me = httpx.post(f"{served}/v1/decide", json=stopped_request()).json()
    deny_me = httpx.post(f"{served}/v1/decide", json=stopped_request(amount=400)).json()
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    _sign_in(page, served)
    page.goto(f"{served}/console/escalations/{approve_me['escalations'][0]}")
    page.get_by_label("Why you approve (recorded)").fill("customer confirmed on a call back")
    page.get_by_role("button", name="Approve").click()
    page.wait_for_load_state()
    assert "sent back to the agent" in page.get_by_role("status").inner_text()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "approved.png"), full_page=True)
    grant = httpx.get(
        f"{served}/v1/escalations/{approve_me['escalations'][0]}/outcome",
        params={"digest": approve_me["challenge"]["digest"]},
    ).json()["grant"]
    retry = httpx.post(f"{served}/v1/decide", json={**stopped_request(), "grants": [grant]}).json()
    assert retry["effect"] == "allow"
    assert (
        httpx.post(f"{served}/v1/decide", json={**stopped_request(), "grants": [grant]}).json()["effect"] == "escalate"
    )
    page.goto(f"{served}/console/escalations/{deny_me['escalations'][0]}")
    page.get_by_label("Reason for the customer (the agent relays it)").fill("this card is blocked for refunds")
    page.get_by_role("button", name="Deny").click()
    page.wait_for_load_state()
    assert "Denied" in page.get_by_role("status").inner_text()
    told = httpx.get(
        f"{served}/v1/escalations/{deny_me['escalations'][0]}/outcome",
        params={"digest": deny_me["challenge"]["digest"]},
    ).json()
    assert told["outcome"] == "denied" and told["why"] == "this card is blocked for refunds"
    page.close()
