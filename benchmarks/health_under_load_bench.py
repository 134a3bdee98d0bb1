"""`/health` latency while the control plane is busy, against the same server idle.

    python benchmarks/health_under_load_bench.py [--jobs 50] [--definitions 20] [--mib 2]

Starts a real `oscar serve` on the embedded default, measures `/health` on the idle server
(the baseline), then again while `--jobs` jobs run (each sleeps) and `--definitions` large
service definitions (a script of `--mib` MiB each) are posted at the same time from other
threads. Nothing the API does may block its event loop, so the two should be close.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import httpx  # noqa: E402

from benchmarks.stats import Row, format_table, timing_row  # noqa: E402
from tests.fixtures.server import start_server  # noqa: E402
from tests.fixtures.services import minimal_service  # noqa: E402


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def _probe(url: str, until: threading.Event, samples: list[float], count: int = 0) -> None:
    with httpx.Client(timeout=30) as client:
        while not until.is_set() and (count == 0 or len(samples) < count):
            started = time.perf_counter()
            client.get(f"{url}/health").raise_for_status()
            samples.append(time.perf_counter() - started)
            time.sleep(0.005)


def rows(jobs: int = 50, definitions: int = 20, mib: float = 2.0) -> list[Row]:
    """Run the measurements against a fresh server and return the table's rows."""
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(
            Path(tmp) / "data", extra_env={"OSCAR_MAX_CONCURRENT_JOBS": str(jobs)}
        )
        try:
            api = server.client(timeout=120)
            idle: list[float] = []
            _probe(server.url, threading.Event(), idle, count=300)

            name = f"busy-{uuid.uuid4().hex[:6]}"
            api.post(
                "/system/services", json=minimal_service(name, script="sleep 20\n")
            ).raise_for_status()
            for _ in range(jobs):
                api.post(f"/job/{name}", content=b"x").raise_for_status()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                listed = api.get(f"/system/logs/{name}").json()["jobs"].values()
                if sum(j["status"] == "Running" for j in listed) == jobs:
                    break
                time.sleep(0.1)
            script = "# padding\n" * int(mib * 2**20 / 10) + "echo hi\n"
            done = threading.Event()
            loaded: list[float] = []
            probe = threading.Thread(target=_probe, args=(server.url, done, loaded))
            probe.start()

            def post(i: int) -> None:
                with server.client(timeout=120) as client:
                    definition = minimal_service(f"big-{i}-{uuid.uuid4().hex[:4]}", script=script)
                    client.post("/system/services", json=definition).raise_for_status()

            posters = [threading.Thread(target=post, args=(i,)) for i in range(definitions)]
            started = time.perf_counter()
            for thread in posters:
                thread.start()
            for thread in posters:
                thread.join()
            posting = time.perf_counter() - started
            # Keep measuring while the jobs run, for enough samples to read a p99 from.
            while len(loaded) < 300 and time.perf_counter() - started < 15:
                time.sleep(0.1)
            done.set()
            probe.join()
        finally:
            server.stop()
    load = f"{jobs} running jobs + {definitions} definitions of {mib:g} MiB in {posting:.1f} s"
    return [
        timing_row(
            "GET /health under load",
            loaded,
            idle,
            baseline_name="idle server",
            note=f"n={len(loaded)}, p99 {_p99(loaded) * 1000:.1f} ms; {load}",
        )
    ]


def main() -> None:
    """Run the measurements and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--definitions", type=int, default=20)
    parser.add_argument("--mib", type=float, default=2.0)
    args = parser.parse_args()
    print(format_table(rows(args.jobs, args.definitions, args.mib)))


if __name__ == "__main__":
    main()
