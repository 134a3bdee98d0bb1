"""Service model: upstream defaults, normalisation, tolerant parsing and lossless round-trips."""

from __future__ import annotations

import json
import logging

import pytest
import yaml

from oscar.errors import InvalidServiceError
from oscar.models.service import Service
from oscar.models.validation import bucket_name_problem, parse_service
from oscar.storage.embedded.store import StoreError, check_bucket_name
from tests.fixtures.services import full_service, minimal_service


def test_minimal_service_gets_upstream_defaults() -> None:
    service = parse_service(minimal_service("svc"))
    assert service.memory == "256Mi"
    assert service.cpu == "0.2"
    assert service.log_level == "INFO"
    assert service.enable_gpu is False
    assert service.visibility == "private"
    assert service.input == [] and service.output == []


def test_path_without_slash_gets_service_name_as_bucket() -> None:
    data = minimal_service("svc", input=[{"storage_provider": "minio", "path": "in"}])
    service = parse_service(data)
    assert service.input[0].path == "svc/in"
    assert service.input[0].storage_provider == "minio.default"


@pytest.mark.parametrize(("given", "expected"), [(1, "1"), (0.5, "0.5"), ("250m", "250m")])
def test_cpu_as_number_or_string(given: object, expected: str) -> None:
    assert parse_service(minimal_service(cpu=given)).cpu == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("debug", "DEBUG"),
        ("Critical", "CRITICAL"),
        ("notset", "NOTSET"),
        ("warn", "WARNING"),
        ("", "INFO"),
        (None, "INFO"),
    ],
)
def test_log_level_normalised(given: str | None, expected: str) -> None:
    assert parse_service(minimal_service(log_level=given)).log_level == expected


@pytest.mark.parametrize("given", ["verbose", "TRACE", 3])
def test_unknown_log_level_is_refused(given: object) -> None:
    with pytest.raises(InvalidServiceError) as refused:
        parse_service(minimal_service(log_level=given))
    assert [e.field for e in refused.value.errors] == ["log_level"]


def test_keys_match_case_insensitively() -> None:
    service = parse_service({"Name": "svc", "IMAGE": "alpine", "Script": "echo"})
    assert (service.name, service.image) == ("svc", "alpine")


def test_unknown_fields_are_ignored_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        service = parse_service(minimal_service("svc", brand_new_field={"x": 1}))
    assert service.name == "svc"
    assert "brand_new_field" in caplog.text
    assert "brand_new_field" not in service.model_dump()


def test_json_round_trip_is_lossless() -> None:
    service = parse_service(full_service())
    again = Service.model_validate(json.loads(service.model_dump_json()))
    assert again == service


def test_yaml_round_trip_is_lossless() -> None:
    service = parse_service(full_service())
    text = yaml.safe_dump(service.model_dump(mode="json", by_alias=True))
    assert Service.model_validate(yaml.safe_load(text)) == service


def _contains(actual: object, expected: object) -> bool:
    """Whether `actual` holds everything in `expected` (defaults may add more keys)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and _contains(actual[k], v) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(_contains(a, e) for a, e in zip(actual, expected, strict=True))
        )
    return actual == expected


def test_full_service_keeps_every_field() -> None:
    data = full_service("svc-full")
    dumped = parse_service(data).model_dump(mode="json", by_alias=True)
    for key, value in data.items():
        if key in {"cpu", "storage_providers", "input", "output", "mount"}:
            continue  # normalised; checked below
        assert _contains(dumped[key], value), key
    assert dumped["cpu"] == "1.5"
    assert dumped["storage_providers"]["webdav"]["dcache"]["hostname"] == "dcache.example.org"
    assert dumped["output"][1]["prefix"] == ["r-"]


def test_upstream_aliases_are_emitted() -> None:
    dumped = parse_service(full_service()).model_dump(mode="json", by_alias=True)
    assert dumped["expose"]["nodePort"] == 30080


def test_several_errors_reported_together() -> None:
    with pytest.raises(InvalidServiceError) as excinfo:
        parse_service({"name": "Bad_Name", "memory": "lots"})
    fields = {error.field for error in excinfo.value.errors}
    assert {"name", "image", "script", "memory"} <= fields


VALID_BUCKETS = [
    "abc",
    "123",  # all digits is allowed by S3 (it is not an IP address)
    "my-bucket",
    "my.bucket.1",
    "a" * 63,
    "1.2.3",
    "xn-ok",
    "s3alias-first",
]
INVALID_BUCKETS = {
    "ab": "3-63 characters",
    "a" * 64: "3-63 characters",
    "My-Bucket": "lowercase",
    "my_bucket": "lowercase",
    "-abc": "start and end",
    "abc-": "start and end",
    ".abc": "start and end",
    "abc.": "start and end",
    "abc\n": "lowercase",  # `match` with `$` would accept the trailing newline
    "192.168.1.1": "IP address",
    "a..b": "'..'",
    "a.-b": "'.-'",
    "a-.b": "'-.'",
    "xn--abc": "prefix 'xn--'",
    "sthree-abc": "prefix 'sthree-'",
    "abc-s3alias": "suffix '-s3alias'",
    "abc--ol-s3": "suffix '--ol-s3'",
}


@pytest.mark.parametrize("name", VALID_BUCKETS)
def test_valid_bucket_names(name: str) -> None:
    assert bucket_name_problem(name) is None
    check_bucket_name(name)  # the embedded store accepts exactly what validation accepts
    service = parse_service(minimal_service("svc", input=[{"path": f"{name}/in"}]))
    assert service.input[0].bucket == name


@pytest.mark.parametrize(("name", "reason"), INVALID_BUCKETS.items(), ids=repr)
def test_invalid_bucket_names_name_the_bucket_and_the_rule(name: str, reason: str) -> None:
    problem = bucket_name_problem(name)
    assert problem is not None
    assert f"'{name}'" in problem and reason in problem
    with pytest.raises(StoreError) as refused:
        check_bucket_name(name)
    assert (refused.value.code, refused.value.message) == ("InvalidBucketName", problem)


@pytest.mark.parametrize("name", [n for n in INVALID_BUCKETS if "\n" not in n])
def test_invalid_bucket_is_reported_at_its_path(name: str) -> None:
    data = minimal_service(
        "svc",
        input=[{"path": "fine-bucket/in"}],
        output=[{"storage_provider": "minio", "path": f"{name}/out"}],
    )
    with pytest.raises(InvalidServiceError) as excinfo:
        parse_service(data)
    assert [(e.field, e.message) for e in excinfo.value.errors] == [
        ("output[0].path", bucket_name_problem(name))
    ]
