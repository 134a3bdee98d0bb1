"""The bridge-definition contract, run against every store: SQLite, and Secrets on the real API
server (`OSCAR_REGISTRY=kubernetes`), where two replicas' stores see each other's changes."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from oscar.bridges.records import BridgeRecords
from oscar.bridges.store import BridgeStore
from oscar.errors import ConflictError, NotFoundError
from tests.fixtures.kube import fresh_namespace
from tests.services.kubernetes import KubernetesCluster


@pytest.fixture(scope="module")
def bridge_namespace(kubernetes: KubernetesCluster) -> Iterator[str]:
    with fresh_namespace(kubernetes, "bridges") as namespace:
        yield namespace


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("kubernetes", id="kubernetes", marks=pytest.mark.kubernetes),
    ]
)
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], BridgeRecords]:
    """Makes stores over the same state (two replicas, or one process reopening its file)."""
    if request.param == "sqlite":
        opened: list[BridgeStore] = []

        def sqlite() -> BridgeRecords:
            opened.append(BridgeStore(tmp_path / "bridges.db"))
            return opened[-1]

        request.addfinalizer(lambda: [store.close() for store in opened])
        return sqlite
    from oscar.bridges.kube_store import KubernetesBridgeStore
    from oscar.executors import kube

    cluster: KubernetesCluster = request.getfixturevalue("kubernetes")
    namespace: str = request.getfixturevalue("bridge_namespace")
    return lambda: KubernetesBridgeStore(kube.api_client(cluster.kubeconfig), namespace)


def _spec(name: str, folder: str = "/in") -> dict[str, object]:
    return {"name": name, "type": "webdav", "folder": folder, "credentials": {"password": "s3"}}


def test_definitions_round_trip_and_names_are_unique(stores: Callable[[], BridgeRecords]) -> None:
    one, other = stores(), stores()
    name = f"b-{uuid.uuid4().hex[:6]}"
    one.create(name, _spec(name))
    assert other.get(name) == _spec(name)  # the other replica sees it, credentials included
    assert name in [spec["name"] for spec in other.list()]
    with pytest.raises(ConflictError):
        other.create(name, _spec(name))
    other.update(name, _spec(name, "/elsewhere"), reset_cursor=False)
    assert one.get(name)["folder"] == "/elsewhere"
    one.delete(name)
    for call in (lambda: other.get(name), lambda: other.delete(name)):
        with pytest.raises(NotFoundError):
            call()
    with pytest.raises(NotFoundError):
        other.update(name, _spec(name), reset_cursor=True)
    assert name not in [spec["name"] for spec in one.list()]


def test_cursors_move_together_and_reset_with_the_definition(
    stores: Callable[[], BridgeRecords],
) -> None:
    one, other = stores(), stores()
    name = f"c-{uuid.uuid4().hex[:6]}"
    one.create(name, _spec(name))
    assert one.cursor(name) == {}
    one.move_cursor(name, {"a.txt": "v1", "b.txt": "v1"})
    other.move_cursor(name, {"c.txt": "v1"}, remove=["a.txt"])
    assert one.cursor(name) == {"b.txt": "v1", "c.txt": "v1"}
    one.update(name, _spec(name), reset_cursor=False)
    assert other.cursor(name) == {"b.txt": "v1", "c.txt": "v1"}
    one.update(name, _spec(name, "/moved"), reset_cursor=True)
    assert other.cursor(name) == {}
    one.delete(name)
    other.move_cursor(name, {"late.txt": "v1"})  # a bridge deleted meanwhile: nothing written
    assert one.cursor(name) == {}
    with pytest.raises(NotFoundError):
        one.get(name)


def test_concurrent_cursor_moves_from_two_replicas_lose_nothing(
    stores: Callable[[], BridgeRecords],
) -> None:
    replicas = [stores(), stores()]
    name = f"r-{uuid.uuid4().hex[:6]}"
    replicas[0].create(name, _spec(name))

    errors: list[Exception] = []

    def writer(index: int) -> None:
        try:
            for entry in range(15):
                replicas[index].move_cursor(name, {f"{index}-{entry}": "v"})
        except Exception as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(replicas[1].cursor(name)) == 30
