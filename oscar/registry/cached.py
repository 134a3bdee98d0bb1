"""A registry kept in memory in front of a durable one, for a control plane that is the only
writer of its registry (the SQLite file of its data directory).

Writes go to the durable registry first and then to memory, so what is read is always what
was stored; reads never touch the disk. An index of the services' input folders
(`InputIndex`) is kept in step, so matching an event to services costs a dictionary lookup
instead of reading and parsing every definition.
"""

from __future__ import annotations

import threading
from typing import Any

from oscar.errors import ServiceExistsError, ServiceNotFoundError
from oscar.events.router import InputIndex
from oscar.models.service import Service
from oscar.registry.base import Registry


class CachedRegistry(Registry):
    """`inner`'s services in memory, with an input index; settings pass through."""

    def __init__(self, inner: Registry) -> None:
        self.inner = inner
        self._lock = threading.Lock()
        self._services: dict[str, Service] = {}
        self._index = InputIndex()
        for service in inner.list():
            self._remember(service)

    def _remember(self, service: Service) -> None:
        copy = service.model_copy(deep=True)  # what the caller keeps may change afterwards
        self._services[copy.name] = copy
        self._index.put(copy)

    def create(self, service: Service) -> None:
        """Store a new service durably, then in memory."""
        with self._lock:
            if service.name in self._services:
                raise ServiceExistsError(service.name)
            self.inner.create(service)
            self._remember(service)

    def get(self, name: str) -> Service:
        """The stored service (a copy)."""
        with self._lock:
            found = self._services.get(name)
            if found is None:
                raise ServiceNotFoundError(name)
            return found.model_copy(deep=True)

    def list(self) -> list[Service]:
        """Every stored service by name (copies)."""
        with self._lock:
            return [self._services[n].model_copy(deep=True) for n in sorted(self._services)]

    def inputs_matching(self, bucket: str, key: str) -> list[Service]:
        """The services whose input folder contains `bucket/key`, from the index (copies)."""
        with self._lock:
            names = self._index.matching(bucket, key)
            return [self._services[n].model_copy(deep=True) for n in names]

    def update(self, service: Service) -> None:
        """Replace a definition durably, then in memory."""
        with self._lock:
            if service.name not in self._services:
                raise ServiceNotFoundError(service.name)
            self.inner.update(service)
            self._remember(service)

    def delete(self, name: str) -> None:
        """Remove a service durably, then from memory."""
        with self._lock:
            if name not in self._services:
                raise ServiceNotFoundError(name)
            self.inner.delete(name)
            del self._services[name]
            self._index.remove(name)

    def read_setting(self, key: str) -> Any:
        """A cluster setting, from the durable registry."""
        return self.inner.read_setting(key)

    def write_setting(self, key: str, value: Any) -> None:
        """Store a cluster setting in the durable registry."""
        self.inner.write_setting(key, value)

    def close(self) -> None:
        """Close the durable registry."""
        self.inner.close()
