"""The job-record contract, run against every store: SQLite, and the Kubernetes Jobs themselves
(`OSCAR_JOB_STORE=kubernetes`, on the real API server of the test environment)."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from oscar.executors.kubernetes import EVENT_ENV_MAX, KubernetesExecutor
from oscar.jobs.base import JobRecords
from oscar.jobs.store import JobStore
from oscar.models.job import Job, JobStatus, new_job_name, utcnow
from oscar.models.validation import parse_service
from oscar.registry.memory import MemoryRegistry
from tests.fixtures.kube import fresh_namespace
from tests.fixtures.services import minimal_service, unique_name
from tests.services.kubernetes import KubernetesCluster

EVENT = json.dumps({"Key": "in/ünïcode file.txt", "Records": [{"s3": {"object": {"size": 3}}}]})


class Stores:
    """Makes stores of one kind, each with a service `svc` (and `other`) defined."""

    def __init__(self, make: Callable[[MemoryRegistry], JobRecords], backend: str) -> None:
        self.registry = MemoryRegistry()
        self.backend = backend
        self.service = unique_name("svc")
        self.other = unique_name("other")
        for name in (self.service, self.other):
            self.registry.create(parse_service(minimal_service(name, token=secrets.token_hex(16))))
        self.make = make

    def store(self) -> JobRecords:
        return self.make(self.registry)

    def job(self, service: str | None = None, **fields: Any) -> Job:
        service = service or self.service
        return Job(
            name=new_job_name(service), service=service, event=EVENT, backend=self.backend,
            **fields,
        )  # fmt: skip


@pytest.fixture(scope="module")
def kubernetes_namespace(kubernetes: KubernetesCluster) -> Iterator[str]:
    with fresh_namespace(kubernetes, "records") as namespace:
        yield namespace


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("kubernetes", id="kubernetes", marks=pytest.mark.kubernetes),
    ]
)
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Stores:
    if request.param == "sqlite":
        path = tmp_path / "jobs.db"
        return Stores(lambda _: JobStore(path), "local")
    from oscar.executors import kube
    from oscar.jobs.kube_store import KubernetesJobStore

    cluster: KubernetesCluster = request.getfixturevalue("kubernetes")
    namespace: str = request.getfixturevalue("kubernetes_namespace")

    def make(registry: MemoryRegistry) -> JobRecords:
        api = kube.api_client(cluster.kubeconfig)
        executor = KubernetesExecutor(api, namespace, keep_records=True)
        return KubernetesJobStore(
            api, namespace, lambda job: executor.manifest(job, registry.get(job.service))
        )

    return Stores(make, "kubernetes")


def test_a_job_is_kept_with_every_field(stores: Stores) -> None:
    store = stores.store()
    job = stores.job(owner="user-subject@issuer")
    assert store.add(job)
    again = stores.store().get(job.name)  # another store (replica) reads the same record
    assert again is not None
    assert again.model_dump() == job.model_dump(exclude={"queued_at"}) | {"queued_at": job.created}
    assert store.get(new_job_name(stores.service)) is None


def test_a_redelivered_event_is_refused_by_its_identity(stores: Stores) -> None:
    store = stores.store()
    dedup = f"minio:bucket/in/x.txt:{uuid.uuid4()}"
    first = stores.job().model_copy(update={"name": new_job_name(stores.service, dedup)})
    assert store.add(first, dedup)
    second = stores.job().model_copy(update={"name": new_job_name(stores.service, dedup)})
    assert not stores.store().add(second, dedup)
    assert [j.name for j in store.summaries(stores.service)] == [first.name]


def test_listings_counts_and_the_queue(stores: Stores) -> None:
    store = stores.store()
    jobs = [stores.job(created=utcnow() + timedelta(milliseconds=i)) for i in range(4)]
    other = stores.job(stores.other, created=jobs[-1].created + timedelta(milliseconds=1))
    for job in [*jobs, other]:
        assert store.add(job)
    names = [j.name for j in jobs]
    assert store.set_submitted(names[1], "h1") and store.mark_running(names[1])
    assert store.set_submitted(names[2], "h2")
    assert store.finish(names[3], JobStatus.SUCCEEDED, 0, "")

    summaries = store.summaries(stores.service)
    assert [j.name for j in summaries] == names  # oldest first
    assert all(j.event == "" for j in summaries)
    assert [j.name for j in store.summaries(stores.service, JobStatus.RUNNING)] == [names[1]]
    assert store.count(stores.service) == 4
    assert store.count(stores.service, JobStatus.PENDING) == 2
    assert store.count_active(stores.service) == 3
    counts = store.counts()
    assert counts[stores.service] == {"Pending": 2, "Running": 1, "Succeeded": 1}
    assert counts[stores.other] == {"Pending": 1}

    def queued(**options: Any) -> list[str]:  # other tests' records share the namespace
        found = store.queued(stores.backend, **options)
        return [j.name for j in found if j.service in (stores.service, stores.other)]

    assert queued() == [names[0], other.name]
    assert queued(before=jobs[0].created) == []
    assert queued(before=jobs[1].created) == [names[0]]
    assert len(store.queued(stores.backend, limit=1)) == 1
    flight = {j.name: j.backend_id for j in store.in_flight(stores.backend)}
    assert flight == {names[1]: "h1", names[2]: "h2"}
    assert {j.name for j in store.with_status(JobStatus.RUNNING)} >= {names[1]}
    assert store.events_of([names[0], other.name, "gone-0"]) == {
        names[0]: EVENT,
        other.name: EVENT,
    }
    listed = store.list(stores.service)
    assert [j.event for j in listed] == [EVENT] * 4


def test_state_changes_are_guarded_by_the_state_they_expect(stores: Stores) -> None:
    store = stores.store()
    job = stores.job()
    store.add(job)
    assert store.set_waiting(job.name, "no node fits") is True
    assert store.get(job.name).waiting_reason == "no node fits"
    assert store.set_submitted(job.name, "h")
    assert not stores.store().set_submitted(job.name, "h-again")  # handed over once only
    assert store.get(job.name).waiting_reason == ""
    assert store.mark_running(job.name)
    assert not store.mark_running(job.name)
    running = store.get(job.name)
    assert running.status == JobStatus.RUNNING and running.attempts == 1
    assert running.started_at is not None
    assert store.requeue(job.name, "re-run: the server stopped")
    requeued = store.get(job.name)
    assert (requeued.status, requeued.backend_id, requeued.started_at) == (
        JobStatus.PENDING,
        None,
        None,
    )
    assert requeued.reason == "re-run: the server stopped" and requeued.attempts == 1
    assert store.set_submitted(job.name, "h2") and store.mark_running(job.name)
    assert store.finish(job.name, JobStatus.FAILED, 3, "exit 3")
    assert not store.finish(job.name, JobStatus.SUCCEEDED, 0, "")  # ended once
    assert not store.requeue(job.name, "no")
    assert not store.set_waiting(job.name, "no")
    ended = store.get(job.name)
    assert (ended.status, ended.exit_code, ended.reason, ended.attempts) == (
        JobStatus.FAILED,
        3,
        "exit 3",
        2,
    )
    assert ended.finished_at >= ended.started_at


def test_a_job_that_never_ran_gets_both_times_when_it_ends(stores: Stores) -> None:
    store = stores.store()
    job = stores.job()
    store.add(job)
    assert store.finish(job.name, JobStatus.FAILED, None, "queue timeout")
    ended = store.get(job.name)
    assert ended.started_at == ended.finished_at and ended.exit_code is None


def test_deleting_returns_the_record_once(stores: Stores) -> None:
    store = stores.store()
    job = stores.job()
    store.add(job)
    deleted = store.delete(job.name)
    assert deleted is not None and deleted.event == EVENT
    assert store.get(job.name) is None
    assert store.delete(job.name) is None
    assert not store.set_submitted(job.name, "h")
    assert not store.finish(job.name, JobStatus.SUCCEEDED, 0, "")
    assert job.name not in {j.name for j in store.summaries(stores.service)}


def test_an_event_refused_outright_is_kept_failed_with_its_body(stores: Stores) -> None:
    store = stores.store()
    now = utcnow()
    job = stores.job(
        status=JobStatus.FAILED, started_at=now, finished_at=now, reason="outside the inputs"
    )
    assert store.add(job)
    kept = store.get(job.name)
    assert (kept.status, kept.reason, kept.event) == (JobStatus.FAILED, job.reason, EVENT)
    assert job.name not in {j.name for j in store.queued(stores.backend)}


@pytest.mark.kubernetes
def test_an_event_too_large_for_a_job_is_recorded_failed_not_lost(
    kubernetes: KubernetesCluster, kubernetes_namespace: str
) -> None:
    """Kubernetes only: the Job that would carry it cannot be made, so the record says why."""
    from oscar.executors import kube
    from oscar.jobs.kube_store import RECORD_EVENT_MAX, KubernetesJobStore

    registry = MemoryRegistry()
    service = parse_service(minimal_service(unique_name("big"), token=secrets.token_hex(16)))
    registry.create(service)
    api = kube.api_client(kubernetes.kubeconfig)
    executor = KubernetesExecutor(api, kubernetes_namespace, keep_records=True)
    store = KubernetesJobStore(
        api, kubernetes_namespace, lambda job: executor.manifest(job, registry.get(job.service))
    )
    event = json.dumps({"pad": "x" * EVENT_ENV_MAX})
    job = Job(name=new_job_name(service.name), service=service.name, event=event)
    job = job.model_copy(update={"backend": "kubernetes"})
    assert store.add(job)
    kept = store.get(job.name)
    assert kept is not None and kept.status == JobStatus.FAILED
    assert "EVENT variable" in kept.reason and kept.finished_at is not None
    assert kept.event == event[:RECORD_EVENT_MAX] or kept.event == event
    assert job.name not in {j.name for j in store.queued("kubernetes")}
