"""Smoke tests: interLink's real virtual kubelet and API server in front of a plugin.

The "cloud" plugin is oscar's own (`oscar-interlink-plugin serve --backend local`) once it
answers the ping; until then these tests use the recording stub of
`tests/fixtures/interlink_recorder.py` for it too (and say so with a warning).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.interlink_recorder import LOG_TEXT, RecordingPlugin, recorded_pod
from tests.services import common
from tests.services import interlink as interlink_service
from tests.services.interlink import InterlinkNode
from tests.services.kubernetes import KubernetesCluster

pytestmark = [pytest.mark.interlink, pytest.mark.kubernetes, pytest.mark.slow]

StartNode = Callable[..., InterlinkNode]


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def recorder() -> Iterator[RecordingPlugin]:
    with RecordingPlugin() as plugin:
        yield plugin


def _answers_ping(url: str) -> bool:
    """Whether the plugin answers the ping (`GET /status`, body `[]`) with 200 and JSON."""
    response = httpx.request("GET", f"{url}/status", content=b"[]", timeout=5)
    response.json()  # `[]` or a PingResponse object (status, resources, taints)
    return response.status_code == 200


@pytest.fixture
def cloud_plugin(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """oscar's plugin with the local backend when it works, else a recording stub."""
    if importlib.util.find_spec("interlink_plugin.server") is not None:
        port = common.free_port()
        log = tmp_path / "plugin.log"
        args = [sys.executable, "-m", "interlink_plugin", "serve", "--backend", "local"]
        args += ["--host", "127.0.0.1", "--port", str(port), "--state-dir", str(tmp_path / "st")]
        with log.open("ab") as handle:
            process = subprocess.Popen(
                args, stdout=handle, stderr=subprocess.STDOUT, env={**os.environ}
            )
        try:
            common.wait_until(
                lambda: _answers_ping(f"http://127.0.0.1:{port}"),
                timeout=90,  # a cold import on 2 busy cores is slow
                what="oscar-interlink-plugin ping",
                process=process,
                log=log,
            )
        except common.ServiceUnavailableError as error:
            common.stop_process(process)
            warnings.warn(f"oscar's plugin does not answer the ping yet: {error}", stacklevel=1)
        else:
            try:
                yield "127.0.0.1", port
            finally:
                common.stop_process(process)
            return
    else:
        warnings.warn("interlink_plugin.server does not exist yet: using the stub", stacklevel=1)
    with RecordingPlugin() as stub:
        yield stub.endpoint


def _core(cluster: KubernetesCluster) -> Any:
    from kubernetes import client

    return client.CoreV1Api(cluster.api_client())


def _simple_pod(name: str, node: str, command: str = "echo hello") -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": {"kubernetes.io/hostname": node},
            "tolerations": [
                {"key": "virtual-node.interlink/no-schedule", "operator": "Exists"},
            ],
            "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", command]}],
        },
    }


def _wait_phase(core: Any, namespace: str, name: str, phases: set[str], timeout: float) -> str:
    def phase() -> str | None:
        current = core.read_namespaced_pod(name, namespace).status.phase
        return current if current in phases else None

    return common.wait_until(phase, timeout=timeout, interval=0.5, what=f"pod {name} {phases}")


def test_node_turns_ready_and_everything_stops(
    kubernetes: KubernetesCluster, recorder: RecordingPlugin, tmp_path: Path
) -> None:
    name = _unique("vk")
    with interlink_service.running(kubernetes, name, recorder.endpoint, tmp_path, cpu="8") as node:
        ready = node.read_node()
        assert ready.metadata.labels["virtual-node.interlink/type"] == "virtual-kubelet"
        assert ready.metadata.labels["kubernetes.io/hostname"] == name
        taints = {t.key for t in ready.spec.taints or []}
        assert "virtual-node.interlink/no-schedule" in taints
        assert ready.status.capacity["cpu"] == "8"
        assert recorder.pings(), "the node turned Ready without a ping reaching the plugin"
        pids = node.pids
        assert set(pids) == {"interlink", "virtual-kubelet"}
    for pid in pids.values():
        assert (
            not Path(f"/proc/{pid}").exists()
            or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
        ), f"process {pid} outlived the fixture"
    from kubernetes.client.rest import ApiException

    with pytest.raises(ApiException) as error:
        _core(kubernetes).read_node(name)
    assert error.value.status == 404


def test_pod_runs_through_the_plugin_and_its_log_comes_back(
    kubernetes: KubernetesCluster, interlink: StartNode, recorder: RecordingPlugin
) -> None:
    node = interlink(_unique("vk"), recorder.endpoint, gpus=1)
    core = _core(kubernetes)
    namespace = _unique("il")
    core.create_namespace({"metadata": {"name": namespace}})
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "recorded-config"}, "data": {"mode": "x"}}
    )
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "recorded-secret"}, "stringData": {"token": "t"}}
    )
    core.create_namespaced_pod(namespace, recorded_pod(namespace, node.name))
    assert _wait_phase(core, namespace, "recorded-pod", {"Succeeded", "Failed"}, 120) == (
        "Succeeded"
    )
    (created,) = recorder.bodies("POST", "/create")
    assert created["pod"]["metadata"]["name"] == "recorded-pod"
    assert [c["name"] for c in created["container"]] == ["stage-in", "main"]
    log = core.read_namespaced_pod_log("recorded-pod", namespace, container="main")
    assert log == LOG_TEXT.format(container="main")
    (asked,) = recorder.bodies("GET", "/getLogs")
    assert (asked["PodName"], asked["ContainerName"]) == ("recorded-pod", "main")
    core.delete_namespaced_pod("recorded-pod", namespace)
    common.wait_until(lambda: recorder.bodies("POST", "/delete"), timeout=60, what="/delete")


def test_restarting_both_mid_job_keeps_the_pod(
    kubernetes: KubernetesCluster, interlink: StartNode, recorder: RecordingPlugin
) -> None:
    recorder.running_polls = 10**6  # Running until told otherwise
    node = interlink(_unique("vk"), recorder.endpoint)
    core = _core(kubernetes)
    namespace = _unique("il")
    core.create_namespace({"metadata": {"name": namespace}})
    core.create_namespaced_pod(namespace, _simple_pod("held", node.name))
    assert _wait_phase(core, namespace, "held", {"Running"}, 120) == "Running"
    before = dict(node.pids)
    node.restart_api_server()
    node.restart_virtual_kubelet()
    assert not set(before.values()) & set(node.pids.values())
    assert _wait_phase(core, namespace, "held", {"Running"}, 10) == "Running"
    recorder.running_polls = 0  # the next status answer says Succeeded
    assert _wait_phase(core, namespace, "held", {"Succeeded", "Failed"}, 120) == "Succeeded"
    uids = {b["pod"]["metadata"]["uid"] for b in recorder.bodies("POST", "/create")}
    assert len(uids) == 1


def test_two_virtual_nodes_each_reach_their_own_plugin(
    kubernetes: KubernetesCluster,
    interlink: StartNode,
    recorder: RecordingPlugin,
    cloud_plugin: tuple[str, int],
) -> None:
    hpc = interlink(_unique("hpc"), recorder.endpoint)
    cloud = interlink(_unique("cloud"), cloud_plugin)
    assert hpc.api_server_port != cloud.api_server_port
    assert hpc.kubelet_port != cloud.kubelet_port
    assert hpc.is_ready() and cloud.is_ready()
    core = _core(kubernetes)
    namespace = _unique("il")
    core.create_namespace({"metadata": {"name": namespace}})
    core.create_namespaced_pod(namespace, _simple_pod("on-hpc", hpc.name))
    _wait_phase(core, namespace, "on-hpc", {"Succeeded", "Failed"}, 120)
    created = [b["pod"]["spec"]["nodeName"] for b in recorder.bodies("POST", "/create")]
    assert created == [hpc.name]
