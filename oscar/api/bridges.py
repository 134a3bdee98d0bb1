"""Bridge routes: `/system/bridges` — create, list, read (with status), update and delete.

Only admins manage bridges. Answers never carry a credential: each stored one reads
`********`, and sending that back in an update keeps it.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, status

from oscar.api.deps import AdminPrincipal, State
from oscar.api.services import decode_document
from oscar.errors import BadRequestError
from oscar.models.bridge import parse_bridge

router = APIRouter(prefix="/system/bridges", tags=["bridges"])


async def bridge_document(request: Request) -> Any:
    """The request body: one bridge definition, as JSON or (labelled so) YAML."""
    raw = await request.body()
    if not raw.strip():
        raise BadRequestError("the request body is empty: send the bridge definition as JSON")
    document = await asyncio.to_thread(
        decode_document, raw, request.headers.get("content-type", "")
    )
    if not isinstance(document, dict):
        raise BadRequestError("the bridge definition must be a JSON object")
    # Read-only: what a GET answered may be sent back as it is (get, edit, apply).
    document.pop("status", None)
    return document


Document = Annotated[dict[str, Any], Depends(bridge_document)]


@router.get("", summary="Every bridge with its status")
async def list_bridges(state: State, _: AdminPrincipal) -> list[dict[str, Any]]:
    """Definitions (credentials masked) and what each bridge is doing."""
    return await asyncio.to_thread(state.bridges.list)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a bridge")
async def create_bridge(document: Document, state: State, _: AdminPrincipal) -> dict[str, Any]:
    """Validate, store and start a bridge; 400 names the field, 409 when the name is taken."""
    bridge = parse_bridge(document)
    return await asyncio.to_thread(state.bridges.create, bridge)


@router.get("/{name}", summary="One bridge with its status")
async def get_bridge(name: str, state: State, _: AdminPrincipal) -> dict[str, Any]:
    """404 when there is no such bridge."""
    return await asyncio.to_thread(state.bridges.get, name)


@router.put("/{name}", summary="Replace a bridge's definition")
async def update_bridge(
    name: str, document: Document, state: State, _: AdminPrincipal
) -> dict[str, Any]:
    """Restart the bridge with the new definition. Its cursor is kept unless what it watches
    changed; credentials left out, or sent back masked, are kept."""
    if document.setdefault("name", name) != name:
        raise BadRequestError(f"the body names bridge '{document['name']}', the path '{name}'")
    given = "credentials" in document
    bridge = parse_bridge(document)
    return await asyncio.to_thread(state.bridges.update, bridge, credentials_given=given)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def delete_bridge(name: str, state: State, _: AdminPrincipal) -> Response:
    """Stop the bridge and forget it with its cursor (its jobs stay)."""
    await asyncio.to_thread(state.bridges.delete, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
