"""Registry contract, run against every implementation, plus SQLite durability."""

from __future__ import annotations

import sqlite3
import stat
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from oscar.errors import (
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    ServiceExistsError,
    ServiceNotFoundError,
)
from oscar.models.validation import parse_service
from oscar.registry.base import Registry
from oscar.registry.cached import CachedRegistry
from oscar.registry.kubernetes import KubernetesRegistry
from oscar.registry.memory import MemoryRegistry
from oscar.registry.sqlite import SQLiteRegistry
from tests.fixtures.services import full_service, minimal_service

Factory = Callable[[], Registry]


@pytest.fixture(
    params=[
        "memory",
        "sqlite",
        "cached-sqlite",
        pytest.param("kubernetes", marks=pytest.mark.kubernetes),
    ]
)
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Registry]:
    instance: Registry
    if request.param == "memory":
        instance = MemoryRegistry()
    elif request.param == "sqlite":
        instance = SQLiteRegistry(tmp_path / "r.db")
    elif request.param == "cached-sqlite":
        instance = CachedRegistry(SQLiteRegistry(tmp_path / "r.db"))
    else:
        from kubernetes import client

        cluster = request.getfixturevalue("kubernetes")
        namespace = f"reg-{uuid.uuid4().hex[:8]}"
        api = cluster.api_client()
        client.CoreV1Api(api).create_namespace({"metadata": {"name": namespace}})
        instance = KubernetesRegistry(api, namespace)
    yield instance
    instance.close()


def test_create_get_list_update_delete(registry: Registry) -> None:
    first = parse_service(full_service("b-svc"))
    second = parse_service(minimal_service("a-svc"))
    registry.create(first)
    registry.create(second)
    assert registry.get("b-svc") == first
    assert [s.name for s in registry.list()] == ["a-svc", "b-svc"]

    changed = first.model_copy(update={"image": "alpine:3.21"})
    registry.update(changed)
    assert registry.get("b-svc").image == "alpine:3.21"

    registry.delete("a-svc")
    assert [s.name for s in registry.list()] == ["b-svc"]


def test_duplicate_create_is_rejected(registry: Registry) -> None:
    registry.create(parse_service(minimal_service("dup")))
    with pytest.raises(ServiceExistsError):
        registry.create(parse_service(minimal_service("dup", image="other")))
    assert registry.get("dup").image == "alpine"


@pytest.mark.parametrize("operation", ["get", "update", "delete"])
def test_missing_service(registry: Registry, operation: str) -> None:
    with pytest.raises(ServiceNotFoundError):
        if operation == "update":
            registry.update(parse_service(minimal_service("ghost")))
        else:
            getattr(registry, operation)("ghost")


def test_returned_services_are_copies(registry: Registry) -> None:
    registry.create(parse_service(minimal_service("svc")))
    registry.get("svc").image = "mutated"
    assert registry.get("svc").image == "alpine"


def test_settings_are_stored_beside_the_services(registry: Registry) -> None:
    assert registry.read_setting("allowed_image_repositories") is None
    registry.write_setting("allowed_image_repositories", ["ghcr.io/grycap/"])
    registry.write_setting("allowed_image_repositories", ["ghcr.io/grycap/", "docker.io/x/"])
    assert registry.read_setting("allowed_image_repositories") == [
        "ghcr.io/grycap/",
        "docker.io/x/",
    ]
    assert registry.list() == []  # a setting is not a service


def test_sqlite_settings_survive_reopen(tmp_path: Path) -> None:
    first = SQLiteRegistry(tmp_path / "r.db")
    first.write_setting("allowed_image_repositories", ["a/"])
    first.close()
    assert SQLiteRegistry(tmp_path / "r.db").read_setting("allowed_image_repositories") == ["a/"]


def test_sqlite_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    service = parse_service(full_service("kept"))
    first = SQLiteRegistry(path)
    first.create(service)
    first.close()
    reopened = SQLiteRegistry(path)
    assert reopened.get("kept") == service
    reopened.close()


def test_sqlite_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    SQLiteRegistry(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_sqlite_refuses_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version=99")
    with pytest.raises(ConfigurationError, match="newer oscar"):
        SQLiteRegistry(path)


def test_sqlite_unopenable_path_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot open the registry"):
        SQLiteRegistry(tmp_path / "missing-dir" / "r.db")


@pytest.mark.kubernetes
def test_kubernetes_registry_stores_services_as_upstream(kubernetes: Any) -> None:
    from kubernetes import client

    api = kubernetes.api_client()
    core = client.CoreV1Api(api)
    namespace = f"reg-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": namespace}})
    registry = KubernetesRegistry(api, namespace)
    service = parse_service(full_service("stored"))
    registry.create(service)
    config_map = core.read_namespaced_config_map("stored", namespace)
    assert config_map.data["script.sh"] == service.script
    stored = yaml.safe_load(config_map.data["function_config.yaml"])
    assert stored["name"] == "stored"
    assert stored["environment"]["secrets"] == {}  # secrets never in the ConfigMap
    secret = core.read_namespaced_secret("stored", namespace)
    assert set(secret.data) == {"API_KEY"}
    # A second registry instance (a restarted control plane) sees the same service.
    assert KubernetesRegistry(api, namespace).get("stored") == service
    registry.update(
        service.model_copy(
            update={"environment": service.environment.model_copy(update={"secrets": {}})}
        )
    )
    assert registry.get("stored").environment.secrets == {}
    registry.delete("stored")
    assert core.list_namespaced_secret(namespace, label_selector="oscar_service").items == []


def test_kubernetes_registry_translates_an_unreachable_api_server() -> None:
    """Client errors leave as `oscar.errors` types (the API maps them), never ApiException."""
    from kubernetes import client

    from tests.services.common import free_port

    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{free_port()}"
    configuration.retries = 0
    registry = KubernetesRegistry(client.ApiClient(configuration), "ns")
    with pytest.raises(BackendUnavailableError, match="list ConfigMaps in namespace ns"):
        registry.list()
    with pytest.raises(BackendUnavailableError, match="read ConfigMap x in namespace ns"):
        registry.get("x")


@pytest.mark.kubernetes
def test_kubernetes_registry_in_a_missing_namespace(kubernetes: Any) -> None:
    registry = KubernetesRegistry(kubernetes.api_client(), f"absent-{uuid.uuid4().hex[:8]}")
    with pytest.raises(BackendError, match="create ConfigMap svc in namespace absent-"):
        registry.create(parse_service(minimal_service("svc")))
    with pytest.raises(ServiceNotFoundError):
        registry.get("svc")
    assert registry.list() == []


def test_inputs_matching_follows_creates_updates_and_deletes(registry: Registry) -> None:
    """The services an object's event goes to: same bucket, key inside the input folder."""

    def service(name: str, path: str) -> Any:
        inputs = [{"storage_provider": "minio.default", "path": path}]
        return parse_service(minimal_service(name, input=inputs))

    registry.create(service("match-a", "shared/in"))
    registry.create(service("match-b", "shared/in/deep"))
    registry.create(service("match-c", "other/in"))

    def names(bucket: str, key: str) -> list[str]:
        return [s.name for s in registry.inputs_matching(bucket, key)]

    assert names("shared", "in/deep/x.txt") == ["match-a", "match-b"]
    assert names("shared", "in/x.txt") == ["match-a"]
    assert names("shared", "input/x.txt") == []  # a folder, not a string prefix
    assert names("other", "in/x.txt") == ["match-c"]
    assert names("nowhere", "in/x.txt") == []
    registry.update(service("match-a", "moved/in"))
    assert names("shared", "in/deep/x.txt") == ["match-b"]
    assert names("moved", "in/deep/x.txt") == ["match-a"]
    registry.delete("match-b")
    assert names("shared", "in/deep/x.txt") == []


def test_a_cached_registry_reads_what_the_file_holds_after_a_restart(tmp_path: Path) -> None:
    """Memory is filled from the file at start, and a refused write leaves memory unchanged."""
    first = CachedRegistry(SQLiteRegistry(tmp_path / "r.db"))
    definition = minimal_service(
        "kept", input=[{"storage_provider": "minio.default", "path": "kept/in"}]
    )
    first.create(parse_service(definition))
    first.close()
    second = CachedRegistry(SQLiteRegistry(tmp_path / "r.db"))
    assert [s.name for s in second.inputs_matching("kept", "in/a")] == ["kept"]
    with pytest.raises(ServiceExistsError):
        second.create(parse_service(definition))
    got = second.get("kept")
    got.image = "changed"  # a caller's copy
    assert second.get("kept").image == "alpine"
    second.close()


@pytest.mark.kubernetes
def test_a_kubernetes_registry_with_local_jobs_provisions_its_namespace(
    kubernetes: Any, start_oscar: Callable[..., Any]
) -> None:
    """Services kept in ConfigMaps while jobs run locally: the namespace is made at start (it
    was made only for the Kubernetes executor, and service creation failed with 502)."""
    from kubernetes import client

    namespace = f"reg-{uuid.uuid4().hex[:8]}"
    server = start_oscar(
        extra_env={
            "OSCAR_REGISTRY": "kubernetes",
            "OSCAR_KUBECONFIG": str(kubernetes.kubeconfig),
            "OSCAR_SERVICES_NAMESPACE": namespace,
        }
    )
    answer = server.client().post("/system/services", json=minimal_service("in-configmaps"))
    assert answer.status_code == 201, answer.text
    core = client.CoreV1Api(kubernetes.api_client())
    assert core.read_namespaced_config_map("in-configmaps", namespace).data
