"""Upload → output on the interLink path, against the direct Slurm executor and a bare `sbatch`
of the same script, in the same run.

    python benchmarks/interlink_bench.py [--runs 5]

All three run `fdl-examples/hpc-inference/inference.sh` on the same CSV on the real one-node
Slurm:

- baseline, bare `sbatch`: a batch script running inference.sh on a local copy of the CSV,
  timed from submission until the output file exists (polled every 50 ms);
- oscar, Slurm executor (`OSCAR_HPC_EXECUTOR=slurm`, embedded store): timed from the upload's
  PUT until the output object exists;
- oscar, interLink: the Kubernetes executor with MinIO, the real virtual kubelet and interLink
  API server and oscar's plugin (slurm backend), timed the same way.

Needs `scripts/testenv.sh install slurm kubernetes minio interlink`.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")
REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.stats import row_ms  # noqa: E402
from tests.fixtures.plugin import running_plugin  # noqa: E402
from tests.fixtures.server import free_port, start_server  # noqa: E402
from tests.services import interlink as interlink_service  # noqa: E402
from tests.services import kubernetes as kubernetes_service  # noqa: E402
from tests.services import minio as minio_service  # noqa: E402
from tests.services import slurm as slurm_service  # noqa: E402

EXAMPLE = REPO_ROOT / "fdl-examples" / "hpc-inference"
ROWS = b"1,0,1\n0,1,0\n2,2,2\n"
TOKEN = "bench-" + uuid.uuid4().hex


def _poll(check: Callable[[], T | None], interval: float = 0.05, timeout: float = 300) -> T:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            result = check()
        except Exception:  # not there yet
            result = None
        if result:
            return result
        time.sleep(interval)
    raise TimeoutError("benchmark step timed out")


def _service(name: str, node: str = "") -> dict[str, Any]:
    fdl = yaml.safe_load((EXAMPLE / "hpc-inference.yaml").read_text())
    (entry,) = fdl["functions"]["oscar"]
    service: dict[str, Any] = next(iter(entry.values()))
    service.update(name=name, script=(EXAMPLE / "inference.sh").read_text())
    if node:
        service["interlink_node_name"] = node
    for io_config in [*service["input"], *service["output"]]:
        io_config["path"] = io_config["path"].replace("hpc-inference", name, 1)
    return service


def _uploads(put: Callable[[str], None], exists: Callable[[str], bool], runs: int) -> list[float]:
    """Seconds from each upload until its output exists."""
    samples = []
    for index in range(runs):
        key = f"rows{index}"
        began = time.time()
        put(f"in/{key}.csv")
        _poll(lambda key=key: exists(f"out/{key}.predictions.json"))
        samples.append(time.time() - began)
    return samples


def bare_sbatch(cluster: slurm_service.SlurmCluster, root: Path, runs: int) -> list[float]:
    """The baseline: sbatch of inference.sh on a local CSV."""
    (root / "bare").mkdir()
    data = root / "bare" / "rows.csv"
    data.write_bytes(ROWS)
    samples = []
    for index in range(runs):
        out = root / "bare" / f"out{index}"
        out.mkdir()
        script = root / "bare" / f"job{index}.sh"
        script.write_text(
            "#!/bin/sh\n"
            f"export INPUT_FILE_PATH={data} TMP_OUTPUT_DIR={out}\n"
            f"sh {EXAMPLE / 'inference.sh'}\n"
        )
        began = time.time()
        cluster.run(["sbatch", "--parsable", f"--output={out}/log", str(script)])
        _poll(lambda out=out: (out / "rows.predictions.json").exists())
        samples.append(time.time() - began)
    return samples


def slurm_executor(cluster: slurm_service.SlurmCluster, root: Path, runs: int) -> list[float]:
    """oscar with the Slurm executor and its embedded store."""
    env = {"OSCAR_HPC_EXECUTOR": "slurm", "OSCAR_SLURM_CONF": str(cluster.conf_path)}
    server = start_server(root / "direct", extra_env=env)
    try:
        name = f"direct-{uuid.uuid4().hex[:6]}"
        server.client().post("/system/services", json=_service(name)).raise_for_status()
        s3 = server.s3()
        return _uploads(
            lambda key: s3.put_object(Bucket=name, Key=key, Body=ROWS),
            lambda key: bool(s3.head_object(Bucket=name, Key=key)),
            runs,
        )
    finally:
        server.stop()


def interlink_path(cluster: slurm_service.SlurmCluster, root: Path, runs: int) -> list[float]:
    """oscar on Kubernetes with MinIO, a virtual node and oscar's plugin on Slurm."""
    import io

    from kubernetes import client

    with ExitStack() as stack:
        kube = stack.enter_context(kubernetes_service.running(root / "kubernetes"))
        env = {"SLURM_CONF": str(cluster.conf_path)}
        plugin = stack.enter_context(running_plugin(root / "plugin", "slurm", env))
        node = stack.enter_context(
            interlink_service.running(kube, "hpc-bench", ("127.0.0.1", plugin.port), root / "node")
        )
        namespace = f"bench-{uuid.uuid4().hex[:6]}"
        client.CoreV1Api(kube.api_client()).create_namespace({"metadata": {"name": namespace}})
        port = free_port()
        webhook = minio_service.oscar_webhook_env(port, TOKEN, root / "queue")
        minio = stack.enter_context(minio_service.running(root / "minio", extra_env=webhook))
        server = start_server(
            root / "oscar",
            port=port,
            extra_env={
                **minio_service.oscar_storage_env(minio, TOKEN),
                "OSCAR_EXECUTOR": "kubernetes",
                "OSCAR_KUBECONFIG": str(kube.kubeconfig),
                "OSCAR_SERVICES_NAMESPACE": namespace,
                "OSCAR_JOB_MINIO_ENDPOINT": minio.endpoint,
            },
        )
        stack.callback(server.stop, signal.SIGTERM, 30)
        name = f"il-{uuid.uuid4().hex[:6]}"
        server.client().post("/system/services", json=_service(name, node.name)).raise_for_status()
        sdk: Any = minio.client()
        return _uploads(
            lambda key: sdk.put_object(name, key, io.BytesIO(ROWS), len(ROWS)),
            lambda key: bool(sdk.stat_object(name, key)),
            runs,
        )


def main() -> None:
    """Run the three paths on one Slurm cluster and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "slurm").mkdir()
        with slurm_service.running(root / "slurm") as cluster:
            bare = bare_sbatch(cluster, root, args.runs)
            direct = slurm_executor(cluster, root, args.runs)
            via_interlink = interlink_path(cluster, root, args.runs)
    base = sorted(bare)[len(bare) // 2]
    print(f"| {'upload -> output':<34} | {'median':>12} | {'p95':>12} | ratio |")
    print(f"|{'-' * 36}|{'-' * 14}|{'-' * 14}|-------|")
    print(row_ms("bare sbatch (baseline)", bare, base))
    print(row_ms("oscar, Slurm executor", direct, base))
    print(row_ms("oscar, interLink + plugin on Slurm", via_interlink, base))


if __name__ == "__main__":
    main()
