"""What `/system/buckets` needs from the default object store, whichever it is.

`ServiceStorage.buckets()` hands out one `BucketStorage`; the embedded store implements it in
`oscar.storage.embedded.buckets`, MinIO in `oscar.storage.minio_buckets`. Implementations turn
their store's errors into `oscar.errors` types where they enter: an unknown bucket is
`NotFoundError`, an existing or non-empty one `ConflictError`, an invalid name
`BadRequestError`, any other refusal `StorageError`, an unreachable store
`BackendUnavailableError`. Methods block.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from oscar.errors import BadRequestError, NotFoundError
from oscar.models.storage import MinIOProvider
from oscar.models.validation import bucket_name_problem
from oscar.storage.presign import expiry, presign_url

Visibility = Literal["private", "public", "restricted"]
# S3 refuses longer keys; the embedded store enforces the same bound.
MAX_KEY_BYTES = 1024


@dataclass(frozen=True)
class BucketInfo:
    """A bucket's owner (`cluster_admin` when none is recorded) and who may reach it."""

    name: str
    owner: str
    visibility: Visibility
    allowed_users: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ObjectEntry:
    """One object of a listing."""

    key: str
    size: int
    modified: datetime


@dataclass(frozen=True)
class ObjectPage:
    """One page of a bucket's objects; `next_page` is empty on the last one."""

    objects: list[ObjectEntry]
    next_page: str
    truncated: bool


@dataclass(frozen=True)
class PresignedRequest:
    """A presigned URL and the headers the client must send with it (they are signed)."""

    method: Literal["GET", "PUT", "DELETE"]
    url: str
    headers: dict[str, str]
    expires_at: datetime


def object_key_problem(key: str) -> str | None:
    """Why `key` may not be used as an object key, or None.

    Keys are never trusted as paths: empty, absolute, `.`/`..` or empty segments (`a//b`,
    trailing `/`), NUL or other control characters, and keys over 1024 bytes are refused.
    """
    if not key:
        return "the object key must not be empty"
    if len(key.encode()) > MAX_KEY_BYTES:
        return f"the object key must be at most {MAX_KEY_BYTES} bytes"
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in key):
        return "the object key must not contain control characters"
    if key.startswith("/"):
        return f"the object key {key!r} must not be absolute"
    if any(part in ("", ".", "..") for part in key.split("/")):
        return f"the object key {key!r} must not have empty, '.' or '..' segments"
    return None


def check_new_bucket_name(name: str) -> None:
    """`BadRequestError` unless `name` is a valid bucket name (before creating it)."""
    if (problem := bucket_name_problem(name)) is not None:
        raise BadRequestError(problem)


def check_existing_bucket_name(name: str) -> None:
    """`NotFoundError` for a name no bucket can have (before looking a bucket up)."""
    if bucket_name_problem(name) is not None:
        raise NotFoundError(f"bucket '{name}' not found")


class BucketStorage(ABC):
    """Buckets of the default store as upstream's bucket API manages them."""

    @abstractmethod
    def list(self) -> list[BucketInfo]:
        """Every bucket, by name."""

    @abstractmethod
    def get(self, name: str) -> BucketInfo:
        """One bucket (`NotFoundError` when there is none)."""

    @abstractmethod
    def create(
        self, name: str, owner: str, visibility: Visibility, allowed_users: list[str]
    ) -> None:
        """Create an empty bucket (`ConflictError` when it exists)."""

    @abstractmethod
    def update(
        self, name: str, owner: str, visibility: Visibility, allowed_users: list[str]
    ) -> None:
        """Change a bucket's visibility and allowed users; `owner` is recorded only when the
        bucket has none yet."""

    @abstractmethod
    def delete(self, name: str) -> None:
        """Delete an empty bucket (`ConflictError` while it holds objects)."""

    @abstractmethod
    def list_objects(self, name: str, prefix: str, page: str, limit: int) -> ObjectPage:
        """Up to `limit` objects under `prefix` after the key `page` (every level)."""

    @abstractmethod
    def require(self, name: str) -> None:
        """`NotFoundError` unless the bucket exists."""

    @property
    @abstractmethod
    def endpoint(self) -> MinIOProvider:
        """The client-facing endpoint and the keys URLs are presigned with."""

    def presign(
        self,
        name: str,
        key: str,
        method: Literal["GET", "PUT", "DELETE"],
        expires_in: int,
        headers: dict[str, str],
        query: dict[str, str],
    ) -> PresignedRequest:
        """A URL on the store's client-facing endpoint that performs `method` on `key` for
        `expires_in` seconds, signing `headers` and `query` (`NotFoundError`: no bucket)."""
        self.require(name)
        endpoint = self.endpoint
        now = datetime.now(UTC).replace(microsecond=0)
        url = presign_url(
            endpoint=endpoint.endpoint,
            region=endpoint.region or "us-east-1",
            access_key=endpoint.access_key,
            secret_key=endpoint.secret_key,
            method=method,
            bucket=name,
            key=key,
            expires_in=expires_in,
            headers=headers,
            query=query,
            now=now,
        )
        return PresignedRequest(method, url, dict(headers), expiry(expires_in, now))
