"""Glue between the embedded store and the control plane: service buckets and events → jobs.

The store's own errors (`StoreError`, and the `OSError`/`sqlite3.Error` of a failing disk)
become `StorageError` here, naming the bucket.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Collection, Iterator
from contextlib import contextmanager

from oscar.errors import StorageError
from oscar.events.router import matching_services, minio_event
from oscar.jobs.dispatcher import Dispatcher
from oscar.models.service import Service
from oscar.registry.base import Registry
from oscar.storage.base import (
    ServiceStorage,
    buckets_of_others,
    default_store_buckets,
    default_store_paths,
)
from oscar.storage.embedded.store import ObjectInfo, ObjectStore, StoreError

log = logging.getLogger("oscar.storage")


@contextmanager
def _translated(action: str, bucket: str) -> Iterator[None]:
    """Turn the store's errors into `StorageError`: "cannot <action> bucket '<bucket>'"."""
    what = f"the embedded store cannot {action} bucket '{bucket}'"
    try:
        yield
    except StoreError as exc:
        raise StorageError(f"{what}: {exc.code}: {exc.message}") from exc
    except (OSError, sqlite3.Error) as exc:
        raise StorageError(f"{what}: {exc}") from exc


class EmbeddedStorage(ServiceStorage):
    """Creates the buckets services use and turns object-created events into jobs."""

    def __init__(self, store: ObjectStore, registry: Registry, dispatcher: Dispatcher) -> None:
        self.store = store
        self.registry = registry
        self.dispatcher = dispatcher

    def existing_buckets(self, service: Service) -> set[str]:
        """Which of the service's buckets exist in the store now."""
        found = set()
        for bucket in default_store_buckets(service):
            with _translated("look up", bucket):
                if self.store.bucket_exists(bucket):
                    found.add(bucket)
        return found

    def setup_service(self, service: Service) -> None:
        """Create the service's buckets and folder markers (idempotent)."""
        for bucket, folder in default_store_paths(service):
            with _translated("create", bucket):
                if not self.store.bucket_exists(bucket):
                    self.store.create_bucket(bucket)
                if folder:
                    self._ensure_folder(bucket, folder)

    def _ensure_folder(self, bucket: str, folder: str) -> None:
        try:
            self.store.head(bucket, f"{folder}/")
        except StoreError as exc:
            if exc.code != "NoSuchKey":
                raise
            blob, size, md5, _ = self.store.write_blob(iter([b""]))
            self.store.commit_object(
                bucket, f"{folder}/", blob, size, md5, "application/x-directory", {}
            )

    def teardown_service(self, service: Service, keep: Collection[str] = ()) -> None:
        """Delete the service's buckets, as upstream, unless kept or used by another service."""
        in_use = buckets_of_others(self.registry, service) | set(keep)
        for bucket in default_store_buckets(service):
            if bucket in in_use:
                continue
            with _translated("delete", bucket):
                if not self.store.bucket_exists(bucket):
                    continue
                while True:
                    listing = self.store.list_objects(bucket, "", "", "", 1000)
                    for info in listing.objects:
                        self.store.delete_object(bucket, info.key)
                    if not listing.truncated:
                        break
                self.store.delete_bucket(bucket)
            log.info("bucket deleted", extra={"bucket": bucket, "service": service.name})

    def object_created(self, info: ObjectInfo, principal: str, event_name: str) -> None:
        """Record one job per service whose input folder received the object."""
        if info.key.endswith("/") and info.size == 0:
            return  # a folder marker, not data
        services = matching_services(self.registry.list(), info.bucket, info.key)
        for service in services:
            event = minio_event(
                event_name,
                info.bucket,
                info.key,
                info.size,
                info.etag,
                info.content_type,
                principal,
                info.modified,
            )
            job = self.dispatcher.submit(service.name, json.dumps(event))
            if job is not None:
                log.info(
                    "event accepted",
                    extra={"service": service.name, "job": job.name, "object": info.key},
                )
