"""Cluster-level routes: health, info and config (read, and the image repositories set)."""

from __future__ import annotations

import platform
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, StringConstraints

from oscar import __version__
from oscar.api.deps import AdminPrincipal, State, UserPrincipal
from oscar.executors import kube

router = APIRouter(tags=["system"])

# The upstream OSCAR release whose API this server speaks. Clients gate features on `version`
# (the dashboard enables port lists and other features from "v3.6.4", "v3.8.0" and "v4.1.0"
# on; upstream's release build reports the tag without its "v"), so `version` is upstream's
# and our own release is in `oscar_version`.
UPSTREAM_API_VERSION = "4.1.2"

# Upstream reports Go's runtime.GOARCH; clients compare against those names.
_GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


@router.get("/health", response_class=PlainTextResponse, summary="Liveness probe")
def health() -> str:
    """Answer `Ok` while the server is up (no authentication)."""
    return "Ok"


@router.get("/system/info", summary="Version and platform of this cluster")
def info(state: State, _: UserPrincipal) -> dict[str, Any]:
    """Version information in upstream's shape; no Kubernetes on the embedded default.

    `version` is the upstream API version this server is compatible with; `oscar_version`
    is this implementation's own release.
    """
    machine = platform.machine().lower()
    return {
        "version": UPSTREAM_API_VERSION,
        "oscar_version": __version__,
        "git_commit": "",
        "architecture": _GOARCH.get(machine, machine),
        "kubernetes_version": "",
        "name": state.settings.name,
    }


@router.get("/system/config", summary="Cluster configuration and default object store")
def config(state: State, principal: UserPrincipal) -> dict[str, Any]:
    """The cluster configuration plus `minio_provider`, the default store's credentials: the
    admin's keys for admins, the caller's own keys for other users (made on the store the
    first time they are asked for, as upstream makes a MinIO user on a user's first call).

    Upstream v4 nests the configuration under `config`; v2/v3 returned its keys at top level.
    Both are present so clients of either generation find what they read.
    `interLink_available` is whether the Kubernetes executor's cluster has a Ready interLink
    virtual node (asked at each call; always false with another executor).
    """
    settings = state.settings
    # A sync route (run in a worker thread): the node lists never block the event loop.
    interlink = (
        settings.executor == "kubernetes"
        and state.kube is not None
        and kube.interlink_available(state.kube)
    )
    cluster = {
        "name": settings.name,
        "namespace": settings.namespace,
        "services_namespace": settings.services_namespace,
        "gpu_available": False,
        "interLink_available": interlink,
        "yunikorn_enable": False,
        "kueue_enable": False,
        "oidc_groups": list(settings.oidc_groups),
    }
    if principal.is_admin:
        store = state.default_store
    else:
        store = state.storage.user_credentials(principal.subject, principal.display_name)
    return {
        **cluster,
        "config": cluster,
        "minio_provider": store.model_dump(),
        "allowed_image_repositories": state.services.allowed_image_repositories(),
    }


class ConfigUpdate(BaseModel):
    """`PUT /system/config`: upstream's `ConfigForUser`, of which only the image prefixes can
    be changed (`config` and `minio_provider` are read-only and ignored, as upstream)."""

    model_config = ConfigDict(extra="ignore")

    allowed_image_repositories: list[Annotated[str, StringConstraints(min_length=1)]] | None = None


@router.put("/system/config", summary="Set the image repositories services may use")
def update_config(update: ConfigUpdate, state: State, _: AdminPrincipal) -> list[str]:
    """Store `allowed_image_repositories` (durably, in the registry) and answer the list, as
    upstream. New and updated services must then use an image starting with one of them; an
    empty list or none allows any image."""
    return state.services.set_allowed_image_repositories(
        list(dict.fromkeys(update.allowed_image_repositories or []))
    )
