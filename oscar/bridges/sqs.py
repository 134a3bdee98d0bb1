"""S3 via SQS: S3 event notifications (or raw messages) long-polled from an SQS queue.

A message stays invisible for `visibility_timeout` seconds once received and is deleted only
after its jobs are recorded; a crash before the delete lets SQS hand it out again when the
timeout expires, and its records are recognised (dedup) rather than run twice.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from oscar.bridges.base import Batch, EventSource, SourceContext, message_events
from oscar.errors import BackendError, BackendUnavailableError
from oscar.models.bridge import SqsBridge

# Seconds between two reads of the queue's depth (for `lag`).
LAG_EVERY = 5.0
_REFUSED = {
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidSecurity",
}


class Source(EventSource):
    """One SQS queue."""

    bridge: SqsBridge

    def __init__(self, context: SourceContext) -> None:
        super().__init__(context)
        self._client: Any = None
        self._url = ""
        self._lag: int | None = None
        self._lag_read = 0.0
        where = self.bridge.endpoint or f"AWS SQS in {self.bridge.region}"
        self._where = f"queue '{self.bridge.queue}' at {where}"

    def _translated(self, exc: Exception, doing: str) -> Exception:
        """Our error for a boto3 one (credentials never appear in botocore's messages)."""
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(exc, ClientError):
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _REFUSED:
                return BackendError(f"{self._where} refused the bridge's credentials ({code})")
            if "NonExistentQueue" in code or code == "QueueDoesNotExist":
                return BackendError(f"{self._where} does not exist")
            return BackendError(f"{self._where}: {doing} failed: {exc}")
        if isinstance(exc, BotoCoreError):
            return BackendUnavailableError(f"{self._where} cannot be reached: {exc}")
        return exc

    def connect(self) -> None:
        """Build the client and find the queue's URL."""
        import boto3
        from botocore.config import Config

        bridge = self.bridge
        self._client = boto3.client(
            "sqs",
            endpoint_url=bridge.endpoint or None,
            region_name=bridge.region,
            aws_access_key_id=bridge.secret("access_key") or None,
            aws_secret_access_key=bridge.secret("secret_key") or None,
            config=Config(
                retries={"max_attempts": 2, "mode": "standard"},
                connect_timeout=10,
                read_timeout=bridge.interval + 20,
            ),
        )
        if bridge.queue.startswith(("http://", "https://")):
            self._url = bridge.queue
            self._queue_depth()  # checks the queue exists and the credentials work
            return
        try:
            self._url = self._client.get_queue_url(QueueName=bridge.queue)["QueueUrl"]
        except Exception as exc:
            raise self._translated(exc, "finding the queue") from None

    def _queue_depth(self) -> int:
        try:
            attributes = self._client.get_queue_attributes(
                QueueUrl=self._url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
        except Exception as exc:
            raise self._translated(exc, "reading the queue's attributes") from None
        return int(attributes.get("ApproximateNumberOfMessages", 0))

    def fetch(self, stop: threading.Event, limit: int) -> Batch:
        """One long poll of up to 10 messages (fewer when `limit` is lower)."""
        if stop.is_set():
            return Batch()
        try:
            answer = self._client.receive_message(
                QueueUrl=self._url,
                MaxNumberOfMessages=max(1, min(10, limit)),
                WaitTimeSeconds=max(0, min(20, int(self.bridge.interval))),
                VisibilityTimeout=self.bridge.visibility_timeout,
                MessageSystemAttributeNames=["SentTimestamp"],
            )
        except Exception as exc:
            raise self._translated(exc, "receiving messages") from None
        batch = Batch(token=[])
        for message in answer.get("Messages", []):
            identity = f"sqs:{self.bridge.queue}:{message['MessageId']}"
            part = message_events(
                self.service, message.get("Body", ""), self.bridge.payload, identity
            )
            batch.events += part.events
            batch.ignored += part.ignored
            batch.token.append(message["ReceiptHandle"])
        return batch

    def commit(self, batch: Batch) -> None:
        """Delete the messages whose jobs are recorded."""
        handles: list[str] = batch.token or []
        for start in range(0, len(handles), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": handle}
                for i, handle in enumerate(handles[start : start + 10])
            ]
            try:
                answer = self._client.delete_message_batch(QueueUrl=self._url, Entries=entries)
            except Exception as exc:
                raise self._translated(exc, "deleting handled messages") from None
            if answer.get("Failed"):
                # Handed out again after the visibility timeout, then recognised as recorded.
                failed = ", ".join(f"{f.get('Code')}" for f in answer["Failed"])
                raise BackendError(
                    f"{self._where}: {len(answer['Failed'])} delete(s) failed: {failed}"
                )

    def lag(self) -> int | None:
        """Messages waiting in the queue (SQS's approximate count, read every few seconds)."""
        now = time.monotonic()
        if now - self._lag_read >= LAG_EVERY:
            self._lag_read = now
            try:
                self._lag = self._queue_depth()
            except BackendError:
                self._lag = None
        return self._lag

    def close(self) -> None:
        """Close the client's connections."""
        if self._client is not None:
            self._client.close()
            self._client = None
