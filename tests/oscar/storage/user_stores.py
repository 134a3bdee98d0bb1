"""The two default stores with OIDC users, for tests that must hold on both.

`running_store("embedded" | "minio", root)` yields a `UserStore`: the store's `ServiceStorage`
(the embedded store served in-process on a free port, or a real MinIO started with the `OSCAR`
webhook target that service inputs subscribe to), its `/system/buckets` side, a
`ServiceManager` over a memory registry, and boto3 clients for any keys.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import uvicorn
from botocore.config import Config

from oscar.executors.fake import FakeExecutor
from oscar.jobs.dispatcher import Dispatcher
from oscar.jobs.store import JobStore
from oscar.models.storage import MinIOProvider
from oscar.registry.memory import MemoryRegistry
from oscar.services import ServiceManager
from oscar.storage.base import ServiceStorage
from oscar.storage.buckets import BucketStorage
from tests.fixtures.server import free_port
from tests.services import common
from tests.services import minio as minio_service

ADMIN_ACCESS, ADMIN_SECRET = "oscar", "users-test-admin-secret-0123456789"
EVENTS_TOKEN = "users-test-events-token"


@dataclass
class UserStore:
    """One running default store and what the tests drive it with."""

    kind: str
    storage: ServiceStorage
    buckets: BucketStorage
    registry: MemoryRegistry
    manager: ServiceManager
    admin: MinIOProvider

    @property
    def endpoint(self) -> str:
        """The store's S3 endpoint."""
        return self.admin.endpoint

    def s3(self, keys: MinIOProvider | tuple[str, str] | None = None) -> Any:
        """A boto3 client with the admin keys, a provider's (`user_credentials`) or a pair."""
        provider = keys if isinstance(keys, MinIOProvider) else None
        access, secret = (
            (provider.access_key, provider.secret_key)
            if provider is not None
            else keys or (self.admin.access_key, self.admin.secret_key)
        )
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=access,
            aws_secret_access_key=secret,
            region_name="us-east-1",
            config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
        )

    def user(self, subject: str) -> Any:
        """A boto3 client with the keys `user_credentials(subject)` hands out."""
        return self.s3(self.storage.user_credentials(subject))


@contextmanager
def _serve(app: Any, port: int) -> Iterator[None]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the embedded S3 server did not start"
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def running_store(kind: str, root: Path) -> Iterator[UserStore]:
    """The embedded store or a real MinIO, with a manager over a fresh memory registry."""
    from oscar.storage.embedded.provider import EmbeddedStorage
    from oscar.storage.embedded.server import S3App
    from oscar.storage.embedded.store import ObjectStore
    from oscar.storage.minio import MinIOStorage

    registry = MemoryRegistry()
    with ExitStack() as stack:
        jobs = JobStore(root / "jobs.db")
        stack.callback(jobs.close)
        dispatcher = Dispatcher(jobs, registry, FakeExecutor())
        storage: ServiceStorage
        if kind == "embedded":
            port = free_port()
            admin = MinIOProvider(
                endpoint=f"http://127.0.0.1:{port}",
                access_key=ADMIN_ACCESS,
                secret_key=ADMIN_SECRET,
                region="us-east-1",
                verify=False,
            )
            objects = ObjectStore(root / "s3")
            stack.callback(objects.close)
            embedded = EmbeddedStorage(objects, registry, dispatcher, admin)
            app = S3App(objects, embedded.principal, on_object_created=embedded.object_created)
            stack.enter_context(_serve(app.app(), port))
            storage = embedded
        else:
            common.require_installed(minio_service.NAME, minio_service.is_installed())
            webhook = minio_service.oscar_webhook_env(free_port(), EVENTS_TOKEN, root / "queue")
            minio = stack.enter_context(minio_service.running(root / "minio", extra_env=webhook))
            admin = MinIOProvider(
                endpoint=minio.endpoint,
                access_key=minio.access_key,
                secret_key=minio.secret_key,
                region=minio.region,
            )
            storage = MinIOStorage(admin, registry)
        manager = ServiceManager(registry, storage, dispatcher, jobs)
        yield UserStore(kind, storage, storage.buckets(), registry, manager, admin)
