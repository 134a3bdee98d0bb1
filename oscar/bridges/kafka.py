"""Kafka: a topic of S3/MinIO event records (MinIO's Kafka target), or of raw messages.

The bridge consumes in its own consumer group and commits offsets only after the jobs of the
messages before them are recorded, so a restart resumes after the last recorded message; a
crash between recording and committing hands those messages out again, and they are
recognised (dedup) rather than run twice.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from oscar.bridges.base import Batch, EventSource, SourceContext, message_events
from oscar.errors import BackendError, BackendUnavailableError
from oscar.models.bridge import KafkaBridge

# The most messages one fetch takes.
MAX_RECORDS = 500
# Seconds between two readings of the topic's end offsets (for `lag`).
LAG_EVERY = 5.0


class Source(EventSource):
    """One topic, read by one consumer of the bridge's group."""

    bridge: KafkaBridge

    def __init__(self, context: SourceContext) -> None:
        super().__init__(context)
        self._consumer: Any = None
        self._lag: int | None = None
        self._lag_read = 0.0
        self._where = f"topic '{self.bridge.topic}' at {self.bridge.bootstrap_servers}"

    def _translated(self, exc: Exception, doing: str) -> Exception:
        from kafka import errors

        # kafka-python 2 says NoBrokersAvailable; 3 times its bootstrap out.
        unreachable = (
            errors.KafkaConnectionError,
            errors.KafkaTimeoutError,
            getattr(errors, "NoBrokersAvailable", errors.KafkaConnectionError),
        )
        if isinstance(exc, unreachable):
            return BackendUnavailableError(f"{self._where} cannot be reached ({doing})")
        if isinstance(exc, errors.AuthenticationFailedError | errors.AuthorizationError):
            return BackendError(f"{self._where} refused the bridge's credentials ({doing})")
        if isinstance(exc, errors.KafkaError):
            return BackendError(f"{self._where}: {doing} failed: {type(exc).__name__}: {exc}")
        return exc

    def connect(self) -> None:
        """Join the consumer group on the topic (which must exist)."""
        from kafka import KafkaConsumer

        bridge = self.bridge
        options: dict[str, Any] = {
            "bootstrap_servers": [s.strip() for s in bridge.bootstrap_servers.split(",")],
            "group_id": bridge.consumer_group,
            "client_id": f"oscar-bridge-{bridge.name}",
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "security_protocol": bridge.security_protocol,
            "request_timeout_ms": 30000,
            "bootstrap_timeout_ms": 5000,
            # A member that died without leaving (kill -9) holds its partitions this long
            # before a new one gets them.
            "session_timeout_ms": 10000,
            "heartbeat_interval_ms": 3000,
            "value_deserializer": None,
        }
        if bridge.security_protocol.startswith("SASL"):
            options["sasl_mechanism"] = bridge.sasl_mechanism
            options["sasl_plain_username"] = bridge.secret("sasl_username")
            options["sasl_plain_password"] = bridge.secret("sasl_password")
        if bridge.security_protocol.endswith("SSL"):
            options["ssl_check_hostname"] = bridge.verify
            if bridge.ssl_cafile:
                options["ssl_cafile"] = bridge.ssl_cafile
        try:
            consumer = KafkaConsumer(**options)
        except Exception as exc:
            raise self._translated(exc, "connecting") from None
        try:
            if bridge.topic not in consumer.topics():
                raise BackendError(f"{self._where} does not exist (yet)")
            consumer.subscribe([bridge.topic])
        except Exception as exc:
            consumer.close(autocommit=False)
            raise self._translated(exc, "subscribing") from None
        self._consumer = consumer

    def fetch(self, stop: threading.Event, limit: int) -> Batch:
        """The messages that arrive within one `interval` (at most `limit`, and
        `MAX_RECORDS`)."""
        if stop.is_set():
            return Batch()
        try:
            found = self._consumer.poll(
                timeout_ms=int(self.bridge.interval * 1000),
                max_records=max(1, min(MAX_RECORDS, limit)),
            )
        except Exception as exc:
            raise self._translated(exc, "polling") from None
        batch = Batch(token={})
        for partition, messages in found.items():
            for message in messages:
                identity = f"kafka:{partition.topic}:{partition.partition}:{message.offset}"
                body = (message.value or b"").decode("utf-8", errors="replace")
                part = message_events(self.service, body, self.bridge.payload, identity)
                batch.events += part.events
                batch.ignored += part.ignored
                batch.token[partition] = message.offset + 1
        return batch

    def commit(self, batch: Batch) -> None:
        """Commit the offsets after the recorded messages."""
        if not batch.token:
            return
        from kafka.structs import OffsetAndMetadata

        offsets = {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in batch.token.items()}
        try:
            self._consumer.commit(offsets)
        except Exception as exc:
            raise self._translated(exc, "committing offsets") from None

    def lag(self) -> int | None:
        """Messages of the topic after this consumer's position."""
        consumer = self._consumer
        now = time.monotonic()
        if consumer is None or now - self._lag_read < LAG_EVERY:
            return self._lag
        self._lag_read = now
        try:
            assigned = consumer.assignment()
            ends = consumer.end_offsets(list(assigned)) if assigned else {}
            self._lag = sum(max(0, ends[tp] - consumer.position(tp)) for tp in assigned)
        except Exception:  # the lag is a nicety: never a failure of the bridge
            self._lag = None
        return self._lag

    def close(self) -> None:
        """Leave the group (without committing anything more)."""
        if self._consumer is not None:
            self._consumer.close(autocommit=False)
            self._consumer = None
