"""One bridge at work: a thread that fetches, records, then acknowledges, until stopped.

Each bridge has its own thread, source and backoff, so a broken bridge (wrong password, a
server that is down) shows its error and retries on its own without slowing the others.

Back-pressure: before each fetch the runner counts the service's Pending jobs; at
`max_pending` it pauses (fetches nothing, so the events wait at their source: unread in the
queue, past the committed offset, not yet listed) and resumes once the backlog drains.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from oscar.bridges.base import Backoff, Batch, EventSource, SourceContext
from oscar.bridges.records import BridgeRecords
from oscar.errors import OscarError, ServiceNotFoundError
from oscar.events.accept import accept_event, record_failed
from oscar.jobs.dispatcher import Dispatcher
from oscar.models.bridge import AnyBridge
from oscar.models.job import JobStatus
from oscar.models.service import Service
from oscar.models.storage import MinIOProvider
from oscar.registry.base import Registry

log = logging.getLogger("oscar.bridges")
# How often a paused bridge looks at the backlog again.
PAUSE_CHECK_SECONDS = 0.5


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")


@dataclass
class BridgeStatus:
    """What a bridge is doing, as `/system/bridges` answers it."""

    state: str = "starting"  # starting, running, paused, error, disabled, stopped
    since: float = field(default_factory=time.time)
    message: str = ""  # why it is paused, or the last error
    last_event: float | None = None  # when the last event was recorded
    last_error: float | None = None
    errors: int = 0  # failures since the bridge started
    retry_at: float | None = None
    events: int = 0  # events recorded (new jobs and refused ones)
    duplicates: int = 0  # events recognised as recorded before
    refused: int = 0  # events recorded as Failed jobs (cannot be processed)
    ignored: int = 0  # records for objects outside the service's inputs
    lag: int | None = None  # events waiting at the source, when it can tell
    pending: int = 0  # the service's Pending jobs at the last look

    def answer(self) -> dict[str, Any]:
        """The JSON form: times as ISO 8601, plus the seconds since the last event."""
        data = asdict(self)
        for key in ("since", "last_event", "last_error", "retry_at"):
            data[key] = _iso(data[key])
        data["last_event_age"] = (
            round(time.time() - self.last_event, 3) if self.last_event is not None else None
        )
        return data


SourceFactory = Callable[[SourceContext], EventSource]


class BridgeRunner:
    """Runs one bridge in its own thread."""

    def __init__(
        self,
        bridge: AnyBridge,
        *,
        registry: Registry,
        dispatcher: Dispatcher,
        store: BridgeRecords,
        default_store: MinIOProvider,
        make_source: SourceFactory,
        max_pending: int,
        retry_ceiling: float = 60.0,
    ) -> None:
        self.bridge = bridge
        self.registry = registry
        self.dispatcher = dispatcher
        self.store = store
        self.default_store = default_store
        self.make_source = make_source
        self.max_pending = bridge.max_pending or max_pending
        self.status = BridgeStatus()
        self._backoff = Backoff(ceiling=retry_ceiling)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # --- life ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the thread (a disabled bridge only shows as such)."""
        if not self.bridge.enabled:
            self._set(state="disabled", message="the bridge is disabled (enabled: false)")
            return
        self._thread = threading.Thread(
            target=self._run, name=f"bridge-{self.bridge.name}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the thread to stop and wait for it (a fetch in progress ends within about one
        `interval`)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("bridge %s did not stop within %.0fs", self.bridge.name, timeout)
        if self.bridge.enabled:
            self._set(state="stopped", message="")

    def snapshot(self) -> dict[str, Any]:
        """The status, as answered."""
        with self._lock:
            return self.status.answer()

    def _set(self, **changes: Any) -> None:
        with self._lock:
            if "state" in changes and changes["state"] != self.status.state:
                self.status.since = time.time()
            for key, value in changes.items():
                setattr(self.status, key, value)

    # --- the loop --------------------------------------------------------------------------
    def _run(self) -> None:
        source: EventSource | None = None
        built_for: Service | None = None
        name = self.bridge.name
        while not self._stop.is_set():
            try:
                service = self.registry.get(self.bridge.service)
                if source is not None and service != built_for:
                    source.close()  # the service changed (its inputs, its providers)
                    source = None
                if source is None:
                    source = self.make_source(
                        SourceContext(self.bridge, service, self.store, self.default_store)
                    )
                    built_for = service
                    source.connect()
                    log.info("bridge %s connected", name)
                room = self._room(service.name)
                if room <= 0:
                    continue
                batch = source.fetch(self._stop, room)
                self._record(service, batch)
                source.commit(batch)
                self._set(state="running", message=source.notice, retry_at=None, lag=source.lag())
                self._backoff.reset()
            except Exception as exc:  # every failure: shown, then retried with backoff
                message = _describe(exc, self.bridge.service)
                delay = self._backoff.next()
                with self._lock:
                    self.status.errors += 1
                    self.status.last_error = time.time()
                    self.status.retry_at = time.time() + delay
                self._set(state="error", message=message)
                if isinstance(exc, OscarError):
                    log.warning("bridge %s: %s (retry in %.0fs)", name, message, delay)
                else:
                    log.exception("bridge %s failed (retry in %.0fs)", name, delay)
                if source is not None:
                    _close_quietly(source)
                    source = None
                self._stop.wait(delay)
        if source is not None:
            _close_quietly(source)

    def _room(self, service: str) -> int:
        """How many more jobs the service's backlog takes before `max_pending`; at none, the
        bridge is paused (and waits a little before it looks again)."""
        pending = self.dispatcher.store.count(service, JobStatus.PENDING)
        self._set(pending=pending)
        if pending < self.max_pending:
            return self.max_pending - pending
        self._set(
            state="paused",
            message=f"service '{service}' has {pending} pending jobs (max_pending "
            f"{self.max_pending}); events wait at the source",
        )
        self._stop.wait(PAUSE_CHECK_SECONDS)
        return 0

    def _record(self, service: Service, batch: Batch) -> None:
        """Record every event of the batch (each on disk before the next)."""
        new = duplicates = refused = 0
        for event in batch.events:
            if event.refused:
                job = record_failed(
                    self.dispatcher, service.name, event.event, event.refused, event.dedup
                )
            else:
                job = accept_event(
                    self.dispatcher, service, event.event, event.dedup, routed=event.routed
                )
            if job is None:
                duplicates += 1
            elif job.terminal:
                refused += 1
            else:
                new += 1
        with self._lock:
            status = self.status
            status.events += new + refused
            status.duplicates += duplicates
            status.refused += refused
            status.ignored += batch.ignored
            if new + refused:
                status.last_event = time.time()
        if batch.events:
            log.info(
                "bridge %s: %d event(s) recorded, %d already recorded, %d refused",
                self.bridge.name,
                new + refused,
                duplicates,
                refused,
            )


def _describe(exc: Exception, service: str) -> str:
    if isinstance(exc, ServiceNotFoundError):
        return f"service '{service}' does not exist: events wait at the source until it does"
    if isinstance(exc, OscarError):
        return str(exc)
    return f"unexpected error: {type(exc).__name__}: {exc}"


def _close_quietly(source: EventSource) -> None:
    try:
        source.close()
    except Exception:  # closing a broken connection may fail too; nothing more to do
        log.debug("closing a bridge source failed", exc_info=True)
