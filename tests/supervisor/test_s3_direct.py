"""The supervisor's boto3-free path for small objects, against the real MinIO and the embedded
store: keys that need encoding, errors that are permanent, and the hand-over to boto3 above
the size limit."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supervisor.staging.base import PermanentStorageError
from supervisor.staging.s3 import PART_SIZE, S3Client
from supervisor.staging.s3_direct import DirectS3
from tests.fixtures.server import RunningServer
from tests.supervisor.helpers import minio_s3

KEYS = ["plain.txt", "a folder/with space+plus.txt", "ünïcödé/ß=€.csv", "odd~!'()*&$@,;.bin"]


@pytest.fixture(params=["minio", "embedded"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, dict[str, Any]]]:
    """(a boto3 client to check with, the credentials the supervisor gets) for each store."""
    if request.param == "minio":
        minio = request.getfixturevalue("minio")
        credentials = {
            "endpoint": minio.endpoint,
            "access_key": minio.access_key,
            "secret_key": minio.secret_key,
        }
        yield minio_s3(minio), credentials
        return
    server: RunningServer = request.getfixturevalue("start_oscar")()
    provider = server.client().get("/system/config").json()["minio_provider"]
    credentials = {k: provider[k] for k in ("endpoint", "access_key", "secret_key", "region")}
    yield server.s3(), credentials


def _bucket(s3: Any) -> str:
    """A new bucket of the store's own."""
    bucket = f"direct-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    return bucket


@pytest.mark.minio
def test_small_objects_round_trip_without_boto3(
    store: tuple[Any, dict[str, Any]], tmp_path: Path
) -> None:
    s3, credentials = store
    bucket = _bucket(s3)
    client = S3Client("minio", credentials)
    for index, key in enumerate(KEYS):
        source = tmp_path / f"up{index}"
        source.write_bytes(f"content of {key}".encode() * 100)
        client.upload(source, bucket, key)
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == source.read_bytes()
        s3.put_object(Bucket=bucket, Key=key, Body=b"changed " + key.encode())
        target = tmp_path / f"down{index}"
        client.download(bucket, key, target)
        assert target.read_bytes() == b"changed " + key.encode()
    assert client._boto is None  # boto3 was never needed


@pytest.mark.minio
def test_errors_that_retrying_cannot_fix_are_permanent(
    store: tuple[Any, dict[str, Any]], tmp_path: Path
) -> None:
    s3, credentials = store
    bucket = _bucket(s3)
    with pytest.raises(PermanentStorageError, match="NoSuchKey"):
        S3Client("minio", credentials).download(bucket, "missing.txt", tmp_path / "x")
    wrong = {**credentials, "secret_key": "not-the-secret-key"}
    source = tmp_path / "up"
    source.write_bytes(b"x")
    with pytest.raises(PermanentStorageError, match="403"):
        S3Client("minio", wrong).upload(source, bucket, "denied.txt")


@pytest.mark.minio
def test_objects_above_the_limit_go_through_boto3(minio: Any, tmp_path: Path) -> None:
    s3 = minio_s3(minio)
    bucket = _bucket(s3)
    credentials = {
        "endpoint": minio.endpoint,
        "access_key": minio.access_key,
        "secret_key": minio.secret_key,
    }
    big = tmp_path / "big"
    big.write_bytes(b"\x01" * (PART_SIZE + 1))
    client = S3Client("minio", credentials)
    client.upload(big, bucket, "big.bin")
    assert client._boto is not None  # multipart through the transfer manager
    fresh = S3Client("minio", credentials)
    fresh.download(bucket, "big.bin", tmp_path / "back")
    assert (tmp_path / "back").read_bytes() == big.read_bytes()
    assert fresh._boto is not None


def test_only_endpoint_and_key_providers_take_the_direct_path() -> None:
    base = {"endpoint": "http://127.0.0.1:9", "access_key": "a", "secret_key": "b"}
    assert DirectS3.for_credentials(base) is not None
    assert DirectS3.for_credentials({**base, "endpoint": ""}) is None  # AWS: boto3
    assert DirectS3.for_credentials({**base, "access_key": ""}) is None  # anonymous
    assert DirectS3.for_credentials({**base, "session_token": "t"}) is None
    assert DirectS3.for_credentials({**base, "endpoint": "ftp://x"}) is None
