"""A stateless control plane: two `oscar serve` replicas on the real API server and MinIO.

Services are ConfigMaps, job records are the Kubernetes Jobs (`OSCAR_JOB_STORE=kubernetes`)
and one replica at a time runs the reconcile loops (`OSCAR_LEADER_ELECTION`). Both replicas
answer the same; killing the leader (SIGKILL: no release, no clean-up) loses nothing and runs
nothing twice. The replicas reach the cluster as the chart's ServiceAccount, not as admin.
MinIO's webhook and the clients reach them through `tests/fixtures/balancer.py`, a stand-in
for the Service's load balancing (kube-proxy cannot run here).
"""

from __future__ import annotations

import io
import signal
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.balancer import balancing
from tests.fixtures.helm import chart_service_account_kubeconfig
from tests.fixtures.server import RunningServer, free_port
from tests.fixtures.services import minimal_service
from tests.services import common
from tests.services import minio as minio_service
from tests.services.kubernetes import KubernetesCluster

pytestmark = [pytest.mark.kubernetes, pytest.mark.minio, pytest.mark.slow]

EVENTS_TOKEN = "events-token-" + uuid.uuid4().hex
LEASE_SECONDS = 3


def _jobs(http: httpx.Client, service: str) -> dict[str, str]:
    answer = http.get(f"/system/logs/{service}")
    assert answer.status_code == 200, answer.text
    return {name: job["status"] for name, job in answer.json()["jobs"].items()}


def _lease_holder(cluster: KubernetesCluster, namespace: str) -> str:
    from kubernetes import client

    coordination = client.CoordinationV1Api(cluster.api_client())
    try:
        lease = coordination.read_namespaced_lease("oscar-control-plane", namespace)
    except client.ApiException:
        return ""
    return lease.spec.holder_identity or ""


def _started_pods(cluster: KubernetesCluster, namespace: str, job: str) -> int:
    from kubernetes import client

    pods = client.CoreV1Api(cluster.api_client()).list_namespaced_pod(
        namespace, label_selector=f"job-name={job}"
    )
    return sum(1 for p in pods.items if p.status and p.status.start_time)


def test_two_replicas_agree_and_losing_the_leader_loses_nothing(
    kubernetes: KubernetesCluster,
    start_oscar: Callable[..., RunningServer],
    tmp_path: Path,
) -> None:
    kubernetes.create_fake_node(f"kwok-{uuid.uuid4().hex[:6]}")
    release = f"rel-{uuid.uuid4().hex[:6]}"
    namespace = f"svc-{uuid.uuid4().hex[:6]}"
    kubeconfig = chart_service_account_kubeconfig(
        kubernetes, release, namespace, tmp_path / "sa.kubeconfig"
    )
    ports = {"replica-a": free_port(), "replica-b": free_port()}
    with balancing(list(ports.values())) as service_lb:
        webhook = minio_service.oscar_webhook_env(
            service_lb.port, EVENTS_TOKEN, tmp_path / "minio-queue"
        )
        with minio_service.running(tmp_path / "minio", extra_env=webhook) as minio:
            env = {
                **minio_service.oscar_storage_env(minio, EVENTS_TOKEN),
                "OSCAR_EXECUTOR": "kubernetes",
                "OSCAR_REGISTRY": "kubernetes",
                "OSCAR_JOB_STORE": "kubernetes",
                "OSCAR_LEADER_ELECTION": "true",
                "OSCAR_LEASE_DURATION": str(LEASE_SECONDS),
                "OSCAR_KUBECONFIG": str(kubeconfig),
                "OSCAR_SERVICES_NAMESPACE": namespace,
                "OSCAR_LEASE_NAMESPACE": release,  # as the chart sets it
            }
            replicas = {
                name: start_oscar(
                    data_dir=tmp_path / name,
                    port=port,
                    extra_env={**env, "OSCAR_POD_NAME": name},
                )
                for name, port in ports.items()
            }
            clients = {name: server.client() for name, server in replicas.items()}
            balanced = httpx.Client(
                base_url=service_lb.url, auth=next(iter(clients.values())).auth, timeout=30
            )
            leader = common.wait_until(
                lambda: _lease_holder(kubernetes, release) or None,
                timeout=30,
                what="a replica leading",
            )
            assert leader in replicas

            name = f"rep-{uuid.uuid4().hex[:6]}"
            service = minimal_service(
                name,
                input=[{"storage_provider": "minio.default", "path": f"{name}/in"}],
                output=[{"storage_provider": "minio.default", "path": f"{name}/out"}],
            )
            follower = next(r for r in replicas if r != leader)
            created = clients[follower].post("/system/services", json=service)
            assert created.status_code == 201, created.text
            for http in clients.values():
                assert name in [s["name"] for s in http.get("/system/services").json()]

            sdk: Any = minio.client()
            for index in range(6):
                sdk.put_object(name, f"in/first-{index}.txt", io.BytesIO(b"x"), 1)
            token = clients[leader].get(f"/system/services/{name}").json()["token"]
            for http in clients.values():  # /job on each replica, the follower's included
                for _ in range(2):
                    answer = http.post(
                        f"/job/{name}", content=b"{}", headers={"Authorization": f"Bearer {token}"}
                    )
                    assert answer.status_code == 201, answer.text

            def all_succeeded(http: httpx.Client, count: int) -> dict[str, str] | None:
                jobs = _jobs(http, name)
                done = len(jobs) == count and set(jobs.values()) == {"Succeeded"}
                return jobs if done else None

            first = common.wait_until(
                lambda: all_succeeded(clients[follower], 10), timeout=120, what="10 jobs done"
            )
            assert _jobs(clients[leader], name) == first  # the same answer from both

            # The leader dies without a word; the follower takes the Lease over and goes on.
            replicas[leader].stop(signal.SIGKILL)
            for index in range(4):
                sdk.put_object(name, f"in/second-{index}.txt", io.BytesIO(b"y"), 1)
            answer = balanced.post(
                f"/job/{name}", content=b"{}", headers={"Authorization": f"Bearer {token}"}
            )
            assert answer.status_code == 201, answer.text
            common.wait_until(
                lambda: _lease_holder(kubernetes, release) == follower or None,
                timeout=LEASE_SECONDS * 10,
                what="the follower leading",
            )
            jobs = common.wait_until(
                lambda: all_succeeded(clients[follower], 15), timeout=120, what="15 jobs done"
            )
            assert set(first) <= set(jobs)  # nothing recorded before the kill is lost
            for job in jobs:
                assert _started_pods(kubernetes, namespace, job) == 1, job  # ran once each
            assert _jobs(balanced, name) == jobs
