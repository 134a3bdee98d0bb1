"""Turns accepted events into durable jobs and runs them on the executor, bounded.

A job record is written (fsynced) before the event is acknowledged. On start-up, jobs left
`Running` by a crash or kill are put back to `Pending` and run again (outputs are written under
the same keys, so a re-run replaces rather than duplicates them), then every `Pending` job is
dispatched.
"""

from __future__ import annotations

import asyncio
import logging

from oscar.errors import ServiceNotFoundError
from oscar.executors.base import Executor
from oscar.jobs.store import JobStore
from oscar.models.job import Job, JobStatus, new_job_name
from oscar.registry.base import Registry

log = logging.getLogger("oscar.jobs")


class Dispatcher:
    """Accepts jobs from any thread and runs them in the event loop, `concurrency` at a time."""

    def __init__(
        self,
        store: JobStore,
        registry: Registry,
        executor: Executor,
        concurrency: int,
        hpc: Executor | None = None,
        auto_threshold: int = 4,
    ) -> None:
        self.store = store
        self.registry = registry
        self.executor = executor
        self.hpc = hpc
        self.concurrency = concurrency
        self.auto_threshold = auto_threshold
        self._executors = {executor.name: executor, **({hpc.name: hpc} if hpc else {})}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Bind to the running loop and resume what a previous run left unfinished."""
        self._loop = asyncio.get_running_loop()
        self._slots = asyncio.Semaphore(self.concurrency)
        for job in self.store.with_status(JobStatus.RUNNING):
            self.store.mark_pending(job.name, "re-run: the server stopped while it was running")
        pending = self.store.with_status(JobStatus.PENDING)
        if pending:
            log.info("resuming %d pending job(s)", len(pending))
        for job in pending:
            self._schedule(job)

    async def stop(self) -> None:
        """Stop running jobs; they stay recorded and run again on the next start."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def submit(self, service: str, event: str, dedup: str | None = None) -> Job | None:
        """Persist a job for `event` and schedule it (callable from any thread).

        Returns None when `dedup` shows the event was already accepted.
        """
        job = Job(
            name=new_job_name(service),
            service=service,
            event=event,
            backend=self._route(service).name,
        )
        if not self.store.add(job, dedup):
            return None
        if self._loop is None:
            return job  # not started yet: start() picks it up from the store
        if self._on_loop():
            self._schedule(job)
        else:
            self._loop.call_soon_threadsafe(self._schedule, job)
        return job

    def _route(self, service_name: str) -> Executor:
        """The executor for a new job of the service, by its `routing` (cloud, hpc or auto)."""
        if self.hpc is None:
            return self.executor
        try:
            service = self.registry.get(service_name)
        except ServiceNotFoundError:
            return self.executor
        if service.routing == "hpc":
            return self.hpc
        if service.routing == "auto":
            waiting = len(self.store.list(service_name, JobStatus.PENDING))
            # Offload when the cloud queue is long or the service wants a GPU the cloud lacks.
            if waiting >= self.auto_threshold or service.enable_gpu:
                return self.hpc
        return self.executor

    def executor_for(self, job: Job) -> Executor:
        """The executor that runs (or ran) `job`."""
        return self._executors.get(job.backend, self.executor)

    def delete(self, job: Job) -> None:
        """Stop the job if it runs, drop its files, and forget its record."""
        self.executor_for(job).delete(job)
        self.store.delete(job.name)

    def _on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def _schedule(self, job: Job) -> None:
        task = asyncio.ensure_future(self._run(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, job: Job) -> None:
        assert self._slots is not None
        async with self._slots:
            try:
                service = self.registry.get(job.service)
            except ServiceNotFoundError:
                self.store.finish(job.name, JobStatus.FAILED, None, "the service was deleted")
                return
            executor = self.executor_for(job)
            try:
                result = await executor.run(job, service, lambda: self.store.mark_running(job.name))
            except asyncio.CancelledError:
                raise  # shutdown: the record stays Running and is re-run on the next start
            except Exception as exc:
                log.exception("job %s could not run", job.name)
                self.store.finish(job.name, JobStatus.FAILED, None, f"could not run: {exc}")
                return
            status = JobStatus.SUCCEEDED if result.succeeded else JobStatus.FAILED
            self.store.finish(job.name, status, result.exit_code, result.reason)
            log.info(
                "job finished",
                extra={
                    "job": job.name,
                    "service": job.service,
                    "status": status.value,
                    "exit_code": result.exit_code,
                },
            )
