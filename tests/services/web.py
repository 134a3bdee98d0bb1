"""The dashboard's npm packages (`web/node_modules`), exactly as `web/package-lock.json` pins them.

Not a server: the build tool (esbuild) the build check runs, and axe-core, which the browser
tests inject into the dashboard's pages. `install()` runs `npm ci` against the npm registry;
nothing of it is needed to install or run oscar (the build is committed in `oscar/ui/static`).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services import common

NAME = "web"
VERSION = "package-lock"  # the exact versions are web/package-lock.json's
WEB_ROOT = Path(__file__).resolve().parents[2] / "web"
NPM_CI = ("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")


def _pinned() -> dict[str, str]:
    """`node_modules/<name>` → version, for every package the lockfile pins."""
    lock = json.loads((WEB_ROOT / "package-lock.json").read_text())
    return {
        path: entry["version"]
        for path, entry in lock["packages"].items()
        if path.startswith("node_modules/") and not entry.get("optional")
    }


def _installed_version(path: str) -> str | None:
    manifest = WEB_ROOT / path / "package.json"
    if not manifest.is_file():
        return None
    return json.loads(manifest.read_text()).get("version")


def is_installed() -> bool:
    """Whether node and npm are on PATH and every pinned package is installed at its version."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return False
    return all(_installed_version(path) == version for path, version in _pinned().items())


def install() -> None:
    """`npm ci` in web/ (a clean install of the lockfile) unless it is installed already."""
    if is_installed():
        print("[testenv] web: node_modules matches web/package-lock.json", flush=True)
        return
    if shutil.which("npm") is None:
        raise common.ServiceUnavailableError("npm is not on PATH; install Node.js 20 or newer")
    print(f"[testenv] web: {' '.join(NPM_CI)} (in web/)", flush=True)
    common.run(list(NPM_CI), cwd=WEB_ROOT, timeout=600)


@pytest.fixture(scope="session")
def web() -> Iterator[Path]:
    """The web/ folder, with its pinned npm packages installed."""
    common.require_installed(NAME, is_installed())
    yield WEB_ROOT
