"""Smoke test: headless Chromium loads a local page, clicks, and takes a screenshot."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.services import common
from tests.services.browser import Browser

pytestmark = pytest.mark.browser

PAGE = """<!doctype html>
<html><body>
<h1 id="title">waiting</h1>
<button id="go" onclick="document.getElementById('title').textContent='clicked'">Go</button>
</body></html>
"""


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def site(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "index.html").write_text(PAGE)
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", common.free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    server.shutdown()


def test_click_and_screenshot(browser: Browser, site: str, tmp_path: Path) -> None:
    page = browser.new_page()
    page.goto(site)
    assert page.text_content("#title") == "waiting"
    page.click("#go")
    assert page.text_content("#title") == "clicked"
    shot = tmp_path / "page.png"
    page.screenshot(path=str(shot))
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 1000
