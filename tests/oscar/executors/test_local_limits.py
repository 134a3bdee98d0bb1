"""Security audit L12: the local executor holds jobs to the service's `memory` and `cpu`.

Real jobs (the supervisor and a Python script) on this host, through a real `Dispatcher`, so
what is checked is the job record. The enforcing path must run wherever the host has a memory
controller this process may use: the tests refuse to pass by skipping it there.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from oscar.executors.local import LocalExecutor
from oscar.executors.proctree import JobProcesses, _cgroup2_root
from oscar.jobs.dispatcher import Dispatcher
from oscar.jobs.store import JobStore
from oscar.models.job import Job, JobStatus, new_job_name
from oscar.models.service import Service
from oscar.models.storage import MinIOProvider
from oscar.models.validation import parse_service
from oscar.registry.memory import MemoryRegistry
from tests.fixtures.services import minimal_service

PATIENCE = 60.0
ALLOCATE_200_MIB = (
    f'{sys.executable} -c \'b = bytearray(200 * 2**20); b[::4096] = b"x" * len(b[::4096]); '
    'print("allocated", len(b))\'\n'
)


def _host_controller(controller: str) -> str | None:
    """Independently of proctree: a `controller` this process may create groups in."""
    own = _cgroup2_root()
    if own is not None and controller in (own / "cgroup.controllers").read_text().split():
        return str(own)
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            folder = Path("/sys/fs/cgroup", controller) / path.lstrip("/")
            if folder.is_dir() and os.access(folder, os.W_OK):
                return str(folder)
    return None


def _service(script: str, **fields: Any) -> Service:
    name = f"limits-{uuid.uuid4().hex[:8]}"
    return parse_service(minimal_service(name, script=script, token="a" * 64, **fields))


def _run(tmp_path: Path, processes: JobProcesses, service: Service) -> tuple[Job, str]:
    """Submit one job of `service` through a dispatcher; its final record and its log."""
    return _run_all(tmp_path, processes, [service])[0]


def _run_all(
    tmp_path: Path, processes: JobProcesses, services: list[Service]
) -> list[tuple[Job, str]]:
    """One job of each service, at once, through a dispatcher; final records and logs."""
    store = JobStore(tmp_path / "jobs.db")
    registry = MemoryRegistry()
    for service in services:
        registry.create(service)
    executor = LocalExecutor(
        tmp_path / "jobs", MinIOProvider(endpoint="http://127.0.0.1:9"), 600, processes
    )

    async def until(probe: Callable[[], Job | None]) -> Job:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PATIENCE
        while loop.time() < deadline:
            if (found := await asyncio.to_thread(probe)) is not None:
                return found
            await asyncio.sleep(0.05)
        raise AssertionError(f"the job did not end within {PATIENCE}s")

    async def main() -> list[tuple[Job, str]]:
        dispatcher = Dispatcher(store, registry, executor)
        await dispatcher.start()
        try:
            jobs = [dispatcher.submit(service.name, "x") for service in services]
            results = []
            for job in jobs:
                assert job is not None

                def ended(name: str = job.name) -> Job | None:
                    record = store.get(name)
                    terminal = (JobStatus.SUCCEEDED, JobStatus.FAILED)
                    return record if record is not None and record.status in terminal else None

                done = await until(ended)
                results.append((done, executor.logs(done)))
            return results
        finally:
            await dispatcher.stop()
            store.close()

    return asyncio.run(main())


@pytest.fixture
def processes() -> JobProcesses:
    """The job groups of a fresh scope, as the server makes them (cgroups allowed)."""
    return JobProcesses(uuid.uuid4().hex[:12])


@pytest.mark.parametrize("controller", ["memory", "cpu"])
def test_the_host_controllers_are_used(processes: JobProcesses, controller: str) -> None:
    host = _host_controller(controller)
    if host is None:
        pytest.skip(f"no {controller} controller is available to this process on this host")
    used = getattr(processes, controller)
    assert used is not None, f"{host} is usable, but {controller} limits are not enforced"


def test_a_job_over_its_memory_limit_is_killed_and_fails_saying_so(
    tmp_path: Path, processes: JobProcesses
) -> None:
    if processes.memory is None:
        assert _host_controller("memory") is None  # else the test above fails too
        pytest.skip("no memory controller is available to this process on this host")
    done, log = _run(tmp_path, processes, _service(ALLOCATE_200_MIB, memory="64Mi"))
    assert done.status == JobStatus.FAILED, log
    assert done.reason == (
        "the job exceeded its memory limit (64Mi): the kernel killed it (out of memory)"
    ), log
    assert "allocated" not in log
    assert not processes.pids(done.name)
    assert done.name not in processes.leftovers()  # its groups are gone with it


def test_a_cancelled_job_leaves_no_group_behind(tmp_path: Path, processes: JobProcesses) -> None:
    """Cancelling a job removes its cgroup v1 limit groups too, not only its cgroup v2 one."""
    service = _service("exec sleep 300\n", memory="64Mi", cpu="0.5")
    executor = LocalExecutor(
        tmp_path / "jobs", MinIOProvider(endpoint="http://127.0.0.1:9"), 600, processes
    )
    job = Job(name=new_job_name(service.name), service=service.name, event="x", backend="local")
    handle = executor.submit(job, service)
    deadline = time.monotonic() + PATIENCE
    while "Running the user script" not in executor.logs(job):
        assert time.monotonic() < deadline, executor.logs(job)
        time.sleep(0.02)
    assert job.name in processes.leftovers()
    executor.cancel(handle)
    assert not processes.pids(job.name)
    assert job.name not in processes.leftovers()


def test_a_job_within_its_memory_limit_succeeds(tmp_path: Path, processes: JobProcesses) -> None:
    done, log = _run(tmp_path, processes, _service(ALLOCATE_200_MIB, memory="400Mi"))
    assert done.status == JobStatus.SUCCEEDED, (done.reason, log)
    assert f"allocated {200 * 2**20}" in log


def test_jobs_competing_for_a_core_share_it_in_proportion_to_their_cpu(
    tmp_path: Path, processes: JobProcesses
) -> None:
    if processes.cpu is None:
        assert _host_controller("cpu") is None  # else the test above fails too
        pytest.skip("no cpu controller is available to this process on this host")
    # Both jobs pin themselves to core 0 and spin for 3 s of wall time: with shares of 1 and
    # 1/8 core the first should get about 8/9 of the core, the second 1/9; without shares, half.
    spin = (
        f"{sys.executable} -c 'import os, time\n"
        "os.sched_setaffinity(0, {0})\n"
        "start, cpu = time.monotonic(), time.process_time()\n"
        "while time.monotonic() - start < 3: pass\n"
        'print("cpu", time.process_time() - cpu)\'\n'
    )
    (big, big_log), (small, small_log) = _run_all(
        tmp_path, processes, [_service(spin, cpu="1"), _service(spin, cpu="0.125")]
    )
    assert big.status == small.status == JobStatus.SUCCEEDED, (big_log, small_log)
    used = []
    for log in (big_log, small_log):
        match = re.search(r"cpu ([0-9.]+)", log)
        assert match is not None, log
        used.append(float(match[1]))
    assert used[0] > 2.5 * used[1], used


def test_without_a_controller_limits_are_not_enforced_and_a_warning_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="oscar.executors"):
        processes = JobProcesses(uuid.uuid4().hex[:12], use_cgroups=False)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings
    assert all("NOT enforced" in w for w in warnings)
    assert any("memory" in w for w in warnings) and any("cpu" in w for w in warnings)
    caplog.clear()
    done, log = _run(tmp_path, processes, _service(ALLOCATE_200_MIB, memory="64Mi"))
    assert done.status == JobStatus.SUCCEEDED, (done.reason, log)
    assert not [r for r in caplog.records if "NOT enforced" in r.getMessage()]  # once only
