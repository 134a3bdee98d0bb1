"""Per-service credentials for jobs: read the service's inputs, write its outputs, nothing else.

Jobs never hold the default store's admin keys. Each service gets its own key pair, derived
from the store's admin secret and the service name with HMAC-SHA256, so every control-plane
replica computes the same keys without storing them, and no key of one service says anything
about another's. What a key may do is decided from the service's current definition:

- read (GET/HEAD object) and list (with a prefix) under each `minio.default` input path;
- write (PUT, multipart upload, copy destination) under each `minio.default` output path;
- with USER isolation, read and write every bucket of `bucket_list` (outputs go back to the
  user's own bucket);
- look up (HEAD, location) the buckets of those paths;
- nothing else: no deletes, no bucket creation or deletion, no bucket listing.

The embedded store enforces this itself (`ServiceAccess.allows`); on MinIO the same rules
become the inline policy of a service account (`iam_policy`).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from oscar.models.service import Service
from oscar.models.storage import DEFAULT_PROVIDER, MinIOProvider

# MinIO's limits for service-account keys: access keys of 3-20 characters, secrets of 8-40.
ACCESS_KEY_PREFIX = "oscar"
_ACCESS_KEY_LENGTH = 20
_SECRET_KEY_LENGTH = 40


class Action(StrEnum):
    """What an S3 request does, as far as access control is concerned."""

    READ = "read"  # GetObject, HeadObject
    LIST = "list"  # ListObjects(V2) with a prefix
    WRITE = "write"  # PutObject, multipart uploads (and their parts), the destination of CopyObject
    LOOKUP = "lookup"  # HeadBucket, GetBucketLocation
    DELETE = "delete"  # DeleteObject, DeleteObjects
    LIST_BUCKETS = "list buckets"  # ListBuckets
    CREATE_BUCKET = "create"  # CreateBucket
    DELETE_BUCKET = "delete bucket"  # DeleteBucket
    ADMIN = "administer"  # everything else (bucket policies, tags, notifications, ...)


@dataclass(frozen=True)
class Grant:
    """A bucket, or a folder of one (`folder` empty: the whole bucket)."""

    bucket: str
    folder: str = ""

    def covers(self, bucket: str, key: str) -> bool:
        """Whether `key` in `bucket` lies under this grant."""
        if bucket != self.bucket:
            return False
        return not self.folder or key.startswith(self.folder + "/")


@dataclass(frozen=True)
class ServiceAccess:
    """What the jobs of one service may do on the default store."""

    service: str
    reads: tuple[Grant, ...] = ()
    writes: tuple[Grant, ...] = ()

    def allows(self, action: Action, bucket: str, key: str = "") -> bool:
        """Whether this service's key may do `action` on `bucket`/`key` (`key`: the prefix of a
        listing)."""
        if any(part in (".", "..") for part in key.split("/")):
            return False
        if action in (Action.READ, Action.LIST):
            return any(grant.covers(bucket, key) for grant in self.reads)
        if action is Action.WRITE:
            return any(grant.covers(bucket, key) for grant in self.writes)
        if action is Action.LOOKUP:
            return any(grant.bucket == bucket for grant in (*self.reads, *self.writes))
        return False


def _grants(entries: list[Any]) -> tuple[Grant, ...]:
    grants = []
    for entry in entries:
        if entry.storage_provider == DEFAULT_PROVIDER:
            bucket, _, folder = entry.path.strip("/").partition("/")
            grants.append(Grant(bucket, folder.strip("/")))
    return tuple(dict.fromkeys(grants))


def service_access(service: Service) -> ServiceAccess:
    """The access rules of a service's jobs, from its definition."""
    reads, writes = _grants(service.input), _grants(service.output)
    if service.isolation_level == "USER":
        users = tuple(Grant(bucket) for bucket in service.bucket_list)
        reads, writes = reads + users, writes + users
    return ServiceAccess(service.name, reads, writes)


def service_keys(admin_secret: str, service_name: str) -> tuple[str, str]:
    """(access key, secret key) of a service: stable, and unguessable without the admin
    secret."""

    def derive(purpose: str) -> str:
        message = f"oscar/{purpose}/{service_name}".encode()
        return hmac.new(admin_secret.encode(), message, hashlib.sha256).hexdigest()

    access = ACCESS_KEY_PREFIX + derive("access-key")[: _ACCESS_KEY_LENGTH - len(ACCESS_KEY_PREFIX)]
    return access, derive("secret-key")[:_SECRET_KEY_LENGTH]


def job_store(store: MinIOProvider, service_name: str) -> MinIOProvider:
    """The default store as a service's jobs see it: same endpoint, the service's own keys."""
    access, secret = service_keys(store.secret_key, service_name)
    return store.model_copy(update={"access_key": access, "secret_key": secret})


def iam_policy(access: ServiceAccess) -> dict[str, Any]:
    """The MinIO (IAM) policy document equivalent to `access.allows`."""

    def objects(grants: tuple[Grant, ...]) -> list[str]:
        return [f"arn:aws:s3:::{g.bucket}/{g.folder + '/' if g.folder else ''}*" for g in grants]

    statements: list[dict[str, Any]] = []
    buckets = sorted({g.bucket for g in (*access.reads, *access.writes)})
    if buckets:
        statements.append(
            {
                "Effect": "Allow",
                "Action": ["s3:GetBucketLocation"],
                "Resource": [f"arn:aws:s3:::{b}" for b in buckets],
            }
        )
    if access.reads:
        statements.append(
            {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": objects(access.reads)}
        )
        for grant in access.reads:
            listing: dict[str, Any] = {
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": [f"arn:aws:s3:::{grant.bucket}"],
            }
            if grant.folder:
                listing["Condition"] = {"StringLike": {"s3:prefix": [f"{grant.folder}/*"]}}
            statements.append(listing)
    if access.writes:
        statements.append(
            {
                "Effect": "Allow",
                "Action": [
                    "s3:PutObject",
                    "s3:AbortMultipartUpload",
                    "s3:ListMultipartUploadParts",
                ],
                "Resource": objects(access.writes),
            }
        )
    if not statements:  # MinIO refuses an empty policy; this one allows nothing
        statements.append({"Effect": "Deny", "Action": ["s3:*"], "Resource": ["arn:aws:s3:::*"]})
    return {"Version": "2012-10-17", "Statement": statements}
