"""`POST /events/minio`: the one webhook target MinIO posts object-created events to.

MinIO authenticates with `Authorization: Bearer <OSCAR_EVENTS_TOKEN>` (its `auth_token`). Each
record is routed to the services whose input bucket/prefix contains the object; the job records
are written before the answer, so MinIO (whose `queue_dir` keeps undelivered events) only drops
an event once it is durable here. Redelivered events are recognised and not run twice.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Request, status

from oscar.api.deps import State
from oscar.api.state import AppState
from oscar.events.accept import accept_event
from oscar.events.records import object_records
from oscar.storage.users import RESERVED_PREFIXES

log = logging.getLogger("oscar.events")
router = APIRouter(tags=["events"])


@router.post("/events/minio", summary="Receive MinIO bucket notifications")
async def minio_events(
    request: Request,
    state: State,
    authorization: Annotated[str, Header()] = "",
) -> dict[str, Any]:
    """Record one job per matching service for each object-created record."""
    expected = state.settings.events_token
    token = authorization.removeprefix("Bearer ").strip()
    # Bytes, not str: `compare_digest` raises TypeError on non-ASCII str (any header value can
    # hold such characters), which would be a 500 before authentication.
    if expected is None or not hmac.compare_digest(
        token.encode("utf-8", "surrogateescape"),
        expected.get_secret_value().encode("utf-8", "surrogateescape"),
    ):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "a valid events token is required")
    try:
        event = await asyncio.to_thread(json.loads, await request.body())
        records = event.get("Records") or []
    except (ValueError, AttributeError, RecursionError):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "the body is not a MinIO event") from None
    if not isinstance(records, list):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "the event's Records is not a list")
    return {"jobs": await asyncio.to_thread(_accept, state, event, records)}


def _accept(state: AppState, event: dict[str, Any], records: list[Any]) -> list[str]:
    """Record the jobs of every object-created record (blocking: registry, fsynced writes)."""
    accepted = []
    # Anything not shaped like an S3 record (a key that is a number, a missing object) is
    # skipped, as MinIO never sends it.
    for record in object_records({**event, "Records": records}) or []:
        body = json.dumps(record.event)
        uploader = _uploader(state, record.event)
        for service in state.registry.inputs_matching(record.bucket, record.key):
            dedup = record.dedup(service.name)
            job = accept_event(state.dispatcher, service, body, dedup, owner=uploader)
            if job is not None:
                accepted.append(job.name)
    return accepted


def _uploader(state: AppState, event: dict[str, Any]) -> str:
    """The OIDC subject whose upload this is: MinIO names the uploading user's access key,
    which for OIDC users is their subject (`oscar.storage.users`); "" for the admin, a
    service's job key, or a user whose name had to be derived."""
    try:
        principal = str(event["Records"][0]["userIdentity"]["principalId"])
    except (KeyError, IndexError, TypeError):
        return ""
    if principal == state.default_store.access_key or principal.startswith(RESERVED_PREFIXES):
        return ""
    return principal
