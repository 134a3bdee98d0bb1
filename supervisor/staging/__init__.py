"""Stage-in and stage-out clients, one module per storage protocol."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from supervisor.errors import ConfigError
from supervisor.staging.base import StorageClient


def client_for(provider_type: str, credentials: Mapping[str, Any]) -> StorageClient:
    """The client for one provider type (imports its library only when needed)."""
    if provider_type in {"minio", "s3"}:
        from supervisor.staging.s3 import S3Client

        return S3Client(provider_type, credentials)
    if provider_type == "webdav":
        from supervisor.staging.webdav import WebDavClient

        return WebDavClient(credentials)
    raise ConfigError(f"staging with storage provider type '{provider_type}' is not supported")
