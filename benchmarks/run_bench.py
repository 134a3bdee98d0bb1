"""`POST /run/<service>` round trip on a warm server, against `sh` running the script directly.

    python benchmarks/run_bench.py [--calls 50]

Starts a real `oscar serve` (embedded default, local executor), creates a service whose script
is `echo hello`, and calls it synchronously with the service's own token (`Authorization:
Bearer`, what a client of the service sends) on one kept-alive httpx connection: 5 warm-up
calls, then `--calls` measured ones (at least 30), each from sending the request to the whole
answer read. Baseline: `subprocess.run([SH, "-c", script])` from this process, the floor for
starting any process that runs the script.

Target (issue): p50 <= 25 ms.
"""

from __future__ import annotations

import argparse
import base64
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import httpx  # noqa: E402

from benchmarks.stats import Row, format_table, timing_row  # noqa: E402
from tests.fixtures.server import start_server  # noqa: E402
from tests.fixtures.services import minimal_service  # noqa: E402

# The shell by absolute path, as the job would find it.
SH = shutil.which("sh") or "/bin/sh"
SCRIPT = "echo hello\n"
WARM_UP = 5
MIN_CALLS = 30
TARGET_P50_MS = 25.0


def rows(calls: int = 50) -> list[Row]:
    """Run the measurements against a fresh server and return the table's rows."""
    calls = max(MIN_CALLS, calls)
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "data")
        try:
            api = server.client(timeout=60)
            name = f"run-{uuid.uuid4().hex[:6]}"
            service = minimal_service(name, script=SCRIPT, log_level="WARNING")
            api.post("/system/services", json=service).raise_for_status()
            token = api.get(f"/system/services/{name}").json()["token"]
            body = base64.b64encode(b"hi")
            samples = []
            with httpx.Client(
                base_url=server.url, timeout=60, headers={"Authorization": f"Bearer {token}"}
            ) as client:
                for index in range(WARM_UP + calls):
                    started = time.perf_counter()
                    answer = client.post(f"/run/{name}", content=body)
                    answer.raise_for_status()
                    elapsed = time.perf_counter() - started
                    assert "hello" in answer.text, answer.text
                    if index >= WARM_UP:
                        samples.append(elapsed)
        finally:
            server.stop()
    baseline = []
    for _ in range(WARM_UP + calls):
        started = time.perf_counter()
        subprocess.run([SH, "-c", SCRIPT], check=True, capture_output=True)
        baseline.append(time.perf_counter() - started)
    return [
        timing_row(
            "/run round trip, warm",
            samples,
            baseline[WARM_UP:],
            baseline_name="sh runs the script",
            p50_ms=TARGET_P50_MS,
        )
    ]


def main() -> None:
    """Run the measurements and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    print(format_table(rows(args.calls)))


if __name__ == "__main__":
    main()
