"""What every request handler may reach: settings, registry, admin identity, default store."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from oscar.auth.basic import AdminCredentials
from oscar.executors.base import Executor
from oscar.executors.knative import KnativeBackend
from oscar.jobs.dispatcher import Dispatcher
from oscar.jobs.store import JobStore
from oscar.models.storage import MinIOProvider
from oscar.registry.base import Registry
from oscar.settings import Settings
from oscar.storage.base import ServiceStorage


@dataclass
class AppState:
    """Per-application state, built by `create_app` and stored on `app.state.oscar`."""

    settings: Settings
    registry: Registry
    admin: AdminCredentials
    default_store: MinIOProvider
    job_store: JobStore
    executor: Executor
    dispatcher: Dispatcher
    storage: ServiceStorage
    knative: KnativeBackend | None = None


def get_state(request: Request) -> AppState:
    """Dependency: the state of the application serving this request."""
    return request.app.state.oscar
