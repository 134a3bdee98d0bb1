"""S3 and MinIO event notifications: the object-created records in them, one event per record.

MinIO's webhook, its Kafka target and listen API, and AWS S3's notifications (to SQS, directly or
through SNS) all carry the same `Records` list. Every source splits it here, so an object
reaches a job with the same event body and the same identity (`dedup`) whichever way it came:
an object announced twice, by the webhook and by Kafka, or redelivered by SQS, is one job.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from oscar.models.storage import DEFAULT_PROVIDER

# `eventSource` → the provider type the supervisor stages the object from.
SOURCE_TYPES = {"minio:s3": "minio", "aws:s3": "s3"}


def object_identity(service: str, provider: str, location: str, version: str) -> str:
    """The job identity (dedup) of one version of an object for `service`: the same whichever
    source announced it. `location` is `bucket/key` (or the folder and file of a WebDAV
    store). `minio.default` is left out of it, as the webhook always wrote it."""
    where = "" if provider == DEFAULT_PROVIDER else f"{provider}:"
    return f"{service}:{where}{location}:{version}"


@dataclass(frozen=True)
class ObjectRecord:
    """One object-created record: where the object is, its version marker, the event to run."""

    provider_type: str  # minio or s3
    bucket: str
    key: str  # URL-decoded
    marker: str  # what tells this version of the object from others (sequencer, version, time)
    size: int
    event: dict[str, Any]  # the whole notification with only this record in `Records`

    def dedup(self, service: str, provider: str = DEFAULT_PROVIDER) -> str:
        """The job identity of this object version for `service` (its input `provider`)."""
        return object_identity(service, provider, f"{self.bucket}/{self.key}", self.marker)


def unwrap(document: Any) -> Any:
    """The S3 notification inside an SNS envelope (S3 → SNS → SQS), or the document itself."""
    if (
        isinstance(document, dict)
        and document.get("Type") == "Notification"
        and isinstance(document.get("Message"), str)
    ):
        try:
            return json.loads(document["Message"])
        except ValueError:
            return document
    return document


def is_test_event(document: Any) -> bool:
    """AWS's `s3:TestEvent`, sent once when a notification is configured: no object."""
    return isinstance(document, dict) and document.get("Event") == "s3:TestEvent"


def object_records(document: Any) -> list[ObjectRecord] | None:
    """The object-created records of a notification; None when it is not one at all.

    Records of other events (removals), folder markers and records missing their bucket or key
    are left out: no S3-compatible store sends those for a new object.
    """
    if not isinstance(document, dict) or not isinstance(document.get("Records"), list):
        return None
    found = []
    for record in document["Records"]:
        if not isinstance(record, dict):
            continue
        name = str(record.get("eventName") or "")
        if name and "ObjectCreated" not in name:
            continue
        provider_type = SOURCE_TYPES.get(str(record.get("eventSource") or ""), "minio")
        try:
            obj = record["s3"]["object"]
            bucket = record["s3"]["bucket"]["name"]
            raw_key = obj["key"]
        except (KeyError, TypeError, IndexError):
            continue
        if not isinstance(obj, dict) or not isinstance(bucket, str) or not isinstance(raw_key, str):
            continue
        key = unquote_plus(raw_key)
        size = obj.get("size") if isinstance(obj.get("size"), int) else 0
        if key.endswith("/") and not size:
            continue  # a folder marker
        marker = str(obj.get("versionId") or obj.get("sequencer") or record.get("eventTime") or "")
        found.append(
            ObjectRecord(
                provider_type, bucket, key, marker, size, {**document, "Records": [record]}
            )
        )
    return found
