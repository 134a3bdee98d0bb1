"""The bridge-definition interface: SQLite in the data directory (`oscar.bridges.store`) or
Secrets beside the services' ConfigMaps (`oscar.bridges.kube_store`, with
`OSCAR_REGISTRY=kubernetes`, so that every replica of a stateless control plane sees them).

A cursor is what a source has consumed; it is written only after the jobs of what it covers
are recorded, so a crash between the two repeats a batch (recognised by its dedup keys) and
never skips one.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any


class BridgeRecords(abc.ABC):
    """Bridge definitions (their private JSON, credentials included) and cursors."""

    @abc.abstractmethod
    def create(self, name: str, spec: Mapping[str, Any]) -> None:
        """Store a new definition; `ConflictError` when the name is taken."""

    @abc.abstractmethod
    def update(self, name: str, spec: Mapping[str, Any], *, reset_cursor: bool) -> None:
        """Replace a definition (forgetting its cursor when `reset_cursor`) at once;
        `NotFoundError` when there is none."""

    @abc.abstractmethod
    def delete(self, name: str) -> None:
        """Forget a definition and its cursor; `NotFoundError` when there is none."""

    @abc.abstractmethod
    def get(self, name: str) -> dict[str, Any]:
        """One definition; `NotFoundError` when there is none."""

    @abc.abstractmethod
    def list(self) -> list[dict[str, Any]]:
        """Every definition, by name."""

    @abc.abstractmethod
    def cursor(self, bridge: str) -> dict[str, str]:
        """Every cursor entry of a bridge."""

    @abc.abstractmethod
    def move_cursor(
        self, bridge: str, put: Mapping[str, str], remove: list[str] | None = None
    ) -> None:
        """Set and remove cursor entries at once, durable when this returns; nothing is written
        for a bridge deleted meanwhile."""

    def close(self) -> None:  # noqa: B027 - most stores hold nothing to close
        """Release what the store holds."""
