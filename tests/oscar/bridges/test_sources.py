"""What each source does beyond the shared contract, against its real server (or stand-in)."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from oscar.bridges.base import message_events
from oscar.events.records import object_records
from oscar.models.validation import parse_service
from tests.fixtures.bridges import (
    ROOM,
    DCacheSite,
    Harness,
    KafkaSite,
    MinioSite,
    SqsSite,
    WebDavSite,
    aws_notification,
    collect,
    drain,
    events,
    site_params,
)
from tests.fixtures.dcache import DCacheStandIn


@pytest.mark.parametrize("site", site_params("webdav"), indirect=True)
def test_webdav_takes_a_file_once_it_stopped_growing(harness: Harness) -> None:
    site: WebDavSite = harness.site  # type: ignore[assignment]
    source = harness.source(site.bridge(harness.name, harness.name, interval=0.05))
    growing = site.server.root / f"{harness.name}-in" / "big.bin"
    stop = threading.Event()
    growing.write_bytes(b"first part")
    assert source.fetch(stop, ROOM).events == []  # seen once
    growing.write_bytes(b"first part, second part")
    assert source.fetch(stop, ROOM).events == []  # changed: seen once again
    settled = source.fetch(stop, ROOM)  # the same twice: taken
    [event] = settled.events
    assert f"|{len(b'first part, second part')}|" in event.dedup
    source.commit(settled)
    assert drain(source, 2) == []
    # A new version of the file (rewritten) is a new event.
    growing.write_bytes(b"third")
    [again] = events(collect(source, 1))
    assert again.dedup != event.dedup


@pytest.mark.parametrize("site", site_params("webdav"), indirect=True)
def test_webdav_watches_subfolders_and_names_files_under_the_input(harness: Harness) -> None:
    site: WebDavSite = harness.site  # type: ignore[assignment]
    folder = site.server.root / f"{harness.name}-in" / "2026" / "12"
    folder.mkdir(parents=True)
    (folder / "scan.tif").write_bytes(b"tiff")
    source = harness.source(site.bridge(harness.name, harness.name, interval=0.05))
    [event] = events(collect(source, 1))
    assert json.loads(event.event)["event"]["name"] == "2026/12/scan.tif"
    flat = harness.source(
        site.bridge(f"{harness.name}-flat", harness.name, interval=0.05, recursive=False)
    )
    assert drain(flat, 3) == []


def test_dcache_replaces_a_forgotten_channel_and_says_so(
    dcache_standin: DCacheStandIn, webdav: Any, tmp_path: Any
) -> None:
    site = DCacheSite(server=webdav, standin=dcache_standin)
    harness = Harness(site, tmp_path)
    try:
        first = harness.source()
        site.drop(harness.name, ["a.txt"])
        for batch in collect(first, 1):
            first.commit(batch)
        first.close()
        dcache_standin.forget_channels()  # away longer than dCache keeps a channel
        second = harness.source()
        assert "forgotten" in second.notice
        site.drop(harness.name, ["b.txt"])
        [event] = events(collect(second, 1))
        assert json.loads(event.event)["event"]["name"] == "b.txt"
        dcache_standin.report_loss()
        drain(second, 2)
        assert "EVENT_LOSS" in second.notice
    finally:
        harness.close()


@pytest.mark.parametrize("site", site_params("minio"), indirect=True)
def test_minio_listen_stream_brings_events_between_listings(harness: Harness) -> None:
    """With listings an hour apart, what arrives comes through MinIO's listen stream (the
    test MinIO writes it out 4 KiB at a time, hence a dozen objects)."""
    site: MinioSite = harness.site  # type: ignore[assignment]
    source = harness.source(site.bridge(harness.name, harness.name, reconcile=3600))
    assert drain(source, 1) == []  # the first listing: an empty folder
    names = [f"object-with-a-long-name-{i:02d}.bin" for i in range(12)]
    site.drop(harness.name, names)
    got = events(collect(source, 5))
    assert {e.subject.rsplit("/", 1)[-1] for e in got} <= set(names)


@pytest.mark.parametrize("site", site_params("sqs"), indirect=True)
def test_sqs_reads_sns_wrapped_notifications_and_raw_messages(harness: Harness) -> None:
    site: SqsSite = harness.site  # type: ignore[assignment]
    source = harness.source()
    note = aws_notification(harness.name, "in/wrapped.txt", 7, "0A")
    site.send(harness.name, [json.dumps({"Type": "Notification", "Message": json.dumps(note)})])
    [event] = events(collect(source, 1))
    assert json.loads(event.event)["Records"][0]["s3"]["object"]["key"] == "in/wrapped.txt"
    site.sqs.client().create_queue(QueueName=f"{harness.name}_raw")
    raw = harness.source(
        site.bridge(f"{harness.name}-raw", harness.name, payload="raw", queue=f"{harness.name}_raw")
    )
    url = site.sqs.client().get_queue_url(QueueName=f"{harness.name}_raw")["QueueUrl"]
    site.sqs.client().send_message(QueueUrl=url, MessageBody="any text at all")
    [message] = events(collect(raw, 1))
    assert (message.event, message.routed) == ("any text at all", False)


@pytest.mark.parametrize("site", site_params("kafka"), indirect=True)
def test_kafka_records_of_other_buckets_are_ignored(harness: Harness) -> None:
    """The topic carries every bucket's events: only the service's own become events."""
    site: KafkaSite = harness.site  # type: ignore[assignment]
    source = harness.source()
    other = f"{harness.name}-x"
    site.prepare(other)
    site.drop(other, ["elsewhere.txt"])
    site.drop(harness.name, ["mine.txt"])
    batches = collect(source, 1)
    assert [e.subject for e in events(batches)] == [f"{harness.name}/in/mine.txt"]


def test_message_events_refuse_what_is_no_notification_and_skip_test_events() -> None:
    service = parse_service(
        {
            "name": "svc",
            "image": "x",
            "script": "x",
            "input": [{"storage_provider": "s3.a", "path": "bucket-a/in"}],
            "storage_providers": {"s3": {"a": {"region": "us-east-1"}}},
        }
    )
    refused = message_events(service, "not json", "s3", "sqs:q:1")
    assert refused.events[0].refused and refused.events[0].dedup == "svc:sqs:q:1"
    test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"})
    assert message_events(service, test_event, "s3", "sqs:q:2").events == []
    mine = aws_notification("bucket-a", "in/x y.txt", 3, "0F")
    other = aws_notification("bucket-a", "out/x.txt", 3, "10")
    both = {"Records": mine["Records"] + other["Records"]}
    batch = message_events(service, json.dumps(both), "s3", "sqs:q:3")
    assert [e.subject for e in batch.events] == ["bucket-a/in/x y.txt"]
    assert batch.ignored == 1
    assert batch.events[0].dedup == "svc:s3.a:bucket-a/in/x y.txt:0F"


def test_object_records_skip_folders_and_removals() -> None:
    created = aws_notification("b1", "in/folder/", 0, "1")
    removed = aws_notification("b1", "in/x", 1, "2")
    removed["Records"][0]["eventName"] = "ObjectRemoved:Delete"
    assert object_records(created) == []
    assert object_records(removed) == []
    assert object_records({"Records": "x"}) is None
    assert object_records("text") is None
