"""Smoke test: the real MinIO stores objects, manages users, and posts webhook notifications."""

from __future__ import annotations

import contextlib
import io
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import httpx
import pytest
from minio.notificationconfig import NotificationConfig, PrefixFilterRule, QueueConfig

from tests.services import common
from tests.services.minio import MinioServer

pytestmark = pytest.mark.minio


class Receiver:
    """A local HTTP endpoint that records the JSON bodies and auth headers posted to it."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        received = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with contextlib.suppress(ValueError):
                    received.append((self.headers.get("Authorization", ""), json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", common.free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    instance = Receiver()
    yield instance
    instance.server.shutdown()


def test_object_round_trip_with_minio_sdk_and_boto3(minio: MinioServer) -> None:
    client: Any = minio.client()
    bucket = f"smoke-{uuid.uuid4().hex[:8]}"
    client.make_bucket(bucket)
    client.put_object(bucket, "dir/a.txt", io.BytesIO(b"from minio sdk"), length=14)
    s3 = boto3.client(
        "s3",
        endpoint_url=minio.endpoint,
        aws_access_key_id=minio.access_key,
        aws_secret_access_key=minio.secret_key,
        region_name=minio.region,
    )
    assert s3.get_object(Bucket=bucket, Key="dir/a.txt")["Body"].read() == b"from minio sdk"
    s3.put_object(Bucket=bucket, Key="dir/b.txt", Body=b"from boto3")
    assert sorted(o.object_name for o in client.list_objects(bucket, prefix="dir/")) == [
        "dir/a.txt",
        "dir/b.txt",
    ]
    client.remove_object(bucket, "dir/a.txt")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["dir/b.txt"]


def test_admin_client_creates_a_user_who_can_log_in(minio: MinioServer) -> None:
    admin: Any = minio.admin()
    user, secret = f"user-{uuid.uuid4().hex[:6]}", "user-secret-0123456789"
    admin.user_add(user, secret)
    admin.attach_policy(["readwrite"], user=user)
    assert user in json.loads(admin.user_list())
    client: Any = minio.client(user, secret)
    bucket = f"own-{uuid.uuid4().hex[:8]}"
    client.make_bucket(bucket)
    assert client.bucket_exists(bucket)
    wrong: Any = minio.client(user, "not-the-secret")
    with pytest.raises(Exception, match=r"SignatureDoesNotMatch|InvalidAccessKeyId|Access"):
        wrong.list_buckets()


def test_webhook_notification_reaches_receiver(minio: MinioServer, receiver: Receiver) -> None:
    admin: Any = minio.admin()
    target = f"t{uuid.uuid4().hex[:6]}"
    token = "webhook-token-" + uuid.uuid4().hex
    queue_dir = minio.data_dir.parent / f"queue-{target}"
    queue_dir.mkdir()
    admin.config_set(
        f"notify_webhook:{target}",
        {"endpoint": receiver.url, "auth_token": token, "queue_dir": str(queue_dir)},
    )
    # MinIO loads new notification targets only on (re)start, as upstream OSCAR relies on.
    admin.service_restart()
    client: Any = minio.client()
    bucket = f"events-{uuid.uuid4().hex[:8]}"

    def create_bucket() -> bool:
        # The server restarts under us: a request may succeed even though its answer is lost.
        if not client.bucket_exists(bucket):
            client.make_bucket(bucket)
        return True

    common.wait_until(create_bucket, timeout=60, what="bucket created after restart")
    config = NotificationConfig(
        queue_config_list=[
            QueueConfig(
                ["s3:ObjectCreated:*"],
                config_id="oscar",
                prefix_filter_rule=PrefixFilterRule("in/"),
                queue=f"arn:minio:sqs::{target}:webhook",
            )
        ]
    )

    def subscribe() -> bool:
        client.set_bucket_notification(bucket, config)  # fails until the target is loaded
        return True

    common.wait_until(subscribe, timeout=60, what="webhook target loaded after restart")
    client.put_object(bucket, "other/skip.txt", io.BytesIO(b"x"), length=1)
    client.put_object(bucket, "in/photo one.jpg", io.BytesIO(b"jpeg"), length=4)

    def delivered() -> list[tuple[str, dict[str, Any]]]:
        return [p for p in receiver.posts if p[1].get("Records")]

    posts = common.wait_until(delivered, timeout=30, what="webhook delivery")
    authorization, event = posts[0]
    assert authorization == f"Bearer {token}"
    record = event["Records"][0]
    assert record["eventName"].startswith("s3:ObjectCreated:")
    assert record["eventSource"] == "minio:s3"
    assert record["s3"]["bucket"]["name"] == bucket
    assert record["s3"]["object"]["key"] in {"in/photo+one.jpg", "in%2Fphoto+one.jpg"}
    assert all("skip" not in json.dumps(p[1]) for p in receiver.posts)


def test_health_endpoint(minio: MinioServer) -> None:
    assert httpx.get(f"{minio.endpoint}/minio/health/live").status_code == 200
