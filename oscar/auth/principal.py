"""The authenticated caller, handed to routes as a dependency."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from oscar.models.service import DEFAULT_OWNER


@dataclass(frozen=True)
class Principal:
    """Who made a request: the cluster admin (Basic auth) or a service-token holder."""

    kind: Literal["admin", "service"]
    name: str

    @property
    def is_admin(self) -> bool:
        """Admins see and own everything."""
        return self.kind == "admin"

    @property
    def owner_id(self) -> str:
        """The `owner` recorded on services this principal creates (upstream: cluster_admin)."""
        return DEFAULT_OWNER if self.is_admin else self.name

    def __str__(self) -> str:
        return self.name if self.is_admin else f"service-token:{self.name}"
