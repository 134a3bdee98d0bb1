"""Service tokens: 32 random bytes, hex-encoded (64 characters), as upstream generates them."""

from __future__ import annotations

import secrets

SERVICE_TOKEN_BYTES = 32
SERVICE_TOKEN_LENGTH = 2 * SERVICE_TOKEN_BYTES


def new_service_token() -> str:
    """A fresh token for `/job` and `/run` calls of one service."""
    return secrets.token_hex(SERVICE_TOKEN_BYTES)


def token_matches(presented: str, expected: str) -> bool:
    """Constant-time comparison; an unset expected token never matches."""
    return bool(expected) and secrets.compare_digest(presented.encode(), expected.encode())
