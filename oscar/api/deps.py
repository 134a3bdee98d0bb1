"""Authentication dependencies: routes receive a `Principal`, never read headers themselves.

Who a request comes from, in this order: HTTP Basic with the admin's credentials; a Bearer
token that is a JWT, checked as OIDC (`oscar.auth.oidc`) when issuers are configured; on the
routes of one service, a Bearer token equal to that service's token. What the principal may
then do is decided by `oscar.auth.access`. The dependencies are plain `def`s: FastAPI runs them
in its thread pool, so fetching an issuer's keys never blocks the event loop.
"""

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
from oscar.auth.access import require_service_visible
from oscar.auth.principal import Principal
from oscar.auth.tokens import token_matches
from oscar.errors import ForbiddenError

_basic = HTTPBasic(auto_error=False, realm="oscar")
_bearer = HTTPBearer(auto_error=False)

State = Annotated[AppState, Depends(get_state)]
Basic = Annotated[HTTPBasicCredentials | None, Depends(_basic)]
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _unauthorized(state: AppState, detail: str) -> HTTPException:
    challenge = 'Basic realm="oscar"'
    if state.oidc is not None:
        challenge += ', Bearer realm="oscar"'
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": challenge},
    )


def _remember(request: Request, principal: Principal) -> Principal:
    # Read by the access-log middleware; the principal's name is not a secret.
    request.state.principal = str(principal)
    return principal


def _is_jwt(token: str) -> bool:
    return token.count(".") == 2


def _authenticate(state: AppState, basic: Basic, bearer: Bearer) -> Principal | None:
    """The admin (Basic) or OIDC user (JWT Bearer) making the request; None when neither.

    A JWT that fails its checks raises (401, or 403 outside the accepted groups) rather than
    falling back, so the caller learns why their token was refused.
    """
    if basic is not None and state.admin.matches(basic.username, basic.password):
        return Principal("admin", basic.username)
    if bearer is not None and state.oidc is not None and _is_jwt(bearer.credentials):
        return state.oidc.authenticate(bearer.credentials)
    return None


def _what_is_accepted(state: AppState) -> str:
    return "admin credentials (HTTP Basic)" + (
        " or an OIDC Bearer token" if state.oidc is not None else ""
    )


def require_user(request: Request, state: State, basic: Basic, bearer: Bearer) -> Principal:
    """Any authenticated person: the admin or an OIDC user; 401 otherwise."""
    principal = _authenticate(state, basic, bearer)
    if principal is None:
        raise _unauthorized(state, f"{_what_is_accepted(state)} are required")
    return _remember(request, principal)


def require_admin(request: Request, state: State, basic: Basic, bearer: Bearer) -> Principal:
    """The admin: Basic credentials, or an OIDC user in `OSCAR_USERS_ADMIN`; 401 when not
    authenticated, 403 for other users."""
    principal = require_user(request, state, basic, bearer)
    if not principal.is_admin:
        raise ForbiddenError("only cluster admins may do this")
    return principal


def require_service_access(
    name: str, request: Request, state: State, basic: Basic, bearer: Bearer
) -> Principal:
    """The admin, an OIDC user who may see service `name` (`oscar.auth.access`), or
    `Authorization: Bearer <token of service {name}>`.

    404 when the service does not exist (checked before the token, as upstream does).
    """
    service = state.registry.get(name)  # ServiceNotFoundError -> 404, whoever asks
    request.state.service = service  # read once: the route needs it too
    if bearer is not None and not _is_jwt(bearer.credentials):
        if token_matches(bearer.credentials, service.token):
            return _remember(request, Principal("service", name))
        raise _unauthorized(state, f"the token of service '{name}' does not match")
    principal = _authenticate(state, basic, bearer)
    if principal is None:
        raise _unauthorized(
            state, f"the service token (Bearer) or {_what_is_accepted(state)} are required"
        )
    require_service_visible(principal, service)
    return _remember(request, principal)


UserPrincipal = Annotated[Principal, Depends(require_user)]
AdminPrincipal = Annotated[Principal, Depends(require_admin)]
ServicePrincipal = Annotated[Principal, Depends(require_service_access)]
