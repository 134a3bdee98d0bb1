"""Supervisor start-up and staging throughput, against a baseline measured in the same run.

    python benchmarks/supervisor_bench.py [--runs 15] [--size-mb 64]

Start-up: `oscar-supervisor` processing a trivial UNKNOWN event, against a bare `python -c pass`.
Staging: an S3 event for a `--size-mb` object staged in and out through a real MinIO (from the
test environment: `scripts/testenv.sh install minio`), against raw boto3 doing the same download
and upload in-process. Prints median and p95 and the ratio to the baseline.
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
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import boto3  # noqa: E402
import yaml  # noqa: E402

from benchmarks.stats import Row, format_table, timing_row  # noqa: E402
from tests.services import minio as minio_service  # noqa: E402


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _timed(action: Callable[[], None], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return samples


def _run_supervisor(env: dict[str, str], event: bytes) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "supervisor"], input=event, env=env, capture_output=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"supervisor failed: {result.stderr.decode()[-2000:]}")


def startup(runs: int) -> list[Row]:
    """Rows for the start-up comparison."""
    env = {
        **os.environ,
        "FUNCTION_CONFIG": _b64("name: bench\nlog_level: CRITICAL\n"),
        "SCRIPT": _b64("echo ok\n"),
        "PYTHONPATH": str(REPO_ROOT),
    }
    baseline = _timed(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), runs)
    job = _timed(lambda: _run_supervisor(env, b"hello"), runs)
    return [
        timing_row(
            "supervisor start-up, UNKNOWN event, echo",
            job,
            baseline,
            baseline_name="python -c pass",
        )
    ]


def staging(runs: int, size_mb: int) -> list[Row]:
    """Rows for the staging comparison against a real MinIO."""
    found: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp, minio_service.running(Path(tmp)) as server:
        s3 = boto3.client(
            "s3",
            endpoint_url=server.endpoint,
            aws_access_key_id=server.access_key,
            aws_secret_access_key=server.secret_key,
            region_name="us-east-1",
        )
        bucket_in, bucket_out = f"in-{uuid.uuid4().hex[:6]}", f"out-{uuid.uuid4().hex[:6]}"
        s3.create_bucket(Bucket=bucket_in)
        s3.create_bucket(Bucket=bucket_out)
        source = Path(tmp) / "object.bin"
        with source.open("wb") as handle:
            for _ in range(size_mb):
                handle.write(os.urandom(1024 * 1024))
        s3.upload_file(str(source), bucket_in, "in/object.bin")
        scratch = Path(tmp) / "scratch.bin"

        def raw() -> None:
            s3.download_file(bucket_in, "in/object.bin", str(scratch))
            s3.upload_file(str(scratch), bucket_out, "raw/object.bin")

        config = {
            "name": "bench",
            "log_level": "CRITICAL",
            "input": [{"storage_provider": "minio.default", "path": f"{bucket_in}/in"}],
            "output": [{"storage_provider": "minio.default", "path": f"{bucket_out}/sup"}],
            "storage_providers": {"minio": {"default": {"endpoint": server.endpoint}}},
        }
        env = {
            **os.environ,
            "FUNCTION_CONFIG": _b64(yaml.safe_dump(config)),
            "SCRIPT": _b64('mv "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/"\n'),
            "MINIO_ACCESS_KEY": server.access_key,
            "MINIO_SECRET_KEY": server.secret_key,
            "PYTHONPATH": str(REPO_ROOT),
            "PROVIDER_SECRETS_DIR": str(Path(tmp) / "none"),
        }
        record = {"eventSource": "minio:s3", "s3": {"bucket": {"name": bucket_in}}}
        record["s3"]["object"] = {"key": "in%2Fobject.bin"}
        event = json.dumps({"Records": [record]}).encode()
        baseline = _timed(raw, runs)
        supervised = _timed(lambda: _run_supervisor(env, event), runs)
        found.append(
            timing_row(
                f"supervisor stage in+out {size_mb} MB (MinIO)",
                supervised,
                baseline,
                baseline_name="boto3 in process",
            )
        )
        found.append(
            Row(
                "supervisor staging throughput (in+out)",
                "MB/s",
                value=2 * size_mb / statistics.median(supervised),
                baseline=2 * size_mb / statistics.median(baseline),
                baseline_name="boto3 in process",
            )
        )
    return found


def rows(runs: int = 15, size_mb: int = 64) -> list[Row]:
    """Both comparisons' rows (staging runs a third as often, at least 3 times)."""
    return startup(runs) + staging(max(3, runs // 3), size_mb)


def main() -> None:
    """Run both comparisons and print one table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--size-mb", type=int, default=64)
    args = parser.parse_args()
    print(format_table(rows(args.runs, args.size_mb)))


if __name__ == "__main__":
    main()
