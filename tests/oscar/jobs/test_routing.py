"""Per-service routing: cloud, hpc, and auto (queue threshold or a GPU request)."""

from __future__ import annotations

from pathlib import Path

from oscar.executors.fake import FakeExecutor
from oscar.jobs.dispatcher import Dispatcher
from oscar.jobs.store import JobStore
from oscar.models.job import Job
from oscar.models.validation import parse_service
from oscar.registry.memory import MemoryRegistry
from tests.fixtures.services import minimal_service


def _dispatcher(tmp_path: Path, threshold: int = 3) -> tuple[Dispatcher, MemoryRegistry, JobStore]:
    registry, jobs = MemoryRegistry(), JobStore(tmp_path / "jobs.db")
    cloud, hpc = FakeExecutor("local"), FakeExecutor("slurm")
    return Dispatcher(jobs, registry, cloud, hpc=hpc, auto_threshold=threshold), registry, jobs


def test_cloud_hpc_and_auto(tmp_path: Path) -> None:
    dispatcher, registry, jobs = _dispatcher(tmp_path)
    for name, fields in {
        "c": {"routing": "cloud"},
        "h": {"routing": "hpc"},
        "a": {"routing": "auto"},
        "g": {"routing": "auto", "enable_gpu": True},
    }.items():
        registry.create(parse_service(minimal_service(name, **fields)))
    backends = {name: dispatcher.submit(name, "e").backend for name in "chag"}  # type: ignore[union-attr]
    assert backends == {"c": "local", "h": "slurm", "a": "local", "g": "slurm"}
    # auto offloads once the service's cloud queue reaches the threshold (jobs stay Pending: the
    # dispatcher is not started).
    queued = [dispatcher.submit("a", "e") for _ in range(3)]
    assert [j.backend for j in queued if isinstance(j, Job)] == ["local", "local", "slurm"]
    jobs.close()


def test_without_an_hpc_executor_everything_runs_in_the_cloud(tmp_path: Path) -> None:
    registry, jobs = MemoryRegistry(), JobStore(tmp_path / "jobs.db")
    dispatcher = Dispatcher(jobs, registry, FakeExecutor("local"))
    registry.create(parse_service(minimal_service("h", routing="hpc")))
    job = dispatcher.submit("h", "e")
    assert job is not None and job.backend == "local"
    jobs.close()
