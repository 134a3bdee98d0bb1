"""In-memory registry: the fake that ships with the interface, for unit tests of upper layers."""

from __future__ import annotations

import copy
import threading
from typing import Any

from oscar.errors import ServiceExistsError, ServiceNotFoundError
from oscar.models.service import Service
from oscar.registry.base import Registry


class MemoryRegistry(Registry):
    """Keeps services in a dict; nothing survives the process."""

    def __init__(self) -> None:
        self._services: dict[str, Service] = {}
        self._settings: dict[str, Any] = {}
        self._lock = threading.Lock()

    def create(self, service: Service) -> None:
        with self._lock:
            if service.name in self._services:
                raise ServiceExistsError(service.name)
            self._services[service.name] = service.model_copy(deep=True)

    def get(self, name: str) -> Service:
        with self._lock:
            if name not in self._services:
                raise ServiceNotFoundError(name)
            return self._services[name].model_copy(deep=True)

    def list(self) -> list[Service]:
        with self._lock:
            return [self._services[n].model_copy(deep=True) for n in sorted(self._services)]

    def update(self, service: Service) -> None:
        with self._lock:
            if service.name not in self._services:
                raise ServiceNotFoundError(service.name)
            self._services[service.name] = service.model_copy(deep=True)

    def delete(self, name: str) -> None:
        with self._lock:
            if self._services.pop(name, None) is None:
                raise ServiceNotFoundError(name)

    def read_setting(self, key: str) -> Any:
        with self._lock:
            return copy.deepcopy(self._settings.get(key))

    def write_setting(self, key: str, value: Any) -> None:
        with self._lock:
            self._settings[key] = copy.deepcopy(value)
