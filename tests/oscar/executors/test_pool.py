"""The warm supervisor pool of the local executor: a zygote forks one supervisor per job.

Real processes throughout: the zygote, its children and the jobs' scripts run on this host.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from oscar.executors.local import LocalExecutor
from oscar.executors.pool import PoolFullError
from oscar.executors.proctree import MARKER, JobProcesses
from oscar.models.job import Job, JobStatus, new_job_name
from oscar.models.service import Service
from oscar.models.storage import MinIOProvider
from oscar.models.validation import parse_service
from tests.fixtures.harness_local import process_alive
from tests.fixtures.services import REPO_ROOT, minimal_service
from tests.services import common

STORE = MinIOProvider(endpoint="http://127.0.0.1:9", access_key="a", secret_key="b")


@pytest.fixture(params=[True, False], ids=["cgroups", "marker"])
def executor(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LocalExecutor]:
    processes = JobProcesses(uuid.uuid4().hex[:12], use_cgroups=request.param)
    local = LocalExecutor(tmp_path / "jobs", STORE, 60, processes, pool_size=3)
    yield local
    local.shutdown([])
    local.close()
    for name in processes.leftovers():
        processes.kill(name)


def _service(script: str) -> Service:
    return parse_service(minimal_service(f"pool-{uuid.uuid4().hex[:6]}", script=script))


def _job(service: Service) -> Job:
    return Job(name=new_job_name(service.name), service=service.name, event="x", backend="local")


def _ended(executor: LocalExecutor, handle: str) -> tuple[JobStatus, int | None, str]:
    def probe() -> tuple[JobStatus, int | None, str] | None:
        seen = executor.poll([handle])[handle]
        return (seen.status, seen.exit_code, seen.reason) if seen.terminal else None

    return common.wait_until(probe, timeout=30, interval=0.05, what=f"job {handle} ended")


def _started(executor: LocalExecutor, job: Job) -> None:
    log = executor.job_folder(job.name) / "log"
    common.wait_until(
        lambda: log.exists() and "Running the user script" in log.read_text(),
        timeout=30,
        what="the script started",
    )


def test_a_job_sees_only_its_own_environment_folder_and_streams(
    executor: LocalExecutor,
) -> None:
    service = _service('env | sort\necho "cwd=$(pwd)"\necho "in=$(cat "$INPUT_FILE_PATH")"\n')
    job = _job(service)
    handle = executor.submit(job, service)
    assert executor.pool is not None
    assert _ended(executor, handle) == (JobStatus.SUCCEEDED, 0, "")
    log = executor.logs(job)
    variables = {line.split("=", 1)[0] for line in log.splitlines() if "=" in line}
    # What the zygote itself was started with never reaches the job's script.
    assert "PYTHONPATH" not in variables
    assert f"{MARKER}={executor.processes.mark(executor._pool_name)[1]}" not in log
    assert f"{MARKER}={executor.processes.scope}/{job.name}" in log
    assert f"JOB_UUID={job.name}" in log
    assert "in=x" in log  # the event arrived on the supervisor's stdin


def test_a_crashed_worker_fails_only_its_own_job(executor: LocalExecutor) -> None:
    service = _service("sleep 2\necho survived\n")
    victim, other = _job(service), _job(service)
    victim_handle = executor.submit(victim, service)
    other_handle = executor.submit(other, service)
    _started(executor, victim)
    os.kill(int(victim_handle), signal.SIGKILL)  # the supervisor process itself
    assert _ended(executor, victim_handle) == (
        JobStatus.FAILED,
        137,
        "the supervisor was killed by signal 9",
    )
    assert _ended(executor, other_handle) == (JobStatus.SUCCEEDED, 0, "")
    assert "survived" in executor.logs(other)
    assert "survived" not in executor.logs(victim)


def test_a_dead_zygote_fails_its_jobs_and_the_next_job_gets_a_new_one(
    executor: LocalExecutor,
) -> None:
    service = _service("sleep 30\n")
    held = _job(service)
    handle = executor.submit(held, service)
    _started(executor, held)
    assert executor.pool is not None and executor.pool._zygote is not None
    first = executor.pool._zygote.pid
    os.kill(first, signal.SIGKILL)
    status, _, reason = _ended(executor, handle)
    assert (status, reason) == (JobStatus.FAILED, "the supervisor was killed by signal 9")
    common.wait_until(lambda: not process_alive(int(handle)), timeout=10, what="the orphan is dead")
    quick = _service("echo fine\n")
    again = executor.submit(_job(quick), quick)
    assert _ended(executor, again) == (JobStatus.SUCCEEDED, 0, "")
    assert executor.pool._zygote.pid != first


def test_the_pool_is_bounded(executor: LocalExecutor) -> None:
    service = _service("sleep 30\n")
    handles = [executor.submit(_job(service), service) for _ in range(3)]
    with pytest.raises(PoolFullError, match="all 3 supervisor slots are busy"):
        executor.submit(_job(service), service)
    executor.cancel(handles[0])  # a freed slot is usable again
    executor.submit(_job(service), service)


def test_the_pool_dies_with_its_control_plane(tmp_path: Path) -> None:
    """SIGKILL of the control plane: the zygote sees its socket close and kills its children."""
    program = textwrap.dedent(
        f"""
        import json, sys, uuid
        from pathlib import Path
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from oscar.executors.local import LocalExecutor
        from oscar.executors.proctree import JobProcesses
        from oscar.models.job import Job
        from oscar.models.storage import MinIOProvider
        from oscar.models.validation import parse_service
        store = MinIOProvider(endpoint="http://127.0.0.1:9", access_key="a", secret_key="b")
        local = LocalExecutor(Path({str(tmp_path)!r}) / "jobs", store, 60,
                              JobProcesses(uuid.uuid4().hex[:12]))
        service = parse_service({{"name": "orphan", "image": "alpine", "script": "sleep 60"}})
        handle = local.submit(Job(name="orphan-1", service="orphan", event="x",
                                  backend="local"), service)
        print(json.dumps({{"zygote": local.pool._zygote.pid, "child": int(handle)}}), flush=True)
        sys.stdin.read()
        """
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", program], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert owner.stdout is not None
        pids = json.loads(owner.stdout.readline())
        assert process_alive(pids["zygote"]) and process_alive(pids["child"])
        owner.kill()
        owner.wait()
        for pid in pids.values():
            common.wait_until(
                lambda pid=pid: not process_alive(pid), timeout=15, what=f"{pid} gone"
            )
    finally:
        owner.kill()
        owner.wait()
