"""`isolation_level: USER`: each allowed user gets a bucket of their own, on both stores.

Upstream (`handlers/create.go`) makes `<input bucket>-<uid[:10]>` for each allowed user, lists
it in `bucket_list` and adds the owner to `allowed_users`. Here the buckets are also owned by
their user on the store, the server sets `bucket_list` whatever the client sent, and someone
else's bucket with that name is never handed over.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from oscar.errors import ConflictError, InvalidServiceError, ServiceNotFoundError
from oscar.models.service import Service
from oscar.models.validation import parse_service
from oscar.storage.isolation import isolate, user_bucket_name
from oscar.storage.scoped import job_store
from tests.fixtures.services import minimal_service, unique_name
from tests.oscar.storage.user_stores import UserStore, running_store


@pytest.fixture(scope="module", params=["embedded", pytest.param("minio", marks=pytest.mark.minio)])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[UserStore]:
    """The embedded store (in-process) or a real MinIO with the `OSCAR` webhook target."""
    with running_store(request.param, tmp_path_factory.mktemp(f"iso-{request.param}")) as found:
        yield found


@pytest.fixture(scope="module")
def people() -> dict[str, str]:
    """Subjects shared by the tests of a store (each made on MinIO once: that is slow)."""
    return {role: str(uuid.uuid4()) for role in ("alice", "bob", "carol", "owner")}


def _isolated(
    name: str, allowed: list[str], owner: str = "", bucket: str = "", **fields: Any
) -> Service:
    """A USER-isolated service reading `<bucket>/in` and writing `<bucket>/out` (bucket: the
    service's name unless given)."""
    bucket = bucket or name
    service = parse_service(
        minimal_service(
            name,
            input=[{"storage_provider": "minio.default", "path": f"{bucket}/in"}],
            output=[{"storage_provider": "minio.default", "path": f"{bucket}/out"}],
            isolation_level="USER",
            allowed_users=allowed,
            **fields,
        )
    )
    service.owner = owner
    return service


def _denied(call: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    code = str(caught.value.response["Error"]["Code"])
    return "AccessDenied" if code == "403" else code


def _keys(store: UserStore, bucket: str) -> set[str]:
    return {entry.key for entry in store.buckets.list_objects(bucket, "", "", 100).objects}


# --- naming and the server's fields (no store) -------------------------------------------


def test_user_buckets_are_named_as_upstream_names_them() -> None:
    subject = "f47ac10b-58cc-4372-a567-0e02b2c3d479"
    assert user_bucket_name("photos", subject) == "photos-f47ac10b-5"
    egi = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9@egi.eu"
    assert user_bucket_name("photos", egi) == "photos-0a1b2c3d4e"
    # Capitals, '@' or '_' would make no valid bucket name: the subject's hash stands in.
    for awkward in ("Alice.Smith", "ab@x.org", "snake_case_user"):
        name = user_bucket_name("photos", awkward)
        assert name.startswith("photos-") and len(name) == len("photos-") + 10
        assert name == user_bucket_name("photos", awkward)  # stable


def test_the_server_sets_bucket_list_and_adds_the_owner() -> None:
    alice, owner = str(uuid.uuid4()), str(uuid.uuid4())
    service = _isolated("svc", [alice], owner, bucket_list=["someone-elses-bucket"])
    isolate(service)
    assert service.allowed_users == [alice, owner]
    assert service.bucket_list == [f"svc-{alice[:10]}", f"svc-{owner[:10]}"]
    admin_made = _isolated("svc", [alice], "cluster_admin")
    isolate(admin_made)
    assert admin_made.allowed_users == [alice]  # the admin gets no bucket of its own
    plain = parse_service(minimal_service("svc", bucket_list=["someone-elses-bucket"]))
    isolate(plain)
    assert plain.bucket_list == []  # only USER isolation has a bucket_list


def test_users_who_would_share_a_bucket_are_refused() -> None:
    twins = ["0123456789-first", "0123456789-second"]
    with pytest.raises(InvalidServiceError) as raised:
        isolate(_isolated("svc", twins))
    assert raised.value.errors[0].field == "allowed_users"
    assert "svc-0123456789" in str(raised.value)
    with pytest.raises(InvalidServiceError, match="63 characters"):
        isolate(_isolated("svc", [str(uuid.uuid4())], bucket="b" * 55))


# --- on the stores ------------------------------------------------------------------------


def test_each_allowed_user_gets_a_private_bucket_of_their_own(
    store: UserStore, people: dict[str, str]
) -> None:
    alice, bob, owner = people["alice"], people["bob"], people["owner"]
    name = unique_name("iso")
    stored = store.manager.create(_isolated(name, [alice, bob], owner, bucket_list=["x-evil"]))
    buckets = [f"{name}-{subject[:10]}" for subject in (alice, bob, owner)]
    assert stored.bucket_list == buckets
    assert stored.allowed_users == [alice, bob, owner]
    assert store.registry.get(name).bucket_list == buckets
    for bucket, subject in zip(buckets, (alice, bob, owner), strict=True):
        info = store.buckets.get(bucket)
        assert (info.owner, info.visibility) == (subject, "private")
        assert _keys(store, bucket) == {"in/", "out/"}
    assert store.buckets.get(name).owner == owner  # the service's own bucket: its owner's

    alice_s3, bob_s3 = store.user(alice), store.user(bob)
    alice_s3.put_object(Bucket=buckets[0], Key="in/photo.jpg", Body=b"alice's")
    assert _denied(lambda: bob_s3.get_object(Bucket=buckets[0], Key="in/photo.jpg")) == (
        "AccessDenied"
    )
    assert _denied(lambda: alice_s3.list_objects_v2(Bucket=buckets[1])) == "AccessDenied"
    # The service's jobs read the user's upload and write the result back to that bucket.
    job = store.s3(job_store(store.admin, name))
    assert job.get_object(Bucket=buckets[0], Key="in/photo.jpg")["Body"].read() == b"alice's"
    job.put_object(Bucket=buckets[0], Key="out/photo.jpg", Body=b"result")
    assert alice_s3.get_object(Bucket=buckets[0], Key="out/photo.jpg")["Body"].read() == b"result"
    if store.kind == "minio":  # uploads to the user's input folder notify the control plane
        from minio import Minio

        admin = store.admin
        sdk = Minio(
            admin.endpoint.split("://", 1)[1], admin.access_key, admin.secret_key, secure=False
        )
        rules = sdk.get_bucket_notification(buckets[0])
        assert [q.prefix_filter_rule.value for q in rules.queue_config_list] == ["in/"]


def test_an_update_follows_the_allowed_users(store: UserStore, people: dict[str, str]) -> None:
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    name = unique_name("isu")
    store.manager.create(_isolated(name, [alice, bob], "cluster_admin"))
    bob_bucket = f"{name}-{bob[:10]}"
    store.s3().put_object(Bucket=bob_bucket, Key="in/b.txt", Body=b"b")
    job = store.s3(job_store(store.admin, name))
    assert job.get_object(Bucket=bob_bucket, Key="in/b.txt")["Body"].read() == b"b"

    updated = store.manager.update(
        _isolated(name, [alice, carol], "cluster_admin", bucket_list=[bob_bucket])
    )
    carol_bucket = f"{name}-{carol[:10]}"
    assert updated.bucket_list == [f"{name}-{alice[:10]}", carol_bucket]
    assert store.buckets.get(carol_bucket).owner == carol
    # Bob's bucket stays his (with his data), but the service's jobs no longer reach it.
    assert store.buckets.get(bob_bucket).owner == bob
    assert _denied(lambda: job.get_object(Bucket=bob_bucket, Key="in/b.txt")) == "AccessDenied"


def test_someone_elses_bucket_is_never_handed_to_a_user(
    store: UserStore, people: dict[str, str]
) -> None:
    dave, mallory = people["alice"], people["bob"]
    name = unique_name("isq")
    squatted = f"{name}-{dave[:10]}"
    store.buckets.create(squatted, mallory, "private", [])
    with pytest.raises(ConflictError, match=squatted):
        store.manager.create(_isolated(name, [dave], "cluster_admin"))
    with pytest.raises(ServiceNotFoundError):
        store.registry.get(name)
    assert store.buckets.get(squatted).owner == mallory


def test_deleting_the_service_deletes_its_users_buckets(
    store: UserStore, people: dict[str, str]
) -> None:
    alice = people["alice"]
    name = unique_name("isd")
    stored = store.manager.create(_isolated(name, [alice], "cluster_admin"))
    store.user(alice).put_object(Bucket=stored.bucket_list[0], Key="in/a.txt", Body=b"a")
    store.manager.delete(name)
    remaining = {info.name for info in store.buckets.list()}
    assert not remaining & {name, *stored.bucket_list}
