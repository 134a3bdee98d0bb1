"""MinIO ListenBucketNotification: for a MinIO server that cannot reach the control plane.

The bridge opens MinIO's listen stream on the input's bucket and prefix (a SigV4-signed GET
that MinIO answers with one JSON line per event) and keeps it open. MinIO keeps no backlog
for listeners, so on every (re)connection, and every `reconcile` seconds, the bridge lists the
input folder and takes every object whose version (ETag) it has not taken yet: what was
uploaded while the control plane was down or the stream was broken is found there. (It also
covers MinIO releases whose listen stream sits in a 4 KiB write buffer until it fills: the
2026-02 development build the tests use does, as its response writer wrapper drops flushes.)
The cursor holds the ETag taken per object key; an object's identity (dedup) is its key and
ETag, whichever way it was found.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx

from oscar.bridges.base import (
    Batch,
    EventSource,
    SourceContext,
    SourceEvent,
    Versions,
    first_input,
    provider_settings,
    route_record,
)
from oscar.bridges.stream import LineStream
from oscar.errors import BackendError, BackendUnavailableError
from oscar.events.records import ObjectRecord, object_identity, object_records
from oscar.events.router import minio_event
from oscar.models.bridge import MinioBridge

# Events one fetch hands over at most.
MAX_BATCH = 500
# Seconds between MinIO's empty keep-alive records; the read timeout is a few of them.
PING_SECONDS = 10


class Source(EventSource):
    """The listen stream of one MinIO bucket prefix, with a listing on every connection."""

    bridge: MinioBridge

    def __init__(self, context: SourceContext) -> None:
        super().__init__(context)
        entry = first_input(self.service, ("minio",), self.bridge.provider)
        if entry is None:
            raise BackendError(f"service '{self.service.name}' has no minio input")
        self.provider = entry.storage_provider
        self.bucket = entry.bucket
        self.prefix = f"{entry.folder.strip('/')}/" if entry.folder.strip("/") else ""
        settings = provider_settings(context, self.provider)
        endpoint = self.bridge.endpoint or str(settings.get("endpoint") or "")
        if not endpoint:
            raise BackendError(f"no endpoint: neither the bridge nor {self.provider} names one")
        self.endpoint = endpoint.rstrip("/")
        self._access = self.bridge.secret("access_key") or str(settings.get("access_key") or "")
        self._secret = self.bridge.secret("secret_key") or str(settings.get("secret_key") or "")
        self._region = str(settings.get("region") or "") or "us-east-1"
        self._verify = self.bridge.verify and bool(settings.get("verify", True))
        self._where = f"MinIO {self.endpoint} bucket '{self.bucket}'"
        self._client = httpx.Client(
            verify=self._verify, timeout=httpx.Timeout(30, read=3 * PING_SECONDS)
        )
        self._stream: LineStream | None = None
        self._lister: Any = None
        self._versions = Versions(context)
        # What the listing found and is not handed over yet: (event, key, ETag), and the keys
        # gone from the folder (forgotten with the first part handed over).
        self._backlog: list[tuple[SourceEvent, str, str]] = []
        self._gone: list[str] = []
        self._next_listing = 0.0

    # --- connecting ----------------------------------------------------------------------
    def connect(self) -> None:
        """Start the listen stream, then list the folder for what happened before it (the
        listing also proves the endpoint, the bucket and the credentials)."""
        self._versions.load()
        self._stream = LineStream(self._open_stream, self._where)
        self._list()
        self._next_listing = time.monotonic() + self.bridge.reconcile

    def _open_stream(self) -> httpx.Response:
        """The listen request (in the stream's thread: the server may answer late or never).

        `ping` makes a healthy MinIO send an empty record every few seconds, so that a dead
        connection is noticed by the read timeout.
        """
        query = urlencode(
            [
                ("events", "s3:ObjectCreated:*"),
                ("prefix", self.prefix),
                ("suffix", ""),
                ("ping", str(PING_SECONDS)),
            ]
        )
        url = f"{self.endpoint}/{self.bucket}?{query}"
        # Uncompressed: MinIO's gzip layer holds the stream back, then drops the connection.
        headers = {**self._signed("GET", url), "Accept-Encoding": "identity"}
        request = self._client.build_request("GET", url, headers=headers)
        try:
            response = self._client.send(request, stream=True)
        except httpx.TransportError as exc:
            raise BackendUnavailableError(f"{self._where} cannot be reached: {exc}") from None
        if response.status_code != 200:
            body = response.read().decode(errors="replace")
            response.close()
            raise self._refusal(response.status_code, body)
        return response

    def _signed(self, method: str, url: str) -> dict[str, str]:
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        request = AWSRequest(method=method, url=url, data=b"")
        S3SigV4Auth(Credentials(self._access, self._secret), "s3", self._region).add_auth(request)
        return dict(request.headers.items())

    def _refusal(self, status: int, body: str) -> BackendError:
        if status in (401, 403):
            return BackendError(f"{self._where} refused the bridge's credentials ({status})")
        if status == 404:
            return BackendError(f"{self._where} does not exist ({status})")
        code = body.split("<Code>", 1)[-1].split("</Code>", 1)[0] if "<Code>" in body else ""
        return BackendError(f"{self._where} answered {status} {code}".rstrip())

    def _s3(self) -> Any:
        """The S3 client of the listings, built on first use and kept (a listing may come
        every second)."""
        if self._lister is None:
            import boto3
            from botocore.config import Config

            self._lister = boto3.client(
                "s3",
                endpoint_url=self.endpoint,
                aws_access_key_id=self._access,
                aws_secret_access_key=self._secret,
                region_name=self._region,
                verify=self._verify,
                config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
            )
        return self._lister

    def _list(self) -> None:
        """Every object of the folder not taken yet into the backlog; keys no longer there
        are to leave the cursor."""
        from botocore.exceptions import BotoCoreError, ClientError

        s3 = self._s3()
        present: dict[str, str] = {}
        backlog = []
        try:
            pages = s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            for page in pages:
                for obj in page.get("Contents", []):
                    key, etag = obj["Key"], obj.get("ETag", "").strip('"')
                    if key.endswith("/") and not obj.get("Size"):
                        continue
                    present[key] = etag
                    if not self._versions.is_taken(key, etag):
                        event = minio_event(
                            "s3:ObjectCreated:Put",
                            self.bucket,
                            key,
                            int(obj.get("Size", 0)),
                            etag,
                            "application/octet-stream",
                            "oscar-bridge",
                            obj.get("LastModified") or datetime.now(UTC),
                        )
                        backlog.append((self._event(event, key, etag), key, etag))
        except ClientError as exc:
            raise self._refusal(
                int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)),
                str(exc.response.get("Error", {}).get("Code", "")),
            ) from None
        except BotoCoreError as exc:
            raise BackendUnavailableError(f"{self._where} cannot be listed: {exc}") from None
        self._backlog = backlog
        self._versions.hand({key: etag for _, key, etag in backlog})
        self._gone = self._versions.gone(present)

    def _event(self, event: dict[str, Any], key: str, etag: str) -> SourceEvent:
        dedup = object_identity(self.service.name, self.provider, f"{self.bucket}/{key}", etag)
        return SourceEvent(json.dumps(event), dedup, subject=f"{self.bucket}/{key}")

    # --- reading -------------------------------------------------------------------------
    def fetch(self, stop: threading.Event, limit: int) -> Batch:
        """What the listing after a (re)connection found, then the events the stream brings
        (at most `limit`)."""
        if not self._backlog and not self._gone and time.monotonic() >= self._next_listing:
            self._list()
            self._next_listing = time.monotonic() + self.bridge.reconcile
        if self._backlog or self._gone:
            part, self._backlog = self._backlog[:limit], self._backlog[limit:]
            taken = {key: etag for _, key, etag in part}
            batch = Batch([event for event, _, _ in part], token=(taken, self._gone))
            self._gone = []
            return batch
        assert self._stream is not None
        most = min(MAX_BATCH, limit)
        # Waiting on the stream never delays the next listing.
        wait = min(self.bridge.interval, max(0.0, self._next_listing - time.monotonic()))
        try:
            lines = self._stream.take(wait, stop, lambda got: len(got) >= most)
        except BackendError as exc:
            # The listings still find every object: say so, and open the stream again.
            self.notice = (
                f"the listen stream failed ({exc}); listing every {self.bridge.reconcile:g}s"
            )
            self._stream.close()
            self._stream = LineStream(self._open_stream, self._where)
            return Batch()
        batch = Batch(token=({}, []))
        for line in lines:
            if not line.strip():
                continue  # MinIO's keep-alive
            try:
                records = object_records(json.loads(line)) or []
            except ValueError:
                continue  # not an event: nothing to take
            for record in records:
                self._add(batch, record)
        return batch

    def _add(self, batch: Batch, record: ObjectRecord) -> None:
        entry = route_record(self.service, record)
        if entry is None or entry.storage_provider != self.provider:
            batch.ignored += 1
            return
        etag = str(record.event["Records"][0]["s3"]["object"].get("eTag") or "").strip('"')
        if self._versions.is_taken(record.key, etag):
            return  # taken already (found by the listing, or announced twice)
        batch.events.append(self._event(record.event, record.key, etag))
        batch.token[0][record.key] = etag
        self._versions.hand({record.key: etag})

    def commit(self, batch: Batch) -> None:
        """Remember the versions taken (and forget the objects that are gone)."""
        self._versions.commit(batch.token)

    def lag(self) -> int | None:
        """Lines received and not yet taken."""
        return self._stream.waiting() if self._stream is not None else None

    def close(self) -> None:
        """Close the stream."""
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        if self._lister is not None:
            self._lister.close()
            self._lister = None
        self._client.close()
