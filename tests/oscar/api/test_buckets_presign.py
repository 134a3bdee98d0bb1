"""`/system/buckets` and `POST /system/buckets/{b}/presign`, one suite on every default store.

Each test runs against a real `oscar serve` over the embedded store and over a real MinIO
(`OSCAR_STORAGE=minio`, marker `minio`). Before this change the routes answered 501 on MinIO
and the presign route did not exist (404). Presigned URLs are used with plain httpx, as a
browser or `curl` would.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from oscar.storage.presign import presign_url
from tests.fixtures.server import RunningServer, free_port, start_server
from tests.fixtures.services import minimal_service, unique_name
from tests.services import minio as minio_service

EVENTS_TOKEN = "buckets-presign-events-token"


@dataclass(frozen=True)
class Store:
    """A running control plane over one default store; `minio` is None on the embedded one."""

    kind: str
    server: RunningServer
    minio: minio_service.MinioServer | None

    def api(self, **kwargs: Any) -> httpx.Client:
        return self.server.client(**kwargs)

    def s3(self) -> Any:
        return self.server.s3(signature_version="s3v4")

    def provider(self) -> dict[str, Any]:
        return self.api().get("/system/config").json()["minio_provider"]


@pytest.fixture(scope="module", params=["embedded", pytest.param("minio", marks=pytest.mark.minio)])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    root: Path = tmp_path_factory.mktemp(f"buckets-{request.param}")
    if request.param == "embedded":
        server = start_server(root / "data")
        yield Store("embedded", server, None)
        server.stop()
        return
    oscar_port = free_port()
    webhook = minio_service.oscar_webhook_env(oscar_port, EVENTS_TOKEN, root / "queue")
    with minio_service.running(root / "minio", extra_env=webhook) as minio:
        env = minio_service.oscar_storage_env(minio, EVENTS_TOKEN)
        server = start_server(root / "data", port=oscar_port, extra_env=env)
        yield Store("minio", server, minio)
        server.stop()


@pytest.fixture
def bucket(store: Store) -> Iterator[str]:
    """A fresh bucket made through the API; emptied and deleted afterwards."""
    name = unique_name("bkt")
    assert store.api().post("/system/buckets", json={"bucket_name": name}).status_code == 201
    yield name
    s3 = store.s3()
    for item in s3.list_objects_v2(Bucket=name).get("Contents", []):
        s3.delete_object(Bucket=name, Key=item["Key"])
    store.api().delete(f"/system/buckets/{name}")


def _presign(store: Store, bucket: str, **body: Any) -> httpx.Response:
    return store.api().post(f"/system/buckets/{bucket}/presign", json=body)


# --- buckets -------------------------------------------------------------------------------


def test_created_bucket_is_listed_with_upstream_fields(store: Store, bucket: str) -> None:
    listed = {b["bucket_name"]: b for b in store.api().get("/system/buckets").json()}
    assert listed[bucket] == {
        "bucket_name": bucket,
        "owner": "cluster_admin",
        "visibility": "private",
        "allowed_users": [],
        "metadata": {"owner_name": "oscar"},
    }
    assert store.s3().head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_creating_an_existing_or_invalid_bucket_is_refused(store: Store, bucket: str) -> None:
    api = store.api()
    assert api.post("/system/buckets", json={"bucket_name": bucket}).status_code == 409
    answer = api.post("/system/buckets", json={"bucket_name": "Not_Valid"})
    assert answer.status_code == 400
    assert "Not_Valid" in answer.json()["detail"]
    assert api.post("/system/buckets", json={}).status_code == 400


def test_service_buckets_carry_from_service(store: Store) -> None:
    api = store.api()
    name = unique_name("svc")
    service = minimal_service(
        name, input=[{"storage_provider": "minio.default", "path": f"{name}/in"}]
    )
    assert api.post("/system/services", json=service).status_code == 201
    try:
        listed = {b["bucket_name"]: b for b in api.get("/system/buckets").json()}
        assert listed[name]["metadata"] == {"from_service": name, "owner_name": "oscar"}
        detail = api.get(f"/system/buckets/{name}").json()
        assert detail["metadata"]["from_service"] == name
        assert "in/" in {o["object_name"] for o in detail["objects"]}
    finally:
        api.delete(f"/system/services/{name}")


def test_visibility_update_is_enforced_by_the_store(store: Store, bucket: str) -> None:
    api = store.api()
    store.s3().put_object(Bucket=bucket, Key="doc.txt", Body=b"hello")
    anonymous = f"{store.provider()['endpoint']}/{bucket}/doc.txt"
    assert httpx.get(anonymous).status_code == 403

    body = {"bucket_name": bucket, "visibility": "public"}
    assert api.put("/system/buckets", json=body).status_code == 204
    assert api.get(f"/system/buckets/{bucket}").json()["visibility"] == "public"
    assert httpx.get(anonymous).content == b"hello"

    body["visibility"] = "private"
    assert api.put("/system/buckets", json=body).status_code == 204
    described = api.get(f"/system/buckets/{bucket}").json()
    assert (described["visibility"], described["owner"]) == ("private", "cluster_admin")
    assert httpx.get(anonymous).status_code == 403


def test_restricted_bucket_lists_its_users(store: Store, bucket: str) -> None:
    user = f"user-{uuid.uuid4().hex[:8]}"
    if store.minio is not None:  # MinIO lists the users its policy is attached to: real ones
        store.minio.admin().user_add(user, "user-secret-" + uuid.uuid4().hex)
    api = store.api()
    body = {"bucket_name": bucket, "visibility": "restricted", "allowed_users": [user]}
    assert api.put("/system/buckets", json=body).status_code == 204
    described = api.get(f"/system/buckets/{bucket}").json()
    assert (described["visibility"], described["allowed_users"]) == ("restricted", [user])

    body = {"bucket_name": bucket, "visibility": "private"}
    assert api.put("/system/buckets", json=body).status_code == 204
    described = api.get(f"/system/buckets/{bucket}").json()
    assert (described["visibility"], described["allowed_users"]) == ("private", [])


def test_updating_an_unknown_bucket_is_404(store: Store) -> None:
    body = {"bucket_name": unique_name("nobkt"), "visibility": "public"}
    assert store.api().put("/system/buckets", json=body).status_code == 404


def test_objects_are_listed_in_pages(store: Store, bucket: str) -> None:
    s3 = store.s3()
    for key in ("a/1.txt", "a/2.txt", "b/3.txt"):
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    api = store.api()
    first = api.get(f"/system/buckets/{bucket}", params={"limit": 2}).json()
    assert [o["object_name"] for o in first["objects"]] == ["a/1.txt", "a/2.txt"]
    assert first["is_truncated"] is True and first["next_page"]
    assert first["returned_items"] == 2
    assert first["objects"][0]["size_bytes"] == 7
    assert first["objects"][0]["last_modified"].endswith("Z")
    rest = api.get(f"/system/buckets/{bucket}", params={"limit": 2, "page": first["next_page"]})
    assert [o["object_name"] for o in rest.json()["objects"]] == ["b/3.txt"]
    assert (rest.json()["is_truncated"], rest.json()["next_page"]) == (False, "")
    only_a = api.get(f"/system/buckets/{bucket}", params={"prefix": "a/"}).json()
    assert [o["object_name"] for o in only_a["objects"]] == ["a/1.txt", "a/2.txt"]


def test_delete_refuses_a_non_empty_bucket_then_deletes(store: Store) -> None:
    api = store.api()
    name = unique_name("del")
    assert api.post("/system/buckets", json={"bucket_name": name}).status_code == 201
    store.s3().put_object(Bucket=name, Key="x", Body=b"x")
    assert api.delete(f"/system/buckets/{name}").status_code == 409
    store.s3().delete_object(Bucket=name, Key="x")
    assert api.delete(f"/system/buckets/{name}").status_code == 204
    assert api.get(f"/system/buckets/{name}").status_code == 404
    assert api.delete(f"/system/buckets/{name}").status_code == 404
    assert name not in {b["bucket_name"] for b in api.get("/system/buckets").json()}


@pytest.mark.parametrize("name", ["no-such-bucket-here", "Invalid_Name", "ab"])
def test_unknown_buckets_are_404(store: Store, name: str) -> None:
    api = store.api()
    assert api.get(f"/system/buckets/{name}").status_code == 404
    assert api.delete(f"/system/buckets/{name}").status_code == 404
    answer = _presign(store, name, object_key="k", operation="download")
    assert answer.status_code == 404
    assert name in answer.json()["detail"]


# --- presign -------------------------------------------------------------------------------


def test_presigned_upload_then_download_round_trip(store: Store, bucket: str) -> None:
    data = b"presigned bytes \x00\xff" * 100
    answer = _presign(
        store, bucket, object_key="in/report v1.bin", operation="upload", expires_in=120
    )
    assert answer.status_code == 200, answer.text
    upload = answer.json()
    assert set(upload) == {"object_key", "operation", "method", "url", "expires_at"}
    assert (upload["object_key"], upload["operation"], upload["method"]) == (
        "in/report v1.bin",
        "upload",
        "PUT",
    )
    assert upload["url"].startswith(f"{store.provider()['endpoint']}/{bucket}/in/report%20v1.bin?")
    expires_at = datetime.fromisoformat(upload["expires_at"].replace("Z", "+00:00"))
    assert abs(expires_at - (datetime.now(UTC) + timedelta(seconds=120))) < timedelta(seconds=30)
    assert parse_qs(urlsplit(upload["url"]).query)["X-Amz-Expires"] == ["120"]

    assert httpx.put(upload["url"], content=data).status_code == 200
    stored = store.s3().get_object(Bucket=bucket, Key="in/report v1.bin")["Body"].read()
    assert stored == data

    download = _presign(store, bucket, object_key="in/report v1.bin", operation="Download")
    assert download.status_code == 200, download.text
    assert download.json()["method"] == "GET"
    assert download.json()["operation"] == "download"
    fetched = httpx.get(download.json()["url"])
    assert fetched.status_code == 200
    assert fetched.content == data


def test_presigned_upload_signs_content_type_and_extra_headers(store: Store, bucket: str) -> None:
    answer = _presign(
        store,
        bucket,
        object_key="page.html",
        operation="upload",
        content_type="text/html",
        extra_headers={"x-amz-meta-origin": "dashboard"},
    )
    assert answer.status_code == 200, answer.text
    signed = answer.json()
    assert signed["headers"] == {"Content-Type": "text/html", "X-Amz-Meta-Origin": "dashboard"}
    # Without the signed headers (MinIO: 400, embedded: 403), or with other values, the store
    # refuses the upload.
    assert httpx.put(signed["url"], content=b"<p>").status_code in (400, 403)
    wrong = {**signed["headers"], "Content-Type": "text/plain"}
    assert httpx.put(signed["url"], content=b"<p>", headers=wrong).status_code == 403
    assert httpx.put(signed["url"], content=b"<p>", headers=signed["headers"]).status_code == 200
    head = store.s3().head_object(Bucket=bucket, Key="page.html")
    assert head["ContentType"] == "text/html"
    assert head["Metadata"] == {"origin": "dashboard"}


def test_tampered_presigned_urls_are_refused(store: Store, bucket: str) -> None:
    store.s3().put_object(Bucket=bucket, Key="secret.txt", Body=b"secret")
    store.s3().put_object(Bucket=bucket, Key="other.txt", Body=b"other")
    download = _presign(store, bucket, object_key="secret.txt", operation="download").json()
    url = download["url"]
    assert httpx.get(url).content == b"secret"

    signature = parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    assert httpx.get(url.replace(signature, flipped)).status_code == 403
    assert httpx.get(url.replace("/secret.txt?", "/other.txt?")).status_code == 403
    longer = url.replace("X-Amz-Expires=900", "X-Amz-Expires=3600")
    assert longer != url and httpx.get(longer).status_code == 403
    # A download URL does not upload, and an upload URL does not download.
    assert httpx.put(url, content=b"overwrite").status_code == 403
    upload = _presign(store, bucket, object_key="secret.txt", operation="upload").json()
    assert httpx.get(upload["url"]).status_code == 403
    assert store.s3().get_object(Bucket=bucket, Key="secret.txt")["Body"].read() == b"secret"


def test_presigned_delete_removes_only_its_object(store: Store, bucket: str) -> None:
    """The dashboard deletes files with these URLs; a delete URL does nothing else."""
    s3 = store.s3()
    s3.put_object(Bucket=bucket, Key="in/gone.txt", Body=b"gone")
    s3.put_object(Bucket=bucket, Key="in/kept.txt", Body=b"kept")
    answer = _presign(store, bucket, object_key="in/gone.txt", operation="Delete")
    assert answer.status_code == 200, answer.text
    signed = answer.json()
    assert (signed["operation"], signed["method"]) == ("delete", "DELETE")
    assert "headers" not in signed
    # Used with another method, or on another key, the delete URL is refused.
    assert httpx.get(signed["url"]).status_code == 403
    assert httpx.put(signed["url"], content=b"x").status_code == 403
    other = signed["url"].replace("/in/gone.txt?", "/in/kept.txt?")
    assert httpx.delete(other).status_code == 403
    # A download URL does not delete.
    download = _presign(store, bucket, object_key="in/kept.txt", operation="download").json()
    assert httpx.delete(download["url"]).status_code == 403

    assert httpx.delete(signed["url"]).status_code == 204
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == ["in/kept.txt"]


def test_expired_presigned_urls_are_refused(store: Store, bucket: str) -> None:
    """Signed with the store's keys an hour ago for one minute (no waiting for a clock)."""
    store.s3().put_object(Bucket=bucket, Key="old.txt", Body=b"old")
    provider = store.provider()

    def signed(method: str, issued: datetime) -> str:
        return presign_url(
            endpoint=provider["endpoint"],
            region=provider["region"],
            access_key=provider["access_key"],
            secret_key=provider["secret_key"],
            method=method,
            bucket=bucket,
            key="old.txt",
            expires_in=60,
            now=issued,
        )

    now = datetime.now(UTC)
    assert httpx.get(signed("GET", now)).content == b"old"  # the same URL, still valid
    assert httpx.get(signed("GET", now - timedelta(hours=1))).status_code == 403
    assert httpx.put(signed("PUT", now - timedelta(hours=1)), content=b"new").status_code == 403
    assert httpx.delete(signed("DELETE", now - timedelta(hours=1))).status_code == 403
    assert store.s3().get_object(Bucket=bucket, Key="old.txt")["Body"].read() == b"old"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"operation": "upload"}, "object_key"),
        ({"object_key": "", "operation": "upload"}, "object_key"),
        ({"object_key": "../etc/passwd", "operation": "download"}, "object_key"),
        ({"object_key": "a/../../b", "operation": "download"}, "object_key"),
        ({"object_key": "/absolute", "operation": "upload"}, "object_key"),
        ({"object_key": "a//b", "operation": "upload"}, "object_key"),
        ({"object_key": "dir/", "operation": "upload"}, "object_key"),
        ({"object_key": "./x", "operation": "upload"}, "object_key"),
        ({"object_key": "nul\x00key", "operation": "upload"}, "object_key"),
        ({"object_key": "k" * 1025, "operation": "upload"}, "object_key"),
        ({"object_key": "k"}, "operation"),
        ({"object_key": "k", "operation": "remove"}, "operation"),
        ({"object_key": "k", "operation": "delete", "content_type": "text/plain"}, "content_type"),
        ({"object_key": "k", "operation": "upload", "expires_in": -1}, "expires_in"),
        ({"object_key": "k", "operation": "upload", "expires_in": 604801}, "expires_in"),
        ({"object_key": "k", "operation": "upload", "expires_in": "soon"}, "expires_in"),
        ({"object_key": "k", "operation": "upload", "content_type": "a\r\nb"}, "content_type"),
        (
            {"object_key": "k", "operation": "upload", "extra_headers": {"Host": "x"}},
            "extra_headers",
        ),
        (
            {"object_key": "k", "operation": "upload", "extra_headers": {"X-Amz-Date": "1"}},
            "extra_headers",
        ),
        (
            {"object_key": "k", "operation": "upload", "extra_headers": {"bad name": "1"}},
            "extra_headers",
        ),
    ],
)
def test_invalid_presign_requests_are_400_naming_the_field(
    store: Store, bucket: str, body: dict[str, Any], field: str
) -> None:
    answer = _presign(store, bucket, **body)
    assert answer.status_code == 400, answer.text
    fields = [error["field"] for error in answer.json()["errors"]]
    assert any(f.split(".")[1:2] == [field] for f in fields), fields


def test_presign_needs_the_admin(store: Store, bucket: str) -> None:
    body = {"object_key": "k", "operation": "upload"}
    path = f"/system/buckets/{bucket}/presign"
    assert store.api(auth=False).post(path, json=body).status_code == 401
    with httpx.Client(base_url=store.server.url, auth=(store.server.username, "wrong")) as client:
        assert client.post(path, json=body).status_code == 401
