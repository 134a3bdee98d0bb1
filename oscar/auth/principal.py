"""The authenticated caller, handed to routes as a dependency."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from oscar.models.service import DEFAULT_OWNER

PrincipalKind = Literal["admin", "user", "service"]


@dataclass(frozen=True)
class Principal:
    """Who made a request.

    - `admin`: the cluster admin (HTTP Basic), or an OIDC user listed in `OSCAR_USERS_ADMIN`
      (then `subject` is that user's `sub`);
    - `user`: an OIDC user; `name` and `subject` are the token's `sub`, `groups` the user's
      groups that this cluster accepts (`OSCAR_OIDC_GROUPS`), `display_name` the token's `name`;
    - `service`: the holder of a service's token; `name` is the service.
    """

    kind: PrincipalKind
    name: str
    subject: str = ""
    groups: tuple[str, ...] = ()
    display_name: str = ""
    issuer: str = ""

    @property
    def is_admin(self) -> bool:
        """Admins see and own everything."""
        return self.kind == "admin"

    @property
    def is_user(self) -> bool:
        """An OIDC user (admins logged in with OIDC are admins, not users)."""
        return self.kind == "user"

    @property
    def owner_id(self) -> str:
        """The `owner` recorded on what this principal creates: the OIDC subject, or
        `cluster_admin` for the Basic admin (upstream's name)."""
        if self.subject:
            return self.subject
        return DEFAULT_OWNER if self.is_admin else self.name

    def __str__(self) -> str:
        if self.kind == "service":
            return f"service-token:{self.name}"
        if self.subject:
            return f"oidc:{self.subject}"
        return self.name
