"""Turns accepted events into durable jobs and drives them through their backend's lifecycle.

A job record is written (fsynced) before the event is acknowledged. Each backend has one
reconcile loop (a task with a stop signal) that, every poll interval or when woken:

1. polls the jobs its backend holds in one call and writes state changes to the store;
2. enforces the run timeout from the moment a job runs, and the optional queue timeout;
3. submits queued jobs, oldest first, while the backend is under its concurrency limit.

Deleting a job removes its record first (so the loop can never submit it afterwards), then
cancels the work on its backend. On start-up each backend re-attaches to, or reaps, what the
previous run left behind before anything is re-run, so a job never runs twice at once; on
shutdown, work that cannot outlive the control plane (local processes) is stopped and recorded
for a re-run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from oscar.errors import (
    BackendError,
    BackendUnavailableError,
    ServiceNotFoundError,
    TooManyRequestsError,
)
from oscar.executors.base import Executor, Observation
from oscar.jobs.base import JobRecords
from oscar.jobs.policy import route
from oscar.models.job import Job, JobStatus, new_job_name, utcnow
from oscar.registry.base import Registry

log = logging.getLogger("oscar.jobs")
# A job's own supervisor enforces the run timeout; the dispatcher's is the backstop after it.
TIMEOUT_GRACE = 5.0
RESTART_REASON = "re-run: the server stopped while it was running"


@dataclass
class _Backend:
    """One executor with its limit, the jobs it holds, and its loop's wake-up signal."""

    executor: Executor
    limit: int
    flight: dict[str, Job] = field(default_factory=dict)
    sync_active: int = 0
    #: When each service's last batch was handed over (`time.monotonic()`), for batching.
    batched: dict[str, float] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    task: asyncio.Task[None] | None = None

    @property
    def free(self) -> int:
        return self.limit - len(self.flight) - self.sync_active


class Dispatcher:
    """Accepts jobs from any thread; one reconcile loop per backend runs them, bounded."""

    def __init__(
        self,
        store: JobRecords,
        registry: Registry,
        cloud: Executor,
        *,
        hpc: Executor | None = None,
        limits: Mapping[str, int] | None = None,
        job_timeout: float = 3600.0,
        queue_timeout: float | None = None,
        auto_threshold: int = 4,
        timeout_grace: float = TIMEOUT_GRACE,
    ) -> None:
        self.store = store
        self.registry = registry
        self.cloud = cloud
        self.hpc = hpc
        self.job_timeout = job_timeout
        self.queue_timeout = queue_timeout or None
        self.auto_threshold = auto_threshold
        self.timeout_grace = timeout_grace
        limits = limits or {}
        self._backends = {
            e.name: _Backend(e, max(1, limits.get(e.name, e.default_concurrency)))
            for e in (cloud, *([hpc] if hpc else []))
        }
        self._lock = threading.Lock()  # guards every backend's `flight`
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = asyncio.Event()

    # --- life of the dispatcher ----------------------------------------------------------
    async def start(self) -> None:
        """Re-attach to or reap what a previous run left, then start one loop per backend."""
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        for backend in self._backends.values():
            backend.wake, backend.changed = asyncio.Event(), asyncio.Condition()
            # Started again after a stop (a replica that leads again): nothing is held yet.
            backend.flight.clear()
            backend.batched.clear()
            executor = backend.executor
            executor.notify = self._waker(backend)
            for job in await asyncio.to_thread(self.store.with_status, JobStatus.RUNNING):
                if job.backend == executor.name and job.backend_id is None:
                    self.store.requeue(job.name, RESTART_REASON)  # a record from before handles
            held = await asyncio.to_thread(self.store.in_flight, executor.name)
            # Always asked, even with nothing recorded: a crash between starting the work and
            # recording its handle may have left work behind that must not run twice.
            kept = await asyncio.to_thread(executor.recover, held)
            for job in held:
                if job.name in kept:
                    backend.flight[job.name] = job
                else:
                    await asyncio.to_thread(self.store.requeue, job.name, RESTART_REASON)
            if held:
                log.info(
                    "%s: %d job(s) re-attached, %d to re-run",
                    executor.name,
                    len(kept),
                    len(held) - len(kept),
                )
            backend.task = asyncio.ensure_future(self._reconcile(backend))

    async def stop(self) -> None:
        """Stop the loops; work that cannot outlive the server is stopped and re-run later."""
        self._stopping.set()
        for backend in self._backends.values():
            backend.wake.set()
        await asyncio.gather(
            *(b.task for b in self._backends.values() if b.task), return_exceptions=True
        )
        for backend in self._backends.values():
            with self._lock:
                held = list(backend.flight.values())
            if not held:
                continue
            stopped = await asyncio.to_thread(backend.executor.shutdown, held)
            for job in held:
                if job.name in stopped:
                    await asyncio.to_thread(
                        self.store.requeue, job.name, "re-run: the server was stopped"
                    )
        for backend in self._backends.values():
            await asyncio.to_thread(backend.executor.close)

    def _waker(self, backend: _Backend) -> Callable[[], None]:
        def wake() -> None:
            loop = self._loop
            if loop is not None and not loop.is_closed():
                with contextlib.suppress(RuntimeError):  # the loop is shutting down
                    loop.call_soon_threadsafe(backend.wake.set)

        return wake

    # --- accepting and routing -----------------------------------------------------------
    def submit(
        self, service: str, event: str, dedup: str | None = None, owner: str = ""
    ) -> Job | None:
        """Persist a job for `event` (made by the OIDC user `owner`, if any) and wake its
        backend's loop (blocking; any thread).

        Returns None when `dedup` shows the event was already accepted.
        """
        executor = self._route(service)
        job = Job(
            name=new_job_name(service, dedup),
            service=service,
            event=event,
            backend=executor.name,
            owner=owner,
        )
        if not self.store.add(job, dedup):
            return None
        self._backends[executor.name].executor.notify()
        return job

    def _route(self, service_name: str) -> Executor:
        if self.hpc is None:
            return self.cloud
        try:
            service = self.registry.get(service_name)
        except ServiceNotFoundError:
            return self.cloud
        waiting = (
            self.store.count(service_name, JobStatus.PENDING) if service.routing == "auto" else 0
        )
        return self.hpc if route(service, waiting, self.auto_threshold) == "hpc" else self.cloud

    def executor_for(self, job: Job) -> Executor:
        """The executor that runs (or ran) `job`."""
        backend = self._backends.get(job.backend)
        return backend.executor if backend else self.cloud

    def logs(self, job: Job, tail: int | None = None) -> str:
        """The job's log from its backend (blocking); for a job that ended without ever
        reaching one (an event refused outright, a queue timeout), the reason it ended."""
        if job.terminal and job.backend_id is None and job.attempts == 0:
            return f"{job.reason}\n" if job.reason else ""
        return self.executor_for(job).logs(job, tail)

    # --- deleting ------------------------------------------------------------------------
    def delete(self, job: Job) -> None:
        """Forget the job and stop its work wherever it is (blocking; any thread).

        The record goes first: a loop that is submitting the job at this moment finds it gone
        when it records the handle, and cancels the work itself.
        """
        current = self.store.delete(job.name) or job
        backend = self._backends.get(current.backend)
        if backend is not None:
            with self._lock:
                held = backend.flight.pop(current.name, None)
            handle = (held.backend_id if held else None) or current.backend_id
            if handle:
                backend.executor.cancel(handle)
            backend.executor.notify()
        self.executor_for(current).cleanup(current)

    # --- synchronous runs ----------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def sync_slot(self, backend_name: str, wait: float) -> AsyncIterator[None]:
        """Hold one of the backend's concurrency slots for a synchronous run.

        Waits at most `wait` seconds for a free slot, then raises `TooManyRequestsError`.
        """
        backend = self._backends.get(backend_name)
        if backend is None:
            yield
            return
        async with backend.changed:
            try:
                await asyncio.wait_for(backend.changed.wait_for(lambda: backend.free > 0), wait)
            except TimeoutError:
                raise TooManyRequestsError(
                    f"all {backend.limit} slots of the {backend_name} backend are busy",
                    retry_after=max(1.0, backend.executor.poll_interval),
                ) from None
            backend.sync_active += 1
        try:
            yield
        finally:
            async with backend.changed:
                backend.sync_active -= 1
                backend.changed.notify_all()
            backend.wake.set()

    # --- the reconcile loop --------------------------------------------------------------
    async def _reconcile(self, backend: _Backend) -> None:
        name = backend.executor.name
        while not self._stopping.is_set():
            backend.wake.clear()
            try:
                await self._poll(backend)
                await self._enforce_timeouts(backend)
                await self._submit_queued(backend)
            except Exception:
                # A backend failure never ends the loop: log it and try again next interval.
                log.exception("%s: reconcile step failed", name)
            async with backend.changed:
                backend.changed.notify_all()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(backend.wake.wait(), backend.executor.poll_interval)

    async def _poll(self, backend: _Backend) -> None:
        with self._lock:
            held = {job.backend_id: job for job in backend.flight.values() if job.backend_id}
        if not held:
            return
        await asyncio.to_thread(self._poll_and_apply, backend, held)

    def _poll_and_apply(self, backend: _Backend, held: dict[str, Job]) -> None:
        """One poll of the backend and the changes it shows, in one worker thread."""
        try:
            states = backend.executor.poll(list(held))
        except BackendError as exc:
            log.warning("%s: cannot poll jobs: %s", backend.executor.name, exc)
            return
        for handle, job in held.items():
            observed = states.get(handle)
            if observed is not None:
                self._apply(backend, job, observed)

    def _apply(self, backend: _Backend, job: Job, observed: Observation) -> None:
        if observed.terminal:
            if self.store.finish(job.name, observed.status, observed.exit_code, observed.reason):
                log.info(
                    "job finished",
                    extra={
                        "job": job.name,
                        "service": job.service,
                        "status": observed.status.value,
                        "exit_code": observed.exit_code,
                    },
                )
            self._forget(backend, job.name)
            return
        changes: dict[str, object] = {}
        if observed.status == JobStatus.RUNNING and job.status == JobStatus.PENDING:
            if self.store.mark_running(job.name):
                changes = {"status": JobStatus.RUNNING, "started_at": utcnow()}
        elif (
            observed.status == JobStatus.PENDING
            and observed.reason != job.waiting_reason
            and self.store.set_waiting(job.name, observed.reason)
        ):
            changes = {"waiting_reason": observed.reason}
        if changes:
            self._remember(backend, job.model_copy(update=changes))

    def _remember(self, backend: _Backend, job: Job) -> None:
        with self._lock:
            if job.name in backend.flight:  # not deleted meanwhile
                backend.flight[job.name] = job

    def _forget(self, backend: _Backend, *names: str) -> None:
        with self._lock:
            for name in names:
                backend.flight.pop(name, None)

    async def _enforce_timeouts(self, backend: _Backend) -> None:
        now = utcnow()
        if self.queue_timeout is not None:
            cutoff = now - timedelta(seconds=self.queue_timeout)
            for job in await asyncio.to_thread(
                self.store.queued, backend.executor.name, None, cutoff
            ):
                reason = (
                    f"the job waited longer than the {self.queue_timeout:g}s queue timeout "
                    "and was cancelled"
                )
                await asyncio.to_thread(self.store.finish, job.name, JobStatus.FAILED, None, reason)
        with self._lock:
            held = list(backend.flight.values())
        for job in held:
            if job.status == JobStatus.RUNNING and job.started_at is not None:
                limit, what = self.job_timeout + self.timeout_grace, "run"
                since = job.started_at
            elif job.status == JobStatus.PENDING and self.queue_timeout is not None:
                limit, what = self.queue_timeout, "queue"
                since = job.queued_at or job.created
            else:
                continue
            if (now - since).total_seconds() <= limit:
                continue
            await asyncio.to_thread(self._time_out, backend, job, what, limit)

    def _time_out(self, backend: _Backend, job: Job, what: str, limit: float) -> None:
        assert job.backend_id is not None
        backend.executor.cancel(job.backend_id)
        if what == "run":
            reason = f"the job was killed after the {self.job_timeout:g}s timeout"
            code: int | None = 124
        else:
            reason = f"the job waited longer than the {limit:g}s queue timeout and was cancelled"
            code = None
        self.store.finish(job.name, JobStatus.FAILED, code, reason)
        self._forget(backend, job.name)
        log.warning("job timed out", extra={"job": job.name, "service": job.service})

    async def _submit_queued(self, backend: _Backend) -> None:
        while not self._stopping.is_set():
            free = backend.free
            if free <= 0:
                return
            queued = await asyncio.to_thread(self.store.queued, backend.executor.name, free)
            if not queued:
                return
            if backend.executor.batch_size > 1:
                if not await self._submit_batches(backend, queued):
                    return
                continue
            for job in queued:
                if not await self._submit_jobs(backend, [job]):
                    return

    async def _submit_batches(self, backend: _Backend, queued: list[Job]) -> bool:
        """Hand the queued jobs over in batches of one service each; False when nothing more
        is to be handed over now (a batch is gathering, or the backend is unavailable).

        A service's first job after a quiet `batch_window` goes at once (a lone job never
        waits); while a burst goes on, its jobs gather for a window, or until a batch is full.
        """
        executor = backend.executor
        by_service: dict[str, list[Job]] = {}
        for job in queued:
            by_service.setdefault(job.service, []).append(job)
        handed = False
        for service, jobs in by_service.items():
            now = time.monotonic()
            last = backend.batched.get(service)
            if (
                last is not None
                and now - last < executor.batch_window
                and len(jobs) < executor.batch_size
            ):
                continue  # gathering; a later turn of the loop hands it over
            backend.batched[service] = now
            if not await self._submit_jobs(backend, jobs[: executor.batch_size]):
                return False
            handed = True
        cutoff = time.monotonic() - executor.batch_window
        for service in [s for s, at in backend.batched.items() if at < cutoff]:
            del backend.batched[service]  # quiet for a window: its next job goes at once
        return handed

    async def _submit_jobs(self, backend: _Backend, jobs: list[Job]) -> bool:
        """Hand queued jobs of one service to the backend (one `submit`, or one
        `submit_batch` for several); False when the backend is unavailable."""
        available = await asyncio.to_thread(self._hand_over, backend, jobs)
        backend.wake.set()  # poll at once: a local job is Running as soon as it is started
        return available

    def _hand_over(self, backend: _Backend, jobs: list[Job]) -> bool:
        """`_submit_jobs` in one worker thread: every step blocks, and one hand-off to a
        thread per job instead of one per step is most of the loop's own cost in a burst."""
        executor = backend.executor
        names = [job.name for job in jobs]
        try:
            service = self.registry.get(jobs[0].service)
        except ServiceNotFoundError:
            for name in names:
                self.store.finish(name, JobStatus.FAILED, None, "the service was deleted")
            return True
        # Queued jobs are read without their events, which may be large: only now, for the
        # jobs handed over, are they loaded (and they are not kept in flight afterwards).
        bodies = self.store.events_of(names)
        jobs = [
            job.model_copy(update={"event": bodies[job.name]}) for job in jobs if job.name in bodies
        ]
        if not jobs:
            return True  # deleted meanwhile
        names = [job.name for job in jobs]
        # Counted in flight before the call, so the limit holds while submissions are slow.
        with self._lock:
            backend.flight.update((job.name, job) for job in jobs)
        started = time.monotonic()
        try:
            if len(jobs) == 1:
                handles = [executor.submit(jobs[0], service)]
            else:
                handles = executor.submit_batch(jobs, service)
        except BackendUnavailableError as exc:
            self._forget(backend, *names)
            log.warning("%s: cannot submit %s yet: %s", executor.name, ", ".join(names), exc)
            return False
        except Exception as exc:
            self._forget(backend, *names)
            log.exception("job(s) %s could not be submitted", ", ".join(names))
            for name in names:
                self.store.finish(name, JobStatus.FAILED, None, f"could not submit: {exc}")
            return True
        for job, handle in zip(jobs, handles, strict=True):
            if not self.store.set_submitted(job.name, handle):
                # Deleted while it was being submitted: the work must not go on.
                self._forget(backend, job.name)
                executor.cancel(handle)
                executor.cleanup(job)
                continue
            self._remember(backend, job.model_copy(update={"backend_id": handle, "event": ""}))
        log.debug(
            "submitted %s as %s in %.3fs",
            ", ".join(names),
            ", ".join(handles),
            time.monotonic() - started,
        )
        return True
