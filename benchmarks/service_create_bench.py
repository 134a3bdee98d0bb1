"""Service creation latency on the cloud path, against upstream's approach in the same run.

    python benchmarks/service_create_bench.py [--runs 15]

Ours: `POST /system/services` with the Kubernetes registry and a real MinIO (ConfigMap, bucket,
folder markers, bucket notification to the one start-up webhook target).
Baseline: the part of upstream's per-service work that we avoid, on the same MinIO — a MinIO
restart, timed until it serves again (upstream also adds a webhook target with the admin API
and sleeps 6 s; neither is counted, so the baseline flatters upstream).
Needs `scripts/testenv.sh install minio kubernetes`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.stats import Row, format_table, timing_row  # noqa: E402
from tests.fixtures.server import free_port, start_server  # noqa: E402
from tests.fixtures.services import minimal_service  # noqa: E402
from tests.services import common  # noqa: E402
from tests.services import kubernetes as kubernetes_service  # noqa: E402
from tests.services import minio as minio_service  # noqa: E402


def rows(runs: int = 15) -> list[Row]:
    """Measure both and return the table's rows."""
    token = "bench-" + uuid.uuid4().hex
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        oscar_port = free_port()
        (root / "queue").mkdir()
        webhook = {
            "MINIO_NOTIFY_WEBHOOK_ENABLE_OSCAR": "on",
            "MINIO_NOTIFY_WEBHOOK_ENDPOINT_OSCAR": f"http://127.0.0.1:{oscar_port}/events/minio",
            "MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_OSCAR": token,
            "MINIO_NOTIFY_WEBHOOK_QUEUE_DIR_OSCAR": str(root / "queue"),
        }
        (root / "k8s").mkdir()
        with (
            kubernetes_service.running(root / "k8s") as cluster,
            minio_service.running(root / "minio", extra_env=webhook) as minio,
        ):
            env = {
                "OSCAR_STORAGE": "minio",
                "OSCAR_MINIO_ENDPOINT": minio.endpoint,
                "OSCAR_MINIO_ACCESS_KEY": minio.access_key,
                "OSCAR_MINIO_SECRET_KEY": minio.secret_key,
                "OSCAR_EVENTS_TOKEN": token,
                "OSCAR_REGISTRY": "kubernetes",
                "OSCAR_KUBECONFIG": str(cluster.kubeconfig),
                "OSCAR_SERVICES_NAMESPACE": "oscar-svc",
            }
            server = start_server(root / "data", port=oscar_port, extra_env=env)
            try:
                http = server.client()
                ours = []
                for index in range(runs):
                    name = f"bench-{index}-{uuid.uuid4().hex[:4]}"
                    body = minimal_service(
                        name,
                        input=[{"storage_provider": "minio.default", "path": f"{name}/in"}],
                        output=[{"storage_provider": "minio.default", "path": f"{name}/out"}],
                    )
                    began = time.perf_counter()
                    answer = http.post("/system/services", json=body)
                    assert answer.status_code == 201, answer.text
                    ours.append(time.perf_counter() - began)
            finally:
                server.stop()
            upstream = []
            for _ in range(max(3, runs // 3)):
                admin = minio.admin()  # pooled connections do not survive a restart
                began = time.perf_counter()
                admin.service_restart()
                client = minio.client()
                common.wait_until(
                    lambda c=client: c.list_buckets() is not None,
                    timeout=60,
                    what="MinIO back after restart",
                    interval=0.05,
                )
                upstream.append(time.perf_counter() - began)
    return [
        timing_row(
            "POST /system/services (k8s + MinIO)",
            ours,
            upstream,
            baseline_name="upstream: MinIO restart",
        )
    ]


def main() -> None:
    """Measure both and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    print(format_table(rows(args.runs)))


if __name__ == "__main__":
    main()
