"""The job lifecycle contract every backend implements, and the narrower one for `/run`.

An executor hands work to its backend and answers questions about it; it never waits for a job
to end, parses events or touches storage (the supervisor does those). The dispatcher owns the
loop that submits, polls, enforces timeouts and cancels (`oscar/jobs/dispatcher.py`).

Methods block (they run commands or call APIs); the dispatcher calls them in worker threads.
They raise `oscar.errors` types: `BackendUnavailableError` when the backend cannot be reached
(the dispatcher retries later), `ExecutorError` when a command or API call failed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from oscar.models.deployment import DeploymentLogEntry, DeploymentStatus, ResourceKind
from oscar.models.job import Job, JobStatus
from oscar.models.service import Service


@dataclass(frozen=True)
class Observation:
    """What the backend says about one job right now.

    `exit_code` and `reason` describe how a terminal job ended; for a job still waiting,
    `reason` says why it has not started (e.g. Slurm's `Reason=Resources`).
    """

    status: JobStatus
    exit_code: int | None = None
    reason: str = ""

    @property
    def terminal(self) -> bool:
        """Whether the job has ended."""
        return self.status in (JobStatus.SUCCEEDED, JobStatus.FAILED)


def _nothing() -> None:
    return None


class Executor(ABC):
    """Submits, polls, cancels and cleans up jobs on one backend.

    A handle is the backend's own id for the work (a pid, a Job name, a Slurm id); it is kept
    in the job record (`backend_id`) so that a restarted control plane can find the work again.
    """

    name: str = "executor"
    #: Seconds between two polls of the jobs in flight (the dispatcher may be woken earlier).
    poll_interval: float = 1.0
    #: Jobs in flight at once when the settings do not say otherwise.
    default_concurrency: int = 100
    #: The most jobs of one service the dispatcher hands over in one `submit_batch` call
    #: (1: one `submit` per job).
    batch_size: int = 1
    #: Seconds the dispatcher gathers a service's jobs into one batch once a burst is under
    #: way (a lone job is handed over at once).
    batch_window: float = 0.0

    def __init__(self) -> None:
        #: Set by the dispatcher: call it (from any thread) when a job changed state, so the
        #: reconcile loop polls now instead of at the next interval.
        self.notify: Callable[[], None] = _nothing

    @abstractmethod
    def submit(self, job: Job, service: Service) -> str:
        """Hand the job to the backend; return its handle once the backend accepted it.

        Never waits for the job to run or end. Submitting a job the backend already has (a
        restarted control plane) returns the existing handle instead of starting it again.
        """

    def submit_batch(self, jobs: list[Job], service: Service) -> list[str]:
        """Hand several jobs of one service to the backend at once; their handles, in order.

        Each job keeps its own handle, state, log and exit code. Backends with `batch_size > 1`
        (the only ones the dispatcher hands batches to) accept all or none: on an error none
        of the jobs runs, and each may be handed over again. By default one `submit` per job.
        """
        return [self.submit(job, service) for job in jobs]

    @abstractmethod
    def poll(self, handles: Collection[str]) -> dict[str, Observation]:
        """The state of many jobs in one call (one `squeue`, one list, one sweep).

        A handle the backend no longer knows is answered FAILED with a reason, never omitted.
        """

    @abstractmethod
    def cancel(self, handle: str) -> None:
        """Stop the work wherever it is (queued or running); a job already gone is fine."""

    @abstractmethod
    def logs(self, job: Job, tail: int | None = None) -> str:
        """The job's log text, the last `tail` lines when given ('' when there is none yet)."""

    @abstractmethod
    def cleanup(self, job: Job) -> None:
        """Forget what the backend keeps for the job (files, Kubernetes objects)."""

    def resources(self) -> dict[str, Any] | None:
        """What the backend offers beyond the cluster's own nodes, for `/system/status`
        (blocking; None, the default: nothing to add)."""
        return None

    def recover(self, jobs: Collection[Job]) -> set[str]:
        """After a restart, re-attach to or reap the work of `jobs` (records with a handle).

        Returns the names of the jobs whose work goes on and is followed again; every other one
        has been stopped and is run again. Nothing of a previous run is left running when a
        job is re-run. By default the backend keeps the work: every job is re-attached.
        """
        return {job.name for job in jobs}

    def close(self) -> None:
        """Release what the executor holds in this process (helpers it started); called once,
        after the dispatcher stopped. By default nothing."""
        return None

    def shutdown(self, jobs: Collection[Job]) -> set[str]:
        """The control plane is stopping: stop the work that cannot outlive it.

        Returns the names of the jobs stopped (recorded for a re-run on the next start). By
        default the backend keeps running them and the next start re-attaches.
        """
        return set()


@dataclass(frozen=True)
class SyncResult:
    """The outcome of a synchronous run: the supervisor's exit code, response and log."""

    exit_code: int
    output: bytes
    log: str = ""


class SyncRunner(ABC):
    """Runs the supervisor for one `/run` call and returns its answer (only backends that can)."""

    #: The executor whose concurrency limit synchronous runs share ('' = not shared).
    backend: str = ""
    #: What runs each call, reported as `resource_kind` by `/deployment` when there is no
    #: standing runtime (upstream's kinds name standing ones only).
    call_kind: ResourceKind = "local_process"

    @abstractmethod
    async def run_sync(self, service: Service, body: bytes, timeout: float) -> SyncResult:
        """Run the service on `body`; cancelling the call stops the run."""

    def runtime_status(self, service: Service) -> DeploymentStatus | None:
        """The state of a standing runtime serving the service (blocking), or None when every
        call starts its own (the default)."""
        return None

    def runtime_logs(
        self, service: Service, tail: int, timestamps: bool
    ) -> list[DeploymentLogEntry] | None:
        """The last `tail` lines of a standing runtime's log (blocking), or None when every
        call starts its own (the default: the calls' own logs are shown)."""
        return None
