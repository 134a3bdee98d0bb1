"""Glue between the embedded store and the control plane: service buckets and events → jobs."""

from __future__ import annotations

import json
import logging

from oscar.events.router import matching_services, minio_event
from oscar.jobs.dispatcher import Dispatcher
from oscar.models.service import Service
from oscar.registry.base import Registry
from oscar.storage.base import ServiceStorage, buckets_of_others, default_store_paths
from oscar.storage.embedded.store import ObjectInfo, ObjectStore, StoreError

log = logging.getLogger("oscar.storage")


class EmbeddedStorage(ServiceStorage):
    """Creates the buckets services use and turns object-created events into jobs."""

    def __init__(self, store: ObjectStore, registry: Registry, dispatcher: Dispatcher) -> None:
        self.store = store
        self.registry = registry
        self.dispatcher = dispatcher

    def setup_service(self, service: Service) -> None:
        """Create the service's buckets and folder markers (idempotent)."""
        for bucket, folder in default_store_paths(service):
            if not self.store.bucket_exists(bucket):
                self.store.create_bucket(bucket)
            if folder:
                try:
                    self.store.head(bucket, f"{folder}/")
                except StoreError:
                    blob, size, md5, _ = self.store.write_blob(iter([b""]))
                    self.store.commit_object(
                        bucket, f"{folder}/", blob, size, md5, "application/x-directory", {}
                    )

    def teardown_service(self, service: Service) -> None:
        """Delete the service's buckets, as upstream, unless another service still uses them."""
        in_use = buckets_of_others(self.registry, service)
        for bucket in {b for b, _ in default_store_paths(service)} - in_use:
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
