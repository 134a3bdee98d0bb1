"""Service runtime routes: `GET /system/services/{name}/deployment[/logs]` (the state and log of
what serves a service's `/run` calls) and `POST …/{stop,start,restart}` (upstream's lifecycle
of exposed services, which oscar does not run)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from oscar.api.deps import State, UserPrincipal
from oscar.auth.access import require_service_owner, require_service_visible
from oscar.auth.principal import Principal
from oscar.deployment import deployment_logs, deployment_status
from oscar.errors import BadRequestError, NotSupportedError
from oscar.models.deployment import DeploymentLogStream, DeploymentStatus

router = APIRouter(prefix="/system/services", tags=["deployment"])

#: Upstream's default and ceiling of `tailLines`.
DEFAULT_TAIL_LINES = 200
MAX_TAIL_LINES = 1000


@router.get(
    "/{name}/deployment",
    response_model=DeploymentStatus,
    response_model_exclude_none=True,
    summary="The state of the runtime serving a service's synchronous calls",
)
def get_deployment(name: str, state: State, principal: UserPrincipal) -> DeploymentStatus:
    """Upstream's `ServiceDeploymentStatus`: `ready` when calls can be served now, `degraded`
    after a failed call (per-call runtimes) or with unready pods (Knative), `unavailable` when no
    backend of this cluster answers `/run`."""
    service = state.registry.get(name)
    require_service_visible(principal, service)
    return deployment_status(service, state.sync_runner, state.sync_activity)


@router.get(
    "/{name}/deployment/logs",
    response_model=DeploymentLogStream,
    response_model_exclude_none=True,
    summary="The recent log of the runtime serving a service's synchronous calls",
)
def get_deployment_logs(
    name: str,
    state: State,
    principal: UserPrincipal,
    timestamps: bool = False,
    tail_lines: Annotated[int, Query(alias="tailLines")] = DEFAULT_TAIL_LINES,
) -> DeploymentLogStream:
    """The last `tailLines` lines (default 200, at most 1000): the recent `/run` calls' logs
    on per-call runtimes, the pods' logs on Knative. `timestamps=true` adds each line's time.
    Only for the service's owner: the lines hold every caller's output."""
    if tail_lines < 0:
        raise BadRequestError("tailLines: must be 0 or more")
    service = state.registry.get(name)
    require_service_owner(principal, service)
    tail = min(tail_lines, MAX_TAIL_LINES) if tail_lines else DEFAULT_TAIL_LINES
    return deployment_logs(service, state.sync_runner, state.sync_activity, tail, timestamps)


def _lifecycle(name: str, state: State, principal: Principal, action: str) -> DeploymentStatus:
    service = state.registry.get(name)
    require_service_owner(principal, service)
    if not service.expose.exposed:
        raise BadRequestError(f'service "{name}" is not exposed: only exposed services {action}')
    raise NotSupportedError(
        "exposed services (always-on Deployments behind an Ingress) are not run by oscar, "
        f"so there is nothing to {action}; call the service with /run or /job instead"
    )


@router.post("/{name}/stop", response_model=DeploymentStatus, summary="Stop an exposed service")
def stop_service(name: str, state: State, principal: UserPrincipal) -> DeploymentStatus:
    """400 for a service that is not exposed (as upstream); 501 otherwise: oscar does not run
    exposed services."""
    return _lifecycle(name, state, principal, "stop")


@router.post("/{name}/start", response_model=DeploymentStatus, summary="Start an exposed service")
def start_service(name: str, state: State, principal: UserPrincipal) -> DeploymentStatus:
    """As `stop`."""
    return _lifecycle(name, state, principal, "start")


@router.post(
    "/{name}/restart", response_model=DeploymentStatus, summary="Restart an exposed service"
)
def restart_service(name: str, state: State, principal: UserPrincipal) -> DeploymentStatus:
    """As `stop`."""
    return _lifecycle(name, state, principal, "restart")
