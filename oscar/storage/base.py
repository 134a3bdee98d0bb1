"""What the control plane needs from the default object store, whichever it is.

Providers translate their client library's errors where they enter: a store that refuses an
operation raises `StorageError`, one that cannot be reached `BackendUnavailableError`, each
message naming the bucket. Nothing else from a client library escapes a provider.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection
from typing import TYPE_CHECKING

from oscar.errors import NotSupportedError
from oscar.models.service import Service
from oscar.models.storage import DEFAULT_PROVIDER, MinIOProvider
from oscar.registry.base import Registry

if TYPE_CHECKING:
    from oscar.storage.buckets import BucketStorage


def default_store_paths(service: Service) -> list[tuple[str, str]]:
    """(bucket, folder) of every `minio.default` input and output of a service."""
    paths = []
    for entry in [*service.input, *service.output]:
        if entry.storage_provider == DEFAULT_PROVIDER:
            bucket, _, folder = entry.path.strip("/").partition("/")
            paths.append((bucket, folder.strip("/")))
    return paths


def default_store_buckets(service: Service) -> list[str]:
    """The service's default-store buckets, each once, in definition order."""
    return list(dict.fromkeys(bucket for bucket, _ in default_store_paths(service)))


def service_buckets(service: Service) -> list[str]:
    """Every default-store bucket set up for a service: those of its paths, then, with USER
    isolation, its users' buckets (`bucket_list`)."""
    isolated = service.bucket_list if service.isolation_level == "USER" else []
    return list(dict.fromkeys([*default_store_buckets(service), *isolated]))


def buckets_of_others(registry: Registry, service: Service) -> set[str]:
    """Default-store buckets that services other than `service` use (kept on its deletion)."""
    return {
        bucket
        for other in registry.list()
        if other.name != service.name
        for bucket in service_buckets(other)
    }


class ServiceStorage(ABC):
    """Bucket set-up and tear-down for services on the default store.

    Methods block. They raise `StorageError` when the store refuses and
    `BackendUnavailableError` when it cannot be reached.
    """

    @abstractmethod
    def existing_buckets(self, service: Service) -> set[str]:
        """Which of the service's default-store buckets exist right now.

        Read before `setup_service`, so that undoing a failed set-up removes only the buckets
        it created, never ones that held data before.
        """

    @abstractmethod
    def setup_service(self, service: Service) -> None:
        """Create the service's buckets and folders and subscribe its input prefixes.

        Idempotent. On failure, what was done so far stays: the caller undoes it with
        `teardown_service(service, keep=<existing_buckets() read before>)`.
        """

    @abstractmethod
    def usage(self) -> tuple[int, int]:
        """(buckets, objects) in the default store, as `/system/status` reports them."""

    @abstractmethod
    def teardown_service(self, service: Service, keep: Collection[str] = ()) -> None:
        """Remove the service's buckets, except those in `keep` and those another service uses.

        Buckets that stay get their event subscriptions rewritten from the registry, which
        should therefore no longer hold this service (or hold the definition being restored).
        """

    def user_credentials(self, subject: str, display_name: str = "") -> MinIOProvider:
        """The default store's client-facing endpoint with the keys of the OIDC user `subject`
        (`oscar.storage.users`), making the user on the store when needed.

        Idempotent, and cheap once the user is known (every request of that user may call it).
        Raises `BadRequestError` for a subject the store cannot take; stores without users
        answer `NotSupportedError` (501).
        """
        raise NotSupportedError("this object store has no per-user credentials")

    def buckets(self) -> BucketStorage:
        """The store's buckets as `/system/buckets` manages them (`oscar.storage.buckets`).

        Stores that do not offer it answer `NotSupportedError` (501).
        """
        raise NotSupportedError("this object store does not offer /system/buckets")
