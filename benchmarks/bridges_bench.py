"""Event bridges (issue 19): drop → job start and drop → output latency per source, against an
upload to the embedded store's own input bucket (no bridge) measured in the same run.

    python benchmarks/bridges_bench.py [--drops 30] [--sources webdav,webdav-fast,dcache,...]

For each source a real `oscar serve` gets a service whose script is `cp "$INPUT_FILE_PATH"
"$TMP_OUTPUT_DIR/"` (output on the embedded store), the input the bridge feeds, and a bridge of
that type. Then `--drops` drops one at a time (after one untimed warm-up drop), each timed from
the drop to the job's `start_time` in `GET /system/logs/<svc>` and to the moment a HEAD (polled
every 5 ms) finds the output; the drop → job record time (`creation_time`) is in the note.
What a drop is, per source (see `benchmarks/bridge_sources.py`):

- webdav (`webdav`, `webdav-fast`): a file written and closed in the served folder of a real
  WsgiDAV server; the bridge PROPFINDs every 1 s (0.5 s) and takes a file once it looked the
  same in 2 listings (`stable_polls`); each drop first waits a random 0..interval, so drops
  fall at any point of the poll cycle (right after the previous output they would always land
  just after a poll: the worst case);
- dcache: the file written to WsgiDAV, then announced (`IN_CREATE`, `IN_CLOSE_WRITE`) by the
  stand-in for dCache's SSE event API (`tests/fixtures/dcache.py`; dCache cannot run here);
  timed from the announcement;
- sqs: an object PUT to a real MinIO, then an AWS-format S3 event notification (`aws:s3`) for
  it sent by the benchmark to ElasticMQ, standing in for AWS S3's notification service (which
  cannot run here); timed from the message sent; the bridge long-polls (interval 10 s = the
  longest wait);
- kafka: an object PUT to a real MinIO that publishes its bucket events to Kafka through its
  Kafka notification target; the bridge polls the topic (interval 1 s);
- minio: an object PUT to a real MinIO the bridge listens to (ListenBucketNotification). The
  test MinIO holds its listen stream in a 4 KiB buffer (a bug of that build), so a lone upload
  is found by the bridge's listing every `reconcile` (1 s) seconds; each drop waits a random
  point of that cycle first.

The baseline, on the same `oscar serve` before the bridge is created, is the same service shape
with a `minio.default` input: an upload there is recorded as a job at once, with no bridge.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.bridge_sources import (  # noqa: E402
    SOURCES,
    Plan,
    Servers,
    Source,
    servers_for,
)
from benchmarks.stats import Row, format_table, timing_row  # noqa: E402
from tests.fixtures.server import RunningServer, start_server  # noqa: E402
from tests.fixtures.services import minimal_service  # noqa: E402

SCRIPT = 'cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/"\n'
BODY = b"x"
WARMUP = 1  # untimed drops per source first: connections, consumer group joins, imports
OUTPUT_POLL = 0.005  # seconds between two HEADs of the output
DROP_TIMEOUT = 60.0  # seconds a drop may take to reach its output
BRIDGE_READY_TIMEOUT = 60.0
BASELINE_NAME = "embedded upload, no bridge"
# What stands in for a server that cannot run here, printed under the table.
STAND_INS = {
    "sqs": "the S3 event notifications are sent by the benchmark itself (AWS format, eventSource "
    "aws:s3) for objects it put in MinIO: a stand-in for AWS S3's notification service, which "
    "cannot run here.",
    "dcache": "tests/fixtures/dcache.py stands in for dCache's SSE event API (dCache cannot run "
    "here); the files are served and staged by a real WsgiDAV.",
}


def _parse(stamp: str | None) -> float:
    assert stamp, "missing timestamp"
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:.0f} ms" if samples else "-"


@dataclass
class Timings:
    """Per drop, in seconds: drop → job record, → job start, → output; and what else showed."""

    record: list[float] = field(default_factory=list)
    start: list[float] = field(default_factory=list)
    output: list[float] = field(default_factory=list)
    extra_jobs: int = 0  # job records beyond one per drop
    statuses: Counter[str] = field(default_factory=Counter)


class Oscar:
    """One `oscar serve` and the clients a measurement needs."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.api = server.client(timeout=60)
        self.s3 = server.s3()

    def create_service(self, name: str, entry: dict[str, Any], providers: dict[str, Any]) -> None:
        """The benchmark's service: `entry` as input, output on the embedded store."""
        definition = minimal_service(
            name,
            script=SCRIPT,
            log_level="WARNING",
            input=[entry],
            output=[{"storage_provider": "minio.default", "path": f"{name}/out"}],
            **({"storage_providers": providers} if providers else {}),
        )
        self.api.post("/system/services", json=definition).raise_for_status()

    def jobs(self, service: str) -> dict[str, dict[str, Any]]:
        """Every job of the service, following `/system/logs` pages."""
        jobs: dict[str, dict[str, Any]] = {}
        page = ""
        while True:
            answer = self.api.get(
                f"/system/logs/{service}", params={"page": page} if page else None
            )
            answer.raise_for_status()
            body = answer.json()
            jobs.update(body["jobs"])
            page = body["next_page"]
            if not page:
                return jobs

    def wait_output(self, bucket: str, key: str, describe: Callable[[], str]) -> float:
        """When a HEAD first finds `bucket/key` (time.time())."""
        deadline = time.monotonic() + DROP_TIMEOUT
        while time.monotonic() < deadline:
            try:
                self.s3.head_object(Bucket=bucket, Key=key)
                return time.time()
            except self.s3.exceptions.ClientError:
                time.sleep(OUTPUT_POLL)
        raise TimeoutError(f"no output {bucket}/{key} after {DROP_TIMEOUT:g} s; {describe()}")

    def _started(self, service: str, names: set[str]) -> dict[str, dict[str, Any]]:
        """The jobs among `names` once each has a start time (the output exists already)."""
        deadline = time.monotonic() + 10
        while True:
            jobs = {n: j for n, j in self.jobs(service).items() if n in names}
            if all(job["start_time"] for job in jobs.values()) or time.monotonic() > deadline:
                return jobs
            time.sleep(0.01)

    def measure(
        self,
        service: str,
        drop: Callable[[int], float],
        drops: int,
        describe: Callable[[], str],
        phase: float = 0.0,
    ) -> Timings:
        """`drops` sequential drops (after `WARMUP` untimed ones), each until its output; with
        `phase`, each drop first waits a random 0..`phase` s (a random point of a poll cycle)."""
        timings = Timings()
        seen: set[str] = set(self.jobs(service))
        chance = random.Random(0)  # noqa: S311 - when to drop, not a secret
        for index in range(WARMUP + drops):
            if phase:
                time.sleep(chance.uniform(0, phase))
            dropped = drop(index)
            output_at = self.wait_output(service, f"out/d{index}.txt", describe)
            new = set(self.jobs(service)) - seen
            if not new:
                raise RuntimeError(f"output out/d{index}.txt appeared without a job record")
            seen |= new
            jobs = self._started(service, new)
            timings.extra_jobs += len(new) - 1
            # The job of this drop: the first recorded after it (an extra one is a duplicate).
            after = [j for j in jobs.values() if _parse(j["creation_time"]) >= dropped - 1]
            job = min(after or jobs.values(), key=lambda j: _parse(j["creation_time"]))
            if index < WARMUP:
                continue
            timings.record.append(_parse(job["creation_time"]) - dropped)
            timings.start.append(_parse(job["start_time"]) - dropped)
            timings.output.append(output_at - dropped)
        timings.statuses = self._final_statuses(service)
        return timings

    def _final_statuses(self, service: str) -> Counter[str]:
        deadline = time.monotonic() + 30
        while True:
            jobs = self.jobs(service)
            done = all(j["status"] not in ("Pending", "Running") for j in jobs.values())
            if done or time.monotonic() > deadline:
                return Counter(job["status"] for job in jobs.values())
            time.sleep(0.05)

    @contextlib.contextmanager
    def bridge(self, definition: dict[str, Any]) -> Iterator[Callable[[], dict[str, Any]]]:
        """Create the bridge, wait until it runs, yield a reader of its status, delete it."""
        name = definition["name"]
        self.api.post("/system/bridges", json=definition).raise_for_status()

        def status() -> dict[str, Any]:
            answer = self.api.get(f"/system/bridges/{name}")
            answer.raise_for_status()
            return dict(answer.json()["status"])

        try:
            deadline = time.monotonic() + BRIDGE_READY_TIMEOUT
            while (now := status())["state"] != "running":
                if time.monotonic() > deadline:
                    raise TimeoutError(f"bridge {name} not running: {now}")
                time.sleep(0.05)
            yield status
        finally:
            self.api.delete(f"/system/bridges/{name}")

    def log_problems(self, since: int) -> list[str]:
        """WARNING and worse lines (or anything not JSON) the server logged after byte `since`."""
        text = self.server.log_path.read_bytes()[since:].decode(errors="replace")
        problems = []
        for line in text.splitlines():
            try:
                level = json.loads(line).get("level", "")
            except ValueError:
                level = "RAW"
            if level not in ("DEBUG", "INFO"):
                problems.append(line)
        return problems


def _baseline(oscar: Oscar, drops: int) -> Timings:
    """Uploads to the embedded store's own input bucket: recorded at once, no bridge."""
    name = f"base-{uuid.uuid4().hex[:6]}"
    oscar.create_service(name, {"storage_provider": "minio.default", "path": f"{name}/in"}, {})

    def drop(index: int) -> float:
        dropped = time.time()
        oscar.s3.put_object(Bucket=name, Key=f"in/d{index}.txt", Body=BODY)
        return dropped

    return oscar.measure(name, drop, drops, lambda: "baseline")


def _source_rows(source: Source, servers: Servers, drops: int, tmp: Path) -> list[Row]:
    """Baseline and bridge drops for one source, on a server of its own; the server's
    warnings from the bridge's creation on are printed to stderr (and counted in the note)."""
    server = start_server(tmp / f"oscar-{source.key}")
    oscar = Oscar(server)
    since = server.log_path.stat().st_size
    try:
        name = f"{source.key}-{uuid.uuid4().hex[:6]}"
        plan: Plan = source.plan(servers, name)
        baseline = _baseline(oscar, drops)
        oscar.create_service(name, plan.input, plan.providers)
        since = server.log_path.stat().st_size
        bridge = {"name": f"b-{name}", "service": name, **plan.bridge}
        with oscar.bridge(bridge) as status:
            describe = lambda: f"bridge status {status()}"  # noqa: E731
            timings = oscar.measure(name, plan.drop, drops, describe, source.phase)
            final = status()
    finally:
        server.stop()
        problems = oscar.log_problems(since)
        for line in problems[:10]:
            print(f"[bridges_bench] {source.key}: server log: {line[:400]}", file=sys.stderr)
    return _rows(source, timings, baseline, final, len(problems))


def _rows(
    source: Source, timings: Timings, baseline: Timings, status: dict[str, Any], problems: int
) -> list[Row]:
    others = {k: v for k, v in timings.statuses.items() if k != "Succeeded"}
    odd = [
        f"{timings.extra_jobs} extra job records" if timings.extra_jobs else "",
        f"statuses {dict(others)}" if others else "",
        f"bridge errors {status.get('errors')}" if status.get("errors") else "",
        f"{problems} server log warnings" if problems else "",
    ]
    extra = "; ".join(part for part in odd if part)
    start_note = f"{source.interval}; recorded p50 {_ms(timings.record)}; n={len(timings.start)}"
    return [
        timing_row(
            f"{source.label}: drop -> job start",
            timings.start,
            baseline.start,
            baseline_name=BASELINE_NAME,
            note=start_note + (f"; {extra}" if extra else ""),
        ),
        timing_row(
            f"{source.label}: drop -> output",
            timings.output,
            baseline.output,
            baseline_name=BASELINE_NAME,
            note=f"{source.interval}; n={len(timings.output)}; {source.drop}",
        ),
    ]


def _failed(source: Source, error: BaseException) -> Row:
    message = " ".join(f"{type(error).__name__}: {error}".split())
    return Row(f"{source.label}: FAILED", "", met=False, note=message[:300])


def rows(drops: int = 30, sources: list[str] | None = None) -> list[Row]:
    """Measure each chosen source (all by default) and return the table's rows; a source that
    fails shows as a FAILED row and the others still run."""
    chosen = [SOURCES[key] for key in (sources or list(SOURCES))]
    found: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp_name, contextlib.ExitStack() as stack:
        tmp = Path(tmp_name)
        servers = servers_for(chosen, stack, tmp)
        for source in chosen:
            print(f"[bridges_bench] {source.key} ...", file=sys.stderr, flush=True)
            try:
                found += _source_rows(source, servers, drops, tmp)
            except Exception as error:  # one broken source hides no other
                found.append(_failed(source, error))
    return found


def main(argv: list[str] | None = None) -> int:
    """Run the measurements and print the table; 1 when a source failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drops", type=int, default=30, help="timed drops per source")
    parser.add_argument(
        "--sources",
        default=",".join(SOURCES),
        help=f"comma-separated, from {', '.join(SOURCES)} (default: all)",
    )
    args = parser.parse_args(argv)
    keys = [key.strip() for key in args.sources.split(",") if key.strip()]
    unknown = sorted(set(keys) - set(SOURCES))
    if unknown:
        parser.error(f"unknown source(s) {', '.join(unknown)}; choose from {', '.join(SOURCES)}")
    found = rows(args.drops, keys)
    print(format_table(found))
    for key in keys:
        if key in STAND_INS:
            print(f"\n{key}: {STAND_INS[key]}")
    return 1 if any(row.name.endswith(": FAILED") for row in found) else 0


if __name__ == "__main__":
    sys.exit(main())
