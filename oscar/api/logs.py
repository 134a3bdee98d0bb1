"""Job status and logs: `/system/logs/{name}[/{job}]`, paginated as upstream, and the execution
log of `/job` and `/run` calls, `GET /system/logs`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response, status
from fastapi.responses import PlainTextResponse

from oscar.api.deps import AdminPrincipal, State, UserPrincipal
from oscar.auth.access import may_see_all_jobs, may_see_job, require_service_visible
from oscar.auth.principal import Principal
from oscar.models.job import Job, JobStatus

router = APIRouter(prefix="/system/logs", tags=["logs"])
PAGE_SIZE = 70  # upstream's page size


def _stamp(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def _summary(job: Job) -> dict[str, Any]:
    # Upstream's three times, then ours: when the job (last) entered the queue, the backend's
    # handle (pid, Kubernetes Job, Slurm id) and why submitted work has not started yet.
    return {
        "status": job.status.value,
        "creation_time": _stamp(job.created),
        "start_time": _stamp(job.started_at),
        "finish_time": _stamp(job.finished_at),
        "queued_time": _stamp(job.queued_at),
        "backend": job.backend,
        "backend_id": job.backend_id,
        "waiting_reason": job.waiting_reason,
        "exit_code": job.exit_code,
        "reason": job.reason,
    }


@router.get("", summary="The execution log of /job and /run calls")
def execution_logs(
    state: State,
    _: AdminPrincipal,
    timestamps: Annotated[str | None, Query(description="accepted and ignored")] = None,
    previous: Annotated[str | None, Query(description="accepted and ignored")] = None,
) -> dict[str, list[dict[str, Any]]]:
    """Upstream's `{"logs": [{timestamp, status, latency, client_ip, method, path, user, raw}]}`:
    the last `/job` and `/run` calls (OSCAR_EXECUTION_LOG_SIZE of them), oldest first, kept in
    memory since the server started. Upstream reads them from its manager pod's log, whose
    `timestamps` and `previous` options change nothing here."""
    return {"logs": state.executions.entries()}


@router.get("/{name}", summary="List a service's jobs")
def list_jobs(
    name: str,
    state: State,
    principal: UserPrincipal,
    page: Annotated[str, Query(description="the `next_page` of the previous answer")] = "",
    status_filter: Annotated[JobStatus | None, Query(alias="status")] = None,
) -> dict[str, Any]:
    """Jobs with status and times, newest last, 70 per page: all of them for the service's
    owner, only their own for users it is shared with."""
    jobs = _visible_jobs(state, principal, name, status_filter)
    start = 0
    if page:
        names = [job.name for job in jobs]
        if page not in names:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, f"unknown page token {page!r}")
        start = names.index(page)
    chunk = jobs[start : start + PAGE_SIZE]
    rest = jobs[start + PAGE_SIZE :]
    return {
        "jobs": {job.name: _summary(job) for job in chunk},
        "next_page": rest[0].name if rest else "",
        "remaining_jobs": len(rest),
    }


def _visible_jobs(
    state: State, principal: Principal, name: str, status_filter: JobStatus | None
) -> list[Job]:
    service = state.registry.get(name)  # 404 for an unknown service
    require_service_visible(principal, service)
    jobs = state.job_store.summaries(name, status_filter)
    if may_see_all_jobs(principal, service):
        return jobs
    return [job for job in jobs if may_see_job(principal, service, job)]


def _job_of(state: State, principal: Principal, name: str, job_name: str) -> Job:
    service = state.registry.get(name)
    require_service_visible(principal, service)
    job = state.job_store.get(job_name)
    # Another user's job is "not found": its name says nothing to who may not see it.
    if job is None or job.service != name or not may_see_job(principal, service, job):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"job '{job_name}' not found")
    return job


@router.get("/{name}/{job_name}", response_class=PlainTextResponse, summary="A job's log")
def job_logs(
    name: str,
    job_name: str,
    state: State,
    principal: UserPrincipal,
    timestamps: bool = False,
    tail: Annotated[int | None, Query(ge=0, description="only the last N lines")] = None,
) -> str:
    """The job's log text; with `timestamps=false` the leading timestamps are dropped."""
    job = _job_of(state, principal, name, job_name)
    text = state.dispatcher.logs(job, tail)
    if timestamps:
        return text
    lines = []
    for line in text.splitlines(keepends=True):
        head, sep, rest = line.partition(" - ")
        # Log lines start "<time> - <who> - <LEVEL> - "; strip only a leading timestamp.
        lines.append(rest if sep and head[:4].isdigit() else line)
    return "".join(lines)


@router.delete(
    "/{name}/{job_name}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete one job",
)
def delete_job(name: str, job_name: str, state: State, principal: UserPrincipal) -> Response:
    """Stop the job if running and forget it."""
    job = _job_of(state, principal, name, job_name)
    state.dispatcher.delete(job)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete succeeded jobs (all with ?all=true)",
)
def delete_jobs(name: str, state: State, principal: UserPrincipal, all: bool = False) -> Response:
    """Without `all`, only succeeded jobs are deleted, as upstream; users a service is shared
    with delete only their own."""
    for job in _visible_jobs(state, principal, name, None if all else JobStatus.SUCCEEDED):
        state.dispatcher.delete(job)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
