"""Real WebDAV: WsgiDAV (PyPI) serving a temporary folder with HTTP basic auth.

It stands in for dCache's WebDAV door, which cannot run here. WsgiDAV is a Python package, so
there is no binary to cache: `install()` pip-installs it into the test interpreter.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import httpx
import pytest

from tests.services import common

NAME = "webdav"
VERSION = "wsgidav-4"  # the major series; the exact release comes from pyproject's dev extras
REQUIREMENTS = ("wsgidav>=4.3,<5", "cheroot>=10")
USERNAME = "dav-user"
PASSWORD = "dav-password-0123456789"  # a throwaway test server's password
START_TIMEOUT = 30.0


def is_installed() -> bool:
    """Whether WsgiDAV 4 and its cheroot server can be imported by this interpreter."""
    if any(importlib.util.find_spec(module) is None for module in ("wsgidav", "cheroot")):
        return False
    return metadata.version("wsgidav").split(".")[0] == "4"


def install() -> None:
    """pip-install WsgiDAV and cheroot into the running interpreter if missing."""
    if is_installed():
        print(f"[testenv] webdav: wsgidav {metadata.version('wsgidav')} installed", flush=True)
        return
    print(f"[testenv] webdav: pip install {' '.join(REQUIREMENTS)}", flush=True)
    common.run([sys.executable, "-m", "pip", "install", *REQUIREMENTS], timeout=600)
    importlib.invalidate_caches()  # let find_spec see what pip just added
    if not is_installed():
        raise common.ServiceUnavailableError("pip finished but wsgidav/cheroot do not import")


@dataclass(frozen=True)
class WebDavServer:
    """A running WebDAV server: URL, basic-auth credentials and the folder it serves."""

    url: str  # http://127.0.0.1:<port>, the share is mounted at the root
    port: int
    username: str
    password: str
    root: Path  # the served folder: tests may arrange or inspect files here directly
    log: Path


def _config(root: Path, port: int) -> dict[str, object]:
    """A WsgiDAV configuration: one folder, one basic-auth user, loopback only."""
    return {
        "host": "127.0.0.1",
        "port": port,
        "server": "cheroot",
        "provider_mapping": {"/": str(root)},
        # dCache's door uses basic auth over TLS; digest would hide credential bugs.
        "http_authenticator": {
            "domain_controller": None,  # the default SimpleDomainController (simple_dc)
            "accept_basic": True,
            "accept_digest": False,
            "default_to_digest": False,
        },
        "simple_dc": {"user_mapping": {"*": {USERNAME: {"password": PASSWORD, "roles": []}}}},
        "property_manager": True,  # in-memory dead properties, so PROPPATCH works too
        "lock_storage": True,
        # dCache answers GET/HEAD on a folder with an HTML listing, and webdavclient3's
        # `check()` (called by `mkdir`, `upload`...) sends HEAD: keep the directory browser on.
        "dir_browser": {"enable": True},
        "verbose": 3,  # request lines in the log help when a test fails
        "logging": {"enable_loggers": []},
    }


@contextmanager
def running(workdir: Path) -> Iterator[WebDavServer]:
    """Serve `workdir/share` over WebDAV on a free loopback port until the block ends."""
    root = workdir / "share"
    root.mkdir(parents=True, exist_ok=True)
    port = common.free_port()
    config_path = workdir / "wsgidav.json"
    config_path.write_text(json.dumps(_config(root, port), indent=2))
    log = workdir / "wsgidav.log"
    with log.open("ab") as output:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "wsgidav.server.server_cli", "--config", str(config_path)],
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
    server = WebDavServer(
        url=f"http://127.0.0.1:{port}",
        port=port,
        username=USERNAME,
        password=PASSWORD,
        root=root,
        log=log,
    )

    def answers_propfind() -> bool:
        # Authenticated, so a ready server also proves the user mapping was loaded.
        response = httpx.request(
            "PROPFIND",
            f"{server.url}/",
            auth=(USERNAME, PASSWORD),
            headers={"Depth": "0"},
            timeout=1,
        )
        return response.status_code == 207

    try:
        common.wait_until(
            answers_propfind, timeout=START_TIMEOUT, what="wsgidav", process=process, log=log
        )
        yield server
    finally:
        common.stop_process(process)


@pytest.fixture(scope="session")
def webdav(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDavServer]:
    """A real WebDAV server shared by the session (tests use their own folders)."""
    common.require_installed(NAME, is_installed())
    with running(tmp_path_factory.mktemp("webdav")) as server:
        yield server
