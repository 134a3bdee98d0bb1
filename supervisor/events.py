"""Event parsing in upstream order: API gateway, dCache, Rucio, delegated, storage, unknown.

Whatever the source, the result is one `Event`: either a storage event naming the provider,
bucket (or WebDAV folder) and object key to stage in, or an UNKNOWN event whose body becomes the
input file.
"""

from __future__ import annotations

import base64
import binascii
import json
import posixpath
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import unquote_plus

from supervisor.config import FunctionConfig, StorageEntry
from supervisor.errors import EventError

UNKNOWN = "UNKNOWN"
_STORAGE_SOURCES = {"minio:s3": "minio", "aws:s3": "s3", "OneTrigger": "onedata"}


@dataclass(frozen=True)
class Event:
    """A parsed event."""

    kind: str  # MINIO, S3, ONEDATA, DCACHE, RUCIO or UNKNOWN
    raw: str  # the event as JSON text (or the original body for UNKNOWN), exported as EVENT
    provider: str = ""  # `<type>.<id>` to stage from
    bucket: str = ""  # bucket for object stores, folder for WebDAV
    key: str = ""  # object key inside the bucket (URL-decoded)
    time: str = ""
    body: bytes = b""  # UNKNOWN only: what becomes the input file

    @property
    def is_storage(self) -> bool:
        """Whether there is an object to download."""
        return self.kind != UNKNOWN

    @property
    def file_name(self) -> str:
        """The base name of the object key."""
        return posixpath.basename(self.key.rstrip("/"))


def decode_event_payload(payload: bytes, *, base64_encoded: bool) -> bytes:
    """The event bytes, base64-decoded when the transport encoded them (the HPC path does)."""
    payload = payload.strip()
    if base64_encoded:
        try:
            return base64.b64decode(payload, validate=False)
        except (binascii.Error, ValueError) as exc:
            raise EventError(f"the event is not valid base64: {exc}") from None
    return payload


def _as_json(data: bytes | str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None


def parse_event(payload: bytes, config: FunctionConfig) -> Event:
    """Classify an event and extract what to stage in."""
    document = _as_json(payload)
    if isinstance(document, dict):
        return _parse_document(document, config, payload.decode("utf-8", errors="replace"))
    return Event(kind=UNKNOWN, raw=payload.decode("utf-8", errors="replace"), body=payload)


def _parse_document(doc: dict[str, Any], config: FunctionConfig, raw: str) -> Event:
    if "httpMethod" in doc:
        return _api_gateway(doc, config, raw)
    if "event" in doc and "subscription" in doc:
        return _dcache(doc, config, raw)
    if "event_type" in doc and isinstance(doc.get("payload"), dict) and "scope" in doc["payload"]:
        return _rucio(doc, raw)
    if "event" in doc:
        return _delegated(doc, config)
    records = doc.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict):
        source = records[0].get("eventSource")
        if isinstance(source, str) and source in _STORAGE_SOURCES:
            return _storage(doc, records[0], _STORAGE_SOURCES[source], config, raw)
    return Event(kind=UNKNOWN, raw=raw, body=raw.encode())


def _api_gateway(doc: dict[str, Any], config: FunctionConfig, raw: str) -> Event:
    body = doc.get("body") or ""
    if isinstance(body, dict):
        return _parse_document(body, config, json.dumps(body))
    if not isinstance(body, str):
        # Gateways send a string; anything else (a number, a list) is data, never a size.
        return Event(kind=UNKNOWN, raw=raw, body=json.dumps(body).encode())
    data = body.encode()
    if doc.get("isBase64Encoded"):
        try:
            data = base64.b64decode(data)
        except (binascii.Error, ValueError) as exc:
            raise EventError(f"API gateway body is not valid base64: {exc}") from None
    inner = _as_json(data)
    if isinstance(inner, dict):
        return _parse_document(inner, config, data.decode("utf-8", errors="replace"))
    return Event(kind=UNKNOWN, raw=raw, body=data)


def _input_for(config: FunctionConfig, provider_type: str, bucket: str = "") -> StorageEntry | None:
    candidates = [e for e in config.inputs if e.provider_type == provider_type]
    for entry in candidates:
        if not bucket or entry.bucket == bucket:
            return entry
    return candidates[0] if candidates else None


def _dcache(doc: dict[str, Any], config: FunctionConfig, raw: str) -> Event:
    inner = doc["event"] if isinstance(doc["event"], dict) else {}
    name = inner.get("name")
    if not isinstance(name, str) or not name:
        raise EventError("dCache event without 'event.name'")
    entry = _input_for(config, "webdav")
    provider = entry.storage_provider if entry else "webdav.dcache"
    folder = entry.path if entry else ""
    return Event(kind="DCACHE", raw=raw, provider=provider, bucket=folder, key=name)


def _rucio(doc: dict[str, Any], raw: str) -> Event:
    payload = doc["payload"]
    name = str(payload.get("name") or "")
    return Event(
        kind="RUCIO",
        raw=raw,
        provider="rucio.default",
        bucket=str(payload.get("scope") or ""),
        key=name,
        time=str(doc.get("created_at") or ""),
    )


def _delegated(doc: dict[str, Any], config: FunctionConfig) -> Event:
    inner = doc["event"]
    text = inner if isinstance(inner, str) else json.dumps(inner)
    parsed = parse_event(text.encode(), config)
    provider = doc.get("storage_provider")
    if parsed.is_storage and isinstance(provider, str) and provider:
        # Another cluster delegated the job: the object lives in that cluster's store.
        return replace(parsed, provider=provider)
    return parsed


def _storage(
    doc: dict[str, Any],
    record: dict[str, Any],
    provider_type: str,
    config: FunctionConfig,
    raw: str,
) -> Event:
    if provider_type == "onedata":
        key = str(doc.get("Key") or doc.get("objectKey") or "")
        entry = _input_for(config, "onedata")
        provider = entry.storage_provider if entry else "onedata.default"
        return Event(kind="ONEDATA", raw=raw, provider=provider, key=unquote_plus(key))
    try:
        bucket = record["s3"]["bucket"]["name"]
        key = record["s3"]["object"]["key"]
    except (KeyError, TypeError):
        raise EventError(
            "storage event without Records[0].s3.bucket.name / Records[0].s3.object.key"
        ) from None
    entry = _input_for(config, provider_type, bucket)
    provider = entry.storage_provider if entry else f"{provider_type}.default"
    return Event(
        kind=provider_type.upper(),
        raw=raw,
        provider=provider,
        bucket=str(bucket),
        key=unquote_plus(str(key)),
        time=str(record.get("eventTime") or ""),
    )


def out_of_scope(event: Event, config: FunctionConfig) -> str | None:
    """Why the event may not be processed by this service, or None when it may.

    A storage event may name only an object under one of the service's own inputs: the same
    provider (or, for a delegated event, a provider the service defines, with the input's
    provider type) and a key under the input's path. Keys with empty, `.` or `..` segments are
    refused outright: a WebDAV or local path built from them could leave the input folder.
    With USER isolation, the buckets of `bucket_list` are inputs too. An UNKNOWN event names
    nothing and is always in scope.
    """
    if not event.is_storage:
        return None
    # Only bucket-less (OneData) keys are absolute paths; an object key's "/" is a key's own.
    location = f"{event.bucket.strip('/')}/{event.key}" if event.bucket else event.key.lstrip("/")
    label = event.bucket or event.key.split("/", 1)[0]
    segments = location.split("/")
    if not event.key or any(part in ("", ".", "..") for part in segments):
        return f"the event's object '{location}' is not a plain key"
    provider_type, _, provider_id = event.provider.partition(".")
    for entry in config.inputs:
        if entry.provider_type != provider_type:
            continue
        same_provider = entry.storage_provider == event.provider
        if not same_provider and not config.provider(provider_type, provider_id or "default"):
            continue
        if location.startswith(entry.path + "/"):
            return None
    # USER isolation: each user's own bucket of `bucket_list` is an input as a whole.
    user_bucket = config.isolation_level == "USER" and event.bucket in config.bucket_list
    if user_bucket and event.provider == "minio.default":
        return None
    return (
        f"bucket '{label}' ({event.provider}) is not an input of this service: an event may "
        "only name objects under the service's input paths"
    )
