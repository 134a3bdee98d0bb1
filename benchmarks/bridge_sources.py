"""The sources `bridges_bench.py` measures: the real servers each needs, and per source the
service input, the bridge definition and what one drop does.

Each `Source.plan(servers, name)` prepares a service called `name` (its folder on WsgiDAV, its
bucket on MinIO, its queue) and returns a `Plan`. A drop `index` makes the file or object
`.../d<index>.txt` appear and returns the moment (time.time()) it is timed from.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

from tests.fixtures import dcache
from tests.services import common
from tests.services import kafka as kafka_service
from tests.services import minio as minio_service
from tests.services import sqs as sqs_service
from tests.services import webdav as webdav_service

BODY = b"x"
MINIO_ID = "bench"  # `minio.bench`: the real MinIO, as the service's provider
S3_ID = "mq"  # `s3.mq`: the same MinIO as an S3-compatible store with AWS-style events
DAV_ID = "dav"  # `webdav.dav`: the WsgiDAV server
KAFKA_TARGET = "OSCAR"  # MinIO's Kafka notification target: arn:minio:sqs::OSCAR:kafka
SQS_WAIT = 10.0  # the SQS bridge's interval: the longest wait of one long poll


@dataclass
class Servers:
    """The real servers of a run (None where no chosen source needs one)."""

    dav: webdav_service.WebDavServer | None = None
    dcache: dcache.DCacheStandIn | None = None
    minio: minio_service.MinioServer | None = None
    sqs: sqs_service.SqsServer | None = None
    kafka: kafka_service.KafkaBroker | None = None
    topic: str = ""  # the Kafka topic MinIO publishes bucket events to


@dataclass(frozen=True)
class Plan:
    """What one source's measurement needs: the service's input (and providers), the bridge
    (without name and service) and the drop."""

    input: dict[str, Any]
    providers: dict[str, Any]
    bridge: dict[str, Any]
    drop: Callable[[int], float]


@dataclass(frozen=True)
class Source:
    """One row pair of the table."""

    key: str  # the name on the command line
    label: str  # the figure's name
    interval: str  # how often it looks, for the note
    drop: str  # what a drop is and what it is timed from, for the note
    needs: tuple[str, ...]  # the servers (`scripts/testenv.sh check` names, plus dcache)
    plan: Callable[[Servers, str], Plan]
    # A polling source: each drop waits a random 0..phase s first, so that drops fall at any
    # point of the poll cycle (one right after the previous job's output would always land
    # just after a poll: the worst case every time).
    phase: float = 0.0


# --- the servers ---------------------------------------------------------------------------
def servers_for(sources: list[Source], stack: contextlib.ExitStack, tmp: Path) -> Servers:
    """Start what `sources` need (stopped when `stack` closes)."""
    needs = {need for source in sources for need in source.needs}
    servers = Servers()
    if "webdav" in needs:
        servers.dav = stack.enter_context(webdav_service.running(tmp / "webdav"))
    if "dcache" in needs:
        servers.dcache = stack.enter_context(dcache.running())
    if "sqs" in needs:
        servers.sqs = stack.enter_context(sqs_service.running(tmp / "sqs"))
    target: dict[str, str] = {}
    if "kafka" in needs:
        servers.kafka = stack.enter_context(kafka_service.running(tmp / "kafka"))
        servers.topic = f"bench-events-{uuid.uuid4().hex[:6]}"
        _create_topic(servers.kafka, servers.topic)
        target = {
            f"MINIO_NOTIFY_KAFKA_ENABLE_{KAFKA_TARGET}": "on",
            f"MINIO_NOTIFY_KAFKA_BROKERS_{KAFKA_TARGET}": servers.kafka.bootstrap,
            f"MINIO_NOTIFY_KAFKA_TOPIC_{KAFKA_TARGET}": servers.topic,
        }
    if "minio" in needs:
        servers.minio = stack.enter_context(minio_service.running(tmp / "minio", target))
    return servers


def _create_topic(broker: kafka_service.KafkaBroker, topic: str) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        admin.close()


def _minio_provider(server: minio_service.MinioServer) -> dict[str, Any]:
    return {
        "endpoint": server.endpoint,
        "access_key": server.access_key,
        "secret_key": server.secret_key,
        "region": server.region,
        "verify": False,
    }


def _minio_bucket(servers: Servers, name: str) -> minio_service.MinioServer:
    assert servers.minio is not None
    servers.minio.client().make_bucket(name)
    return servers.minio


def _put(server: minio_service.MinioServer) -> Callable[[str, str], float]:
    """A PUT of `BODY` to `bucket/key` on MinIO, returning when it started."""
    client = server.client()

    def put(bucket: str, key: str) -> float:
        started = time.time()
        client.put_object(bucket, key, io.BytesIO(BODY), len(BODY))
        return started

    return put


# --- webdav and dcache ---------------------------------------------------------------------
def _dav_input(servers: Servers, name: str) -> tuple[dict[str, Any], dict[str, Any], Path]:
    assert servers.dav is not None
    folder = servers.dav.root / name / "in"
    folder.mkdir(parents=True)
    provider = {
        "hostname": servers.dav.url,
        "login": servers.dav.username,
        "password": servers.dav.password,
    }
    entry = {"storage_provider": f"webdav.{DAV_ID}", "path": f"{name}/in"}
    return entry, {"webdav": {DAV_ID: provider}}, folder


def _webdav(interval: float) -> Callable[[Servers, str], Plan]:
    def plan(servers: Servers, name: str) -> Plan:
        entry, providers, folder = _dav_input(servers, name)

        def drop(index: int) -> float:
            (folder / f"d{index}.txt").write_bytes(BODY)
            return time.time()  # written and closed

        bridge = {"type": "webdav", "interval": interval, "stable_polls": 2}
        return Plan(entry, providers, bridge, drop)

    return plan


def _dcache(servers: Servers, name: str) -> Plan:
    entry, providers, folder = _dav_input(servers, name)
    standin = servers.dcache
    assert standin is not None

    def drop(index: int) -> float:
        (folder / f"d{index}.txt").write_bytes(BODY)  # what the job stages, over WebDAV
        announced = time.time()
        standin.upload(f"{name}/in/d{index}.txt")
        return announced

    bridge = {
        "type": "dcache",
        "endpoint": standin.url,
        "credentials": {"user": dcache.USER, "password": dcache.PASSWORD},
    }
    return Plan(entry, providers, bridge, drop)


# --- sqs, kafka and minio ------------------------------------------------------------------
def aws_s3_event(bucket: str, key: str, size: int, etag: str) -> dict[str, Any]:
    """An S3 event notification as AWS S3 sends it to SQS (one ObjectCreated:Put record)."""
    now = datetime.now(UTC)
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": sqs_service.REGION,
                "eventTime": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:BENCHMARK"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": uuid.uuid4().hex[:16].upper()},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "oscar-bench",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "BENCHMARK"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    # AWS form-encodes the key but keeps its slashes.
                    "object": {
                        "key": quote_plus(key, safe="/"),
                        "size": size,
                        "eTag": etag,
                        "sequencer": f"{time.time_ns():016X}",
                    },
                },
            }
        ]
    }


def _sqs(servers: Servers, name: str) -> Plan:
    assert servers.sqs is not None
    minio = _minio_bucket(servers, name)
    queue = servers.sqs.client()
    url = queue.create_queue(QueueName=name)["QueueUrl"]
    client = minio.client()

    def drop(index: int) -> float:
        key = f"in/d{index}.txt"
        etag = client.put_object(name, key, io.BytesIO(BODY), len(BODY)).etag
        sent = time.time()
        body = json.dumps(aws_s3_event(name, key, len(BODY), etag))
        queue.send_message(QueueUrl=url, MessageBody=body)
        return sent

    bridge = {
        "type": "sqs",
        "queue": name,
        "endpoint": servers.sqs.endpoint,
        "region": sqs_service.REGION,
        "interval": SQS_WAIT,
        "credentials": {"access_key": sqs_service.ACCESS_KEY, "secret_key": sqs_service.SECRET_KEY},
    }
    entry = {"storage_provider": f"s3.{S3_ID}", "path": f"{name}/in"}
    return Plan(entry, {"s3": {S3_ID: _minio_provider(minio)}}, bridge, drop)


def _kafka(servers: Servers, name: str) -> Plan:
    from minio.notificationconfig import NotificationConfig, PrefixFilterRule, QueueConfig

    assert servers.kafka is not None
    minio = _minio_bucket(servers, name)
    config = NotificationConfig(
        queue_config_list=[
            QueueConfig(
                queue=f"arn:minio:sqs::{KAFKA_TARGET}:kafka",
                events=["s3:ObjectCreated:*"],
                config_id="oscar-bench",
                prefix_filter_rule=PrefixFilterRule("in/"),
            )
        ]
    )

    def subscribed() -> bool:
        minio.client().set_bucket_notification(name, config)
        return True

    common.wait_until(subscribed, timeout=60, what="MinIO's Kafka target", log=minio.log)
    put = _put(minio)
    bridge = {
        "type": "kafka",
        "bootstrap_servers": servers.kafka.bootstrap,
        "topic": servers.topic,
        "interval": 1.0,
    }
    entry = {"storage_provider": f"minio.{MINIO_ID}", "path": f"{name}/in"}
    plan_drop: Callable[[int], float] = lambda index: put(name, f"in/d{index}.txt")  # noqa: E731
    return Plan(entry, {"minio": {MINIO_ID: _minio_provider(minio)}}, bridge, plan_drop)


MINIO_RECONCILE = 1.0


def _minio_listen(servers: Servers, name: str) -> Plan:
    minio = _minio_bucket(servers, name)
    put = _put(minio)
    entry = {"storage_provider": f"minio.{MINIO_ID}", "path": f"{name}/in"}
    plan_drop: Callable[[int], float] = lambda index: put(name, f"in/d{index}.txt")  # noqa: E731
    # The test MinIO holds its listen stream in a 4 KiB buffer (docs/bridges.md): a lone upload
    # is found by the listing every `reconcile` seconds.
    bridge = {"type": "minio", "reconcile": MINIO_RECONCILE}
    return Plan(entry, {"minio": {MINIO_ID: _minio_provider(minio)}}, bridge, plan_drop)


SOURCES: dict[str, Source] = {
    source.key: source
    for source in (
        Source(
            "webdav",
            "webdav poll 1 s",
            "PROPFIND every 1 s, stable_polls 2",
            "file closed in the WsgiDAV folder",
            ("webdav",),
            _webdav(1.0),
            phase=1.0,
        ),
        Source(
            "webdav-fast",
            "webdav poll 0.5 s",
            "PROPFIND every 0.5 s, stable_polls 2",
            "file closed in the WsgiDAV folder",
            ("webdav",),
            _webdav(0.5),
            phase=0.5,
        ),
        Source(
            "dcache",
            "dcache SSE",
            "push (SSE); interval 5 s only bounds batching",
            "IN_CLOSE_WRITE from the dCache stand-in",
            ("webdav", "dcache"),
            _dcache,
        ),
        Source(
            "sqs",
            "sqs long poll",
            f"long poll, interval {SQS_WAIT:g} s = longest wait",
            "AWS-format S3 event sent by the bench (stand-in for S3 notifications)",
            ("sqs", "minio"),
            _sqs,
        ),
        Source(
            "kafka",
            "kafka (MinIO target)",
            "consumer poll 1 s",
            "PUT to MinIO, published by its Kafka target",
            ("kafka", "minio"),
            _kafka,
        ),
        Source(
            "minio",
            "minio listen",
            f"listen stream (held 4 KiB at a time by the test MinIO) + listing every "
            f"{MINIO_RECONCILE:g} s",
            "PUT to MinIO",
            ("minio",),
            _minio_listen,
            phase=MINIO_RECONCILE,
        ),
    )
}
