"""Usage metrics from the job records: `GET /system/metrics` in upstream's summary shape
(`pkg/types/metrics.go`, plus a per-service breakdown) and a Prometheus `/metrics`.

Upstream aggregates Prometheus and Loki; here the job records are the source, so what they do
not hold is reported as such in `sources` (synchronous calls are not recorded, there are no
per-user or per-country request logs) rather than invented.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse

from oscar.api.deps import AdminPrincipal, State
from oscar.api.state import AppState
from oscar.errors import BadRequestError
from oscar.models.job import Job, JobStatus, utcnow
from oscar.models.quantity import parse_quantity

router = APIRouter(tags=["metrics"])
DEFAULT_WINDOW = timedelta(hours=24)
_SOURCES = [
    {"name": "job-records", "status": "ok", "notes": "asynchronous jobs of every backend"},
    {"name": "sync-requests", "status": "unavailable", "notes": "/run calls are not recorded"},
    {"name": "users", "status": "unavailable", "notes": "no per-user or per-country logs"},
]


def _time(value: str | None, what: str, default: datetime) -> datetime:
    if not value:
        return default
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequestError(f"{what} must be an RFC 3339 timestamp, not {value!r}") from None
    if parsed.tzinfo is None:
        raise BadRequestError(f"{what} must carry a time zone (e.g. 2026-12-01T00:00:00Z)")
    return parsed


def _jobs(state: AppState) -> Iterator[tuple[str, float, Job]]:
    """(service, its cpu in cores, job) for every job of every registered service, from one
    query (without event bodies)."""
    cores = {s.name: float(parse_quantity(s.cpu)) for s in state.registry.list()}
    for job in state.job_store.with_status(*JobStatus):
        if job.service in cores:
            yield job.service, cores[job.service], job


def _duration(job: Job) -> float | None:
    if job.started_at is None or job.finished_at is None:
        return None
    return max(0.0, (job.finished_at - job.started_at).total_seconds())


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def summary(state: AppState, start: datetime, end: datetime) -> dict[str, Any]:
    """Totals and per-service figures of the jobs created in [start, end)."""
    per_service: dict[str, dict[str, Any]] = {}
    cpu_seconds = 0.0
    for name, cores, job in _jobs(state):
        entry = per_service.setdefault(
            name, {"service_name": name, "jobs": {s.value: 0 for s in JobStatus}, "d": []}
        )
        if not start <= job.created < end:
            continue
        entry["jobs"][job.status.value] += 1
        if (seconds := _duration(job)) is not None:
            entry["d"].append(seconds)
            cpu_seconds += seconds * cores
    services = []
    for entry in per_service.values():
        durations = entry.pop("d")
        entry["duration_seconds"] = {
            "count": len(durations),
            "median": statistics.median(durations) if durations else 0.0,
            "p95": _p95(durations) if durations else 0.0,
        }
        services.append(entry)
    requests = sum(sum(e["jobs"].values()) for e in services)
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "totals": {
            "services_count_active": sum(1 for e in services if sum(e["jobs"].values())),
            "services_count_total": len(services),
            "cpu_hours_total": cpu_seconds / 3600,
            "gpu_hours_total": 0.0,
            "requests_count_total": requests,
            "requests_count_sync": 0,
            "requests_count_async": requests,
            "requests_count_exposed": 0,
            "countries_count": 0,
            "countries": [],
            "users_count": 0,
            "users": [],
        },
        "services": services,
        "sources": _SOURCES,
    }


@router.get("/system/metrics", summary="Jobs, their durations and cpu-hours over a time range")
def metrics_summary(
    state: State,
    _: AdminPrincipal,
    start: str | None = Query(None, description="RFC 3339; default end - 24 h"),
    end: str | None = Query(None, description="RFC 3339; default now"),
) -> dict[str, Any]:
    """Upstream's metrics summary (`totals`, `sources`) from the job records, plus `services`:
    jobs per status and run durations (median, p95) of each service."""
    until = _time(end, "end", utcnow())
    since = _time(start, "start", until - DEFAULT_WINDOW)
    if since >= until:
        raise BadRequestError("start must be before end")
    return summary(state, since, until)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
def prometheus(state: State, _: AdminPrincipal) -> PlainTextResponse:
    """Jobs per service and status, and run durations, in Prometheus' text format (scrape with
    the admin's Basic credentials)."""
    counts = state.job_store.counts()
    lines = [
        "# HELP oscar_services Services registered.",
        "# TYPE oscar_services gauge",
        f"oscar_services {len(state.registry.list())}",
        "# HELP oscar_jobs Job records by service and status.",
        "# TYPE oscar_jobs gauge",
    ]
    for service, by_status in sorted(counts.items()):
        for status, n in sorted(by_status.items()):
            lines.append(f'oscar_jobs{{service="{_label(service)}",status="{status}"}} {n}')
    lines += [
        "# HELP oscar_job_run_seconds Run time of ended jobs (start to end).",
        "# TYPE oscar_job_run_seconds summary",
    ]
    durations: dict[str, list[float]] = {}
    for name, _cores, job in _jobs(state):
        if (seconds := _duration(job)) is not None:
            durations.setdefault(name, []).append(seconds)
    for name, samples in sorted(durations.items()):
        label = f'service="{_label(name)}"'
        lines.append(f"oscar_job_run_seconds_sum{{{label}}} {sum(samples):.3f}")
        lines.append(f"oscar_job_run_seconds_count{{{label}}} {len(samples)}")
    return PlainTextResponse(
        "\n".join(lines) + "\n", media_type="text/plain; version=0.0.4; charset=utf-8"
    )
