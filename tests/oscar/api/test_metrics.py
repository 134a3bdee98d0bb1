"""`GET /system/metrics` (upstream's summary shape from the job records), its breakdown and
per-service routes, and Prometheus `/metrics`.

Before this they answered 404 (the dashboard's Metrics page and any Prometheus scrape).
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.fixtures.server import RunningServer
from tests.fixtures.services import minimal_service, unique_name


def _ended(api: httpx.Client, name: str, count: int) -> dict[str, dict[str, object]]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        jobs = api.get(f"/system/logs/{name}").json()["jobs"]
        if len(jobs) == count and all(
            j["status"] in ("Succeeded", "Failed") for j in jobs.values()
        ):
            return jobs
        time.sleep(0.1)
    raise AssertionError(f"the jobs of {name} did not end within 60 s")


@pytest.fixture
def worked(api: httpx.Client) -> Iterator[str]:
    """A service with two succeeded jobs and one failed."""
    name = unique_name("metrics")
    script = 'grep -q fail "$INPUT_FILE_PATH" && exit 3; echo ok\n'
    assert (
        api.post("/system/services", json=minimal_service(name, script=script)).status_code == 201
    )
    # JSON bodies reach the input file verbatim (others may be base64-decoded).
    for body in (b'{"x": "one"}', b'{"x": "two"}', b'{"x": "fail"}'):
        assert api.post(f"/job/{name}", content=body).status_code == 201
    _ended(api, name, 3)
    yield name
    api.delete(f"/system/services/{name}")


def test_the_summary_counts_jobs_and_durations_per_service(api: httpx.Client, worked: str) -> None:
    body = api.get("/system/metrics").json()
    (entry,) = [s for s in body["services"] if s["service_name"] == worked]
    assert entry["jobs"]["Succeeded"] == 2 and entry["jobs"]["Failed"] == 1
    assert entry["duration_seconds"]["count"] == 3
    assert 0 < entry["duration_seconds"]["median"] <= entry["duration_seconds"]["p95"] < 60
    totals = body["totals"]
    assert totals["requests_count_async"] >= 3
    assert totals["requests_count_total"] == totals["requests_count_async"]
    assert totals["services_count_active"] >= 1
    assert totals["services_count_total"] >= totals["services_count_active"]
    assert totals["cpu_hours_total"] > 0
    assert {s["name"] for s in body["sources"]} >= {"job-records", "sync-requests"}


def test_the_time_range_selects_jobs_by_creation(api: httpx.Client, worked: str) -> None:
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    body = api.get("/system/metrics", params={"start": future, "end": later}).json()
    (entry,) = [s for s in body["services"] if s["service_name"] == worked]
    assert sum(entry["jobs"].values()) == 0
    assert body["start"].startswith(future[:19])


@pytest.mark.parametrize(
    "params",
    [
        {"start": "yesterday"},
        {"end": "2026-12-01T00:00:00"},
        {"start": "2026-12-02T00:00:00Z", "end": "2026-12-01T00:00:00Z"},
    ],
)
def test_bad_time_ranges_are_a_400(api: httpx.Client, params: dict[str, str]) -> None:
    response = api.get("/system/metrics", params=params)
    assert response.status_code == 400, response.text


def test_prometheus_metrics_need_the_admin_and_count_jobs(
    server: RunningServer, api: httpx.Client, anon: httpx.Client, worked: str
) -> None:
    assert anon.get("/metrics").status_code == 401
    response = api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    assert f'oscar_jobs{{service="{worked}",status="Succeeded"}} 2' in text
    assert f'oscar_jobs{{service="{worked}",status="Failed"}} 1' in text
    assert f'oscar_job_run_seconds_count{{service="{worked}"}} 3' in text
    assert "# TYPE oscar_jobs gauge" in text


def _cpu_hours(api: httpx.Client, name: str) -> float:
    """What the jobs' own start and finish times say: run time x the service's cores."""
    cores = float(api.get(f"/system/services/{name}").json()["cpu"])
    seconds = 0.0
    for job in api.get(f"/system/logs/{name}").json()["jobs"].values():
        started = datetime.fromisoformat(job["start_time"].replace("Z", "+00:00"))
        finished = datetime.fromisoformat(job["finish_time"].replace("Z", "+00:00"))
        seconds += (finished - started).total_seconds()
    return seconds * cores / 3600


def test_services_count_total_counts_services_without_jobs(
    start_oscar: Callable[..., RunningServer],
) -> None:
    # Regression: only services with job records were counted, so an idle cluster showed 0.
    api = start_oscar().client()
    for name in (unique_name("idle"), unique_name("idle")):
        assert api.post("/system/services", json=minimal_service(name)).status_code == 201
    totals = api.get("/system/metrics").json()["totals"]
    assert totals["services_count_total"] == 2
    assert totals["services_count_active"] == 0


def test_the_breakdown_by_service_counts_each_services_jobs(api: httpx.Client, worked: str) -> None:
    response = api.get("/system/metrics/breakdown", params={"group_by": "service"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["group_by"] == "service"
    assert {"start", "end", "items"} <= body.keys()
    keys = [item["key"] for item in body["items"]]
    assert keys == sorted(keys)
    (item,) = [i for i in body["items"] if i["key"] == worked]
    assert item == {
        "key": worked,
        "requests_count_total": 3,
        "requests_count_sync": 0,
        "requests_count_async": 3,
        "requests_count_exposed": 0,
        "unique_users_count": 0,
        "countries": [],
    }
    with_users = api.get(
        "/system/metrics/breakdown", params={"group_by": "service", "include_users": "true"}
    ).json()
    (item,) = [i for i in with_users["items"] if i["key"] == worked]
    assert item["users"] == []


def test_the_breakdown_leaves_out_services_without_jobs_in_the_range(
    api: httpx.Client, worked: str
) -> None:
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    params = {"group_by": "service", "start": future, "end": later}
    assert api.get("/system/metrics/breakdown", params=params).json()["items"] == []


@pytest.mark.parametrize("group_by", ["user", "country", "Country"])
def test_users_and_countries_are_not_recorded_so_have_no_items(
    api: httpx.Client, worked: str, group_by: str
) -> None:
    body = api.get("/system/metrics/breakdown", params={"group_by": group_by}).json()
    assert body["group_by"] == group_by.lower()
    assert body["items"] == []


def test_the_breakdown_exports_csv(api: httpx.Client, worked: str) -> None:
    response = api.get("/system/metrics/breakdown", params={"group_by": "service", "format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == [
        "key",
        "membership",
        "requests_count_total",
        "requests_count_sync",
        "requests_count_async",
        "requests_count_exposed",
        "unique_users_count",
        "countries",
    ]
    assert [worked, "", "3", "0", "3", "0", "0", ""] in rows[1:]
    users = api.get("/system/metrics/breakdown", params={"group_by": "user", "format": "csv"})
    assert users.text.splitlines() == ["key,membership,executions_count,countries"]


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({}, "group_by"),
        ({"group_by": "project"}, "group_by"),
        ({"group_by": "service", "format": "xml"}, "format"),
        ({"group_by": "service", "include_users": "maybe"}, "include_users"),
        ({"group_by": "service", "format": "csv", "include_users": "true"}, "include_users"),
        ({"group_by": "service", "start": "yesterday"}, "start"),
        ({"group_by": "service", "end": "2026-12-01T00:00:00"}, "end"),
    ],
)
def test_bad_breakdown_parameters_are_a_400_naming_them(
    api: httpx.Client, params: dict[str, str], named: str
) -> None:
    response = api.get("/system/metrics/breakdown", params=params)
    assert response.status_code == 400, response.text
    assert named in response.json()["detail"]


def test_a_services_metrics_come_from_its_jobs(api: httpx.Client, worked: str) -> None:
    response = api.get(f"/system/metrics/{worked}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["service_name"] == worked
    assert {"start", "end"} <= body.keys()
    metrics = {m["metric"]: m for m in body["metrics"]}
    assert list(metrics) == [
        "cpu-hours",
        "gpu-hours",
        "requests-sync-per-service",
        "requests-async-per-service",
        "requests-exposed-per-service",
        "users-per-service",
    ]
    assert metrics["cpu-hours"]["unit"] == "hours"
    assert metrics["cpu-hours"]["value"] == pytest.approx(_cpu_hours(api, worked), abs=1e-9)
    assert metrics["cpu-hours"]["value"] > 0
    assert metrics["requests-async-per-service"]["value"] == 3
    for key in ("gpu-hours", "requests-sync-per-service", "requests-exposed-per-service"):
        assert metrics[key]["value"] == 0
        assert metrics[key]["sources"][0]["status"] == "unavailable"
    assert metrics["users-per-service"]["value"] == 0
    assert metrics["requests-async-per-service"]["sources"][0]["status"] == "ok"


def test_one_metric_of_a_service(api: httpx.Client, worked: str) -> None:
    params = {"metric": "requests-async-per-service"}
    body = api.get(f"/system/metrics/{worked}", params=params).json()
    assert body["service_id"] == worked
    assert body["metric"] == "requests-async-per-service"
    assert body["value"] == 3
    assert "unit" not in body
    assert body["sources"][0]["name"] == "job-records"
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    params = {"metric": "cpu-hours", "start": future, "end": later}
    assert api.get(f"/system/metrics/{worked}", params=params).json()["value"] == 0


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"metric": "cpu"}, "metric"),
        ({"metric": "services-count"}, "metric"),
        ({"start": "yesterday"}, "start"),
        ({"start": "2026-12-02T00:00:00Z", "end": "2026-12-01T00:00:00Z"}, "start"),
    ],
)
def test_bad_service_metric_parameters_are_a_400_naming_them(
    api: httpx.Client, worked: str, params: dict[str, str], named: str
) -> None:
    response = api.get(f"/system/metrics/{worked}", params=params)
    assert response.status_code == 400, response.text
    assert named in response.json()["detail"]


def test_metrics_of_an_unknown_service_are_a_404(api: httpx.Client) -> None:
    response = api.get(f"/system/metrics/{unique_name('missing')}")
    assert response.status_code == 404
    assert "not found" in response.json()["detail"]


@pytest.mark.parametrize(
    "path", ["/system/metrics", "/system/metrics/breakdown?group_by=service", "/system/metrics/x"]
)
def test_metrics_need_the_admin(anon: httpx.Client, path: str) -> None:
    assert anon.get(path).status_code == 401
