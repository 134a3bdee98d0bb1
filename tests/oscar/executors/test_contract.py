"""The executor lifecycle contract, run against every backend on its real server.

Each case drives a real `Dispatcher` over one executor (local processes, the one-node Slurm,
the Kubernetes control plane with kwok) through a harness (tests/fixtures/harness*.py) that
makes jobs behave a given way and can see the work itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from oscar.jobs.base import JobRecords
from oscar.jobs.dispatcher import Dispatcher
from oscar.jobs.store import JobStore
from oscar.models.job import Job, JobStatus
from oscar.models.service import Service
from oscar.registry.memory import MemoryRegistry
from tests.fixtures.harness import Behaviour, Harness

BACKENDS = [
    pytest.param("local", id="local"),
    pytest.param("local_marker", id="local-marker"),
    pytest.param("local_cold", id="local-cold"),
    pytest.param("slurm", id="slurm", marks=[pytest.mark.slurm, pytest.mark.slow]),
    pytest.param("kubernetes", id="kubernetes", marks=pytest.mark.kubernetes),
    # The same backend with the records on the Jobs themselves (OSCAR_JOB_STORE=kubernetes).
    pytest.param("kubernetes_records", id="kubernetes-records", marks=pytest.mark.kubernetes),
]


@pytest.fixture(params=BACKENDS)
def harness(request: pytest.FixtureRequest) -> Harness:
    """The backend under test."""
    return request.getfixturevalue(f"{request.param}_harness")


class Plane:
    """A control plane in miniature: job records, a registry and a dispatcher over the backend.

    Every method that waits polls with a deadline from the harness.
    """

    def __init__(self, harness: Harness, tmp_path: Path, **options: Any) -> None:
        self.harness = harness
        self.registry = MemoryRegistry()
        records = getattr(harness, "job_store", None)  # a backend that keeps its own records
        self.store: JobRecords = (
            records(self.registry) if records else JobStore(tmp_path / "jobs.db")
        )
        self.options = options
        self.dispatcher = self._dispatcher()

    def _dispatcher(self) -> Dispatcher:
        # The backend under test is the "cloud" one: routing plays no part here.
        return Dispatcher(self.store, self.registry, self.harness.executor(), **self.options)

    def service(self, behaviour: Behaviour) -> Service:
        service = self.harness.service(behaviour)
        assert service is not None
        self.registry.create(service)
        return service

    def job(self, name: str) -> Job | None:
        return self.store.get(name)

    async def until(self, probe: Callable[[], Any], what: str) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.harness.patience
        while loop.time() < deadline:
            result = await asyncio.to_thread(probe)
            if result:
                return result
            await asyncio.sleep(0.05)
        raise AssertionError(f"{self.harness.name}: not within {self.harness.patience}s: {what}")

    async def status_is(self, name: str, *wanted: JobStatus) -> Job:
        def probe() -> Job | None:
            job = self.store.get(name)
            return job if job is not None and job.status in wanted else None

        return await self.until(probe, f"job {name} {'/'.join(wanted)}")

    async def restart(self, *, crash: bool) -> None:
        """Stop (gracefully, or as a `kill -9` would: no shutdown at all) and start anew."""
        if crash:
            self.dispatcher._stopping.set()  # the loops end; nothing is stopped or recorded
            for backend in self.dispatcher._backends.values():
                backend.wake.set()
                if backend.task is not None:
                    await backend.task
        else:
            await self.dispatcher.stop()
        self.dispatcher = self._dispatcher()
        await self.dispatcher.start()


def scenario(
    harness: Harness, tmp_path: Path, body: Callable[[Plane], Any], **options: Any
) -> None:
    async def main() -> None:
        plane = Plane(harness, tmp_path, **options)
        await plane.dispatcher.start()
        try:
            await body(plane)
        finally:
            await plane.dispatcher.stop()
            plane.store.close()

    asyncio.run(main())


def test_a_job_runs_and_succeeds(harness: Harness, tmp_path: Path) -> None:
    async def body(plane: Plane) -> None:
        service = plane.service("succeed")
        job = plane.dispatcher.submit(service.name, "x")
        assert job is not None
        done = await plane.status_is(job.name, JobStatus.SUCCEEDED, JobStatus.FAILED)
        assert done.status == JobStatus.SUCCEEDED, done.reason
        assert done.exit_code == 0 and done.backend_id
        assert done.started_at is not None and done.finished_at >= done.started_at
        assert harness.runs(done) == 1
        await plane.until(lambda: not harness.work_alive(done), "nothing of the job left")

    scenario(harness, tmp_path, body)


def test_a_failing_job_fails_with_its_exit_code(harness: Harness, tmp_path: Path) -> None:
    async def body(plane: Plane) -> None:
        service = plane.service("fail")
        job = plane.dispatcher.submit(service.name, "x")
        done = await plane.status_is(job.name, JobStatus.SUCCEEDED, JobStatus.FAILED)
        assert done.status == JobStatus.FAILED
        assert done.exit_code == harness.fail_exit_code
        assert done.reason

    scenario(harness, tmp_path, body)


def test_a_job_deleted_while_pending_never_runs(harness: Harness, tmp_path: Path) -> None:
    """Pending in the backend's own queue where it has one, else in the dispatcher's."""

    async def body(plane: Plane) -> None:
        queued = harness.service("queued")
        if queued is not None:
            plane.registry.create(queued)
            job = plane.dispatcher.submit(queued.name, "x")
            submitted = await plane.until(
                lambda: (j := plane.job(job.name)) and j.backend_id and j, "handed to backend"
            )
            await plane.until(
                lambda: plane.job(job.name).waiting_reason, "the backend's waiting reason"
            )
            assert plane.job(job.name).status == JobStatus.PENDING
        else:
            holder = plane.dispatcher.submit(plane.service("hold").name, "x")
            await plane.status_is(holder.name, JobStatus.RUNNING)
            job = plane.dispatcher.submit(plane.service("succeed").name, "x")
            submitted = plane.job(job.name)
            await asyncio.sleep(0.3)  # loop turns while the limit of 1 holds it back
            assert plane.job(job.name).backend_id is None
        await asyncio.to_thread(plane.dispatcher.delete, submitted)
        assert plane.job(job.name) is None
        if queued is None:
            await asyncio.to_thread(plane.dispatcher.delete, plane.job(holder.name))
        await plane.until(lambda: not harness.work_alive(submitted), "no work left")
        await asyncio.sleep(0.5)  # poll turns: nothing may start it afterwards
        assert harness.runs(submitted) == 0

    scenario(harness, tmp_path, body, limits={harness.name: 1})


def test_a_job_deleted_while_running_is_stopped(harness: Harness, tmp_path: Path) -> None:
    async def body(plane: Plane) -> None:
        service = plane.service("hold")
        job = plane.dispatcher.submit(service.name, "x")
        running = await plane.status_is(job.name, JobStatus.RUNNING)
        assert harness.work_alive(running)
        await asyncio.to_thread(plane.dispatcher.delete, running)
        assert plane.job(job.name) is None
        await plane.until(lambda: not harness.work_alive(running), "the work stopped")

    scenario(harness, tmp_path, body)


def test_a_job_past_the_run_timeout_is_cancelled(harness: Harness, tmp_path: Path) -> None:
    async def body(plane: Plane) -> None:
        service = plane.service("hold")
        job = plane.dispatcher.submit(service.name, "x")
        await plane.status_is(job.name, JobStatus.RUNNING)
        done = await plane.status_is(job.name, JobStatus.FAILED)
        assert done.exit_code == 124 and "timeout" in done.reason
        await plane.until(lambda: not harness.work_alive(done), "the work stopped")

    scenario(harness, tmp_path, body, job_timeout=2.0, timeout_grace=0.0)


def test_a_job_past_the_queue_timeout_is_cancelled(harness: Harness, tmp_path: Path) -> None:
    """Queued in the backend where it has a queue, else in the dispatcher's behind a job."""

    async def body(plane: Plane) -> None:
        queued = harness.service("queued")
        holder = None
        if queued is None:
            holder = plane.dispatcher.submit(plane.service("hold").name, "x")
            await plane.status_is(holder.name, JobStatus.RUNNING)
            queued = plane.service("succeed")
        else:
            plane.registry.create(queued)
        job = plane.dispatcher.submit(queued.name, "x")
        done = await plane.status_is(job.name, JobStatus.FAILED)
        assert "queue timeout" in done.reason
        await plane.until(lambda: not harness.work_alive(done), "the queued work cancelled")
        assert harness.runs(done) == 0
        if holder is not None:
            assert plane.job(holder.name).status == JobStatus.RUNNING  # it had started in time
            await asyncio.to_thread(plane.dispatcher.delete, plane.job(holder.name))

    scenario(harness, tmp_path, body, queue_timeout=3.0, limits={harness.name: 1})


@pytest.mark.parametrize("crash", [False, True], ids=["sigterm", "kill-9"])
def test_a_restart_never_runs_a_job_twice_at_once(
    harness: Harness, tmp_path: Path, crash: bool
) -> None:
    async def body(plane: Plane) -> None:
        service = plane.service("hold")
        job = plane.dispatcher.submit(service.name, "x")
        first = await plane.status_is(job.name, JobStatus.RUNNING)
        await plane.until(lambda: harness.runs(first) == 1, "the script started")
        await plane.restart(crash=crash)
        again = await plane.status_is(job.name, JobStatus.RUNNING)
        if again.backend_id == first.backend_id:
            assert harness.runs(again) == 1  # re-attached: the same work goes on
        else:
            await plane.until(lambda: harness.runs(again) == 2, "re-run once")
            assert not harness.overlaps(again)  # type: ignore[attr-defined]
        await asyncio.to_thread(plane.dispatcher.delete, again)
        await plane.until(lambda: not harness.work_alive(again), "the work stopped")

    scenario(harness, tmp_path, body)
