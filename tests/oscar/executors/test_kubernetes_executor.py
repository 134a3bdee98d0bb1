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


def test_interlink_virtual_node_gets_the_interlink_pod(kubernetes: KubernetesCluster) -> None:
    import base64

    from kubernetes import client

    node = f"vk-slurm-{uuid.uuid4().hex[:6]}"
    kubernetes.create_fake_node(
        node,
        labels={"type": "virtual-kubelet"},
        taints=[
            {"key": "virtual-node.interlink/no-schedule", "value": "true", "effect": "NoSchedule"}
        ],
    )
    api, namespace = namespace_with_supervisor_volume(kubernetes)
    executor = KubernetesExecutor(api, namespace, timeout=120)
    service = parse_service(
        minimal_service(
            "hpc-svc",
            token="c" * 64,
            cpu="2",
            memory="4Gi",
            interlink_node_name=node,
            annotations={"job.vk.io/flags": "--time=00:30:00", "slurm-job.vk.io/pre-exec": "ml x"},
        )
    )
    job = Job(name=new_job_name(service.name), service=service.name, event='{"e": 1}')
    result = asyncio.run(executor.run(job, service))
    assert result.succeeded, result.reason

    created = client.BatchV1Api(api).read_namespaced_job(job.name, namespace)
    pod_spec = created.spec.template.spec
    assert pod_spec.node_selector == {"kubernetes.io/hostname": node}
    assert any(
        t.key == "virtual-node.interlink/no-schedule" and t.operator == "Exists"
        for t in pod_spec.tolerations
    )
    assert pod_spec.init_containers[0].command == ["/bin/sh", "-c", "cp -r /supervisor/* /data"]
    volumes = {v.name: v for v in pod_spec.volumes}
    assert volumes["supervisor-share-data"].empty_dir is not None
    assert "oscar-volume" not in volumes  # no host volume: it cannot follow the pod to HPC
    container = pod_spec.containers[0]
    assert container.args == ["-c", "echo $EVENT | base64 -d | /data/supervisor"]
    event = next(e.value for e in container.env if e.name == "EVENT")
    assert base64.b64decode(event) == b'{"e": 1}'
    assert container.resources.limits == {"cpu": "2", "memory": "4Gi"}
    annotations = created.spec.template.metadata.annotations
    assert annotations["slurm-job.vk.io/flags"] == "--time=00:30:00"
    assert "job.vk.io/flags" not in annotations
    assert annotations["slurm-job.vk.io/pre-exec"] == "ml x"
    pods = client.CoreV1Api(api).list_namespaced_pod(
        namespace, label_selector=f"job-name={job.name}"
    )
    assert pods.items[0].spec.node_name == node  # the scheduler bound it to the virtual node


def test_a_normal_node_name_keeps_the_cloud_pod(kubernetes: KubernetesCluster) -> None:
    node = f"plain-{uuid.uuid4().hex[:6]}"
    kubernetes.create_fake_node(node)
    api, namespace = namespace_with_supervisor_volume(kubernetes)
    executor = KubernetesExecutor(api, namespace, timeout=60)
    service = parse_service(minimal_service("cloud-svc", interlink_node_name=node))
    job = Job(name=new_job_name(service.name), service=service.name, event="e")
    executor.submit(job, service)
    from kubernetes import client

    created = client.BatchV1Api(api).read_namespaced_job(job.name, namespace)
    assert created.spec.template.spec.node_selector is None
