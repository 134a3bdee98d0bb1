"""OIDC users' store keys obey one rule on both default stores (`oscar.storage.users`).

The same expectations run against the embedded store and a real MinIO, with boto3 clients
built from `user_credentials(...)` for an owner, a user the bucket is shared with, and a
stranger, on a `private`, a `restricted` (to the allowed user) and a `public` bucket:

- the owner may do everything; DeleteBucket reaches the store's own check (`BucketNotEmpty`);
- on a shared bucket (public, or restricted to them) others read, list, write and delete
  objects, but may not delete the bucket;
- anything else is `AccessDenied`, and ListBuckets does not show the bucket.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from oscar.errors import BadRequestError
from oscar.storage.buckets import Visibility
from tests.oscar.storage.user_stores import UserStore, running_store

SEED = "seed.txt"
ROLES = ("owner", "allowed", "stranger")
OPERATIONS = (
    "ListBuckets",
    "HeadBucket",
    "ListObjects",
    "GetObject",
    "PutObject",
    "MultipartUpload",
    "DeleteObject",
    "DeleteBucket",
)
EVERYTHING = {
    "ListBuckets": "listed",
    **{op: "ok" for op in OPERATIONS[1:-1]},
    "DeleteBucket": "BucketNotEmpty",  # allowed: the store's own check answers
}
SHARED = {**EVERYTHING, "DeleteBucket": "AccessDenied"}
NOTHING = {"ListBuckets": "not listed", **{op: "AccessDenied" for op in OPERATIONS[1:]}}
EXPECTED: dict[str, dict[str, dict[str, str]]] = {
    "private": {"owner": EVERYTHING, "allowed": NOTHING, "stranger": NOTHING},
    "restricted": {"owner": EVERYTHING, "allowed": SHARED, "stranger": NOTHING},
    "public": {"owner": EVERYTHING, "allowed": SHARED, "stranger": SHARED},
}


@pytest.fixture(scope="module", params=["embedded", pytest.param("minio", marks=pytest.mark.minio)])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[UserStore]:
    """The embedded store (in-process) or a real MinIO."""
    with running_store(request.param, tmp_path_factory.mktemp(f"users-{request.param}")) as found:
        yield found


@pytest.fixture(scope="module")
def subjects() -> dict[str, str]:
    """An owner (a Keycloak-style UUID), an allowed user (an EGI Check-in subject) and a
    stranger."""
    return {
        "owner": str(uuid.uuid4()),
        "allowed": f"{uuid.uuid4().hex}{uuid.uuid4().hex}@egi.eu",
        "stranger": str(uuid.uuid4()),
    }


@pytest.fixture(scope="module")
def clients(store: UserStore, subjects: dict[str, str]) -> dict[str, Any]:
    """A boto3 client per role, from the keys `user_credentials` hands out."""
    return {role: store.user(subject) for role, subject in subjects.items()}


def _code(exc: ClientError) -> str:
    code = str(exc.response["Error"]["Code"])
    return {"403": "AccessDenied", "404": "NoSuchBucket"}.get(code, code)


def _outcome(call: Callable[[], object]) -> str:
    try:
        call()
    except ClientError as exc:
        return _code(exc)
    return "ok"


def _listed(client: Any) -> set[str]:
    """The buckets ListBuckets shows; MinIO refuses a listing that would show none."""
    try:
        return {bucket["Name"] for bucket in client.list_buckets()["Buckets"]}
    except ClientError as exc:
        assert _code(exc) == "AccessDenied"
        return set()


def _multipart(client: Any, bucket: str, key: str) -> None:
    upload = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    part = client.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=b"p")
    client.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )


def _outcomes(client: Any, bucket: str, role: str) -> dict[str, str]:
    """What each operation answers to `client` on `bucket` (which holds `SEED`)."""
    own = f"by-{role}.txt"
    return {
        "ListBuckets": "listed" if bucket in _listed(client) else "not listed",
        "HeadBucket": _outcome(lambda: client.head_bucket(Bucket=bucket)),
        "ListObjects": _outcome(lambda: client.list_objects_v2(Bucket=bucket)),
        "GetObject": _outcome(lambda: client.get_object(Bucket=bucket, Key=SEED)["Body"].read()),
        "PutObject": _outcome(lambda: client.put_object(Bucket=bucket, Key=own, Body=b"x")),
        "MultipartUpload": _outcome(lambda: _multipart(client, bucket, f"multi-{own}")),
        "DeleteObject": _outcome(lambda: client.delete_object(Bucket=bucket, Key=own)),
        "DeleteBucket": _outcome(lambda: client.delete_bucket(Bucket=bucket)),
    }


def _bucket(store: UserStore, owner: str, visibility: Visibility, allowed: list[str]) -> str:
    """A new bucket of `owner` holding `SEED` (put with the admin keys)."""
    name = f"ua-{uuid.uuid4().hex[:12]}"
    store.buckets.create(name, owner, visibility, allowed)
    store.s3().put_object(Bucket=name, Key=SEED, Body=b"seed")
    return name


@pytest.mark.parametrize("visibility", ["private", "restricted", "public"])
def test_what_each_user_may_do_on_a_bucket(
    store: UserStore,
    subjects: dict[str, str],
    clients: dict[str, Any],
    visibility: Visibility,
) -> None:
    bucket = _bucket(store, subjects["owner"], visibility, [subjects["allowed"]])
    outcomes = {role: _outcomes(clients[role], bucket, role) for role in ROLES}
    assert outcomes == EXPECTED[visibility]
    assert store.buckets.get(bucket).owner == subjects["owner"]


def test_anonymous_callers_read_public_buckets_only(
    store: UserStore, subjects: dict[str, str]
) -> None:
    public = _bucket(store, subjects["owner"], "public", [])
    private = _bucket(store, subjects["owner"], "private", [])
    with httpx.Client(base_url=store.endpoint, timeout=10) as anonymous:
        assert anonymous.get(f"/{public}/{SEED}").status_code == 200
        assert anonymous.get(f"/{private}/{SEED}").status_code == 403
        assert anonymous.put(f"/{public}/anonymous.txt", content=b"x").status_code == 403
        assert anonymous.delete(f"/{public}/{SEED}").status_code == 403


def test_a_visibility_change_takes_effect_at_once(
    store: UserStore, subjects: dict[str, str], clients: dict[str, Any]
) -> None:
    owner, allowed = subjects["owner"], subjects["allowed"]
    bucket = _bucket(store, owner, "private", [])

    def reads() -> dict[str, str]:
        return {
            role: _outcome(lambda c=clients[role]: c.get_object(Bucket=bucket, Key=SEED))
            for role in ROLES
        }

    assert reads() == {"owner": "ok", "allowed": "AccessDenied", "stranger": "AccessDenied"}
    store.buckets.update(bucket, owner, "public", [])
    assert store.buckets.get(bucket).visibility == "public"
    assert reads() == {"owner": "ok", "allowed": "ok", "stranger": "ok"}
    assert bucket in _listed(clients["stranger"])
    store.buckets.update(bucket, owner, "restricted", [allowed])
    info = store.buckets.get(bucket)
    assert (info.visibility, info.allowed_users, info.owner) == ("restricted", [allowed], owner)
    assert reads() == {"owner": "ok", "allowed": "ok", "stranger": "AccessDenied"}
    assert bucket not in _listed(clients["stranger"])
    with httpx.Client(base_url=store.endpoint, timeout=10) as anonymous:
        assert anonymous.get(f"/{bucket}/{SEED}").status_code == 403
    store.buckets.update(bucket, owner, "private", [])
    assert reads() == {"owner": "ok", "allowed": "AccessDenied", "stranger": "AccessDenied"}


def test_the_owner_deletes_the_bucket_and_its_grants_go_with_it(
    store: UserStore, subjects: dict[str, str], clients: dict[str, Any]
) -> None:
    owner = clients["owner"]
    bucket = _bucket(store, subjects["owner"], "restricted", [subjects["allowed"]])
    owner.delete_object(Bucket=bucket, Key=SEED)
    owner.delete_bucket(Bucket=bucket)
    assert bucket not in _listed(owner)
    # A new bucket of the same name, the admin's: nobody's old grant reaches it.
    store.buckets.create(bucket, "cluster_admin", "private", [])
    store.s3().put_object(Bucket=bucket, Key=SEED, Body=b"seed")
    for role in ("owner", "allowed"):
        client = clients[role]
        assert _outcome(lambda c=client: c.get_object(Bucket=bucket, Key=SEED)) == "AccessDenied"


def test_create_bucket_with_a_user_key(
    store: UserStore, subjects: dict[str, str], clients: dict[str, Any]
) -> None:
    """The embedded store makes a private bucket the user owns. MinIO cannot record who made
    a bucket, so it refuses: users create buckets through `/system/buckets` there."""
    name = f"uc-{uuid.uuid4().hex[:12]}"
    outcome = _outcome(lambda: clients["stranger"].create_bucket(Bucket=name))
    if store.kind == "minio":
        assert outcome == "AccessDenied"
        return
    assert outcome == "ok"
    info = store.buckets.get(name)
    assert (info.owner, info.visibility, info.allowed_users) == (
        subjects["stranger"],
        "private",
        [],
    )
    assert _outcomes(clients["stranger"], name, "stranger")["PutObject"] == "ok"
    assert _outcome(lambda: clients["owner"].head_bucket(Bucket=name)) == "AccessDenied"
    assert name not in _listed(clients["owner"])
    taken = _outcome(lambda: clients["owner"].create_bucket(Bucket=name))
    assert taken == "BucketAlreadyExists"


def test_a_missing_bucket_is_refused_like_a_private_one(
    store: UserStore, clients: dict[str, Any]
) -> None:
    missing = f"none-{uuid.uuid4().hex[:12]}"
    assert _outcome(lambda: clients["stranger"].head_bucket(Bucket=missing)) == "AccessDenied"
    assert _outcome(lambda: clients["stranger"].list_objects_v2(Bucket=missing)) == "AccessDenied"


def test_user_keys_are_stable_and_each_users_own(
    store: UserStore, subjects: dict[str, str], tmp_path: Path
) -> None:
    first = store.storage.user_credentials(subjects["owner"], "Owner")
    again = store.storage.user_credentials(subjects["owner"])
    other = store.storage.user_credentials(subjects["stranger"])
    assert (first.access_key, first.secret_key) == (again.access_key, again.secret_key)
    assert first.endpoint == store.endpoint
    assert first.access_key != other.access_key and first.secret_key != other.secret_key
    assert first.access_key != store.admin.access_key
    if store.kind == "minio":
        assert first.access_key == subjects["owner"]  # upstream's MinIO user names
    else:
        assert first.access_key.startswith("ouser") and len(first.access_key) == 20
    for reserved in ("", "cluster_admin", "bad\nsubject"):
        with pytest.raises(BadRequestError):
            store.storage.user_credentials(reserved)
    # A wrong secret for a known user is refused.
    wrong = store.s3((first.access_key, "not-the-secret-0123456789"))
    assert _outcome(lambda: wrong.list_buckets()) in {"SignatureDoesNotMatch", "AccessDenied"}


def test_a_short_subject_gets_a_derived_key(store: UserStore) -> None:
    """`42` is too short for a MinIO access key: the derived one stands in, on both stores."""
    provider = store.storage.user_credentials("42")
    assert provider.access_key.startswith("ouser")
    client = store.s3(provider)
    name = f"us-{uuid.uuid4().hex[:12]}"
    store.buckets.create(name, "42", "private", [])
    client.put_object(Bucket=name, Key="mine.txt", Body=b"x")
    assert client.get_object(Bucket=name, Key="mine.txt")["Body"].read() == b"x"


def test_embedded_user_keys_survive_a_restart_and_no_secret_is_kept(tmp_path: Path) -> None:
    """The store records the subjects that got keys (never a secret); a new process maps a
    key back to its subject, and a key derived for a subject never recorded is unknown."""
    import sqlite3

    from oscar.executors.fake import FakeExecutor
    from oscar.jobs.dispatcher import Dispatcher
    from oscar.jobs.store import JobStore
    from oscar.models.storage import MinIOProvider
    from oscar.registry.memory import MemoryRegistry
    from oscar.storage.embedded.provider import EmbeddedStorage
    from oscar.storage.embedded.store import ObjectStore
    from oscar.storage.users import user_keys

    admin = MinIOProvider(endpoint="http://127.0.0.1:1", access_key="oscar", secret_key="s" * 32)
    registry, jobs = MemoryRegistry(), JobStore(tmp_path / "jobs.db")
    dispatcher = Dispatcher(jobs, registry, FakeExecutor())
    subject = str(uuid.uuid4())

    def process() -> tuple[ObjectStore, EmbeddedStorage]:
        objects = ObjectStore(tmp_path / "s3")
        return objects, EmbeddedStorage(objects, registry, dispatcher, admin)

    try:
        objects, first = process()
        keys = first.user_credentials(subject, "Ada Lovelace")
        objects.close()
        objects, second = process()  # nothing remembered in memory
        principal = second.principal(keys.access_key)
        assert principal is not None and principal.user is not None
        assert (principal.user.subject, principal.secret) == (subject, keys.secret_key)
        assert principal.access is None  # never a service's rules
        stranger_key, _ = user_keys(admin.secret_key, str(uuid.uuid4()))
        assert second.principal(stranger_key) is None
        objects.close()
        with sqlite3.connect(tmp_path / "s3" / "objects.db") as db:
            rows = db.execute("SELECT * FROM users").fetchall()
        assert [row[:3] for row in rows] == [(subject, keys.access_key, "Ada Lovelace")]
        assert keys.secret_key not in repr(rows)
    finally:
        jobs.close()
