"""The local backend: each pod's `run.sh` is a process of the plugin's host (edge nodes, and the
"cloud" node of the tests). Runs are their own sessions, so they outlive a restarted plugin;
the job id is `<pid>:<start time>`, so a reused pid is never taken for the pod's process."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Collection
from pathlib import Path
from typing import Any

from interlink_plugin.backends.base import PodBackend, RunState
from interlink_plugin.pods import PodFolder, can_bind_mount, container_runtime


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (`/proc/<pid>/stat` field 22)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return fields[19] if len(fields) > 19 and fields[0] != "Z" else None


class LocalBackend(PodBackend):
    """Pods as process trees on this host."""

    name = "local"

    def __init__(self) -> None:
        self.runtime = container_runtime()
        self.bind_mounts = can_bind_mount()

    def start(self, folder: PodFolder, pod: dict[str, Any]) -> str:
        """Start `run.sh` in its own session; its output goes to `run.log`. A run an earlier
        attempt started (the plugin died before recording it) is found by its `run.pid`."""
        pid_text = (
            (folder.path / "run.pid").read_text().strip()
            if (folder.path / "run.pid").exists()
            else ""
        )
        if pid_text.isdigit() and (started := _start_time(int(pid_text))) is not None:
            return f"{pid_text}:{started}"
        with (folder.path / "run.log").open("ab") as output:
            process = subprocess.Popen(
                ["/bin/bash", str(folder.path / "run.sh")],
                cwd=folder.path,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                start_new_session=True,
            )
        # Reap it when it ends (a plugin restarted meanwhile leaves that to init).
        threading.Thread(target=process.wait, daemon=True).start()
        started = _start_time(process.pid)
        return f"{process.pid}:{started}"

    def states(self, jobs: Collection[str]) -> dict[str, RunState]:
        """Alive while the recorded process (same pid, same start time) exists."""
        answer: dict[str, RunState] = {}
        for job in jobs:
            pid, _, started = job.partition(":")
            alive = pid.isdigit() and _start_time(int(pid)) == started
            answer[job] = (
                RunState(True)
                if alive
                else RunState(False, exit_code=137, message="the pod's process ended")
            )
        return answer

    def stop(self, job: str) -> None:
        """SIGKILL the run's whole session (containers included)."""
        pid, _, started = job.partition(":")
        if pid.isdigit() and _start_time(int(pid)) == started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(pid), signal.SIGKILL)

    def resources(self) -> dict[str, Any]:
        """This host's cores and memory."""
        memory_kib = 0
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemTotal:"):
                    memory_kib = int(line.split()[1])
        except OSError:
            pass
        return {"cpu": str(os.cpu_count() or 1), "memory": f"{memory_kib}Ki", "pods": "110"}
