"""Every call in the upstream dashboard's `src/api/` (grycap/oscar-dashboard bc98e6c), made as
the dashboard makes it, against a running `oscar serve`: none answers 404 (or 405), and each
answers what the feature offers here: its data, or 501 with a sentence for what oscar leaves
out (volumes, quotas, exposed-service lifecycle).

Before issue 15, deployment, presign, system logs, metrics, status, quotas and volumes answered
404.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.fixtures.server import RunningServer
from tests.fixtures.services import minimal_service, unique_name
from tests.services import common


@dataclass(frozen=True)
class Call:
    """One dashboard API module's request; `{service}`, `{bucket}`, `{job}` are filled in."""

    module: str  # the file under src/api/ that makes it
    method: str
    path: str
    expected: tuple[int, ...]
    params: dict[str, str] | None = None
    body: Any = None


DASHBOARD_CALLS = [
    Call("buckets/getBucketsApi.ts", "GET", "/system/buckets", (200,)),
    Call("buckets/getBucketItemsApi.ts", "GET", "/system/buckets/{bucket}", (200,)),
    Call(
        "buckets/createBucketsApi.ts",
        "POST",
        "/system/buckets",
        (201,),
        body={"bucket_name": "{extra}", "visibility": "private", "allowed_users": []},
    ),
    Call(
        "buckets/updateBucketsApi.ts",
        "PUT",
        "/system/buckets",
        (204, 200),
        body={"bucket_name": "{extra}", "visibility": "public", "allowed_users": []},
    ),
    Call(
        "buckets/createPresignedObjectUrlApi.ts",
        "POST",
        "/system/buckets/{bucket}/presign",
        (200, 201),
        body={"object_key": "in/file.txt", "operation": "upload", "expires_in": 600},
    ),
    Call("buckets/deleteBucketsApi.ts", "DELETE", "/system/buckets/{extra}", (204, 200)),
    Call("config/getSystemConfig.ts", "GET", "/system/config", (200,)),
    Call(
        "deployment/getDeploymentLogsApi.ts",
        "GET",
        "/system/services/{service}/deployment/logs",
        (200,),
        params={"timestamps": "false", "tailLines": "200"},
    ),
    Call(
        "deployment/getDeploymentStatusApi.ts",
        "GET",
        "/system/services/{service}/deployment",
        (200,),
    ),
    Call("info/getInfoApi.ts", "GET", "/system/info", (200,)),
    Call("invoke/invokeServiceSync.ts", "POST", "/run/{service}", (200,), body="aGVsbG8="),
    Call("logs/getClusterServiceLogs.ts", "GET", "/system/logs", (200,)),
    Call("logs/getServiceLogs.ts", "GET", "/system/logs/{service}", (200,), params={"page": ""}),
    Call("logs/getLog.ts", "GET", "/system/logs/{service}/{job}", (200,)),
    Call("logs/deleteLog.ts", "DELETE", "/system/logs/{service}/{job}", (204,)),
    Call("logs/deleteServiceLogs.ts", "DELETE", "/system/logs/{service}", (204,)),
    Call("metrics/getMetricsSummaryApi.ts", "GET", "/system/metrics", (200,)),
    Call(
        "metrics/getMetricsBreakdownApi.ts",
        "GET",
        "/system/metrics/breakdown",
        (200,),
        params={"group_by": "service"},
    ),
    Call("metrics/getServiceMetricsApi.ts", "GET", "/system/metrics/{service}", (200,)),
    Call("quotas/getQuotaApi.ts", "GET", "/system/quotas/user", (501,)),
    Call("quotas/getQuotaApi.ts", "GET", "/system/quotas/user/oscar", (501,)),
    Call(
        "quotas/putQuotaApi.ts",
        "PUT",
        "/system/quotas/user/oscar",
        (501,),
        body={"cpu": "1000", "memory": "1Gi"},
    ),
    Call("services/getServicesApi.ts", "GET", "/system/services", (200,)),
    Call(
        "services/getServicesApi.ts",
        "GET",
        "/system/services",
        (200,),
        params={"include": "deployment"},
    ),
    Call("services/getServiceApi.ts", "GET", "/system/services/{service}", (200,)),
    Call("services/updateServiceApi.ts", "PUT", "/system/services", (204,), body="{definition}"),
    Call("services/lifecycleServiceApi.ts", "POST", "/system/services/{service}/stop", (400,)),
    Call("services/lifecycleServiceApi.ts", "POST", "/system/services/{service}/start", (400,)),
    Call("services/lifecycleServiceApi.ts", "POST", "/system/services/{service}/restart", (400,)),
    Call("status/getStatusApi.ts", "GET", "/system/status", (200,)),
    Call("volumes/getVolumesApi.ts", "GET", "/system/volumes", (501,)),
    Call("volumes/createVolumesApi.ts", "POST", "/system/volumes", (501,), body={"name": "v"}),
    Call("volumes/deleteVolumesApi.ts", "DELETE", "/system/volumes/v", (501,)),
]
# createServiceApi.ts and deleteServiceApi.ts are the fixture's own create and delete.


@pytest.fixture(scope="module")
def deployed(server: RunningServer) -> Iterator[dict[str, Any]]:
    """A service with an input bucket and one finished job, as the dashboard would see it."""
    api = server.client()
    name = unique_name("dash")
    definition = minimal_service(
        name,
        script='cat "$INPUT_FILE_PATH"\n',
        input=[{"storage_provider": "minio.default", "path": f"{name}/in"}],
    )
    created = api.post("/system/services", json=definition)  # createServiceApi.ts
    assert created.status_code == 201, created.text
    job = api.post(f"/job/{name}", content=b"x").headers["x-oscar-job-name"]
    common.wait_until(
        lambda: api.get(f"/system/logs/{name}").json()["jobs"][job]["status"] == "Succeeded",
        timeout=60,
        what="the fixture's job",
    )
    yield {"service": name, "bucket": name, "job": job, "definition": definition}
    assert api.delete(f"/system/services/{name}").status_code == 204  # deleteServiceApi.ts


def _fill(value: Any, names: dict[str, Any]) -> Any:
    if isinstance(value, str):
        if value == "{definition}":
            return names["definition"]
        return value.format(**names)
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    return value


@pytest.mark.parametrize(
    "call", DASHBOARD_CALLS, ids=[f"{c.method} {c.path}" for c in DASHBOARD_CALLS]
)
def test_dashboard_call_answers(
    call: Call, deployed: dict[str, Any], server: RunningServer, anon: httpx.Client
) -> None:
    api = server.client()
    names = {**deployed, "extra": f"{deployed['service']}-extra"}
    if "{extra}" in call.path or (call.method == "PUT" and call.path == "/system/buckets"):
        api.post("/system/buckets", json={"bucket_name": names["extra"]})
    if "{job}" in call.path:  # each job route gets a job of its own
        names["job"] = api.post(f"/job/{names['service']}", content=b"x").headers[
            "x-oscar-job-name"
        ]
    path = _fill(call.path, names)
    body = _fill(call.body, names)
    kwargs: dict[str, Any] = {"params": call.params}
    if isinstance(body, str):
        kwargs["content"] = body
    elif body is not None:
        kwargs["json"] = body
    answer = api.request(call.method, path, **kwargs)
    assert answer.status_code in call.expected, (call.module, answer.status_code, answer.text)
    if answer.status_code in (400, 501):
        assert len(answer.json()["detail"]) > 20  # a sentence saying why
    # Every route but /run is behind the admin's credentials (/run takes the service token).
    if not call.path.startswith("/run/"):
        assert anon.request(call.method, path, **kwargs).status_code == 401
