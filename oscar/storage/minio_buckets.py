"""`BucketStorage` on an external MinIO, kept as upstream keeps it.

The owner is the bucket tag `owner` (with upstream's `owner_name`); visibility is read from
what MinIO enforces, never from a tag: an anonymous bucket policy is `public`, the canned
policy `oscar-<bucket>` is `restricted` (its allowed users are the MinIO users it is attached
to: subjects, or the derived names of subjects MinIO cannot take), neither is `private`. A
user owner gets everything on the bucket (`oscar-<bucket>_owner`), kept in step on create,
update and delete; the policies are `oscar.storage.minio_grants`', which `MinIOStorage` applies
to service buckets too.

Errors: S3 `NoSuchBucket` becomes `NotFoundError`, `BucketAlreadyOwnedByYou`/`BucketAlreadyExists`/
`BucketNotEmpty` `ConflictError`, `InvalidBucketName` `BadRequestError`; the rest is translated
by `MinIOStorage` (`StorageError`, `BackendUnavailableError`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import islice
from typing import TYPE_CHECKING, Any

from oscar.errors import BadRequestError, ConflictError, NotFoundError
from oscar.models.service import DEFAULT_OWNER
from oscar.models.storage import MinIOProvider
from oscar.storage.buckets import (
    BucketInfo,
    BucketStorage,
    ObjectEntry,
    ObjectPage,
    Visibility,
    check_existing_bucket_name,
    check_new_bucket_name,
)

if TYPE_CHECKING:
    from oscar.storage.minio import MinIOStorage

_CONFLICTS = {"BucketAlreadyOwnedByYou", "BucketAlreadyExists", "BucketNotEmpty"}


class MinIOBuckets(BucketStorage):
    """Buckets of the MinIO behind a `MinIOStorage` (its clients, endpoint and error rules)."""

    def __init__(self, storage: MinIOStorage) -> None:
        self.storage = storage

    @contextmanager
    def _translated(self, action: str, bucket: str) -> Iterator[None]:
        from minio.error import S3Error

        with self.storage._translated(action, bucket):
            try:
                yield
            except S3Error as exc:
                if exc.code == "NoSuchBucket":
                    raise NotFoundError(f"bucket '{bucket}' not found") from exc
                if exc.code in _CONFLICTS:
                    raise ConflictError(f"bucket '{bucket}': {exc.code}: {exc.message}") from exc
                if exc.code == "InvalidBucketName":
                    raise BadRequestError(f"bucket '{bucket}': {exc.message}") from exc
                raise

    @property
    def _client(self) -> Any:
        return self.storage._client

    def _require(self, name: str) -> None:
        check_existing_bucket_name(name)
        if not self._client.bucket_exists(name):
            raise NotFoundError(f"bucket '{name}' not found")

    def _is_public(self, name: str) -> bool:
        from minio.error import S3Error

        try:
            policy = json.loads(self._client.get_bucket_policy(name))
        except S3Error as exc:
            if exc.code == "NoSuchBucketPolicy":
                return False
            raise
        for statement in policy.get("Statement", []):
            principal = statement.get("Principal")
            aws = principal.get("AWS") if isinstance(principal, dict) else principal
            anyone = aws == "*" or (isinstance(aws, list) and "*" in aws)
            if statement.get("Effect") == "Allow" and anyone:
                return True
        return False

    def _info(self, name: str) -> BucketInfo:
        tags = self._client.get_bucket_tags(name) or {}
        visibility: Visibility = "private"
        allowed: list[str] = []
        if self._is_public(name):
            visibility = "public"
        elif (users := self.storage.grants.restricted_users(name)) is not None:
            visibility, allowed = "restricted", users
        return BucketInfo(name, str(tags.get("owner") or DEFAULT_OWNER), visibility, allowed)

    def list(self) -> list[BucketInfo]:
        """Every bucket with its owner tag and the visibility MinIO enforces."""
        with self._translated("list", "*"):
            names = sorted(b.name for b in self._client.list_buckets())
        infos = []
        for name in names:
            try:
                with self._translated("read", name):
                    infos.append(self._info(name))
            except NotFoundError:
                continue  # deleted since listed
        return infos

    def get(self, name: str) -> BucketInfo:
        """One bucket."""
        with self._translated("read", name):
            self._require(name)
            return self._info(name)

    def create(
        self, name: str, owner: str, visibility: Visibility, allowed_users: list[str]
    ) -> None:
        """Create the bucket, tag its owner, give a user owner everything on it and apply its
        visibility (replacing any grant a deleted bucket of the same name left)."""
        check_new_bucket_name(name)
        with self._translated("create", name):
            if self._client.bucket_exists(name):
                raise ConflictError(f"bucket '{name}' already exists")
            self._client.make_bucket(name)
            self.storage.grants.tag_owner(name, owner)
            self.storage.grants.set_owner(name, owner)
            self.storage.grants.set_visibility(name, visibility, allowed_users)

    def update(
        self, name: str, owner: str, visibility: Visibility, allowed_users: list[str]
    ) -> None:
        """Re-apply visibility and the recorded owner's access; tag the owner only when the
        bucket has none."""
        with self._translated("update", name):
            self._require(name)
            recorded = (self._client.get_bucket_tags(name) or {}).get("owner")
            if not recorded:
                self.storage.grants.tag_owner(name, owner)
            self.storage.grants.set_owner(name, recorded or owner)
            self.storage.grants.set_visibility(name, visibility, allowed_users)

    def delete(self, name: str) -> None:
        """Delete an empty bucket and its owner's and users' policies."""
        with self._translated("delete", name):
            self._require(name)
            self._client.remove_bucket(name)  # BucketNotEmpty while it holds objects
            self.storage.grants.drop(name)

    def list_objects(self, name: str, prefix: str, page: str, limit: int) -> ObjectPage:
        """One page of objects, keys after `page` (MinIO lists in key order)."""
        with self._translated("list objects of", name):
            self._require(name)
            items = self._client.list_objects(
                name, prefix=prefix or None, recursive=True, start_after=page or None
            )
            found = list(islice(items, limit + 1))
        objects = [
            ObjectEntry(o.object_name, int(o.size or 0), o.last_modified or datetime.now(UTC))
            for o in found[:limit]
        ]
        truncated = len(found) > limit
        return ObjectPage(objects, objects[-1].key if truncated else "", truncated)

    def require(self, name: str) -> None:
        """`NotFoundError` unless the bucket exists."""
        with self._translated("look up", name):
            self._require(name)

    @property
    def endpoint(self) -> MinIOProvider:
        """The configured MinIO endpoint and the control plane's keys."""
        return self.storage.provider
