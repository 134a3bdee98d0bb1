"""`/system/status` on the Kubernetes path reports the cluster's nodes (kwok), interLink ones
marked, with upstream's ClusterInfo totals. Before this it answered the control plane's host."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from kubernetes import client

from tests.fixtures.kube import namespace_with_supervisor_volume
from tests.fixtures.server import RunningServer
from tests.services.kubernetes import KubernetesCluster


@pytest.mark.kubernetes
def test_status_lists_the_kubernetes_nodes(
    kubernetes: KubernetesCluster, start_oscar: Callable[..., RunningServer]
) -> None:
    worker, virtual = f"kwok-{uuid.uuid4().hex[:6]}", f"vk-{uuid.uuid4().hex[:6]}"
    kubernetes.create_fake_node(worker, cpu="16", memory="64Gi")
    kubernetes.create_fake_node(virtual, labels={"type": "virtual-kubelet"}, cpu="8")
    api, namespace = namespace_with_supervisor_volume(kubernetes)
    server = start_oscar(
        extra_env={
            "OSCAR_EXECUTOR": "kubernetes",
            "OSCAR_KUBECONFIG": str(kubernetes.kubeconfig),
            "OSCAR_SERVICES_NAMESPACE": namespace,
        }
    )
    body = server.client().get("/system/status").json()
    cluster = body["cluster"]
    names = {n.metadata.name for n in client.CoreV1Api(api).list_node().items}
    assert cluster["nodes_count"] == len(names) == len(cluster["nodes"])
    nodes = {node["name"]: node for node in cluster["nodes"]}
    assert nodes[worker]["cpu"]["capacity_cores"] == 16
    assert nodes[worker]["memory"]["capacity_bytes"] == 64 * 2**30
    assert nodes[worker]["is_interlink"] is False
    assert nodes[virtual]["is_interlink"] is True
    assert nodes[worker]["status"] == "Ready"
    assert {"type": "Ready", "status": True} in nodes[worker]["conditions"]
    cpu = cluster["metrics"]["cpu"]
    assert cpu["total_schedulable_cores"] >= 16 + 8
    assert cpu["total_schedulable_on_node_cores"] >= 16
    assert 0 <= cpu["total_free_cores"] <= cpu["total_schedulable_cores"]
    assert body["oscar"]["ready"] is True
