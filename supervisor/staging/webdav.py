"""WebDAV (dCache's WebDAV door, for instance) through webdavclient3, streaming both ways."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from webdav3.client import Client
from webdav3.exceptions import RemoteResourceNotFound, ResponseErrorCode

from supervisor.staging.base import PermanentStorageError, StorageClient, join_key, with_retries


class WebDavClient(StorageClient):
    """A WebDAV client; `bucket` is a folder on the server."""

    def __init__(self, credentials: Mapping[str, Any]) -> None:
        hostname = str(credentials.get("hostname") or "")
        if not hostname.startswith(("http://", "https://")):
            hostname = f"https://{hostname}"
        self._client = Client(
            {
                "webdav_hostname": hostname,
                "webdav_login": credentials.get("login") or "",
                "webdav_password": credentials.get("password") or "",
                "webdav_timeout": 300,
            }
        )
        self._client.verify = bool(credentials.get("verify", True))

    def download(self, bucket: str, key: str, destination: Path) -> None:
        """Stream the remote file to `destination`."""
        remote = "/" + join_key(bucket, key)

        def fetch() -> None:
            try:
                with destination.open("wb") as handle:
                    self._client.download_from(handle, remote)
            except RemoteResourceNotFound as exc:
                raise PermanentStorageError(f"{remote} not found on the WebDAV server") from exc
            except ResponseErrorCode as exc:
                if exc.code in (401, 403):
                    raise PermanentStorageError(f"access to {remote} denied ({exc.code})") from exc
                raise

        with_retries(fetch, what=f"download webdav:{remote}")

    def upload(self, source: Path, bucket: str, key: str) -> None:
        """Upload `source`, creating missing parent folders."""
        remote = "/" + join_key(bucket, key)

        def send() -> None:
            try:
                self._client.upload_file(remote, str(source), force=True)
            except ResponseErrorCode as exc:
                if exc.code in (401, 403):
                    raise PermanentStorageError(f"access to {remote} denied ({exc.code})") from exc
                raise

        with_retries(send, what=f"upload webdav:{remote}")
