"""`GET /system/status` in upstream's shape (pkg/types/status.go), and 501 for what stays out.

Before this, the dashboard's Status page and oscar-cli's status calls got 404.
"""

from __future__ import annotations

import os

import httpx
import pytest

from tests.fixtures.server import RunningServer
from tests.fixtures.services import minimal_service, unique_name


def test_status_reports_this_host_jobs_and_store(server: RunningServer, api: httpx.Client) -> None:
    name = unique_name("status")
    definition = minimal_service(
        name, output=[{"storage_provider": "minio.default", "path": f"{name}/out"}]
    )
    assert api.post("/system/services", json=definition).status_code == 201
    try:
        before = api.get("/system/status").json()
        assert api.post(f"/job/{name}", content=b"x").status_code == 201
        after = api.get("/system/status")
        assert after.status_code == 200
        body = after.json()
        cluster = body["cluster"]
        assert cluster["nodes_count"] == 1 == len(cluster["nodes"])
        node = cluster["nodes"][0]
        assert node["cpu"]["capacity_cores"] == os.cpu_count()
        assert node["memory"]["capacity_bytes"] > 0
        assert node["is_interlink"] is False and node["gpu"] == 0
        cpu = cluster["metrics"]["cpu"]
        assert cpu["total_schedulable_cores"] == os.cpu_count()
        assert 0 <= cpu["total_free_cores"] <= os.cpu_count()
        memory = cluster["metrics"]["memory"]
        assert 0 <= memory["total_free_bytes"] <= memory["total_schedulable_bytes"]
        assert body["oscar"]["ready"] is True
        assert body["oscar"]["jobs_count"] == before["oscar"]["jobs_count"] + 1
        states = body["oscar"]["pods"]["states"]
        assert set(states) >= {"Pending", "Running", "Succeeded", "Failed"}
        assert sum(states.values()) == body["oscar"]["jobs_count"]
        assert body["minio"]["buckets_count"] >= 1
        assert body["minio"]["buckets_count"] >= before["minio"]["buckets_count"]
        assert body["minio"]["total_objects"] >= 1  # the service's folder marker at least
    finally:
        api.delete(f"/system/services/{name}")


def test_status_needs_the_admin(anon: httpx.Client) -> None:
    assert anon.get("/system/status").status_code == 401


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/system/volumes"),
        ("POST", "/system/volumes"),
        ("DELETE", "/system/volumes/data"),
        ("GET", "/system/federation/some-service"),
        ("PUT", "/system/federation/some-service"),
        ("GET", "/system/quotas/user"),
        ("GET", "/system/quotas/user/someone"),
        ("PUT", "/system/quotas/user/someone"),
    ],
)
def test_out_of_scope_routes_answer_501_with_a_sentence(
    api: httpx.Client, anon: httpx.Client, method: str, path: str
) -> None:
    response = api.request(method, path)
    assert response.status_code == 501, response.text
    assert "not supported by oscar" in response.text
    assert anon.request(method, path).status_code == 401  # still behind the admin
