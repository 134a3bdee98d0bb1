"""`/system/buckets`: buckets of the default store, as upstream's bucket API."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response, status
from pydantic import BaseModel, Field

from oscar.api.deps import AdminPrincipal, State
from oscar.models.service import DEFAULT_OWNER
from oscar.models.storage import DEFAULT_PROVIDER
from oscar.storage.embedded.provider import EmbeddedStorage
from oscar.storage.embedded.store import ObjectStore, StoreError

router = APIRouter(prefix="/system/buckets", tags=["buckets"])


class BucketSpec(BaseModel):
    """A bucket as upstream's API describes it."""

    bucket_name: str
    visibility: Literal["private", "public", "restricted"] = "private"
    allowed_users: list[str] = Field(default_factory=list)
    metadata: dict[str, str] = Field(default_factory=dict)


def _store(state: State) -> ObjectStore:
    if not isinstance(state.storage, EmbeddedStorage):
        raise HTTPException(
            status.HTTP_501_NOT_IMPLEMENTED, "/system/buckets is served on the embedded store only"
        )
    return state.storage.store


def _store_error(exc: StoreError) -> HTTPException:
    return HTTPException(exc.status, exc.message)


# Upstream names the admin "oscar" in bucket metadata (handlers/create.go, create_bucket.go).
ADMIN_OWNER_NAME = "oscar"


def _services_by_bucket(state: State) -> dict[str, str]:
    """Bucket of the default store -> the service that uses it (the first by name)."""
    owners: dict[str, str] = {}
    for service in sorted(state.registry.list(), key=lambda s: s.name):
        entries = [*service.input, *service.output, *([service.mount] if service.mount else [])]
        for entry in entries:
            if entry.storage_provider == DEFAULT_PROVIDER:
                owners.setdefault(entry.bucket, service.name)
    return owners


def _describe(state: State, name: str, services: dict[str, str]) -> dict[str, Any]:
    """A bucket as upstream's `utils.MinIOBucket`: its tags, but `owner`, under `metadata`.

    Upstream tags a service's buckets with `from_service` and `owner_name`, and buckets made
    through this API with `owner_name` only; clients (the dashboard's bucket list) read both.
    """
    meta = _store(state).bucket_meta(name)
    owner = str(meta.get("owner") or "")
    metadata = {"owner_name": ADMIN_OWNER_NAME if owner in ("", DEFAULT_OWNER) else owner}
    if name in services:
        metadata["from_service"] = services[name]
    return {"bucket_name": name, **meta, "metadata": metadata}


@router.get("", summary="List buckets")
def list_buckets(state: State, _: AdminPrincipal) -> list[dict[str, Any]]:
    """Every bucket of the default store."""
    services = _services_by_bucket(state)
    return [_describe(state, name, services) for name, _ in _store(state).list_buckets()]


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_class=Response, summary="Create a bucket"
)
def create_bucket(spec: BucketSpec, state: State, principal: AdminPrincipal) -> Response:
    """Create a bucket (409 when it exists)."""
    try:
        _store(state).create_bucket(spec.bucket_name)
        _store(state).set_bucket_meta(
            spec.bucket_name, principal.owner_id, spec.visibility, spec.allowed_users
        )
    except StoreError as exc:
        raise _store_error(exc) from None
    return Response(status_code=status.HTTP_201_CREATED)


@router.put(
    "", status_code=status.HTTP_204_NO_CONTENT, response_class=Response, summary="Update a bucket"
)
def update_bucket(spec: BucketSpec, state: State, principal: AdminPrincipal) -> Response:
    """Change a bucket's visibility and allowed users."""
    try:
        owner = str(_store(state).bucket_meta(spec.bucket_name)["owner"])
        _store(state).set_bucket_meta(
            spec.bucket_name, owner or principal.owner_id, spec.visibility, spec.allowed_users
        )
    except StoreError as exc:
        raise _store_error(exc) from None
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{bucket}", summary="A bucket and its objects")
def get_bucket(
    bucket: str,
    state: State,
    _: AdminPrincipal,
    prefix: str = "",
    page: Annotated[str, Query(description="`next_page` of the previous answer")] = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
) -> dict[str, Any]:
    """The bucket's description with one page of objects."""
    try:
        listing = _store(state).list_objects(bucket, prefix, "", page, limit)
        description = _describe(state, bucket, _services_by_bucket(state))
    except StoreError as exc:
        raise _store_error(exc) from None
    return {
        **description,
        "objects": [
            {
                "object_name": info.key,
                "size_bytes": info.size,
                "last_modified": info.modified.isoformat().replace("+00:00", "Z"),
            }
            for info in listing.objects
        ],
        "next_page": listing.next_marker if listing.truncated else "",
        "is_truncated": listing.truncated,
    }


@router.delete(
    "/{bucket}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete an empty bucket",
)
def delete_bucket(bucket: str, state: State, _: AdminPrincipal) -> Response:
    """Delete a bucket; 409 while it still holds objects (delete them first)."""
    try:
        _store(state).delete_bucket(bucket)
    except StoreError as exc:
        raise _store_error(exc) from None
    return Response(status_code=status.HTTP_204_NO_CONTENT)
