"""The preview in a real browser: Debian's headless Chromium driven by Playwright.

The app runs under uvicorn on 127.0.0.1 (a free port) in a thread. Playwright never downloads a
browser here: it launches /usr/bin/chromium. Screenshots land in test-artifacts/browser/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from test_web_preview import add_issue, serve  # tests/ is on sys.path (rootdir conftest)

from bench.chromium import CHROMIUM, QUIET_FLAGS
from digest.models import IssueStatus
from digest.settings import Settings

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "browser"
PASSWORD = "browser-test-password"
TOP_HEADLINE = "Harbour authority approves the long-delayed tidal barrier"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="/usr/bin/chromium is absent (make setup-browser installs Debian's chromium)",
    ),
]


@pytest.fixture
def server(settings: Settings, engine: Engine) -> Iterator[tuple[str, Settings]]:
    """The real app under uvicorn in a thread; yields its base URL and settings."""
    web_settings = settings.model_copy(update={"operator_password": SecretStr(PASSWORD)})
    for base in serve(web_settings, engine=engine):
        yield base, web_settings


@pytest.fixture
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=QUIET_FLAGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def shot(page: object, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def test_the_preview_renders_the_email_in_both_frames_and_toggles_dark_mode(
    server: tuple[str, Settings], engine: Engine, browser: object
) -> None:
    base, web_settings = server
    draft = add_issue(engine, web_settings, week="2017-W11", status=IssueStatus.DRAFT)
    page = browser.new_page(viewport={"width": 1280, "height": 1100})  # type: ignore[attr-defined]
    response = page.goto(f"{base}/issues/{draft.id}")
    assert response.status == 401  # the login form, which then brings us back here
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/issues/{draft.id}")
    assert page.text_content("#subject").startswith("The tidal barrier gets its green light")

    desktop = page.frame_locator("#frame-desktop")
    mobile = page.frame_locator("#frame-mobile")
    desktop.get_by_text(TOP_HEADLINE).first.wait_for(state="visible")
    mobile.get_by_text(TOP_HEADLINE).first.wait_for(state="visible")
    shot(page, "preview-light")

    frame = page.frame(url=lambda url: url.endswith("/email.html"))
    mobile_frame = page.query_selector("#frame-mobile").content_frame()
    widths = mobile_frame.evaluate(
        "() => [document.documentElement.clientWidth, document.documentElement.scrollWidth,"
        " document.body.scrollWidth]"
    )
    assert widths[0] == 375, widths
    assert max(widths[1:]) <= widths[0], f"the 375 px frame scrolls sideways: {widths}"
    assert frame is not None

    def filter_of(target: object) -> str:
        return str(target.evaluate("() => getComputedStyle(document.documentElement).filter"))  # type: ignore[attr-defined]

    assert filter_of(mobile_frame) == "none"
    page.click("#dark-toggle")
    assert page.get_attribute("#dark-toggle", "aria-pressed") == "true"
    desktop_frame = page.query_selector("#frame-desktop").content_frame()
    for target in (desktop_frame, mobile_frame):
        assert "invert(1)" in filter_of(target)
    shot(page, "preview-dark")
    page.click("#dark-toggle")
    assert filter_of(mobile_frame) == "none"


def test_an_unauthenticated_browser_is_refused_the_draft(
    server: tuple[str, Settings], engine: Engine, browser: object
) -> None:
    base, web_settings = server
    draft = add_issue(engine, web_settings, week="2017-W11", status=IssueStatus.DRAFT)
    page = browser.new_page()  # type: ignore[attr-defined]
    for path in (f"/issues/{draft.id}", f"/issues/{draft.id}/email.html"):
        response = page.goto(base + path)
        assert response.status == 401
        assert TOP_HEADLINE not in page.content()
    assert page.goto(f"{base}/archive/2017-W11").status == 404
    shot(page, "draft-refused")
