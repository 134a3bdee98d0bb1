"""Values refused at creation: names with a trailing newline, unsafe images and Slurm flags,
unbounded resources and maps (security audit M11, H2, H3, L1, L2)."""

from __future__ import annotations

from typing import Any

import pytest

from oscar.errors import InvalidServiceError
from oscar.models.quantity import parse_quantity, positive_quantity
from oscar.models.service import Service
from oscar.models.validation import parse_service
from tests.fixtures.services import minimal_service


def _refused_fields(**fields: Any) -> list[str]:
    with pytest.raises(InvalidServiceError) as refused:
        parse_service(minimal_service("svc", **fields))
    assert all(e.message for e in refused.value.errors)
    return [e.field for e in refused.value.errors]


# --- M11: a trailing newline is never part of a name -----------------------------------------
TRAILING_NEWLINE: list[tuple[str, dict[str, Any], str]] = [
    ("service-name", {"name": "abc\n"}, "name"),
    ("label-key", {"labels": {"app\n": "v"}}, "labels"),
    ("label-value", {"labels": {"app": "v\n"}}, "labels"),
    ("label-key-prefix", {"labels": {"example.com\n/app": "v"}}, "labels"),
    ("annotation-key", {"annotations": {"note\n": "v"}}, "annotations"),
    ("env-variable", {"environment": {"variables": {"NAME\n": "v"}}}, "environment.variables"),
    ("env-secret", {"environment": {"secrets": {"NAME\n": "v"}}}, "environment.secrets"),
    ("image-pull-secret", {"image_pull_secrets": ["regcred\n"]}, "image_pull_secrets"),
    (
        "provider-id",
        {"storage_providers": {"minio": {"store\n": {"endpoint": "http://m:9000"}}}},
        "storage_providers.minio",
    ),
    ("node-name", {"interlink_node_name": "node.a\nb"}, "interlink_node_name"),
]


@pytest.mark.parametrize(
    ("fields", "field"), [c[1:] for c in TRAILING_NEWLINE], ids=[c[0] for c in TRAILING_NEWLINE]
)
def test_a_trailing_newline_is_refused(fields: dict[str, Any], field: str) -> None:
    fields = {"name": "svc", **fields}
    with pytest.raises(InvalidServiceError) as refused:
        parse_service({"image": "alpine", "script": "echo", **fields})
    assert [e.field for e in refused.value.errors] == [field]


def test_the_same_names_without_the_newline_are_accepted() -> None:
    service = parse_service(
        minimal_service(
            "abc",
            labels={"example.com/app": "v"},
            annotations={"note": "v"},
            environment={"variables": {"NAME": "v"}, "secrets": {"TOKEN": "s"}},
            image_pull_secrets=["regcred"],
            storage_providers={"minio": {"store": {"endpoint": "http://m:9000"}}},
        )
    )
    assert service.name == "abc"


def test_a_quantity_with_a_newline_inside_is_refused() -> None:
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        parse_quantity("1\n2")


# --- H2: the image is an OCI reference, never shell syntax -----------------------------------
@pytest.mark.parametrize(
    "image",
    [
        'alpine";touch${IFS}/tmp/PWNED;"',
        "x$(touch${IFS}/tmp/PWNED)",
        "alpine`id`",
        "alpine;id",
        "alpine|id",
        "alpine&id",
        "alpine'x",
        "alpine\\x",
        "alpine\0",
        "alp\x7fine",
        "alp\x1bine",
        "alpine latest",
        "alpine\nid",
        "alpine\u00e9",
        "a" * 513,
    ],
    ids=repr,
)
def test_an_image_outside_the_oci_reference_alphabet_is_refused(image: str) -> None:
    assert _refused_fields(image=image) == ["image"]


@pytest.mark.parametrize(
    "image",
    [
        "alpine",
        "ghcr.io/grycap/imagemagick:1.0",
        "registry.example.com:5000/team/app_x:v1.2-rc+build",
        "alpine@sha256:" + "0" * 64,
        "docker://alpine:3.20",
        "a" * 512,
    ],
)
def test_valid_image_references_are_accepted(image: str) -> None:
    assert parse_service(minimal_service("svc", image=image)).image == image


# --- H3 / L2: the Slurm flags annotations ----------------------------------------------------
@pytest.mark.parametrize("key", ["slurm-job.vk.io/flags", "job.vk.io/flags"])
@pytest.mark.parametrize(
    "value",
    [
        "--comment='x\ntouch /tmp/PWNED'",
        "--comment='x\rtouch /tmp/PWNED'",
        "--comment='x\0y'",
        "--comment='open",
        "--time=1:00 touch",
        "--time=1:00\ntouch",
        "--output=/etc/passwd",
        "--time=1:00 -o/etc/passwd",
        "--uid=0",
    ],
    ids=repr,
)
def test_unsafe_slurm_flags_are_refused(key: str, value: str) -> None:
    with pytest.raises(InvalidServiceError) as refused:
        parse_service(minimal_service("svc", annotations={key: value}))
    [error] = refused.value.errors
    assert error.field == "annotations" and key in error.message


def test_well_formed_slurm_flags_are_accepted() -> None:
    flags = "--time=00:10:00 --comment='two words' -N1 --nodes=1"
    service = parse_service(minimal_service("svc", annotations={"slurm-job.vk.io/flags": flags}))
    assert service.annotations["slurm-job.vk.io/flags"] == flags


def test_other_annotations_may_hold_any_text() -> None:
    note = "line one\nline 'two"
    assert parse_service(minimal_service("svc", annotations={"note": note})).annotations == {
        "note": note
    }


def test_annotation_values_are_bounded() -> None:
    parse_service(minimal_service("svc", annotations={"note": "x" * 65536}))
    assert _refused_fields(annotations={"note": "x" * 65537}) == ["annotations"]


# --- L1 / L2: resources ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("cpu", "1e1000000"),
        ("cpu", "1e-1000000"),
        ("cpu", "1e308"),
        ("cpu", "1e400"),
        ("cpu", "10001"),
        ("cpu", float("inf")),
        ("cpu", float("nan")),
        ("cpu", "inf"),
        ("cpu", "NaN"),
        ("memory", "1e1000000"),
        ("memory", "1e-30"),
        ("memory", "1023Ki"),
        ("memory", "2Pi"),
        ("memory", 1e400),
        ("ephemeral_storage_request", "1e1000000"),
        ("total_cpu", "1e" + "9" * 5000),
    ],
    ids=repr,
)
def test_unreasonable_resources_are_refused(field: str, value: object) -> None:
    assert _refused_fields(**{field: value}) == [field]


def test_volume_size_out_of_range_is_refused() -> None:
    volume = {"name": "v", "size": "1e1000000", "mount_path": "/data"}
    assert _refused_fields(volume=volume) == ["volume.size"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("cpu", "10000"), ("cpu", "1m"), ("memory", "1Mi"), ("memory", "1Pi"), ("memory", "1e9")],
)
def test_resources_at_the_bounds_are_accepted(field: str, value: str) -> None:
    assert getattr(parse_service(minimal_service("svc", **{field: value})), field) == value


def test_positive_quantity_bounds_are_inclusive() -> None:
    from decimal import Decimal

    assert positive_quantity("2", minimum=Decimal(2), maximum=Decimal(2)) == "2"
    with pytest.raises(ValueError, match="at most"):
        positive_quantity("3", maximum=Decimal(2))


# --- L2: environment -------------------------------------------------------------------------
def test_at_most_a_thousand_variables() -> None:
    many = {f"V{i}": "x" for i in range(1000)}
    parse_service(minimal_service("svc", environment={"variables": many}))
    many["ONE_MORE"] = "x"
    assert _refused_fields(environment={"variables": many}) == ["environment.variables"]


def test_variables_and_secrets_count_together() -> None:
    variables = {f"V{i}": "x" for i in range(600)}
    secrets = {f"S{i}": "x" for i in range(600)}
    refused = _refused_fields(environment={"variables": variables, "secrets": secrets})
    assert refused == ["environment"]


@pytest.mark.parametrize(
    "environment",
    [
        {"variables": {"NAME": "a", "Name": "b"}},
        {"secrets": {"token": "a", "TOKEN": "b"}},
        {"variables": {"TOKEN": "a"}, "secrets": {"token": "b"}},
        {"variables": {"TOKEN": "a"}, "secrets": {"TOKEN": "b"}},
    ],
    ids=repr,
)
def test_env_names_colliding_by_case_are_refused(environment: dict[str, Any]) -> None:
    [field] = _refused_fields(environment=environment)
    assert field.startswith("environment")


def test_the_service_model_alone_applies_the_same_rules() -> None:
    """`Service.model_validate` (used by the registry and FDL) refuses what the API refuses."""
    with pytest.raises(ValueError, match="image"):
        Service.model_validate(minimal_service("svc", image="x$(id)"))
