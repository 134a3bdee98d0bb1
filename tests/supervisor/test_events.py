"""Event parsing with realistic payloads from each source, in upstream's order."""

from __future__ import annotations

import base64
import json

import pytest

from supervisor.config import parse_config
from supervisor.errors import EventError
from supervisor.events import UNKNOWN, decode_event_payload, out_of_scope, parse_event

CONFIG = parse_config(
    """
name: grey
input:
- {storage_provider: minio.default, path: images/in}
- {storage_provider: webdav.dcache, path: /pnfs/desy.de/data/in}
- {storage_provider: minio.remote, path: remote-bucket/in}
""",
    {},
)

MINIO_EVENT = {
    "EventName": "s3:ObjectCreated:Put",
    "Key": "images/in/cat+photo%281%29.jpg",
    "Records": [
        {
            "eventVersion": "2.0",
            "eventSource": "minio:s3",
            "awsRegion": "",
            "eventTime": "2026-11-23T10:23:44.123Z",
            "eventName": "s3:ObjectCreated:Put",
            "userIdentity": {"principalId": "minio"},
            "requestParameters": {"principalId": "user-1", "sourceIPAddress": "10.244.0.1"},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "Config",
                "bucket": {
                    "name": "images",
                    "ownerIdentity": {"principalId": "minio"},
                    "arn": "arn:aws:s3:::images",
                },
                "object": {
                    "key": "in%2Fcat+photo%281%29.jpg",
                    "size": 1019645,
                    "eTag": "d41d8cd98f00b204e9800998ecf8427e",
                    "contentType": "image/jpeg",
                },
            },
        }
    ],
}

AWS_S3_EVENT = {
    "Records": [
        {
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "eu-west-1",
            "eventTime": "2026-11-23T09:00:00.000Z",
            "eventName": "ObjectCreated:Put",
            "s3": {
                "bucket": {"name": "my-aws-bucket", "arn": "arn:aws:s3:::my-aws-bucket"},
                "object": {"key": "data/sample%20one.csv", "size": 1024},
            },
        }
    ]
}

DCACHE_EVENT = {
    "event": {"name": "image2.jpg", "mask": ["IN_CREATE"]},
    "subscription": "https://prometheus.desy.de:3880/api/v1/events/channels/oyGc/subscriptions/inotify/AACvM",
}


def _bytes(document: object) -> bytes:
    return json.dumps(document).encode()


def test_minio_event() -> None:
    event = parse_event(_bytes(MINIO_EVENT), CONFIG)
    assert event.kind == "MINIO"
    assert event.provider == "minio.default"
    assert (event.bucket, event.key) == ("images", "in/cat photo(1).jpg")
    assert event.file_name == "cat photo(1).jpg"
    assert event.time == "2026-11-23T10:23:44.123Z"
    assert json.loads(event.raw) == MINIO_EVENT


def test_minio_event_for_another_input_bucket_uses_that_provider() -> None:
    document = json.loads(json.dumps(MINIO_EVENT))
    document["Records"][0]["s3"]["bucket"]["name"] = "remote-bucket"
    assert parse_event(_bytes(document), CONFIG).provider == "minio.remote"


def test_aws_s3_event() -> None:
    event = parse_event(_bytes(AWS_S3_EVENT), CONFIG)
    assert event.kind == "S3"
    assert event.provider == "s3.default"
    assert (event.bucket, event.key) == ("my-aws-bucket", "data/sample one.csv")


def test_dcache_event_takes_the_webdav_input_folder() -> None:
    event = parse_event(_bytes(DCACHE_EVENT), CONFIG)
    assert event.kind == "DCACHE"
    assert event.provider == "webdav.dcache"
    assert (event.bucket, event.key) == ("pnfs/desy.de/data/in", "image2.jpg")


def test_onedata_event() -> None:
    document = {"Key": "/space/in/file%201.txt", "Records": [{"eventSource": "OneTrigger"}]}
    event = parse_event(_bytes(document), CONFIG)
    assert event.kind == "ONEDATA"
    assert event.key == "/space/in/file 1.txt"


def test_rucio_event() -> None:
    document = {
        "event_type": "transfer-done",
        "payload": {"scope": "user.jdoe", "name": "run42.root", "dst-rse": "RSE1"},
        "created_at": "2026-11-23 08:00:00",
    }
    event = parse_event(_bytes(document), CONFIG)
    assert event.kind == "RUCIO"
    assert (event.bucket, event.key) == ("user.jdoe", "run42.root")


def test_delegated_event_keeps_its_storage_provider() -> None:
    document = {"storage_provider": "minio.remote", "event": json.dumps(MINIO_EVENT)}
    event = parse_event(_bytes(document), CONFIG)
    assert event.kind == "MINIO"
    assert event.provider == "minio.remote"
    assert event.key == "in/cat photo(1).jpg"


def test_api_gateway_event_with_storage_body() -> None:
    document = {"httpMethod": "POST", "path": "/job/grey", "body": json.dumps(MINIO_EVENT)}
    assert parse_event(_bytes(document), CONFIG).kind == "MINIO"


def test_api_gateway_event_with_base64_body_is_unknown() -> None:
    body = base64.b64encode(b"raw image bytes").decode()
    document = {"httpMethod": "POST", "body": body, "isBase64Encoded": True}
    event = parse_event(_bytes(document), CONFIG)
    assert event.kind == UNKNOWN
    assert event.body == b"raw image bytes"


@pytest.mark.parametrize(
    "payload",
    [b"plain text", base64.b64encode(b"\x89PNG binary"), b'{"anything": 1}', b"[1, 2]"],
)
def test_anything_else_is_unknown(payload: bytes) -> None:
    event = parse_event(payload, CONFIG)
    assert event.kind == UNKNOWN
    assert not event.is_storage
    assert event.body == payload


def test_storage_event_from_an_unknown_source_is_unknown() -> None:
    document = {"Records": [{"eventSource": "gcs", "s3": {}}]}
    assert parse_event(_bytes(document), CONFIG).kind == UNKNOWN


def test_storage_event_without_object_is_an_error() -> None:
    document = {"Records": [{"eventSource": "minio:s3", "s3": {"bucket": {"name": "b"}}}]}
    with pytest.raises(EventError, match=r"object\.key"):
        parse_event(_bytes(document), CONFIG)


def test_base64_transport_is_decoded() -> None:
    encoded = base64.b64encode(_bytes(MINIO_EVENT)) + b"\n"
    payload = decode_event_payload(encoded, base64_encoded=True)
    assert parse_event(payload, CONFIG).kind == "MINIO"


def test_bad_base64_transport_is_an_error() -> None:
    with pytest.raises(EventError, match="base64"):
        decode_event_payload(b"***not base64***", base64_encoded=True)


# --- scope: an event names only objects under the service's own inputs (audit H1) ----------

SCOPED = parse_config(
    """
name: alpha
input:
- {storage_provider: minio.default, path: alpha/in}
- {storage_provider: webdav.dcache, path: /pnfs/desy.de/data/in}
- {storage_provider: onedata.space, path: space/in}
storage_providers:
  minio:
    partner: {endpoint: "https://partner.example", access_key: a, secret_key: b}
""",
    {},
)


def _minio(bucket: str, key: str) -> dict[str, object]:
    document = json.loads(json.dumps(MINIO_EVENT))
    document["Records"][0]["s3"]["bucket"]["name"] = bucket
    document["Records"][0]["s3"]["object"]["key"] = key
    return document


def _scope(document: object) -> str | None:
    return out_of_scope(parse_event(_bytes(document), SCOPED), SCOPED)


def test_an_object_under_an_input_is_in_scope() -> None:
    assert _scope(_minio("alpha", "in/photo.jpg")) is None
    assert _scope(_minio("alpha", "in/sub/dir/photo.jpg")) is None


@pytest.mark.parametrize(
    ("bucket", "key"),
    [
        ("payroll", "salaries.csv"),  # another bucket (the audit's probe)
        ("alpha", "out/result.txt"),  # the service's bucket, outside the input folder
        ("alpha", "in"),  # the folder itself is not an object under it
        ("alpha", "inside/x"),  # a folder whose name only starts like the input's
        ("alpha", "in/../secret.txt"),
        ("alpha", "in//x"),
        ("alpha", "in/./x"),
    ],
)
def test_an_object_outside_the_inputs_is_out_of_scope(bucket: str, key: str) -> None:
    reason = _scope(_minio(bucket, key))
    assert reason is not None
    assert bucket in reason or key in reason


def test_every_event_form_is_scoped() -> None:
    foreign = _minio("payroll", "salaries.csv")
    forms = [
        {"event": json.dumps(foreign), "storage_provider": "minio.default"},
        {"event": foreign},
        {"httpMethod": "POST", "body": json.dumps(foreign)},
        {"httpMethod": "POST", "body": foreign},
        {
            "httpMethod": "POST",
            "isBase64Encoded": True,
            "body": base64.b64encode(_bytes(foreign)).decode(),
        },
        {"Records": [{**foreign["Records"][0], "eventSource": "aws:s3"}]},  # type: ignore[index]
    ]
    for document in forms:
        assert "payroll" in (_scope(document) or ""), document


def test_a_delegated_event_may_use_a_provider_the_service_defines_for_its_input_path() -> None:
    inside = {"event": _minio("alpha", "in/x.jpg"), "storage_provider": "minio.partner"}
    assert _scope(inside) is None
    undefined = {"event": _minio("alpha", "in/x.jpg"), "storage_provider": "minio.nowhere"}
    assert _scope(undefined) is not None
    outside = {"event": _minio("payroll", "x"), "storage_provider": "minio.partner"}
    assert _scope(outside) is not None


def test_dcache_names_are_plain_file_names_in_the_input_folder() -> None:
    assert _scope(DCACHE_EVENT) is None
    escaping = {**DCACHE_EVENT, "event": {"name": "../../etc/passwd"}}
    assert _scope(escaping) is not None


def test_onedata_keys_must_be_under_the_input_path() -> None:
    inside = {"Key": "/space/in/file.txt", "Records": [{"eventSource": "OneTrigger"}]}
    outside = {"Key": "/space/private/file.txt", "Records": [{"eventSource": "OneTrigger"}]}
    assert _scope(inside) is None
    assert _scope(outside) is not None


def test_a_provider_type_the_service_has_no_input_for_is_out_of_scope() -> None:
    rucio = {"event_type": "transfer-done", "payload": {"scope": "user.jdoe", "name": "r.root"}}
    assert _scope(rucio) is not None


def test_unknown_events_name_nothing_and_are_in_scope() -> None:
    assert _scope({"anything": "else"}) is None
    assert out_of_scope(parse_event(b"plain bytes", SCOPED), SCOPED) is None
