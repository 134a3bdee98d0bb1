"""Run the user's script: `/bin/sh script`, output streamed to the log line by line.

Everything the script starts ends with it. Each run marks the script's environment with a
variable of its own, which every descendant inherits even after `setsid` or a double fork; when
the script exits or times out, its process group and every process carrying the mark are
killed. A background child that keeps the script's stdout open therefore cannot hang the job
either. (The supervisor's entry point also makes itself a child subreaper, so detached
processes re-parent to it and are reaped rather than left as zombies.)
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

from supervisor.errors import ScriptError, ScriptTimeoutError

log = logging.getLogger("supervisor")
PR_SET_CHILD_SUBREAPER = 36
RUN_MARK = "OSCAR_SCRIPT_RUN"
# How long the output reader may take to drain after the script's processes were killed.
DRAIN_SECONDS = 5.0
#: Called before the script starts; a hook that raises stops the job there. The warm pool's
#: children use it to finish joining the job's cgroups (`supervisor.zygote`).
BEFORE_SCRIPT: list[Callable[[], None]] = []


def become_subreaper() -> bool:
    """Make orphaned descendants re-parent to this process (Linux); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def marked(mark: str) -> list[int]:
    """Live processes whose environment carries `RUN_MARK=mark` (zombies have none)."""
    wanted = f"{RUN_MARK}={mark}".encode()
    found = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/environ", "rb") as handle:
                    if wanted in handle.read().split(b"\0"):
                        found.append(int(entry.name))
            except OSError:
                continue  # gone, or not ours to read
    return found


def kill_run(group: int, mark: str, rounds: int = 50) -> None:
    """SIGKILL the script's process group and every process of the run, until none is left
    (processes may fork while being killed, hence several rounds)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGKILL)
    for _ in range(rounds):
        left = marked(mark)
        if not left:
            return
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # re-parented to us (subreaper): reap it
        time.sleep(0.01)
    log.warning("processes of the script survived SIGKILL: %s", marked(mark))


def run_script(
    script: Path,
    env: Mapping[str, str],
    cwd: Path,
    output: IO[bytes],
    timeout: float | None = None,
) -> None:
    """Run `script`, copying its merged stdout/stderr to `output` and to the log.

    Raises `ScriptError` on a non-zero exit and `ScriptTimeoutError` past `timeout` seconds.
    Whatever the script left running is killed when it ends, either way.
    """
    # SCRIPT_WRAPPER runs the script inside something, e.g. on HPC nodes with a container
    # runtime: `apptainer exec --bind <job folder> docker://<image>`.
    wrapper = shlex.split(env.get("SCRIPT_WRAPPER", ""))
    for hook in BEFORE_SCRIPT:
        hook()
    log.info("Running the user script%s", f" with {wrapper[0]}" if wrapper else "")
    mark = uuid.uuid4().hex
    started = time.monotonic()
    process = subprocess.Popen(
        [*wrapper, "/bin/sh", str(script)],
        env={**env, RUN_MARK: mark},
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert process.stdout is not None
    stream = process.stdout

    def copy_output() -> None:
        for line in stream:
            output.write(line)
            log.info("%s", line.decode("utf-8", errors="replace").rstrip("\n"))

    reader = threading.Thread(target=copy_output, name="script-output", daemon=True)
    reader.start()
    timed_out = False
    try:
        code = process.wait(timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        kill_run(process.pid, mark)
        code = process.wait()
    finally:
        kill_run(process.pid, mark)
        reader.join(DRAIN_SECONDS)
    elapsed = time.monotonic() - started
    if timed_out:
        raise ScriptTimeoutError(f"the script was killed after the {timeout:g}s timeout")
    if code != 0:
        # A shell reports death by signal N as a negative code; exit statuses must be 1-255.
        status = code if 0 < code < 256 else 128 + abs(code)
        raise ScriptError(f"the script failed with exit code {code} after {elapsed:.1f}s", status)
    log.info("The script finished successfully in %.1fs", elapsed)
