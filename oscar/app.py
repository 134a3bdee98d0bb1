"""The FastAPI application factory: the whole route table on one screen.

Nothing is built at import time; every call to `create_app` makes an independent application
from a `Settings` object, so tests can run several with different settings side by side.
Backends are chosen by one small factory per family (`make_registry`, `make_executors`,
`make_storage`); nothing is created on a backend until the application starts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp

from oscar import __version__
from oscar.api import (
    auth_config,
    buckets,
    deployment,
    events,
    invoke,
    logs,
    metrics,
    services,
    status,
    system,
    ui,
)
from oscar.api import (
    bridges as bridges_api,
)
from oscar.api.errors import install_error_handlers
from oscar.api.middleware import (
    AccessLogMiddleware,
    BodyLimitMiddleware,
    ExecutionLog,
    TrailingSlashMiddleware,
)
from oscar.api.state import AppState
from oscar.auth.basic import AdminCredentials, ensure_data_dir, load_admin_credentials
from oscar.auth.oidc import OidcVerifier
from oscar.bridges.manager import BridgeManager
from oscar.bridges.records import BridgeRecords
from oscar.bridges.store import BridgeStore
from oscar.cors import S3_EXPOSED, CORSMiddleware, CorsPolicy
from oscar.errors import OscarError
from oscar.executors.base import Executor, SyncRunner
from oscar.executors.factory import concurrency_limits, make_executors
from oscar.jobs.base import JobRecords
from oscar.jobs.dispatcher import Dispatcher
from oscar.jobs.leader import LeaderElection, default_identity
from oscar.jobs.store import JobStore
from oscar.models.storage import MinIOProvider
from oscar.registry.base import Registry
from oscar.registry.factory import make_registry
from oscar.services import ServiceManager
from oscar.settings import Settings
from oscar.storage.embedded.provider import EmbeddedStorage
from oscar.storage.embedded.server import S3App
from oscar.storage.factory import make_storage

log = logging.getLogger("oscar")
#: How often the leading replica looks for bridges other replicas changed.
BRIDGE_SYNC_SECONDS = 5.0


def default_store(settings: Settings, admin: AdminCredentials) -> MinIOProvider:
    """The store reported as `minio_provider`: a configured MinIO, or the embedded one."""
    endpoint = settings.minio_endpoint
    if not endpoint:
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host  # noqa: S104
        endpoint = f"http://{host}:{settings.s3_port}"
    secret = settings.minio_secret_key
    return MinIOProvider(
        endpoint=endpoint,
        verify=settings.minio_tls_verify,
        access_key=settings.minio_access_key or admin.username,
        secret_key=secret.get_secret_value() if secret else admin.password,
        region=settings.minio_region,
    )


class _Application(FastAPI):
    """FastAPI with CORS and the access log outside its error handling.

    Starlette answers unexpected errors (500) in its outermost layer; wrapping it lets those
    answers carry the CORS headers too, and the access log record their status.
    """

    cors: CorsPolicy

    def build_middleware_stack(self) -> ASGIApp:
        inner = CORSMiddleware(super().build_middleware_stack(), self.cors)
        return AccessLogMiddleware(inner, self.state.oscar.executions)


def _kubernetes(settings: Settings) -> Any:
    """The Kubernetes API client when any backend needs one (no request is made here)."""
    uses = (settings.executor, settings.registry, settings.serverless_backend)
    if "kubernetes" not in uses and "knative" not in uses:
        return None
    from oscar.executors.kube import api_client

    return api_client(settings.kubeconfig)


def _job_store(settings: Settings, kube: Any, cloud: Executor, registry: Registry) -> JobRecords:
    """SQLite in the data directory, or the Kubernetes Jobs themselves."""
    if settings.job_store != "kubernetes":
        return JobStore(settings.jobs_path)
    from oscar.executors.kubernetes import KubernetesExecutor
    from oscar.jobs.kube_store import KubernetesJobStore

    assert isinstance(cloud, KubernetesExecutor)  # the settings require it
    return KubernetesJobStore(
        kube,
        settings.services_namespace,
        lambda job: cloud.manifest(job, registry.get(job.service)),
    )


async def _follow_bridges(bridges: BridgeManager) -> None:
    """On the leader: pick up bridges that other replicas created, changed or deleted."""
    while True:
        await asyncio.sleep(BRIDGE_SYNC_SECONDS)
        try:
            await asyncio.to_thread(bridges.sync)
        except OscarError as exc:
            log.warning("cannot read the bridge definitions: %s", exc)


def _bridge_store(settings: Settings, kube: Any) -> BridgeRecords:
    """Bridges are kept where services are: SQLite, or Secrets beside their ConfigMaps."""
    if settings.registry != "kubernetes":
        return BridgeStore(settings.bridges_path)
    from oscar.bridges.kube_store import KubernetesBridgeStore

    return KubernetesBridgeStore(kube, settings.services_namespace)


def _election(settings: Settings, kube: Any) -> LeaderElection | None:
    """The Lease election of `OSCAR_LEADER_ELECTION`, or None: this process always leads."""
    if not settings.leader_election:
        return None
    return LeaderElection(  # the settings make sure the Kubernetes API is configured
        kube,
        settings.lease_namespace or settings.services_namespace,
        settings.lease_name,
        settings.pod_name or default_identity(),
        settings.lease_duration,
    )


def create_app(settings: Settings, *, admin: AdminCredentials | None = None) -> FastAPI:
    """Build the API for `settings`; `admin` defaults to the configured or generated one.

    The embedded S3 endpoint is built alongside and stored as `app.state.s3_app`; `oscar serve`
    serves it on its own port in the same event loop.
    """
    ensure_data_dir(settings.data_dir)
    admin = admin or load_admin_credentials(settings)
    kube = _kubernetes(settings)
    registry = make_registry(settings, kube)
    store = default_store(settings, admin)
    cloud, hpc = make_executors(settings, store, kube)
    job_store = _job_store(settings, kube, cloud, registry)
    dispatcher = Dispatcher(
        job_store,
        registry,
        cloud,
        hpc=hpc,
        limits=concurrency_limits(settings, cloud, hpc),
        job_timeout=settings.job_timeout,
        queue_timeout=settings.queue_timeout,
    )
    storage, objects = make_storage(settings, store, registry, dispatcher)
    bridge_store = _bridge_store(settings, kube)
    bridges = BridgeManager(
        bridge_store,
        registry,
        dispatcher,
        store,
        max_pending=settings.bridge_max_pending,
        retry_ceiling=settings.bridge_retry_max,
    )
    knative = None
    if settings.serverless_backend == "knative":
        from oscar.executors.knative import KnativeBackend

        knative = KnativeBackend(kube, settings.services_namespace, store)
    sync_runner = knative if knative is not None else cloud
    state = AppState(
        settings=settings,
        registry=registry,
        admin=admin,
        default_store=store,
        job_store=job_store,
        dispatcher=dispatcher,
        services=ServiceManager(registry, storage, dispatcher, job_store, knative),
        storage=storage,
        bridges=bridges,
        sync_runner=sync_runner if isinstance(sync_runner, SyncRunner) else None,
        executions=ExecutionLog(settings.execution_log_size),
        kube=kube,
        oidc=OidcVerifier(settings) if settings.oidc_issuers else None,
    )

    election = _election(settings, kube)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if kube is not None:  # the registry, the Jobs and Knative all live in that namespace
            from oscar.executors.kube import provision

            await asyncio.to_thread(provision, kube, settings.services_namespace)

        syncing: list[asyncio.Task[None]] = []

        async def lead() -> None:
            await dispatcher.start()
            await asyncio.to_thread(bridges.start)
            if election is not None:  # other replicas may define bridges: follow the store
                syncing.append(asyncio.ensure_future(_follow_bridges(bridges)))

        async def follow() -> None:
            for task in syncing:
                task.cancel()
            await asyncio.gather(*syncing, return_exceptions=True)
            syncing.clear()
            await asyncio.to_thread(bridges.stop)  # no new jobs while the dispatcher stops
            await dispatcher.stop()

        if election is None:
            await lead()
        else:
            election.start(lead, follow)
        yield
        if election is None:
            await follow()
        else:
            await election.stop(follow)
        bridge_store.close()
        registry.close()
        job_store.close()
        if objects is not None:
            objects.close()
        if state.oidc is not None:
            state.oidc.close()

    cors = CorsPolicy.from_origins(settings.cors_origins)
    app = _Application(
        title="oscar",
        version=__version__,
        summary="OSCAR-compatible serverless, event-driven FaaS control plane",
        lifespan=lifespan,
        separate_input_output_schemas=False,
        redirect_slashes=False,
    )
    app.cors = cors
    app.state.oscar = state
    install_error_handlers(app)

    app.include_router(auth_config.router)
    app.include_router(system.router)
    app.include_router(status.router)
    app.include_router(metrics.router)
    app.include_router(services.router)
    app.include_router(deployment.router)
    app.include_router(invoke.router)
    app.include_router(logs.router)
    app.include_router(buckets.router)
    app.include_router(events.router)
    app.include_router(bridges_api.router)
    app.include_router(ui.router)

    # Added innermost first; CORS and the access log wrap them all (`_Application`), so they
    # see every request, including 413s and 500s.
    app.add_middleware(TrailingSlashMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)

    app.state.s3_app = None
    if objects is not None:
        assert isinstance(storage, EmbeddedStorage)
        app.state.s3_app = S3App(
            objects,
            storage.principal,
            store.region,
            on_object_created=storage.object_created,
            cors=cors.with_exposed(S3_EXPOSED),
        ).app()
    return app
