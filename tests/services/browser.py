"""Headless Debian Chromium driven by Playwright's sync API (never a downloaded browser).

Playwright normally runs its own Chromium build from `playwright install`; here it launches
Debian's `/usr/bin/chromium` through `executable_path`, so nothing is downloaded. The sync API
must not run inside an asyncio event loop (plain pytest tests are fine).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.services import common

if TYPE_CHECKING:  # Playwright is imported lazily so `install()` works before it is installed
    from playwright.sync_api import Browser, BrowserContext, Page

NAME = "browser"
VERSION = "debian-chromium"
PACKAGES = ("chromium", "chromium-driver")
CHROMIUM = Path("/usr/bin/chromium")
PLAYWRIGHT_REQUIREMENT = "playwright>=1.45"
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",  # we run as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium keeps dialling Google's hosts, and this machine's closed network
    # refuses the connections (slow starts, noisy logs).
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def _playwright_installed() -> bool:
    return importlib.util.find_spec("playwright") is not None


def is_installed() -> bool:
    """Whether Debian's chromium and the Playwright package are present."""
    return CHROMIUM.is_file() and _playwright_installed()


def install() -> None:
    """apt-get install chromium and its driver; pip-install playwright (never a browser)."""
    if not CHROMIUM.is_file():
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        command = ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES]
        print(f"[testenv] browser: {' '.join(command)}", flush=True)
        if common.run(command, env=env, check=False).returncode != 0:
            # Usually a fresh container without package lists.
            print("[testenv] browser: apt-get update and retry", flush=True)
            common.run(["apt-get", "update"], env=env)
            common.run(command, env=env)
    else:
        print(f"[testenv] browser: {CHROMIUM} already installed", flush=True)
    if not _playwright_installed():
        # Only the Python package: `playwright install` would download a browser we do not use.
        print(f"[testenv] browser: pip install {PLAYWRIGHT_REQUIREMENT}", flush=True)
        common.run([sys.executable, "-m", "pip", "install", PLAYWRIGHT_REQUIREMENT])
    else:
        print("[testenv] browser: playwright already installed", flush=True)


@dataclass(frozen=True)
class HeadlessChromium:
    """A launched headless Chromium with its own profile folder (Playwright sync API).

    `context` is the persistent context on `user_data_dir` (shared cookies and storage);
    `new_context()` gives a test an isolated, incognito-like one instead.
    """

    browser: Browser
    context: BrowserContext
    user_data_dir: Path
    version: str

    def new_page(self) -> Page:
        """A fresh page (tab) in the persistent context."""
        return self.context.new_page()

    def new_context(self) -> BrowserContext:
        """An isolated context (no cookies or storage shared with other tests); close it."""
        return self.browser.new_context()


@contextmanager
def running(workdir: Path) -> Iterator[HeadlessChromium]:
    """Launch headless Chromium with a fresh profile folder in `workdir`; close it afterwards.

    Playwright's sync API allows one active instance per thread: a second `running()` while the
    session fixture is up must run in another thread.
    """
    from playwright.sync_api import sync_playwright

    profile = workdir / "profile"
    profile.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=list(CHROMIUM_ARGS)
        )
        try:
            browser = context.browser
            if browser is None:  # Playwright gives one for Chromium; guard the Optional type
                raise common.ServiceUnavailableError("Playwright returned no Browser for Chromium")
            yield HeadlessChromium(browser, context, profile, browser.version)
        finally:
            context.close()  # for a persistent context this also ends the Chromium process


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HeadlessChromium]:
    """Headless Chromium shared by the tests of one module (about a second to launch).

    Not by the session: between two calls Playwright's sync API marks its event loop as running
    in this thread, so while it is up `asyncio.run` fails ("cannot be called from a running event
    loop") in every later test of the process, and under pytest-xdist a worker goes on with
    other modules' tests after its browser tests.
    """
    common.require_installed(NAME, is_installed())
    with running(tmp_path_factory.mktemp("browser")) as launched:
        yield launched
