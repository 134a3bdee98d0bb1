"""Shared fixtures: a real `oscar serve` for the session, factories for fresh ones."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.server import RunningServer, start_server

# Session fixtures for the real servers (one per module of tests/services/).
pytest_plugins = [
    "tests.services.browser",
    "tests.services.kubernetes",
    "tests.services.interlink",
    "tests.services.minio",
    "tests.services.slurm",
    "tests.services.webdav",
    "tests.services.web",
    "tests.services.sqs",
    "tests.services.kafka",
    "tests.services.keycloak",
    # Bridge sources' sites, and the stand-in for dCache's event API.
    "tests.fixtures.dcache",
    "tests.fixtures.bridges",
    # Realms, users and clients on the real Keycloak.
    "tests.fixtures.oidc",
    # Backends under the executor contract tests (after the servers they use).
    "tests.fixtures.harness_local",
    "tests.fixtures.harness_slurm",
    "tests.fixtures.harness_kubernetes",
    # pytest-xdist: each test needing a real server on the worker that runs that server.
    "tests.fixtures.xdist_groups",
]


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One `oscar serve` process shared by the API tests (each test uses its own names)."""
    running = start_server(tmp_path_factory.mktemp("session") / "data")
    yield running
    running.stop()


@pytest.fixture
def api(server: RunningServer) -> httpx.Client:
    """Admin-authenticated HTTP client for the session server."""
    return server.client()


@pytest.fixture
def anon(server: RunningServer) -> httpx.Client:
    """Unauthenticated HTTP client for the session server."""
    return server.client(auth=False)


@pytest.fixture
def start_oscar(tmp_path: Path) -> Iterator[Callable[..., RunningServer]]:
    """Factory for servers of this test only; all are killed at the end of the test."""
    started: list[RunningServer] = []

    def start(data_dir: Path | None = None, **kwargs: object) -> RunningServer:
        running = start_server(data_dir or tmp_path / "data", **kwargs)  # type: ignore[arg-type]
        started.append(running)
        return running

    yield start
    for running in started:
        if running.process.poll() is None:
            # A graceful stop kills the server's running jobs; SIGKILL would leave them behind.
            try:
                running.stop(signal.SIGTERM, timeout=30)
            except subprocess.TimeoutExpired:
                running.stop(signal.SIGKILL)
