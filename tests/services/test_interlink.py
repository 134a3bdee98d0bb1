"""Smoke tests of the test environment: interLink's real virtual kubelet and API server in
front of the recording plugin of `tests/fixtures/interlink_recorder.py` (a test tool that
records interLink's requests; oscar's own plugin runs in tests/interlink_plugin/)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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


# Restarting the plugin and the virtual kubelet mid-job, and two virtual nodes each in front of
# its own plugin, are tested end to end in tests/interlink_plugin/test_end_to_end.py.
