"""Jobs' store keys reach only their service's data, on every default store (audit H1, L10, L11).

One suite, run against the embedded store and against a real MinIO (`OSCAR_STORAGE=minio`),
both behind a real `oscar serve`. On main before the fix every job held the store's admin keys,
so a script could read any bucket; these keys did not exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from oscar.storage.scoped import service_keys
from tests.fixtures.server import RunningServer, free_port
from tests.fixtures.services import minimal_service, unique_name
from tests.services import minio as minio_service

EVENTS_TOKEN = "scoped-keys-events-token"


@pytest.fixture(scope="module", params=["embedded", pytest.param("minio", marks=pytest.mark.minio)])
def store_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """A real `oscar serve` over the embedded store, or over a real MinIO."""
    from tests.fixtures.server import start_server

    root = tmp_path_factory.mktemp(f"scoped-{request.param}")
    if request.param == "embedded":
        server = start_server(root / "data")
        yield server
        server.stop()
        return
    oscar_port = free_port()
    webhook = minio_service.oscar_webhook_env(oscar_port, EVENTS_TOKEN, root / "queue")
    with minio_service.running(root / "minio", extra_env=webhook) as minio:
        env = minio_service.oscar_storage_env(minio, EVENTS_TOKEN)
        server = start_server(root / "data", port=oscar_port, extra_env=env)
        yield server
        server.stop()


@pytest.fixture
def world(store_server: RunningServer) -> Iterator[dict[str, Any]]:
    """Service `svc` (input <svc>/in, output <out>/res), a foreign bucket, and clients."""
    api = store_server.client()
    provider = api.get("/system/config").json()["minio_provider"]
    name, out, foreign = unique_name("svc"), unique_name("out"), unique_name("foreign")
    definition = minimal_service(
        name,
        input=[{"storage_provider": "minio.default", "path": f"{name}/in"}],
        output=[{"storage_provider": "minio.default", "path": f"{out}/res"}],
    )
    assert api.post("/system/services", json=definition).status_code == 201, definition
    admin = store_server.s3()
    admin.create_bucket(Bucket=foreign)
    admin.put_object(Bucket=foreign, Key="secret.txt", Body=b"top secret")
    admin.put_object(Bucket=name, Key="in/data.txt", Body=b"input data")
    admin.put_object(Bucket=name, Key="private/other.txt", Body=b"not an input")
    access, secret = service_keys(provider["secret_key"], name)

    def job_client() -> Any:
        return store_server.s3(keys=(access, secret))

    yield {
        "api": api,
        "name": name,
        "out": out,
        "foreign": foreign,
        "admin": admin,
        "job": job_client,
        "server": store_server,
    }
    api.delete(f"/system/services/{name}")
    _remove_bucket(admin, foreign)


def _remove_bucket(admin: Any, bucket: str) -> None:
    for item in admin.list_objects_v2(Bucket=bucket).get("Contents", []):
        admin.delete_object(Bucket=bucket, Key=item["Key"])
    admin.delete_bucket(Bucket=bucket)


def _denied(call: Callable[[], object]) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"]


def test_a_job_key_reads_its_inputs_and_writes_its_outputs(world: dict[str, Any]) -> None:
    job = world["job"]()
    assert job.get_object(Bucket=world["name"], Key="in/data.txt")["Body"].read() == b"input data"
    listed = job.list_objects_v2(Bucket=world["name"], Prefix="in/")
    assert "in/data.txt" in {item["Key"] for item in listed.get("Contents", [])}
    job.put_object(Bucket=world["out"], Key="res/result.txt", Body=b"result")
    got = world["admin"].get_object(Bucket=world["out"], Key="res/result.txt")["Body"].read()
    assert got == b"result"


def test_a_job_key_reaches_nothing_else(world: dict[str, Any]) -> None:
    job, name, foreign = world["job"](), world["name"], world["foreign"]
    assert _denied(lambda: job.get_object(Bucket=foreign, Key="secret.txt")) == "AccessDenied"
    assert _denied(lambda: job.get_object(Bucket=name, Key="private/other.txt")) == "AccessDenied"
    assert _denied(lambda: job.list_objects_v2(Bucket=foreign)) == "AccessDenied"
    assert _denied(lambda: job.list_objects_v2(Bucket=name, Prefix="")) == "AccessDenied"
    assert _denied(lambda: job.put_object(Bucket=foreign, Key="x", Body=b"x")) == "AccessDenied"
    assert _denied(lambda: job.put_object(Bucket=name, Key="in/y", Body=b"y")) == "AccessDenied"
    assert _denied(lambda: job.delete_object(Bucket=name, Key="in/data.txt")) == "AccessDenied"
    assert _denied(lambda: job.delete_bucket(Bucket=foreign)) == "AccessDenied"
    assert _denied(lambda: job.create_bucket(Bucket=unique_name("new"))) == "AccessDenied"
    try:  # the embedded store refuses; MinIO answers with the buckets the key can reach
        visible = {bucket["Name"] for bucket in job.list_buckets()["Buckets"]}
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "AccessDenied"
    else:
        assert foreign not in visible
    copy = {"Bucket": world["out"], "Key": "res/stolen.txt"}
    source = {"Bucket": foreign, "Key": "secret.txt"}
    assert _denied(lambda: job.copy_object(CopySource=source, **copy)) == "AccessDenied"
    # Everything is still there for the admin.
    admin = world["admin"]
    assert admin.get_object(Bucket=name, Key="in/data.txt")["Body"].read() == b"input data"
    assert admin.get_object(Bucket=foreign, Key="secret.txt")["Body"].read() == b"top secret"


def test_a_deleted_services_key_stops_working(world: dict[str, Any]) -> None:
    job = world["job"]()
    assert job.get_object(Bucket=world["name"], Key="in/data.txt")["Body"].read()
    assert world["api"].delete(f"/system/services/{world['name']}").status_code == 204
    code = _denied(lambda: job.head_bucket(Bucket=world["out"]))
    assert code in {"403", "InvalidAccessKeyId", "AccessDenied"}


def test_a_key_derived_from_another_secret_is_refused(world: dict[str, Any]) -> None:
    access, secret = service_keys("not-the-admin-secret", world["name"])
    forged = world["server"].s3(keys=(access, secret))
    code = _denied(lambda: forged.get_object(Bucket=world["name"], Key="in/data.txt"))
    assert code in {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"}


def test_deleting_a_service_keeps_buckets_it_only_used(store_server: RunningServer) -> None:
    # Audit L11: the service deleted `keepme`, made beforehand, with its objects.
    api, admin = store_server.client(), store_server.s3()
    kept, name = unique_name("keepme"), unique_name("borrow")
    admin.create_bucket(Bucket=kept)  # made beforehand, straight through S3
    admin.put_object(Bucket=kept, Key="important/report.pdf", Body=b"%PDF")
    definition = minimal_service(
        name,
        output=[{"storage_provider": "minio.default", "path": f"{kept}/out"}],
        input=[{"storage_provider": "minio.default", "path": f"{name}/in"}],
    )
    assert api.post("/system/services", json=definition).status_code == 201
    assert api.delete(f"/system/services/{name}").status_code == 204
    body = admin.get_object(Bucket=kept, Key="important/report.pdf")["Body"].read()
    assert body == b"%PDF"
    own = {b["Name"] for b in admin.list_buckets()["Buckets"]}
    assert name not in own  # the bucket made for the service went with it
    _remove_bucket(admin, kept)


def test_public_buckets_are_readable_anonymously_and_private_ones_not(
    store_server: RunningServer,
) -> None:
    # Audit L10: `public` was recorded as private and anonymous reads got 403.
    api, admin = store_server.client(), store_server.s3()
    endpoint = api.get("/system/config").json()["minio_provider"]["endpoint"]
    public, private = unique_name("pub"), unique_name("priv")
    for name, visibility in ((public, "public"), (private, "private")):
        definition = minimal_service(
            name,
            visibility=visibility,
            output=[{"storage_provider": "minio.default", "path": f"{name}/out"}],
        )
        assert api.post("/system/services", json=definition).status_code == 201
        admin.put_object(Bucket=name, Key="out/file.txt", Body=b"published")
    try:
        anonymous = httpx.get(f"{endpoint}/{public}/out/file.txt", timeout=10)
        assert anonymous.status_code == 200
        assert anonymous.content == b"published"
        listing = httpx.get(f"{endpoint}/{public}?list-type=2&prefix=out/", timeout=10)
        assert listing.status_code == 200 and "out/file.txt" in listing.text
        assert httpx.get(f"{endpoint}/{private}/out/file.txt", timeout=10).status_code == 403
        # An update changes it both ways.
        for name, visibility in ((public, "private"), (private, "public")):
            definition = minimal_service(
                name,
                visibility=visibility,
                output=[{"storage_provider": "minio.default", "path": f"{name}/out"}],
            )
            assert api.put("/system/services", json=definition).status_code == 204
        assert httpx.get(f"{endpoint}/{public}/out/file.txt", timeout=10).status_code == 403
        assert httpx.get(f"{endpoint}/{private}/out/file.txt", timeout=10).status_code == 200
    finally:
        for name in (public, private):
            api.delete(f"/system/services/{name}")


def test_anonymous_writes_are_refused_on_the_embedded_store(tmp_path: Path) -> None:
    """`public` on the embedded store means anonymous read and list, never write or delete."""
    from tests.fixtures.server import start_server

    server = start_server(tmp_path / "data")
    try:
        api = server.client()
        name = unique_name("pubw")
        definition = minimal_service(
            name,
            visibility="public",
            output=[{"storage_provider": "minio.default", "path": f"{name}/out"}],
        )
        assert api.post("/system/services", json=definition).status_code == 201
        url = f"{server.s3_endpoint}/{name}/out/{uuid.uuid4().hex}.txt"
        assert httpx.put(url, content=b"spam", timeout=10).status_code == 403
        assert httpx.delete(f"{server.s3_endpoint}/{name}/out/", timeout=10).status_code == 403
        assert httpx.get(f"{server.s3_endpoint}/", timeout=10).status_code == 403
    finally:
        server.stop()
