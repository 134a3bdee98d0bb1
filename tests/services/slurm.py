"""A real one-node Slurm cluster from Debian's `slurm-wlm` and `munge`, private to the test run.

Everything (munge key and socket, slurm.conf, state, spool, logs) lives in a temporary folder;
`munged`, `slurmctld` and `slurmd` run in the foreground as children of the fixture. On the way
out the fixture cancels every job, stops the daemons and then hunts down anything that still
belongs to the cluster (`slurmstepd` detaches from `slurmd`, so stopping the daemons is not
enough), so nothing outlives it. Jobs run as the user running the tests (root here).

There is no accounting database (that would need `slurmdbd` and MariaDB), so `sacct` does not
work: ask `scontrol show job` for the state of a job, which stays there for `MinJobAge` seconds.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.services import common

NAME = "slurm"
VERSION = "debian-slurm-wlm"
PACKAGES = ("slurm-wlm", "munge")
PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "sinfo")
PARTITION = "debug"
# Finished jobs stay visible to `scontrol show job` this long (there is no `sacct`).
MIN_JOB_AGE = 3600
# States after which a job never changes again.
TERMINAL_STATES = frozenset(
    {
        "BOOT_FAIL",
        "CANCELLED",
        "COMPLETED",
        "DEADLINE",
        "FAILED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "PREEMPTED",
        "TIMEOUT",
    }
)


def is_installed() -> bool:
    """Whether the Slurm daemons, client commands and munged are on PATH."""
    return all(shutil.which(program) for program in PROGRAMS)


def install() -> None:
    """apt-get install slurm-wlm and munge (needs root), refreshing the lists only if needed."""
    if is_installed():
        print("[testenv] slurm: already installed", flush=True)
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES]
    print(f"[testenv] slurm: {' '.join(command)}", flush=True)
    if common.run(command, env=env, check=False).returncode != 0:
        # Usually a fresh container without package lists.
        print("[testenv] slurm: apt-get update and retry", flush=True)
        common.run(["apt-get", "update"], env=env)
        common.run(command, env=env)


@dataclass(frozen=True)
class SlurmCluster:
    """A running one-node cluster; client commands reach it through `env()`."""

    conf_path: Path
    workdir: Path
    node: str
    partition: str
    cpus: int
    memory_mb: int
    munge_socket: Path
    log_dir: Path
    _env: dict[str, str] = field(default_factory=dict, repr=False)

    def env(self) -> dict[str, str]:
        """Environment for Slurm client commands (`SLURM_CONF` pointing at this cluster)."""
        return {**os.environ, **self._env}

    def run(
        self, args: list[str], *, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run a Slurm command (`sbatch`, `squeue`, `scontrol`, ...) against this cluster."""
        return common.run(args, env=self.env(), check=check, timeout=timeout)

    def submit(self, script: Path, *flags: str) -> str:
        """`sbatch --parsable` a batch script; return the job id."""
        output = self.run(["sbatch", "--parsable", *flags, str(script)]).stdout
        return output.strip().split(";")[0]  # "<id>;<cluster>" on multi-cluster setups

    def job_state(self, job_id: str) -> dict[str, str]:
        """`scontrol show job` as a dict (JobState, ExitCode, StdOut, ...)."""
        text = self.run(["scontrol", "show", "job", "--oneliner", job_id]).stdout
        return dict(re.findall(r"(\w+)=(\S*)", text))

    def wait_for_job(self, job_id: str, timeout: float = 60) -> dict[str, str]:
        """Poll until the job reaches a terminal state; return its `job_state`."""

        def finished() -> dict[str, str] | None:
            state = self.job_state(job_id)
            return state if state.get("JobState") in TERMINAL_STATES else None

        return common.wait_until(
            finished, timeout=timeout, interval=0.2, what=f"slurm job {job_id} to finish"
        )


@dataclass(frozen=True)
class _Node:
    """The node line of slurm.conf: this machine's real topology, memory minus a margin."""

    cpus: int
    topology: str
    memory_mb: int


def _memory_total_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise common.ServiceUnavailableError("no MemTotal in /proc/meminfo")


def _detect_node() -> _Node:
    """Ask `slurmd -C` what it will find, so slurmd never drains the node for a mismatch."""
    margin = 1024  # leave room for the OS and the test run itself
    found = dict(re.findall(r"(\w+)=(\S+)", common.run(["slurmd", "-C"], check=False).stdout))
    keys = ("Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore")
    if "CPUs" in found and "RealMemory" in found and all(key in found for key in keys):
        topology = " ".join(f"{key}={found[key]}" for key in keys)
        memory = int(found["RealMemory"])
        return _Node(int(found["CPUs"]), topology, max(256, memory - margin))
    cpus = os.cpu_count() or 1
    return _Node(cpus, "", max(256, _memory_total_mb() - margin))


def _write_config(workdir: Path, host: str, node: _Node, socket_path: Path) -> Path:
    ctld_port, slurmd_port = common.free_port(), common.free_port()
    for folder in ("state", "spool", "run"):
        (workdir / folder).mkdir(exist_ok=True)
    log = workdir / "log"
    node_line = (
        f"NodeName={host} NodeAddr=127.0.0.1 CPUs={node.cpus} {node.topology} "
        f"RealMemory={node.memory_mb} State=UNKNOWN"
    )
    conf = f"""
ClusterName=oscar-test
SlurmctldHost={host}(127.0.0.1)
SlurmUser={getpass.getuser()}
SlurmdUser=root
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={socket_path}
StateSaveLocation={workdir / "state"}
SlurmdSpoolDir={workdir / "spool"}
SlurmctldPidFile={workdir / "run" / "slurmctld.pid"}
SlurmdPidFile={workdir / "run" / "slurmd.pid"}
SlurmctldLogFile={log / "slurmctld.log"}
SlurmdLogFile={log / "slurmd.log"}
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# No cgroups in this sandbox: track job processes through /proc, bind nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
SchedulerParameters=sched_interval=1
MinJobAge={MIN_JOB_AGE}
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
{node_line}
PartitionName={PARTITION} Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""
    path = workdir / "slurm.conf"
    path.write_text(conf.lstrip())
    return path


def _spawn(args: list[str], output: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start a daemon in the foreground with stdout/stderr appended to `output`."""
    with output.open("ab") as sink:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(args, env=env, stdout=sink, stderr=subprocess.STDOUT)


def _start_munged(workdir: Path) -> tuple[subprocess.Popen[bytes], Path]:
    munge_dir = workdir / "munge"
    munge_dir.mkdir(mode=0o700, exist_ok=True)
    key = munge_dir / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)  # munged refuses a key others can read
    socket_path = munge_dir / "munge.socket"
    log = workdir / "log" / "munged.log"
    process = _spawn(
        [
            "munged",
            "--foreground",
            # As root munged rejects folders it does not consider secure (e.g. under /tmp);
            # --force turns those checks into warnings.
            "--force",
            f"--key-file={key}",
            f"--socket={socket_path}",
            f"--pid-file={munge_dir / 'munged.pid'}",
            f"--log-file={log}",
            f"--seed-file={munge_dir / 'munged.seed'}",
        ],
        workdir / "log" / "munged.out",
        dict(os.environ),
    )
    common.wait_until(socket_path.exists, timeout=15, what="munged", process=process, log=log)
    return process, socket_path


def _proc_text(pid: int, name: str) -> str:
    try:
        return (
            (Path("/proc") / str(pid) / name)
            .read_bytes()
            .replace(b"\0", b" ")
            .decode(errors="replace")
        )
    except OSError:  # gone, or a kernel thread we may not read
        return ""


def leftover_processes(workdir: Path, conf_path: Path) -> list[int]:
    """Pids (other than ours) whose command line names `workdir` or whose environment holds
    this cluster's `SLURM_CONF`: the daemons, `slurmstepd` and the jobs' own processes."""
    # Trailing separators so /tmp/.../slurm1 never matches /tmp/.../slurm10's processes.
    inside, marker = f"{workdir}/", f"SLURM_CONF={conf_path} "
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        ours = inside in _proc_text(pid, "cmdline") or marker in _proc_text(pid, "environ")
        if ours and "State:\tZ" not in _proc_text(pid, "status"):  # zombies are already dead
            found.append(pid)
    return found


def _cancel_all_jobs(cluster: SlurmCluster) -> None:
    """scancel everything and give slurmd a moment to reap the steps (best effort)."""
    if cluster.run(["scancel", f"--user={getpass.getuser()}"], check=False).returncode != 0:
        return
    # On timeout the sweep after stopping the daemons kills whatever is left.
    with suppress(common.ServiceUnavailableError):
        common.wait_until(
            lambda: cluster.run(["squeue", "-h", "-o", "%i"], check=False).stdout.strip() == "",
            timeout=20,
            interval=0.2,
            what="slurm jobs to end",
        )


def _kill_leftovers(workdir: Path, conf_path: Path) -> None:
    """SIGKILL whatever still belongs to the cluster and wait until it is gone."""
    for pid in leftover_processes(workdir, conf_path):
        with suppress(ProcessLookupError):  # it may exit by itself meanwhile
            os.kill(pid, signal.SIGKILL)
    common.wait_until(
        lambda: not leftover_processes(workdir, conf_path),
        timeout=15,
        what="leftover slurm processes to exit",
    )


@contextmanager
def running(workdir: Path) -> Iterator[SlurmCluster]:
    """Start munged, slurmctld and slurmd for a one-node cluster; stop all of them afterwards."""
    workdir = workdir.resolve()
    log_dir = workdir / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    host = socket.gethostname().split(".")[0]
    node = _detect_node()
    conf = workdir / "slurm.conf"
    processes: list[subprocess.Popen[bytes]] = []
    cluster: SlurmCluster | None = None
    try:
        munged, socket_path = _start_munged(workdir)
        processes.append(munged)
        conf = _write_config(workdir, host, node, socket_path)
        env = {"SLURM_CONF": str(conf)}
        daemon_env = {**os.environ, **env}
        for daemon in ("slurmctld", "slurmd"):
            processes.append(
                _spawn([daemon, "-D", "-f", str(conf)], log_dir / f"{daemon}.out", daemon_env)
            )
        cluster = SlurmCluster(
            conf, workdir, host, PARTITION, node.cpus, node.memory_mb, socket_path, log_dir, env
        )

        def node_idle() -> bool:
            for process, daemon in zip(processes[1:], ("slurmctld", "slurmd"), strict=True):
                if process.poll() is not None:
                    raise common.ServiceUnavailableError(
                        f"{daemon} exited with {process.returncode}; see {log_dir}"
                    )
            states = cluster.run(["sinfo", "-h", "-N", "-o", "%T"], check=False).stdout.split()
            return states == ["idle"]

        common.wait_until(
            node_idle,
            timeout=60,
            interval=0.2,
            what="slurm node idle",
            process=processes,
            log=log_dir / "slurmd.log",
        )
        yield cluster
    finally:
        if cluster is not None and processes[1].poll() is None:
            _cancel_all_jobs(cluster)
        # slurmd first (it kills its steps), then the controller, then munged they both use.
        for process in reversed(processes):
            common.stop_process(process)
        _kill_leftovers(workdir, conf)


@pytest.fixture(scope="session")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    """A real one-node Slurm cluster shared by the session."""
    common.require_installed(NAME, is_installed())
    with running(tmp_path_factory.mktemp("slurm")) as cluster:
        yield cluster
