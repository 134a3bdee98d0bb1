"""The Slurm path's overhead against a bare `sbatch` of the same script, in the same run.

    python benchmarks/slurm_bench.py [--runs 10]

Baseline: `sbatch` of a script running `echo` directly, timed from submission to the job
running and to COMPLETED (observed with `scontrol`, polled every 50 ms).
Ours: `POST /job/<service>` for a `routing: hpc` service with the same script, timed from the
request to the job's `start_time` and to `Succeeded` in the logs API (polled every 50 ms); this
adds the job record, the batch script and the supervisor (UNKNOWN event, no staging).
Needs `scripts/testenv.sh install slurm`.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.stats import row_ms  # noqa: E402
from tests.fixtures.server import start_server  # noqa: E402
from tests.fixtures.services import minimal_service  # noqa: E402
from tests.services import slurm as slurm_service  # noqa: E402


def _poll(check: Callable[[], T], interval: float = 0.05, timeout: float = 120) -> T:
    deadline = time.time() + timeout
    while time.time() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    raise TimeoutError("benchmark step timed out")


def main() -> None:
    """Run both paths and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "slurm").mkdir()
        with slurm_service.running(root / "slurm") as cluster:
            bare_start, bare_end = [], []
            script = root / "bare.sh"
            script.write_text("#!/bin/sh\necho hello\n")
            for index in range(args.runs):
                began = time.time()
                out = cluster.run(
                    ["sbatch", "--parsable", f"--output={root}/bare-{index}.out", str(script)]
                ).stdout
                job_id = out.strip().split(";")[0]

                def state(job_id: str = job_id) -> str:
                    text = cluster.run(["scontrol", "show", "job", "--oneliner", job_id]).stdout
                    match = re.search(r"JobState=(\S+)", text)
                    return match.group(1) if match else ""

                _poll(lambda: state() in ("RUNNING", "COMPLETING", "COMPLETED"))
                bare_start.append(time.time() - began)
                _poll(lambda: state() == "COMPLETED")
                bare_end.append(time.time() - began)

            server = start_server(
                root / "data",
                extra_env={
                    "OSCAR_HPC_EXECUTOR": "slurm",
                    "OSCAR_SLURM_CONF": str(cluster.conf_path),
                },
            )
            try:
                api = server.client()
                name = f"bench-{uuid.uuid4().hex[:6]}"
                service = minimal_service(name, script="echo hello\n", routing="hpc", cpu="1")
                api.post("/system/services", json=service).raise_for_status()
                ours_start, ours_end = [], []
                for _ in range(args.runs):
                    began = time.time()
                    answer = api.post(f"/job/{name}", content=b"x")
                    job = answer.headers["x-oscar-job-name"]

                    def record(job: str = job) -> dict[str, Any]:
                        return api.get(f"/system/logs/{name}").json()["jobs"][job]

                    _poll(lambda: record()["start_time"])
                    ours_start.append(time.time() - began)
                    done = _poll(lambda: record()["status"] == "Succeeded" and record())
                    ours_end.append(time.time() - began)
                    assert datetime.fromisoformat(done["finish_time"].replace("Z", "+00:00"))
            finally:
                server.stop()
    base_start = sorted(bare_start)[len(bare_start) // 2]
    base_end = sorted(bare_end)[len(bare_end) // 2]
    print(f"| {'measurement':<34} | {'median':>12} | {'p95':>12} | ratio |")
    print(f"|{'-' * 36}|{'-' * 14}|{'-' * 14}|-------|")
    print(row_ms("bare sbatch: submit -> running", bare_start, base_start))
    print(row_ms("oscar hpc: request -> running", ours_start, base_start))
    print(row_ms("bare sbatch: submit -> completed", bare_end, base_end))
    print(row_ms("oscar hpc: request -> succeeded", ours_end, base_end))


if __name__ == "__main__":
    main()
