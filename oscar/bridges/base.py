"""The interface every bridge source implements, and what the sources share.

A source is driven by its runner (`oscar.bridges.runner`) in a thread of its own:

1. `connect()` once (and again after any failure, with backoff);
2. `fetch(stop)` returns a `Batch` of normalised events, waiting at most about one `interval`;
3. the runner records every event of the batch durably (`oscar.events.accept.accept_event`);
4. only then `commit(batch)` acknowledges it at the source: moves the cursor, deletes the SQS
   messages, commits the Kafka offsets.

A crash anywhere before 4 makes the source hand the same events again, with the same `dedup`
identities, so they are recognised and not run twice. Sources never parse job events beyond
what routing needs, and never touch the job store.

Errors: a source converts its client library's errors where they enter: `BackendUnavailableError`
when the server cannot be reached, `BackendError` when it refuses (credentials, a missing
queue). Messages name the server and what failed, never a credential.
"""

from __future__ import annotations

import json
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from oscar.bridges.records import BridgeRecords
from oscar.events.records import ObjectRecord, is_test_event, object_records, unwrap
from oscar.models.bridge import AnyBridge
from oscar.models.service import Service
from oscar.models.storage import DEFAULT_PROVIDER, MinIOProvider, StorageIOConfig


@dataclass(frozen=True)
class SourceEvent:
    """One event for the bridge's service: the job's event body and its identity."""

    event: str  # the job's event, as the supervisor parses it
    dedup: str  # the same for every delivery of the same object version or message
    subject: str  # what it names, for logs and status ("in/x.jpg", "offset 12")
    routed: bool = True  # matched to one of the service's inputs already (no scope check)
    refused: str = ""  # why it cannot be processed: recorded as a Failed job saying so
    seen: float = field(default_factory=time.time)  # when the source announced it


@dataclass
class Batch:
    """What one `fetch` returned; `token` is the source's own, for `commit`."""

    events: list[SourceEvent] = field(default_factory=list)
    token: Any = None
    ignored: int = 0  # records the source saw that are not for the bridge's service


@dataclass(frozen=True)
class SourceContext:
    """What a source is built from."""

    bridge: AnyBridge
    service: Service
    store: BridgeRecords
    default_store: MinIOProvider  # `minio.default`: the control plane's own store

    def cursor(self) -> dict[str, str]:
        """The bridge's committed cursor."""
        return self.store.cursor(self.bridge.name)

    def move_cursor(self, put: dict[str, str], remove: list[str] | None = None) -> None:
        """Commit cursor entries (on disk when this returns)."""
        self.store.move_cursor(self.bridge.name, put, remove)


class EventSource(ABC):
    """One bridge's connection to its store or queue."""

    #: Something the user should know although the source works (shown in its status).
    notice: str = ""

    def __init__(self, context: SourceContext) -> None:
        self.context = context
        self.bridge = context.bridge
        self.service = context.service

    @abstractmethod
    def connect(self) -> None:
        """Open the connection and check that it works (credentials, queue, folder)."""

    @abstractmethod
    def fetch(self, stop: threading.Event, limit: int) -> Batch:
        """The next events, at most about `limit` (the room left in the service's backlog; a
        message holding several records may bring a few more), waiting at most about
        `interval` seconds (less once `stop` is set); an empty batch when there is nothing
        new."""

    def commit(self, batch: Batch) -> None:  # noqa: B027 - a source may need no acknowledgement
        """Acknowledge a batch whose events are all recorded."""

    def lag(self) -> int | None:
        """Events known to be waiting at the source and not yet taken, when it can tell."""
        return None

    def close(self) -> None:  # noqa: B027 - a source may hold nothing open
        """Release the connection; `connect()` may be called again afterwards."""


# --- what several sources share ------------------------------------------------------------
def first_input(
    service: Service, provider_types: tuple[str, ...], provider: str = ""
) -> StorageIOConfig | None:
    """The service's input a bridge feeds: the one on `provider` when given, else its first
    input of one of `provider_types`."""
    for entry in service.input:
        if provider and entry.storage_provider == provider:
            return entry
        if not provider and entry.provider_type in provider_types:
            return entry
    return None


def provider_settings(context: SourceContext, reference: str) -> dict[str, Any]:
    """The service's definition of a storage provider (`minio.default` is the control plane's
    own store), as a plain dict; empty when it is not defined."""
    if reference == DEFAULT_PROVIDER:
        return context.default_store.model_dump()
    kind, _, provider_id = reference.partition(".")
    found = getattr(context.service.storage_providers, kind, {}).get(provider_id)
    return found.model_dump() if found is not None else {}


def route_record(service: Service, record: ObjectRecord) -> StorageIOConfig | None:
    """The service input whose folder holds the record's object (same provider type and
    bucket), or None when the object is not for this service."""
    for entry in service.input:
        if entry.provider_type != record.provider_type or entry.bucket != record.bucket:
            continue
        folder = entry.folder.strip("/")
        if not folder or record.key.startswith(folder + "/"):
            return entry
    return None


def routed_events(service: Service, records: list[ObjectRecord], subject: str = "") -> Batch:
    """The events of the records that fall in the service's inputs; the rest are counted as
    ignored."""
    batch = Batch()
    for record in records:
        entry = route_record(service, record)
        if entry is None:
            batch.ignored += 1
            continue
        batch.events.append(
            SourceEvent(
                event=json.dumps(record.event),
                dedup=record.dedup(service.name, entry.storage_provider),
                subject=subject or f"{record.bucket}/{record.key}",
            )
        )
    return batch


def message_events(service: Service, body: str, payload: str, identity: str) -> Batch:
    """The events of one queue message (SQS, Kafka). `identity` names the message itself
    (queue and message id, topic/partition/offset) for what is not an object record.

    `s3`: an S3/MinIO event notification (or one wrapped by SNS); its records in the service's
    inputs are events, others are ignored, AWS's test event is nothing, and a message that is
    no notification is refused (a Failed job saying so). `raw`: the body is the job's event.
    """
    if payload == "raw":
        return Batch([SourceEvent(body, f"{service.name}:{identity}", identity, routed=False)])
    try:
        document = unwrap(json.loads(body))
    except ValueError:
        document = None
    if is_test_event(document):
        return Batch(ignored=1)
    records = object_records(document)
    if records is None:
        reason = (
            f"the message ({identity}) is not an S3 event notification with Records; "
            "use `payload: raw` to pass messages through as they are"
        )
        return Batch([SourceEvent(body, f"{service.name}:{identity}", identity, refused=reason)])
    return routed_events(service, records)


class Versions:
    """The cursor of a listing source: the version taken of each file or object, by name.

    A batch's token is `(taken, gone)`: versions to remember and names to forget (no longer
    there, so that a new file of the same name is a new version); `commit` writes both at once.
    """

    def __init__(self, context: SourceContext) -> None:
        self._context = context
        self.known: dict[str, str] = {}
        # Handed out and not committed yet (by this connection: a new one hands them again).
        self._handed: dict[str, str] = {}

    def load(self) -> None:
        """Read the committed cursor."""
        self.known = self._context.cursor()
        self._handed = {}

    def is_taken(self, name: str, version: str) -> bool:
        """Whether this version of `name` was taken already (or handed out just now, so that
        an object both listed and announced is handed out once)."""
        return version in (self.known.get(name), self._handed.get(name))

    def hand(self, taken: dict[str, str]) -> None:
        """Note versions handed out in a batch (committed later)."""
        self._handed.update(taken)

    def gone(self, present: dict[str, str]) -> list[str]:
        """Names taken once that a complete listing no longer shows."""
        return [name for name in self.known if name not in present]

    def commit(self, token: tuple[dict[str, str], list[str]] | None) -> None:
        """Remember the versions taken and forget the names gone (on disk when this returns)."""
        if token is None:
            return
        taken, gone = token
        self._context.move_cursor(taken, gone)
        self.known.update(taken)
        for name in gone:
            self.known.pop(name, None)
        for name in taken:
            self._handed.pop(name, None)


class Backoff:
    """Exponential backoff with a ceiling: 1, 2, 4 ... `ceiling` seconds."""

    def __init__(self, first: float = 1.0, ceiling: float = 60.0) -> None:
        self.first = first
        self.ceiling = ceiling
        self.failures = 0

    def next(self) -> float:
        """The wait before the next attempt (and count this failure)."""
        delay = min(self.ceiling, self.first * 2**self.failures)
        self.failures += 1
        return delay

    def reset(self) -> None:
        """A success: the next failure waits `first` again."""
        self.failures = 0
