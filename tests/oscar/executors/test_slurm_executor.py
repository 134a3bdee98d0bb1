"""HPC offload through the real one-node Slurm: routing `hpc` vs `cloud` give the same outputs."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.fixtures.server import RunningServer, wait_object
from tests.fixtures.services import minimal_service
from tests.services import common
from tests.services.slurm import SlurmCluster

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
SCRIPT = (
    'echo "processing $(basename "$INPUT_FILE_PATH")"\n'
    'tr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH").up"\n'
)


def _service(name: str, routing: str, script: str = SCRIPT) -> dict[str, Any]:
    return minimal_service(
        name,
        script=script,
        routing=routing,
        cpu="1",
        memory="128Mi",
        annotations={"slurm-job.vk.io/flags": "--time=00:10:00"},
        input=[{"storage_provider": "minio.default", "path": f"{name}/in"}],
        output=[{"storage_provider": "minio.default", "path": f"{name}/out"}],
    )


@pytest.fixture
def hpc_oscar(slurm: SlurmCluster, start_oscar: Callable[..., RunningServer]) -> RunningServer:
    return start_oscar(
        extra_env={"OSCAR_HPC_EXECUTOR": "slurm", "OSCAR_SLURM_CONF": str(slurm.conf_path)}
    )


def _run_once(server: RunningServer, routing: str) -> tuple[bytes, dict[str, Any], list[str]]:
    api = server.client()
    name = f"{routing}-{uuid.uuid4().hex[:6]}"
    assert api.post("/system/services", json=_service(name, routing)).status_code == 201
    s3 = server.s3()
    s3.put_object(Bucket=name, Key="in/words.txt", Body=b"hello hpc\n")
    seen: list[str] = []

    def finished() -> dict[str, Any] | None:
        jobs = api.get(f"/system/logs/{name}").json()["jobs"]
        if not jobs:
            return None
        (job,) = jobs.values()
        if not seen or seen[-1] != job["status"]:
            seen.append(job["status"])
        return job if job["status"] in ("Succeeded", "Failed") else None

    job = common.wait_until(finished, timeout=120, interval=0.1, what=f"{routing} job")
    output = s3.get_object(Bucket=name, Key="out/words.txt.up")["Body"].read()
    (job_name,) = api.get(f"/system/logs/{name}").json()["jobs"]
    log = api.get(f"/system/logs/{name}/{job_name}").text
    return output, {**job, "log": log}, seen


def test_hpc_and_cloud_routing_give_the_same_output(hpc_oscar: RunningServer) -> None:
    hpc_output, hpc_job, hpc_states = _run_once(hpc_oscar, "hpc")
    cloud_output, cloud_job, _ = _run_once(hpc_oscar, "cloud")
    assert hpc_output == cloud_output == b"HELLO HPC\n"
    assert hpc_job["status"] == "Succeeded" and hpc_job["backend"] == "slurm"
    assert cloud_job["backend"] == "local"
    assert hpc_states[-1] == "Succeeded"
    assert set(hpc_states) <= {"Pending", "Running", "Succeeded"}
    assert "Slurm job" in hpc_job["log"] and "processing words.txt" in hpc_job["log"]


def test_failing_hpc_job_ends_failed(hpc_oscar: RunningServer) -> None:
    api = hpc_oscar.client()
    name = f"hpcfail-{uuid.uuid4().hex[:6]}"
    api.post("/system/services", json=_service(name, "hpc", script="echo bad; exit 5\n"))
    created = api.post(f"/job/{name}", content=b"x")
    job = created.headers["x-oscar-job-name"]
    record = common.wait_until(
        lambda: (
            (j := api.get(f"/system/logs/{name}").json()["jobs"][job])["status"] == "Failed" and j
        ),
        timeout=120,
        what="failed Slurm job",
    )
    assert record["exit_code"] == 5
    assert "FAILED" in record["reason"]


def test_deleting_a_running_hpc_job_cancels_it(
    hpc_oscar: RunningServer, slurm: SlurmCluster
) -> None:
    api = hpc_oscar.client()
    name = f"hpclong-{uuid.uuid4().hex[:6]}"
    api.post("/system/services", json=_service(name, "hpc", script="sleep 300\n"))
    job = api.post(f"/job/{name}", content=b"x").headers["x-oscar-job-name"]
    common.wait_until(
        lambda: api.get(f"/system/logs/{name}").json()["jobs"][job]["status"] == "Running",
        timeout=60,
        what="Slurm job running",
    )
    queued = slurm.run(["squeue", "-h", "-o", "%j %T"]).stdout
    assert f"{job} RUNNING" in queued
    assert api.delete(f"/system/logs/{name}/{job}").status_code == 204
    common.wait_until(
        lambda: job not in slurm.run(["squeue", "-h", "-o", "%j"]).stdout,
        timeout=60,
        what="Slurm job cancelled",
    )


def test_hpc_example_on_slurm_and_cloud(hpc_oscar: RunningServer) -> None:
    """The HPC example FDL, applied with routing hpc and with routing cloud: same predictions."""
    from oscar.models.fdl import load_fdl
    from tests.fixtures.services import EXAMPLES_DIR

    (entry,) = load_fdl(EXAMPLES_DIR / "hpc-inference" / "hpc-inference.yaml").services
    api, s3 = hpc_oscar.client(), hpc_oscar.s3()
    results = {}
    for routing in ("hpc", "cloud"):
        name = f"inference-{routing}"
        definition = entry.service.model_dump(mode="json", by_alias=True)
        definition.update(name=name, routing=routing)
        for role in ("input", "output"):
            for item in definition[role]:
                item["path"] = item["path"].replace("hpc-inference", name)
        assert api.post("/system/services", json=definition).status_code == 201
        s3.put_object(Bucket=name, Key="in/batch.csv", Body=b"1,0,1\n0,1,0\n2,2,2\n")
        results[routing] = wait_object(s3, name, "out/batch.predictions.json")
        (job,) = api.get(f"/system/logs/{name}").json()["jobs"].values()
        assert job["backend"] == ("slurm" if routing == "hpc" else "local")
    assert results["hpc"] == results["cloud"]
    assert b'"class": 1' in results["hpc"]
