"""Embedded-default pipeline: upload → output latency and a burst of uploads, with baselines
measured in the same run.

    python benchmarks/pipeline_bench.py [--uploads 40] [--burst 1000]

Starts a real `oscar serve` and applies a trivial service (`cp` input to output). Then:

- latency: `--uploads` uploads one at a time with one kept-alive boto3 client, each timed from
  the PUT until the output object exists (HEAD polled every 2 ms on the same client); upload →
  job start is read from the job records afterwards (`start_time`, matched to uploads by
  creation order, since they were sequential). Baseline: the same work in ONE warm process —
  boto3 GET of the input, `sh -c <script>` on it, PUT of the output, same bucket and key shape.
- burst: `--burst` uploads from 8 threads sharing one boto3 client; jobs/s sustained is
  N / (first PUT → last output seen; outputs are listed every 50 ms). At the end every input
  must have its output and exactly one job record, `Succeeded` (0 lost), and no input may have
  two records (0 doubled): checked through `/system/logs/<svc>` (count, statuses) and through
  the job store's events (which input each record is for). Baseline: the same N scripts run by
  a shell loop on local files (`sh -c` per file).
- memory: the `oscar serve` process and all its descendants, sampled every 50 ms from /proc
  during the burst. Summed RSS counts pages that forked workers share once per process, so it
  overstates; summed PSS (`/proc/<pid>/smaps_rollup`) divides shared pages among their users
  and is the honest figure. The target applies to PSS.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import httpx  # noqa: E402

from benchmarks.stats import Row, format_table, timing_row  # noqa: E402
from oscar.jobs.store import JobStore  # noqa: E402
from tests.fixtures.server import start_server  # noqa: E402
from tests.fixtures.services import minimal_service  # noqa: E402

# The shell by absolute path, as the job would find it.
SH = shutil.which("sh") or "/bin/sh"
SCRIPT = 'cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/"\n'
BODY = b"x"
UPLOADERS = 8
MEMORY_TARGET_MB = 300.0
BURST_TARGET = 100.0  # jobs/s


def _parse(stamp: str | None) -> float:
    assert stamp, "missing timestamp"
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _service(name: str) -> dict[str, Any]:
    return minimal_service(
        name,
        script=SCRIPT,
        log_level="WARNING",
        input=[{"storage_provider": "minio.default", "path": f"{name}/in"}],
        output=[{"storage_provider": "minio.default", "path": f"{name}/out"}],
    )


def all_jobs(api: httpx.Client, name: str) -> dict[str, dict[str, Any]]:
    """Every job of the service from `/system/logs/<name>`, following its pages."""
    jobs: dict[str, dict[str, Any]] = {}
    page = ""
    while True:
        answer = api.get(f"/system/logs/{name}", params={"page": page} if page else None)
        answer.raise_for_status()
        body = answer.json()
        jobs.update(body["jobs"])
        page = body["next_page"]
        if not page:
            return jobs


def _keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [item["Key"] for item in page.get("Contents", [])]
    return keys


class MemorySampler(threading.Thread):
    """Peak summed RSS and PSS (bytes) of a process and all its descendants, from /proc."""

    def __init__(self, root: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.interval = interval
        self.peak_rss = 0
        self.peak_pss = 0
        self.peak_processes = 0
        self.samples = 0
        self._done = threading.Event()

    def stop(self) -> None:
        """End sampling and wait for the thread."""
        self._done.set()
        self.join()

    def _tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue  # ended between the listing and the read
            # The command name may hold spaces and parentheses: fields start after the last ')'.
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
        tree, todo = [], [self.root]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo += children.get(pid, [])
        return tree

    @staticmethod
    def _usage(pid: int) -> tuple[int, int]:
        rss = pss = 0
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1]) * 1024
        except OSError:
            pass  # the process ended: it uses nothing any more
        return rss, pss

    def run(self) -> None:
        while not self._done.is_set():
            tree = self._tree()
            usage = [self._usage(pid) for pid in tree]
            self.peak_rss = max(self.peak_rss, sum(r for r, _ in usage))
            self.peak_pss = max(self.peak_pss, sum(p for _, p in usage))
            self.peak_processes = max(self.peak_processes, len(tree))
            self.samples += 1
            self._done.wait(self.interval)


def _latency(api: httpx.Client, s3: Any, uploads: int) -> tuple[list[float], list[float]]:
    """(upload → job start, upload → output) for sequential uploads, in seconds."""
    name = f"lat-{uuid.uuid4().hex[:6]}"
    api.post("/system/services", json=_service(name)).raise_for_status()

    def wait_output(key: str, deadline: float) -> float:
        while time.monotonic() < deadline:
            try:
                s3.head_object(Bucket=name, Key=key)
                return time.time()
            except s3.exceptions.ClientError:
                time.sleep(0.002)
        raise TimeoutError(f"no output {name}/{key}")

    sent_at, output = [], []
    for index in range(uploads):
        sent = time.time()
        s3.put_object(Bucket=name, Key=f"in/s{index}.txt", Body=BODY)
        done = wait_output(f"out/s{index}.txt", time.monotonic() + 60)
        sent_at.append(sent)
        output.append(done - sent)
    jobs = sorted(all_jobs(api, name).values(), key=lambda job: _parse(job["creation_time"]))
    assert len(jobs) == uploads, f"{len(jobs)} job records for {uploads} uploads"
    start = [_parse(job["start_time"]) - sent for job, sent in zip(jobs, sent_at, strict=True)]
    return start, output


def _in_process_baseline(s3: Any, api: httpx.Client, runs: int, tmp: Path) -> list[float]:
    """GET + `sh -c` + PUT in this (warm) process: what a job does, minus everything else."""
    name = f"base-{uuid.uuid4().hex[:6]}"
    api.post("/system/buckets", json={"bucket_name": name}).raise_for_status()
    for index in range(runs):
        s3.put_object(Bucket=name, Key=f"in/s{index}.txt", Body=BODY)
    samples = []
    for index in range(runs):
        work = tmp / f"base-{index}"
        (work / "out").mkdir(parents=True)
        began = time.time()
        source = work / f"s{index}.txt"
        source.write_bytes(s3.get_object(Bucket=name, Key=f"in/s{index}.txt")["Body"].read())
        env = {**os.environ, "INPUT_FILE_PATH": str(source), "TMP_OUTPUT_DIR": str(work / "out")}
        subprocess.run([SH, "-c", SCRIPT], env=env, check=True)
        for produced in (work / "out").iterdir():
            s3.put_object(Bucket=name, Key=f"out/{produced.name}", Body=produced.read_bytes())
        samples.append(time.time() - began)
    return samples


def _shell_loop(count: int, tmp: Path) -> float:
    """Seconds for a shell loop to run the script once per local file (`sh -c` per file)."""
    inputs, outputs = tmp / "loop-in", tmp / "loop-out"
    inputs.mkdir()
    outputs.mkdir()
    for index in range(count):
        (inputs / f"b{index}.txt").write_bytes(BODY)
    loop = 'for f in "$1"/*; do INPUT_FILE_PATH="$f" TMP_OUTPUT_DIR="$2" sh -c "$3"; done'
    began = time.perf_counter()
    subprocess.run([SH, "-c", loop, "loop", str(inputs), str(outputs), SCRIPT], check=True)
    elapsed = time.perf_counter() - began
    assert len(list(outputs.iterdir())) == count
    return elapsed


def _burst(
    server_pid: int, api: httpx.Client, s3: Any, count: int, timeout: float
) -> dict[str, Any]:
    """Upload `count` objects at once; return the rate, the memory peak and what arrived."""
    name = f"burst-{uuid.uuid4().hex[:6]}"
    api.post("/system/services", json=_service(name)).raise_for_status()
    sampler = MemorySampler(server_pid)
    sampler.start()
    put: Callable[[int], object] = lambda i: s3.put_object(  # noqa: E731
        Bucket=name, Key=f"in/b{i}.txt", Body=BODY
    )
    began = time.time()
    with ThreadPoolExecutor(UPLOADERS) as pool:
        list(pool.map(put, range(count)))
    uploaded = time.time()
    deadline = time.monotonic() + timeout
    outputs: list[str] = []
    finished = None
    while time.monotonic() < deadline:
        outputs = _keys(s3, name, "out/b")
        if len(outputs) >= count:
            finished = time.time()
            break
        time.sleep(0.05)
    sampler.stop()
    # The output is written before the job's end is recorded: wait for the records to settle
    # so a job still finishing is not counted as lost.
    jobs = all_jobs(api, name)
    while time.monotonic() < deadline and any(
        job["status"] in ("Pending", "Running") for job in jobs.values()
    ):
        time.sleep(0.1)
        jobs = all_jobs(api, name)
    return {
        "name": name,
        "elapsed": (finished or time.time()) - began,
        "upload_seconds": uploaded - began,
        "complete": finished is not None,
        "outputs": set(outputs),
        "jobs": jobs,
        "sampler": sampler,
    }


def _records_per_input(jobs_db: Path, service: str) -> Counter[str]:
    """How many job records the store holds for each input key of the service."""
    store = JobStore(jobs_db)
    try:
        per_input: Counter[str] = Counter()
        for job in store.list(service):
            record = json.loads(job.event)["Records"][0]
            per_input[unquote_plus(record["s3"]["object"]["key"])] += 1
        return per_input
    finally:
        store.close()


def rows(uploads: int = 40, burst: int = 1000, burst_timeout: float = 600) -> list[Row]:
    """Run the measurements against a fresh server and return the table's rows."""
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        server = start_server(tmp / "data")
        try:
            api = server.client(timeout=60)
            s3 = server.s3()
            start, output = _latency(api, s3, uploads)
            baseline = _in_process_baseline(s3, api, max(10, uploads), tmp)
            result = _burst(server.process.pid, api, s3, burst, burst_timeout)
        finally:
            server.stop()
        per_input = _records_per_input(tmp / "data" / "jobs.db", result["name"])
        loop_seconds = _shell_loop(burst, tmp)

    expected = {f"in/b{i}.txt" for i in range(burst)}
    statuses = Counter(job["status"] for job in result["jobs"].values())
    succeeded = statuses.get("Succeeded", 0)
    missing_outputs = sum(f"out/b{i}.txt" not in result["outputs"] for i in range(burst))
    without_success = burst - min(succeeded, burst)
    lost = max(missing_outputs, without_success, len(expected - set(per_input)))
    doubled = sum(n - 1 for n in per_input.values() if n > 1) + max(0, succeeded - burst)
    rate = burst / result["elapsed"]
    loop_rate = burst / loop_seconds
    sampler: MemorySampler = result["sampler"]
    others = {k: v for k, v in statuses.items() if k != "Succeeded"}
    burst_note = (
        f"N={burst}, uploads took {result['upload_seconds']:.1f} s"
        + ("" if result["complete"] else ", TIMED OUT")
        + (f", other statuses {dict(others)}" if others else "")
    )
    samples = f"{sampler.samples} samples, up to {sampler.peak_processes} processes"
    return [
        timing_row(
            "upload -> output, embedded",
            output,
            baseline,
            baseline_name="get+sh+put in 1 process",
            p50_ms=50,
            p95_ms=100,
        ),
        timing_row("upload -> job start (job record)", start),
        Row(
            "burst: jobs/s sustained",
            "jobs/s",
            value=rate,
            baseline=loop_rate,
            baseline_name="sh loop",
            target=f">= {BURST_TARGET:g} jobs/s",
            met=rate >= BURST_TARGET,
            note=burst_note,
        ),
        Row(
            "burst: jobs lost",
            "count",
            value=lost,
            target="0",
            met=lost == 0,
            note=f"{missing_outputs} outputs missing, {succeeded} Succeeded of {burst}",
        ),
        Row(
            "burst: jobs doubled",
            "count",
            value=doubled,
            target="0",
            met=doubled == 0,
            note=f"{sum(per_input.values())} job records for {burst} inputs",
        ),
        Row(
            "burst: peak memory, summed PSS",
            "MB",
            value=sampler.peak_pss / 1e6,
            target=f"<= {MEMORY_TARGET_MB:g} MB",
            met=sampler.peak_pss / 1e6 <= MEMORY_TARGET_MB,
            note=f"server + descendants, {samples}",
        ),
        Row(
            "burst: peak memory, summed RSS",
            "MB",
            value=sampler.peak_rss / 1e6,
            note="shared pages counted once per process: overstates; PSS is the figure",
        ),
    ]


def main() -> None:
    """Run the measurements and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--uploads", type=int, default=40)
    parser.add_argument("--burst", type=int, default=1000)
    args = parser.parse_args()
    print(format_table(rows(args.uploads, args.burst)))


if __name__ == "__main__":
    main()
