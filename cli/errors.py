"""The one error type oscar-cli shows its users (kept apart so `client` and `oidc` share it)."""

from __future__ import annotations


class ClientError(Exception):
    """A request failed; the message is meant for the user as is."""
