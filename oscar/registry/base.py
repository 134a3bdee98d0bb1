"""The registry interface every backend implements (SQLite now, Kubernetes later)."""

from __future__ import annotations

from abc import ABC, abstractmethod

from oscar.models.service import Service


class Registry(ABC):
    """Durable store of service definitions, keyed by service name.

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

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing open
        """Release resources; the registry is not used afterwards."""
