"""What every request handler may reach, built once by `create_app` (`app.state.oscar`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import Request

from oscar.api.middleware import ExecutionLog
from oscar.auth.basic import AdminCredentials
from oscar.auth.oidc import OidcVerifier
from oscar.deployment import SyncActivity
from oscar.executors.base import SyncRunner
from oscar.jobs.base import JobRecords
from oscar.jobs.dispatcher import Dispatcher
from oscar.models.storage import MinIOProvider
from oscar.registry.base import Registry
from oscar.settings import Settings
from oscar.storage.base import ServiceStorage

if TYPE_CHECKING:
    from oscar.bridges.manager import BridgeManager
    from oscar.services import ServiceManager


@dataclass(kw_only=True)
class AppState:
    """Per-application state: settings, the admin identity, the default store's credentials,
    the registry, job records, the dispatcher, service management, storage, and the runner of
    synchronous calls (None when no backend can answer synchronously) with what those calls did,
    the execution log of `/job` and `/run` calls, the event bridges, and the checker of OIDC
    tokens."""

    settings: Settings
    registry: Registry
    admin: AdminCredentials
    default_store: MinIOProvider
    job_store: JobRecords
    dispatcher: Dispatcher
    services: ServiceManager
    storage: ServiceStorage
    bridges: BridgeManager
    sync_runner: SyncRunner | None = None
    sync_activity: SyncActivity = field(default_factory=SyncActivity)
    executions: ExecutionLog = field(default_factory=lambda: ExecutionLog(0))
    kube: Any = None  # the Kubernetes API client, when a backend uses one
    oidc: OidcVerifier | None = None  # None: OIDC is off (no OSCAR_OIDC_ISSUERS)


def get_state(request: Request) -> AppState:
    """Dependency: the state of the application serving this request."""
    return request.app.state.oscar
