"""The registry interface every backend implements (SQLite now, Kubernetes later)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from oscar.events.router import matching_services
from oscar.models.service import Service


class Registry(ABC):
    """Durable store of service definitions, keyed by service name, and of the few cluster
    settings the API changes.

    Implementations raise `ServiceExistsError` on duplicate creates and `ServiceNotFoundError`
    when a named service is missing. Methods block; callers run them off the event loop.
    """

    @abstractmethod
    def create(self, service: Service) -> None:
        """Store a new service."""

    @abstractmethod
    def get(self, name: str) -> Service:
        """Return the stored service named `name`."""

    @abstractmethod
    def list(self) -> list[Service]:
        """Return every stored service, ordered by name."""

    @abstractmethod
    def update(self, service: Service) -> None:
        """Replace the stored definition of `service.name`."""

    @abstractmethod
    def delete(self, name: str) -> None:
        """Remove the service named `name`."""

    @abstractmethod
    def read_setting(self, key: str) -> Any:
        """A cluster setting changed through the API (`PUT /system/config`); None when unset."""

    @abstractmethod
    def write_setting(self, key: str, value: Any) -> None:
        """Store a cluster setting (a JSON value), durably as the services."""

    def inputs_matching(self, bucket: str, key: str) -> list[Service]:
        """The services with an input folder (on the default store) that contains
        `bucket/key`, by name. By default a scan of `list()`; `CachedRegistry` keeps an index."""
        return matching_services(self.list(), bucket, key)

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing open
        """Release resources; the registry is not used afterwards."""
