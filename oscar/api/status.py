"""`GET /system/status`: the cluster's resources, its jobs and its object store, in upstream's
shape (`pkg/types/status.go`), and the 501 answers of routes that stay out of scope.

On the embedded default the cluster is this host, one node: its cores and memory, what running
jobs requested of them (their services' `cpu` and `memory`), and no GPU. With the Kubernetes
executor it is the cluster's nodes (`oscar.executors.kube_status`). With the Slurm HPC backend an
extra `hpc` key lists its partitions (`sinfo`). Job counts come from
the job records (upstream counts Kubernetes Jobs and pods: `pods.states` are our job statuses).
"""

from __future__ import annotations

import math
import os
import socket
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request

from oscar.api.deps import State, UserPrincipal
from oscar.api.state import AppState
from oscar.errors import NotSupportedError, ServiceNotFoundError
from oscar.models.job import JobStatus
from oscar.models.quantity import parse_quantity

router = APIRouter(tags=["system"])
MEMINFO = Path("/proc/meminfo")


def _meminfo() -> dict[str, int]:
    """`/proc/meminfo` in bytes (empty where there is none)."""
    found = {}
    try:
        for line in MEMINFO.read_text().splitlines():
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts and parts[0].isdigit():
                found[key] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    except OSError:
        pass
    return found


def _requested(state: AppState) -> tuple[float, int]:
    """(cores, bytes) the running jobs' services asked for."""
    cores, memory = 0.0, 0
    for job in state.job_store.with_status(JobStatus.RUNNING):
        try:
            service = state.registry.get(job.service)
        except ServiceNotFoundError:
            continue
        cores += float(parse_quantity(service.cpu))
        memory += math.ceil(parse_quantity(service.memory))
    return cores, memory


def host_status(state: AppState) -> dict[str, Any]:
    """The `cluster` section for the embedded default: this host as the only node."""
    capacity_cores = os.cpu_count() or 1
    meminfo = _meminfo()
    total = meminfo.get("MemTotal", 0)
    available = meminfo.get("MemAvailable", meminfo.get("MemFree", 0))
    requested_cores, requested_bytes = _requested(state)
    free_cores = max(0, math.floor(capacity_cores - requested_cores))
    free_bytes = max(0, min(available, total - requested_bytes))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    node = {
        "name": socket.gethostname(),
        "cpu": {
            "capacity_cores": capacity_cores,
            "usage_cores": min(capacity_cores, round(load)),
            "request_cores": math.ceil(requested_cores),
        },
        "memory": {
            "capacity_bytes": total,
            "usage_bytes": max(0, total - available),
            "request_bytes": requested_bytes,
        },
        "gpu": 0,
        "is_interlink": False,
        "status": "Ready",
        "conditions": [{"type": "Ready", "status": True}],
    }
    return {
        "nodes_count": 1,
        "metrics": {
            "cpu": {
                "total_free_cores": free_cores,
                "max_free_on_node_cores": free_cores,
                "total_schedulable_cores": capacity_cores,
                "total_schedulable_on_node_cores": capacity_cores,
            },
            "memory": {
                "total_free_bytes": free_bytes,
                "max_free_on_node_bytes": free_bytes,
                "total_schedulable_bytes": total,
                "max_schedulable_on_node_bytes": total,
            },
            "gpu": {"total_gpu": 0},
        },
        "nodes": [node],
    }


def oscar_status(state: AppState) -> dict[str, Any]:
    """The `oscar` section: readiness and job counts by status."""
    by_status: dict[str, int] = {status.value: 0 for status in JobStatus}
    for counts in state.job_store.counts().values():
        for status, n in counts.items():
            by_status[status] = by_status.get(status, 0) + n
    settings = state.settings
    return {
        "deployment_name": settings.name,
        "ready": True,
        "deployment": {
            "available_replicas": 1,
            "ready_replicas": 1,
            "replicas": 1,
            "creation_timestamp": None,
            "strategy": "",
            "labels": {},
        },
        "jobs_count": sum(by_status.values()),
        "pods": {
            "total": by_status.get("Pending", 0) + by_status.get("Running", 0),
            "states": by_status,
        },
        "oidc": {
            "enabled": state.oidc is not None,
            "issuers": state.oidc.issuers if state.oidc is not None else [],
            "groups": list(settings.oidc_groups),
        },
    }


@router.get("/system/status", summary="Resources, jobs and object store of this cluster")
def status(state: State, _: UserPrincipal) -> dict[str, Any]:
    """Upstream's `StatusInfo`: `cluster` (nodes, free and schedulable cpu/memory, GPUs),
    `oscar` (readiness, job counts) and `minio` (buckets and objects of the default store);
    plus, with an HPC backend, `hpc` (its Slurm partitions; upstream has no such key)."""
    buckets, objects = state.storage.usage()
    settings = state.settings
    if state.kube is not None and settings.executor == "kubernetes":
        from oscar.executors.kube_status import cluster_status

        cluster = cluster_status(state.kube, settings.services_namespace)
    else:
        cluster = host_status(state)
    answer = {
        "cluster": cluster,
        "oscar": oscar_status(state),
        "minio": {"buckets_count": buckets, "total_objects": objects},
    }
    hpc = state.dispatcher.hpc
    if hpc is not None and (resources := hpc.resources()) is not None:
        answer["hpc"] = resources
    return answer


_QUOTAS = (
    "per-user resource quotas are not supported by oscar yet; jobs are bounded by "
    "OSCAR_MAX_JOBS_PER_SERVICE and each backend's concurrency"
)
_OUT_OF_SCOPE = {
    "/system/volumes": "managed volumes (PersistentVolumeClaims) are not supported by oscar",
    "/system/volumes/{name}": "managed volumes (PersistentVolumeClaims) are not supported by oscar",
    "/system/federation/{name}": "federation between OSCAR clusters is not supported by oscar yet",
    # Upstream's are Kueue ClusterQueues per OIDC user. What bounds use here:
    # OSCAR_MAX_JOBS_PER_SERVICE and each backend's concurrency limit.
    "/system/quotas/user": _QUOTAS,
    "/system/quotas/user/{user_id}": _QUOTAS,
}


def _not_supported(request: Request, _: UserPrincipal) -> None:
    """501 with a sentence: the route is known, its feature is not offered here."""
    template = request.scope["route"].path
    raise NotSupportedError(_OUT_OF_SCOPE[template])


for _path in _OUT_OF_SCOPE:
    router.add_api_route(
        _path,
        _not_supported,
        methods=["GET", "POST", "PUT", "DELETE"],
        status_code=501,
        summary="Not supported by oscar (501)",
        include_in_schema=True,
    )
