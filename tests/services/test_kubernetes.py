"""Smoke tests: the real control plane schedules Pods on kwok nodes, which run and complete them."""

from __future__ import annotations

import ssl
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.services import common
from tests.services.kubernetes import VERSION, KubernetesCluster

pytestmark = pytest.mark.kubernetes

INTERLINK_TAINT = {
    "key": "virtual-node.interlink/no-schedule",
    "value": "true",
    "effect": "NoSchedule",
}


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def test_api_server_reports_the_built_version(kubernetes: KubernetesCluster) -> None:
    from kubernetes import client

    info = client.VersionApi(kubernetes.api_client()).get_code()
    major, minor, _ = VERSION.lstrip("v").split(".")
    assert (info.git_version, info.major, info.minor) == (VERSION, major, minor)
    assert kubernetes.version == VERSION
    # The unauthenticated /version endpoint says the same over TLS verified against our CA.
    with httpx.Client(verify=ssl.create_default_context(cafile=kubernetes.ca_file)) as http:
        assert http.get(f"{kubernetes.server}/version").json()["gitVersion"] == VERSION


def test_job_pod_is_bound_by_the_scheduler_and_completed_by_kwok(
    kubernetes: KubernetesCluster,
) -> None:
    from kubernetes import client

    api = kubernetes.api_client()
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    node = _unique("kwok")
    kubernetes.create_fake_node(node)
    namespace = _unique("smoke")
    core.create_namespace({"metadata": {"name": namespace}})
    job: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "hello"},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "nodeSelector": {"kubernetes.io/hostname": node},
                    "containers": [{"name": "main", "image": "busybox", "command": ["echo", "hi"]}],
                }
            },
        },
    }
    batch.create_namespaced_job(namespace, job)

    def bound_pod() -> Any:
        pods = core.list_namespaced_pod(namespace, label_selector="job-name=hello").items
        return pods[0] if pods and pods[0].spec.node_name else None

    pod = common.wait_until(bound_pod, timeout=60, interval=0.3, what="pod bound to the kwok node")
    assert pod.spec.node_name == node

    def complete() -> Any:
        status = batch.read_namespaced_job_status("hello", namespace).status
        done = any(c.type == "Complete" and c.status == "True" for c in status.conditions or [])
        return status if done else None

    status = common.wait_until(complete, timeout=90, interval=0.3, what="job completed by kwok")
    assert status.succeeded == 1
    assert not status.failed
    phase = core.read_namespaced_pod(pod.metadata.name, namespace).status.phase
    assert phase == "Succeeded"


def test_virtual_node_takes_only_pods_that_tolerate_its_taint(
    kubernetes: KubernetesCluster,
) -> None:
    """A node registered like an interLink virtual kubelet: labelled, tainted, sized."""
    from kubernetes import client

    core = client.CoreV1Api(kubernetes.api_client())
    node_name = _unique("vk")
    node = kubernetes.create_fake_node(
        node_name,
        labels={"type": "virtual-kubelet"},
        taints=[INTERLINK_TAINT],
        cpu="8",
        memory="16Gi",
    )
    assert node.metadata.labels["type"] == "virtual-kubelet"
    assert node.status.allocatable["cpu"] == "8"
    assert node.status.allocatable["memory"] == "16Gi"
    assert [t.key for t in node.spec.taints or []] == [INTERLINK_TAINT["key"]]
    namespace = _unique("vk")
    core.create_namespace({"metadata": {"name": namespace}})

    def pod(name: str, tolerate: bool) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "nodeSelector": {"type": "virtual-kubelet", "kubernetes.io/hostname": node_name},
            "containers": [{"name": "main", "image": "busybox"}],
        }
        if tolerate:
            spec["tolerations"] = [{**INTERLINK_TAINT, "operator": "Equal"}]
        return {"metadata": {"name": name}, "spec": spec}

    core.create_namespaced_pod(namespace, pod("tolerant", tolerate=True))
    core.create_namespaced_pod(namespace, pod("intolerant", tolerate=False))

    def running() -> Any:
        current = core.read_namespaced_pod("tolerant", namespace)
        return current if current.status.phase == "Running" else None

    tolerant = common.wait_until(running, timeout=60, interval=0.3, what="tolerant pod running")
    assert tolerant.spec.node_name == node_name

    def unschedulable() -> bool:
        conditions = core.read_namespaced_pod("intolerant", namespace).status.conditions or []
        return any(c.type == "PodScheduled" and c.reason == "Unschedulable" for c in conditions)

    common.wait_until(unschedulable, timeout=30, interval=0.3, what="intolerant pod rejected")
    assert core.read_namespaced_pod("intolerant", namespace).spec.node_name is None


def test_helm_runs_and_templates_a_chart(kubernetes: KubernetesCluster, tmp_path: Path) -> None:
    helm = str(kubernetes.helm)
    version = common.run([helm, "version", "--short"], env=kubernetes.kubectl_env(), timeout=60)
    assert version.stdout.startswith("v3.")
    chart = tmp_path / "demo"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(
        "apiVersion: v2\nname: demo\nversion: 0.1.0\nkubeVersion: '>=1.30.0-0'\n"
    )
    (chart / "values.yaml").write_text("greeting: hello\n")
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo\n"
        "data:\n  greeting: {{ .Values.greeting | quote }}\n"
        "  kube: {{ .Capabilities.KubeVersion.Version | quote }}\n"
    )
    kube_version = VERSION.lstrip("v")
    lint = common.run(
        [helm, "lint", str(chart), "--kube-version", kube_version], env=kubernetes.kubectl_env()
    )
    assert "1 chart(s) linted, 0 chart(s) failed" in lint.stdout
    result = subprocess.run(
        [helm, "template", "demo", str(chart), "--kube-version", kube_version],
        capture_output=True,
        text=True,
        check=False,
        env=kubernetes.kubectl_env(),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert 'greeting: "hello"' in result.stdout
    assert f'kube: "{VERSION}"' in result.stdout
