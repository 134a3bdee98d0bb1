"""`ServiceManager`: the steps of create/update/delete, and the undo when one of them fails.

Unit tests use the in-memory registry and the fakes below (they fail on demand); the tests at
the end run the same undo against real backends (the embedded store, Kubernetes).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import pytest

from oscar.errors import (
    BackendUnavailableError,
    ForbiddenError,
    ServiceExistsError,
    ServiceNotFoundError,
    StorageError,
)
from oscar.executors.fake import FakeExecutor
from oscar.executors.knative import KnativeBackend
from oscar.jobs.dispatcher import Dispatcher
from oscar.jobs.store import JobStore
from oscar.models.job import Job, new_job_name
from oscar.models.service import Service
from oscar.models.validation import parse_service
from oscar.registry.base import Registry
from oscar.registry.memory import MemoryRegistry
from oscar.services import ServiceManager
from oscar.storage.base import ServiceStorage, buckets_of_others, default_store_paths
from tests.fixtures.services import minimal_service, unique_name


class FakeStorage(ServiceStorage):
    """A fake object store for unit tests: buckets (with their keys) in a dict.

    `refuse_bucket` makes `setup_service` refuse that bucket (after creating the ones before
    it); `fail[method]` makes that method raise before doing anything. `calls` records
    (method, service name); `teardown_saw` whether the registry still held the service being
    torn down (the real providers rewrite event rules from the registry).
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.buckets: dict[str, set[str]] = {}
        self.refuse_bucket: str | None = None
        self.fail: dict[str, Exception] = {}
        self.calls: list[tuple[str, str]] = []
        self.teardown_saw: list[Service | None] = []

    def _enter(self, method: str, service: Service) -> None:
        self.calls.append((method, service.name))
        if method in self.fail:
            raise self.fail[method]

    def existing_buckets(self, service: Service) -> set[str]:
        self._enter("existing_buckets", service)
        return {b for b, _ in default_store_paths(service) if b in self.buckets}

    def setup_service(self, service: Service) -> None:
        self._enter("setup_service", service)
        for bucket, folder in default_store_paths(service):
            if bucket == self.refuse_bucket:
                raise StorageError(f"fake store refuses bucket '{bucket}'")
            keys = self.buckets.setdefault(bucket, set())
            if folder:
                keys.add(f"{folder}/")

    def usage(self) -> tuple[int, int]:
        return len(self.buckets), 0

    def teardown_service(self, service: Service, keep: Collection[str] = ()) -> None:
        self._enter("teardown_service", service)
        self.teardown_saw.append(next((s for s in self.registry.list() if s == service), None))
        in_use = buckets_of_others(self.registry, service) | set(keep)
        for bucket, _ in default_store_paths(service):
            if bucket not in in_use:
                self.buckets.pop(bucket, None)


class FakeKnative(KnativeBackend):
    """A fake Knative backend for unit tests: ksvcs in a dict; `fail_apply`/`fail_delete`."""

    def __init__(self) -> None:  # no Kubernetes client: nothing of the parent is used
        self.namespace = "fake"
        self.ksvcs: dict[str, Service] = {}
        self.fail_apply: Exception | None = None
        self.fail_delete: Exception | None = None

    def apply(self, service: Service) -> None:
        if self.fail_apply is not None:
            raise self.fail_apply
        self.ksvcs[service.name] = service.model_copy(deep=True)

    def delete(self, name: str) -> None:
        if self.fail_delete is not None:
            raise self.fail_delete
        self.ksvcs.pop(name, None)


class FlakyRegistry(MemoryRegistry):
    """The in-memory registry, with `fail[method]` raised instead of doing that method."""

    def __init__(self) -> None:
        super().__init__()
        self.fail: dict[str, Exception] = {}

    def create(self, service: Service) -> None:
        if "create" in self.fail:
            raise self.fail["create"]
        super().create(service)

    def update(self, service: Service) -> None:
        if "update" in self.fail:
            raise self.fail["update"]
        super().update(service)

    def delete(self, name: str) -> None:
        if "delete" in self.fail:
            raise self.fail["delete"]
        super().delete(name)


class PickyDispatcher(Dispatcher):
    """The real dispatcher, except that deleting a job named in `refuse` fails (a fake)."""

    refuse: set[str]

    def delete(self, job: Job) -> None:
        if job.name in self.refuse:
            raise BackendUnavailableError(f"fake backend cannot cancel {job.name}")
        super().delete(job)


class World:
    """A manager over the in-memory registry, the fakes, a real job store and dispatcher."""

    def __init__(self, tmp_path: Path) -> None:
        self.registry = FlakyRegistry()
        self.storage = FakeStorage(self.registry)
        self.knative = FakeKnative()
        self.jobs = JobStore(tmp_path / "jobs.db")
        self.executor = FakeExecutor()
        self.dispatcher = PickyDispatcher(self.jobs, self.registry, self.executor)
        self.dispatcher.refuse = set()
        self.manager = ServiceManager(
            self.registry, self.storage, self.dispatcher, self.jobs, self.knative
        )

    def add_job(self, service: str, backend_id: str | None = None) -> Job:
        job = Job(name=new_job_name(service), service=service, backend="fake")
        assert self.jobs.add(job)
        if backend_id is not None:
            assert self.jobs.set_submitted(job.name, backend_id)
        return job


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    built = World(tmp_path)
    yield built
    built.jobs.close()


def service_with_buckets(name: str, *buckets: str, **fields: Any) -> Service:
    """A service reading `<bucket>/in` for each bucket (not validated: fakes may refuse)."""
    return Service.model_validate(
        minimal_service(name, input=[{"path": f"{b}/in"} for b in buckets], **fields)
    )


# --- create -----------------------------------------------------------------------------------


def test_create_registers_sets_up_and_applies(world: World) -> None:
    name = unique_name()
    given = parse_service(
        minimal_service(
            name,
            token="client-token",
            input=[{"path": f"{name}/in"}],
            storage_providers={"minio": {"default": {"endpoint": "http://client:9000"}}},
        )
    )
    given.owner = "alice"
    returned = world.manager.create(given)
    stored = world.registry.get(name)
    assert stored == returned
    assert re.fullmatch(r"[0-9a-f]{64}", stored.token)
    assert stored.owner == "alice"
    assert "default" not in stored.storage_providers.minio  # always the cluster's own store
    assert world.storage.buckets == {name: {"in/"}}
    assert world.knative.ksvcs[name] == stored
    assert given.token == "client-token"  # the caller's object is not modified


def test_create_of_a_taken_name_changes_nothing(world: World) -> None:
    name = unique_name()
    world.manager.create(service_with_buckets(name, name))
    first = world.registry.get(name)
    world.storage.calls.clear()
    with pytest.raises(ServiceExistsError):
        world.manager.create(service_with_buckets(name, f"{name}-other"))
    assert world.registry.get(name) == first
    assert world.storage.calls == []
    assert set(world.storage.buckets) == {name}


def test_create_refused_half_way_removes_what_it_made_and_keeps_what_existed(
    world: World,
) -> None:
    name = unique_name()
    world.storage.buckets["user-data"] = {"precious.csv"}  # made by someone else, earlier
    world.storage.refuse_bucket = f"{name}-b"
    with pytest.raises(StorageError, match=f"'{name}-b'"):
        world.manager.create(service_with_buckets(name, f"{name}-a", "user-data", f"{name}-b"))
    with pytest.raises(ServiceNotFoundError):
        world.registry.get(name)
    assert world.storage.buckets == {"user-data": {"precious.csv", "in/"}}
    assert name not in world.knative.ksvcs


def test_create_reraises_the_original_error_object(world: World) -> None:
    refusal = StorageError("the fake store is full")
    world.storage.fail["setup_service"] = refusal
    with pytest.raises(StorageError) as raised:
        world.manager.create(service_with_buckets(unique_name(), "bucket-x"))
    assert raised.value is refusal


def test_create_with_storage_unreachable_leaves_no_record(world: World) -> None:
    name = unique_name()
    world.storage.fail["existing_buckets"] = BackendUnavailableError("cannot reach the fake")
    with pytest.raises(BackendUnavailableError):
        world.manager.create(service_with_buckets(name, name))
    assert world.registry.list() == []
    # Nothing was read, so nothing is torn down (a teardown would not know what pre-existed).
    assert [m for m, _ in world.storage.calls] == ["existing_buckets"]


def test_create_refused_by_knative_undoes_storage_and_registry(world: World) -> None:
    name = unique_name()
    world.knative.fail_apply = BackendUnavailableError("cannot reach the fake Kubernetes")
    with pytest.raises(BackendUnavailableError, match="fake Kubernetes"):
        world.manager.create(service_with_buckets(name, name))
    assert world.registry.list() == []
    assert world.storage.buckets == {}
    # The record went before the teardown, so the teardown saw the registry without it.
    assert world.storage.calls[-1] == ("teardown_service", name)
    assert world.storage.teardown_saw == [None]


def test_failing_undo_is_logged_and_the_original_error_raised(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    name = unique_name()
    world.knative.fail_apply = StorageError("original failure")
    world.knative.fail_delete = BackendUnavailableError("ksvc undo failure")
    world.registry.fail["delete"] = BackendUnavailableError("registry undo failure")
    with (
        caplog.at_level(logging.ERROR, logger="oscar.services"),
        pytest.raises(StorageError, match="original failure"),
    ):
        world.manager.create(service_with_buckets(name, name))
    logged = caplog.text
    assert "could not delete its Knative service" in logged
    assert "could not delete its registry record" in logged
    assert "registry undo failure" in logged
    # The later undo steps still ran.
    assert world.storage.buckets == {}


def test_undo_keeps_a_bucket_another_service_uses(world: World) -> None:
    shared, name = unique_name(), unique_name()
    world.manager.create(service_with_buckets(shared, "shared-bucket"))
    world.knative.fail_apply = StorageError("refused")
    with pytest.raises(StorageError):
        world.manager.create(service_with_buckets(name, "shared-bucket", f"{name}-own"))
    assert set(world.storage.buckets) == {"shared-bucket"}
    assert [s.name for s in world.registry.list()] == [shared]


# --- update -----------------------------------------------------------------------------------


def _created(world: World, name: str, **fields: Any) -> Service:
    return world.manager.create(parse_service(minimal_service(name, **fields)))


def test_update_keeps_token_owner_and_blank_secrets(world: World) -> None:
    name = unique_name()
    before = _created(world, name, environment={"secrets": {"KEY": "s3cr3t", "OLD": "x"}})
    changed = parse_service(
        minimal_service(
            name,
            image="alpine:3.21",
            token="t" * 64,
            owner="mallory",
            environment={"secrets": {"KEY": "", "NEW": "fresh"}},
        )
    )
    world.manager.update(changed)
    after = world.registry.get(name)
    assert (after.image, after.token, after.owner) == ("alpine:3.21", before.token, before.owner)
    assert after.environment.secrets == {"KEY": "s3cr3t", "NEW": "fresh"}
    assert world.knative.ksvcs[name] == after


def test_update_of_unknown_service_is_not_found(world: World) -> None:
    with pytest.raises(ServiceNotFoundError):
        world.manager.update(parse_service(minimal_service(unique_name())))
    assert world.storage.calls == []


def test_update_refused_by_authorize_changes_nothing(world: World) -> None:
    name = unique_name()
    before = _created(world, name)
    world.storage.calls.clear()
    seen: list[Service] = []

    def refuse(existing: Service) -> None:
        seen.append(existing)
        raise ForbiddenError(f"you do not own service '{existing.name}'")

    with pytest.raises(ForbiddenError):
        world.manager.update(parse_service(minimal_service(name, image="evil")), authorize=refuse)
    assert seen == [before]
    assert world.registry.get(name) == before
    assert world.storage.calls == []


def test_update_failing_restores_the_previous_definition(world: World) -> None:
    name = unique_name()
    before = _created(world, name, input=[{"path": f"{name}/in"}])
    world.knative.fail_apply = BackendUnavailableError("cannot reach the fake Kubernetes")
    changed = parse_service(
        minimal_service(
            name, image="alpine:3.21", input=[{"path": f"{name}/in"}, {"path": f"{name}-new/in"}]
        )
    )
    world.storage.calls.clear()
    with pytest.raises(BackendUnavailableError):
        world.manager.update(changed)
    assert world.registry.get(name) == before
    assert world.storage.buckets == {name: {"in/"}}  # the new bucket went, the old one stays
    # The registry held the previous definition again (not the new one) during the teardown.
    assert world.storage.teardown_saw == [None]
    # Storage was set up again for the previous definition, last.
    assert world.storage.calls[-1] == ("setup_service", name)
    assert world.knative.ksvcs[name] == before


def test_update_refused_by_storage_half_way(world: World) -> None:
    name = unique_name()
    before = _created(world, name, input=[{"path": f"{name}/in"}])
    world.storage.refuse_bucket = f"{name}-bad"
    changed = service_with_buckets(name, f"{name}-new", f"{name}-bad", image="alpine:3.21")
    with pytest.raises(StorageError, match=f"'{name}-bad'"):
        world.manager.update(changed)
    assert world.registry.get(name) == before
    assert set(world.storage.buckets) == {name}
    assert world.knative.ksvcs[name] == before  # never touched


# --- delete -----------------------------------------------------------------------------------


def test_delete_removes_record_buckets_ksvc_and_jobs(world: World) -> None:
    name, other = unique_name(), unique_name()
    _created(world, name, input=[{"path": f"{name}/in"}, {"path": "shared/in"}])
    _created(world, other, input=[{"path": "shared/in"}])
    running = world.add_job(name, backend_id="fake-77")
    world.add_job(name)
    kept = world.add_job(other)
    world.manager.delete(name)
    with pytest.raises(ServiceNotFoundError):
        world.registry.get(name)
    assert set(world.storage.buckets) == {"shared"}  # the other service still uses it
    assert set(world.knative.ksvcs) == {other}
    assert world.jobs.list(name) == []
    assert world.executor.cancelled == ["fake-77"]  # the running job's work was stopped
    assert running.name in world.executor.cleaned
    assert [j.name for j in world.jobs.list(other)] == [kept.name]


def test_delete_of_unknown_service_is_not_found(world: World) -> None:
    with pytest.raises(ServiceNotFoundError):
        world.manager.delete(unique_name())
    assert world.storage.calls == []


def test_delete_refused_by_authorize_changes_nothing(world: World) -> None:
    name = unique_name()
    before = _created(world, name, input=[{"path": f"{name}/in"}])

    def refuse(existing: Service) -> None:
        raise ForbiddenError(f"you do not own service '{existing.name}'")

    with pytest.raises(ForbiddenError):
        world.manager.delete(name, authorize=refuse)
    assert world.registry.get(name) == before
    assert name in world.storage.buckets and name in world.knative.ksvcs


def test_delete_with_registry_failing_does_nothing_else(world: World) -> None:
    name = unique_name()
    before = _created(world, name, input=[{"path": f"{name}/in"}])
    job = world.add_job(name)
    world.registry.fail["delete"] = BackendUnavailableError("cannot reach the fake registry")
    world.storage.calls.clear()
    with pytest.raises(BackendUnavailableError, match="fake registry"):
        world.manager.delete(name)
    assert world.registry.get(name) == before
    assert world.storage.calls == []
    assert name in world.knative.ksvcs
    assert [j.name for j in world.jobs.list(name)] == [job.name]


def test_delete_is_best_effort_after_the_record_is_gone(world: World) -> None:
    name = unique_name()
    _created(world, name, input=[{"path": f"{name}/in"}])
    stuck, gone = world.add_job(name), world.add_job(name)
    storage_failure = StorageError(f"fake store cannot delete bucket '{name}'")
    world.storage.fail["teardown_service"] = storage_failure
    world.dispatcher.refuse = {stuck.name}
    with pytest.raises(StorageError) as raised:
        world.manager.delete(name)
    assert raised.value is storage_failure  # the first failure, as raised
    assert f"service '{name}' was deleted" in "\n".join(raised.value.__notes__)
    # The service stays deleted and every later step was still tried.
    with pytest.raises(ServiceNotFoundError):
        world.registry.get(name)
    assert name not in world.knative.ksvcs
    assert [j.name for j in world.jobs.list(name)] == [stuck.name]
    assert world.jobs.get(gone.name) is None


# --- real backends ----------------------------------------------------------------------------


def test_embedded_store_refusing_the_second_bucket(tmp_path: Path) -> None:
    """The embedded store refuses the second of two buckets: the first goes, no record stays.

    Validation would refuse that name up front; the manager is given the definition directly,
    as a caller that bypasses validation (or a rule that drifts) would.
    """
    from oscar.models.storage import MinIOProvider
    from oscar.registry.sqlite import SQLiteRegistry
    from oscar.storage.embedded.provider import EmbeddedStorage
    from oscar.storage.embedded.store import ObjectStore

    registry = SQLiteRegistry(tmp_path / "oscar.db")
    objects = ObjectStore(tmp_path / "s3")
    jobs = JobStore(tmp_path / "jobs.db")
    dispatcher = Dispatcher(jobs, registry, FakeExecutor())
    try:
        admin = MinIOProvider(endpoint="http://127.0.0.1:1", access_key="a", secret_key="s")
        storage = EmbeddedStorage(objects, registry, dispatcher, admin)
        manager = ServiceManager(registry, storage, dispatcher, jobs)
        objects.create_bucket("user-data")  # existed before: must survive the undo
        blob, size, md5, _ = objects.write_blob(iter([b"keep me"]))
        objects.commit_object("user-data", "old.txt", blob, size, md5, "text/plain", {})
        name = unique_name()
        service = Service.model_validate(
            minimal_service(
                name,
                input=[{"path": f"{name}/in"}, {"path": "user-data/in"}],
                output=[{"path": "Bad_Bucket/out"}],
            )
        )
        with pytest.raises(StorageError, match="'Bad_Bucket'") as raised:
            manager.create(service)
        assert "InvalidBucketName" in str(raised.value)
        with pytest.raises(ServiceNotFoundError):
            registry.get(name)
        assert [b for b, _ in objects.list_buckets()] == ["user-data"]
        listing = objects.list_objects("user-data", "", "", "", 1000)
        assert [o.key for o in listing.objects] == ["in/", "old.txt"]

        # The same store, set up through the manager, works and tears down completely.
        good = parse_service(minimal_service(name, input=[{"path": f"{name}/in"}]))
        manager.create(good)
        assert objects.bucket_exists(name)
        manager.delete(name)
        assert not objects.bucket_exists(name)
        assert registry.list() == []
    finally:
        jobs.close()
        objects.close()
        registry.close()


@pytest.mark.kubernetes
@pytest.mark.minio
def test_kubernetes_record_removed_when_minio_refuses(
    kubernetes: Any, minio: Any, tmp_path: Path
) -> None:
    """The ConfigMap and Secret are written, the bucket is made, then MinIO refuses the event
    subscription (this MinIO has no `OSCAR` webhook target): all three must go."""
    from kubernetes import client

    from oscar.models.storage import MinIOProvider
    from oscar.registry.kubernetes import KubernetesRegistry
    from oscar.storage.minio import MinIOStorage

    api = kubernetes.api_client()
    core = client.CoreV1Api(api)
    namespace = f"mgr-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": namespace}})
    registry = KubernetesRegistry(api, namespace)
    provider = MinIOProvider(
        endpoint=minio.endpoint,
        access_key=minio.access_key,
        secret_key=minio.secret_key,
        region=minio.region,
    )
    jobs = JobStore(tmp_path / "jobs.db")
    dispatcher = Dispatcher(jobs, registry, FakeExecutor())
    manager = ServiceManager(registry, MinIOStorage(provider, registry), dispatcher, jobs)
    name = unique_name()
    service = parse_service(
        minimal_service(
            name, input=[{"path": f"{name}/in"}], environment={"secrets": {"KEY": "value"}}
        )
    )
    try:
        with pytest.raises(StorageError, match=f"bucket '{name}'"):
            manager.create(service)
        with pytest.raises(ServiceNotFoundError):
            registry.get(name)
        labelled = {"label_selector": f"oscar_service={name}"}
        assert core.list_namespaced_config_map(namespace, **labelled).items == []
        assert core.list_namespaced_secret(namespace, **labelled).items == []
        assert not minio.client().bucket_exists(name)
    finally:
        jobs.close()
        core.delete_namespace(namespace)
