"""Cost of scoped job keys on the embedded S3 port: job key against admin key, same run.

    python benchmarks/s3_access_bench.py [--requests 300] [--services 200]

Starts a real `oscar serve`, creates `--services` services (the registry a job key is looked up
in), and times small GETs and PUTs with the admin key (the baseline: signature check only) and
with one service's job key (signature check, key lookup and access rules), interleaved so both
see the same machine.
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
from oscar.storage.scoped import service_keys  # noqa: E402
from tests.fixtures.server import start_server  # noqa: E402
from tests.fixtures.services import minimal_service  # noqa: E402


def rows(requests: int = 300, services: int = 200) -> list[Row]:
    """Run the measurements against a fresh server and return the table's rows."""
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "data")
        try:
            api = server.client(timeout=60)
            provider = api.get("/system/config").json()["minio_provider"]
            name = f"bench-{uuid.uuid4().hex[:6]}"
            io = {
                "input": [{"storage_provider": "minio.default", "path": f"{name}/in"}],
                "output": [{"storage_provider": "minio.default", "path": f"{name}/out"}],
            }
            api.post("/system/services", json=minimal_service(name, **io)).raise_for_status()
            for index in range(services - 1):
                other = minimal_service(f"other-{index}-{uuid.uuid4().hex[:4]}")
                api.post("/system/services", json=other).raise_for_status()
            admin = server.s3()
            job = server.s3(keys=service_keys(provider["secret_key"], name))
            admin.put_object(Bucket=name, Key="in/small.txt", Body=b"x" * 1024)
            samples: dict[str, list[float]] = {k: [] for k in ("ga", "gj", "pa", "pj")}
            for index in range(requests):
                for label, client in (("a", admin), ("j", job)):
                    started = time.perf_counter()
                    client.get_object(Bucket=name, Key="in/small.txt")["Body"].read()
                    samples["g" + label].append(time.perf_counter() - started)
                    started = time.perf_counter()
                    key = f"out/{label}-{index}"
                    client.put_object(Bucket=name, Key=key, Body=b"y" * 1024)
                    samples["p" + label].append(time.perf_counter() - started)
        finally:
            server.stop()
    note = f"n={requests}, {services} services in the registry"
    return [
        timing_row(
            "S3 GET 1 KiB, job key",
            samples["gj"],
            samples["ga"],
            baseline_name="admin key",
            note=note,
        ),
        timing_row(
            "S3 PUT 1 KiB, job key",
            samples["pj"],
            samples["pa"],
            baseline_name="admin key",
            note=note,
        ),
    ]


def main() -> None:
    """Run the measurements and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--services", type=int, default=200)
    args = parser.parse_args()
    print(format_table(rows(args.requests, args.services)))


if __name__ == "__main__":
    main()
