"""Job records: one run of the supervisor for one event."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class JobStatus(StrEnum):
    """Upstream's job states."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED})


def new_job_name(service: str, dedup: str | None = None) -> str:
    """`<name>-<uuid>` as upstream (the name cut to 16 characters when 25 or longer).

    The UUID is random, or, for an event with a `dedup` identity, derived from it (version 5):
    a redelivered event then names the same job, which a store can refuse by name alone (the
    Kubernetes Jobs of `OSCAR_JOB_STORE=kubernetes`).
    """
    prefix = service[:16] if len(service) >= 25 else service
    if dedup is None:
        return f"{prefix}-{uuid.uuid4()}"
    return f"{prefix}-{uuid.uuid5(uuid.NAMESPACE_URL, f'oscar-event:{service}:{dedup}')}"


def utcnow() -> datetime:
    """The current time, UTC, millisecond precision."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class Job(BaseModel):
    """A durable job record.

    `backend_id` is the backend's handle once it accepted the work (a pid, a Kubernetes Job
    name, a Slurm id); a Pending job without one is still queued in the dispatcher.
    `waiting_reason` says why submitted work has not started (Slurm's `Reason`, a pod's
    scheduling message). `owner` is the OIDC subject of the user whose call or upload made
    the job ("" for the admin, a service token or an anonymous event).
    """

    name: str
    service: str
    status: JobStatus = JobStatus.PENDING
    event: str = ""
    backend: str = "local"
    created: datetime = Field(default_factory=utcnow)
    queued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    reason: str = ""
    attempts: int = 0
    backend_id: str | None = None
    waiting_reason: str = ""
    owner: str = ""

    @property
    def terminal(self) -> bool:
        """Whether the job has ended (Succeeded or Failed)."""
        return self.status in TERMINAL
