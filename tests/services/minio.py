"""Real MinIO, built from source with `go install` through the Go module proxy.

The release the issue names (v0.0.0-20251015172955-9e49d5e7a648) is refused by the proxy here
("403 This module version is not available", for the pseudo-version and the bare commit alike),
so the pin is the newest commit the proxy serves (`go list -m github.com/minio/minio@latest`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from minio import Minio, MinioAdmin
from minio.credentials import StaticProvider

from tests.services import common

NAME = "minio"
MODULE = "github.com/minio/minio"
VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"
ROOT_USER = "oscar-test-admin"
ROOT_PASSWORD = "oscar-test-secret-0123456789"  # a throwaway test server's key
REGION = "us-east-1"
BUILD_TIMEOUT = 3600.0  # a cold build on a 2-core machine takes several minutes
START_TIMEOUT = 60.0


def binary() -> Path:
    """Where the cached build of this version lives."""
    return common.cache_dir(NAME, VERSION) / "minio"


def is_installed() -> bool:
    """Whether the pinned MinIO build is cached."""
    return binary().is_file() and os.access(binary(), os.X_OK)


def install() -> None:
    """Build MinIO with `go install` into the cache (several minutes the first time).

    Prints progress while Go downloads modules and compiles packages, so a cold build does not
    look hung. The binary is built into a scratch folder and moved into place only when complete,
    so an interrupted build never counts as installed.
    """
    if is_installed():
        print(f"[testenv] minio {VERSION}: cached at {binary()}", flush=True)
        return
    go = shutil.which("go")
    if go is None:
        raise common.ServiceUnavailableError("MinIO is built with Go >= 1.24: install Go first")
    target = binary().parent
    scratch = target / "build"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    # CGO off: a static binary with no C toolchain needed; -mod=mod overrides any user GOFLAGS
    # (e.g. -mod=vendor) that would break a module-mode `go install pkg@version`.
    env = {**os.environ, "GOBIN": str(scratch), "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}
    print(f"[testenv] go install {MODULE}@{VERSION} (first build takes minutes)", flush=True)
    _run_go_with_progress([go, "install", "-v", f"{MODULE}@{VERSION}"], env=env, cwd=target)
    built = scratch / "minio"
    if not built.is_file():
        raise common.ServiceUnavailableError(f"go install finished but {built} is missing")
    os.replace(built, binary())
    shutil.rmtree(scratch, ignore_errors=True)
    print(f"[testenv] minio {VERSION}: built {binary()}", flush=True)


def _run_go_with_progress(args: list[str], *, env: dict[str, str], cwd: Path) -> None:
    """Run a Go build, printing a progress line every few dozen downloads/compiled packages.

    `common.run` would capture everything until the end; a minutes-long silent build is worse.
    """
    started = time.monotonic()
    deadline = started + BUILD_TIMEOUT
    tail: deque[str] = deque(maxlen=60)
    downloads = packages = 0
    process = subprocess.Popen(
        args, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    with process:
        for line in process.stdout:
            tail.append(line.rstrip())
            if line.startswith("go: downloading"):
                downloads += 1
                if downloads % 50 == 0:
                    print(f"[testenv]   {downloads} modules downloaded", flush=True)
            elif not line.startswith(("go:", "#", " ", "\t")):
                packages += 1  # `go install -v` prints each package as it is compiled
                if packages % 100 == 0:
                    elapsed = time.monotonic() - started
                    print(
                        f"[testenv]   {packages} packages compiled ({elapsed:.0f}s), "
                        f"now {line.strip()}",
                        flush=True,
                    )
            if time.monotonic() > deadline:
                process.kill()
                break
        returncode = process.wait()
    elapsed = time.monotonic() - started
    print(f"[testenv]   go finished in {elapsed:.0f}s ({packages} packages)", flush=True)
    if returncode != 0:
        raise common.ServiceUnavailableError(
            f"command failed ({returncode}): {' '.join(args)}\n" + "\n".join(tail)
        )


@dataclass
class _Child:
    """The current MinIO process; `MinioServer.restart` replaces it, the handle stays frozen."""

    process: subprocess.Popen[bytes]


@dataclass(frozen=True, kw_only=True)
class MinioServer:
    """A running MinIO: S3 endpoint, root credentials, and clients for both."""

    endpoint: str  # http://127.0.0.1:<port>
    host: str  # 127.0.0.1:<port>, what the minio SDK calls the endpoint
    port: int
    console_port: int
    access_key: str
    secret_key: str
    data_dir: Path
    log: Path
    region: str = REGION
    _env: Mapping[str, str] = field(repr=False, compare=False)
    _child: _Child = field(repr=False, compare=False)

    @property
    def process(self) -> subprocess.Popen[bytes]:
        """The MinIO server process (a new one after `restart`; the admin API's restart keeps it).

        Pass it to `common.wait_until` so a crashed server fails a wait at once.
        """
        return self._child.process

    @property
    def pid(self) -> int:
        """The process id of the MinIO server (changes on `restart`)."""
        return self._child.process.pid

    def client(self, access_key: str | None = None, secret_key: str | None = None) -> Minio:
        """A `minio.Minio` S3 client (root credentials unless given)."""
        return Minio(
            self.host,
            access_key=access_key or self.access_key,
            secret_key=secret_key or self.secret_key,
            secure=False,
            region=self.region,
        )

    def admin(self) -> MinioAdmin:
        """A `minio.MinioAdmin` client with the root credentials."""
        return MinioAdmin(
            endpoint=self.host,
            credentials=StaticProvider(self.access_key, self.secret_key),
            region=self.region,
            secure=False,
        )

    def restart(self) -> None:
        """Stop the server and start it again on the same ports, data and settings.

        MinIO loads notification targets (`notify_webhook:*`) only at start-up. The admin API's
        `service_restart()` reloads them too (upstream OSCAR uses it), but MinIO answers first
        and re-execs in place afterwards, so the caller cannot tell when the new instance is up;
        this method replaces the process and returns once the new one is ready.
        """
        common.stop_process(self._child.process)
        self._child.process = _spawn(
            self.data_dir, self.port, self.console_port, self._env, self.log
        )
        self.wait_ready()

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Poll the readiness probe until MinIO serves S3 requests."""
        common.wait_until(
            lambda: httpx.get(f"{self.endpoint}/minio/health/ready", timeout=1).status_code == 200,
            timeout=timeout,
            what=f"minio on port {self.port}",
            process=self._child.process,
            log=self.log,
        )


def _spawn(
    data_dir: Path, port: int, console_port: int, env: Mapping[str, str], log: Path
) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [
                str(binary()),
                "server",
                str(data_dir),
                "--address",
                f"127.0.0.1:{port}",
                "--console-address",
                f"127.0.0.1:{console_port}",
            ],
            env=dict(env),
            stdout=output,
            stderr=subprocess.STDOUT,
        )


@contextmanager
def running(workdir: Path, extra_env: Mapping[str, str] | None = None) -> Iterator[MinioServer]:
    """Start MinIO on free loopback ports with data under `workdir`; stop it afterwards.

    `extra_env` adds server settings, e.g. a webhook target configured at start-up:
    `MINIO_NOTIFY_WEBHOOK_ENABLE_<ID>=on`, `MINIO_NOTIFY_WEBHOOK_ENDPOINT_<ID>=...`,
    `MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_<ID>=...`, `MINIO_NOTIFY_WEBHOOK_QUEUE_DIR_<ID>=...`;
    the target's ARN is then `arn:minio:sqs::<ID>:webhook`, with `<ID>` in the case given.
    """
    # MinIO's env reader treats any value starting with "env" as an `env://` URL to fetch the
    # value from (a prefix check without the "://"), so e.g. an auth token "env-token-1" is
    # silently dropped. Refuse such values instead of debugging a missing header later.
    fetched = sorted(k for k, v in (extra_env or {}).items() if v.startswith("env"))
    if fetched:
        raise ValueError(f"MinIO would read {fetched} from a URL: values may not start with 'env'")
    data_dir = workdir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    log = workdir / "minio.log"
    port, console_port = common.free_port(), common.free_port()
    env = {
        **os.environ,
        "MINIO_ROOT_USER": ROOT_USER,
        "MINIO_ROOT_PASSWORD": ROOT_PASSWORD,
        "MINIO_REGION": REGION,
        # No web console (it is not tested) and no update checks against the internet.
        "MINIO_BROWSER": "off",
        "MINIO_UPDATE": "off",
        # CI mode: accepts a data folder on the root disk and caps the buffer pool at 256 MiB
        # instead of half the machine's memory.
        "MINIO_CI_CD": "1",
        **(extra_env or {}),
    }
    server = MinioServer(
        endpoint=f"http://127.0.0.1:{port}",
        host=f"127.0.0.1:{port}",
        port=port,
        console_port=console_port,
        access_key=ROOT_USER,
        secret_key=ROOT_PASSWORD,
        data_dir=data_dir,
        log=log,
        _env=env,
        _child=_Child(_spawn(data_dir, port, console_port, env, log)),
    )
    try:
        server.wait_ready()
        yield server
    finally:
        common.stop_process(server._child.process)


def oscar_webhook_env(oscar_port: int, token: str, queue_dir: Path) -> dict[str, str]:
    """MinIO settings for the start-up webhook target `OSCAR` posting to a control plane on
    `oscar_port` (events wait in `queue_dir`, created here, while it is down)."""
    queue_dir.mkdir(parents=True, exist_ok=True)
    return {
        "MINIO_NOTIFY_WEBHOOK_ENABLE_OSCAR": "on",
        "MINIO_NOTIFY_WEBHOOK_ENDPOINT_OSCAR": f"http://127.0.0.1:{oscar_port}/events/minio",
        "MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_OSCAR": token,
        "MINIO_NOTIFY_WEBHOOK_QUEUE_DIR_OSCAR": str(queue_dir),
    }


def oscar_storage_env(server: MinioServer, token: str) -> dict[str, str]:
    """`oscar serve` settings for MinIO as the default store, with the webhook's token."""
    return {
        "OSCAR_STORAGE": "minio",
        "OSCAR_MINIO_ENDPOINT": server.endpoint,
        "OSCAR_MINIO_ACCESS_KEY": server.access_key,
        "OSCAR_MINIO_SECRET_KEY": server.secret_key,
        "OSCAR_EVENTS_TOKEN": token,
    }


@pytest.fixture(scope="session")
def minio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinioServer]:
    """A real MinIO server shared by the session (tests use their own buckets and users)."""
    common.require_installed(NAME, is_installed())
    with running(tmp_path_factory.mktemp("minio")) as server:
        yield server
