"""`make_storage`: the default object store the settings name (`OSCAR_STORAGE`)."""

from __future__ import annotations

from oscar.jobs.dispatcher import Dispatcher
from oscar.models.storage import MinIOProvider
from oscar.registry.base import Registry
from oscar.settings import Settings
from oscar.storage.base import ServiceStorage
from oscar.storage.embedded.store import ObjectStore


def make_storage(
    settings: Settings, store: MinIOProvider, registry: Registry, dispatcher: Dispatcher
) -> tuple[ServiceStorage, ObjectStore | None]:
    """(service storage, the embedded object store or None when the store is external)."""
    if settings.storage == "minio":
        from oscar.storage.minio import MinIOStorage

        return MinIOStorage(store, registry), None
    from oscar.storage.embedded.provider import EmbeddedStorage

    objects = ObjectStore(settings.data_dir / "s3")
    return EmbeddedStorage(objects, registry, dispatcher, store), objects
