"""A real one-node Slurm cluster from Debian's `slurm-wlm` and `munge`, private to the test run.

Everything (munge key and socket, slurm.conf, state, spool, logs) lives in a temporary folder;
`slurmctld` and `slurmd` run in the foreground as children of the fixture, so nothing outlives
it. Jobs run as the user running the tests.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.services import common

NAME = "slurm"
VERSION = "debian-slurm-wlm"
PACKAGES = ("slurm-wlm", "munge")
DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "sinfo")
PARTITION = "debug"


def is_installed() -> bool:
    """Whether the Slurm daemons, client commands and munged are on PATH."""
    return all(shutil.which(program) for program in DAEMONS)


def install() -> None:
    """apt-get install slurm-wlm and munge (needs root), refreshing the lists if needed."""
    if is_installed():
        print("[testenv] slurm: already installed", flush=True)
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES]
    if common.run(command, env=env, check=False).returncode != 0:
        common.run(["apt-get", "update"], env=env)
        common.run(command, env=env)


@dataclass(frozen=True)
class SlurmCluster:
    """A running one-node cluster."""

    conf_path: Path
    workdir: Path
    node: str
    partition: str
    cpus: int
    memory_mb: int
    munge_socket: Path
    _env: dict[str, str] = field(default_factory=dict, repr=False)

    def env(self) -> dict[str, str]:
        """Environment for Slurm client commands (`SLURM_CONF` pointing at this cluster)."""
        return {**os.environ, **self._env}

    def run(self, args: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a Slurm command against this cluster."""
        return common.run(args, env=self.env(), check=check, timeout=60)

    def job_state(self, job_id: str) -> dict[str, str]:
        """`scontrol show job` as a dict (JobState, ExitCode, StdOut, ...)."""
        text = self.run(["scontrol", "show", "job", "--oneliner", job_id]).stdout
        return dict(re.findall(r"(\w+)=(\S*)", text))


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return 1024


def _write_config(workdir: Path, node: str, cpus: int, memory_mb: int, socket_path: Path) -> Path:
    ctld_port, slurmd_port = common.free_port(), common.free_port()
    user = getpass.getuser()
    for folder in ("state", "spool", "log", "run"):
        (workdir / folder).mkdir(exist_ok=True)
    conf = f"""
ClusterName=oscar-test
SlurmctldHost={node}(127.0.0.1)
SlurmUser={user}
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
SlurmctldLogFile={workdir / "log" / "slurmctld.log"}
SlurmdLogFile={workdir / "log" / "slurmd.log"}
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
SchedulerParameters=sched_interval=1
MinJobAge=300
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName={PARTITION} Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""
    path = workdir / "slurm.conf"
    path.write_text(conf.lstrip())
    return path


def _start_munged(workdir: Path) -> tuple[subprocess.Popen[bytes], Path]:
    munge_dir = workdir / "munge"
    munge_dir.mkdir(mode=0o700, exist_ok=True)
    key = munge_dir / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    socket_path = munge_dir / "munge.socket"
    log = (workdir / "log" / "munged.log").open("ab")
    process = subprocess.Popen(
        [
            "munged",
            "--foreground",
            "--force",
            f"--key-file={key}",
            f"--socket={socket_path}",
            f"--pid-file={munge_dir / 'munged.pid'}",
            f"--log-file={workdir / 'log' / 'munged.log'}",
            f"--seed-file={munge_dir / 'munged.seed'}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    common.wait_until(
        socket_path.exists,
        timeout=15,
        what="munged",
        process=process,
        log=workdir / "log" / "munged.log",
    )
    return process, socket_path


@contextmanager
def running(workdir: Path) -> Iterator[SlurmCluster]:
    """Start munged, slurmctld and slurmd for a one-node cluster; stop all three afterwards."""
    (workdir / "log").mkdir(parents=True, exist_ok=True)
    node = socket.gethostname().split(".")[0]
    cpus = os.cpu_count() or 1
    memory_mb = max(256, _memory_mb() - 1024)  # leave room for the OS and the test run
    processes: list[subprocess.Popen[bytes]] = []
    try:
        munged, socket_path = _start_munged(workdir)
        processes.append(munged)
        conf = _write_config(workdir, node, cpus, memory_mb, socket_path)
        env = {"SLURM_CONF": str(conf)}
        full_env = {**os.environ, **env}
        for daemon in ("slurmctld", "slurmd"):
            log = (workdir / "log" / f"{daemon}.out").open("ab")
            extra = ["-i"] if daemon == "slurmctld" else []  # ignore stale state
            processes.append(
                subprocess.Popen(
                    [daemon, "-D", "-f", str(conf), *extra],
                    env=full_env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        cluster = SlurmCluster(conf, workdir, node, PARTITION, cpus, memory_mb, socket_path, env)

        def node_idle() -> bool:
            state = cluster.run(["sinfo", "-h", "-N", "-o", "%T"], check=False).stdout
            return state.strip().rstrip("*") in {"idle", "mixed"}

        common.wait_until(
            node_idle,
            timeout=60,
            interval=0.3,
            what="slurm node idle",
            process=processes[-1],
            log=workdir / "log" / "slurmd.log",
        )
        yield cluster
    finally:
        for process in reversed(processes):
            common.stop_process(process)


@pytest.fixture(scope="session")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    """A real one-node Slurm cluster shared by the session."""
    common.require_installed(NAME, is_installed())
    with running(tmp_path_factory.mktemp("slurm")) as cluster:
        yield cluster
