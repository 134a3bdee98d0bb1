"""Run every benchmark and print one table: what `benchmarks/run_all` does.

Each of our benchmarks exposes `rows(...) -> list[Row]`; the HPC ones (`slurm_bench.py`,
`interlink_bench.py`) are called the same way when they expose `rows`, and otherwise run as a
subprocess whose printed table follows ours. They are skipped, with a line saying so, under
`--no-hpc` or when `scripts/testenv.sh check` says their servers are not installed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import os
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.stats import Row, format_table  # noqa: E402


@dataclass(frozen=True)
class Options:
    """What the command line asked for."""

    quick: bool
    burst: int | None
    hpc_timeout: float


def _keepalive(options: Options) -> list[Row]:
    from benchmarks import keepalive_bench

    return keepalive_bench.rows(requests=40 if options.quick else 300)


def _pipeline(options: Options) -> list[Row]:
    from benchmarks import pipeline_bench

    burst = options.burst or (100 if options.quick else 1000)
    return pipeline_bench.rows(uploads=10 if options.quick else 40, burst=burst)


def _run(options: Options) -> list[Row]:
    from benchmarks import run_bench

    return run_bench.rows(calls=30 if options.quick else 50)


def _hotpath(options: Options) -> list[Row]:
    from benchmarks import hotpath_bench

    if options.quick:
        return hotpath_bench.rows(services=100, uploads=1000, budget=10)
    return hotpath_bench.rows(services=1000, uploads=10000, budget=180)


def _s3access(options: Options) -> list[Row]:
    from benchmarks import s3_access_bench

    if options.quick:
        return s3_access_bench.rows(requests=30, services=20)
    return s3_access_bench.rows()


def _health(options: Options) -> list[Row]:
    from benchmarks import health_under_load_bench

    if options.quick:
        return health_under_load_bench.rows(jobs=4, definitions=2, mib=0.5)
    return health_under_load_bench.rows()


def _supervisor(options: Options) -> list[Row]:
    from benchmarks import supervisor_bench

    if options.quick:
        return supervisor_bench.rows(runs=3, size_mb=8)
    return supervisor_bench.rows()


def _servicecreate(options: Options) -> list[Row]:
    from benchmarks import service_create_bench

    return service_create_bench.rows(runs=3 if options.quick else 15)


def _jobstore(options: Options) -> list[Row]:
    from benchmarks import job_store_bench

    return job_store_bench.rows(jobs=5 if options.quick else 40)


def _bridges(options: Options) -> list[Row]:
    from benchmarks import bridges_bench

    return bridges_bench.rows(drops=3 if options.quick else 30)


def _auth(options: Options) -> list[Row]:
    from benchmarks import auth_bench

    return auth_bench.rows(requests=20 if options.quick else 300)


# The issue's figures first, then the older benchmarks' (no targets).
OURS: dict[str, Callable[[Options], list[Row]]] = {
    "keepalive": _keepalive,
    "pipeline": _pipeline,
    "run": _run,
    "hotpath": _hotpath,
    "s3access": _s3access,
    "health": _health,
    "supervisor": _supervisor,
    "servicecreate": _servicecreate,
    "jobstore": _jobstore,
    "bridges": _bridges,
    "auth": _auth,
}
# Servers (`scripts/testenv.sh check` names) a benchmark needs besides our own.
NEEDS: dict[str, list[str]] = {
    "supervisor": ["minio"],
    "servicecreate": ["minio", "kubernetes"],
    "jobstore": ["minio", "kubernetes"],
    "bridges": ["webdav", "minio", "sqs", "kafka"],
    "auth": ["keycloak"],
}
# name → (module, servers it needs per `scripts/testenv.sh check`, runs in --quick / full).
HPC: dict[str, tuple[str, list[str], tuple[int, int]]] = {
    "slurm": ("slurm_bench", ["slurm"], (2, 10)),
    "interlink": ("interlink_bench", ["slurm", "kubernetes", "minio", "interlink"], (1, 5)),
}


def _installed(servers: list[str]) -> bool:
    if not servers:
        return True
    try:
        check = subprocess.run(
            [str(REPO_ROOT / "scripts" / "testenv.sh"), "check", *servers],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO_ROOT,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return check.returncode == 0 and "not installed" not in check.stdout + check.stderr


def _hpc(name: str, options: Options) -> tuple[list[Row], str]:
    """(rows, printed table): rows when the module exposes `rows`, else its printed output."""
    module_name, _, runs_by_mode = HPC[name]
    runs = runs_by_mode[0 if options.quick else 1]
    module = importlib.import_module(f"benchmarks.{module_name}")
    rows_of = getattr(module, "rows", None)
    if callable(rows_of):
        accepted = inspect.signature(rows_of).parameters
        return list(rows_of(**({"runs": runs} if "runs" in accepted else {}))), ""
    script = REPO_ROOT / "benchmarks" / f"{module_name}.py"
    # A session of its own: on timeout the whole group (Slurm daemons, MinIO, kubelets the
    # benchmark started) is stopped, not just the Python process, which would orphan them.
    child = subprocess.Popen(
        [sys.executable, str(script), "--runs", str(runs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        start_new_session=True,
    )
    try:
        stdout, stderr = child.communicate(timeout=options.hpc_timeout)
    except subprocess.TimeoutExpired:
        _stop_group(child)
        raise RuntimeError(f"{script.name} timed out after {options.hpc_timeout:g} s") from None
    if child.returncode != 0:
        raise RuntimeError(f"{script.name} exited with {child.returncode}:\n{stderr[-2000:]}")
    done = subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr)
    return [], done.stdout.strip()


def _stop_group(child: subprocess.Popen[str]) -> None:
    """SIGINT first, so the benchmark's context managers stop their servers; then SIGKILL."""
    for sig, grace in ((signal.SIGINT, 30.0), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, sig)
        try:
            child.communicate(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _failed(name: str, error: BaseException) -> Row:
    # One line: the message goes into a table cell.
    message = " ".join(f"{type(error).__name__}: {error}".split())
    return Row(f"{name}: FAILED", "", met=False, note=message[:200])


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmarks, print the table; 1 if any benchmark failed to run."""
    parser = argparse.ArgumentParser(
        prog="benchmarks/run_all", description="Run every benchmark and print one table."
    )
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run")
    parser.add_argument(
        "--only",
        action="append",
        choices=[*OURS, *HPC],
        help="run only this benchmark (repeatable)",
    )
    parser.add_argument("--no-hpc", action="store_true", help="skip the Slurm/interLink ones")
    parser.add_argument("--burst", type=int, help="uploads in the pipeline burst (default 1000)")
    parser.add_argument("--hpc-timeout", type=float, default=600, help="seconds per HPC bench")
    args = parser.parse_args(argv)
    options = Options(args.quick, args.burst, args.hpc_timeout)
    chosen = args.only or [*OURS, *HPC]
    rows: list[Row] = []
    lines: list[str] = []
    failed = False
    began = time.monotonic()
    for name in chosen:
        started = time.monotonic()
        print(f"[run_all] {name} ...", file=sys.stderr, flush=True)
        try:
            if name in OURS and not _installed(NEEDS.get(name, [])):
                needs = " ".join(NEEDS[name])
                lines.append(f"{name}: skipped (not installed: scripts/testenv.sh install {needs})")
            elif name in OURS:
                found = OURS[name](options)
                # A benchmark may report a part that failed as a FAILED row and go on.
                failed = failed or any(row.name.endswith(": FAILED") for row in found)
                rows += found
            elif args.no_hpc:
                lines.append(f"{name}: skipped (--no-hpc)")
            elif not _installed(HPC[name][1]):
                needs = " ".join(HPC[name][1])
                lines.append(f"{name}: skipped (not installed: scripts/testenv.sh install {needs})")
            else:
                found, printed = _hpc(name, options)
                rows += found
                if printed:
                    lines.append(f"{name} ({HPC[name][0]}.py, its own table):\n{printed}")
        except Exception as error:  # one broken benchmark must not hide the others' figures
            failed = True
            traceback.print_exc()
            rows.append(_failed(name, error))
        print(f"[run_all] {name}: {time.monotonic() - started:.0f} s", file=sys.stderr)
    mode = "quick" if args.quick else "full"
    print(f"\nbenchmarks/run_all ({mode}), {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"{len(rows)} figures in {time.monotonic() - began:.0f} s\n")
    if rows:
        print(format_table(rows))
    for line in lines:
        print(f"\n{line}")
    return 1 if failed else 0
