"""The plugin against the requests a real interLink API server made (tests/fixtures/interlink/,
recorded with `python -m tests.fixtures.interlink_recorder --record`): every field the Go types
send, null lists included, replayed in order against the real plugin server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.plugin import RunningPlugin, running_plugin
from tests.services import common

RECORDED = Path(__file__).parents[1] / "fixtures" / "interlink"


def _recorded(name: str) -> Any:
    return json.loads((RECORDED / f"{name}.json").read_text())


@pytest.fixture
def plugin(tmp_path: Path) -> Iterator[RunningPlugin]:
    with running_plugin(tmp_path / "plugin", "local") as running:
        yield running


def test_the_recorded_requests_run_the_pod(plugin: RunningPlugin) -> None:
    assert plugin.call("GET", "/status", _recorded("status_ping")).status_code == 200

    create = _recorded("create")
    uid = create["pod"]["metadata"]["uid"]
    created = plugin.call("POST", "/create", create)
    assert created.status_code == 200, created.text
    assert created.json()["PodUID"] == uid

    def ended() -> dict[str, Any] | None:
        answer = plugin.call("GET", "/status", _recorded("status"))
        assert answer.status_code == 200, answer.text
        (status,) = answer.json()
        done = all("terminated" in c["state"] for c in status["containers"])
        return status if done else None

    status = common.wait_until(
        ended, timeout=60, what="the recorded pod ended", log=plugin.log_path
    )
    assert status["UID"] == uid and status["name"] == create["pod"]["metadata"]["name"]
    (init,) = status["initContainers"]
    assert init["name"] == "stage-in" and init["state"]["terminated"]["exitCode"] == 0
    (main,) = status["containers"]
    assert main["state"]["terminated"]["exitCode"] == 0, plugin.call(
        "GET", "/getLogs", {**_recorded("getLogs"), "ContainerName": "main"}
    ).text

    logs = plugin.call("GET", "/getLogs", _recorded("getLogs"))
    assert logs.status_code == 200
    event = next(
        e["value"] for e in create["pod"]["spec"]["containers"][0]["env"] if e["name"] == "EVENT"
    )
    assert logs.text.splitlines()[-1] == f"hello from {event}"
    folder = plugin.state_dir / "pods" / uid
    # The projected volume as interLink rendered it, plus its Secret source.
    assert (folder / "volumes" / "bundle" / "name").read_text() == create["pod"]["metadata"]["name"]
    assert (folder / "volumes" / "bundle" / "token").exists()

    assert plugin.call("POST", "/delete", _recorded("delete")).status_code == 200
    assert not folder.exists()
    assert plugin.call("GET", "/status", _recorded("status")).json() == []
