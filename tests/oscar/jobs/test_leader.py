"""Leader election on a real Lease of the test environment's API server."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest

from oscar.executors import kube
from oscar.jobs.leader import LeaderElection
from tests.fixtures.kube import fresh_namespace
from tests.services.kubernetes import KubernetesCluster

pytestmark = pytest.mark.kubernetes

DURATION = 2.0


@pytest.fixture(scope="module")
def lease_namespace(kubernetes: KubernetesCluster) -> Iterator[str]:
    with fresh_namespace(kubernetes, "lease") as namespace:
        yield namespace


def _electors(cluster: KubernetesCluster, namespace: str, *names: str) -> list[LeaderElection]:
    lease = f"lease-{uuid.uuid4().hex[:6]}"
    return [
        LeaderElection(kube.api_client(cluster.kubeconfig), namespace, lease, name, DURATION)
        for name in names
    ]


def _holder(cluster: KubernetesCluster, namespace: str, lease: str) -> str:
    from kubernetes import client

    found = client.CoordinationV1Api(cluster.api_client()).read_namespaced_lease(lease, namespace)
    return found.spec.holder_identity or ""


def test_one_of_two_leads_and_renewing_keeps_it(
    kubernetes: KubernetesCluster, lease_namespace: str
) -> None:
    a, b = _electors(kubernetes, lease_namespace, "replica-a", "replica-b")
    assert a.try_lead() is True
    assert b.try_lead() is False
    assert _holder(kubernetes, lease_namespace, a.name) == "replica-a"
    deadline = time.monotonic() + DURATION * 2
    while time.monotonic() < deadline:  # renewed within its duration: never taken over
        assert a.try_lead() is True
        assert b.try_lead() is False
        time.sleep(DURATION / 4)


def test_a_leader_that_stops_renewing_is_replaced_after_the_duration(
    kubernetes: KubernetesCluster, lease_namespace: str
) -> None:
    a, b = _electors(kubernetes, lease_namespace, "replica-a", "replica-b")
    assert a.try_lead()
    assert not b.try_lead()  # b starts its own clock on a's record now
    started = time.monotonic()
    while not b.try_lead():
        assert time.monotonic() - started < DURATION * 5, "never taken over"
        time.sleep(0.1)
    assert time.monotonic() - started >= DURATION  # not before the Lease ran out
    assert _holder(kubernetes, lease_namespace, a.name) == "replica-b"
    assert a.try_lead() is False  # the old leader sees it lost


def test_a_released_lease_is_taken_at_once(
    kubernetes: KubernetesCluster, lease_namespace: str
) -> None:
    a, b = _electors(kubernetes, lease_namespace, "replica-a", "replica-b")
    assert a.try_lead() and not b.try_lead()
    a.release()
    assert b.try_lead() is True


def test_the_hooks_run_as_leadership_moves_and_never_overlap(
    kubernetes: KubernetesCluster, lease_namespace: str
) -> None:
    a, b = _electors(kubernetes, lease_namespace, "replica-a", "replica-b")
    leading: set[str] = set()
    overlaps: list[set[str]] = []

    def hooks(name: str) -> tuple[object, object]:
        async def lead() -> None:
            leading.add(name)
            if len(leading) > 1:
                overlaps.append(set(leading))

        async def follow() -> None:
            leading.discard(name)

        return lead, follow

    async def until(probe: object, what: str) -> None:
        deadline = time.monotonic() + DURATION * 5
        while not probe():  # type: ignore[operator]
            assert time.monotonic() < deadline, what
            await asyncio.sleep(0.05)

    async def main() -> None:
        lead_a, follow_a = hooks("a")
        lead_b, follow_b = hooks("b")
        a.start(lead_a, follow_a)  # type: ignore[arg-type]
        await until(lambda: leading == {"a"}, "a leads")
        b.start(lead_b, follow_b)  # type: ignore[arg-type]
        await asyncio.sleep(DURATION)  # b keeps trying meanwhile; it must not lead
        assert leading == {"a"}
        await a.stop(follow_a)  # type: ignore[arg-type]
        await until(lambda: leading == {"b"}, "b leads after a stopped")
        await b.stop(follow_b)  # type: ignore[arg-type]
        assert leading == set()

    asyncio.run(main())
    assert overlaps == []
