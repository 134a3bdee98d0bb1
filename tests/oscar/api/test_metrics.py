"""`GET /system/metrics` (upstream's summary shape from the job records) and Prometheus `/metrics`.

Before this both answered 404 (the dashboard's Metrics page and any Prometheus scrape).
"""

from __future__ import annotations

import time
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
def worked(api: httpx.Client) -> str:
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
