"""Every process of a local job, found and killed as one, whatever the script does, and held
to the service's memory and cpu limits where the kernel lets us.

Where the host lets us, each job runs in its own cgroup v2 (`<our cgroup>/oscar-<scope>/<job>`):
the supervisor is moved in before it starts, everything it forks stays in, and `cgroup.kill`
ends the lot. Elsewhere each job's processes carry a marker variable in their environment,
which every descendant inherits even after `setsid` or a double fork, and a sweep of `/proc`
finds them. Either way the groups outlive a crash of the control plane, so a restarted one can
reap what the previous run left before anything runs again.

Limits (`Limits`) need a resource controller: the job's cgroup v2 gets `memory.max` and
`cpu.weight` when its hierarchy offers the `memory` and `cpu` controllers; otherwise a writable
cgroup v1 `memory` (`cpu`) hierarchy gets a group per job (`<our v1 cgroup>/oscar-<scope>/<job>`)
with `memory.limit_in_bytes` (`cpu.shares`). The kernel then kills a job that outgrows its
memory (`oom_killed` tells). The cpu is a *share*, like a Kubernetes request, not a quota: jobs
competing for the host's cores get them in proportion to their `cpu`, and a lone job may use
idle cores (a quota would hold the supervisor itself, a Python process, to the default fifth of
a core and make every job several times slower on one machine). Without a controller a limit
is not enforced, and a warning says so once, when the executor starts.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("oscar.executors")
MARKER = "OSCAR_JOB_MARK"
_SAFE = re.compile(r"[A-Za-z0-9._-]+")
# cgroup v1 `cpu.shares` per core (the kernel's default weight is one core's), and its bounds.
CPU_SHARES_PER_CORE = 1024
CPU_SHARES_RANGE = (2, 262_144)
# The shell that moves itself into each of the job's groups, then becomes the command. Paths are
# arguments, never part of the shell text: `sh -c MOVE sh <n> <procs files...> <argv...>`.
_MOVE = (
    'n=$1; shift; while [ "$n" -gt 0 ]; do echo 0 > "$1" || exit 1; shift; n=$((n - 1)); done; '
    'exec "$@"'
)
# Limits on swap: set too (no swapping past the memory limit) where the kernel accounts swap.
_SWAP_FILES = frozenset({"memory.swap.max", "memory.memsw.limit_in_bytes"})


@dataclass(frozen=True)
class Limits:
    """What one job may use: bytes of memory, cores of cpu (None: no limit)."""

    memory: int | None = None
    cpu: float | None = None


def _cgroup1_root(controller: str) -> Path | None:
    """This process's own cgroup in the cgroup v1 hierarchy of `controller`, if one is mounted."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
        own = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    mount = None
    for line in mounts:
        fields = line.split()
        if fields[2:3] == ["cgroup"] and controller in fields[3].split(","):
            mount = fields[1]
            break
    path = None
    for line in own:
        _, controllers, where = line.split(":", 2)
        if controller in controllers.split(","):
            path = where
            break
    if mount is None or path is None:
        return None
    return Path(mount) / path.lstrip("/")


def _can_join(group: Path) -> bool:
    """Whether a child process may move itself into `group` (as every job does)."""
    try:
        moved = subprocess.run(
            ["/bin/sh", "-c", 'echo 0 > "$1"', "sh", str(group / "cgroup.procs")],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return moved.returncode == 0


def _cpu_shares(cores: float) -> int:
    """cgroup v1 `cpu.shares` for `cores` (1024 per core, as Kubernetes maps cpu requests)."""
    low, high = CPU_SHARES_RANGE
    return min(high, max(low, math.ceil(cores * CPU_SHARES_PER_CORE)))


def _cpu_weight(cores: float) -> int:
    """cgroup v2 `cpu.weight` for `cores` (the kernel's conversion of `cpu.shares`)."""
    return 1 + ((_cpu_shares(cores) - 2) * 9999) // 262_142


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
        #: Where each limit is enforced: "v2" (the job's own cgroup), a cgroup v1 base folder,
        #: or None (not enforced).
        self.memory: str | Path | None = None
        self.cpu: str | Path | None = None
        if use_cgroups:
            self.memory = self._limit_base("memory", "memory.max", "memory.limit_in_bytes")
            self.cpu = self._limit_base("cpu", "cpu.weight", "cpu.shares")
        for kind, where in (("memory", self.memory), ("cpu", self.cpu)):
            if where is None:
                log.warning(
                    "the %s limits of services are NOT enforced for local jobs: no %s "
                    "controller is available to this process (cgroup v2 or a writable cgroup "
                    "v1 hierarchy)%s",
                    kind,
                    kind,
                    "" if use_cgroups else " (cgroups are disabled by OSCAR_JOB_CGROUPS)",
                )
            else:
                log.info("local jobs' %s limits are enforced by cgroup %s", kind,
                         "v2" if where == "v2" else f"v1 ({where})")  # fmt: skip

    def _cgroup_base(self) -> Path | None:
        own = _cgroup2_root()
        if own is None:
            return None
        base = own / f"oscar-{self.scope}"
        probe = base / "probe"
        try:
            probe.mkdir(parents=True, exist_ok=True)
            joined = _can_join(probe)  # the real test: may a child move itself in?
            probe.rmdir()
        except OSError:
            return None
        return base if joined else None

    def _limit_base(self, controller: str, v2_file: str, v1_file: str) -> str | Path | None:
        """Where jobs' `controller` limits go: "v2" when the jobs' own cgroups v2 offer it, else
        a cgroup v1 base folder a job may join and set limits in, else None."""
        if self.cgroups is not None:
            with contextlib.suppress(OSError):  # ours to enable, if our parent offers it
                (self.cgroups / "cgroup.subtree_control").write_text(f"+{controller}")
            probe = self.cgroups / f"probe-{controller}"
            try:
                probe.mkdir(exist_ok=True)
                offered = (probe / v2_file).exists()
                probe.rmdir()
            except OSError:
                offered = False
            if offered:
                return "v2"
        own = _cgroup1_root(controller)
        if own is None:
            return None
        base = own / f"oscar-{self.scope}"
        probe = base / "probe"
        try:
            probe.mkdir(parents=True, exist_ok=True)
            # Writable limits (here: the current value back) and a child may join.
            (probe / v1_file).write_text((probe / v1_file).read_text())
            joined = _can_join(probe)
            probe.rmdir()
        except OSError:
            return None
        return base if joined else None

    def _limit_groups(self, job: str) -> list[Path]:
        """The job's cgroup v1 groups (limits kept apart from the v2 one)."""
        return [where / job for where in {self.memory, self.cpu} if isinstance(where, Path)]

    def _limited(self, job: str, limits: Limits) -> list[Path]:
        """Create the job's groups for `limits` and set them; the `cgroup.procs` files of its
        cgroup v1 groups (the v2 one is joined anyway)."""
        v2: dict[str, str] = {}
        v1: dict[Path, dict[str, str]] = {}

        def put(
            where: str | Path | None, v2_values: dict[str, str], v1_values: dict[str, str]
        ) -> None:
            if where == "v2":
                v2.update(v2_values)
            elif isinstance(where, Path):
                v1.setdefault(where / job, {}).update(v1_values)

        if limits.memory is not None:
            memory = str(limits.memory)
            put(
                self.memory,
                {"memory.max": memory, "memory.swap.max": "0"},
                {"memory.limit_in_bytes": memory, "memory.memsw.limit_in_bytes": memory},
            )
        if limits.cpu is not None:
            put(
                self.cpu,
                {"cpu.weight": str(_cpu_weight(limits.cpu))},
                {"cpu.shares": str(_cpu_shares(limits.cpu))},
            )
        groups = list(v1.items())
        if v2 and self.cgroups is not None:
            groups.append((self.cgroups / job, v2))
        for group, values in groups:
            group.mkdir(parents=True, exist_ok=True)
            for name, value in values.items():
                if name in _SWAP_FILES and not (group / name).exists():
                    continue  # no swap accounting on this kernel: nothing to limit
                (group / name).write_text(value)
        return [group / "cgroup.procs" for group in v1]

    def oom_killed(self, job: str) -> bool:
        """Whether the kernel killed a process of the job for exceeding its memory limit (ask
        before `kill`, which removes the job's groups)."""
        if self.memory is None:
            return False
        if self.memory == "v2":
            assert self.cgroups is not None
            events = self.cgroups / job / "memory.events"
        else:
            events = Path(self.memory) / job / "memory.oom_control"
        try:
            lines = events.read_text().splitlines()
        except OSError:
            return False
        counts = dict(line.split(maxsplit=1) for line in lines if " " in line)
        return int(counts.get("oom_kill", "0")) > 0

    def _mark(self, job: str) -> str:
        return f"{self.scope}/{job}"

    def mark(self, name: str) -> tuple[str, str]:
        """The marker variable of a process that is not a job's but must die with this scope's
        leftovers after a crash (the supervisor pool); `leftovers` reports it as `name`."""
        if not _SAFE.fullmatch(name):
            raise ValueError(f"invalid process name {name!r}")
        return MARKER, self._mark(name)

    def groups(self, job: str, env: dict[str, str], limits: Limits | None = None) -> list[Path]:
        """Create the job's groups, held to `limits` where a controller allows (raises OSError
        if a limit cannot be set), and mark `env`; the `cgroup.procs` files the job's first
        process must join before anything of the job runs."""
        if not _SAFE.fullmatch(job):
            raise ValueError(f"invalid job name {job!r}")
        env[MARKER] = self._mark(job)
        files: list[Path] = []
        if self.cgroups is not None:
            group = self.cgroups / job
            group.mkdir(parents=True, exist_ok=True)
            files.append(group / "cgroup.procs")
        if limits is not None:
            files += self._limited(job, limits)
        return files

    def command(
        self, job: str, argv: list[str], env: dict[str, str], limits: Limits | None = None
    ) -> list[str]:
        """`argv` wrapped so that it starts inside the job's `groups` (marking `env`)."""
        files = self.groups(job, env, limits)
        if not files:
            return argv
        # The shell moves itself into every group, then becomes the command: nothing of the job
        # ever runs outside them, or before its limits are in place.
        return ["/bin/sh", "-c", _MOVE, "sh", str(len(files)), *map(str, files), *argv]

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
        self.remove(job)
        return True

    def remove(self, job: str) -> None:
        """Remove the job's groups (those still holding a process stay)."""
        groups = [self.cgroups / job] if self.cgroups is not None else []
        for group in [*groups, *self._limit_groups(job)]:
            with contextlib.suppress(OSError):
                group.rmdir()

    def leftovers(self) -> set[str]:
        """Jobs of this scope that still have processes (or a group) on this host."""
        jobs = {
            group.name
            for base in {self.cgroups, self.memory, self.cpu}
            if isinstance(base, Path) and base.is_dir()
            for group in base.iterdir()
            if group.is_dir()
        }
        if self.cgroups is not None:
            return jobs
        for pid in self._marked(f"{self.scope}/".encode(), prefix=True):
            with contextlib.suppress(OSError):
                for variable in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                    if variable.startswith(f"{MARKER}={self.scope}/".encode()):
                        jobs.add(variable.split(b"/", 1)[1].decode())
        return jobs
