"""Conformance of the embedded S3 store with boto3 and the minio SDK, over real HTTP."""

from __future__ import annotations

import hashlib
import io
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
import urllib3
import uvicorn
from botocore.config import Config
from botocore.exceptions import ClientError
from minio import Minio
from minio.error import S3Error

from oscar.storage.embedded.server import Principal, S3App
from oscar.storage.embedded.store import ObjectInfo, ObjectStore
from tests.fixtures.server import free_port

ACCESS, SECRET = "embedded-admin", "embedded-secret-0123456789"


@dataclass
class EmbeddedS3:
    """A running embedded store with the events it emitted."""

    endpoint: str
    host: str
    store: ObjectStore
    events: list[tuple[str, str, str]] = field(default_factory=list)

    def boto(self, secret: str = SECRET, **config: Any) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS,
            aws_secret_access_key=secret,
            region_name="us-east-1",
            config=Config(retries={"max_attempts": 1}, **config),
        )

    def minio(self) -> Minio:
        http = urllib3.PoolManager(retries=urllib3.Retry(total=0))
        return Minio(self.host, ACCESS, SECRET, secure=False, http_client=http)


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedS3]:
    store = ObjectStore(tmp_path_factory.mktemp("s3"))
    port = free_port()
    running = EmbeddedS3(f"http://127.0.0.1:{port}", f"127.0.0.1:{port}", store)

    def created(info: ObjectInfo, principal: str, event: str) -> None:
        running.events.append((event, f"{info.bucket}/{info.key}", principal))

    app = S3App(store, {ACCESS: Principal(SECRET)}.get, on_object_created=created).app()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "embedded S3 did not start"
        time.sleep(0.02)
    yield running
    server.should_exit = True
    thread.join(timeout=10)
    store.close()


@pytest.fixture
def bucket(s3: EmbeddedS3) -> str:
    name = f"b-{uuid.uuid4().hex[:10]}"
    s3.boto().create_bucket(Bucket=name)
    return name


def test_bucket_lifecycle(s3: EmbeddedS3) -> None:
    client = s3.boto()
    name = f"life-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=name)
    assert name in [b["Name"] for b in client.list_buckets()["Buckets"]]
    client.head_bucket(Bucket=name)
    with pytest.raises(ClientError) as exists:
        client.create_bucket(Bucket=name)
    assert exists.value.response["Error"]["Code"] == "BucketAlreadyOwnedByYou"
    client.put_object(Bucket=name, Key="x", Body=b"1")
    with pytest.raises(ClientError) as not_empty:
        client.delete_bucket(Bucket=name)
    assert not_empty.value.response["Error"]["Code"] == "BucketNotEmpty"
    client.delete_object(Bucket=name, Key="x")
    client.delete_bucket(Bucket=name)
    with pytest.raises(ClientError) as gone:
        client.head_bucket(Bucket=name)
    assert gone.value.response["Error"]["Code"] in {"404", "NoSuchBucket"}


def test_invalid_bucket_name(s3: EmbeddedS3) -> None:
    with pytest.raises(ClientError) as error:
        s3.boto().create_bucket(Bucket="Bad_Name")
    assert error.value.response["Error"]["Code"] == "InvalidBucketName"


def test_put_get_head_delete_with_metadata(s3: EmbeddedS3, bucket: str) -> None:
    client = s3.boto()
    body = b"hello embedded store"
    put = client.put_object(
        Bucket=bucket,
        Key="dir/hello.txt",
        Body=body,
        ContentType="text/plain",
        Metadata={"owner": "me"},
    )
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'  # noqa: S324 - S3's ETag
    got = client.get_object(Bucket=bucket, Key="dir/hello.txt")
    assert got["Body"].read() == body
    assert got["ContentType"] == "text/plain"
    assert got["Metadata"] == {"owner": "me"}
    head = client.head_object(Bucket=bucket, Key="dir/hello.txt")
    assert head["ContentLength"] == len(body)
    client.delete_object(Bucket=bucket, Key="dir/hello.txt")
    with pytest.raises(ClientError) as missing:
        client.get_object(Bucket=bucket, Key="dir/hello.txt")
    assert missing.value.response["Error"]["Code"] == "NoSuchKey"


def test_keys_with_special_characters(s3: EmbeddedS3, bucket: str) -> None:
    client = s3.boto()
    keys = ["in/with space.txt", "in/plus+sign.txt", "in/ünïcode-ß.txt", "in/a%20b.txt"]
    for key in keys:
        client.put_object(Bucket=bucket, Key=key, Body=key.encode())
    for key in keys:
        assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()
    listed = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert sorted(listed) == sorted(keys)


def test_ranged_get(s3: EmbeddedS3, bucket: str) -> None:
    client = s3.boto()
    client.put_object(Bucket=bucket, Key="r.bin", Body=bytes(range(100)))
    part = client.get_object(Bucket=bucket, Key="r.bin", Range="bytes=10-19")
    assert part["Body"].read() == bytes(range(10, 20))
    assert part["ContentRange"] == "bytes 10-19/100"
    tail = client.get_object(Bucket=bucket, Key="r.bin", Range="bytes=-5")
    assert tail["Body"].read() == bytes(range(95, 100))
    with pytest.raises(ClientError) as bad:
        client.get_object(Bucket=bucket, Key="r.bin", Range="bytes=200-300")
    assert bad.value.response["Error"]["Code"] == "InvalidRange"


def test_copy_object(s3: EmbeddedS3, bucket: str) -> None:
    client = s3.boto()
    client.put_object(Bucket=bucket, Key="src.txt", Body=b"copy me", Metadata={"a": "1"})
    client.copy_object(
        Bucket=bucket, Key="dst.txt", CopySource={"Bucket": bucket, "Key": "src.txt"}
    )
    copied = client.get_object(Bucket=bucket, Key="dst.txt")
    assert copied["Body"].read() == b"copy me"
    assert copied["Metadata"] == {"a": "1"}


def test_list_objects_v2_prefix_delimiter_pagination(s3: EmbeddedS3, bucket: str) -> None:
    client = s3.boto()
    keys = [f"in/{i:03d}.txt" for i in range(25)] + ["in/sub/a.txt", "in/sub/b.txt", "out/x"]
    for key in keys:
        client.put_object(Bucket=bucket, Key=key, Body=b"x")
    page = client.list_objects_v2(Bucket=bucket, Prefix="in/", Delimiter="/")
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["in/sub/"]
    assert len(page["Contents"]) == 25
    seen: list[str] = []
    prefixes: list[str] = []
    paginator = client.get_paginator("list_objects_v2")
    for result in paginator.paginate(
        Bucket=bucket, Prefix="in/", Delimiter="/", PaginationConfig={"PageSize": 7}
    ):
        seen += [o["Key"] for o in result.get("Contents", [])]
        prefixes += [p["Prefix"] for p in result.get("CommonPrefixes", [])]
        assert result["KeyCount"] <= 7
    assert seen == sorted(k for k in keys if k.startswith("in/") and "sub" not in k)
    assert prefixes == ["in/sub/"]
    everything = [
        o["Key"]
        for r in paginator.paginate(Bucket=bucket, PaginationConfig={"PageSize": 4})
        for o in r.get("Contents", [])
    ]
    assert everything == sorted(keys)
    after = client.list_objects_v2(Bucket=bucket, StartAfter="in/020.txt", MaxKeys=3)
    assert [o["Key"] for o in after["Contents"]] == ["in/021.txt", "in/022.txt", "in/023.txt"]


def test_list_objects_v1_markers(s3: EmbeddedS3, bucket: str) -> None:
    client = s3.boto()
    for i in range(5):
        client.put_object(Bucket=bucket, Key=f"k{i}", Body=b"x")
    first = client.list_objects(Bucket=bucket, MaxKeys=2)
    assert [o["Key"] for o in first["Contents"]] == ["k0", "k1"] and first["IsTruncated"]
    rest = client.list_objects(Bucket=bucket, Marker="k1")
    assert [o["Key"] for o in rest["Contents"]] == ["k2", "k3", "k4"]


def test_multipart_upload_with_boto3_transfer(s3: EmbeddedS3, bucket: str, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(bytes(range(256)) * (24 * 1024 * 4))  # 24 MiB
    client = s3.boto()
    from boto3.s3.transfer import TransferConfig

    transfer = TransferConfig(
        multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024
    )
    client.upload_file(str(source), bucket, "big.bin", Config=transfer)
    head = client.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == source.stat().st_size
    assert head["ETag"].strip('"').endswith("-5")
    target = tmp_path / "back.bin"
    client.download_file(bucket, "big.bin", str(target), Config=transfer)
    assert target.read_bytes() == source.read_bytes()


def test_multipart_abort_and_bad_part(s3: EmbeddedS3, bucket: str) -> None:
    client = s3.boto()
    upload = client.create_multipart_upload(Bucket=bucket, Key="m.bin")["UploadId"]
    part = client.upload_part(Bucket=bucket, Key="m.bin", UploadId=upload, PartNumber=1, Body=b"a")
    with pytest.raises(ClientError) as bad:
        client.complete_multipart_upload(
            Bucket=bucket,
            Key="m.bin",
            UploadId=upload,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"0000"'}]},
        )
    assert bad.value.response["Error"]["Code"] == "InvalidPart"
    assert [
        p["PartNumber"]
        for p in client.list_parts(Bucket=bucket, Key="m.bin", UploadId=upload)["Parts"]
    ] == [1]
    client.abort_multipart_upload(Bucket=bucket, Key="m.bin", UploadId=upload)
    with pytest.raises(ClientError) as gone:
        client.upload_part(Bucket=bucket, Key="m.bin", UploadId=upload, PartNumber=2, Body=b"b")
    assert gone.value.response["Error"]["Code"] == "NoSuchUpload"
    assert part["ETag"]


def test_delete_objects(s3: EmbeddedS3, bucket: str) -> None:
    client = s3.boto()
    for key in ("a", "b", "c"):
        client.put_object(Bucket=bucket, Key=key, Body=b"x")
    result = client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a"}, {"Key": "b"}]})
    assert sorted(d["Key"] for d in result["Deleted"]) == ["a", "b"]
    assert [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]] == ["c"]


def test_presigned_urls(s3: EmbeddedS3, bucket: str) -> None:
    client = s3.boto()
    put_url = client.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "p.txt"}, ExpiresIn=60
    )
    assert httpx.put(put_url, content=b"presigned body").status_code == 200
    get_url = client.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "p.txt"}, ExpiresIn=60
    )
    assert httpx.get(get_url).content == b"presigned body"
    tampered = get_url.replace("p.txt", "q.txt")
    assert httpx.get(tampered).status_code == 403


def test_expired_presigned_url_is_rejected(s3: EmbeddedS3, bucket: str) -> None:
    client = s3.boto()
    client.put_object(Bucket=bucket, Key="e.txt", Body=b"x")
    url = client.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "e.txt"}, ExpiresIn=1
    )
    deadline = time.monotonic() + 10
    while (response := httpx.get(url)).status_code == 200:
        assert time.monotonic() < deadline, "presigned URL never expired"
        time.sleep(0.2)
    assert response.status_code == 403
    assert b"expired" in response.content


def test_bad_signature_and_unknown_key_are_rejected(s3: EmbeddedS3, bucket: str) -> None:
    with pytest.raises(ClientError) as wrong_secret:
        s3.boto(secret="not-the-secret").list_objects_v2(Bucket=bucket)
    assert wrong_secret.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    stranger = boto3.client(
        "s3",
        endpoint_url=s3.endpoint,
        aws_access_key_id="nobody",
        aws_secret_access_key="x",
        region_name="us-east-1",
    )
    with pytest.raises(ClientError) as unknown:
        stranger.list_buckets()
    assert unknown.value.response["Error"]["Code"] == "InvalidAccessKeyId"
    assert httpx.get(f"{s3.endpoint}/{bucket}").status_code == 403  # anonymous


def test_traversal_keys_are_rejected(s3: EmbeddedS3, bucket: str) -> None:
    client = s3.boto()
    for key in ("../escape.txt", "a/../../b.txt", "a/./b"):
        with pytest.raises(ClientError) as error:
            client.put_object(Bucket=bucket, Key=key, Body=b"x")
        assert error.value.response["Error"]["Code"] == "InvalidArgument", key
    # Nothing reached the disk outside the store.
    assert not (s3.store.root.parent / "escape.txt").exists()


def test_body_hash_mismatch_is_rejected(s3: EmbeddedS3, bucket: str) -> None:
    client = s3.boto()

    def corrupt(request: Any, **_: Any) -> None:
        request.body = b"tampered body"

    client.meta.events.register_last("before-send.s3.PutObject", corrupt)
    with pytest.raises(ClientError):
        client.put_object(Bucket=bucket, Key="h.txt", Body=b"original body")
    with pytest.raises(ClientError):
        s3.boto().head_object(Bucket=bucket, Key="h.txt")


def test_minio_sdk_conformance(s3: EmbeddedS3) -> None:
    client = s3.minio()
    name = f"mc-{uuid.uuid4().hex[:8]}"
    client.make_bucket(name)
    assert client.bucket_exists(name)
    client.put_object(name, "in/a.txt", io.BytesIO(b"from minio"), length=10)
    data = bytes(range(256)) * 4096 * 6  # 6 MiB, multipart with part_size 5 MiB
    client.put_object(
        name, "in/big.bin", io.BytesIO(data), length=len(data), part_size=5 * 1024 * 1024
    )
    assert client.get_object(name, "in/big.bin").read() == data
    assert client.get_object(name, "in/a.txt", offset=5, length=5).read() == b"minio"
    assert sorted(o.object_name for o in client.list_objects(name, prefix="in/")) == [
        "in/a.txt",
        "in/big.bin",
    ]
    stat = client.stat_object(name, "in/a.txt")
    assert stat.size == 10
    url = client.presigned_get_object(name, "in/a.txt")
    assert httpx.get(url).content == b"from minio"
    client.remove_object(name, "in/a.txt")
    with pytest.raises(S3Error) as missing:
        client.stat_object(name, "in/a.txt")
    assert missing.value.code == "NoSuchKey"


def test_cors_preflight_and_headers(s3: EmbeddedS3, bucket: str) -> None:
    preflight = httpx.options(
        f"{s3.endpoint}/{bucket}/upload.txt",
        headers={
            "Origin": "http://dashboard.example",
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "content-type,x-amz-date",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "PUT" in preflight.headers["access-control-allow-methods"]
    url = s3.boto().generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "none"})
    answer = httpx.get(url, headers={"Origin": "http://dashboard.example"})
    assert answer.headers["access-control-allow-origin"] == "*"


def test_object_created_events(s3: EmbeddedS3, bucket: str) -> None:
    client = s3.boto()
    client.put_object(Bucket=bucket, Key="in/e1.txt", Body=b"x")
    client.copy_object(
        Bucket=bucket, Key="in/e2.txt", CopySource={"Bucket": bucket, "Key": "in/e1.txt"}
    )
    mine = [e for e in s3.events if e[1].startswith(f"{bucket}/")]
    assert mine == [
        ("s3:ObjectCreated:Put", f"{bucket}/in/e1.txt", ACCESS),
        ("s3:ObjectCreated:Copy", f"{bucket}/in/e2.txt", ACCESS),
    ]


def test_data_survives_reopen(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path / "s")
    store.create_bucket("keep")
    blob, size, md5, _ = store.write_blob(iter([b"durable"]))
    store.commit_object("keep", "k", blob, size, md5, "text/plain", {})
    store.close()
    again = ObjectStore(tmp_path / "s")
    info = again.head("keep", "k")
    with again.open_blob(info) as handle:
        assert handle.read() == b"durable"
    again.close()
