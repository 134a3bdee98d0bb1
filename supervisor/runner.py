"""Run the user's script: `/bin/sh script`, output streamed to the log line by line."""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from supervisor.errors import ScriptError, ScriptTimeoutError

log = logging.getLogger("supervisor")


def run_script(
    script: Path,
    env: Mapping[str, str],
    cwd: Path,
    output: IO[bytes],
    timeout: float | None = None,
) -> None:
    """Run `script`, copying its merged stdout/stderr to `output` and to the log.

    The script gets its own process group so that a timeout kills everything it started.
    Raises `ScriptError` on a non-zero exit and `ScriptTimeoutError` past `timeout` seconds.
    """
    # SCRIPT_WRAPPER runs the script inside something, e.g. on HPC nodes with a container
    # runtime: `apptainer exec --bind <job folder> docker://<image>`.
    wrapper = shlex.split(env.get("SCRIPT_WRAPPER", ""))
    log.info("Running the user script%s", f" with {wrapper[0]}" if wrapper else "")
    started = time.monotonic()
    process = subprocess.Popen(
        [*wrapper, "/bin/sh", str(script)],
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert process.stdout is not None
    timed_out = threading.Event()

    def kill_on_timeout() -> None:
        timed_out.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    timer = threading.Timer(timeout, kill_on_timeout) if timeout else None
    if timer:
        timer.daemon = True
        timer.start()
    try:
        for line in process.stdout:
            output.write(line)
            log.info("%s", line.decode("utf-8", errors="replace").rstrip("\n"))
        code = process.wait()
    finally:
        if timer:
            timer.cancel()
    elapsed = time.monotonic() - started
    if timed_out.is_set():
        raise ScriptTimeoutError(f"the script was killed after the {timeout:g}s timeout")
    if code != 0:
        # A shell reports death by signal N as a negative code; exit statuses must be 1-255.
        status = code if 0 < code < 256 else 128 + abs(code)
        raise ScriptError(f"the script failed with exit code {code} after {elapsed:.1f}s", status)
    log.info("The script finished successfully in %.1fs", elapsed)
