"""`GET /system/logs`: upstream's execution log of `/job` and `/run` calls, which the dashboard's
cluster-usage graph reads. Before this it answered 405 (the route only had `/{name}` children).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime

import httpx
import pytest

from tests.fixtures.server import ADMIN_PASSWORD, RunningServer
from tests.fixtures.services import minimal_service, unique_name

_LATENCY = re.compile(r"^\d+(\.\d+)?(ns|µs|ms|s)$|^(\d+h)?\d+m\d+(\.\d+)?s$")


def _calls_to(api: httpx.Client, name: str, count: int) -> list[dict[str, object]]:
    """The execution-log entries of service `name`, once there are `count` of them."""
    deadline = time.monotonic() + 30
    while True:
        response = api.get("/system/logs")
        assert response.status_code == 200, response.text
        mine = [e for e in response.json()["logs"] if str(e["path"]).endswith(f"/{name}")]
        if len(mine) >= count or time.monotonic() > deadline:
            return mine
        time.sleep(0.05)


@pytest.fixture
def service(api: httpx.Client) -> Iterator[tuple[str, str]]:
    """A service (name, token) that answers both `/job` and `/run`."""
    name = unique_name("execlog")
    assert api.post("/system/services", json=minimal_service(name)).status_code == 201
    yield name, api.get(f"/system/services/{name}").json()["token"]
    api.delete(f"/system/services/{name}")


def test_job_and_run_calls_are_logged_oldest_first(
    server: RunningServer, api: httpx.Client, anon: httpx.Client, service: tuple[str, str]
) -> None:
    name, token = service
    bearer = {"Authorization": f"Bearer {token}"}
    assert api.post(f"/job/{name}", content=b'{"a": 1}').status_code == 201
    assert anon.post(f"/job/{name}", content=b"{}", headers=bearer).status_code == 201
    assert anon.post(f"/job/{name}", content=b"{}").status_code == 401
    assert api.post(f"/run/{name}", content=b"hello", timeout=60).status_code == 200
    api.get(f"/system/logs/{name}")  # not an execution: not logged

    entries = _calls_to(api, name, 4)
    assert [(e["method"], e["path"], e["status"], e["user"]) for e in entries] == [
        ("POST", f"/job/{name}", 201, "oscar"),
        ("POST", f"/job/{name}", 201, f"service-token:{name}"),
        ("POST", f"/job/{name}", 401, "anonymous"),
        ("POST", f"/run/{name}", 200, "oscar"),
    ]
    moments = [datetime.fromisoformat(str(e["timestamp"]).replace("Z", "+00:00")) for e in entries]
    assert all(str(e["timestamp"]).endswith("Z") for e in entries)
    assert moments == sorted(moments)
    for entry in entries:
        assert set(entry) == {
            "timestamp",
            "status",
            "latency",
            "client_ip",
            "method",
            "path",
            "user",
            "raw",
        }
        assert entry["client_ip"] == "127.0.0.1"
        assert _LATENCY.match(str(entry["latency"])), entry["latency"]
        raw = str(entry["raw"])
        assert raw.startswith("[GIN-EXECUTIONS-LOGGER] ")
        assert f"| POST    {entry['path']} | {entry['user']}" in raw
        assert str(entry["timestamp"]) in raw


def test_the_log_holds_no_secret(
    api: httpx.Client, anon: httpx.Client, service: tuple[str, str]
) -> None:
    name, token = service
    headers = {"Authorization": f"Bearer {token}"}
    query = {"token": token, "password": ADMIN_PASSWORD}
    assert (
        anon.post(f"/job/{name}", params=query, content=b"{}", headers=headers).status_code == 201
    )
    (entry,) = _calls_to(api, name, 1)
    assert entry["path"] == f"/job/{name}"
    text = api.get("/system/logs").text
    assert token not in text
    assert ADMIN_PASSWORD not in text
    assert "password=" not in text


def test_upstreams_query_parameters_are_accepted(api: httpx.Client) -> None:
    for params in ({"timestamps": "true"}, {"timestamps": "nonsense"}, {"previous": "true"}):
        response = api.get("/system/logs", params=params)
        assert response.status_code == 200, response.text
        assert isinstance(response.json()["logs"], list)


def test_the_log_needs_the_admin(
    anon: httpx.Client, api: httpx.Client, service: tuple[str, str]
) -> None:
    _, token = service
    assert anon.get("/system/logs").status_code == 401
    assert anon.get("/system/logs", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert anon.get("/system/logs", auth=("oscar", "wrong")).status_code == 401


def test_the_log_keeps_the_newest_calls_and_resets_on_restart(
    start_oscar: Callable[..., RunningServer],
) -> None:
    server = start_oscar(extra_env={"OSCAR_EXECUTION_LOG_SIZE": "3"})
    api = server.client()
    names = [unique_name("gone") for _ in range(5)]
    for name in names:  # unknown services: answered 404, and logged like any other call
        assert api.post(f"/job/{name}", content=b"{}").status_code == 404
    logs = api.get("/system/logs").json()["logs"]
    assert [(e["path"], e["status"]) for e in logs] == [(f"/job/{n}", 404) for n in names[2:]]

    server.stop()
    again = start_oscar(server.data_dir, extra_env={"OSCAR_EXECUTION_LOG_SIZE": "3"})
    assert again.client().get("/system/logs").json() == {"logs": []}
