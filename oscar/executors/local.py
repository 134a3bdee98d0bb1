"""The local executor of the embedded default: the supervisor as a child process per job.

There is no container runtime here, so the service's script runs natively on the host; the image
is recorded in the job log, not pulled. Each job gets a private folder with its configuration,
script, event, log and response, and its processes form one group (`proctree`): cancelling a
job, its end, and a restart of the control plane kill everything the job started. The group is
held to the service's `memory` and `cpu` where the host has the controllers (`proctree.Limits`);
a job the kernel killed for outgrowing its memory fails with a reason that says so.

Local work cannot outlive the control plane: on shutdown it is stopped and re-run on the next
start, and after a crash the next start reaps whatever the previous run left before re-running.
"""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from oscar.executors.base import Executor, Observation, SyncResult, SyncRunner
from oscar.executors.jobdir import job_folder, prepare_job, read_tail
from oscar.executors.pool import PooledProcess, SupervisorPool
from oscar.executors.proctree import JobProcesses, Limits
from oscar.models.job import Job, JobStatus
from oscar.models.quantity import parse_quantity
from oscar.models.service import Service
from oscar.models.storage import MinIOProvider

# Supervisor statuses (supervisor/__main__.py) → what the job record says.
_REASONS = {
    124: "the script exceeded the timeout",
    2: "bad configuration or event (see the log)",
    3: "the input could not be staged in (see the log)",
    4: "an output could not be staged out (see the log)",
}
# How long past its own timeout a synchronous run's supervisor may take before it is killed.
SYNC_GRACE = 5.0


def outcome(code: int) -> Observation:
    """How a supervisor's exit status reads in the job record."""
    if code == 0:
        return Observation(JobStatus.SUCCEEDED, 0)
    if code < 0:
        reason = f"the supervisor was killed by signal {-code}"
        return Observation(JobStatus.FAILED, 128 - code, reason)
    reason = _REASONS.get(code, f"the script exited with code {code}")
    return Observation(JobStatus.FAILED, code, reason)


def limits(service: Service) -> Limits:
    """The service's `memory` (bytes) and `cpu` (cores) as limits of its local jobs."""
    return Limits(
        memory=math.ceil(parse_quantity(service.memory)), cpu=float(parse_quantity(service.cpu))
    )


def memory_exceeded(service_memory: str) -> str:
    """The reason of a job the kernel killed for exceeding its memory limit."""
    return (
        f"the job exceeded its memory limit ({service_memory}): the kernel killed it "
        "(out of memory)"
    )


# A job's supervisor: a child of ours, or a child the warm pool forked.
Process = subprocess.Popen[bytes] | PooledProcess


@dataclass
class _Running:
    job: str
    process: Process
    folder: Path
    memory: str = ""


class LocalExecutor(Executor, SyncRunner):
    """Runs the supervisor as a process of its own for each job (handle: its pid): forked by
    the warm pool (`oscar.executors.pool`) or, with `warm=False`, `python -m supervisor`."""

    name = "local"
    backend = "local"
    poll_interval = 1.0  # exits wake the dispatcher at once; the poll is only a backstop
    default_concurrency = max(1, 2 * (os.cpu_count() or 1))

    def __init__(
        self,
        jobs_dir: Path,
        store: MinIOProvider,
        timeout: float,
        processes: JobProcesses | None = None,
        *,
        warm: bool = True,
        pool_size: int | None = None,
    ) -> None:
        super().__init__()
        self.jobs_dir = jobs_dir
        self.jobs_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.store = store
        self.timeout = timeout
        self.processes = processes or JobProcesses(uuid.uuid4().hex[:12])
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()
        self._pool_name = f"pool-{uuid.uuid4().hex[:12]}"
        self.pool = (
            SupervisorPool(
                pool_size or 2 * self.default_concurrency,
                mark=self.processes.mark(self._pool_name),
                on_exit=lambda: self.notify(),
            )
            if warm
            else None
        )

    def job_folder(self, job_name: str) -> Path:
        """The private folder of a job (refusing names that would leave the jobs folder)."""
        return job_folder(self.jobs_dir, job_name)

    @staticmethod
    def _header(service: Service) -> str:
        now = datetime.now(UTC).isoformat(timespec="seconds")
        return (
            f"{now} - oscar - INFO - embedded default: no container runtime, the script runs "
            f"natively on this host (image {service.image} recorded, not pulled)\n"
        )

    def _spawn(self, name: str, folder: Path, service: Service, env: dict[str, str]) -> Process:
        arguments = ["--workdir", str(folder / "work")]
        with (
            (folder / "log").open("ab") as log,
            (folder / "event").open("rb") as stdin,
            (folder / "response").open("wb") as out,
        ):
            log.write(self._header(service).encode())
            log.flush()
            if self.pool is not None:
                join = self.processes.groups(name, env, limits(service))
                return self.pool.spawn(arguments, env, folder, (stdin, out, log), join)
            argv = [sys.executable, "-m", "supervisor", *arguments]
            command = self.processes.command(name, argv, env, limits(service))
            return subprocess.Popen(
                command,
                stdin=stdin,
                stdout=out,
                stderr=log,
                env=env,
                cwd=folder,
                start_new_session=True,
            )

    # --- the lifecycle contract ----------------------------------------------------------
    def submit(self, job: Job, service: Service) -> str:
        """Start the supervisor for the job's event; return its pid."""
        folder = self.job_folder(job.name)
        env = prepare_job(folder, service, job.event.encode(), self.store, self.timeout)
        process = self._spawn(job.name, folder, service, env)
        handle = str(process.pid)
        with self._lock:
            self._running[handle] = _Running(job.name, process, folder, service.memory)
        if isinstance(process, subprocess.Popen):  # the pool tells of its children's ends
            threading.Thread(target=self._watch, args=(process,), daemon=True).start()
        return handle

    def _watch(self, process: subprocess.Popen[bytes]) -> None:
        process.wait()
        self.notify()

    def poll(self, handles: Collection[str]) -> dict[str, Observation]:
        """One sweep of this server's children; ended jobs' leftovers are killed."""
        states = {}
        for handle in handles:
            with self._lock:
                running = self._running.get(handle)
            if running is None:
                states[handle] = Observation(
                    JobStatus.FAILED, None, "the supervisor process is gone"
                )
                continue
            code = running.process.poll()
            if code is None:
                states[handle] = Observation(JobStatus.RUNNING)
                continue
            observed = outcome(code)
            if code != 0 and self.processes.oom_killed(running.job):  # before its groups go
                observed = Observation(
                    JobStatus.FAILED, observed.exit_code, memory_exceeded(running.memory)
                )
            self._release(handle)
            states[handle] = observed
        return states

    def _release(self, handle: str) -> None:
        """Kill what the job left behind and drop its scratch space (its log stays)."""
        with self._lock:
            running = self._running.pop(handle, None)
        if running is None:
            return
        # The supervisor first: forked by the pool, it carries the pool's marker, not the job's.
        running.process.kill()
        self.processes.kill(running.job)
        running.process.wait()
        shutil.rmtree(running.folder / "work", ignore_errors=True)

    def cancel(self, handle: str) -> None:
        """Kill every process of the job."""
        self._release(handle)

    def logs(self, job: Job, tail: int | None = None) -> str:
        """The job's log file."""
        return read_tail(self.job_folder(job.name) / "log", tail)

    def cleanup(self, job: Job) -> None:
        """Remove the job's folder (its processes are gone by now)."""
        if job.backend_id:
            self._release(job.backend_id)
        self.processes.kill(job.name)
        shutil.rmtree(self.job_folder(job.name), ignore_errors=True)

    def recover(self, jobs: Collection[Job]) -> set[str]:
        """Nothing local survives a restart: reap every leftover of a previous run (each job
        is then re-run from its record)."""
        for name in self.processes.leftovers() - {self._pool_name}:
            self.processes.kill(name)
        return set()

    def shutdown(self, jobs: Collection[Job]) -> set[str]:
        """Stop every running job (they are re-run on the next start)."""
        with self._lock:
            handles = list(self._running)
        for handle in handles:
            self._release(handle)
        return {job.name for job in jobs}

    def close(self) -> None:
        """Stop the warm pool (its zygote and any child it still has)."""
        if self.pool is not None:
            self.pool.close()

    # --- synchronous runs ----------------------------------------------------------------
    async def run_sync(self, service: Service, body: bytes, timeout: float) -> SyncResult:
        """Run the supervisor for a `/run` call; nothing is kept afterwards. Cancelling the
        call (the client went away) kills the run."""
        name = f"run-{service.name}-{uuid.uuid4()}"
        folder = self.job_folder(name)
        process: Process | None = None
        try:
            env = await asyncio.to_thread(prepare_job, folder, service, body, self.store, timeout)
            process = await asyncio.to_thread(self._spawn, name, folder, service, env)
            try:
                code = await asyncio.to_thread(process.wait, timeout + SYNC_GRACE)
            except subprocess.TimeoutExpired:
                process.kill()
                code = 124
            response = await asyncio.to_thread((folder / "response").read_bytes)
            log = await asyncio.to_thread(read_tail, folder / "log", 200)
            if code != 0 and await asyncio.to_thread(self.processes.oom_killed, name):
                log += f"oscar - ERROR - {memory_exceeded(service.memory)}\n"
            return SyncResult(code, response, log)
        finally:
            # Also on cancellation: the run and whatever it started end here.
            await asyncio.shield(asyncio.to_thread(self._discard, name, folder, process))

    def _discard(self, name: str, folder: Path, process: Process | None = None) -> None:
        if process is not None:
            process.kill()
        self.processes.kill(name)
        shutil.rmtree(folder, ignore_errors=True)
