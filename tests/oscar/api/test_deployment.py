"""`GET /system/services/{name}/deployment[/logs]`, `?include=deployment` and the lifecycle
routes, in upstream's shapes (pkg/types/deployment.go), on the embedded default.

Before these, the upstream dashboard's service Deployment panel and its stop/start buttons got
404. (Knative's standing runtime: tests/oscar/executors/test_knative.py.)
"""

from __future__ import annotations

import threading
from pathlib import Path

import httpx

from tests.fixtures.server import RunningServer
from tests.fixtures.services import minimal_service, unique_name
from tests.services import common


def test_deployment_counts_calls_in_flight_and_keeps_their_log(
    server: RunningServer, api: httpx.Client, tmp_path: Path
) -> None:
    name = unique_name("deploy")
    release = tmp_path / "release"
    script = (
        f'echo "call of $(cat "$INPUT_FILE_PATH")"\nwhile [ ! -e {release} ]; do sleep 0.05; done\n'
    )
    assert (
        api.post("/system/services", json=minimal_service(name, script=script)).status_code == 201
    )
    try:
        fresh = api.get(f"/system/services/{name}/deployment")
        assert fresh.status_code == 200
        body = fresh.json()
        assert body["service_name"] == name
        assert body["state"] == "ready" and body["resource_kind"] == "local_process"
        assert body["active_instances"] == 0 and body["affected_instances"] == 0
        assert "namespace" not in body  # omitempty, as upstream
        empty = api.get(f"/system/services/{name}/deployment/logs").json()
        assert empty["available"] is False and empty["entries"] == [] and empty["message"]

        answers: list[httpx.Response] = []
        call = threading.Thread(
            target=lambda: answers.append(api.post(f"/run/{name}", content=b"one", timeout=60))
        )
        call.start()
        try:
            common.wait_until(
                lambda: (
                    api.get(f"/system/services/{name}/deployment").json()["active_instances"] == 1
                ),
                timeout=30,
                what="the call in flight",
            )
        finally:
            release.touch()
            call.join(60)
        assert answers and answers[0].status_code == 200
        assert api.get(f"/system/services/{name}/deployment").json()["active_instances"] == 0

        logs = api.get(f"/system/services/{name}/deployment/logs", params={"timestamps": "true"})
        assert logs.status_code == 200
        stream = logs.json()
        assert stream["service_name"] == name and stream["available"] is True
        messages = [e["message"] for e in stream["entries"]]
        assert any("call of one" in m for m in messages), messages
        assert all(e["timestamp"].endswith("Z") for e in stream["entries"])
        plain = api.get(f"/system/services/{name}/deployment/logs", params={"tailLines": 1}).json()
        assert len(plain["entries"]) == 1 and "timestamp" not in plain["entries"][0]
        assert plain["entries"][0]["message"] == messages[-1]
        bad = api.get(f"/system/services/{name}/deployment/logs", params={"tailLines": -1})
        assert bad.status_code == 400 and "tailLines" in bad.text
    finally:
        release.touch()
        api.delete(f"/system/services/{name}")


def test_a_failed_call_degrades_the_deployment(api: httpx.Client) -> None:
    name = unique_name("deployfail")
    assert (
        api.post("/system/services", json=minimal_service(name, script="exit 3\n")).status_code
        == 201
    )
    try:
        assert api.post(f"/run/{name}", content=b"x").status_code == 502
        status = api.get(f"/system/services/{name}/deployment").json()
        assert status["state"] == "degraded" and status["reason"]
        assert status["last_transition_time"]
    finally:
        api.delete(f"/system/services/{name}")


def test_list_includes_the_deployment_on_request(api: httpx.Client) -> None:
    name = unique_name("deploylist")
    assert api.post("/system/services", json=minimal_service(name)).status_code == 201
    try:
        plain = {s["name"]: s for s in api.get("/system/services").json()}
        assert "deployment" not in plain[name]
        expanded = api.get("/system/services", params={"include": "volumes,deployment"})
        assert expanded.status_code == 200
        services = {s["name"]: s for s in expanded.json()}
        summary = services[name].pop("deployment")
        assert summary["state"] == "ready" and summary["resource_kind"] == "local_process"
        assert "service_name" not in summary  # the summary, not the full status
        assert services[name] == plain[name]  # otherwise the same answer
    finally:
        api.delete(f"/system/services/{name}")


def test_deployment_needs_the_admin_and_a_known_service(
    api: httpx.Client, anon: httpx.Client
) -> None:
    assert api.get(f"/system/services/{unique_name()}/deployment").status_code == 404
    assert api.get(f"/system/services/{unique_name()}/deployment/logs").status_code == 404
    assert anon.get(f"/system/services/{unique_name()}/deployment").status_code == 401


def test_lifecycle_refuses_services_that_are_not_exposed(api: httpx.Client) -> None:
    plain, exposed = unique_name("plain"), unique_name("exposed")
    assert api.post("/system/services", json=minimal_service(plain)).status_code == 201
    definition = minimal_service(exposed, expose={"api_port": 8080})
    assert api.post("/system/services", json=definition).status_code == 201
    try:
        for action in ("stop", "start", "restart"):
            refused = api.post(f"/system/services/{plain}/{action}")
            assert refused.status_code == 400 and "not exposed" in refused.text
            unsupported = api.post(f"/system/services/{exposed}/{action}")
            assert unsupported.status_code == 501 and "not run by oscar" in unsupported.text
            assert api.post(f"/system/services/{unique_name()}/{action}").status_code == 404
    finally:
        api.delete(f"/system/services/{plain}")
        api.delete(f"/system/services/{exposed}")
