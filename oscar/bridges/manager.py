"""`BridgeManager`: bridge definitions (create, update, delete) and their runners.

Definitions live in the bridge store; each enabled one has a runner from start-up on. Every
method blocks (SQLite, joining a runner's thread): the API calls them off the event loop.
"""

from __future__ import annotations

import importlib
import json
import logging
import threading
from typing import Any

from oscar.bridges.base import EventSource, SourceContext, first_input
from oscar.bridges.records import BridgeRecords
from oscar.bridges.runner import BridgeRunner
from oscar.errors import FieldError, ServiceNotFoundError
from oscar.jobs.dispatcher import Dispatcher
from oscar.models.bridge import (
    MASK,
    AnyBridge,
    InvalidBridgeError,
    KafkaBridge,
    SqsBridge,
    merge_credentials,
    parse_bridge,
)
from oscar.models.service import Service
from oscar.models.storage import DEFAULT_PROVIDER, MinIOProvider
from oscar.registry.base import Registry

log = logging.getLogger("oscar.bridges")
# The module of each source type (imported when a bridge of that type first runs).
SOURCE_MODULES = {
    "webdav": "oscar.bridges.webdav",
    "dcache": "oscar.bridges.dcache_sse",
    "sqs": "oscar.bridges.sqs",
    "kafka": "oscar.bridges.kafka",
    "minio": "oscar.bridges.minio_listen",
}
# Fields whose change makes a bridge watch something else: its cursor no longer applies.
_IDENTITY = ("type", "provider", "endpoint", "folder", "queue", "topic", "group_id", "service")


def make_source(context: SourceContext) -> EventSource:
    """The source module's `Source` for the bridge's type."""
    module = importlib.import_module(SOURCE_MODULES[context.bridge.type])
    return module.Source(context)


def check_target(bridge: AnyBridge, service: Service) -> None:
    """400 when the service has no input the bridge's events could be staged from."""

    def fail(field: str, message: str) -> InvalidBridgeError:
        return InvalidBridgeError([FieldError(field, message)])

    provider = getattr(bridge, "provider", "")
    if bridge.type in ("webdav", "dcache", "minio"):
        kind = "minio" if bridge.type == "minio" else "webdav"
        entry = first_input(service, (kind,), provider)
        if entry is None or entry.provider_type != kind:
            where = f"on '{provider}'" if provider else f"of type {kind}"
            raise fail(
                "provider" if provider else "service",
                f"service '{service.name}' has no input {where}: a {bridge.type} bridge feeds "
                f"the files it sees to such an input (add one to the service's `input`)",
            )
        ref = entry.storage_provider
        if bridge.type == "minio" and ref == DEFAULT_PROVIDER:
            raise fail(
                "provider",
                "the events of minio.default already reach the control plane (its own store, "
                "or MinIO's webhook): a minio bridge listens to another MinIO, defined in the "
                "service's `storage_providers` and used by its input",
            )
        if ref != DEFAULT_PROVIDER and not service.storage_providers.has(*ref.split(".", 1)):
            raise fail(
                "service",
                f"service '{service.name}' does not define its input's provider '{ref}' in "
                "`storage_providers`",
            )
    elif (
        isinstance(bridge, SqsBridge | KafkaBridge)
        and bridge.payload == "s3"
        and first_input(service, ("minio", "s3")) is None
    ):
        raise fail(
            "payload",
            f"service '{service.name}' has no minio or s3 input for the S3 event records; "
            "add one, or use `payload: raw` to pass each message as the job's event",
        )


class BridgeManager:
    """The bridges of one control plane."""

    def __init__(
        self,
        store: BridgeRecords,
        registry: Registry,
        dispatcher: Dispatcher,
        default_store: MinIOProvider,
        *,
        max_pending: int = 1000,
        retry_ceiling: float = 60.0,
    ) -> None:
        self.store = store
        self.registry = registry
        self.dispatcher = dispatcher
        self.default_store = default_store
        self.max_pending = max_pending
        self.retry_ceiling = retry_ceiling
        self._runners: dict[str, BridgeRunner] = {}
        # The specs the runners were started with, to see changes other replicas made.
        self._started: dict[str, dict[str, Any]] = {}
        self._active = False  # runners run only between start and stop (on the leader)
        self._lock = threading.Lock()  # definitions and runners change together

    # --- life ----------------------------------------------------------------------------
    def start(self) -> None:
        """Start a runner for every stored bridge (a broken one shows its error)."""
        with self._lock:
            self._active = True
        self.sync()

    def sync(self) -> None:
        """Make the runners match the stored definitions: start new ones, restart changed
        ones, stop those deleted (by this replica or another one sharing the store)."""
        stored: dict[str, dict[str, Any]] = {}
        for data in self.store.list():
            stored[str(data.get("name"))] = data
        with self._lock:
            if not self._active:
                return
            for name in [n for n in self._runners if stored.get(n) != self._started.get(n)]:
                self._runners.pop(name).stop()
                self._started.pop(name, None)
            for name, data in stored.items():
                if name in self._runners:
                    continue
                try:
                    bridge = parse_bridge(data)
                except InvalidBridgeError as exc:  # stored by an older version that took it
                    if name not in self._started:
                        log.error("bridge %s cannot be loaded: %s", name, exc)
                    self._started[name] = data
                    continue
                self._start(bridge)

    def stop(self) -> None:
        """Stop every runner (in parallel: each may be in the middle of a long poll)."""
        with self._lock:
            self._active = False
            runners = list(self._runners.values())
            self._runners.clear()
            self._started.clear()
        threads = [threading.Thread(target=r.stop) for r in runners]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _start(self, bridge: AnyBridge) -> None:
        """Start the bridge's runner when runners run here (the caller holds the lock)."""
        if not self._active:
            return
        # As stored (a JSON round trip), so that `sync` compares like with like.
        self._started[bridge.name] = json.loads(json.dumps(bridge.private()))
        runner = BridgeRunner(
            bridge,
            registry=self.registry,
            dispatcher=self.dispatcher,
            store=self.store,
            default_store=self.default_store,
            make_source=make_source,
            max_pending=self.max_pending,
            retry_ceiling=self.retry_ceiling,
        )
        self._runners[bridge.name] = runner
        runner.start()

    # --- reading -------------------------------------------------------------------------
    def list(self) -> list[dict[str, Any]]:
        """Every bridge with its status, credentials masked (one that can no longer be read
        is logged and left out, never a failure of the whole list)."""
        answers = []
        for data in self.store.list():
            try:
                answers.append(self._answer(parse_bridge(data)))
            except InvalidBridgeError as exc:
                log.error("bridge %s cannot be read: %s", data.get("name"), exc)
        return answers

    def get(self, name: str) -> dict[str, Any]:
        """One bridge with its status; `NotFoundError` when there is none."""
        return self._answer(parse_bridge(self.store.get(name)))

    def _answer(self, bridge: AnyBridge) -> dict[str, Any]:
        runner = self._runners.get(bridge.name)
        if runner is not None:
            status = runner.snapshot()
        elif not self._active:
            # Another replica runs the bridges (it holds the Lease); it knows their progress.
            status = {"state": "elsewhere"}
        else:
            status = {"state": "stopped"}
        return {**bridge.public(), "status": status}

    # --- changing ------------------------------------------------------------------------
    def _validate(self, bridge: AnyBridge) -> None:
        try:
            service = self.registry.get(bridge.service)
        except ServiceNotFoundError:
            raise InvalidBridgeError(
                [FieldError("service", f"service '{bridge.service}' does not exist")]
            ) from None
        check_target(bridge, service)

    def create(self, bridge: AnyBridge) -> dict[str, Any]:
        """Store and start a new bridge; `ConflictError` when the name is taken."""
        masked = sorted(k for k, v in bridge.credentials.items() if v.get_secret_value() == MASK)
        if masked:
            raise InvalidBridgeError(
                [FieldError(f"credentials.{k}", f"'{MASK}' keeps a stored value; none is stored")
                 for k in masked]
            )  # fmt: skip
        self._validate(bridge)
        with self._lock:
            self.store.create(bridge.name, bridge.private())
            self._start(bridge)
        log.info("bridge %s created (%s → %s)", bridge.name, bridge.type, bridge.service)
        return self.get(bridge.name)

    def update(self, bridge: AnyBridge, *, credentials_given: bool) -> dict[str, Any]:
        """Replace a bridge's definition and restart it; the cursor is kept unless what it
        watches changed. Credentials not sent (or sent back masked) are kept."""
        with self._lock:
            old = parse_bridge(self.store.get(bridge.name))
            bridge = merge_credentials(bridge, old, credentials_given)
            self._validate(bridge)
            moved = any(getattr(old, f, None) != getattr(bridge, f, None) for f in _IDENTITY)
            runner = self._runners.pop(bridge.name, None)
            if runner is not None:
                runner.stop()
                self._started.pop(bridge.name, None)
            self.store.update(bridge.name, bridge.private(), reset_cursor=moved)
            self._start(bridge)
        log.info("bridge %s updated%s", bridge.name, " (cursor reset)" if moved else "")
        return self.get(bridge.name)

    def delete(self, name: str) -> None:
        """Stop a bridge and forget it with its cursor; `NotFoundError` when there is none."""
        with self._lock:
            self.store.get(name)
            runner = self._runners.pop(name, None)
            if runner is not None:
                runner.stop()
            self._started.pop(name, None)
            self.store.delete(name)
        log.info("bridge %s deleted", name)
