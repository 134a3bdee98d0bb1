"""The dispatcher's reconcile loop, driven with the fake executor (named so: it runs nothing).

The real backends are covered by the contract suite (tests/oscar/executors/test_contract.py);
these tests pin the dispatcher's own rules: limits, deletion races, timeouts, restarts, and
that a failing backend never stops the loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from oscar.errors import BackendUnavailableError, TooManyRequestsError
from oscar.executors.base import Observation
from oscar.executors.fake import FakeExecutor
from oscar.jobs.dispatcher import Dispatcher
from oscar.jobs.store import JobStore
from oscar.models.job import Job, JobStatus
from oscar.models.service import Service
from oscar.models.validation import parse_service
from oscar.registry.memory import MemoryRegistry
from tests.fixtures.services import minimal_service


async def until(probe: Callable[[], Any], what: str, timeout: float = 5.0) -> Any:
    """Poll `probe` on the loop until it is truthy (a deadline, not a sleep)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if result := probe():
            return result
        await asyncio.sleep(0.01)
    raise AssertionError(f"not within {timeout}s: {what}")


class World:
    """A dispatcher over a fake executor, with a registry holding service `svc`."""

    def __init__(self, tmp_path: Path, **options: Any) -> None:
        self.store = JobStore(tmp_path / "jobs.db")
        self.registry = MemoryRegistry()
        self.registry.create(parse_service(minimal_service("svc")))
        self.fake = FakeExecutor("local")
        self.options = options
        self.dispatcher = Dispatcher(self.store, self.registry, self.fake, **options)

    def status(self, name: str) -> JobStatus | None:
        job = self.store.get(name)
        return job.status if job else None

    def restart(self, fake: FakeExecutor) -> None:
        self.fake = fake
        self.dispatcher = Dispatcher(self.store, self.registry, fake, **self.options)


def run(tmp_path: Path, body: Callable[[World], Awaitable[None]], **options: Any) -> None:
    async def main() -> None:
        world = World(tmp_path, **options)
        await world.dispatcher.start()
        try:
            await body(world)
        finally:
            await world.dispatcher.stop()
            world.store.close()

    asyncio.run(main())


def test_a_job_goes_pending_running_succeeded(tmp_path: Path) -> None:
    async def body(w: World) -> None:
        job = w.dispatcher.submit("svc", "event")
        assert job is not None
        await until(lambda: job.name in w.fake.submitted, "submitted")
        record = w.store.get(job.name)
        assert record is not None and record.status == JobStatus.PENDING
        assert record.backend_id == w.fake.handle_of(job.name)
        await until(lambda: w.store.get(job.name).waiting_reason == "queued in the fake", "why")
        w.fake.start(job.name)
        await until(lambda: w.status(job.name) == JobStatus.RUNNING, "running")
        running = w.store.get(job.name)
        assert running.started_at is not None and running.attempts == 1
        assert running.waiting_reason == ""
        w.fake.finish(job.name)
        await until(lambda: w.status(job.name) == JobStatus.SUCCEEDED, "succeeded")
        done = w.store.get(job.name)
        assert done.exit_code == 0 and done.finished_at >= done.started_at

    run(tmp_path, body)


def test_a_failing_job_keeps_its_exit_code_and_reason(tmp_path: Path) -> None:
    async def body(w: World) -> None:
        job = w.dispatcher.submit("svc", "event")
        await until(lambda: job.name in w.fake.submitted, "submitted")
        w.fake.finish(job.name, 7, "the script exited with code 7")
        await until(lambda: w.status(job.name) == JobStatus.FAILED, "failed")
        done = w.store.get(job.name)
        assert (done.exit_code, done.reason) == (7, "the script exited with code 7")
        assert done.started_at is not None  # every ended job has both times

    run(tmp_path, body)


def test_at_most_the_limit_is_in_flight(tmp_path: Path) -> None:
    async def body(w: World) -> None:
        jobs = [w.dispatcher.submit("svc", f"e{i}") for i in range(5)]
        await until(lambda: len(w.fake.submitted) == 2, "two submitted")
        await asyncio.sleep(0.1)  # several loop turns: nothing more may be submitted
        assert len(w.fake.submitted) == 2
        w.fake.finish(w.fake.submitted[0])
        await until(lambda: len(w.fake.submitted) == 3, "a third once one ended")
        assert w.fake.submitted == [j.name for j in jobs[:3]]  # oldest first

    run(tmp_path, body, limits={"local": 2})


def test_a_deleted_queued_job_never_starts(tmp_path: Path) -> None:
    async def body(w: World) -> None:
        first = w.dispatcher.submit("svc", "first")
        second = w.dispatcher.submit("svc", "second")
        await until(lambda: first.name in w.fake.submitted, "first submitted")
        await asyncio.to_thread(w.dispatcher.delete, second)
        w.fake.finish(first.name)
        third = w.dispatcher.submit("svc", "third")
        await until(lambda: third.name in w.fake.submitted, "the next one submitted")
        assert second.name not in w.fake.submitted
        assert w.store.get(second.name) is None
        assert second.name in w.fake.cleaned

    run(tmp_path, body, limits={"local": 1})


def test_a_job_deleted_while_being_submitted_is_cancelled(tmp_path: Path) -> None:
    entered, release = threading.Event(), threading.Event()

    async def body(w: World) -> None:
        original = w.fake.submit

        def slow_submit(job: Job, service: Service) -> str:
            entered.set()
            release.wait(5)
            return original(job, service)

        w.fake.submit = slow_submit  # type: ignore[method-assign]
        job = w.dispatcher.submit("svc", "event")
        await asyncio.to_thread(entered.wait, 5)
        await asyncio.to_thread(w.dispatcher.delete, job)
        release.set()
        await until(lambda: w.fake.cancelled, "the work cancelled")
        assert w.fake.cancelled == [w.fake.handle_of(job.name)]
        assert w.store.get(job.name) is None

    run(tmp_path, body)


def test_deleting_a_running_job_cancels_its_work(tmp_path: Path) -> None:
    async def body(w: World) -> None:
        job = w.dispatcher.submit("svc", "event")
        await until(lambda: job.name in w.fake.submitted, "submitted")
        w.fake.start(job.name)
        await until(lambda: w.status(job.name) == JobStatus.RUNNING, "running")
        await asyncio.to_thread(w.dispatcher.delete, w.store.get(job.name))
        assert w.fake.cancelled == [w.fake.handle_of(job.name)]
        assert job.name in w.fake.cleaned and w.store.get(job.name) is None

    run(tmp_path, body)


def test_a_failing_backend_does_not_stop_the_loop(tmp_path: Path) -> None:
    async def body(w: World) -> None:
        job = w.dispatcher.submit("svc", "event")
        await until(lambda: job.name in w.fake.submitted, "submitted")
        w.fake.fail_poll = BackendUnavailableError("the backend is down")
        await asyncio.sleep(0.1)  # polls fail meanwhile
        w.fake.fail_poll = RuntimeError("an unexpected bug in a backend")
        await asyncio.sleep(0.1)
        w.fake.fail_poll = None
        w.fake.finish(job.name)
        await until(lambda: w.status(job.name) == JobStatus.SUCCEEDED, "succeeded after all")

    run(tmp_path, body)


def test_an_unavailable_backend_keeps_jobs_queued_and_others_fail_clearly(tmp_path: Path) -> None:
    async def body(w: World) -> None:
        w.fake.fail_submit = BackendUnavailableError("try later")
        job = w.dispatcher.submit("svc", "event")
        await asyncio.sleep(0.1)
        assert w.status(job.name) == JobStatus.PENDING and w.fake.submitted == []
        w.fake.fail_submit = None
        await until(lambda: job.name in w.fake.submitted, "submitted once available")
        w.fake.fail_submit = ValueError("the backend refused the job")
        refused = w.dispatcher.submit("svc", "event")
        await until(lambda: w.status(refused.name) == JobStatus.FAILED, "refused job failed")
        assert "the backend refused the job" in w.store.get(refused.name).reason

    run(tmp_path, body)


def test_the_run_timeout_counts_from_the_start_not_the_queue(tmp_path: Path) -> None:
    async def body(w: World) -> None:
        job = w.dispatcher.submit("svc", "event")
        await until(lambda: job.name in w.fake.submitted, "submitted")
        await asyncio.sleep(0.5)  # queued in the backend longer than the run timeout
        assert w.status(job.name) == JobStatus.PENDING
        w.fake.start(job.name)
        await until(lambda: w.status(job.name) == JobStatus.FAILED, "timed out", timeout=5)
        done = w.store.get(job.name)
        assert done.exit_code == 124 and "timeout" in done.reason
        assert w.fake.cancelled == [w.fake.handle_of(job.name)]

    run(tmp_path, body, job_timeout=0.3, timeout_grace=0.0)


def test_the_queue_timeout_cancels_work_that_never_starts(tmp_path: Path) -> None:
    async def body(w: World) -> None:
        job = w.dispatcher.submit("svc", "event")
        await until(lambda: w.status(job.name) == JobStatus.FAILED, "queue timeout", timeout=5)
        assert "queue timeout" in w.store.get(job.name).reason
        assert w.fake.cancelled == [w.fake.handle_of(job.name)]

    run(tmp_path, body, queue_timeout=0.3)


@pytest.mark.parametrize("keep", [True, False])
def test_a_restart_reattaches_or_reruns_never_both(tmp_path: Path, keep: bool) -> None:
    async def main() -> None:
        w = World(tmp_path)
        await w.dispatcher.start()
        job = w.dispatcher.submit("svc", "event")
        await until(lambda: job.name in w.fake.submitted, "submitted")
        w.fake.start(job.name)
        await until(lambda: w.status(job.name) == JobStatus.RUNNING, "running")
        await w.dispatcher.stop()  # the fake keeps its work, like Slurm or Kubernetes
        after = FakeExecutor("local")
        after.keep_on_restart = keep
        after.states = dict(w.fake.states)
        after.jobs = dict(w.fake.jobs)
        w.restart(after)
        await w.dispatcher.start()
        if keep:
            after.finish(job.name)
            await until(lambda: w.status(job.name) == JobStatus.SUCCEEDED, "re-attached")
            assert after.submitted == []  # followed again, never started a second time
        else:
            await until(lambda: job.name in after.submitted, "re-run after reaping")
            assert w.store.get(job.name).reason.startswith("re-run")
        await w.dispatcher.stop()
        w.store.close()

    asyncio.run(main())


def test_sync_runs_share_the_backend_limit(tmp_path: Path) -> None:
    async def body(w: World) -> None:
        job = w.dispatcher.submit("svc", "event")
        await until(lambda: job.name in w.fake.submitted, "submitted")
        with pytest.raises(TooManyRequestsError) as refused:
            async with w.dispatcher.sync_slot("local", wait=0.2):
                pass
        assert refused.value.retry_after >= 1
        w.fake.finish(job.name)
        async with w.dispatcher.sync_slot("local", wait=5):
            queued = w.dispatcher.submit("svc", "while a sync run holds the slot")
            await asyncio.sleep(0.1)
            assert queued.name not in w.fake.submitted
        await until(lambda: queued.name in w.fake.submitted, "submitted after the sync run")

    run(tmp_path, body, limits={"local": 1})


def test_observations_of_unknown_handles_fail_the_job(tmp_path: Path) -> None:
    async def body(w: World) -> None:
        job = w.dispatcher.submit("svc", "event")
        await until(lambda: job.name in w.fake.submitted, "submitted")
        w.fake.set_state(job.name, Observation(JobStatus.FAILED, None, "gone from the backend"))
        await until(lambda: w.status(job.name) == JobStatus.FAILED, "failed")
        assert w.store.get(job.name).reason == "gone from the backend"

    run(tmp_path, body)


def test_a_burst_is_handed_over_in_batches_and_a_lone_job_at_once(tmp_path: Path) -> None:
    async def body(w: World) -> None:
        w.fake.batch_size, w.fake.batch_window = 10, 60.0
        lone = w.dispatcher.submit("svc", "lone")
        # Handed over without waiting for the (minute-long) window, and on its own.
        await until(lambda: lone.name in w.fake.submitted, "the lone job submitted")
        assert w.fake.batches == []
        burst = [w.dispatcher.submit("svc", f"e{i}") for i in range(25)]
        await until(lambda: len(w.fake.batches) == 2, "two full batches")
        assert [len(b) for b in w.fake.batches] == [10, 10]
        assert w.fake.batches[0] == [j.name for j in burst[:10]]  # oldest first
        w.dispatcher.submit("svc", "poke")
        await until(lambda: len(w.store.queued("local")) == 6, "the rest gathering")
        assert len(w.fake.batches) == 2  # not full, window not over: still gathering
        w.fake.batch_window = 0.0  # the window ends
        # A loop turn that read the queue before "poke" was on disk may hand the other five
        # first: what counts is that all six go, without waiting for the old window.
        rest = lambda: sum(len(b) for b in w.fake.batches[2:])  # noqa: E731
        await until(lambda: rest() == 6, "the rest handed over")
        handles = {w.store.get(j.name).backend_id for j in burst}
        assert len(handles) == 25 and None not in handles  # each its own job

    run(tmp_path, body)
