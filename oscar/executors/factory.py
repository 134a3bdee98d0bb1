"""`make_executors`: the cloud executor and the optional HPC one the settings name."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from oscar.executors.base import Executor
from oscar.models.storage import MinIOProvider
from oscar.settings import Settings


def _local(settings: Settings, store: MinIOProvider, _: Any) -> Executor:
    from oscar.executors.local import LocalExecutor
    from oscar.executors.proctree import JobProcesses

    # One process scope per data directory: servers side by side never reap each other's jobs.
    scope = hashlib.sha256(str(settings.data_dir.resolve()).encode()).hexdigest()[:12]
    processes = JobProcesses(scope, use_cgroups=settings.job_cgroups)
    limit = settings.max_concurrent_jobs or LocalExecutor.default_concurrency
    return LocalExecutor(
        settings.data_dir / "jobs",
        store,
        settings.job_timeout,
        processes,
        warm=settings.supervisor_pool,
        pool_size=2 * limit,
    )


def _kubernetes(settings: Settings, store: MinIOProvider, kube: Any) -> Executor:
    from oscar.executors.kubernetes import KubernetesExecutor
    from oscar.executors.kubernetes_job import SupervisorSource

    return KubernetesExecutor(
        kube,
        settings.services_namespace,
        settings.job_timeout,
        store=store,
        job_store_endpoint=settings.job_minio_endpoint,
        cloud_node=settings.cloud_interlink_node,
        keep_records=settings.job_store == "kubernetes",
        supervisor=SupervisorSource.from_settings(
            settings.supervisor_image, settings.supervisor_command
        ),
    )


def _slurm(settings: Settings, store: MinIOProvider, _: Any) -> Executor:
    from oscar.executors.slurm import SlurmExecutor
    from oscar.executors.slurm_commands import LocalTransport, SSHTransport

    env = {"SLURM_CONF": str(settings.slurm_conf)} if settings.slurm_conf else {}
    transport = (
        SSHTransport(settings.slurm_ssh_host, env)
        if settings.slurm_ssh_host
        else LocalTransport(env)
    )
    executor = SlurmExecutor(
        settings.data_dir / "slurm-jobs", store, transport, settings.job_timeout
    )
    executor.batch_size = settings.slurm_batch_size
    executor.batch_window = settings.slurm_batch_window
    executor.array_tasks = settings.slurm_array_tasks
    return executor


CLOUD: dict[str, Callable[[Settings, MinIOProvider, Any], Executor]] = {
    "local": _local,
    "kubernetes": _kubernetes,
}
HPC: dict[str, Callable[[Settings, MinIOProvider, Any], Executor]] = {"slurm": _slurm}


def make_executors(
    settings: Settings, store: MinIOProvider, kube: Any = None
) -> tuple[Executor, Executor | None]:
    """(cloud executor, HPC executor or None) for `settings`."""
    cloud = CLOUD[settings.executor](settings, store, kube)
    hpc = HPC[settings.hpc_executor](settings, store, kube) if settings.hpc_executor else None
    return cloud, hpc


def concurrency_limits(settings: Settings, cloud: Executor, hpc: Executor | None) -> dict[str, int]:
    """The per-backend limits the settings set (backends not named keep their defaults)."""
    limits = {}
    if settings.max_concurrent_jobs:
        limits[cloud.name] = settings.max_concurrent_jobs
    if hpc is not None and settings.hpc_max_concurrent_jobs:
        limits[hpc.name] = settings.hpc_max_concurrent_jobs
    return limits
