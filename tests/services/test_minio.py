"""Smoke test: the real MinIO stores objects, manages users, and posts webhook notifications."""

from __future__ import annotations

import io
import itertools
import json
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import boto3
import httpx
import pytest
from minio import Minio
from minio.error import S3Error
from minio.notificationconfig import NotificationConfig, PrefixFilterRule, QueueConfig

from tests.services import common
from tests.services.minio import NAME, MinioServer, is_installed, running

pytestmark = pytest.mark.minio


@dataclass(frozen=True)
class Post:
    """One request the webhook receiver got."""

    path: str
    authorization: str
    body: dict[str, Any]


class Receiver:
    """A local HTTP endpoint that records what is POSTed to it (a stand-in for OSCAR's /job)."""

    def __init__(self) -> None:
        self._posts: list[Post] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    document = json.loads(body)
                except ValueError:
                    document = {"unparsed": body.decode(errors="replace")}
                with receiver._lock:
                    receiver._posts.append(
                        Post(self.path, self.headers.get("Authorization", ""), document)
                    )
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep pytest output clean

        # Port 0: the kernel picks a free port, with no window for another process to take it.
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/job/smoke"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def posts(self) -> list[Post]:
        """A snapshot of everything received so far."""
        with self._lock:
            return list(self._posts)

    def events_for(self, key: str) -> list[Post]:
        """Received S3 event notifications whose first record is about object `key`."""
        return [
            post
            for post in self.posts()
            if post.body.get("Records")
            and unquote_plus(post.body["Records"][0]["s3"]["object"]["key"]) == key
        ]

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver for this test."""
    instance = Receiver()
    yield instance
    instance.close()


@pytest.fixture
def start_minio(tmp_path: Path) -> Iterator[Callable[..., MinioServer]]:
    """Factory for MinIO servers of this test only (restarts must not disturb the shared one)."""
    common.require_installed(NAME, is_installed())
    numbers = itertools.count()
    with ExitStack() as stack:

        def start(extra_env: Mapping[str, str] | None = None) -> MinioServer:
            workdir = tmp_path / f"minio-{next(numbers)}"
            workdir.mkdir()
            return stack.enter_context(running(workdir, extra_env=extra_env))

        yield start


def _read(client: Minio, bucket: str, key: str) -> bytes:
    """An object's content, returning the connection to the pool."""
    response = client.get_object(bucket, key)
    try:
        return response.read()
    finally:
        response.close()
        response.release_conn()


def _subscribe_when_target_loaded(
    server: MinioServer, bucket: str, target_id: str, prefix: str, timeout: float = 60
) -> None:
    """Subscribe `bucket` to the webhook target, retrying until the server knows the ARN.

    Until MinIO has (re)loaded its notification targets, the ARN is unknown and the call fails;
    its success is the signal that the restart took effect.
    """
    config = NotificationConfig(
        queue_config_list=[
            QueueConfig(
                queue=f"arn:minio:sqs::{target_id}:webhook",
                events=["s3:ObjectCreated:*"],
                config_id="oscar",
                prefix_filter_rule=PrefixFilterRule(prefix),
            )
        ]
    )

    client = server.client()

    def subscribe() -> bool:
        client.set_bucket_notification(bucket, config)
        return True

    common.wait_until(
        subscribe,
        timeout=timeout,
        what=f"webhook target {target_id} loaded",
        process=server.process,
        log=server.log,
    )


def test_object_round_trip_with_minio_sdk_and_boto3(minio: MinioServer) -> None:
    client = minio.client()
    s3 = boto3.client(
        "s3",
        endpoint_url=minio.endpoint,
        aws_access_key_id=minio.access_key,
        aws_secret_access_key=minio.secret_key,
        region_name=minio.region,
    )
    bucket = f"smoke-{uuid.uuid4().hex[:8]}"
    client.make_bucket(bucket)

    client.put_object(bucket, "dir/a.txt", io.BytesIO(b"from minio sdk"), length=14)
    s3.put_object(Bucket=bucket, Key="dir/b.txt", Body=b"from boto3")
    assert s3.get_object(Bucket=bucket, Key="dir/a.txt")["Body"].read() == b"from minio sdk"
    assert _read(client, bucket, "dir/b.txt") == b"from boto3"
    listed = sorted(o.object_name or "" for o in client.list_objects(bucket, prefix="dir/"))
    assert listed == ["dir/a.txt", "dir/b.txt"]

    client.remove_object(bucket, "dir/a.txt")
    s3.delete_object(Bucket=bucket, Key="dir/b.txt")
    assert s3.list_objects_v2(Bucket=bucket).get("Contents", []) == []
    with pytest.raises(S3Error) as missing:
        client.stat_object(bucket, "dir/a.txt")
    assert missing.value.code == "NoSuchKey"


def test_admin_client_creates_a_user_who_can_log_in(minio: MinioServer) -> None:
    admin = minio.admin()
    user, secret = f"user-{uuid.uuid4().hex[:6]}", "user-secret-0123456789"
    admin.user_add(user, secret)
    admin.attach_policy(["readwrite"], user=user)
    assert user in json.loads(admin.user_list())
    assert "readwrite" in json.loads(admin.user_info(user)).get("policyName", "")

    client = minio.client(user, secret)
    bucket = f"own-{uuid.uuid4().hex[:8]}"
    client.make_bucket(bucket)
    client.put_object(bucket, "x.txt", io.BytesIO(b"mine"), length=4)
    assert [o.object_name for o in client.list_objects(bucket)] == ["x.txt"]

    with pytest.raises(S3Error) as refused:
        minio.client(user, "not-the-secret").list_buckets()
    assert refused.value.code == "SignatureDoesNotMatch"


def test_webhook_target_set_with_admin_client_receives_bucket_events(
    start_minio: Callable[..., MinioServer], receiver: Receiver
) -> None:
    server = start_minio()
    admin = server.admin()
    token = "webhook-token-" + uuid.uuid4().hex
    queue_dir = server.data_dir.parent / "events-queue"
    queue_dir.mkdir()
    admin.config_set(
        "notify_webhook:oscar",
        {"endpoint": receiver.url, "auth_token": token, "queue_dir": str(queue_dir)},
    )
    client = server.client()
    bucket = f"events-{uuid.uuid4().hex[:8]}"
    client.make_bucket(bucket)

    # notify_webhook is not a dynamic subsystem in MinIO: targets load at start-up only, so
    # restart through the admin API as upstream OSCAR does after registering a webhook.
    admin.service_restart()
    _subscribe_when_target_loaded(server, bucket, "oscar", prefix="in/")
    # The saved target shows in the server's live configuration only after the restart.
    assert receiver.url in admin.config_get("notify_webhook:oscar")

    client.put_object(bucket, "other/skip.txt", io.BytesIO(b"x"), length=1)
    client.put_object(bucket, "in/photo one.jpg", io.BytesIO(b"jpeg"), length=4)

    posts = common.wait_until(
        lambda: receiver.events_for("in/photo one.jpg"), timeout=30, what="webhook delivery"
    )
    post = posts[0]
    assert post.authorization == f"Bearer {token}"
    assert post.path == "/job/smoke"
    record = post.body["Records"][0]
    assert record["eventName"].startswith("s3:ObjectCreated:")
    assert record["eventSource"] == "minio:s3"
    assert record["s3"]["bucket"]["name"] == bucket
    assert post.body["Key"] == f"{bucket}/in/photo one.jpg"
    # The prefix filter holds back the other object (events are queued in order).
    assert receiver.events_for("other/skip.txt") == []


def test_webhook_target_from_environment_and_restart_keeping_data(
    start_minio: Callable[..., MinioServer], receiver: Receiver, tmp_path: Path
) -> None:
    token = "startup-token-" + uuid.uuid4().hex
    server = start_minio(
        {
            "MINIO_NOTIFY_WEBHOOK_ENABLE_ENVHOOK": "on",
            "MINIO_NOTIFY_WEBHOOK_ENDPOINT_ENVHOOK": receiver.url,
            "MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_ENVHOOK": token,
            "MINIO_NOTIFY_WEBHOOK_QUEUE_DIR_ENVHOOK": str(tmp_path / "env-queue"),
        }
    )
    client = server.client()
    bucket = f"env-{uuid.uuid4().hex[:8]}"
    client.make_bucket(bucket)
    client.put_object(bucket, "kept.txt", io.BytesIO(b"survives"), length=8)
    port, pid = server.port, server.pid

    server.restart()

    assert server.port == port
    assert server.pid != pid
    assert _read(client, bucket, "kept.txt") == b"survives"
    # The target ID is the environment variables' suffix, case kept.
    _subscribe_when_target_loaded(server, bucket, "ENVHOOK", prefix="")
    client.put_object(bucket, "new.txt", io.BytesIO(b"n"), length=1)
    posts = common.wait_until(lambda: receiver.events_for("new.txt"), timeout=30, what="delivery")
    assert posts[0].authorization == f"Bearer {token}"


def test_environment_values_minio_would_fetch_from_a_url_are_refused(tmp_path: Path) -> None:
    with (
        pytest.raises(ValueError, match="MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_X"),
        running(tmp_path, extra_env={"MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_X": "env-token"}),
    ):
        pass


def test_health_endpoints(minio: MinioServer) -> None:
    for probe in ("live", "ready"):
        assert httpx.get(f"{minio.endpoint}/minio/health/{probe}").status_code == 200
