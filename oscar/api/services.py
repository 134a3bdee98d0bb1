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
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter

from oscar.api.deps import ServicePrincipal, State, UserPrincipal
from oscar.api.state import AppState
from oscar.auth.access import (
    may_see_service,
    owns,
    require_bucket_visible,
    require_service_owner,
    require_service_visible,
    require_vo,
)
from oscar.auth.principal import Principal
from oscar.deployment import deployment_status
from oscar.errors import BadRequestError, ForbiddenError, NotFoundError
from oscar.models.service import Service
from oscar.models.storage import DEFAULT_PROVIDER, MinIOProvider
from oscar.models.validation import parse_service
from oscar.storage.base import default_store_buckets

router = APIRouter(prefix="/system/services", tags=["services"])

HIDDEN = "hidden"
_SERVICE_JSON = TypeAdapter(Service)
_SERVICE_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Service"}}},
    }
}


# How deeply a service body may nest (the deepest real definition nests about 6 levels).
MAX_DEPTH = 64


class _RefusedYAML(yaml.YAMLError):
    """A YAML construct service bodies do not accept (aliases, excessive nesting)."""


class _BodyLoader(yaml.SafeLoader):
    """SafeLoader without anchors or aliases (no "billion laughs") and with bounded nesting."""

    def __init__(self, stream: bytes) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _RefusedYAML("YAML anchors and aliases are not accepted")
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _RefusedYAML(f"the document nests deeper than {MAX_DEPTH} levels")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _depth_problem(document: Any) -> str | None:
    """Why `document` nests too deeply, or None (iterative: never recurses itself)."""
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                return f"the document nests deeper than {MAX_DEPTH} levels"
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)
    return None


def decode_document(raw: bytes, content_type: str) -> Any:
    """A request body as JSON or (labelled so) YAML, bounded in nesting; 400 otherwise."""
    kind = "YAML" if "yaml" in content_type else "JSON"
    try:
        if kind == "YAML":
            loader = _BodyLoader(raw)
            try:
                document = loader.get_single_data()
            finally:
                loader.dispose()
        else:
            document = json.loads(raw)
    except _RefusedYAML as exc:
        raise BadRequestError(f"the request body is not accepted: {exc}") from None
    except RecursionError:
        raise BadRequestError(
            f"the request body is not accepted: it nests deeper than {MAX_DEPTH} levels"
        ) from None
    except (ValueError, yaml.YAMLError) as exc:
        raise BadRequestError(f"the request body is not valid {kind}: {exc}") from None
    if problem := _depth_problem(document):
        raise BadRequestError(f"the request body is not accepted: {problem}")
    return document


async def service_document(request: Request) -> Any:
    """The request body decoded as JSON (whatever its label) or, when labelled so, YAML.

    Decoding a large definition takes a while: it runs in a worker thread, off the event loop.
    """
    raw = await request.body()
    if not raw.strip():
        raise BadRequestError("the request body is empty: send the service definition as JSON")
    return await asyncio.to_thread(decode_document, raw, request.headers.get("content-type", ""))


Document = Annotated[Any, Depends(service_document)]


def public_view(
    service: Service, default_store: MinIOProvider, principal: Principal | None = None
) -> Service:
    """What callers see: secret values blanked, `minio.default` pointing at the cluster store.

    As upstream, the default store's keys read `hidden`; clients take the real ones from
    `/system/config`. Secret values never leave the server once stored. The token is shown
    only to the service's owner and admins (`principal` None: internal callers): users it is
    shared with invoke it with their own OIDC token.
    """
    view = service.model_copy(deep=True)
    view.environment.secrets = dict.fromkeys(view.environment.secrets, "")
    view.storage_providers.minio["default"] = default_store.model_copy(
        update={"access_key": HIDDEN, "secret_key": HIDDEN}
    )
    if principal is not None and not owns(principal, service.owner):
        view.token = ""
    return view


def _check_may_define(principal: Principal, state: AppState) -> None:
    """Defining a service means running its script. With local processes as the backend a
    script runs natively, as the server's own user, so users may define services there only
    when the operator says so (OSCAR_LOCAL_USER_SERVICES)."""
    settings = state.settings
    if principal.is_admin or settings.executor != "local" or settings.local_user_services:
        return
    raise ForbiddenError(
        "on this cluster jobs run as local processes of the server, so only admins may define "
        "services (the operator can allow users with OSCAR_LOCAL_USER_SERVICES=true)"
    )


def _check_buckets(principal: Principal, state: AppState, service: Service) -> None:
    """A user's service may only use default-store buckets that user can reach (or that do
    not exist yet, and will be theirs): its job key would otherwise read or write another
    user's private data."""
    if principal.is_admin:
        return
    names = set(default_store_buckets(service))
    if service.mount is not None and service.mount.storage_provider == DEFAULT_PROVIDER:
        names.add(service.mount.path.strip("/").partition("/")[0])
    buckets = state.storage.buckets()
    for name in sorted(names):
        try:
            info = buckets.get(name)
        except NotFoundError:
            continue
        require_bucket_visible(principal, info)


def _definition(document: Any, principal: Principal, state: AppState) -> Service:
    """The service a create or an update defines, once the caller may define it: allowed to
    define services here, in its `vo`, using only buckets it reaches."""
    _check_may_define(principal, state)
    service = parse_service(document)
    require_vo(principal, service, state.settings.oidc_groups)
    _check_buckets(principal, state, service)
    return service


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_class=Response,
    openapi_extra=_SERVICE_BODY,
    summary="Create a service",
    responses={400: {"description": "Invalid definition"}, 409: {"description": "Name taken"}},
)
def create_service(document: Document, state: State, principal: UserPrincipal) -> Response:
    """Validate and store a new service owned by the caller; a 64-hex-character token is
    generated for it."""
    service = _definition(document, principal, state)
    service.owner = principal.owner_id
    state.services.create(service)
    return Response(status_code=status.HTTP_201_CREATED)


@router.get("", response_model=list[Service], summary="List services")
def list_services(
    state: State, principal: UserPrincipal, include: str = ""
) -> list[Service] | JSONResponse:
    """The services the caller may see (admins: all), secrets blanked. `include=deployment`
    (comma-separated expansions, as upstream) adds each service's runtime state as
    `deployment`."""
    views = [
        public_view(s, state.default_store, principal)
        for s in state.registry.list()
        if may_see_service(principal, s)
    ]
    if "deployment" not in (part.strip() for part in include.split(",")):
        return views
    runner, activity = state.sync_runner, state.sync_activity
    return JSONResponse(
        [
            {
                **_SERVICE_JSON.dump_python(view, mode="json", by_alias=True),
                "deployment": deployment_status(view, runner, activity)
                .summary()
                .model_dump(mode="json", exclude_none=True),
            }
            for view in views
        ]
    )


@router.get("/{name}", response_model=Service, summary="Read a service (includes its token)")
def read_service(name: str, state: State, principal: UserPrincipal) -> Service:
    """One service, with its token for its owner; secret values are blanked."""
    service = state.registry.get(name)
    require_service_visible(principal, service)
    return public_view(service, state.default_store, principal)


@router.put(
    "",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    openapi_extra=_SERVICE_BODY,
    summary="Update a service",
    responses={400: {"description": "Invalid definition"}, 404: {"description": "Unknown"}},
)
def update_service(document: Document, state: State, principal: UserPrincipal) -> Response:
    """Replace a service's definition; its token and owner are kept.

    A secret sent with an empty value keeps its stored value (so a definition read back from
    the API, with secrets blanked, can be sent again unchanged); omit a key to remove it.
    """
    service = _definition(document, principal, state)
    state.services.update(service, authorize=partial(require_service_owner, principal))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete a service",
)
def delete_service(name: str, state: State, principal: UserPrincipal) -> Response:
    """Remove a service with its buckets, Knative service and jobs."""
    state.services.delete(name, authorize=partial(require_service_owner, principal))
    state.sync_activity.forget(name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{name}/auth",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Check a service token (forward-auth)",
)
def check_service_auth(name: str, _: ServicePrincipal) -> Response:
    """204 when the caller holds the service's token, is an admin or a user who may invoke it;
    401 or 403 otherwise."""
    return Response(status_code=status.HTTP_204_NO_CONTENT)
