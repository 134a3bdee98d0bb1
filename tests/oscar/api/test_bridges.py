"""`/system/bridges`: admin only, field-named 400s, write-only credentials, status."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import httpx
import pytest

from tests.fixtures.server import RunningServer
from tests.fixtures.services import unique_name
from tests.services import common

SECRET = "bridge-password-do-not-show-42"


def webdav_service(name: str, hostname: str = "http://127.0.0.1:9") -> dict[str, Any]:
    """A service with a webdav input (on a port nothing listens on unless told otherwise)."""
    return {
        "name": name,
        "image": "alpine",
        "script": "true",
        "input": [{"storage_provider": "webdav.store", "path": "data/in"}],
        "storage_providers": {"webdav": {"store": {"hostname": hostname}}},
    }


@pytest.fixture
def target(api: httpx.Client) -> str:
    name = unique_name("br")
    assert api.post("/system/services", json=webdav_service(name)).status_code == 201
    return name


def test_every_route_needs_admin_credentials(anon: httpx.Client, target: str) -> None:
    bridge = {"name": unique_name("b"), "type": "webdav", "service": target}
    for method, path, body in [
        ("GET", "/system/bridges", None),
        ("POST", "/system/bridges", bridge),
        ("GET", "/system/bridges/x", None),
        ("PUT", "/system/bridges/x", bridge),
        ("DELETE", "/system/bridges/x", None),
    ]:
        assert anon.request(method, path, json=body).status_code == 401, (method, path)
    wrong = httpx.Client(base_url=str(anon.base_url), auth=("oscar", "wrong"))
    assert wrong.get("/system/bridges").status_code == 401


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"type": "ftp"}, "type"),
        ({"name": "Bad_Name"}, "name"),
        ({"interval": 0}, "interval"),
        ({"intervall": 5}, "intervall"),
        ({"service": ""}, "service"),
        ({"credentials": {"api_key": "x"}}, "credentials"),
        ({"stable_polls": 0}, "stable_polls"),
        ({"service": "no-such-service"}, "service"),
        ({"credentials": {"password": "********"}}, "credentials.password"),
    ],
)
def test_invalid_definitions_get_400_naming_the_field(
    api: httpx.Client, target: str, change: dict[str, Any], field: str
) -> None:
    bridge = {"name": unique_name("b"), "type": "webdav", "service": target, **change}
    answer = api.post("/system/bridges", json=bridge)
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["detail"].startswith("The bridge definition is not valid")
    assert [e["field"] for e in body["errors"]] == [field], body


def test_a_bridge_needs_an_input_it_can_feed(api: httpx.Client) -> None:
    name = unique_name("br")
    plain = {"name": name, "image": "alpine", "script": "true"}
    assert api.post("/system/services", json=plain).status_code == 201
    answer = api.post(
        "/system/bridges", json={"name": unique_name("b"), "type": "webdav", "service": name}
    )
    assert answer.status_code == 400
    assert "no input of type webdav" in answer.json()["detail"]
    answer = api.post(
        "/system/bridges",
        json={"name": unique_name("b"), "type": "kafka", "service": name,
              "bootstrap_servers": "127.0.0.1:9", "topic": "t"},
    )  # fmt: skip
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field"] == "payload"
    # minio.default events arrive already: listening to them too would double every job.
    default_in = {**plain, "name": unique_name("br"), "input": [{"path": f"{name}-in/in"}]}
    assert api.post("/system/services", json=default_in).status_code == 201
    answer = api.post(
        "/system/bridges",
        json={"name": unique_name("b"), "type": "minio", "service": default_in["name"]},
    )
    assert answer.status_code == 400
    assert "already reach the control plane" in answer.json()["detail"]


def test_credentials_are_write_only(server: RunningServer, api: httpx.Client, target: str) -> None:
    name = unique_name("b")
    bridge = {
        "name": name,
        "type": "webdav",
        "service": target,
        "credentials": {"user": "alice", "password": SECRET},
    }
    created = api.post("/system/bridges", json=bridge)
    assert created.status_code == 201, created.text
    assert created.json()["credentials"] == {"password": "********", "user": "********"}
    assert api.post("/system/bridges", json=bridge).status_code == 409
    listed = api.get("/system/bridges").json()
    assert SECRET not in str(listed) and "alice" not in str(listed)
    one = api.get(f"/system/bridges/{name}").json()
    assert one["credentials"] == {"password": "********", "user": "********"}
    # The bridge tries the store (nothing listens there): its error says so, without secrets.
    status = common.wait_until(
        lambda: (
            (s := api.get(f"/system/bridges/{name}").json()["status"])["state"] == "error" and s
        ),
        timeout=30,
        what="the bridge's error",
    )
    assert "cannot be reached" in status["message"]
    assert status["errors"] >= 1 and status["retry_at"]
    # Sending the masks back keeps the stored values; the data file holds them, not the log.
    updated = api.put(f"/system/bridges/{name}", json={**one, "interval": 2})
    assert updated.status_code == 200, updated.text
    assert updated.json()["interval"] == 2
    database = server.data_dir / "bridges.db"
    with sqlite3.connect(database) as db:
        (spec,) = db.execute("SELECT spec FROM bridges WHERE name = ?", (name,)).fetchone()
    assert json.loads(spec)["credentials"] == {"user": "alice", "password": SECRET}
    assert database.stat().st_mode & 0o077 == 0
    assert SECRET not in server.log()


def test_update_and_delete(api: httpx.Client, target: str) -> None:
    name = unique_name("b")
    bridge = {"name": name, "type": "webdav", "service": target, "enabled": False}
    assert api.post("/system/bridges", json=bridge).status_code == 201
    assert api.get(f"/system/bridges/{name}").json()["status"]["state"] == "disabled"
    mismatch = api.put(f"/system/bridges/{name}", json={**bridge, "name": "other"})
    assert mismatch.status_code == 400
    # A type change drops the old type's credentials instead of storing unusable ones.
    webdav = {**bridge, "credentials": {"user": "u", "password": "p"}}
    assert api.put(f"/system/bridges/{name}", json=webdav).status_code == 200
    as_sqs = {"name": name, "type": "sqs", "service": target, "queue": "q", "payload": "raw",
              "enabled": False}  # fmt: skip
    changed = api.put(f"/system/bridges/{name}", json=as_sqs)
    assert changed.status_code == 200, changed.text
    assert changed.json()["credentials"] == {}
    assert api.get("/system/bridges").status_code == 200
    assert api.put("/system/bridges/nope", json={**bridge, "name": "nope"}).status_code == 404
    assert api.delete(f"/system/bridges/{name}").status_code == 204
    assert api.get(f"/system/bridges/{name}").status_code == 404
    assert api.delete(f"/system/bridges/{name}").status_code == 404
    assert name not in [b["name"] for b in api.get("/system/bridges").json()]
