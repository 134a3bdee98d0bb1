"""What the control plane needs from the default object store, whichever it is."""

from __future__ import annotations

from abc import ABC, abstractmethod

from oscar.models.service import Service
from oscar.models.storage import DEFAULT_PROVIDER
from oscar.registry.base import Registry


def default_store_paths(service: Service) -> list[tuple[str, str]]:
    """(bucket, folder) of every `minio.default` input and output of a service."""
    paths = []
    for entry in [*service.input, *service.output]:
        if entry.storage_provider == DEFAULT_PROVIDER:
            bucket, _, folder = entry.path.strip("/").partition("/")
            paths.append((bucket, folder.strip("/")))
    return paths


def buckets_of_others(registry: Registry, service: Service) -> set[str]:
    """Default-store buckets that services other than `service` use (kept on its deletion)."""
    return {
        bucket
        for other in registry.list()
        if other.name != service.name
        for bucket, _ in default_store_paths(other)
    }


class ServiceStorage(ABC):
    """Bucket set-up and tear-down for services on the default store."""

    @abstractmethod
    def setup_service(self, service: Service) -> None:
        """Create the service's buckets and folders and subscribe its input prefixes."""

    @abstractmethod
    def teardown_service(self, service: Service) -> None:
        """Remove what `setup_service` created (buckets another service uses are kept)."""
