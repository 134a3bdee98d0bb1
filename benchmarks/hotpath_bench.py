"""The control plane's event hot path: object-created event → durable job record, in process.

    python benchmarks/hotpath_bench.py [--services 1000] [--uploads 10000]

What is timed: `EmbeddedStorage.object_created(info, principal, event_name)` — exactly what the
embedded S3 endpoint calls (in a worker thread) after it has committed an uploaded object, and
before it acknowledges the PUT. That call matches the object against every registered service's
inputs and, through `Dispatcher.submit`, writes one durable job record per matching service
(`jobs.db`, fsynced). HTTP, SigV4 and the object write are not included: the figure isolates the
cost of matching and recording, which is what grows with the number of services.

The pieces are the server's own: `oscar.app.create_app` on a temp data dir builds the registry
(SQLite), job store, dispatcher, executors and embedded storage exactly as `oscar serve` does,
and services are created through its `ServiceManager` (so each has its input bucket and folder,
as after `POST /system/services`). The app's lifespan is never entered, so the dispatcher's
reconcile loops do not run: no job executes, and nothing competes with the timed calls.

`--uploads` events are spread round-robin over `--services` services (each its own input
bucket); the baseline is the same number of events on a server with one service.
Target (issue): p95 <= 5 ms with 1,000 services.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.stats import Row, format_table, timing_row  # noqa: E402
from oscar.app import create_app  # noqa: E402
from oscar.models.service import Service  # noqa: E402
from oscar.settings import Settings  # noqa: E402
from oscar.storage.embedded.provider import EmbeddedStorage  # noqa: E402
from oscar.storage.embedded.store import ObjectInfo  # noqa: E402
from tests.fixtures.server import ADMIN_PASSWORD, ADMIN_USER  # noqa: E402
from tests.fixtures.services import minimal_service  # noqa: E402

TARGET_P95_MS = 5.0
EVENT = "s3:ObjectCreated:Put"


def _times(
    data_dir: Path, services: int, uploads: int, budget: float
) -> tuple[list[float], float, int]:
    """(seconds per `object_created`, seconds spent creating services, job records written).

    Stops early once the timed calls have taken `budget` seconds in all, so a slow hot path
    still gives a figure (from fewer samples, which the table's note says).
    """
    # The developer's own OSCAR_* variables must not change what is measured.
    for variable in [v for v in os.environ if v.startswith("OSCAR_")]:
        del os.environ[variable]
    settings = Settings(data_dir=data_dir, password=ADMIN_PASSWORD)
    state = create_app(settings).state.oscar
    storage = state.storage
    assert isinstance(storage, EmbeddedStorage), "the embedded store is the default"
    try:
        began = time.perf_counter()
        names = []
        for index in range(services):
            name = f"hot-{index:04d}"
            definition = minimal_service(
                name,
                input=[{"storage_provider": "minio.default", "path": f"{name}/in"}],
                output=[{"storage_provider": "minio.default", "path": f"{name}/out"}],
            )
            state.services.create(Service.model_validate(definition))
            names.append(name)
        creating = time.perf_counter() - began
        samples: list[float] = []
        deadline = time.perf_counter() + budget
        for index in range(uploads):
            if time.perf_counter() > deadline:
                break
            name = names[index % services]
            info = ObjectInfo(
                bucket=name,
                key=f"in/u{index}.txt",
                size=1,
                etag="9dd4e461268c8034f5c8564e155c67a6",
                content_type="text/plain",
                modified=datetime.now(UTC),
            )
            started = time.perf_counter()
            storage.object_created(info, ADMIN_USER, EVENT)
            samples.append(time.perf_counter() - started)
        recorded = sum(len(state.job_store.summaries(name)) for name in names)
    finally:
        state.registry.close()
        state.job_store.close()
        storage.store.close()
    return samples, creating, recorded


def rows(services: int = 1000, uploads: int = 10000, budget: float = 180) -> list[Row]:
    """Time the hot path with `services` services and with one; return the table's rows.

    `budget`: seconds of timed calls per configuration at most (see `_times`).
    """
    with tempfile.TemporaryDirectory() as tmp:
        many, creating, recorded = _times(Path(tmp) / "many", services, uploads, budget)
        one, _, one_recorded = _times(Path(tmp) / "one", 1, len(many), budget)
    assert recorded == len(many), f"{recorded} job records for {len(many)} events"
    assert one_recorded == len(one), f"{one_recorded} job records for {len(one)} events"
    cut = "" if len(many) == uploads else f" of {uploads} (time budget {budget:g} s)"
    return [
        timing_row(
            f"event -> job record, {services} services",
            many,
            one,
            baseline_name="1 service",
            p95_ms=TARGET_P95_MS,
            note=f"n={len(many)}{cut}, in process; services created in {creating:.1f} s",
        )
    ]


def main() -> None:
    """Run the measurements and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--uploads", type=int, default=10000)
    parser.add_argument("--budget", type=float, default=180, help="seconds of timed calls, max")
    args = parser.parse_args()
    print(format_table(rows(args.services, args.uploads, args.budget)))


if __name__ == "__main__":
    main()
