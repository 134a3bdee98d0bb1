"""MinIO and Amazon S3 through boto3: streamed downloads, multipart uploads, retries."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from supervisor.staging.base import PermanentStorageError, StorageClient, with_retries

# 8 MiB parts: files above the threshold go multipart; memory stays at a few parts at most.
_TRANSFER = TransferConfig(
    multipart_threshold=8 * 1024 * 1024,
    multipart_chunksize=8 * 1024 * 1024,
    max_concurrency=4,
    use_threads=True,
)
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
    """An S3 client for one provider's credentials (`endpoint` present for MinIO)."""

    def __init__(self, provider_type: str, credentials: Mapping[str, Any]) -> None:
        endpoint = credentials.get("endpoint") if provider_type == "minio" else None
        self._client = boto3.client(
            "s3",
            endpoint_url=endpoint or None,
            aws_access_key_id=credentials.get("access_key") or None,
            aws_secret_access_key=credentials.get("secret_key") or None,
            region_name=credentials.get("region") or "us-east-1",
            verify=bool(credentials.get("verify", True)),
            config=Config(
                retries={"max_attempts": 5, "mode": "standard"},
                s3={"addressing_style": "path"} if endpoint else {},
                signature_version="s3v4",
            ),
        )

    def download(self, bucket: str, key: str, destination: Path) -> None:
        """Stream the object to `destination` (multipart ranged GETs for large objects)."""
        self._run(
            lambda: self._client.download_file(bucket, key, str(destination), Config=_TRANSFER),
            f"download s3://{bucket}/{key}",
        )

    def upload(self, source: Path, bucket: str, key: str) -> None:
        """Upload `source` (multipart above 8 MiB)."""
        self._run(
            lambda: self._client.upload_file(str(source), bucket, key, Config=_TRANSFER),
            f"upload to s3://{bucket}/{key}",
        )

    @staticmethod
    def _run(action: Any, what: str) -> None:
        def guarded() -> None:
            try:
                action()
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                if code in _PERMANENT:
                    raise PermanentStorageError(f"{what}: {code} {exc}") from exc
                raise

        with_retries(guarded, what=what)
