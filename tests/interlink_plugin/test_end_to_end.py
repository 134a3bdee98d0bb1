"""The whole HPC path for real: upload to MinIO → webhook → oscar → Kubernetes Job → pod on an
interLink virtual node (the real virtual kubelet and API server) → oscar's plugin → sbatch on
the real one-node Slurm → the supervisor stages in from MinIO, runs the script, stages out →
pod Succeeded → oscar job Succeeded, with the script's output through the `kubectl logs` path.

The "cloud" virtual node's plugin runs pods as local processes (`OSCAR_CLOUD_INTERLINK_NODE`):
that is how the Kubernetes executor's Jobs run for real here, with no container runtime.
"""

from __future__ import annotations

import io
import signal
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.plugin import RunningPlugin, running_plugin
from tests.fixtures.server import RunningServer, free_port, start_server
from tests.services import common
from tests.services import interlink as interlink_service
from tests.services import minio as minio_service
from tests.services.interlink import InterlinkNode
from tests.services.kubernetes import KubernetesCluster
from tests.services.slurm import SlurmCluster

pytestmark = [
    pytest.mark.interlink,
    pytest.mark.kubernetes,
    pytest.mark.slurm,
    pytest.mark.minio,
    pytest.mark.slow,
]
EXAMPLE = Path(__file__).parents[2] / "fdl-examples" / "hpc-inference"
EVENTS_TOKEN = "events-token-" + uuid.uuid4().hex
ROWS = b"1,0,1\n0,1,0\n2,2,2\n"


@dataclass
class Site:
    """oscar on Kubernetes with MinIO, an HPC virtual node (Slurm) and a cloud one (local)."""

    server: RunningServer
    minio: Any
    api: Any
    namespace: str
    hpc: InterlinkNode
    cloud: InterlinkNode
    hpc_plugin: RunningPlugin
    cloud_plugin: RunningPlugin
    slurm: SlurmCluster

    def service(self, node: str, **changes: Any) -> str:
        """Create the example's service (renamed) on virtual node `node` ('' = cloud)."""
        fdl = yaml.safe_load((EXAMPLE / "hpc-inference.yaml").read_text())
        (entry,) = fdl["functions"]["oscar"]
        service: dict[str, Any] = next(iter(entry.values()))
        name = f"inf-{uuid.uuid4().hex[:6]}"
        service.update(name=name, interlink_node_name=node, **changes)
        if "script" not in changes:
            service["script"] = (EXAMPLE / service["script"]).read_text()
        for io_config in [*service["input"], *service["output"]]:
            io_config["path"] = io_config["path"].replace("hpc-inference", name, 1)
        created = self.server.client().post("/system/services", json=service)
        assert created.status_code == 201, created.text
        return name

    def upload(self, name: str) -> None:
        self.minio.client().put_object(name, "in/rows.csv", io.BytesIO(ROWS), len(ROWS))

    def jobs(self, name: str) -> dict[str, dict[str, Any]]:
        return dict(self.server.client().get(f"/system/logs/{name}").json()["jobs"])

    def one_job(self, name: str, *statuses: str, timeout: float = 240) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            hits = [{"name": n, **j} for n, j in self.jobs(name).items() if j["status"] in statuses]
            return hits[0] if hits else None

        return common.wait_until(
            found, timeout=timeout, interval=0.5, what=f"a job {statuses}", log=self.server.log_path
        )

    def log(self, name: str, job: str) -> str:
        return self.server.client().get(f"/system/logs/{name}/{job}").text

    def pod(self, name: str) -> Any:
        from kubernetes import client

        pods = client.CoreV1Api(self.api).list_namespaced_pod(self.namespace).items
        (pod,) = [p for p in pods if (p.metadata.labels or {}).get("oscar_service") == name]
        return pod


@pytest.fixture(scope="module")
def site(
    kubernetes: KubernetesCluster, slurm: SlurmCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    from kubernetes import client

    root = tmp_path_factory.mktemp("interlink-site")
    with ExitStack() as stack:
        hpc_plugin = stack.enter_context(
            running_plugin(root / "hpc-plugin", "slurm", {"SLURM_CONF": str(slurm.conf_path)})
        )
        cloud_plugin = stack.enter_context(running_plugin(root / "cloud-plugin", "local"))
        suffix = uuid.uuid4().hex[:6]
        hpc = stack.enter_context(
            interlink_service.running(
                kubernetes, f"hpc-{suffix}", ("127.0.0.1", hpc_plugin.port), root / "hpc-node"
            )
        )
        cloud = stack.enter_context(
            interlink_service.running(
                kubernetes, f"cloud-{suffix}", ("127.0.0.1", cloud_plugin.port), root / "cloud"
            )
        )
        api = kubernetes.api_client()
        namespace = f"svc-{suffix}"
        client.CoreV1Api(api).create_namespace({"metadata": {"name": namespace}})
        oscar_port = free_port()
        webhook = minio_service.oscar_webhook_env(oscar_port, EVENTS_TOKEN, root / "queue")
        minio = stack.enter_context(minio_service.running(root / "minio", extra_env=webhook))
        env = {
            **minio_service.oscar_storage_env(minio, EVENTS_TOKEN),
            "OSCAR_EXECUTOR": "kubernetes",
            "OSCAR_KUBECONFIG": str(kubernetes.kubeconfig),
            "OSCAR_SERVICES_NAMESPACE": namespace,
            "OSCAR_JOB_MINIO_ENDPOINT": minio.endpoint,
            "OSCAR_CLOUD_INTERLINK_NODE": cloud.name,
        }
        server = start_server(root / "oscar", port=oscar_port, extra_env=env)
        stack.callback(server.stop, signal.SIGTERM, 30)
        yield Site(server, minio, api, namespace, hpc, cloud, hpc_plugin, cloud_plugin, slurm)


def test_the_same_fdl_runs_on_slurm_and_on_the_cloud_node_alike(site: Site) -> None:
    assert site.server.client().get("/system/config").json()["interLink_available"] is True
    outputs = {}
    for node in (site.hpc, site.cloud):
        name = site.service(node.name if node is site.hpc else "")
        site.upload(name)
        job = site.one_job(name, "Succeeded", "Failed")
        log = site.log(name, job["name"])
        plugin = site.hpc_plugin if node is site.hpc else site.cloud_plugin
        assert job["status"] == "Succeeded", (job, log, plugin.log_path.read_text()[-3000:])
        assert "Scoring rows" in log  # the script's own output, through the pod's log
        outputs[node.name] = (
            site.minio.client().get_object(name, "out/rows.predictions.json").read()
        )
        pod = site.pod(name)
        assert pod.spec.node_name == node.name and pod.status.phase == "Succeeded"
        job_id = pod.metadata.annotations.get("JobID", "")
        # A Slurm job id behind the HPC node, a local process (pid:start) behind the other.
        assert job_id.isdigit() if node is site.hpc else ":" in job_id
        assert len(site.jobs(name)) == 1
    assert outputs[site.hpc.name] == outputs[site.cloud.name]
    assert b'"predictions"' in outputs[site.hpc.name]


def test_a_failing_script_fails_the_pod_and_the_job_with_its_exit_code(site: Site) -> None:
    name = site.service(site.hpc.name, script='echo "about to fail"\nexit 3\n')
    site.upload(name)
    job = site.one_job(name, "Succeeded", "Failed")
    assert job["status"] == "Failed" and job["exit_code"] == 3, job
    assert job["reason"], job
    assert site.pod(name).status.phase == "Failed"
    assert "about to fail" in site.log(name, job["name"])


def _slurm_job(site: Site, name: str) -> str:
    return common.wait_until(
        lambda: (
            (site.pod(name).metadata.annotations or {}).get("JobID", "").isdigit()
            and site.pod(name).metadata.annotations["JobID"]
        ),
        timeout=120,
        what="the pod's Slurm job",
    )


def test_a_job_waiting_in_slurm_shows_the_queue_reason_and_deleting_it_running_cancels_it(
    site: Site, tmp_path: Path
) -> None:
    never = tmp_path / "never-created"
    name = site.service(
        site.hpc.name,
        script=f"while [ ! -e {never} ]; do sleep 0.2; done\n",
        annotations={"slurm-job.vk.io/flags": "--begin=now+1hour"},
    )
    site.upload(name)
    slurm_id = _slurm_job(site, name)
    job = site.one_job(name, "Pending", timeout=120)
    reason = common.wait_until(
        lambda: "BeginTime" in (why := site.jobs(name)[job["name"]]["waiting_reason"]) and why,
        timeout=90,
        what="Slurm's queue reason in the job's record",
    )
    assert "BeginTime" in reason
    site.slurm.run(["scontrol", "update", f"JobId={slurm_id}", "StartTime=now"])
    site.one_job(name, "Running", timeout=120)

    def slurm_state() -> str:
        text = site.slurm.run(["scontrol", "show", "job", slurm_id], check=False).stdout
        return next((w.split("=")[1] for w in text.split() if w.startswith("JobState=")), "")

    assert slurm_state() == "RUNNING"
    assert site.server.client().delete(f"/system/logs/{name}/{job['name']}").status_code == 204
    common.wait_until(
        lambda: slurm_state() in ("CANCELLED", ""), timeout=120, interval=1, what="scancelled"
    )


def test_restarting_the_plugin_and_the_virtual_kubelet_mid_job_loses_nothing(
    site: Site, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    script = (
        (EXAMPLE / "inference.sh")
        .read_text()
        .replace("set -eu\n", f"set -eu\nwhile [ ! -e {release} ]; do sleep 0.2; done\n", 1)
    )
    name = site.service(site.hpc.name, script=script)
    site.upload(name)
    slurm_id = _slurm_job(site, name)
    site.one_job(name, "Running", timeout=120)
    site.hpc_plugin.restart()
    site.hpc.restart_virtual_kubelet()
    release.touch()
    job = site.one_job(name, "Succeeded", "Failed")
    assert job["status"] == "Succeeded", (job, site.log(name, job["name"]))
    assert len(site.jobs(name)) == 1  # reported once
    assert site.pod(name).metadata.annotations["JobID"] == slurm_id  # never submitted again
    assert site.minio.client().get_object(name, "out/rows.predictions.json").read()
