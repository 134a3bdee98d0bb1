"""`accept_event`: where every event source ends — the job record is on disk when it returns.

The MinIO webhook, the embedded store's uploads and every bridge (`oscar.bridges`) call it, and
only acknowledge their event (answer MinIO, delete the SQS message, commit the Kafka offset,
move a cursor) after it returned. A redelivered event carries the same `dedup` identity and is
recognised, so at-least-once delivery from a source gives exactly one job.
"""

from __future__ import annotations

import logging

from oscar.errors import ForbiddenError
from oscar.events.scope import check_event_scope
from oscar.jobs.dispatcher import Dispatcher
from oscar.models.job import Job, JobStatus, new_job_name, utcnow
from oscar.models.service import Service

log = logging.getLogger("oscar.events")


def accept_event(
    dispatcher: Dispatcher,
    service: Service,
    event: str,
    dedup: str | None,
    *,
    routed: bool = True,
    owner: str = "",
) -> Job | None:
    """Record a job of `service` for `event` (blocking: fsynced); None when `dedup` shows it
    was recorded before. `owner` is the OIDC subject whose upload raised the event, if known.

    `routed` events were matched to one of the service's inputs by their source. Others (a raw
    message from a queue) are checked like a `/job` body: one naming an object outside the
    service's inputs is recorded as a Failed job saying why, never run.
    """
    if not routed:
        try:
            check_event_scope(service, event.encode())
        except ForbiddenError as exc:
            return record_failed(dispatcher, service.name, event, str(exc), dedup)
    return dispatcher.submit(service.name, event, dedup=dedup, owner=owner)


def record_failed(
    dispatcher: Dispatcher, service: str, event: str, reason: str, dedup: str | None
) -> Job | None:
    """Record an event that cannot be processed as a Failed job with `reason` (kept, with its
    body, for the user to see); None when `dedup` shows it was recorded before."""
    now = utcnow()
    job = Job(
        name=new_job_name(service, dedup),
        service=service,
        event=event,
        backend=dispatcher.cloud.name,
        status=JobStatus.FAILED,
        created=now,
        started_at=now,
        finished_at=now,
        reason=reason,
    )
    if not dispatcher.store.add(job, dedup):
        return None
    log.warning("event refused", extra={"service": service, "job": job.name, "reason": reason})
    return job
