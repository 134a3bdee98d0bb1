"""Smoke test: the real control plane schedules a Job's Pod on a kwok node, which completes it."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.services import common
from tests.services.kubernetes import VERSION, KubernetesCluster, bin_dir

pytestmark = pytest.mark.kubernetes


def test_version_is_the_real_one(kubernetes: KubernetesCluster) -> None:
    from kubernetes import client

    info = client.VersionApi(kubernetes.api_client()).get_code()
    assert info.git_version == VERSION


def test_job_pod_is_bound_by_the_scheduler_and_completed_by_kwok(
    kubernetes: KubernetesCluster,
) -> None:
    from kubernetes import client

    api = kubernetes.api_client()
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    node = f"kwok-{uuid.uuid4().hex[:6]}"
    kubernetes.create_fake_node(node)
    namespace = f"smoke-{uuid.uuid4().hex[:6]}"
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

    def succeeded() -> bool:
        status = batch.read_namespaced_job_status("hello", namespace).status
        return bool(status.succeeded)

    common.wait_until(succeeded, timeout=90, interval=0.5, what="job completed by kwok")
    conditions = batch.read_namespaced_job_status("hello", namespace).status.conditions
    assert any(c.type == "Complete" and c.status == "True" for c in conditions)


def test_helm_templates_a_chart(kubernetes: KubernetesCluster, tmp_path: Path) -> None:
    chart = tmp_path / "demo"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: demo\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("greeting: hello\n")
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo\n"
        "data:\n  greeting: {{ .Values.greeting | quote }}\n"
    )
    helm = str(bin_dir() / "helm")
    result = subprocess.run(
        [helm, "template", "demo", str(chart), "--kube-version", VERSION.lstrip("v")],
        capture_output=True,
        text=True,
        check=False,
        env=kubernetes.kubectl_env(),
    )
    assert result.returncode == 0, result.stderr
    assert 'greeting: "hello"' in result.stdout
