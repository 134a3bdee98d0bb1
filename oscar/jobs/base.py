"""The job-record interface the dispatcher, the API and the event sources use.

Two implementations: `oscar.jobs.store.JobStore` (SQLite in the data directory, the embedded
default) and `oscar.jobs.kube_store.KubernetesJobStore` (the records are the Kubernetes Jobs
themselves, so the control plane keeps no state). Every state change is guarded by the state
it expects: a change that lost a race (the job was deleted or already ended) does nothing and
returns False. Listings never load event bodies (their jobs have `event == ""`); `get` and
`events_of` do.
"""

from __future__ import annotations

import abc
from datetime import datetime

from oscar.models.job import Job, JobStatus


class JobRecords(abc.ABC):
    """Durable job records; safe to use from several threads."""

    @abc.abstractmethod
    def add(self, job: Job, dedup: str | None = None) -> bool:
        """Persist a new job (usually Pending; an event refused outright is recorded Failed,
        with its times); False when `dedup` was already recorded (a redelivered event)."""

    @abc.abstractmethod
    def get(self, name: str) -> Job | None:
        """One job with its event, or None."""

    @abc.abstractmethod
    def summaries(self, service: str, status: JobStatus | None = None) -> list[Job]:
        """A service's jobs, oldest first, without their event bodies."""

    def list(self, service: str, status: JobStatus | None = None) -> list[Job]:
        """A service's jobs with their events, oldest first."""
        jobs = self.summaries(service, status)
        bodies = self.events_of([job.name for job in jobs])
        return [job.model_copy(update={"event": bodies.get(job.name, "")}) for job in jobs]

    @abc.abstractmethod
    def count(self, service: str, *statuses: JobStatus) -> int:
        """How many of a service's jobs are in one of `statuses` (all when none is given)."""

    @abc.abstractmethod
    def counts(self) -> dict[str, dict[str, int]]:
        """Jobs per service and status, `{service: {status: n}}`."""

    def count_active(self, service: str) -> int:
        """How many of a service's jobs have not ended (Pending or Running)."""
        return self.count(service, JobStatus.PENDING, JobStatus.RUNNING)

    @abc.abstractmethod
    def with_status(self, *statuses: JobStatus) -> list[Job]:
        """Every job in one of `statuses`, oldest first, without event bodies."""

    @abc.abstractmethod
    def queued(
        self, backend: str, limit: int | None = None, before: datetime | None = None
    ) -> list[Job]:
        """Pending jobs of `backend` not yet handed to it, oldest first (at most `limit`; only
        those queued before `before` when given), without event bodies."""

    @abc.abstractmethod
    def events_of(self, names: list[str]) -> dict[str, str]:
        """The event bodies of the named jobs (those still recorded)."""

    @abc.abstractmethod
    def in_flight(self, backend: str) -> list[Job]:
        """Jobs `backend` accepted that have not ended, without event bodies."""

    @abc.abstractmethod
    def set_submitted(self, name: str, backend_id: str) -> bool:
        """Record the backend's handle of a queued job; False if the job is gone meanwhile."""

    @abc.abstractmethod
    def set_waiting(self, name: str, reason: str) -> bool:
        """Why submitted work has not started yet."""

    @abc.abstractmethod
    def mark_running(self, name: str) -> bool:
        """Pending → Running (counts an attempt; the run timeout starts now)."""

    @abc.abstractmethod
    def requeue(self, name: str, reason: str) -> bool:
        """Back to Pending and not submitted (a job stopped by a restart is run again)."""

    @abc.abstractmethod
    def finish(self, name: str, status: JobStatus, exit_code: int | None, reason: str) -> bool:
        """Record the end of a job that had not ended yet (with a start time if it had none)."""

    @abc.abstractmethod
    def delete(self, name: str) -> Job | None:
        """Forget a job record; return it as it was (None if there was none)."""

    def close(self) -> None:  # noqa: B027 - most stores hold nothing to close
        """Release what the store holds."""
