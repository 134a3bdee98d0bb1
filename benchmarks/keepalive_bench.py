"""Small requests on a kept-alive connection against a new connection per request, same run.

    python benchmarks/keepalive_bench.py [--requests 300]

Starts a real `oscar serve` and times, interleaved so both see the same machine:

- `GET /health` with one httpx client that keeps its connection, against the same request on a
  client whose pool keeps no connection (a TCP connect per request, no client construction);
- a GET of an 11-byte object on the embedded S3 port with a warm boto3 client, against the same
  client sending `Connection: close` (the server closes after each answer, so urllib3 connects
  again);
- the same object fetched by httpx through a presigned URL, kept-alive against no keep-alive.

Target (issue): p50 <= 2 ms on the kept-alive connection.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import httpx  # noqa: E402

from benchmarks.stats import Row, format_table, timing_row  # noqa: E402
from tests.fixtures.server import start_server  # noqa: E402

TARGET_P50_MS = 2.0
BODY = b"hello world"  # 11 bytes


def _close_connection(request: Any, **_: Any) -> None:
    # Asking the server to close makes urllib3 open a new connection for the next request.
    request.headers["Connection"] = "close"


def _pair(
    warm: Callable[[], object], cold: Callable[[], object], count: int
) -> tuple[list[float], list[float]]:
    """Interleaved timings of `warm` and `cold`, after a few warm-ups of each."""
    for _ in range(5):
        warm()
        cold()
    warm_samples, cold_samples = [], []
    for _ in range(count):
        for call, samples in ((warm, warm_samples), (cold, cold_samples)):
            started = time.perf_counter()
            call()
            samples.append(time.perf_counter() - started)
    return warm_samples, cold_samples


def rows(requests: int = 300) -> list[Row]:
    """Run the measurements against a fresh server and return the table's rows."""
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "data")
        try:
            kept = httpx.Client(base_url=server.url, timeout=10)
            fresh = httpx.Client(
                base_url=server.url, timeout=10, limits=httpx.Limits(max_keepalive_connections=0)
            )

            def health(client: httpx.Client) -> Callable[[], object]:
                return lambda: client.get("/health").raise_for_status()

            health_warm, health_cold = _pair(health(kept), health(fresh), requests)

            bucket = f"keepalive-{uuid.uuid4().hex[:6]}"
            admin = server.s3()
            admin.create_bucket(Bucket=bucket)
            admin.put_object(Bucket=bucket, Key="small.txt", Body=BODY)
            closing = server.s3()
            closing.meta.events.register("before-send.s3.*", _close_connection)

            def boto_get(client: Any) -> Callable[[], object]:
                return lambda: client.get_object(Bucket=bucket, Key="small.txt")["Body"].read()

            boto_warm, boto_cold = _pair(boto_get(admin), boto_get(closing), requests)

            url = admin.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": "small.txt"}, ExpiresIn=3600
            )

            def presigned(client: httpx.Client) -> Callable[[], object]:
                def get() -> object:
                    answer = client.get(url)
                    answer.raise_for_status()
                    assert answer.content == BODY
                    return answer

                return get

            httpx_warm, httpx_cold = _pair(presigned(kept), presigned(fresh), requests)
            kept.close()
            fresh.close()
        finally:
            server.stop()
    label = "new connection each"
    return [
        timing_row(
            "GET /health, kept-alive",
            health_warm,
            health_cold,
            baseline_name=label,
            p50_ms=TARGET_P50_MS,
        ),
        timing_row(
            "S3 GET 11 B, boto3 kept-alive",
            boto_warm,
            boto_cold,
            baseline_name=label,
            p50_ms=TARGET_P50_MS,
        ),
        timing_row(
            "S3 GET 11 B, httpx presigned kept-alive",
            httpx_warm,
            httpx_cold,
            baseline_name=label,
            p50_ms=TARGET_P50_MS,
        ),
    ]


def main() -> None:
    """Run the measurements and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    print(format_table(rows(args.requests)))


if __name__ == "__main__":
    main()
