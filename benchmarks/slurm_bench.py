"""The Slurm path's overhead against a bare `sbatch` of the same script, in the same run.

    python benchmarks/slurm_bench.py [--runs 10] [--burst 1000] [--floor 100]

`rows(runs, burst, floor)` returns the figures as `benchmarks.stats.Row`s, which
`benchmarks/run_all` puts in its table; run alone, the script prints the same table.

Baseline: `sbatch` of a script running `echo` directly, timed from submission to the job
running and to COMPLETED (observed with `scontrol`, polled every 50 ms).
Ours: `POST /job/<service>` for a `routing: hpc` service with the same script, timed from the
request to the job's `start_time` and to `Succeeded` in the logs API (polled every 50 ms); this
adds the job record, the batch script and the supervisor (UNKNOWN event, no staging).

One job through the executor itself: `SlurmExecutor.submit`, then `poll` every
`poll_interval` until it reports the job ended (read from the job's `exit_status` file),
against the bare `sbatch` submit -> COMPLETED above.

A burst: `--burst` events (UNKNOWN, no staging) of one service handed to
`SlurmExecutor.submit_batch` in batches of its `batch_size`, with the executor's defaults (at
most `array_tasks` = 256 tasks per array, so a task runs about 4 of the 1000 events in turn),
timed from the first batch until `poll` has seen every job end, with the `sbatch` calls counted
(target: at most 20). Baseline: the same number of supervisor runs (same prepared job folders,
same script) one after the other in a plain shell loop on the node (target: the burst within 2x
of it).

Slurm's floor: `--floor` (default 100) bare array tasks of one supervisor run each, no oscar,
with `--export=ALL` as oscar's (`--export=NONE` would add about 1.2 s to every task here, the
user's login environment being loaded first): what one array task costs Slurm itself, about a
second on this cluster, which is why oscar runs several events per task. Kept to 100 tasks so a
full run stays under ten minutes (1000 bare tasks take about 500 s at two per second).
Needs `scripts/testenv.sh install slurm`.
"""

from __future__ import annotations

import argparse
import re
import subprocess
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

from benchmarks.stats import Row, format_table, timing_row  # noqa: E402
from oscar.executors.slurm import SlurmExecutor  # noqa: E402
from oscar.executors.slurm_commands import LocalTransport  # noqa: E402
from oscar.models.job import Job, JobStatus, new_job_name  # noqa: E402
from oscar.models.service import Service  # noqa: E402
from oscar.models.storage import MinIOProvider  # noqa: E402
from oscar.models.validation import parse_service  # noqa: E402
from tests.fixtures.server import start_server  # noqa: E402
from tests.fixtures.services import minimal_service  # noqa: E402
from tests.services import slurm as slurm_service  # noqa: E402

# The baseline loop: each prepared job folder's supervisor run as the batch script runs it
# (its environment file, its event on stdin), one after the other.
LOOP = """
python=$1
shift
for folder in "$@"; do
    (set -a; . "$folder/env"; set +a; cd "$folder" &&
        "$python" -m supervisor --workdir "$folder/work" < "$folder/event" > "$folder/response"
    ) > "$folder/log" 2>&1 || echo "supervisor failed in $folder" >&2
done
"""


# Slurm's own floor for the burst: the same supervisor runs as bare array tasks, no oscar.
BARE_TASK = """#!/bin/sh
folder=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" "$1")
set -a; . "$folder/env"; set +a
cd "$folder" && exec "$2" -m supervisor --workdir "$folder/work" < event > response 2> log
"""


class CountingTransport(LocalTransport):
    """The real local transport, counting the `sbatch` calls."""

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__(env)
        self.sbatch = 0

    def execute(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        if argv[0] == "sbatch":
            self.sbatch += 1
        return super().execute(argv)


def _executor(cluster: slurm_service.SlurmCluster, jobs_dir: Path) -> SlurmExecutor:
    transport = CountingTransport({"SLURM_CONF": str(cluster.conf_path)})
    return SlurmExecutor(jobs_dir, MinIOProvider(), transport, timeout=600.0)


def _service() -> Service:
    return parse_service(
        minimal_service(
            f"burst-{uuid.uuid4().hex[:6]}",
            script="echo hello\n",
            routing="hpc",
            token="a" * 64,
            cpu="1",
            memory="128Mi",
        )
    )


def _jobs(service: Service, n: int) -> list[Job]:
    return [
        Job(name=new_job_name(service.name), service=service.name, event="x", backend="slurm")
        for _ in range(n)
    ]


def _until_ended(executor: SlurmExecutor, handles: list[str], timeout: float) -> None:
    """Poll as the dispatcher does (every `poll_interval`) until every job ended well."""
    left = set(handles)
    deadline = time.monotonic() + timeout
    while left:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(left)} jobs still running")
        for handle, seen in executor.poll(sorted(left)).items():
            if seen.terminal:
                if seen.status != JobStatus.SUCCEEDED:
                    raise RuntimeError(f"job {handle} failed: {seen.reason}")
                left.discard(handle)
        if left:
            time.sleep(executor.poll_interval)


def one_job(cluster: slurm_service.SlurmCluster, root: Path, runs: int) -> list[float]:
    """Seconds from `submit` to `poll` reporting the job ended, `runs` times."""
    executor = _executor(cluster, root / "one-jobs")
    service = _service()
    samples = []
    for job in _jobs(service, runs):
        began = time.time()
        handle = executor.submit(job, service)
        _until_ended(executor, [handle], timeout=120)
        samples.append(time.time() - began)
    return samples


def _prepared(cluster: slurm_service.SlurmCluster, jobs_dir: Path, n: int) -> list[str]:
    """`n` job folders of a new service, prepared as the executor prepares a Slurm job's."""
    service = _service()
    executor = _executor(cluster, jobs_dir)
    folders = []
    for job in _jobs(service, n):
        folder = executor.jobs_dir / job.name
        executor._prepare(job, service, folder)  # the same folder a Slurm job gets
        folders.append(str(folder))
    return folders


def bare_array(cluster: slurm_service.SlurmCluster, root: Path, n: int, size: int) -> float:
    """Seconds for `sbatch --array` (chunks of `size`) of `n` supervisor runs to leave the
    queue, without oscar (`--export=ALL`, as oscar's own submissions)."""
    folders = _prepared(cluster, root / "bare-array-jobs", n)
    script = root / "bare-array.sh"
    script.write_text(BARE_TASK)
    ids = []
    began = time.time()
    for index, start in enumerate(range(0, n, size)):
        manifest = root / f"bare-array-{index}.manifest"
        manifest.write_text("".join(f"{f}\n" for f in folders[start : start + size]))
        command = ["sbatch", "--parsable", "--export=ALL", "--output=/dev/null"]
        command += [
            "--cpus-per-task=1",
            "--mem=128M",
            f"--array=0-{len(folders[start : start + size]) - 1}",
        ]
        out = cluster.run([*command, str(script), str(manifest), sys.executable]).stdout
        ids.append(out.strip().split(";")[0])
    _poll(
        lambda: not cluster.run(["squeue", "-h", "-j", ",".join(ids)], check=False).stdout.strip(),
        interval=0.2,
        timeout=max(600.0, 2.0 * n),
    )
    return time.time() - began


def burst(cluster: slurm_service.SlurmCluster, root: Path, n: int) -> tuple[float, float, int]:
    """The shell loop's seconds, the burst's seconds and its `sbatch` calls."""
    service = _service()
    folders = _prepared(cluster, root / "loop-jobs", n)
    began = time.time()
    subprocess.run(["/bin/sh", "-c", LOOP, "loop", sys.executable, *folders], check=True)
    loop = time.time() - began
    executor = _executor(cluster, root / "burst-jobs")
    jobs = _jobs(service, n)
    began = time.time()
    handles: list[str] = []
    for start in range(0, n, executor.batch_size):
        handles += executor.submit_batch(jobs[start : start + executor.batch_size], service)
    _until_ended(executor, handles, timeout=max(600.0, 2.0 * n))
    ours = time.time() - began
    transport = executor.transport
    assert isinstance(transport, CountingTransport)
    return loop, ours, transport.sbatch


def _poll(check: Callable[[], T], interval: float = 0.05, timeout: float = 120) -> T:
    deadline = time.time() + timeout
    while time.time() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    raise TimeoutError("benchmark step timed out")


def bare_sbatch(
    cluster: slurm_service.SlurmCluster, root: Path, runs: int
) -> tuple[list[float], list[float]]:
    """Seconds from a bare `sbatch` of `echo` to RUNNING and to COMPLETED, `runs` times."""
    bare_start, bare_end = [], []
    script = root / "bare.sh"
    script.write_text("#!/bin/sh\necho hello\n")
    for index in range(runs):
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
    return bare_start, bare_end


def through_oscar(
    cluster: slurm_service.SlurmCluster, root: Path, runs: int
) -> tuple[list[float], list[float]]:
    """Seconds from `POST /job` of a `routing: hpc` service to its `start_time` and to
    `Succeeded` in the logs API, `runs` times."""
    server = start_server(
        root / "data",
        extra_env={"OSCAR_HPC_EXECUTOR": "slurm", "OSCAR_SLURM_CONF": str(cluster.conf_path)},
    )
    try:
        api = server.client()
        name = f"bench-{uuid.uuid4().hex[:6]}"
        service = minimal_service(name, script="echo hello\n", routing="hpc", cpu="1")
        api.post("/system/services", json=service).raise_for_status()
        ours_start, ours_end = [], []
        for _ in range(runs):
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
    return ours_start, ours_end


def _ratio_row(
    name: str, samples: list[float], baseline: list[float], baseline_name: str, at_most: float
) -> Row:
    """A latency row (ms) whose target is its median at most `at_most` times the baseline's."""
    row = timing_row(name, samples, baseline, baseline_name=baseline_name)
    row.target = f"<= {at_most:g}x the baseline"
    row.met = row.ratio is not None and row.ratio <= at_most
    return row


def rows(runs: int = 10, burst_size: int | None = None, floor: int = 100) -> list[Row]:
    """Every figure of this benchmark on a private one-node Slurm, as table rows.

    `burst_size` defaults to 1000 events (100 when `runs` is below 5, `run_all --quick`'s 2).
    """
    if burst_size is None:
        burst_size = 1000 if runs >= 5 else 100
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "slurm").mkdir()
        with slurm_service.running(root / "slurm") as cluster:
            bare_start, bare_end = bare_sbatch(cluster, root, runs)
            ours_start, ours_end = through_oscar(cluster, root, runs)
            executor_end = one_job(cluster, root, runs)
            loop, ours, sbatch_calls = burst(cluster, root, burst_size)
            floor_seconds = bare_array(cluster, root, floor, SlurmExecutor.batch_size)
    tasks = min(burst_size, SlurmExecutor.array_tasks)
    per_task = burst_size / tasks
    return [
        timing_row(
            "slurm: request -> running", ours_start, bare_start, baseline_name="bare sbatch"
        ),
        _ratio_row(
            "slurm: one HPC job, request -> succeeded", ours_end, bare_end, "bare sbatch", 1.2
        ),
        timing_row(
            "slurm: executor submit -> poll sees end",
            executor_end,
            bare_end,
            baseline_name="bare sbatch",
        ),
        Row(
            f"slurm: burst of {burst_size}, sbatch calls",
            "count",
            value=sbatch_calls,
            target="<= 20",
            met=sbatch_calls <= 20,
            note=f"{tasks} array tasks, ~{per_task:.1f} events each",
        ),
        Row(
            f"slurm: burst of {burst_size}, submit_batch -> all ended",
            "s",
            value=ours,
            baseline=loop,
            baseline_name="sh loop of the supervisors",
            target="<= 2x the baseline",
            met=ours <= 2 * loop,
            note=f"array_tasks {SlurmExecutor.array_tasks}",
        ),
        Row(
            f"slurm: floor, bare array of {floor} one-run tasks",
            "s",
            value=floor_seconds,
            note=f"{floor_seconds / floor * 1000:.0f} ms per task, --export=ALL, no oscar",
        ),
    ]


def main() -> None:
    """Run every measurement and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--burst", type=int, default=1000, help="events in the burst")
    parser.add_argument("--floor", type=int, default=100, help="bare array tasks (the floor)")
    args = parser.parse_args()
    print(format_table(rows(args.runs, args.burst, args.floor)))


if __name__ == "__main__":
    main()
