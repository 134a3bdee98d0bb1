"""`helm install` runs the control plane itself, as pods on an interLink virtual node.

There is no container runtime here, so the chart's pods go to the "cloud" virtual node whose
plugin (oscar's own, `local` backend) runs each container's command natively, with its
environment, Secrets and volumes — the same node the control plane then sends its Jobs to.
The chart is installed with two replicas that share the API port on this one host
(`server.reusePort`, SO_REUSEPORT, which spreads connections between them as a Service
would), reach the API server as the chart's ServiceAccount (a TokenRequest token in
`kubeconfigSecret`: the pods are outside the cluster network) and keep every record in
Kubernetes (`jobStore: kubernetes`). The README's quick start then runs through them as
written; both replicas answer it; deleting the leading replica's pod loses nothing.
"""

from __future__ import annotations

import base64
import io
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures import helm
from tests.fixtures.plugin import running_plugin
from tests.fixtures.server import free_port
from tests.fixtures.services import REPO_ROOT, readme_quick_start
from tests.services import common
from tests.services import interlink as interlink_service
from tests.services import minio as minio_service
from tests.services.interlink import InterlinkNode
from tests.services.kubernetes import KubernetesCluster

pytestmark = [pytest.mark.kubernetes, pytest.mark.interlink, pytest.mark.minio, pytest.mark.slow]

PASSWORD = "secret"  # the README's
EVENTS_TOKEN = "events-" + uuid.uuid4().hex
KUBECONFIG_SECRET = "oscar-kubeconfig"
LEASE = "oscar-control-plane"


@dataclass
class Install:
    """The release, where it runs, and what it is reached through."""

    release: str
    namespace: str
    services_namespace: str
    url: str
    node: InterlinkNode
    minio: Any
    cluster: KubernetesCluster
    values: list[str]

    def pods(self) -> list[Any]:
        from kubernetes import client

        found = client.CoreV1Api(self.cluster.api_client()).list_namespaced_pod(
            self.namespace, label_selector="app.kubernetes.io/name=oscar"
        )
        return [p for p in found.items if p.metadata.deletion_timestamp is None]

    def running(self, count: int) -> list[Any] | None:
        pods = [p for p in self.pods() if p.status and p.status.phase == "Running"]
        return pods if len(pods) == count else None

    def leader(self) -> str:
        from kubernetes import client

        coordination = client.CoordinationV1Api(self.cluster.api_client())
        try:
            lease = coordination.read_namespaced_lease(LEASE, self.namespace)
        except client.ApiException:
            return ""
        return lease.spec.holder_identity or ""

    def pod_log(self, name: str) -> str:
        from kubernetes import client

        return str(
            client.CoreV1Api(self.cluster.api_client()).read_namespaced_pod_log(
                name, self.namespace, container="oscar"
            )
        )


def _helm(cluster: KubernetesCluster, *args: str) -> str:
    return helm.run_helm([*args, "--kubeconfig", str(cluster.kubeconfig)]).stdout


@pytest.fixture(scope="module")
def install(
    kubernetes: KubernetesCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Install]:
    from kubernetes import client

    root = tmp_path_factory.mktemp("helm-interlink")
    suffix = uuid.uuid4().hex[:6]
    release, namespace, services = "oscar", f"oscar-{suffix}", f"oscar-svc-{suffix}"
    port = free_port()
    with ExitStack() as stack:
        plugin = stack.enter_context(running_plugin(root / "plugin", "local"))
        node = stack.enter_context(
            interlink_service.running(
                kubernetes, f"cloud-{suffix}", ("127.0.0.1", plugin.port), root / "node"
            )
        )
        webhook = minio_service.oscar_webhook_env(port, EVENTS_TOKEN, root / "queue")
        minio = stack.enter_context(minio_service.running(root / "minio", extra_env=webhook))
        values = [
            f"--set-json=server.port={port}",
            "--set-json=server.reusePort=true",
            # Natively, an emptyDir over /tmp would hide whatever of this installation lives
            # there (a CI checkout under /tmp, say).
            "--set-json=tmpVolume=false",
            "--set-json=replicaCount=2",
            f'--set-json=auth.password="{PASSWORD}"',
            f'--set-json=auth.eventsToken="{EVENTS_TOKEN}"',
            '--set-json=storage.type="minio"',
            f'--set-json=storage.endpoint="{minio.endpoint}"',
            f'--set-json=storage.accessKey="{minio.access_key}"',
            f'--set-json=storage.secretKey="{minio.secret_key}"',
            f'--set-json=servicesNamespace.name="{services}"',
            f'--set-json=interlink.cloudNode="{node.name}"',
            # The native supervisor of the Jobs' pods: this installation's (default command).
            '--set-json=supervisorImage.repository=""',
            f'--set-json=kubeconfigSecret="{KUBECONFIG_SECRET}"',
            "--set-json=leaderElection.leaseDuration=4",
            f'--set-json=nodeSelector={{"kubernetes.io/hostname": "{node.name}"}}',
            '--set-json=tolerations=[{"key": "virtual-node.interlink/no-schedule", '
            '"operator": "Exists"}]',
            # Run natively, the container finds `oscar` on the PATH of this installation.
            f'--set-json=extraEnv=[{{"name": "PATH", "value": "{Path(sys.executable).parent}'
            ':/usr/local/bin:/usr/bin:/bin"}]',
        ]
        # First without replicas: the ServiceAccount must exist before its token is minted.
        _helm(
            kubernetes,
            "install",
            release,
            str(helm.CHART),
            "--namespace",
            namespace,
            "--create-namespace",
            *values,
            "--set-json=replicaCount=0",
        )
        stack.callback(
            lambda: helm.run_helm(
                ["uninstall", release, "--namespace", namespace, "--kubeconfig",
                 str(kubernetes.kubeconfig)], check=False
            )
        )  # fmt: skip
        kubeconfig = helm.service_account_kubeconfig(
            kubernetes, namespace, "oscar", root / "sa.kubeconfig"
        )
        core = client.CoreV1Api(kubernetes.api_client())
        core.create_namespaced_secret(
            namespace,
            {
                "metadata": {"name": KUBECONFIG_SECRET},
                "data": {"kubeconfig": base64.b64encode(kubeconfig.read_bytes()).decode()},
            },
        )
        _helm(kubernetes, "upgrade", release, str(helm.CHART), "--namespace", namespace, *values)
        found = Install(
            release,
            namespace,
            services,
            f"http://127.0.0.1:{port}",
            node,
            minio,
            kubernetes,
            values,
        )
        common.wait_until(
            lambda: found.running(2), timeout=120, what="two control-plane pods Running"
        )
        common.wait_until(
            lambda: _health(found.url), timeout=120, what="the control plane answering"
        )
        common.wait_until(found.leader, timeout=60, what="a replica leading")
        yield found


def _health(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).text == "Ok"
    except httpx.TransportError:
        return False


def _fresh_get(install: Install, path: str) -> Any:
    """GET on a new connection (SO_REUSEPORT then picks either replica)."""
    with httpx.Client(base_url=install.url, auth=("oscar", PASSWORD), timeout=30) as http:
        answer = http.get(path)
        answer.raise_for_status()
        return answer.json()


def test_the_pods_run_on_the_virtual_node_as_the_chart_says(install: Install) -> None:
    pods = install.running(2)
    assert pods is not None
    assert {p.spec.node_name for p in pods} == {install.node.name}
    assert install.leader() in {p.metadata.name for p in pods}  # OSCAR_POD_NAME, the Lease


def test_the_readme_quick_start_runs_through_the_installed_control_plane(
    install: Install,
) -> None:
    program = (
        readme_quick_start()
        .replace("http://127.0.0.1:8080", install.url)
        .replace("http://127.0.0.1:9000", install.minio.endpoint)
        .replace('aws_access_key_id="oscar"', f'aws_access_key_id="{install.minio.access_key}"')
        .replace(
            'aws_secret_access_key="secret"',
            f'aws_secret_access_key="{install.minio.secret_key}"',
        )
        .replace("range(100)", "range(600)")  # a Job's pod starts slower than a process
    )
    result = subprocess.run(
        [sys.executable, "-c", program],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["['Succeeded']", "b'4\\n'"]

    # Both replicas answer, and answer the same.
    answers = [_fresh_get(install, "/system/logs/word-count")["jobs"] for _ in range(16)]
    assert all(a == answers[0] for a in answers) and len(answers[0]) == 1
    logs = [install.pod_log(p.metadata.name) for p in install.running(2) or []]
    served = [log for log in logs if "/system/logs/word-count" in log]
    assert len(served) == 2, "SO_REUSEPORT sent every connection to one replica"


def test_deleting_the_leading_replica_loses_nothing(install: Install) -> None:
    from kubernetes import client

    before = _fresh_get(install, "/system/logs/word-count")["jobs"]
    assert before, "the quick start's job"
    leader = install.leader()
    client.CoreV1Api(install.cluster.api_client()).delete_namespaced_pod(
        leader, install.namespace, grace_period_seconds=0
    )
    common.wait_until(
        lambda: install.leader() not in ("", leader) or None,
        timeout=60,
        what="another replica leading",
    )
    s3 = install.minio.client()
    s3.put_object("word-count", "in/after.txt", io.BytesIO(b"one two"), 7)

    def both_done() -> dict[str, Any] | None:
        jobs = _fresh_get(install, "/system/logs/word-count")["jobs"]
        ended = all(j["status"] == "Succeeded" for j in jobs.values())
        return jobs if len(jobs) == 2 and ended else None

    jobs = common.wait_until(both_done, timeout=240, interval=1, what="the new upload's job")
    assert set(before) <= set(jobs)
    assert s3.get_object("word-count", "out/after.txt.count").read() == b"2\n"
    common.wait_until(lambda: install.running(2), timeout=120, what="the replica replaced")
