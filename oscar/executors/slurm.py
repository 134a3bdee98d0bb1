"""Slurm executor: the control plane submits each job to Slurm itself.

The batch script is a template (`templates/slurm_job.sh`); Slurm states map to ours through a
table with an explicit set of terminal states; every Slurm command goes through the transport,
which takes an argument list (never a shell string) and raises with exit code and output.
The job folder must be on a filesystem the Slurm nodes share with the control plane.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from oscar.executors.base import Executor, JobResult
from oscar.executors.local import LocalExecutor
from oscar.models.job import Job, JobStatus
from oscar.models.quantity import parse_quantity
from oscar.models.service import Service
from oscar.models.storage import MinIOProvider

TEMPLATE = Path(__file__).with_name("templates") / "slurm_job.sh"
STATES: dict[str, JobStatus] = {
    "PENDING": JobStatus.PENDING,
    "CONFIGURING": JobStatus.RUNNING,
    "RUNNING": JobStatus.RUNNING,
    "COMPLETING": JobStatus.RUNNING,
    "SUSPENDED": JobStatus.RUNNING,
    "COMPLETED": JobStatus.SUCCEEDED,
    "FAILED": JobStatus.FAILED,
    "CANCELLED": JobStatus.FAILED,
    "TIMEOUT": JobStatus.FAILED,
    "NODE_FAIL": JobStatus.FAILED,
    "OUT_OF_MEMORY": JobStatus.FAILED,
    "PREEMPTED": JobStatus.FAILED,
    "BOOT_FAIL": JobStatus.FAILED,
    "DEADLINE": JobStatus.FAILED,
}
TERMINAL = frozenset(
    s for s, ours in STATES.items() if ours in (JobStatus.SUCCEEDED, JobStatus.FAILED)
)
FLAGS_ANNOTATIONS = ("slurm-job.vk.io/flags", "job.vk.io/flags")


class SlurmCommandError(RuntimeError):
    """A Slurm command failed."""


class LocalTransport:
    """Runs Slurm commands on this machine (`SLURM_CONF` from the settings when given)."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env = {**os.environ, **(env or {})}

    def run(self, args: list[str]) -> str:
        """Run a command; return stdout or raise `SlurmCommandError` with its output."""
        result = subprocess.run(
            args, env=self.env, capture_output=True, text=True, check=False, timeout=60
        )
        if result.returncode != 0:
            raise SlurmCommandError(
                f"{' '.join(args)} exited with {result.returncode}: "
                f"{(result.stderr or result.stdout).strip()}"
            )
        return result.stdout


class SSHTransport(LocalTransport):
    """Runs Slurm commands on a login node: `ssh <host> <command>` (key-based login needed)."""

    def __init__(self, host: str, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env)
        self.host = host

    def run(self, args: list[str]) -> str:
        """Run the command on the login node, each argument quoted for its shell."""
        return super().run(["ssh", "-o", "BatchMode=yes", self.host, shlex.join(args)])


def slurm_flags(service: Service) -> list[str]:
    """Extra `#SBATCH` flags from the service's annotations (current and older names)."""
    flags: list[str] = []
    for key in FLAGS_ANNOTATIONS:
        if key in service.annotations:
            flags += shlex.split(service.annotations[key])
    return flags


class SlurmExecutor(Executor):
    """Submits jobs with `sbatch`, follows them with `scontrol`, cancels with `scancel`."""

    name = "slurm"

    def __init__(
        self,
        jobs_dir: Path,
        store: MinIOProvider,
        transport: LocalTransport,
        timeout: float,
        poll_interval: float = 0.5,
    ) -> None:
        # Job folders are prepared exactly as for local jobs (config, script, event, env).
        self._files = LocalExecutor(jobs_dir, store, timeout)
        self.transport = transport
        self.timeout = timeout
        self.poll_interval = poll_interval
        self._followed: dict[str, asyncio.Queue[dict[str, str]]] = {}
        self._poller: asyncio.Future[None] | None = None

    def _folder(self, job: Job) -> Path:
        return self._files.job_folder(job.name)

    def batch_script(self, job: Job, service: Service, folder: Path) -> str:
        """The batch script for a job (exposed for tests and docs)."""
        cpus = max(1, math.ceil(float(parse_quantity(service.cpu))))
        memory_mb = max(1, math.ceil(float(parse_quantity(service.memory)) / 2**20))
        directives = "\n".join(f"#SBATCH {flag}" for flag in slurm_flags(service))
        return TEMPLATE.read_text().format(
            job_name=job.name,
            folder=folder,
            cpus=cpus,
            memory_mb=memory_mb,
            extra_directives=directives,
            service=service.name,
            image=service.image,
            python=shlex.quote(sys.executable),
        )

    def submit(self, job: Job, service: Service) -> str:
        """Submit (once: a recorded Slurm id is reused after a restart); return the Slurm id."""
        folder = self._folder(job)
        recorded = folder / "slurm_id"
        if recorded.exists():
            return recorded.read_text().strip()
        env = self._files.prepare_job(folder, service, job.event.encode())
        # The job gets exactly this environment (sbatch --export=NONE): nothing of the control
        # plane's own environment (its password, for one) leaks into user jobs.
        keep = {**env, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        env_file = folder / "env"
        fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.writelines(f"{k}={shlex.quote(v)}\n" for k, v in keep.items())
        script = folder / "job.sh"
        script.write_text(self.batch_script(job, service, folder))
        output = self.transport.run(["sbatch", "--parsable", "--export=NONE", str(script)])
        slurm_id = output.strip().split(";")[0]
        if not slurm_id.isdigit():
            raise SlurmCommandError(f"sbatch answered {output!r}")
        recorded.write_text(slurm_id)
        return slurm_id

    def state(self, slurm_id: str) -> dict[str, str]:
        """`scontrol show job` fields of one job."""
        text = self.transport.run(["scontrol", "show", "job", "--oneliner", slurm_id])
        return dict(re.findall(r"(\w+)=(\S*)", text))

    def states(self, slurm_ids: list[str]) -> dict[str, str]:
        """Job states of many jobs in one `squeue` call; jobs Slurm no longer queues are absent."""
        if not slurm_ids:
            return {}
        text = self.transport.run(["squeue", "-h", "-j", ",".join(slurm_ids), "-o", "%i %T"])
        return dict(line.split(None, 1) for line in text.splitlines() if line.strip())

    async def _poll(self) -> None:
        """One poller for every job being followed: one `squeue` per interval, whatever the
        number of jobs; `scontrol` only for jobs that left the queue (their final state)."""
        while self._followed:
            ids = list(self._followed)
            try:
                queued = await asyncio.to_thread(self.states, ids)
            except SlurmCommandError:
                queued = {}  # e.g. every id already gone from the queue: ask one by one
            for slurm_id in ids:
                state = queued.get(slurm_id, "")
                fields = {"JobState": state}
                if not state or state in TERMINAL:
                    try:
                        fields = await asyncio.to_thread(self.state, slurm_id)
                    except SlurmCommandError as exc:
                        fields = {"JobState": "FAILED", "Reason": str(exc)}
                queue = self._followed.get(slurm_id)
                if queue is not None:
                    queue.put_nowait(fields)
            await asyncio.sleep(self.poll_interval)
        self._poller = None

    async def run(
        self, job: Job, service: Service, started: Callable[[], None] = lambda: None
    ) -> JobResult:
        """Submit and follow the job (through the shared poller) until Slurm says it ended."""
        slurm_id = await asyncio.to_thread(self.submit, job, service)
        updates: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        self._followed[slurm_id] = updates
        if self._poller is None:
            self._poller = asyncio.ensure_future(self._poll())
        try:
            return await asyncio.wait_for(
                self._follow(slurm_id, updates, started), self.timeout + 120
            )
        except TimeoutError:
            await asyncio.to_thread(self.transport.run, ["scancel", slurm_id])
            return JobResult(124, f"Slurm job {slurm_id} did not finish in time and was cancelled")
        finally:
            self._followed.pop(slurm_id, None)

    @staticmethod
    async def _follow(
        slurm_id: str, updates: asyncio.Queue[dict[str, str]], started: Callable[[], None]
    ) -> JobResult:
        running = False
        while True:
            fields = await updates.get()
            state = fields.get("JobState", "")
            if not running and STATES.get(state) in (
                JobStatus.RUNNING,
                JobStatus.SUCCEEDED,
                JobStatus.FAILED,
            ):
                running = True
                started()
            if state in TERMINAL:
                code = int(fields.get("ExitCode", "0:0").split(":")[0] or 0)
                if state == "COMPLETED":
                    return JobResult(0)
                reason = f"Slurm job {slurm_id} ended {state}"
                if code:
                    reason += f" with exit code {code}"
                return JobResult(code or 1, reason)

    async def run_sync(
        self, service: Service, body: bytes, timeout: float
    ) -> tuple[int, bytes, str]:
        """Synchronous calls are not offloaded to HPC: they run on the cloud executor."""
        raise NotImplementedError("synchronous calls run on the cloud executor")

    def logs(self, job: Job) -> str:
        """The Slurm output file of the job."""
        return self._files.logs(job)

    def delete(self, job: Job) -> None:
        """Cancel the Slurm job if it is still there, then remove the job folder."""
        recorded = self._folder(job) / "slurm_id"
        if recorded.exists():
            with contextlib.suppress(SlurmCommandError):  # already gone
                self.transport.run(["scancel", recorded.read_text().strip()])
        shutil.rmtree(self._folder(job), ignore_errors=True)
