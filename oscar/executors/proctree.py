"""Every process of a local job, found and killed as one, whatever the script does.

Where the host lets us, each job runs in its own cgroup v2 (`<our cgroup>/oscar-<scope>/<job>`):
the supervisor is moved in before it starts, everything it forks stays in, and `cgroup.kill`
ends the lot. Elsewhere each job's processes carry a marker variable in their environment,
which every descendant inherits even after `setsid` or a double fork, and a sweep of `/proc`
finds them. Either way the groups outlive a crash of the control plane, so a restarted one can
reap what the previous run left before anything runs again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import subprocess
import time
from pathlib import Path

log = logging.getLogger("oscar.executors")
MARKER = "OSCAR_JOB_MARK"
_SAFE = re.compile(r"[A-Za-z0-9._-]+")


def _cgroup2_root() -> Path | None:
    """This process's own cgroup in the cgroup v2 hierarchy, if one is mounted."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
        own = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    mount = next((line.split()[1] for line in mounts if line.split()[2:3] == ["cgroup2"]), None)
    path = next((line[3:] for line in own if line.startswith("0::")), None)
    if mount is None or path is None:
        return None
    return Path(mount) / path.lstrip("/")


class JobProcesses:
    """Starts job processes in a group of their own and kills groups (any thread)."""

    def __init__(self, scope: str, use_cgroups: bool = True) -> None:
        if not _SAFE.fullmatch(scope):
            raise ValueError(f"invalid process scope {scope!r}")
        self.scope = scope
        self.cgroups = self._cgroup_base() if use_cgroups else None
        log.info(
            "local jobs are tracked by %s",
            f"cgroup v2 ({self.cgroups})" if self.cgroups else "an environment marker",
        )

    def _cgroup_base(self) -> Path | None:
        own = _cgroup2_root()
        if own is None:
            return None
        base = own / f"oscar-{self.scope}"
        probe = base / "probe"
        try:
            probe.mkdir(parents=True, exist_ok=True)
            # The real test: may a child process move itself in (as every job does)?
            moved = subprocess.run(
                ["/bin/sh", "-c", 'echo 0 > "$1"', "sh", str(probe / "cgroup.procs")],
                capture_output=True,
                timeout=10,
                check=False,
            )
            probe.rmdir()
        except (OSError, subprocess.SubprocessError):
            return None
        return base if moved.returncode == 0 else None

    def _mark(self, job: str) -> str:
        return f"{self.scope}/{job}"

    def command(self, job: str, argv: list[str], env: dict[str, str]) -> list[str]:
        """`argv` wrapped so that it starts inside the job's group; marks `env` too."""
        if not _SAFE.fullmatch(job):
            raise ValueError(f"invalid job name {job!r}")
        env[MARKER] = self._mark(job)
        if self.cgroups is None:
            return argv
        group = self.cgroups / job
        group.mkdir(parents=True, exist_ok=True)
        # The shell moves itself into the group, then becomes the command: nothing of the job
        # ever runs outside it. Paths are arguments, never part of the shell text.
        return ["/bin/sh", "-c", 'echo 0 > "$1" && shift && exec "$@"', "sh",
                str(group / "cgroup.procs"), *argv]  # fmt: skip

    def pids(self, job: str) -> list[int]:
        """Live processes of the job."""
        if self.cgroups is not None:
            try:
                text = (self.cgroups / job / "cgroup.procs").read_text()
            except OSError:
                return []
            return [int(pid) for pid in text.split()]
        return self._marked(self._mark(job).encode())

    def _marked(self, mark: bytes, prefix: bool = False) -> list[int]:
        wanted = MARKER.encode() + b"=" + mark
        found = []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry.name}/environ", "rb") as handle:
                    variables = handle.read().split(b"\0")
            except OSError:
                continue  # gone, or not ours to read
            if any(v == wanted or (prefix and v.startswith(wanted)) for v in variables):
                found.append(int(entry.name))
        return found

    def kill(self, job: str, deadline: float = 10.0) -> bool:
        """SIGKILL every process of the job and wait until none is left; False if some
        survived `deadline` seconds (e.g. stuck in the kernel)."""
        group = self.cgroups / job if self.cgroups is not None else None
        end = time.monotonic() + deadline
        while True:
            pids = self.pids(job)
            if not pids:
                break
            if group is not None and (group / "cgroup.kill").exists():
                with contextlib.suppress(OSError):
                    (group / "cgroup.kill").write_text("1")
            else:
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
            if time.monotonic() > end:
                log.error("job %s: processes %s survived SIGKILL", job, pids)
                return False
            time.sleep(0.01)
        if group is not None:
            with contextlib.suppress(OSError):
                group.rmdir()
        return True

    def leftovers(self) -> set[str]:
        """Jobs of this scope that still have processes (or a group) on this host."""
        if self.cgroups is not None:
            if not self.cgroups.is_dir():
                return set()
            return {p.name for p in self.cgroups.iterdir() if p.is_dir()}
        jobs = set()
        for pid in self._marked(f"{self.scope}/".encode(), prefix=True):
            with contextlib.suppress(OSError):
                for variable in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                    if variable.startswith(f"{MARKER}={self.scope}/".encode()):
                        jobs.add(variable.split(b"/", 1)[1].decode())
        return jobs
