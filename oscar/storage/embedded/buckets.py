"""`BucketStorage` on the embedded store: owner and visibility live in its own metadata table.

The store's `StoreError`s become `oscar.errors` types here (unknown bucket 404, existing or
non-empty 409, invalid name 400, the rest `StorageError`), as do a failing disk's errors.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

from oscar.errors import BadRequestError, ConflictError, NotFoundError, StorageError
from oscar.models.service import DEFAULT_OWNER
from oscar.models.storage import MinIOProvider
from oscar.storage.buckets import (
    BucketInfo,
    BucketStorage,
    ObjectEntry,
    ObjectPage,
    Visibility,
    check_new_bucket_name,
)
from oscar.storage.embedded.store import ObjectStore, StoreError


@contextmanager
def translated(action: str, bucket: str, *, detailed: bool = True) -> Iterator[None]:
    """Turn the store's errors into `oscar.errors` types: "cannot <action> bucket '<bucket>'".

    `detailed`: an unknown bucket is `NotFoundError`, a conflict `ConflictError`, a bad request
    `BadRequestError` (the bucket API's answers); otherwise, and for anything else, every error
    is a `StorageError`.
    """
    what = f"the embedded store cannot {action} bucket '{bucket}'"
    try:
        yield
    except StoreError as exc:
        if not detailed:
            raise StorageError(f"{what}: {exc.code}: {exc.message}") from exc
        if exc.code == "NoSuchBucket":
            raise NotFoundError(f"bucket '{bucket}' not found") from exc
        if exc.status == 409:
            raise ConflictError(f"{what}: {exc.message}") from exc
        if exc.status == 400:
            raise BadRequestError(f"{what}: {exc.message}") from exc
        raise StorageError(f"{what}: {exc.code}: {exc.message}") from exc
    except (OSError, sqlite3.Error) as exc:
        raise StorageError(f"{what}: {exc}") from exc


class EmbeddedBuckets(BucketStorage):
    """Buckets of one `ObjectStore`; URLs are presigned for its client-facing endpoint."""

    def __init__(self, store: ObjectStore, endpoint: MinIOProvider) -> None:
        self.store = store
        self._endpoint = endpoint

    def _info(self, name: str) -> BucketInfo:
        meta = self.store.bucket_meta(name)
        return BucketInfo(
            name=name,
            owner=str(meta.get("owner") or DEFAULT_OWNER),
            visibility=cast(Visibility, meta.get("visibility") or "private"),
            allowed_users=[str(u) for u in cast(list[object], meta.get("allowed_users") or [])],
        )

    def list(self) -> list[BucketInfo]:
        """Every bucket with its recorded owner and visibility."""
        with translated("list", "*"):
            names = [name for name, _ in self.store.list_buckets()]
            infos = []
            for name in names:
                try:
                    infos.append(self._info(name))
                except StoreError as exc:
                    if exc.code != "NoSuchBucket":  # deleted since listed: leave it out
                        raise
            return infos

    def get(self, name: str) -> BucketInfo:
        """One bucket."""
        with translated("read", name):
            return self._info(name)

    def create(
        self, name: str, owner: str, visibility: Visibility, allowed_users: list[str]
    ) -> None:
        """Create the bucket and record its owner and visibility."""
        check_new_bucket_name(name)
        with translated("create", name):
            self.store.create_bucket(name)
            self.store.set_bucket_meta(name, owner, visibility, allowed_users)

    def update(
        self, name: str, owner: str, visibility: Visibility, allowed_users: list[str]
    ) -> None:
        """Record the new visibility; the owner already recorded stays."""
        with translated("update", name):
            recorded = str(self.store.bucket_meta(name).get("owner") or "")
            self.store.set_bucket_meta(name, recorded or owner, visibility, allowed_users)

    def delete(self, name: str) -> None:
        """Delete an empty bucket."""
        with translated("delete", name):
            self.store.delete_bucket(name)

    def list_objects(self, name: str, prefix: str, page: str, limit: int) -> ObjectPage:
        """One page of objects, keys after `page`."""
        with translated("list objects of", name):
            listing = self.store.list_objects(name, prefix, "", page, limit)
        return ObjectPage(
            objects=[ObjectEntry(o.key, o.size, o.modified) for o in listing.objects],
            next_page=listing.next_marker if listing.truncated else "",
            truncated=listing.truncated,
        )

    def require(self, name: str) -> None:
        """`NotFoundError` unless the bucket exists."""
        with translated("look up", name):
            self.store.require_bucket(name)

    @property
    def endpoint(self) -> MinIOProvider:
        """The embedded S3 endpoint and the admin keys, which it verifies."""
        return self._endpoint
