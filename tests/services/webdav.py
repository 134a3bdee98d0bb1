"""Real WebDAV: WsgiDAV (PyPI) serving a temporary folder with HTTP basic auth.

It stands in for dCache's WebDAV door, which cannot run here.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from tests.services import common

NAME = "webdav"
VERSION = "wsgidav-4"
USERNAME = "dav-user"
PASSWORD = "dav-password-0123456789"  # a throwaway test server's password


def is_installed() -> bool:
    """Whether WsgiDAV and its cheroot server can be imported."""
    return all(importlib.util.find_spec(m) is not None for m in ("wsgidav", "cheroot"))


def install() -> None:
    """pip-install WsgiDAV and cheroot if missing."""
    if is_installed():
        print("[testenv] webdav: wsgidav and cheroot already installed", flush=True)
        return
    common.run([sys.executable, "-m", "pip", "install", "wsgidav>=4.3", "cheroot>=10"])


@dataclass(frozen=True)
class WebDavServer:
    """A running WebDAV server: URL, basic-auth credentials and the folder it serves."""

    url: str
    port: int
    username: str
    password: str
    root: Path


@contextmanager
def running(workdir: Path) -> Iterator[WebDavServer]:
    """Serve `workdir/share` over WebDAV on a free loopback port until the block ends."""
    root = workdir / "share"
    root.mkdir(parents=True, exist_ok=True)
    port = common.free_port()
    config = {
        "host": "127.0.0.1",
        "port": port,
        "server": "cheroot",
        "provider_mapping": {"/": str(root)},
        "http_authenticator": {
            "accept_basic": True,
            "accept_digest": False,
            "default_to_digest": False,
        },
        "simple_dc": {"user_mapping": {"*": {USERNAME: {"password": PASSWORD}}}},
        "verbose": 1,
        "logging": {"enable_loggers": []},
    }
    config_path = workdir / "wsgidav.yaml"
    config_path.write_text(yaml.safe_dump(config))
    log_path = workdir / "wsgidav.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "wsgidav.server.server_cli", "-c", str(config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
    server = WebDavServer(f"http://127.0.0.1:{port}", port, USERNAME, PASSWORD, root)
    try:
        common.wait_until(
            lambda: (
                httpx.request(
                    "PROPFIND",
                    f"{server.url}/",
                    auth=(USERNAME, PASSWORD),
                    headers={"Depth": "0"},
                    timeout=1,
                ).status_code
                == 207
            ),
            timeout=30,
            what="wsgidav",
            process=process,
            log=log_path,
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
