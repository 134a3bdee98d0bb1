"""`/system/buckets`: buckets of the default store, as upstream's bucket API.

Store-specific work is behind `ServiceStorage.buckets()` (`oscar.storage.buckets`): the same
routes and answers on the embedded store and on MinIO. Routes are plain `def`s, so FastAPI runs
their blocking store calls in its thread pool, off the event loop.

Admins reach every bucket; an OIDC user reaches the buckets they own, `public` ones and
`restricted` ones that name them (`oscar.auth.access`); only the owner changes or deletes one.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, Field, ValidationInfo, field_validator

from oscar.api.deps import State, UserPrincipal
from oscar.auth.access import may_see_bucket, require_bucket_owner, require_bucket_visible
from oscar.models.service import DEFAULT_OWNER
from oscar.models.storage import DEFAULT_PROVIDER
from oscar.storage.buckets import (
    BucketInfo,
    BucketStorage,
    check_existing_bucket_name,
    object_key_problem,
)
from oscar.storage.presign import MAX_EXPIRY_SECONDS

router = APIRouter(prefix="/system/buckets", tags=["buckets"])

# Upstream names the admin "oscar" in bucket metadata (handlers/create.go, create_bucket.go).
ADMIN_OWNER_NAME = "oscar"
DEFAULT_PRESIGN_SECONDS = 900  # upstream's default (presign_bucket.go)
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Headers a client may not have signed into a URL: the signature's own, and hop-by-hop ones.
_RESERVED_HEADERS = {"host", "authorization", "content-length", "transfer-encoding", "connection"}


class BucketSpec(BaseModel):
    """A bucket as upstream's API describes it."""

    bucket_name: str
    visibility: Literal["private", "public", "restricted"] = "private"
    allowed_users: list[str] = Field(default_factory=list)
    metadata: dict[str, str] = Field(default_factory=dict)


PresignOperation = Literal["upload", "download", "delete"]
PresignMethod = Literal["GET", "PUT", "DELETE"]
_PRESIGN_METHODS: dict[str, PresignMethod] = {
    "upload": "PUT",
    "download": "GET",
    "delete": "DELETE",
}


class PresignRequest(BaseModel):
    """Upstream's `PresignRequest`: what to presign, for how long, with which signed headers."""

    object_key: str
    operation: PresignOperation
    expires_in: int = Field(
        0, ge=0, le=MAX_EXPIRY_SECONDS, description=f"seconds; 0: {DEFAULT_PRESIGN_SECONDS}"
    )
    content_type: str = ""
    extra_headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("operation", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("object_key")
    @classmethod
    def _safe_key(cls, value: str) -> str:
        if (problem := object_key_problem(value)) is not None:
            raise ValueError(problem)
        return value

    @field_validator("content_type")
    @classmethod
    def _one_line(cls, value: str, info: ValidationInfo) -> str:
        if any(ch in value for ch in "\r\n\x00"):
            raise ValueError("must be a single line")
        if value.strip() and info.data.get("operation") == "delete":
            raise ValueError("a delete has no content type")
        return value.strip()

    @field_validator("extra_headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, header in value.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a header name")
            lower = name.lower()
            if lower in _RESERVED_HEADERS or (
                lower.startswith("x-amz-") and not lower.startswith("x-amz-meta-")
            ):
                raise ValueError(f"header {name!r} cannot be presigned")
            if any(ch in header for ch in "\r\n\x00"):
                raise ValueError(f"the value of {name!r} must be a single line")
        return value


class PresignResponse(BaseModel):
    """Upstream's `PresignResponse`; `headers` (omitted when none) must be sent as given."""

    object_key: str
    operation: PresignOperation
    method: PresignMethod
    url: str
    expires_at: str
    headers: dict[str, str] | None = None


def _buckets(state: State) -> BucketStorage:
    return state.storage.buckets()


def _services_by_bucket(state: State) -> dict[str, str]:
    """Bucket of the default store -> the service that uses it (the first by name)."""
    owners: dict[str, str] = {}
    for service in sorted(state.registry.list(), key=lambda s: s.name):
        entries = [*service.input, *service.output, *([service.mount] if service.mount else [])]
        for entry in entries:
            if entry.storage_provider == DEFAULT_PROVIDER:
                owners.setdefault(entry.bucket, service.name)
    return owners


def _describe(info: BucketInfo, services: dict[str, str]) -> dict[str, Any]:
    """A bucket as upstream's `utils.MinIOBucket`, `owner_name` and `from_service` under
    `metadata` (upstream tags a service's buckets with both, API-made ones with `owner_name`;
    the dashboard's bucket list reads them)."""
    metadata = {"owner_name": ADMIN_OWNER_NAME if info.owner == DEFAULT_OWNER else info.owner}
    if info.name in services:
        metadata["from_service"] = services[info.name]
    return {
        "bucket_name": info.name,
        "owner": info.owner,
        "visibility": info.visibility,
        "allowed_users": info.allowed_users,
        "metadata": metadata,
    }


@router.get("", summary="List buckets")
def list_buckets(state: State, principal: UserPrincipal) -> list[dict[str, Any]]:
    """The buckets of the default store the caller may reach (admins: all)."""
    services = _services_by_bucket(state)
    return [
        _describe(info, services)
        for info in _buckets(state).list()
        if may_see_bucket(principal, info)
    ]


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_class=Response, summary="Create a bucket"
)
def create_bucket(spec: BucketSpec, state: State, principal: UserPrincipal) -> Response:
    """Create a bucket owned by the caller (409 when it exists)."""
    _buckets(state).create(
        spec.bucket_name, principal.owner_id, spec.visibility, spec.allowed_users
    )
    return Response(status_code=status.HTTP_201_CREATED)


@router.put(
    "", status_code=status.HTTP_204_NO_CONTENT, response_class=Response, summary="Update a bucket"
)
def update_bucket(spec: BucketSpec, state: State, principal: UserPrincipal) -> Response:
    """Change a bucket's visibility and allowed users (its owner, or an admin); the owner
    stays."""
    check_existing_bucket_name(spec.bucket_name)
    buckets = _buckets(state)
    current = buckets.get(spec.bucket_name)
    require_bucket_owner(principal, current)
    buckets.update(spec.bucket_name, current.owner, spec.visibility, spec.allowed_users)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{bucket}", summary="A bucket and its objects")
def get_bucket(
    bucket: str,
    state: State,
    principal: UserPrincipal,
    prefix: str = "",
    page: Annotated[str, Query(description="`next_page` of the previous answer")] = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
) -> dict[str, Any]:
    """The bucket's description with one page of objects."""
    check_existing_bucket_name(bucket)
    buckets = _buckets(state)
    info = buckets.get(bucket)
    require_bucket_visible(principal, info)
    listing = buckets.list_objects(bucket, prefix, page, limit)
    description = _describe(info, _services_by_bucket(state))
    return {
        **description,
        "objects": [
            {
                "object_name": entry.key,
                "size_bytes": entry.size,
                "last_modified": entry.modified.isoformat().replace("+00:00", "Z"),
            }
            for entry in listing.objects
        ],
        "next_page": listing.next_page,
        "is_truncated": listing.truncated,
        "returned_items": len(listing.objects),
    }


@router.delete(
    "/{bucket}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete an empty bucket",
)
def delete_bucket(bucket: str, state: State, principal: UserPrincipal) -> Response:
    """Delete a bucket (its owner, or an admin); 409 while it still holds objects (delete them
    first)."""
    check_existing_bucket_name(bucket)
    buckets = _buckets(state)
    require_bucket_owner(principal, buckets.get(bucket))
    buckets.delete(bucket)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{bucket}/presign",
    response_model_exclude_none=True,
    summary="Presign an upload, a download or a delete",
)
def presign_object(
    bucket: str, request: PresignRequest, state: State, principal: UserPrincipal
) -> PresignResponse:
    """A URL on the default store's client-facing endpoint (the `minio_provider.endpoint` of
    `/system/config`) that uploads (`PUT`), downloads (`GET`) or deletes (`DELETE`) one object
    until `expires_at`.

    `content_type` is signed into uploads (send it as `Content-Type`) and asked of downloads
    (`response-content-type`); `extra_headers` are signed and must be sent as answered.
    """
    check_existing_bucket_name(bucket)
    buckets = _buckets(state)
    require_bucket_visible(principal, buckets.get(bucket))
    headers: dict[str, str] = {}
    query: dict[str, str] = {}
    if request.operation == "upload" and request.content_type:
        headers["Content-Type"] = request.content_type
    if request.operation == "download" and request.content_type:
        query["response-content-type"] = request.content_type
    for name, value in request.extra_headers.items():
        headers["-".join(part.capitalize() for part in name.split("-"))] = value
    method = _PRESIGN_METHODS[request.operation]
    signed = buckets.presign(
        bucket,
        request.object_key,
        method,
        request.expires_in or DEFAULT_PRESIGN_SECONDS,
        headers,
        query,
    )
    return PresignResponse(
        object_key=request.object_key,
        operation=request.operation,
        method=signed.method,
        url=signed.url,
        expires_at=signed.expires_at.isoformat().replace("+00:00", "Z"),
        headers=signed.headers or None,
    )
