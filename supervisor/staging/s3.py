"""MinIO and Amazon S3: small objects in one signed request (`s3_direct`), large ones through
boto3's transfer manager (streamed, multipart, parallel ranged GETs); retries either way.

boto3 is imported only when a transfer needs it: a job that moves small files on MinIO never
loads it, which is most of a fresh supervisor's start-up time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from supervisor.staging.base import PermanentStorageError, StorageClient, with_retries
from supervisor.staging.s3_direct import PERMANENT_STATUSES, DirectS3, S3RequestError

# 8 MiB: files above it go multipart; memory stays at a few parts at most.
PART_SIZE = 8 * 1024 * 1024
_PERMANENT = {
    "NoSuchKey",
    "NoSuchBucket",
    "404",
    "403",
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
}


class S3Client(StorageClient):
    """An S3 client for one provider's credentials (`endpoint` present for MinIO, and for an
    S3-compatible store that is not AWS)."""

    def __init__(self, provider_type: str, credentials: Mapping[str, Any]) -> None:
        # MinIO always names its endpoint; an `s3` provider only when it is not AWS.
        self._endpoint = credentials.get("endpoint") or None
        self._credentials = dict(credentials)
        self._direct = DirectS3.for_credentials(credentials) if self._endpoint else None
        self._boto: Any = None

    def _boto3(self) -> Any:
        """boto3's client, built on first use."""
        if self._boto is None:
            import boto3
            from botocore.config import Config

            credentials = self._credentials
            self._boto = boto3.client(
                "s3",
                endpoint_url=self._endpoint or None,
                aws_access_key_id=credentials.get("access_key") or None,
                aws_secret_access_key=credentials.get("secret_key") or None,
                region_name=credentials.get("region") or "us-east-1",
                verify=bool(credentials.get("verify", True)),
                config=Config(
                    retries={"max_attempts": 5, "mode": "standard"},
                    s3={"addressing_style": "path"} if self._endpoint else {},
                    signature_version="s3v4",
                ),
            )
        return self._boto

    @staticmethod
    def _transfer() -> Any:
        from boto3.s3.transfer import TransferConfig

        return TransferConfig(
            multipart_threshold=PART_SIZE,
            multipart_chunksize=PART_SIZE,
            max_concurrency=4,
            use_threads=True,
        )

    def download(self, bucket: str, key: str, destination: Path) -> None:
        """Stream the object to `destination` (multipart ranged GETs for large objects)."""
        self._run(lambda: self._download(bucket, key, destination), f"download s3://{bucket}/{key}")

    def _download(self, bucket: str, key: str, destination: Path) -> None:
        if self._direct is not None and self._direct.get(bucket, key, destination, PART_SIZE):
            return
        self._boto3().download_file(bucket, key, str(destination), Config=self._transfer())

    def upload(self, source: Path, bucket: str, key: str) -> None:
        """Upload `source` (multipart above 8 MiB)."""
        self._run(lambda: self._upload(source, bucket, key), f"upload to s3://{bucket}/{key}")

    def _upload(self, source: Path, bucket: str, key: str) -> None:
        if self._direct is not None and source.stat().st_size <= PART_SIZE:
            self._direct.put(source, bucket, key)
            return
        self._boto3().upload_file(str(source), bucket, key, Config=self._transfer())

    @staticmethod
    def _run(action: Callable[[], None], what: str) -> None:
        def guarded() -> None:
            try:
                action()
            except S3RequestError as exc:
                if exc.status in PERMANENT_STATUSES:
                    raise PermanentStorageError(f"{what}: {exc}") from exc
                raise
            except Exception as exc:
                response = getattr(exc, "response", None)  # botocore's ClientError
                if isinstance(response, dict):
                    code = str(response.get("Error", {}).get("Code", ""))
                    if code in _PERMANENT:
                        raise PermanentStorageError(f"{what}: {code} {exc}") from exc
                raise

        with_retries(guarded, what=what)
