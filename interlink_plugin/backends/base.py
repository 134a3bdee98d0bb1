"""The interface every backend implements: start a pod's `run.sh`, say how its run is doing,
stop it, and report the resources it offers (interLink's ping answer)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection
from dataclasses import KW_ONLY, dataclass
from typing import Any

from interlink_plugin.pods import PodFolder


@dataclass(frozen=True)
class RunState:
    """A pod's run as its backend sees it.

    `active`: queued or running; `waiting_reason`: why it has not started (Slurm's `Reason`);
    when it is over without a container saying why, `exit_code` and `message` (e.g. "Slurm job
    12 ended TIMEOUT") explain it.
    """

    active: bool
    _: KW_ONLY
    waiting_reason: str = ""
    exit_code: int | None = None
    message: str = ""


class PodBackend(ABC):
    """Runs pods' `run.sh` somewhere. Methods block; the server calls them off the event loop."""

    #: The backend's name in the plugin's settings and records.
    name: str = ""
    #: Whether `run.sh` runs on a host that has apptainer/singularity (asked once).
    runtime: str | None = None
    #: Whether natively run containers get private bind mounts there.
    bind_mounts: bool = False

    @abstractmethod
    def start(self, folder: PodFolder, pod: dict[str, Any]) -> str:
        """Start the pod's `run.sh`; its job id once the backend accepted it."""

    @abstractmethod
    def states(self, jobs: Collection[str]) -> dict[str, RunState]:
        """The state of many runs in one call (job id → state)."""

    @abstractmethod
    def stop(self, job: str) -> None:
        """Stop the run wherever it is; one already over is fine."""

    @abstractmethod
    def resources(self) -> dict[str, Any]:
        """What this backend offers: interLink's `ResourcesResponse` (`cpu`, `memory`, `pods`,
        `accelerators`)."""
