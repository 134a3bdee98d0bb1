"""`GET /auth/config`: how to log in to this cluster, for the dashboard and oscar-cli.

Public on purpose (it is read before anyone has logged in) and outside `/system`, whose routes
all need credentials. It names only what an OIDC provider publishes anyway: the trusted
issuers, the public client to log in with and the scopes to ask for.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from oscar.api.deps import State

router = APIRouter(tags=["system"])


@router.get("/auth/config", summary="How to log in (public)")
def auth_config(state: State) -> dict[str, Any]:
    """`oidc.enabled` is false when no issuer is configured (HTTP Basic only)."""
    settings = state.settings
    return {
        "oidc": {
            "enabled": state.oidc is not None,
            "issuers": state.oidc.issuers if state.oidc is not None else [],
            "client_id": settings.oidc_client_id,
            "scopes": settings.oidc_scopes,
        }
    }
