"""Real MinIO, built from source with `go install` through the Go module proxy.

The release the issue names (v0.0.0-20251015172955-9e49d5e7a648) is refused by the proxy here
("403 This module version is not available"), so the pin is the newest commit the proxy serves.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.services import common

NAME = "minio"
MODULE = "github.com/minio/minio"
VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"
ROOT_USER = "oscar-test-admin"
ROOT_PASSWORD = "oscar-test-secret-0123456789"  # a throwaway test server's key


def binary() -> Path:
    """Where the cached build of this version lives."""
    return common.cache_dir(NAME, VERSION) / "minio"


def is_installed() -> bool:
    """Whether the pinned MinIO build is cached."""
    return binary().is_file()


def install() -> None:
    """Build MinIO with `go install` into the cache (several minutes the first time)."""
    if is_installed():
        print(f"[testenv] minio {VERSION}: cached at {binary()}", flush=True)
        return
    if shutil.which("go") is None:
        raise common.ServiceUnavailableError("MinIO is built with Go >= 1.24: install Go first")
    target = binary().parent
    env = {**os.environ, "GOBIN": str(target), "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}
    print(f"[testenv] go install {MODULE}@{VERSION} (first build takes minutes)", flush=True)
    common.run(["go", "install", f"{MODULE}@{VERSION}"], env=env, cwd=target, timeout=3600)
    if not is_installed():
        raise common.ServiceUnavailableError(f"go install finished but {binary()} is missing")


@dataclass(frozen=True)
class MinioServer:
    """A running MinIO: S3 endpoint and root credentials."""

    endpoint: str
    host: str
    port: int
    access_key: str
    secret_key: str
    data_dir: Path
    region: str = "us-east-1"
    _process: list[subprocess.Popen[bytes]] = field(default_factory=list, repr=False)

    def client(self, access_key: str | None = None, secret_key: str | None = None) -> object:
        """A `minio.Minio` client (root credentials unless given)."""
        from minio import Minio

        return Minio(
            self.host,
            access_key=access_key or self.access_key,
            secret_key=secret_key or self.secret_key,
            secure=False,
            region=self.region,
        )

    def admin(self) -> object:
        """A `minio.MinioAdmin` client with the root credentials."""
        from minio import MinioAdmin
        from minio.credentials import StaticProvider

        return MinioAdmin(
            endpoint=self.host,
            credentials=StaticProvider(self.access_key, self.secret_key),
            secure=False,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        """Poll the readiness probe until MinIO serves requests."""
        common.wait_until(
            lambda: httpx.get(f"{self.endpoint}/minio/health/ready", timeout=1).status_code == 200,
            timeout=timeout,
            what="minio",
            process=self._process[-1] if self._process else None,
            log=self.data_dir.parent / "minio.log",
        )


def _start(
    data_dir: Path, port: int, console_port: int, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    log = (data_dir.parent / "minio.log").open("ab")
    return subprocess.Popen(
        [
            str(binary()),
            "server",
            str(data_dir),
            "--quiet",
            "--address",
            f"127.0.0.1:{port}",
            "--console-address",
            f"127.0.0.1:{console_port}",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


@contextmanager
def running(workdir: Path, extra_env: dict[str, str] | None = None) -> Iterator[MinioServer]:
    """Start MinIO on free loopback ports with data under `workdir`; stop it afterwards.

    `extra_env` adds server settings (e.g. `MINIO_NOTIFY_WEBHOOK_*` targets at start-up).
    """
    data_dir = workdir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    port, console_port = common.free_port(), common.free_port()
    env = {
        **os.environ,
        "MINIO_ROOT_USER": ROOT_USER,
        "MINIO_ROOT_PASSWORD": ROOT_PASSWORD,
        "MINIO_BROWSER": "off",
        "MINIO_UPDATE": "off",
        "MINIO_CI_CD": "1",
        **(extra_env or {}),
    }
    process = _start(data_dir, port, console_port, env)
    server = MinioServer(
        endpoint=f"http://127.0.0.1:{port}",
        host=f"127.0.0.1:{port}",
        port=port,
        access_key=ROOT_USER,
        secret_key=ROOT_PASSWORD,
        data_dir=data_dir,
        _process=[process],
    )
    try:
        server.wait_ready()
        yield server
    finally:
        common.stop_process(server._process[-1])


@pytest.fixture(scope="session")
def minio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinioServer]:
    """A real MinIO server shared by the session (tests use their own buckets)."""
    common.require_installed(NAME, is_installed())
    with running(tmp_path_factory.mktemp("minio")) as server:
        yield server
