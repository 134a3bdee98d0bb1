"""The visibility matrix: an admin and three users (owner, allowed, stranger), times the
three visibilities, times every route and S3 operation, each expectation asserted.

Users are real Keycloak users with tokens Keycloak minted. `owner` creates one service and one
bucket per visibility; `restricted` ones list `allowed`. The expected answers are the rule of
docs/auth.md: admins and owners reach everything, `public` is visible to every user,
`restricted` to the users it lists, `private` to nobody else; only owners change or delete.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.fixtures.oidc import OidcRealm
from tests.fixtures.server import RunningServer
from tests.oscar.auth.conftest import bearer

pytestmark = [pytest.mark.keycloak]

WHO = ("admin", "owner", "allowed", "stranger")
VISIBILITIES = ("private", "restricted", "public")
TOKEN_REUSE_SECONDS = 60.0  # Keycloak's access tokens live 5 minutes


def visible(who: str, visibility: str) -> bool:
    """The rule under test: who sees a service or bucket of `owner` with `visibility`."""
    return (
        who in ("admin", "owner")
        or visibility == "public"
        or (visibility == "restricted" and who == "allowed")
    )


def owns(who: str) -> bool:
    """Who may change, delete and manage `owner`'s things."""
    return who in ("admin", "owner")


@dataclass
class World:
    """What `owner` made, and clients for every principal."""

    server: RunningServer
    realm: OidcRealm
    services: dict[str, str] = field(default_factory=dict)  # visibility -> name
    buckets: dict[str, str] = field(default_factory=dict)  # visibility -> name
    jobs: dict[tuple[str, str], str] = field(default_factory=dict)  # (visibility, who) -> job
    _tokens: dict[str, tuple[float, str]] = field(default_factory=dict)

    def api(self, who: str) -> httpx.Client:
        """A client with a fresh enough token of `who` (`admin` is the realm's admin user,
        an OIDC subject in OSCAR_USERS_ADMIN)."""
        minted, token = self._tokens.get(who, (0.0, ""))
        if time.monotonic() - minted > TOKEN_REUSE_SECONDS:
            token = self.realm.token(who)
            self._tokens[who] = (time.monotonic(), token)
        return bearer(self.server, token)

    def subject(self, who: str) -> str:
        return self.realm.users[who].subject

    def s3(self, who: str) -> Any:
        """A boto3 client with the keys `/system/config` gives `who`."""
        provider = self.api(who).get("/system/config").json()["minio_provider"]
        return boto3.client(
            "s3",
            endpoint_url=provider["endpoint"],
            aws_access_key_id=provider["access_key"],
            aws_secret_access_key=provider["secret_key"],
            region_name=provider["region"],
            config=Config(signature_version="s3v4", retries={"max_attempts": 1}),
        )


def _check(problems: list[str], what: str, got: object, expected: object) -> None:
    if got != expected:
        problems.append(f"{what}: got {got!r}, expected {expected!r}")


@pytest.fixture(scope="module")
def world(oidc_server: RunningServer, oidc_realm: OidcRealm) -> Iterator[World]:
    """`owner`'s services and buckets, one per visibility, each holding an object, and one job
    per service made by `owner` and (where it may) by `allowed`."""
    world = World(oidc_server, oidc_realm)
    tag = uuid.uuid4().hex[:6]
    owner = world.api("owner")
    for visibility in VISIBILITIES:
        shared = {"allowed_users": [world.subject("allowed")]} if visibility == "restricted" else {}
        name = f"vis-{visibility[:4]}-{tag}"
        answer = owner.post(
            "/system/services",
            json={
                "name": name,
                "image": "alpine",
                "script": 'echo "ran on $(cat "$INPUT_FILE_PATH")"',
                "visibility": visibility,
                **shared,
            },
        )
        assert answer.status_code == 201, answer.text
        world.services[visibility] = name
        bucket = f"vis-{visibility[:4]}-{tag}"
        answer = owner.post(
            "/system/buckets",
            json={"bucket_name": bucket, "visibility": visibility, **shared},
        )
        assert answer.status_code == 201, answer.text
        world.buckets[visibility] = bucket
        world.s3("owner").put_object(Bucket=bucket, Key="seed.txt", Body=b"seed")
        for who in ("owner", "allowed"):
            if visible(who, visibility):
                made = world.api(who).post(f"/job/{name}", content=b"event")
                assert made.status_code == 201, made.text
                world.jobs[(visibility, who)] = made.headers["x-oscar-job-name"]
    yield world


@pytest.mark.parametrize("visibility", VISIBILITIES)
@pytest.mark.parametrize("who", WHO)
def test_service_routes(world: World, who: str, visibility: str) -> None:
    api, name, problems = world.api(who), world.services[visibility], []
    may_see, may_manage = visible(who, visibility), owns(who)
    see = 200 if may_see else 403

    listed = {s["name"] for s in api.get("/system/services").json()}
    _check(problems, "GET /system/services lists it", name in listed, may_see)
    read = api.get(f"/system/services/{name}")
    _check(problems, "GET /system/services/{s}", read.status_code, see)
    if may_see:
        _check(problems, "the token is shown", bool(read.json()["token"]), may_manage)
    _check(
        problems,
        "GET …/auth",
        api.get(f"/system/services/{name}/auth").status_code,
        204 if may_see else 403,
    )
    _check(
        problems,
        "GET …/deployment",
        api.get(f"/system/services/{name}/deployment").status_code,
        see,
    )
    manage = 200 if may_manage else 403
    _check(
        problems,
        "GET …/deployment/logs",
        api.get(f"/system/services/{name}/deployment/logs").status_code,
        manage,
    )
    _check(
        problems, "GET /system/metrics/{s}", api.get(f"/system/metrics/{name}").status_code, manage
    )
    _check(
        problems,
        "POST …/stop (not exposed: 400 past the owner check)",
        api.post(f"/system/services/{name}/stop").status_code,
        400 if may_manage else 403,
    )
    definition = world.api("owner").get(f"/system/services/{name}").json()
    _check(
        problems,
        "PUT /system/services",
        api.put("/system/services", json=definition).status_code,
        204 if may_manage else 403,
    )
    if not may_manage:
        _check(
            problems,
            "DELETE /system/services/{s}",
            api.delete(f"/system/services/{name}").status_code,
            403,
        )
    assert not problems, f"{who} on a {visibility} service:\n" + "\n".join(problems)


@pytest.mark.parametrize("visibility", VISIBILITIES)
@pytest.mark.parametrize("who", WHO)
def test_invocation_and_jobs(world: World, who: str, visibility: str) -> None:
    api, name, problems = world.api(who), world.services[visibility], []
    may_see, may_manage = visible(who, visibility), owns(who)

    job = api.post(f"/job/{name}", content=b"matrix")
    _check(problems, "POST /job/{s}", job.status_code, 201 if may_see else 403)
    run = api.post(f"/run/{name}", content=base64.b64encode(b"matrix"))
    _check(problems, "POST /run/{s}", run.status_code, 200 if may_see else 403)
    if may_see and run.status_code == 200:
        _check(problems, "the /run answer", "ran on" in run.text, True)

    listing = api.get(f"/system/logs/{name}")
    _check(problems, "GET /system/logs/{s}", listing.status_code, 200 if may_see else 403)
    owners_job = world.jobs[(visibility, "owner")]
    if listing.status_code == 200:
        names = set(listing.json()["jobs"])
        _check(problems, "the owner's job is listed", owners_job in names, may_manage)
        if may_see and not may_manage:
            mine = job.headers.get("x-oscar-job-name")
            _check(problems, "the caller's own job is listed", mine in names, True)
    log = api.get(f"/system/logs/{name}/{owners_job}")
    _check(
        problems,
        "GET /system/logs/{s}/{owner's job}",
        log.status_code,
        200 if may_manage else 404 if may_see else 403,
    )
    if not may_manage:
        _check(
            problems,
            "DELETE /system/logs/{s}/{owner's job}",
            api.delete(f"/system/logs/{name}/{owners_job}").status_code,
            404 if may_see else 403,
        )
    if may_see and not may_manage and (mine := job.headers.get("x-oscar-job-name")):
        _check(
            problems,
            "DELETE /system/logs/{s}/{own job}",
            api.delete(f"/system/logs/{name}/{mine}").status_code,
            204,
        )
    assert not problems, f"{who} on a {visibility} service:\n" + "\n".join(problems)


@pytest.mark.parametrize("visibility", VISIBILITIES)
@pytest.mark.parametrize("who", WHO)
def test_bucket_routes(world: World, who: str, visibility: str) -> None:
    api, bucket, problems = world.api(who), world.buckets[visibility], []
    may_see, may_manage = visible(who, visibility), owns(who)
    see = 200 if may_see else 403

    listed = {b["bucket_name"] for b in api.get("/system/buckets").json()}
    _check(problems, "GET /system/buckets lists it", bucket in listed, may_see)
    read = api.get(f"/system/buckets/{bucket}")
    _check(problems, "GET /system/buckets/{b}", read.status_code, see)
    if read.status_code == 200:
        _check(problems, "its owner", read.json()["owner"], world.subject("owner"))
        names = [o["object_name"] for o in read.json()["objects"]]
        _check(problems, "its objects", "seed.txt" in names, True)
    for operation in ("download", "upload"):
        presign = api.post(
            f"/system/buckets/{bucket}/presign",
            json={"object_key": "seed.txt", "operation": operation},
        )
        _check(problems, f"presign {operation}", presign.status_code, see)
    current = world.api("owner").get(f"/system/buckets/{bucket}").json()
    update = {k: current[k] for k in ("bucket_name", "visibility", "allowed_users")}
    _check(
        problems,
        "PUT /system/buckets",
        api.put("/system/buckets", json=update).status_code,
        204 if may_manage else 403,
    )
    if not may_manage:
        _check(
            problems,
            "DELETE /system/buckets/{b}",
            api.delete(f"/system/buckets/{bucket}").status_code,
            403,
        )
    assert not problems, f"{who} on a {visibility} bucket:\n" + "\n".join(problems)


def _s3_code(call: Callable[[], object]) -> str:
    try:
        call()
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return "ok"


@pytest.mark.parametrize("visibility", VISIBILITIES)
@pytest.mark.parametrize("who", WHO)
def test_s3_operations_with_the_users_own_keys(world: World, who: str, visibility: str) -> None:
    s3, bucket, problems = world.s3(who), world.buckets[visibility], []
    may_see = visible(who, visibility)
    expected = "ok" if may_see else "AccessDenied"
    key = f"from-{who}.txt"

    names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    _check(problems, "ListBuckets lists it", bucket in names, may_see)
    _check(
        problems,
        "HeadBucket",
        _s3_code(lambda: s3.head_bucket(Bucket=bucket)),
        "ok" if may_see else "403",
    )
    _check(problems, "ListObjectsV2", _s3_code(lambda: s3.list_objects_v2(Bucket=bucket)), expected)
    _check(
        problems,
        "GetObject",
        _s3_code(lambda: s3.get_object(Bucket=bucket, Key="seed.txt")["Body"].read()),
        expected,
    )
    _check(
        problems,
        "PutObject",
        _s3_code(lambda: s3.put_object(Bucket=bucket, Key=key, Body=b"x")),
        expected,
    )
    _check(
        problems,
        "DeleteObject",
        _s3_code(lambda: s3.delete_object(Bucket=bucket, Key=key if may_see else "seed.txt")),
        expected,
    )
    if not owns(who):
        _check(
            problems,
            "DeleteBucket",
            _s3_code(lambda: s3.delete_bucket(Bucket=bucket)),
            "AccessDenied",
        )
    assert not problems, f"{who} on a {visibility} bucket (S3):\n" + "\n".join(problems)


@pytest.mark.parametrize("who", WHO)
def test_cluster_routes(world: World, who: str) -> None:
    api, problems = world.api(who), []
    admin = who == "admin"
    for path in ("/system/info", "/system/status", "/system/config"):
        _check(problems, f"GET {path}", api.get(path).status_code, 200)
    for path in ("/system/logs", "/system/metrics", "/metrics"):
        _check(problems, f"GET {path}", api.get(path).status_code, 200 if admin else 403)
    config = api.get("/system/config").json()
    _check(
        problems,
        "PUT /system/config",
        api.put(
            "/system/config",
            json={"allowed_image_repositories": config["allowed_image_repositories"]},
        ).status_code,
        200 if admin else 403,
    )
    keys = config["minio_provider"]["access_key"]
    admin_keys = world.server.client().get("/system/config").json()["minio_provider"]["access_key"]
    _check(problems, "/system/config gives the admin's store keys", keys == admin_keys, admin)
    assert not problems, f"{who} on cluster routes:\n" + "\n".join(problems)


@pytest.mark.parametrize("who", ("admin", "owner"))
def test_owners_and_admins_delete(world: World, who: str) -> None:
    name = f"vis-del-{who}-{uuid.uuid4().hex[:6]}"
    owner = world.api("owner")
    assert (
        owner.post(
            "/system/services", json={"name": name, "image": "alpine", "script": "true"}
        ).status_code
        == 201
    )
    assert owner.post("/system/buckets", json={"bucket_name": name}).status_code == 201
    api = world.api(who)
    assert api.delete(f"/system/services/{name}").status_code == 204
    assert api.delete(f"/system/buckets/{name}").status_code == 204
    assert owner.get(f"/system/services/{name}").status_code == 404


def test_a_users_service_may_only_use_buckets_that_user_reaches(world: World) -> None:
    stranger = world.api("stranger")
    for visibility, expected in (("private", 403), ("restricted", 403), ("public", 201)):
        name = f"vis-use-{visibility[:4]}-{uuid.uuid4().hex[:6]}"
        answer = stranger.post(
            "/system/services",
            json={
                "name": name,
                "image": "alpine",
                "script": "true",
                "input": [
                    {"storage_provider": "minio.default", "path": f"{world.buckets[visibility]}/in"}
                ],
            },
        )
        assert answer.status_code == expected, (visibility, answer.text)
        if expected == 201:
            assert stranger.delete(f"/system/services/{name}").status_code == 204


def test_an_upload_makes_a_job_of_the_uploader(world: World) -> None:
    name = f"vis-upl-{uuid.uuid4().hex[:6]}"
    owner = world.api("owner")
    created = owner.post(
        "/system/services",
        json={
            "name": name,
            "image": "alpine",
            "script": "true",
            "visibility": "public",
            "input": [{"storage_provider": "minio.default", "path": f"{name}/in"}],
        },
    )
    assert created.status_code == 201, created.text
    # A public service's bucket is public: every user may upload into it with their own keys.
    world.s3("allowed").put_object(Bucket=name, Key="in/data.txt", Body=b"data")

    def allowed_sees_a_job() -> dict | None:
        jobs = world.api("allowed").get(f"/system/logs/{name}").json()["jobs"]
        return jobs or None

    from tests.services import common

    jobs = common.wait_until(allowed_sees_a_job, timeout=30, what="the upload's job")
    assert len(jobs) == 1
    # The owner sees it too; the stranger, who did not upload, does not.
    assert set(owner.get(f"/system/logs/{name}").json()["jobs"]) == set(jobs)
    assert world.api("stranger").get(f"/system/logs/{name}").json()["jobs"] == {}


def test_a_user_may_only_use_a_vo_they_belong_to(world: World) -> None:
    owner = world.api("owner")
    definition = {"image": "alpine", "script": "true"}
    foreign = owner.post(
        "/system/services",
        json={"name": f"vis-vo-{uuid.uuid4().hex[:6]}", "vo": "vo.other.test", **definition},
    )
    assert foreign.status_code == 403
    assert "vo.other.test" in foreign.json()["detail"]
    name = f"vis-vo-{uuid.uuid4().hex[:6]}"
    assert (
        owner.post(
            "/system/services", json={"name": name, "vo": "vo.oscar.test", **definition}
        ).status_code
        == 201
    )
    assert owner.get(f"/system/services/{name}").json()["vo"] == "vo.oscar.test"


def test_bridges_are_shown_to_the_owner_of_their_service_and_managed_by_admins(
    world: World,
) -> None:
    from tests.oscar.api.test_bridges import webdav_service

    name = f"vis-br-{uuid.uuid4().hex[:6]}"
    service = {**webdav_service(name), "visibility": "public"}
    assert world.api("owner").post("/system/services", json=service).status_code == 201
    bridge = {"name": f"{name}-b", "type": "webdav", "service": name}
    for who in ("owner", "allowed", "stranger"):
        refused = world.api(who).post("/system/bridges", json=bridge)
        assert refused.status_code == 403, (who, refused.text)
    assert world.api("admin").post("/system/bridges", json=bridge).status_code == 201
    for who, sees in (("admin", True), ("owner", True), ("allowed", False), ("stranger", False)):
        api = world.api(who)
        listed = {b["name"] for b in api.get("/system/bridges").json()}
        assert (bridge["name"] in listed) is sees, who
        assert api.get(f"/system/bridges/{bridge['name']}").status_code == (200 if sees else 403)
        if who != "admin":
            deleted = api.delete(f"/system/bridges/{bridge['name']}").status_code
            assert deleted == 403, who
    assert world.api("admin").delete(f"/system/bridges/{bridge['name']}").status_code == 204
