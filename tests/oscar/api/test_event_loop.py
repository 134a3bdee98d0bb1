"""Large requests are handled off the event loop: `/health` keeps answering meanwhile.

Regression of the audit's L6 (during 3 x 60 MiB `/job` posts `/health` stalled for 2.68 s). The
bound here is deliberately loose — a stall of a second means the loop was blocked; the latency
itself is measured by benchmarks/health_under_load_bench.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx

from tests.fixtures.server import RunningServer
from tests.fixtures.services import minimal_service, unique_name

STALL = 1.0  # seconds: far above a healthy answer, far below what a blocked loop produced


def test_health_answers_while_large_bodies_are_processed(
    start_oscar: Callable[..., RunningServer],
) -> None:
    server = start_oscar()
    api = server.client(timeout=120)
    name = unique_name("big")
    assert api.post("/system/services", json=minimal_service(name, script="true")).is_success
    body = b"x" * (60 * 2**20)
    definition = minimal_service(unique_name("bigdef"), script="# pad\n" * (2**20 // 6))

    def post_job() -> None:
        with server.client(timeout=120) as client:
            assert client.post(f"/job/{name}", content=body).status_code == 201

    def post_definition() -> None:
        with server.client(timeout=120) as client:
            assert client.post("/system/services", json=definition).status_code == 201

    workers = [threading.Thread(target=post_job) for _ in range(3)]
    workers.append(threading.Thread(target=post_definition))
    latencies: list[float] = []
    with httpx.Client(base_url=server.url, timeout=30) as probe:
        for worker in workers:
            worker.start()
        while any(worker.is_alive() for worker in workers):
            started = time.perf_counter()
            assert probe.get("/health").status_code == 200
            latencies.append(time.perf_counter() - started)
    for worker in workers:
        worker.join()
    assert latencies, "the posts ended before any probe"
    print(f"max /health latency {max(latencies):.3f}s over {len(latencies)} probes")
    assert max(latencies) < STALL, f"/health stalled {max(latencies):.2f}s"
