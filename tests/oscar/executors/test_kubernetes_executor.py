"""The Kubernetes executor against the real control plane: a kwok node runs the upstream Job."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from oscar.executors.kubernetes import KubernetesExecutor
from oscar.models.job import Job, new_job_name
from oscar.models.validation import parse_service
from tests.fixtures.kube import namespace_with_supervisor_volume
from tests.fixtures.services import minimal_service
from tests.services.kubernetes import KubernetesCluster

pytestmark = pytest.mark.kubernetes


def test_job_runs_to_completion_on_a_kwok_node(kubernetes: KubernetesCluster) -> None:
    from kubernetes import client

    node = f"kwok-{uuid.uuid4().hex[:6]}"
    kubernetes.create_fake_node(node)
    api, namespace = namespace_with_supervisor_volume(kubernetes)
    executor = KubernetesExecutor(api, namespace, timeout=120)
    service = parse_service(minimal_service("k8s-svc", token="a" * 64))
    job = Job(name=new_job_name(service.name), service=service.name, event='{"x": 1}')

    result = asyncio.run(executor.run(job, service))

    assert result.succeeded, result.reason
    created = client.BatchV1Api(api).read_namespaced_job(job.name, namespace)
    assert created.spec.backoff_limit == 0
    container = created.spec.template.spec.containers[0]
    assert container.name == "oscar-container"
    env = {e.name: e.value for e in container.env}
    assert env["EVENT"] == '{"x": 1}'
    assert env["JOB_UUID"] == job.name[len("k8s-svc-") :]
    pods = client.CoreV1Api(api).list_namespaced_pod(
        namespace, label_selector=f"job-name={job.name}"
    )
    assert pods.items[0].spec.node_name == node
    assert isinstance(executor.logs(job), str)
    executor.delete(job)
    jobs = client.BatchV1Api(api).list_namespaced_job(namespace).items
    assert all(j.metadata.deletion_timestamp for j in jobs) or jobs == []


def test_resubmitting_the_same_job_is_idempotent(kubernetes: KubernetesCluster) -> None:
    from kubernetes import client

    api, namespace = namespace_with_supervisor_volume(kubernetes)
    executor = KubernetesExecutor(api, namespace, timeout=60)
    service = parse_service(minimal_service("k8s-idem", token="b" * 64))
    job = Job(name=new_job_name(service.name), service=service.name, event="e")
    executor.submit(job, service)
    executor.submit(job, service)  # a restarted control plane re-dispatching the same record
    assert len(client.BatchV1Api(api).list_namespaced_job(namespace).items) == 1


def test_oscar_serve_on_kubernetes(
    kubernetes: KubernetesCluster, start_oscar: Any, tmp_path: Any
) -> None:
    """Services as ConfigMaps, jobs as Kubernetes Jobs, and both survive a restart."""
    from kubernetes import client

    from tests.services import common

    node = f"kwok-{uuid.uuid4().hex[:6]}"
    kubernetes.create_fake_node(node)
    api, namespace = namespace_with_supervisor_volume(kubernetes)
    env = {
        "OSCAR_EXECUTOR": "kubernetes",
        "OSCAR_REGISTRY": "kubernetes",
        "OSCAR_KUBECONFIG": str(kubernetes.kubeconfig),
        "OSCAR_SERVICES_NAMESPACE": namespace,
    }
    server = start_oscar(extra_env=env)
    http = server.client()
    assert http.post("/system/services", json=minimal_service("on-k8s")).status_code == 201
    core = client.CoreV1Api(api)
    assert "script.sh" in core.read_namespaced_config_map("on-k8s", namespace).data
    created = http.post("/job/on-k8s", content=b'{"hello": "k8s"}')
    assert created.status_code == 201
    job_name = created.headers["x-oscar-job-name"]
    common.wait_until(
        lambda: http.get("/system/logs/on-k8s").json()["jobs"][job_name]["status"] == "Succeeded",
        timeout=90,
        what="Kubernetes job Succeeded",
    )
    assert client.BatchV1Api(api).read_namespaced_job(job_name, namespace).status.succeeded == 1
    server.stop()

    # A restarted control plane with a fresh data directory still lists the service.
    again = start_oscar(data_dir=tmp_path / "fresh", extra_env=env)
    names = [s["name"] for s in again.client().get("/system/services").json()]
    assert names == ["on-k8s"]
