"""Helpers shared by the real-service modules: ports, readiness polling, caching, commands."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")

CACHE_ROOT = Path(os.environ.get("OSCAR_TESTENV_CACHE", Path.home() / ".cache" / "oscar-testenv"))


class ServiceUnavailableError(RuntimeError):
    """A real service a test needs is not installed or did not start."""


def cache_dir(name: str, version: str) -> Path:
    """The cache folder for one service version (created on demand)."""
    path = CACHE_ROOT / f"{name}-{version}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on `host:port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.1,
    process: subprocess.Popen[bytes] | Sequence[subprocess.Popen[bytes]] | None = None,
    log: Path | None = None,
) -> T:
    """Poll `probe` until it returns a truthy value; raise with `what` (and the log) on timeout.

    Exceptions raised by `probe` count as "not yet". When `process` (or any of several) exits
    first, fail at once, naming its command.
    """
    watched = [process] if isinstance(process, subprocess.Popen) else list(process or [])
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        for child in watched:
            if child.poll() is not None:
                command = child.args[0] if isinstance(child.args, list) else child.args
                raise ServiceUnavailableError(
                    f"{what}: {command} exited with {child.returncode}{_tail(log)}"
                )
        try:
            result = probe()
            if result:
                return result
        except Exception as error:  # any failure means "not ready yet"
            last_error = error
        time.sleep(interval)
    raise ServiceUnavailableError(
        f"{what}: not ready within {timeout:.0f}s (last error: {last_error!r}){_tail(log)}"
    )


def _tail(log: Path | None, lines: int = 40) -> str:
    if log is None or not log.exists():
        return ""
    text = log.read_text(errors="replace").splitlines()[-lines:]
    return f"\n--- last lines of {log} ---\n" + "\n".join(text)


def run(
    args: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a command (never through a shell); on failure raise with its exit code and output."""
    result = subprocess.run(
        args, env=env, cwd=cwd, timeout=timeout, capture_output=True, text=True, check=False
    )
    if check and result.returncode != 0:
        raise ServiceUnavailableError(
            f"command failed ({result.returncode}): {' '.join(args)}\n"
            f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}"
        )
    return result


def stop_process(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """Terminate a child process, killing it if it does not exit within `timeout`."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


def require_installed(name: str, installed: bool) -> None:
    """Fail the test loudly (never skip) when a service is missing, saying what to run."""
    if not installed:
        pytest.fail(
            f"{name} is not installed for the tests; run `scripts/testenv.sh install {name}`",
            pytrace=False,
        )


def which(program: str, *extra_dirs: Path) -> str | None:
    """`shutil.which` that also looks in `extra_dirs` (e.g. cached build folders)."""
    for folder in extra_dirs:
        candidate = folder / program
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(program)
