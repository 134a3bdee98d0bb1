"""Embedded-default pipeline latency and throughput, with a baseline measured in the same run.

    python benchmarks/pipeline_bench.py [--uploads 40] [--burst 100]

Starts a real `oscar serve`, applies a trivial service (`cp` input to output), then measures
upload→job-start and upload→output latency one upload at a time, and jobs/second for a burst.
The baseline is the same supervisor run by hand (`python -m supervisor`) on the same event: the
floor any executor pays for starting the job process.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import boto3  # noqa: E402

from benchmarks.stats import row_ms  # noqa: E402
from tests.fixtures.server import start_server  # noqa: E402
from tests.fixtures.services import minimal_service  # noqa: E402


def _parse(stamp: str | None) -> float:
    assert stamp, "missing timestamp"
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def main() -> None:
    """Run the measurements and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--uploads", type=int, default=40)
    parser.add_argument("--burst", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "data")
        try:
            api = server.client()
            name = f"bench-{uuid.uuid4().hex[:6]}"
            service = minimal_service(
                name,
                script='cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/"\n',
                log_level="WARNING",
                input=[{"storage_provider": "minio.default", "path": f"{name}/in"}],
                output=[{"storage_provider": "minio.default", "path": f"{name}/out"}],
            )
            api.post("/system/services", json=service).raise_for_status()
            provider = api.get("/system/config").json()["minio_provider"]
            s3 = boto3.client(
                "s3",
                endpoint_url=provider["endpoint"],
                aws_access_key_id=provider["access_key"],
                aws_secret_access_key=provider["secret_key"],
                region_name=provider["region"],
            )

            def wait_output(key: str) -> float:
                while True:
                    try:
                        s3.head_object(Bucket=name, Key=key)
                        return time.time()
                    except s3.exceptions.ClientError:
                        time.sleep(0.005)

            start_latency, output_latency = [], []
            for index in range(args.uploads):
                sent = time.time()
                s3.put_object(Bucket=name, Key=f"in/s{index}.txt", Body=b"x")
                done = wait_output(f"out/s{index}.txt")
                output_latency.append(done - sent)
                jobs = api.get(f"/system/logs/{name}").json()["jobs"]
                newest = max(jobs.values(), key=lambda j: j["creation_time"])
                start_latency.append(_parse(newest["start_time"]) - sent)
            api.delete(f"/system/logs/{name}", params={"all": "true"})

            # Baseline: the supervisor started by hand for the same kind of event.
            config = {
                "name": name,
                "log_level": "WARNING",
                "input": [{"storage_provider": "minio.default", "path": f"{name}/in"}],
                "output": [{"storage_provider": "minio.default", "path": f"{name}/base"}],
                "storage_providers": {"minio": {"default": {"endpoint": provider["endpoint"]}}},
            }
            env = {
                **os.environ,
                "PYTHONPATH": str(REPO_ROOT),
                "FUNCTION_CONFIG": base64.b64encode(json.dumps(config).encode()).decode(),
                "SCRIPT": base64.b64encode(b'cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/"\n').decode(),
                "MINIO_ACCESS_KEY": provider["access_key"],
                "MINIO_SECRET_KEY": provider["secret_key"],
                "PROVIDER_SECRETS_DIR": str(Path(tmp) / "none"),
            }
            record = {
                "eventSource": "minio:s3",
                "s3": {"bucket": {"name": name}, "object": {"key": "in%2Fs0.txt"}},
            }
            event = json.dumps({"Records": [record]}).encode()
            baseline = []
            for _ in range(max(5, args.uploads // 4)):
                began = time.time()
                subprocess.run(
                    [sys.executable, "-m", "supervisor"],
                    input=event,
                    env=env,
                    check=True,
                    capture_output=True,
                )
                baseline.append(time.time() - began)
            floor = statistics.median(baseline)

            began = time.time()
            for index in range(args.burst):
                s3.put_object(Bucket=name, Key=f"in/b{index}.txt", Body=b"x")
            for index in range(args.burst):
                wait_output(f"out/b{index}.txt")
            elapsed = time.time() - began
        finally:
            server.stop()
    print(f"| {'measurement':<32} | {'median':>12} | {'p95':>12} | ratio |")
    print(f"|{'-' * 34}|{'-' * 14}|{'-' * 14}|-------|")
    print(row_ms("supervisor by hand (baseline)", baseline, floor, 32))
    print(row_ms("upload -> job start", start_latency, floor, 32))
    print(row_ms("upload -> output in bucket", output_latency, floor, 32))
    print(
        f"| {'burst throughput':<32} | {args.burst / elapsed:>8.1f} jobs/s | "
        f"{args.burst} jobs in {elapsed:.1f} s | |"
    )


if __name__ == "__main__":
    main()
