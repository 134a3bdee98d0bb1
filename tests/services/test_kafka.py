"""Smoke test: the KRaft broker takes records and keeps a consumer group's committed offsets."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import pytest

from tests.services import common
from tests.services import minio as minio_service
from tests.services.kafka import KafkaBroker

pytestmark = pytest.mark.kafka


def _consumer(broker: KafkaBroker, topic: str, group: str, timeout_ms: int = 3000):
    from kafka import KafkaConsumer

    return KafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=timeout_ms,
    )


def test_records_round_trip_and_committed_offsets_are_kept(kafka: KafkaBroker) -> None:
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    topic, group = f"smoke-{uuid.uuid4().hex[:8]}", f"group-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    for index in range(5):
        producer.send(topic, key=str(index).encode(), value=f"event {index}".encode())
    producer.flush()
    producer.close()

    first = _consumer(kafka, topic, group)
    taken = []
    for record in first:
        taken.append(record.value)
        if len(taken) == 3:
            first.commit()  # the first three are done; the rest is not committed
            break
    first.close()
    assert taken == [b"event 0", b"event 1", b"event 2"]

    # A new member of the same group starts after the committed offset, not from the start.
    second = _consumer(kafka, topic, group)
    rest = [record.value for record in second]
    second.close()
    assert rest == [b"event 3", b"event 4"]


@pytest.mark.minio
def test_minio_publishes_bucket_events_to_a_topic(kafka: KafkaBroker, tmp_path: Path) -> None:
    """MinIO's own Kafka notification target: the feed the Kafka bridge of issue 19 reads."""
    from minio.notificationconfig import NotificationConfig, PrefixFilterRule, QueueConfig

    topic = f"minio-events-{uuid.uuid4().hex[:8]}"
    target = {
        "MINIO_NOTIFY_KAFKA_ENABLE_OSCAR": "on",
        "MINIO_NOTIFY_KAFKA_BROKERS_OSCAR": kafka.bootstrap,
        "MINIO_NOTIFY_KAFKA_TOPIC_OSCAR": topic,
    }
    with minio_service.running(tmp_path / "minio", extra_env=target) as server:
        client = server.client()
        client.make_bucket("photos")
        config = NotificationConfig(
            queue_config_list=[
                QueueConfig(
                    queue="arn:minio:sqs::OSCAR:kafka",
                    events=["s3:ObjectCreated:*"],
                    config_id="oscar",
                    prefix_filter_rule=PrefixFilterRule("in/"),
                )
            ]
        )

        def subscribed() -> bool:
            client.set_bucket_notification("photos", config)
            return True

        common.wait_until(subscribed, timeout=60, what="MinIO's Kafka target", log=server.log)
        body = b"jpeg bytes"
        client.put_object("photos", "in/cat one.jpg", io.BytesIO(body), len(body))
        client.put_object("photos", "other/skip.jpg", io.BytesIO(body), len(body))

        consumer = _consumer(kafka, topic, f"group-{uuid.uuid4().hex[:8]}", timeout_ms=10000)
        records = [record.value for record in consumer]  # until 10 s pass with none
        consumer.close()
    assert len(records) == 1, records  # other/ is not subscribed
    event = json.loads(records[0])
    assert event["EventName"] == "s3:ObjectCreated:Put"
    assert event["Key"] == "photos/in/cat one.jpg"
    [entry] = event["Records"]
    assert entry["s3"]["bucket"]["name"] == "photos"
    # Form-encoded, slash included (MinIO's habit; AWS S3 keeps the slash): the bridge must
    # unquote_plus it.
    assert entry["s3"]["object"]["key"] == "in%2Fcat+one.jpg"
    assert entry["s3"]["object"]["size"] == len(body)
