"""The executor interface. Executors never parse events or touch storage: the supervisor does."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from oscar.models.job import Job
from oscar.models.service import Service


@dataclass(frozen=True)
class JobResult:
    """How a job ended."""

    exit_code: int
    reason: str = ""

    @property
    def succeeded(self) -> bool:
        """Whether the supervisor exited 0."""
        return self.exit_code == 0


class Executor(ABC):
    """Runs jobs to completion and keeps their logs."""

    name: str = "executor"

    @abstractmethod
    async def run(
        self, job: Job, service: Service, started: Callable[[], None] = lambda: None
    ) -> JobResult:
        """Run the job and wait for it to end; call `started` once it actually runs."""

    @abstractmethod
    async def run_sync(
        self, service: Service, body: bytes, timeout: float
    ) -> tuple[int, bytes, str]:
        """Run the supervisor for a synchronous call: (exit code, stdout, log)."""

    @abstractmethod
    def logs(self, job: Job) -> str:
        """The job's log text ('' when there is none yet)."""

    @abstractmethod
    def delete(self, job: Job) -> None:
        """Forget the job's files and stop it if it is still running."""
