"""Smoke tests: headless Chromium loads a local page, clicks, takes a screenshot, and stops."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.site import static_site
from tests.services import browser as browser_service
from tests.services import common
from tests.services.browser import HeadlessChromium

pytestmark = pytest.mark.browser

PAGE = """<!doctype html>
<html><head><title>smoke</title></head><body style="background:#fff">
<h1 id="title">waiting</h1>
<button id="go" onclick="document.getElementById('title').textContent='clicked'">Go</button>
</body></html>
"""


@pytest.fixture
def site(tmp_path: Path) -> Iterator[str]:
    """The URL of PAGE, served from a local http.server on a free port."""
    with static_site(tmp_path / "site", PAGE) as origin:
        yield f"{origin}/index.html"


def test_click_and_screenshot(browser: HeadlessChromium, site: str, tmp_path: Path) -> None:
    page = browser.new_page()
    try:
        assert page.goto(site).ok
        assert page.title() == "smoke"
        assert page.text_content("#title") == "waiting"
        page.click("#go")
        assert page.text_content("#title") == "clicked"
        shot = tmp_path / "page.png"
        page.screenshot(path=str(shot))
    finally:
        page.close()
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert data[12:16] == b"IHDR"
    assert len(data) > 1000


def test_new_context_is_isolated(browser: HeadlessChromium, site: str) -> None:
    browser.context.add_cookies([{"name": "shared", "value": "1", "url": site}])
    isolated = browser.new_context()
    try:
        assert isolated.cookies(site) == []
        assert [cookie["name"] for cookie in browser.context.cookies(site)] == ["shared"]
    finally:
        isolated.close()
        browser.context.clear_cookies()
    assert browser.version.split(".")[0].isdigit()


def _chromium_pids(profile: Path) -> list[int]:
    """Chromium processes started with this profile folder (browser, renderers, helpers)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:  # not a process, or it exited meanwhile
            continue
        if str(profile) in cmdline:
            pids.append(int(entry.name))
    return pids


def test_running_stops_chromium(tmp_path: Path) -> None:
    common.require_installed(browser_service.NAME, browser_service.is_installed())
    seen: list[list[int]] = []
    errors: list[BaseException] = []

    def launch_and_stop() -> None:
        try:
            with browser_service.running(tmp_path) as launched:
                seen.append(_chromium_pids(launched.user_data_dir))
        except BaseException as error:  # re-raised in the test's thread
            errors.append(error)

    # Its own thread: the session fixture's Playwright already owns this thread's event loop.
    worker = threading.Thread(target=launch_and_stop)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive()
    if errors:
        raise errors[0]
    assert seen[0]  # Chromium was running with the profile folder
    common.wait_until(
        lambda: not _chromium_pids(tmp_path / "profile"),
        timeout=10,
        what="chromium processes to exit",
    )
