"""Job records on the Kubernetes Jobs (`OSCAR_JOB_STORE=kubernetes`) against SQLite, same run.

    python benchmarks/job_store_bench.py [--jobs 40]

One real API server with a kwok node, one MinIO, and `oscar serve` with the Kubernetes executor
and registry, once with each job store (the SQLite one is the baseline). Measured:

- `POST /job/<service>`: accepting an event (a suspended Job created, or an SQLite row);
- `GET /system/logs/<service>` with the jobs of the burst listed;
- submit to Succeeded of each job of a burst (the store's writes on the way: handed over,
  running, finished), from the job's `created` to its `finish_time`.

Needs `scripts/testenv.sh install minio kubernetes`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.stats import Row, format_table, timing_row  # noqa: E402
from tests.fixtures.server import free_port, start_server  # noqa: E402
from tests.fixtures.services import minimal_service  # noqa: E402
from tests.services import common  # noqa: E402
from tests.services import kubernetes as kubernetes_service  # noqa: E402
from tests.services import minio as minio_service  # noqa: E402


def _measure(root: Path, env: dict[str, str], store: str, jobs: int) -> dict[str, list[float]]:
    server = start_server(
        root / f"data-{store}",
        port=free_port(),
        extra_env={**env, "OSCAR_JOB_STORE": store, "OSCAR_SERVICES_NAMESPACE": f"bench-{store}"},
    )
    try:
        http = server.client()
        name = f"bench-{uuid.uuid4().hex[:6]}"
        assert http.post("/system/services", json=minimal_service(name)).status_code == 201
        token = http.get(f"/system/services/{name}").json()["token"]
        accept = []
        for _ in range(jobs):
            began = time.perf_counter()
            answer = http.post(
                f"/job/{name}", content=b"{}", headers={"Authorization": f"Bearer {token}"}
            )
            accept.append(time.perf_counter() - began)
            assert answer.status_code == 201, answer.text

        def done() -> dict[str, dict[str, str]] | None:
            listed = http.get(f"/system/logs/{name}").json()["jobs"]
            ended = all(j["status"] in ("Succeeded", "Failed") for j in listed.values())
            return listed if len(listed) == jobs and ended else None

        finished = common.wait_until(done, timeout=600, interval=0.5, what=f"{jobs} jobs ended")
        lists = []
        for _ in range(20):
            began = time.perf_counter()
            assert http.get(f"/system/logs/{name}").status_code == 200
            lists.append(time.perf_counter() - began)
        runs = [
            (
                datetime.fromisoformat(job["finish_time"])
                - datetime.fromisoformat(job["creation_time"])
            ).total_seconds()
            for job in finished.values()
        ]
        return {"accept": accept, "list": lists, "run": runs}
    finally:
        server.stop()


def rows(jobs: int = 40) -> list[Row]:
    """Measure both stores and return the table's rows."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "k8s").mkdir()
        with (
            kubernetes_service.running(root / "k8s") as cluster,
            minio_service.running(root / "minio") as minio,
        ):
            cluster.create_fake_node(f"kwok-{uuid.uuid4().hex[:6]}")
            env = {
                **minio_service.oscar_storage_env(minio, "bench-" + uuid.uuid4().hex),
                "OSCAR_EXECUTOR": "kubernetes",
                "OSCAR_REGISTRY": "kubernetes",
                "OSCAR_KUBECONFIG": str(cluster.kubeconfig),
            }
            sqlite = _measure(root, env, "sqlite", jobs)
            kubernetes = _measure(root, env, "kubernetes", jobs)
    baseline = "SQLite store"
    return [
        timing_row("POST /job (records on Jobs)", kubernetes["accept"], sqlite["accept"],
                   baseline_name=baseline),
        timing_row(f"GET /system/logs, {jobs} jobs", kubernetes["list"], sqlite["list"],
                   baseline_name=baseline),
        timing_row("accepted -> Succeeded, burst", kubernetes["run"], sqlite["run"],
                   baseline_name=baseline),
    ]  # fmt: skip


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=40)
    args = parser.parse_args()
    print(format_table(rows(args.jobs)))


if __name__ == "__main__":
    main()
