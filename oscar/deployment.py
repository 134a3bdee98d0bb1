"""The runtime of synchronous services: its state and recent log (`/deployment[/logs]`).

On the embedded default and the Kubernetes Job runner every `/run` call starts its own
supervisor: no runtime stands between calls, so the state is `ready` whenever a runner exists and
the instances are the calls in flight; the log is the tail of the recent calls' logs, kept in
memory (bounded, lost on restart, as a pod's log is lost with the pod). A runner with a standing
runtime (Knative) reports its own state and log instead.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from oscar.executors.base import SyncRunner
from oscar.models.deployment import (
    DeploymentLogEntry,
    DeploymentLogStream,
    DeploymentStatus,
    ResourceKind,
)
from oscar.models.service import Service

#: Log lines kept per service, and the longest line kept (longer lines are cut).
LOG_LINES_KEPT = 1000
LOG_LINE_CHARS = 4096


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class _ServiceActivity:
    active: int = 0
    failed_last: bool = False
    last_transition: str | None = None
    lines: deque[tuple[str, str]] = field(default_factory=lambda: deque(maxlen=LOG_LINES_KEPT))


class SyncActivity:
    """Per service: the `/run` calls in flight, whether the last one failed, and the last
    `LOG_LINES_KEPT` lines of their logs. Thread-safe; nothing here blocks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._services: dict[str, _ServiceActivity] = {}

    def _of(self, name: str) -> _ServiceActivity:
        return self._services.setdefault(name, _ServiceActivity())

    @contextmanager
    def running(self, name: str) -> Iterator[None]:
        """Count one call of `name` as in flight while the block runs."""
        with self._lock:
            self._of(name).active += 1
        try:
            yield
        finally:
            with self._lock:
                self._of(name).active -= 1

    def finished(self, name: str, exit_code: int, log: str) -> None:
        """Record the end of a call: its log lines and whether it failed."""
        stamp = _now()
        with self._lock:
            activity = self._of(name)
            if activity.failed_last != (exit_code != 0) or activity.last_transition is None:
                activity.last_transition = stamp
            activity.failed_last = exit_code != 0
            activity.lines.extend((stamp, line[:LOG_LINE_CHARS]) for line in log.splitlines())

    def forget(self, name: str) -> None:
        """Drop what is kept of a deleted service."""
        with self._lock:
            self._services.pop(name, None)

    def status(self, service: Service, kind: ResourceKind) -> DeploymentStatus:
        """The per-call runtime's state: ready (degraded while the last call failed)."""
        with self._lock:
            activity = self._services.get(service.name) or _ServiceActivity()
            active, failed, since = activity.active, activity.failed_last, activity.last_transition
        if failed:
            state, reason = "degraded", "The last synchronous call failed; see the logs."
        else:
            state, reason = "ready", "Each call starts its own supervisor; ready for calls."
        return DeploymentStatus(
            service_name=service.name,
            state=state,
            reason=reason,
            last_transition_time=since,
            active_instances=active,
            affected_instances=0,
            resource_kind=kind,
        )

    def logs(self, name: str, tail: int, timestamps: bool) -> list[DeploymentLogEntry]:
        """The last `tail` lines of the service's calls, oldest first."""
        with self._lock:
            activity = self._services.get(name)
            lines = list(activity.lines)[-tail:] if activity and tail > 0 else []
        return [
            DeploymentLogEntry(timestamp=stamp if timestamps else None, message=text)
            for stamp, text in lines
        ]


def deployment_status(
    service: Service, runner: SyncRunner | None, activity: SyncActivity
) -> DeploymentStatus:
    """The state of what serves the service's `/run` calls (blocking: a runner may ask its
    cluster)."""
    if runner is None:
        return DeploymentStatus(
            service_name=service.name,
            state="unavailable",
            reason="No backend of this cluster runs services synchronously.",
            resource_kind="unavailable",
        )
    standing = runner.runtime_status(service)
    if standing is not None:
        return standing
    return activity.status(service, runner.call_kind)


def deployment_logs(
    service: Service,
    runner: SyncRunner | None,
    activity: SyncActivity,
    tail: int,
    timestamps: bool,
) -> DeploymentLogStream:
    """The runtime's recent log lines (blocking: a runner may read them from its cluster)."""
    if runner is None:
        return DeploymentLogStream(
            service_name=service.name,
            available=False,
            message="No backend of this cluster runs services synchronously.",
        )
    entries = runner.runtime_logs(service, tail, timestamps)
    if entries is None:
        entries = activity.logs(service.name, tail, timestamps)
    if not entries:
        return DeploymentLogStream(
            service_name=service.name,
            available=False,
            message="Deployment logs are not yet available.",
        )
    return DeploymentLogStream(service_name=service.name, available=True, entries=entries)
