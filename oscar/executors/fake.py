"""A fake executor for unit tests of the dispatcher and the layers above it.

Named as such: it runs nothing. Tests drive it by hand (`start`, `finish`), inject errors
(`fail_submit`, `fail_poll`) and inspect what the dispatcher asked for (`submitted`,
`cancelled`). Never a substitute for the contract tests of the real backends.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Collection

from oscar.executors.base import Executor, Observation
from oscar.models.job import Job, JobStatus
from oscar.models.service import Service


class FakeExecutor(Executor):
    """Keeps jobs in a dict; their state changes only when a test says so."""

    def __init__(self, name: str = "fake", poll_interval: float = 0.02) -> None:
        super().__init__()
        self.name = name
        self.poll_interval = poll_interval
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.states: dict[str, Observation] = {}
        self.jobs: dict[str, str] = {}  # handle → job name
        self.submitted: list[str] = []  # job names, in submission order
        self.batches: list[list[str]] = []  # job names of each `submit_batch`
        self.cancelled: list[str] = []  # handles
        self.cleaned: list[str] = []  # job names
        self.fail_submit: Exception | None = None
        self.fail_poll: Exception | None = None
        self.keep_on_restart = True

    def submit(self, job: Job, service: Service) -> str:
        """Accept the job as Pending (or raise `fail_submit`)."""
        if self.fail_submit is not None:
            raise self.fail_submit
        with self._lock:
            handle = f"fake-{next(self._ids)}"
            self.states[handle] = Observation(JobStatus.PENDING, reason="queued in the fake")
            self.jobs[handle] = job.name
            self.submitted.append(job.name)
        return handle

    def submit_batch(self, jobs: list[Job], service: Service) -> list[str]:
        """Accept several jobs at once (recorded in `batches`), all or none."""
        if self.fail_submit is not None:
            raise self.fail_submit
        with self._lock:
            self.batches.append([job.name for job in jobs])
        return [self.submit(job, service) for job in jobs]

    def poll(self, handles: Collection[str]) -> dict[str, Observation]:
        """The states the test set (or raise `fail_poll`)."""
        if self.fail_poll is not None:
            raise self.fail_poll
        with self._lock:
            return {
                h: self.states.get(h, Observation(JobStatus.FAILED, reason="unknown to the fake"))
                for h in handles
            }

    def cancel(self, handle: str) -> None:
        """Record the cancellation; the job ends Failed."""
        with self._lock:
            self.cancelled.append(handle)
            self.states[handle] = Observation(JobStatus.FAILED, 137, "cancelled")

    def logs(self, job: Job, tail: int | None = None) -> str:
        """A fixed line naming the job."""
        return f"fake log of {job.name}\n"

    def cleanup(self, job: Job) -> None:
        """Record the clean-up."""
        self.cleaned.append(job.name)

    def recover(self, jobs: Collection[Job]) -> set[str]:
        """Re-attach every job (or none when `keep_on_restart` is False)."""
        return {job.name for job in jobs} if self.keep_on_restart else set()

    # --- test controls -------------------------------------------------------------------
    def handle_of(self, job_name: str) -> str:
        """The handle the job was submitted under."""
        with self._lock:
            return next(h for h, name in self.jobs.items() if name == job_name)

    def set_state(self, job_name: str, observation: Observation) -> None:
        """Change a job's state as the backend would, and wake the dispatcher."""
        with self._lock:
            handle = next(h for h, name in self.jobs.items() if name == job_name)
            self.states[handle] = observation
        self.notify()

    def start(self, job_name: str) -> None:
        """The job starts running."""
        self.set_state(job_name, Observation(JobStatus.RUNNING))

    def finish(self, job_name: str, exit_code: int = 0, reason: str = "") -> None:
        """The job ends with `exit_code`."""
        status = JobStatus.SUCCEEDED if exit_code == 0 else JobStatus.FAILED
        self.set_state(job_name, Observation(status, exit_code, reason))
