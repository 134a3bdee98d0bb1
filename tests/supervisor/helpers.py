"""Run `oscar-supervisor` as a real child process with a configuration and a script."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import yaml

from tests.fixtures.server import clean_env


def b64(text: str | bytes) -> str:
    """Base64 text of `text`."""
    data = text.encode() if isinstance(text, str) else text
    return base64.b64encode(data).decode()


def run_supervisor(
    config: dict[str, Any],
    script: str,
    event: bytes | None,
    *,
    tmp_path: Path,
    env: dict[str, str] | None = None,
    args: list[str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[bytes]:
    """Run the supervisor with `config` and `script` passed as upstream's base64 env vars."""
    settings = {
        "FUNCTION_CONFIG": b64(yaml.safe_dump(config)),
        "SCRIPT": b64(script),
        "PROVIDER_SECRETS_DIR": str(tmp_path / "no-secrets"),
        **(env or {}),
    }
    full_env = clean_env(**settings)
    workdir = tmp_path / "work"
    workdir.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "supervisor", "--workdir", str(workdir), *(args or [])],
        input=event,
        env=full_env,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def minio_event(bucket: str, key: str) -> bytes:
    """A MinIO ObjectCreated notification as MinIO posts it (the key URL-encoded)."""
    quoted = key.replace("/", "%2F").replace(" ", "+")
    return json.dumps(
        {
            "EventName": "s3:ObjectCreated:Put",
            "Key": f"{bucket}/{key}",
            "Records": [
                {
                    "eventVersion": "2.0",
                    "eventSource": "minio:s3",
                    "eventTime": "2026-11-23T10:00:00.000Z",
                    "eventName": "s3:ObjectCreated:Put",
                    "s3": {"bucket": {"name": bucket}, "object": {"key": quoted, "size": 1}},
                }
            ],
        }
    ).encode()


def minio_s3(minio: Any) -> Any:
    """A boto3 S3 client for the test MinIO server."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=minio.endpoint,
        aws_access_key_id=minio.access_key,
        aws_secret_access_key=minio.secret_key,
        region_name="us-east-1",
    )


def fresh_buckets(minio: Any, *roles: str) -> dict[str, str]:
    """A new bucket per role (`in`, `out`, ...), by role."""
    s3 = minio_s3(minio)
    names = {role: f"{role}-{uuid.uuid4().hex[:8]}" for role in roles}
    for name in names.values():
        s3.create_bucket(Bucket=name)
    return names


def object_keys(minio: Any, bucket: str) -> set[str]:
    """The keys of the objects in `bucket`."""
    listing = minio_s3(minio).list_objects_v2(Bucket=bucket)
    return {item["Key"] for item in listing.get("Contents", [])}
