"""Authentication dependencies: routes receive a `Principal`, never read headers themselves."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import (
    HTTPAuthorizationCredentials,
    HTTPBasic,
    HTTPBasicCredentials,
    HTTPBearer,
)

from oscar.api.state import AppState, get_state
from oscar.auth.principal import Principal
from oscar.auth.tokens import token_matches

_basic = HTTPBasic(auto_error=False, realm="oscar")
_bearer = HTTPBearer(auto_error=False)

State = Annotated[AppState, Depends(get_state)]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": 'Basic realm="oscar"'},
    )


def _remember(request: Request, principal: Principal) -> Principal:
    # Read by the access-log middleware; the principal's name is not a secret.
    request.state.principal = str(principal)
    return principal


def _admin_from(state: AppState, basic: HTTPBasicCredentials | None) -> Principal | None:
    if basic is not None and state.admin.matches(basic.username, basic.password):
        return Principal("admin", basic.username)
    return None


def require_admin(
    request: Request,
    state: State,
    basic: Annotated[HTTPBasicCredentials | None, Depends(_basic)],
) -> Principal:
    """Basic auth with the admin credentials; 401 otherwise."""
    principal = _admin_from(state, basic)
    if principal is None:
        raise _unauthorized("valid admin credentials (HTTP Basic) are required")
    return _remember(request, principal)


def require_service_access(
    name: str,
    request: Request,
    state: State,
    basic: Annotated[HTTPBasicCredentials | None, Depends(_basic)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Admin Basic auth, or `Authorization: Bearer <token of service {name}>`.

    404 when the service does not exist (checked before the token, as upstream does).
    """
    service = state.registry.get(name)  # ServiceNotFoundError -> 404, whoever asks
    request.state.service = service  # read once: the route needs it too
    if (principal := _admin_from(state, basic)) is not None:
        return _remember(request, principal)
    if bearer is not None and token_matches(bearer.credentials, service.token):
        return _remember(request, Principal("service", name))
    raise _unauthorized("the service token (Bearer) or admin credentials are required")


AdminPrincipal = Annotated[Principal, Depends(require_admin)]
ServicePrincipal = Annotated[Principal, Depends(require_service_access)]
