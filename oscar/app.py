"""The FastAPI application factory: the whole route table on one screen.

Nothing is built at import time; every call to `create_app` makes an independent application
from a `Settings` object, so tests can run several with different settings side by side.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from oscar import __version__
from oscar.api import buckets, events, invoke, logs, services, system
from oscar.api.errors import install_error_handlers
from oscar.api.middleware import AccessLogMiddleware, BodyLimitMiddleware, TrailingSlashMiddleware
from oscar.api.state import AppState
from oscar.auth.basic import AdminCredentials, ensure_data_dir, load_admin_credentials
from oscar.errors import ConfigurationError
from oscar.executors.base import Executor
from oscar.executors.knative import KnativeBackend
from oscar.executors.kubernetes import KubernetesExecutor
from oscar.executors.local import LocalExecutor
from oscar.executors.slurm import LocalTransport, SlurmExecutor, SSHTransport
from oscar.jobs.dispatcher import Dispatcher
from oscar.jobs.store import JobStore
from oscar.models.storage import MinIOProvider
from oscar.registry.base import Registry
from oscar.registry.kubernetes import KubernetesRegistry
from oscar.registry.sqlite import SQLiteRegistry
from oscar.settings import Settings
from oscar.storage.base import ServiceStorage
from oscar.storage.embedded.provider import EmbeddedStorage
from oscar.storage.embedded.server import S3App
from oscar.storage.embedded.store import ObjectStore
from oscar.storage.minio import MinIOStorage


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


def kubernetes_client(settings: Settings) -> Any:
    """An API client from the kubeconfig, or the in-cluster configuration; ensures the services
    namespace exists."""
    try:
        from kubernetes import client, config
    except ImportError:
        raise ConfigurationError(
            "the Kubernetes executor/registry needs `pip install 'oscar[kubernetes]'`"
        ) from None
    try:
        if settings.kubeconfig:
            api = config.new_client_from_config(config_file=str(settings.kubeconfig))
        else:
            config.load_incluster_config()
            api = client.ApiClient()
    except Exception as exc:
        raise ConfigurationError(f"cannot configure the Kubernetes client: {exc}") from None
    core = client.CoreV1Api(api)
    try:
        core.create_namespace({"metadata": {"name": settings.services_namespace}})
    except client.exceptions.ApiException as exc:
        if exc.status not in (403, 409):  # exists already, or we may not create namespaces
            raise ConfigurationError(f"cannot reach the Kubernetes API: {exc.reason}") from None
    except Exception as exc:
        raise ConfigurationError(f"cannot reach the Kubernetes API: {exc}") from None
    return api


def ensure_minio_secret(api: Any, namespace: str, store: MinIOProvider) -> None:
    """The Secret `minio` (accessKey, secretKey) that upstream Jobs mount for `minio.default`."""
    from kubernetes import client

    core = client.CoreV1Api(api)
    body = {
        "metadata": {"name": "minio", "namespace": namespace},
        "stringData": {"accessKey": store.access_key, "secretKey": store.secret_key},
    }
    try:
        core.create_namespaced_secret(namespace, body)
    except client.exceptions.ApiException as exc:
        if exc.status != 409:
            raise
        core.replace_namespaced_secret("minio", namespace, body)


def hpc_executor(settings: Settings, store: MinIOProvider) -> SlurmExecutor | None:
    """The Slurm executor when `OSCAR_HPC_EXECUTOR=slurm`."""
    if settings.hpc_executor != "slurm":
        return None
    env = {"SLURM_CONF": str(settings.slurm_conf)} if settings.slurm_conf else {}
    transport = (
        SSHTransport(settings.slurm_ssh_host, env)
        if settings.slurm_ssh_host
        else LocalTransport(env)
    )
    return SlurmExecutor(settings.data_dir / "slurm-jobs", store, transport, settings.job_timeout)


def create_app(
    settings: Settings,
    *,
    registry: Registry | None = None,
    admin: AdminCredentials | None = None,
) -> FastAPI:
    """Build the API for `settings`; `registry` and `admin` default to the embedded ones.

    The embedded S3 endpoint is built alongside and stored as `app.state.s3_app`; `oscar serve`
    serves it on its own port in the same event loop.
    """
    ensure_data_dir(settings.data_dir)
    admin = admin or load_admin_credentials(settings)
    kube = (
        kubernetes_client(settings)
        if "kubernetes" in (settings.executor, settings.registry)
        else None
    )
    if registry is None:
        registry = (
            KubernetesRegistry(kube, settings.services_namespace)
            if settings.registry == "kubernetes"
            else SQLiteRegistry(settings.registry_path)
        )
    store = default_store(settings, admin)
    job_store = JobStore(settings.jobs_path)
    executor: Executor = (
        KubernetesExecutor(kube, settings.services_namespace, settings.job_timeout)
        if settings.executor == "kubernetes"
        else LocalExecutor(settings.data_dir / "jobs", store, settings.job_timeout)
    )
    dispatcher = Dispatcher(
        job_store,
        registry,
        executor,
        settings.max_concurrent_jobs,
        hpc=hpc_executor(settings, store),
    )
    objects: ObjectStore | None = None
    storage: ServiceStorage
    if settings.storage == "minio":
        if not settings.minio_endpoint or settings.events_token is None:
            raise ConfigurationError(
                "OSCAR_STORAGE=minio needs OSCAR_MINIO_ENDPOINT and OSCAR_EVENTS_TOKEN"
            )
        storage = MinIOStorage(store, registry)
    else:
        objects = ObjectStore(settings.data_dir / "s3")
        storage = EmbeddedStorage(objects, registry, dispatcher)
    if kube is not None and settings.executor == "kubernetes":
        ensure_minio_secret(kube, settings.services_namespace, store)
    knative = (
        KnativeBackend(kube, settings.services_namespace)
        if settings.serverless_backend == "knative"
        else None
    )
    state = AppState(
        settings, registry, admin, store, job_store, executor, dispatcher, storage, knative
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await dispatcher.start()
        yield
        await dispatcher.stop()
        registry.close()
        job_store.close()
        if objects is not None:
            objects.close()

    app = FastAPI(
        title="oscar",
        version=__version__,
        summary="OSCAR-compatible serverless, event-driven FaaS control plane",
        lifespan=lifespan,
        separate_input_output_schemas=False,
        redirect_slashes=False,
    )
    app.state.oscar = state
    install_error_handlers(app)

    app.include_router(system.router)
    app.include_router(services.router)
    app.include_router(invoke.router)
    app.include_router(logs.router)
    app.include_router(buckets.router)
    app.include_router(events.router)

    # Added innermost first: the access log sees every request, including 413s.
    app.add_middleware(TrailingSlashMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(AccessLogMiddleware)

    app.state.s3_app = None
    if objects is not None:
        assert isinstance(storage, EmbeddedStorage)
        credentials = {store.access_key: store.secret_key}
        app.state.s3_app = S3App(
            objects, credentials.get, store.region, on_object_created=storage.object_created
        ).app()
    return app
