"""Service routes: create, list, read, update and delete service definitions.

The routes parse, authenticate and authorise; `ServiceManager` (`state.services`) does the
work across registry, storage and backends, undoing it when a step fails. Routes are plain
`def`: the manager blocks, so FastAPI runs them in its thread pool.
"""

from __future__ import annotations

import asyncio
import json
from functools import partial
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Depends, Request, Response, status

from oscar.api.deps import AdminPrincipal, ServicePrincipal, State
from oscar.auth.principal import Principal
from oscar.errors import BadRequestError, ForbiddenError
from oscar.models.service import Service
from oscar.models.storage import MinIOProvider
from oscar.models.validation import parse_service

router = APIRouter(prefix="/system/services", tags=["services"])

HIDDEN = "hidden"
_SERVICE_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Service"}}},
    }
}


def _decode(raw: bytes, content_type: str) -> Any:
    try:
        if "yaml" in content_type:
            return yaml.safe_load(raw)
        return json.loads(raw)
    except (ValueError, yaml.YAMLError) as exc:
        raise BadRequestError(f"the request body is not valid JSON: {exc}") from None


async def service_document(request: Request) -> Any:
    """The request body decoded as JSON (whatever its label) or, when labelled so, YAML.

    Decoding a large definition takes a while: it runs in a worker thread, off the event loop.
    """
    raw = await request.body()
    if not raw.strip():
        raise BadRequestError("the request body is empty: send the service definition as JSON")
    return await asyncio.to_thread(_decode, raw, request.headers.get("content-type", ""))


Document = Annotated[Any, Depends(service_document)]


def public_view(service: Service, default_store: MinIOProvider) -> Service:
    """What callers see: secret values blanked, `minio.default` pointing at the cluster store.

    As upstream, the default store's keys read `hidden`; clients take the real ones from
    `/system/config`. Secret values never leave the server once stored.
    """
    view = service.model_copy(deep=True)
    view.environment.secrets = dict.fromkeys(view.environment.secrets, "")
    view.storage_providers.minio["default"] = default_store.model_copy(
        update={"access_key": HIDDEN, "secret_key": HIDDEN}
    )
    return view


def _check_owner(principal: Principal, existing: Service) -> None:
    """The authorisation rule of updates and deletes: admins, or the service's owner."""
    if not principal.is_admin and existing.owner != principal.owner_id:
        raise ForbiddenError(f"you do not own service '{existing.name}'")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_class=Response,
    openapi_extra=_SERVICE_BODY,
    summary="Create a service",
    responses={400: {"description": "Invalid definition"}, 409: {"description": "Name taken"}},
)
def create_service(document: Document, state: State, principal: AdminPrincipal) -> Response:
    """Validate and store a new service; a 64-hex-character token is generated for it."""
    service = parse_service(document)
    service.owner = principal.owner_id
    state.services.create(service)
    return Response(status_code=status.HTTP_201_CREATED)


@router.get("", response_model=list[Service], summary="List services")
def list_services(state: State, _: AdminPrincipal) -> list[Service]:
    """Every service, secrets blanked."""
    return [public_view(s, state.default_store) for s in state.registry.list()]


@router.get("/{name}", response_model=Service, summary="Read a service (includes its token)")
def read_service(name: str, state: State, _: AdminPrincipal) -> Service:
    """One service, with its token; secret values are blanked."""
    return public_view(state.registry.get(name), state.default_store)


@router.put(
    "",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    openapi_extra=_SERVICE_BODY,
    summary="Update a service",
    responses={400: {"description": "Invalid definition"}, 404: {"description": "Unknown"}},
)
def update_service(document: Document, state: State, principal: AdminPrincipal) -> Response:
    """Replace a service's definition; its token and owner are kept.

    A secret sent with an empty value keeps its stored value (so a definition read back from
    the API, with secrets blanked, can be sent again unchanged); omit a key to remove it.
    """
    service = parse_service(document)
    state.services.update(service, authorize=partial(_check_owner, principal))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete a service",
)
def delete_service(name: str, state: State, principal: AdminPrincipal) -> Response:
    """Remove a service with its buckets, Knative service and jobs."""
    state.services.delete(name, authorize=partial(_check_owner, principal))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{name}/auth",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Check a service token (forward-auth)",
)
def check_service_auth(name: str, _: ServicePrincipal) -> Response:
    """204 when the caller holds the service's token or the admin credentials, else 401."""
    return Response(status_code=status.HTTP_204_NO_CONTENT)
