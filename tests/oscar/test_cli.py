"""`oscar serve` and `oscar validate` as real processes: startup, shutdown, persistence, env."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.fixtures.server import ADMIN_PASSWORD, RunningServer, clean_env, free_port
from tests.fixtures.services import EXAMPLES_DIR, full_service, minimal_service, unique_name
from tests.services import common

pytestmark = pytest.mark.slow

_SERVE = [sys.executable, "-m", "oscar", "serve"]


def test_health_answers_within_three_seconds(tmp_path: Path) -> None:
    port = free_port()
    env = clean_env(OSCAR_PASSWORD=ADMIN_PASSWORD)
    started = time.monotonic()
    command = [sys.executable, "-m", "oscar", "serve", "--port", str(port)]
    process = subprocess.Popen(
        # A free S3 port too: the default (9000) may be another test's, on another worker.
        [*command, "--s3-port", str(free_port()), "--data-dir", str(tmp_path / "d")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while time.monotonic() - started < 3:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5).text == "Ok":
                    break
            except httpx.TransportError:
                time.sleep(0.02)
        else:
            pytest.fail("oscar serve did not answer /health within 3 s")
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_sigterm_is_a_clean_shutdown(start_oscar: Callable[..., RunningServer]) -> None:
    running = start_oscar()
    assert running.stop(signal.SIGTERM) == 0
    log = running.log()
    assert "oscar stopped" in log
    assert "Traceback" not in log


def test_sigint_is_a_clean_shutdown(start_oscar: Callable[..., RunningServer]) -> None:
    running = start_oscar()
    assert running.stop(signal.SIGINT) == 0
    assert "Traceback" not in running.log()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["restart", "kill-9"])
def test_services_survive_restart(start_oscar: Callable[..., RunningServer], sig: int) -> None:
    first = start_oscar()
    api = first.client()
    name, removed = unique_name(), unique_name()
    assert api.post("/system/services", json=full_service(name)).status_code == 201
    assert api.post("/system/services", json=minimal_service(removed)).status_code == 201
    assert api.delete(f"/system/services/{removed}").status_code == 204
    before = api.get(f"/system/services/{name}").json()
    first.stop(sig)

    second = start_oscar(data_dir=first.data_dir, s3_port=first.s3_port)
    api = second.client()
    assert api.get(f"/system/services/{name}").json() == before
    assert api.get(f"/system/services/{removed}").status_code == 404
    assert api.post("/system/services", json=minimal_service(name)).status_code == 409


def test_settings_from_environment(
    start_oscar: Callable[..., RunningServer], tmp_path: Path
) -> None:
    port = free_port()
    data_dir = tmp_path / "env-data"
    env = {
        "OSCAR_PORT": str(port),
        "OSCAR_S3_PORT": str(free_port()),  # not the default 9000: other tests run meanwhile
        "OSCAR_DATA_DIR": str(data_dir),
        "OSCAR_USERNAME": "boss",
    }
    command = [sys.executable, "-m", "oscar", "serve"]
    log_path = tmp_path / "env.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, env=clean_env(OSCAR_PASSWORD="pw-from-env", **env), stdout=log, stderr=log
        )
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                response = httpx.get(
                    f"http://127.0.0.1:{port}/system/info", auth=("boss", "pw-from-env"), timeout=1
                )
                break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            pytest.fail(f"server did not start:\n{log_path.read_text()}")
        assert response.status_code == 200
        assert (data_dir / "oscar.db").exists()
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_request_log_is_structured(start_oscar: Callable[..., RunningServer]) -> None:
    running = start_oscar()
    running.client().get("/system/services")
    running.stop()
    records = [json.loads(line) for line in running.log().splitlines() if line.startswith("{")]
    access = [r for r in records if r.get("logger") == "oscar.access"]
    assert any(r.get("path") == "/system/services" and r.get("status") == 200 for r in access)


def test_port_in_use_is_a_clear_error(
    start_oscar: Callable[..., RunningServer], tmp_path: Path
) -> None:
    running = start_oscar()
    result = subprocess.run(
        [*_SERVE, "--port", str(running.port), "--data-dir", str(tmp_path / "other")],
        env=clean_env(OSCAR_PASSWORD=ADMIN_PASSWORD),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr


def test_replicas_on_one_host_share_the_ports_with_reuse_port(
    start_oscar: Callable[..., RunningServer], tmp_path: Path
) -> None:
    """OSCAR_REUSE_PORT: a second process of the same user listens on the same API and S3
    ports (SO_REUSEPORT), and keeps answering there once the first one is gone."""
    env = {"OSCAR_REUSE_PORT": "true"}
    first = start_oscar(data_dir=tmp_path / "a", extra_env=env)
    second = start_oscar(
        data_dir=tmp_path / "b", port=first.port, s3_port=first.s3_port, extra_env=env
    )
    # Its /health check may have been answered by the first process, on the shared port:
    # wait until the second one says it serves both ports itself.
    common.wait_until(
        lambda: second.log().count("Application startup complete") == 2,
        timeout=30,
        what="the second process serving",
    )
    first.stop(signal.SIGKILL)
    for _ in range(20):  # every new connection now reaches the second process
        assert httpx.get(f"{first.url}/health", timeout=5).text == "Ok"
    assert httpx.get(f"http://127.0.0.1:{first.s3_port}/", timeout=5).status_code == 403


def _oscar(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oscar", *args],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_validate_accepts_the_examples() -> None:
    examples = [str(p) for p in sorted(EXAMPLES_DIR.glob("*/*.yaml"))]
    result = _oscar("validate", *examples)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(": ok") == len(examples)


def test_validate_reports_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "functions:\n  oscar:\n  - c1:\n      name: svc\n      image: alpine\n"
        "      script: |\n        echo\n      memory: huge\n"
    )
    result = _oscar("validate", str(bad))
    assert result.returncode == 1
    assert f"{bad}:8: functions.oscar[0].c1.memory:" in result.stderr
    assert "Traceback" not in result.stderr


def test_version() -> None:
    result = _oscar("version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"oscar {__import__('oscar').__version__}"


def test_served_connections_have_tcp_nodelay() -> None:
    """Connections accepted on `oscar serve`'s sockets send small answers at once: without
    TCP_NODELAY each keep-alive request waited ~40 ms for the client's delayed ACK."""
    import asyncio
    import socket

    from oscar.cli import _bind

    async def accepted_nodelay() -> int:
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        listener = _bind("127.0.0.1", 0, "probe")
        server = await asyncio.get_running_loop().create_server(Probe, sock=listener)
        port = listener.getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            return await asyncio.wait_for(seen, 10)
        finally:
            writer.close()
            server.close()

    assert asyncio.run(accepted_nodelay()) != 0
