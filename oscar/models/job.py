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


def new_job_name(service: str) -> str:
    """`<name>-<uuid4>` as upstream (the name cut to 16 characters when 25 or longer)."""
    prefix = service[:16] if len(service) >= 25 else service
    return f"{prefix}-{uuid.uuid4()}"


def utcnow() -> datetime:
    """The current time, UTC, millisecond precision."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class Job(BaseModel):
    """A durable job record."""

    name: str
    service: str
    status: JobStatus = JobStatus.PENDING
    event: str = ""
    backend: str = "local"
    created: datetime = Field(default_factory=utcnow)
    started: datetime | None = None
    finished: datetime | None = None
    exit_code: int | None = None
    reason: str = ""
    attempts: int = 0
