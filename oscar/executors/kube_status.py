"""The `cluster` section of `/system/status` on the Kubernetes path, from the API server.

Nodes with their allocatable cpu, memory and GPUs, what the services' running pods requested
of each, whether it is an interLink virtual node, and its conditions — upstream's `ClusterInfo`
(`pkg/types/status.go`). Usage needs a metrics server, which oscar does not assume: it is left
out, as upstream leaves out zero values. Free and schedulable totals count only nodes that take
pods (not cordoned).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from oscar.executors import kube
from oscar.executors.interlink import is_virtual_node
from oscar.models.quantity import parse_quantity

GPU_RESOURCE = "nvidia.com/gpu"


def _amount(resources: dict[str, str] | None, name: str) -> float:
    value = (resources or {}).get(name)
    try:
        return float(parse_quantity(str(value))) if value is not None else 0.0
    except ValueError:
        return 0.0


def _requests(api: Any, namespace: str) -> dict[str, tuple[float, float]]:
    """(cores, bytes) requested by the running pods of the services namespace, per node."""
    from kubernetes import client

    core = client.CoreV1Api(api)
    pods = kube.call(
        "list",
        f"pods in namespace {namespace}",
        core.list_namespaced_pod,
        namespace,
        field_selector="status.phase=Running",
    )
    found: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for pod in pods.items:
        node = pod.spec.node_name or ""
        for container in pod.spec.containers or []:
            requests = (container.resources.requests if container.resources else None) or {}
            found[node][0] += _amount(requests, "cpu")
            found[node][1] += _amount(requests, "memory")
    return {node: (cores, memory) for node, (cores, memory) in found.items()}


def cluster_status(api: Any, namespace: str) -> dict[str, Any]:
    """Upstream's `ClusterInfo` for the cluster `api` talks to."""
    from kubernetes import client

    nodes = kube.call("list", "nodes", client.CoreV1Api(api).list_node).items
    requested = _requests(api, namespace)
    details, free_cores, free_bytes, all_cores, all_bytes, gpus = [], [], [], [], [], 0
    for node in nodes:
        allocatable = node.status.allocatable or {}
        cores, memory = _amount(allocatable, "cpu"), _amount(allocatable, "memory")
        used_cores, used_bytes = requested.get(node.metadata.name, (0.0, 0.0))
        gpu = int(_amount(allocatable, GPU_RESOURCE))
        conditions = [
            {"type": c.type, "status": c.status == "True"} for c in node.status.conditions or []
        ]
        ready = any(c["type"] == "Ready" and c["status"] for c in conditions)
        details.append(
            {
                "name": node.metadata.name,
                "cpu": {
                    "capacity_cores": math.floor(cores),
                    "request_cores": math.ceil(used_cores),
                },
                "memory": {
                    "capacity_bytes": math.floor(memory),
                    "request_bytes": math.ceil(used_bytes),
                },
                "gpu": gpu,
                "is_interlink": is_virtual_node(node.metadata.labels),
                "status": "Ready" if ready else "NotReady",
                "conditions": conditions,
            }
        )
        if ready and not node.spec.unschedulable:
            free_cores.append(max(0, math.floor(cores - used_cores)))
            free_bytes.append(max(0, math.floor(memory - used_bytes)))
            all_cores.append(math.floor(cores))
            all_bytes.append(math.floor(memory))
            gpus += gpu
    return {
        "nodes_count": len(details),
        "metrics": {
            "cpu": {
                "total_free_cores": sum(free_cores),
                "max_free_on_node_cores": max(free_cores, default=0),
                "total_schedulable_cores": sum(all_cores),
                "total_schedulable_on_node_cores": max(all_cores, default=0),
            },
            "memory": {
                "total_free_bytes": sum(free_bytes),
                "max_free_on_node_bytes": max(free_bytes, default=0),
                "total_schedulable_bytes": sum(all_bytes),
                "max_schedulable_on_node_bytes": max(all_bytes, default=0),
            },
            "gpu": {"total_gpu": gpus},
        },
        "nodes": details,
    }
