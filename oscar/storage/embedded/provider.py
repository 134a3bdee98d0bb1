"""Glue between the embedded store and the control plane: service buckets, the store's keys
(the admin's, one per service, one per OIDC user) and events → jobs.

OIDC users' keys are derived (`oscar.storage.users.user_keys`); the subjects that got one are
recorded in the store's `users` table (objects.db), so that an access key is mapped back to its
subject after a restart, and by every process sharing the store.

The store's own errors (`StoreError`, and the `OSError`/`sqlite3.Error` of a failing disk)
become `StorageError` here, naming the bucket or the user.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Collection
from functools import partial

from oscar.errors import ConflictError, ServiceNotFoundError, StorageError
from oscar.events.accept import accept_event
from oscar.events.router import minio_event
from oscar.jobs.dispatcher import Dispatcher
from oscar.models.service import Service
from oscar.models.storage import MinIOProvider
from oscar.registry.base import Registry
from oscar.storage.base import (
    ServiceStorage,
    buckets_of_others,
    default_store_paths,
    service_buckets,
)
from oscar.storage.buckets import BucketStorage
from oscar.storage.embedded.buckets import EmbeddedBuckets, translated
from oscar.storage.embedded.server import Principal
from oscar.storage.embedded.store import ObjectInfo, ObjectStore, StoreError
from oscar.storage.isolation import UserBucket, user_buckets
from oscar.storage.scoped import ACCESS_KEY_PREFIX, service_access, service_keys
from oscar.storage.users import USER_ACCESS_KEY_PREFIX, UserAccess, check_subject, user_keys

log = logging.getLogger("oscar.storage")
# An unknown job key triggers at most one registry scan per this many seconds.
KEY_RESCAN_SECONDS = 1.0


# Service set-up and teardown report every store error as a `StorageError`.
_translated = partial(translated, detailed=False)


class EmbeddedStorage(ServiceStorage):
    """Creates the buckets services use, knows every key of the store (the admin's and one per
    service) and turns object-created events into jobs."""

    def __init__(
        self,
        store: ObjectStore,
        registry: Registry,
        dispatcher: Dispatcher,
        credentials: MinIOProvider,
    ) -> None:
        self.store = store
        self.registry = registry
        self.dispatcher = dispatcher
        self.credentials = credentials
        self._services_by_key: dict[str, str] = {}
        self._scanned = float("-inf")
        # Users known to be recorded in the store: subject → display name, access key → subject.
        self._users: dict[str, str] = {}
        self._users_by_key: dict[str, str] = {}
        self._lock = threading.Lock()

    def buckets(self) -> BucketStorage:
        """`/system/buckets` on this store, URLs presigned for its client-facing endpoint."""
        return EmbeddedBuckets(self.store, self.credentials)

    def user_credentials(self, subject: str, display_name: str = "") -> MinIOProvider:
        """The embedded S3 endpoint with the user's own derived keys; the first call for a
        subject (in this process) records it in the store, later ones compute only."""
        check_subject(subject)
        access, secret = user_keys(self.credentials.secret_key, subject)
        with self._lock:
            recorded = self._users.get(subject)
        if recorded is None or (display_name and recorded != display_name):
            try:
                self.store.record_user(subject, access, display_name or recorded or "")
            except (StoreError, OSError, sqlite3.Error) as exc:
                raise StorageError(
                    f"the embedded store cannot record user '{subject}': {exc}"
                ) from exc
            with self._lock:
                self._users[subject] = display_name or recorded or ""
                self._users_by_key[access] = subject
        return self.credentials.model_copy(update={"access_key": access, "secret_key": secret})

    def principal(self, access_key: str) -> Principal | None:
        """The admin, the service whose job key `access_key` is, or the OIDC user whose key it
        is (None: no such key).

        Blocks (reads the registry or the store). What a service key may do is read from the
        service's current definition, so a changed or deleted service changes or ends it at
        once; what a user's key may do, from the buckets' recorded owners and visibility.
        """
        if access_key == self.credentials.access_key:
            return Principal(self.credentials.secret_key)
        if access_key.startswith(USER_ACCESS_KEY_PREFIX):
            subject = self._user_of(access_key)
            if subject is None:
                return None
            _, secret = user_keys(self.credentials.secret_key, subject)
            return Principal(secret, user=UserAccess(subject))
        if not access_key.startswith(ACCESS_KEY_PREFIX):
            return None
        name = self._service_of(access_key)
        if name is None:
            return None
        try:
            service = self.registry.get(name)
        except ServiceNotFoundError:
            return None
        access, secret = service_keys(self.credentials.secret_key, service.name)
        if access != access_key:
            return None
        return Principal(secret, service_access(service))

    def _user_of(self, access_key: str) -> str | None:
        """The subject whose key `access_key` is: remembered, or recorded in the store (by
        this or an earlier process) and still derived from the current admin secret."""
        with self._lock:
            subject = self._users_by_key.get(access_key)
        if subject is not None:
            return subject
        admin_secret = self.credentials.secret_key
        for candidate in self.store.users_with_access_key(access_key):
            if user_keys(admin_secret, candidate)[0] == access_key:
                with self._lock:
                    self._users_by_key[access_key] = candidate
                return candidate
        return None

    def _service_of(self, access_key: str) -> str | None:
        with self._lock:
            name = self._services_by_key.get(access_key)
            if name is not None or time.monotonic() - self._scanned < KEY_RESCAN_SECONDS:
                return name
            self._scanned = time.monotonic()
        admin_secret = self.credentials.secret_key
        keys = {service_keys(admin_secret, s.name)[0]: s.name for s in self.registry.list()}
        with self._lock:
            # Merged, not replaced: a service set up during the scan keeps its key (keys of
            # deleted services stay too, and are refused by the registry lookup).
            self._services_by_key.update(keys)
        return keys.get(access_key)

    def existing_buckets(self, service: Service) -> set[str]:
        """Which of the service's buckets exist in the store now."""
        found = set()
        for bucket in service_buckets(service):
            with _translated("look up", bucket):
                if self.store.bucket_exists(bucket):
                    found.add(bucket)
        return found

    def setup_service(self, service: Service) -> None:
        """Create the service's buckets and folder markers (idempotent); buckets created for
        services take the service's owner and visibility (`public`: anonymous read and list),
        on every update too. With USER isolation each allowed user's bucket is made, `private`
        and owned by that user. The service's job key works from now on."""
        access_key, _ = service_keys(self.credentials.secret_key, service.name)
        with self._lock:
            self._services_by_key[access_key] = service.name
        for bucket, folder in default_store_paths(service):
            with _translated("create", bucket):
                if not self.store.bucket_exists(bucket):
                    self.store.create_bucket(bucket)
                    self.store.mark_service_bucket(bucket)
                if self.store.is_service_bucket(bucket):  # never another owner's bucket
                    self.store.set_bucket_meta(
                        bucket,
                        service.owner or "cluster_admin",
                        service.visibility,
                        list(service.allowed_users),
                    )
                if folder:
                    self._ensure_folder(bucket, folder)
        for user_bucket in user_buckets(service):
            self._setup_user_bucket(user_bucket)

    def _setup_user_bucket(self, user_bucket: UserBucket) -> None:
        """Create a user's bucket owned by them, or check that the existing one is theirs
        (`ConflictError` otherwise: someone else's bucket is never handed to them). Its
        visibility is set only when it is made: the user may share it later."""
        bucket, subject = user_bucket.name, user_bucket.subject
        with _translated("create", bucket):
            if not self.store.bucket_exists(bucket):
                self.store.create_bucket(bucket, owner=subject)
                self.store.mark_service_bucket(bucket)
            owner = self.store.bucket_meta(bucket)["owner"]
            if owner != subject:
                raise ConflictError(
                    f"bucket '{bucket}' (USER isolation, for '{subject}') already exists and "
                    f"belongs to '{owner}'"
                )
            for folder in user_bucket.folders:
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

    def usage(self) -> tuple[int, int]:
        """(buckets, objects) in the embedded store."""
        with _translated("count", "*"):
            return self.store.usage()

    def teardown_service(self, service: Service, keep: Collection[str] = ()) -> None:
        """Delete the buckets created for the service, unless kept or used by another service.

        Unlike upstream, a bucket that existed before (made through `/system/buckets` or S3,
        or before this rule) is never deleted with a service that only used it.
        """
        in_use = buckets_of_others(self.registry, service) | set(keep)
        for bucket in service_buckets(service):
            if bucket in in_use:
                continue
            with _translated("delete", bucket):
                if not self.store.is_service_bucket(bucket):
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
        """Record one job per service whose input folder received the object; a user's upload
        makes jobs that user sees as theirs."""
        if info.key.endswith("/") and info.size == 0:
            return  # a folder marker, not data
        uploader = ""
        if principal.startswith(USER_ACCESS_KEY_PREFIX):
            uploader = self._user_of(principal) or ""
        for service in self.registry.inputs_matching(info.bucket, info.key):
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
            job = accept_event(self.dispatcher, service, json.dumps(event), None, owner=uploader)
            if job is not None:
                log.info(
                    "event accepted",
                    extra={"service": service.name, "job": job.name, "object": info.key},
                )
