"""At least twenty distinct invalid definitions, each a 400 that names the offending field."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.fixtures.server import RunningServer
from tests.fixtures.services import minimal_service, unique_name

# (case id, fields merged into a minimal valid definition, field path the error must name)
INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("missing-name", {"name": None}, "name"),
    ("name-uppercase", {"name": "MyService"}, "name"),
    ("name-underscore", {"name": "my_service"}, "name"),
    ("name-too-long", {"name": "a" * 40}, "name"),
    ("name-leading-dash", {"name": "-svc"}, "name"),
    ("missing-image", {"image": None}, "image"),
    ("empty-image", {"image": ""}, "image"),
    ("missing-script", {"script": None}, "script"),
    ("memory-not-quantity", {"memory": "lots"}, "memory"),
    ("memory-negative", {"memory": "-1Gi"}, "memory"),
    ("cpu-not-quantity", {"cpu": "fast"}, "cpu"),
    ("cpu-zero", {"cpu": 0}, "cpu"),
    ("gpu-not-bool", {"enable_gpu": "maybe"}, "enable_gpu"),
    ("input-not-list", {"input": "bucket/in"}, "input"),
    ("input-missing-path", {"input": [{"storage_provider": "minio"}]}, "input[0].path"),
    (
        "input-unknown-provider",
        {"input": [{"storage_provider": "s3.nowhere", "path": "b/in"}]},
        "input[0].storage_provider",
    ),
    (
        "input-provider-type-not-allowed",
        {"input": [{"storage_provider": "onedata.x", "path": "b/in"}]},
        "input[0].storage_provider",
    ),
    (
        "output-path-escapes",
        {"output": [{"storage_provider": "minio", "path": "b/../../etc"}]},
        "output[0].path",
    ),
    (
        "output-bad-bucket-name",
        {"output": [{"storage_provider": "minio", "path": "Bad_Bucket/out"}]},
        "output[0].path",
    ),
    ("input-bucket-too-short", {"input": [{"path": "ab/in"}]}, "input[0].path"),
    ("input-bucket-ip-address", {"input": [{"path": "10.0.0.1/in"}]}, "input[0].path"),
    ("input-bucket-dot-dash", {"input": [{"path": "my.-bucket/in"}]}, "input[0].path"),
    ("input-bucket-xn-prefix", {"input": [{"path": "xn--bucket/in"}]}, "input[0].path"),
    (
        "output-bucket-s3alias-suffix",
        {"output": [{"storage_provider": "minio", "path": "data-s3alias/out"}]},
        "output[0].path",
    ),
    ("env-variables-not-map", {"environment": {"variables": ["A=1"]}}, "environment.variables"),
    (
        "env-bad-variable-name",
        {"environment": {"variables": {"1BAD": "x"}}},
        "environment.variables",
    ),
    ("labels-bad-key", {"labels": {"bad key!": "v"}}, "labels"),
    ("visibility-unknown", {"visibility": "secret"}, "visibility"),
    ("restricted-without-users", {"visibility": "restricted"}, "allowed_users"),
    ("isolation-unknown", {"isolation_level": "TEAM"}, "isolation_level"),
    ("synchronous-not-map", {"synchronous": 3}, "synchronous"),
    ("expose-port-not-int", {"expose": {"api_port": "http"}}, "expose.api_port"),
    (
        "replica-unknown-cluster",
        {"replicas": [{"type": "oscar", "cluster_id": "nowhere", "service_name": "x"}]},
        "replicas[0].cluster_id",
    ),
    (
        "provider-id-invalid",
        {"storage_providers": {"minio": {"bad id!": {"endpoint": "http://m:9000"}}}},
        "storage_providers.minio",
    ),
    ("image-pull-secrets-not-list", {"image_pull_secrets": "regcred"}, "image_pull_secrets"),
    # Security audit M11: a trailing newline is not part of a name.
    ("name-trailing-newline", {"name": "abc\n"}, "name"),
    ("label-value-trailing-newline", {"labels": {"app": "v\n"}}, "labels"),
    ("env-name-trailing-newline", {"environment": {"variables": {"A\n": "x"}}}, "environment"),
    ("pull-secret-trailing-newline", {"image_pull_secrets": ["reg\n"]}, "image_pull_secrets"),
    # H2: the image is an OCI reference, never shell syntax.
    ("image-shell-quote", {"image": 'alpine";touch${IFS}/tmp/x;"'}, "image"),
    ("image-command-substitution", {"image": "x$(touch${IFS}/tmp/x)"}, "image"),
    ("image-nul", {"image": "alpine\0"}, "image"),
    ("image-too-long", {"image": "a" * 513}, "image"),
    # H3: the Slurm flags annotation.
    (
        "slurm-flags-newline",
        {"annotations": {"slurm-job.vk.io/flags": "--comment='x\ntouch /tmp/x'"}},
        "annotations",
    ),
    ("slurm-flags-unbalanced", {"annotations": {"job.vk.io/flags": "--comment='x"}}, "annotations"),
    ("slurm-flags-not-option", {"annotations": {"job.vk.io/flags": "touch"}}, "annotations"),
    # L18: flags that redirect the job's files or change its identity or environment.
    (
        "slurm-flags-output",
        {"annotations": {"slurm-job.vk.io/flags": "--output=/etc/passwd"}},
        "annotations",
    ),
    ("slurm-flags-short-chdir", {"annotations": {"job.vk.io/flags": "-D/etc"}}, "annotations"),
    ("slurm-flags-export", {"annotations": {"job.vk.io/flags": "--export=ALL"}}, "annotations"),
    ("annotation-too-large", {"annotations": {"note": "x" * 65537}}, "annotations"),
    # L1 / L2: bounded values.
    ("cpu-overflow", {"cpu": "1e1000000"}, "cpu"),
    ("cpu-too-many", {"cpu": "1e308"}, "cpu"),
    ("memory-too-small", {"memory": "1e-30"}, "memory"),
    ("memory-too-large", {"memory": "2Pi"}, "memory"),
    ("log-level-unknown", {"log_level": "verbose"}, "log_level"),
    (
        "env-too-many",
        {"environment": {"variables": {f"V{i}": "x" for i in range(1001)}}},
        "environment.variables",
    ),
    (
        "env-case-duplicate",
        {"environment": {"variables": {"NAME": "a", "Name": "b"}}},
        "environment.variables",
    ),
]


def _definition(fields: dict[str, Any]) -> dict[str, Any]:
    merged = {**minimal_service(), **fields}
    return {k: v for k, v in merged.items() if v is not None}


def test_there_are_at_least_twenty_cases() -> None:
    assert len({case for case, _, _ in INVALID}) >= 20


@pytest.mark.parametrize(("fields", "field"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_definition_is_400_naming_the_field(
    api: httpx.Client, fields: dict[str, Any], field: str
) -> None:
    definition = _definition(fields)
    response = api.post("/system/services", json=definition)
    assert response.status_code == 400, response.text
    body = response.json()
    named = [e["field"] for e in body["errors"]]
    assert any(
        f == field or f.startswith(field + ".") or f.startswith(field + "[") for f in named
    ), named
    assert all(e["message"] for e in body["errors"])
    assert field.split("[")[0].split(".")[0] in body["detail"]
    # Nothing was stored.
    if "name" in definition and isinstance(definition["name"], str):
        path = quote(definition["name"], safe="")
        assert api.get(f"/system/services/{path}").status_code in {400, 404}


@pytest.mark.parametrize(
    "bucket", ["ab", "192.168.0.1", "a..b", "a-.b", "xn--abc", "abc-s3alias", "abc-"]
)
def test_bucket_against_s3_rules_is_400_and_leaves_nothing(
    server: RunningServer, api: httpx.Client, bucket: str
) -> None:
    """The rule validation applies is the store's: refused up front, never half-created."""
    name = unique_name()
    definition = minimal_service(
        name, input=[{"path": f"{name}/in"}], output=[{"path": f"{bucket}/out"}]
    )
    response = api.post("/system/services", json=definition)
    assert response.status_code == 400, response.text
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == ["output[0].path"]
    assert f"'{bucket}'" in errors[0]["message"]
    assert api.get(f"/system/services/{name}").status_code == 404
    # Not even the valid input bucket was created.
    with pytest.raises(ClientError) as missing:
        server.s3().head_bucket(Bucket=name)
    assert missing.value.response["Error"]["Code"] in {"404", "NoSuchBucket"}


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ('{"name": "fz-s", "image": "alpine", "script": "echo\\udfff"}', "application/json"),
        ('name: fz-y\nimage: "\\ud800"\nscript: echo\n', "application/yaml"),
    ],
)
def test_lone_surrogates_are_a_400_naming_the_field(
    api: httpx.Client, body: str, content_type: str
) -> None:
    # Found by the fuzz suite: a 500 from the registry's JSON dump or from YAML re-encoding.
    response = api.post(
        "/system/services", content=body.encode(), headers={"Content-Type": content_type}
    )
    assert response.status_code == 400, response.text
    assert "surrogate" in response.text
    assert ("script" in response.text) or ("image" in response.text)


@pytest.mark.parametrize("path", ["9" * 1000, "bucket/" + "f" * 800])
def test_a_folder_too_long_for_an_object_key_is_a_400(api: httpx.Client, path: str) -> None:
    # Found by the fuzz suite: the store refused the folder marker and the create was a 502.
    definition = minimal_service(input=[{"storage_provider": "minio.default", "path": path}])
    response = api.post("/system/services", json=definition)
    assert response.status_code == 400, response.text
    assert "input[0].path" in response.text
