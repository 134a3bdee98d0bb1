"""`make_registry`: the registry the settings name (`OSCAR_REGISTRY`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from oscar.registry.base import Registry
from oscar.settings import Settings


def _sqlite(settings: Settings, _: Any) -> Registry:
    from oscar.registry.cached import CachedRegistry
    from oscar.registry.sqlite import SQLiteRegistry

    # One server per data directory: it is the file's only writer, so memory stays in step.
    return CachedRegistry(SQLiteRegistry(settings.registry_path))


def _kubernetes(settings: Settings, kube: Any) -> Registry:
    from oscar.registry.kubernetes import KubernetesRegistry

    return KubernetesRegistry(kube, settings.services_namespace)


REGISTRIES: dict[str, Callable[[Settings, Any], Registry]] = {
    "sqlite": _sqlite,
    "kubernetes": _kubernetes,
}


def make_registry(settings: Settings, kube: Any = None) -> Registry:
    """The registry of `settings.registry` (`kube`: the Kubernetes API client, when needed)."""
    return REGISTRIES[settings.registry](settings, kube)
