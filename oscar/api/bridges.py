"""Bridge routes: `/system/bridges` — create, list, read (with status), update and delete.

Only admins create, change and delete bridges: a bridge makes the control plane itself
connect to the address it names, which users must not be able to point at internal hosts.
Owners of a service see the bridges that feed it (with their status). Answers never carry a
credential: each stored one reads `********`, and sending that back in an update keeps it.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, status

from oscar.api.deps import AdminPrincipal, State, UserPrincipal
from oscar.api.services import decode_document
from oscar.api.state import AppState
from oscar.auth.access import owns
from oscar.auth.principal import Principal
from oscar.errors import BadRequestError, ForbiddenError, ServiceNotFoundError
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


def _feeds_own_service(state: AppState, principal: Principal, bridge: dict[str, Any]) -> bool:
    try:
        return owns(principal, state.registry.get(str(bridge.get("service", ""))).owner)
    except ServiceNotFoundError:
        return principal.is_admin


def _visible_bridges(state: AppState, principal: Principal) -> list[dict[str, Any]]:
    return [b for b in state.bridges.list() if _feeds_own_service(state, principal, b)]


def _visible_bridge(state: AppState, principal: Principal, name: str) -> dict[str, Any]:
    bridge = state.bridges.get(name)
    if not _feeds_own_service(state, principal, bridge):
        raise ForbiddenError(f"bridge '{name}' feeds a service you do not own")
    return bridge


@router.get("", summary="Every bridge with its status")
async def list_bridges(state: State, principal: UserPrincipal) -> list[dict[str, Any]]:
    """Definitions (credentials masked) and what each bridge is doing: every bridge for
    admins, those feeding the caller's services for other users."""
    return await asyncio.to_thread(_visible_bridges, state, principal)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a bridge")
async def create_bridge(document: Document, state: State, _: AdminPrincipal) -> dict[str, Any]:
    """Validate, store and start a bridge; 400 names the field, 409 when the name is taken."""
    bridge = parse_bridge(document)
    return await asyncio.to_thread(state.bridges.create, bridge)


@router.get("/{name}", summary="One bridge with its status")
async def get_bridge(name: str, state: State, principal: UserPrincipal) -> dict[str, Any]:
    """404 when there is no such bridge, 403 when it feeds a service the caller does not
    own."""
    return await asyncio.to_thread(_visible_bridge, state, principal, name)


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
