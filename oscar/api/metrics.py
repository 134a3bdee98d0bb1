"""Usage metrics from the job records, in upstream's shapes (`pkg/types/metrics.go`):
`GET /system/metrics` (summary, plus a per-service breakdown of jobs), `/system/metrics/breakdown`
(by service, user or country; JSON or CSV), `/system/metrics/{service}` (one or every
per-service metric) and a Prometheus `/metrics`.

Upstream aggregates Prometheus and Loki; here the job records are the source, so what they do
not hold is reported as such in `sources` (synchronous calls, exposed services' requests, GPU
use, users and countries are not recorded) and counted 0 rather than invented.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from oscar.api.deps import AdminPrincipal, State, UserPrincipal
from oscar.api.state import AppState
from oscar.auth.access import require_service_owner
from oscar.errors import BadRequestError
from oscar.models.job import Job, JobStatus, utcnow
from oscar.models.quantity import parse_quantity

router = APIRouter(tags=["metrics"])
DEFAULT_WINDOW = timedelta(hours=24)
_SOURCES = [
    {"name": "job-records", "status": "ok", "notes": "asynchronous jobs of every backend"},
    {"name": "sync-requests", "status": "unavailable", "notes": "/run calls leave no record"},
    {"name": "users", "status": "unavailable", "notes": "no per-user or per-country logs"},
]
_JOB_RECORDS, _SYNC, _USERS = _SOURCES
_EXPOSED = {
    "name": "exposed-requests",
    "status": "unavailable",
    "notes": "requests to exposed services are not recorded",
}
_GPU = {"name": "gpu-usage", "status": "unavailable", "notes": "GPU use is not measured"}
# Per-service metrics, in upstream's order, with their unit and the source they come from.
SERVICE_METRICS: dict[str, tuple[str, dict[str, str]]] = {
    "cpu-hours": ("hours", _JOB_RECORDS),
    "gpu-hours": ("hours", _GPU),
    "requests-sync-per-service": ("", _SYNC),
    "requests-async-per-service": ("", _JOB_RECORDS),
    "requests-exposed-per-service": ("", _EXPOSED),
    "users-per-service": ("", _USERS),
}
# Upstream's other metric keys: valid names, but not values of one service (400, as upstream).
CLUSTER_METRICS = ("services-count", "requests-per-user", "countries-count", "countries-list")
GROUP_BY = ("service", "user", "country")
_CSV_HEADERS = {
    "service": [
        "key",
        "membership",
        "requests_count_total",
        "requests_count_sync",
        "requests_count_async",
        "requests_count_exposed",
        "unique_users_count",
        "countries",
    ],
    "user": ["key", "membership", "executions_count", "countries"],
    "country": ["key", "membership", "executions_count", "unique_users_count", "countries"],
}


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


def _range(start: str | None, end: str | None) -> tuple[datetime, datetime]:
    """`[start, end)` from the query, by default the 24 h before now; 400 naming the bad one."""
    until = _time(end, "end", utcnow())
    since = _time(start, "start", until - DEFAULT_WINDOW)
    if since >= until:
        raise BadRequestError("start must be before end")
    return since, until


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
            # Every registered service, with jobs or not (upstream counts those seen in its
            # request logs; a service nobody called is still one of the cluster's).
            "services_count_total": len(state.registry.list()),
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
    return summary(state, *_range(start, end))


@dataclass
class _Usage:
    """What the job records say about one service over a time range."""

    jobs: int = 0
    cpu_seconds: float = 0.0


def _usage(jobs: Iterable[tuple[float, Job]], start: datetime, end: datetime) -> _Usage:
    """Jobs created in [start, end) and their cpu-seconds (run time x the service's cores)."""
    usage = _Usage()
    for cores, job in jobs:
        if start <= job.created < end:
            usage.jobs += 1
            if (seconds := _duration(job)) is not None:
                usage.cpu_seconds += seconds * cores
    return usage


def _service_items(state: AppState, start: datetime, end: datetime) -> list[dict[str, Any]]:
    by_service: dict[str, list[tuple[float, Job]]] = {}
    for name, cores, job in _jobs(state):
        by_service.setdefault(name, []).append((cores, job))
    items = []
    for name in sorted(by_service):
        usage = _usage(by_service[name], start, end)
        if usage.jobs:  # as upstream: only services with requests in the range
            items.append(
                {
                    "key": name,
                    "requests_count_total": usage.jobs,
                    "requests_count_sync": 0,
                    "requests_count_async": usage.jobs,
                    "requests_count_exposed": 0,
                    "unique_users_count": 0,
                    "countries": [],
                }
            )
    return items


def _csv(group_by: str, items: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = _CSV_HEADERS[group_by]
    writer.writerow(header)
    for item in items:
        countries = "|".join(f"{c['country']}:{c['request_count']}" for c in item["countries"])
        row = {**item, "membership": item.get("membership", ""), "countries": countries}
        writer.writerow([row.get(column, 0) for column in header])
    return buffer.getvalue()


def _flag(value: str | None, what: str) -> bool:
    text = (value or "false").strip().lower()
    if text not in ("true", "false", "1", "0"):
        raise BadRequestError(f"{what} must be true or false, not {value!r}")
    return text in ("true", "1")


@router.get("/system/metrics/breakdown", summary="Requests grouped by service, user or country")
def metrics_breakdown(
    state: State,
    _: AdminPrincipal,
    group_by: str | None = Query(None, description="service, user or country"),
    include_users: str | None = Query(None, description="list each service's users (JSON)"),
    output: str = Query("json", alias="format", description="json or csv"),
    start: str | None = Query(None, description="RFC 3339; default end - 24 h"),
    end: str | None = Query(None, description="RFC 3339; default now"),
) -> Response:
    """Upstream's breakdown (`start`, `end`, `group_by`, `items`). By service, each item counts
    the jobs created in the range as asynchronous requests; synchronous and exposed requests,
    users and countries are not recorded here and count 0 (so by user or country there are no
    items)."""
    since, until = _range(start, end)
    if not group_by or not group_by.strip():
        raise BadRequestError("group_by is required: service, user or country")
    key = group_by.strip().lower()
    if key not in GROUP_BY:
        raise BadRequestError(f"group_by must be service, user or country, not {group_by!r}")
    kind = output.strip().lower()
    if kind not in ("json", "csv"):
        raise BadRequestError(f"format must be json or csv, not {output!r}")
    users = _flag(include_users, "include_users")
    if kind == "csv" and key == "service" and users:
        raise BadRequestError("include_users is not supported with format=csv")
    items = _service_items(state, since, until) if key == "service" else []
    if users:
        for item in items:
            item["users"] = []
    if kind == "csv":
        return Response(_csv(key, items), media_type="text/csv")
    body = {"start": since.isoformat(), "end": until.isoformat(), "group_by": key, "items": items}
    return JSONResponse(body)


def _metric_value(metric: str, usage: _Usage) -> dict[str, Any]:
    unit, source = SERVICE_METRICS[metric]
    value = 0.0
    if metric == "cpu-hours":
        value = usage.cpu_seconds / 3600
    elif metric == "requests-async-per-service":
        value = float(usage.jobs)
    entry: dict[str, Any] = {"metric": metric, "value": value}
    if unit:
        entry["unit"] = unit
    entry["sources"] = [source]
    return entry


@router.get("/system/metrics/{service_name}", summary="One or every metric of a service")
def service_metrics(
    service_name: str,
    state: State,
    principal: UserPrincipal,
    metric: str | None = Query(None, description="a metric key; all of them when omitted"),
    start: str | None = Query(None, description="RFC 3339; default end - 24 h"),
    end: str | None = Query(None, description="RFC 3339; default now"),
) -> dict[str, Any]:
    """Without `metric`, upstream's `{service_name, start, end, metrics: [...]}` with every
    per-service metric; with it, `{service_id, metric, start, end, value, unit, sources}`.
    cpu-hours and asynchronous requests come from the jobs created in the range; the others are
    not recorded here and are 0 (their `sources` say so). For the service's owner and admins."""
    service = state.registry.get(service_name)  # 404 for an unknown service
    require_service_owner(principal, service)
    since, until = _range(start, end)
    if metric is not None and metric not in SERVICE_METRICS:
        if metric in CLUSTER_METRICS:
            raise BadRequestError(f"metric {metric!r} is not a per-service metric")
        raise BadRequestError(f"metric must be one of {', '.join(SERVICE_METRICS)}, not {metric!r}")
    cores = float(parse_quantity(service.cpu))
    usage = _usage(((cores, j) for j in state.job_store.summaries(service.name)), since, until)
    if metric is None:
        return {
            "service_name": service.name,
            "start": since.isoformat(),
            "end": until.isoformat(),
            "metrics": [_metric_value(key, usage) for key in SERVICE_METRICS],
        }
    value = _metric_value(metric, usage)
    return {
        "service_id": service.name,
        "metric": metric,
        "start": since.isoformat(),
        "end": until.isoformat(),
        **{k: v for k, v in value.items() if k != "metric"},
    }


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
