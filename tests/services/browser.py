"""Headless Debian Chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.services import common

NAME = "browser"
VERSION = "debian-chromium"
CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps dialling Google's hosts, which this
# machine's closed network refuses.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def is_installed() -> bool:
    """Whether Debian's chromium and the Playwright package are present."""
    return Path(CHROMIUM).is_file() and importlib.util.find_spec("playwright") is not None


def install() -> None:
    """apt-get install chromium (+ driver); pip-install playwright (never a browser download)."""
    if not Path(CHROMIUM).is_file():
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        command = [
            "apt-get",
            "install",
            "-y",
            "--no-install-recommends",
            "chromium",
            "chromium-driver",
        ]
        if common.run(command, env=env, check=False).returncode != 0:
            common.run(["apt-get", "update"], env=env)
            common.run(command, env=env)
    if importlib.util.find_spec("playwright") is None:
        common.run([sys.executable, "-m", "pip", "install", "playwright>=1.45"])
    print(f"[testenv] browser: {shutil.which('chromium') or CHROMIUM}", flush=True)


@dataclass(frozen=True)
class Browser:
    """A launched headless Chromium (a Playwright persistent context, sync API)."""

    context: Any
    user_data_dir: Path

    def new_page(self) -> Any:
        """A fresh page (tab)."""
        return self.context.new_page()


@contextmanager
def running(workdir: Path) -> Iterator[Browser]:
    """Launch headless Chromium with a private profile folder; close it afterwards."""
    from playwright.sync_api import sync_playwright

    profile = workdir / "profile"
    profile.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield Browser(context, profile)
        finally:
            context.close()


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """Headless Chromium shared by the session."""
    common.require_installed(NAME, is_installed())
    with running(tmp_path_factory.mktemp("browser")) as launched:
        yield launched
