"""Service bodies as upstream's Go clients marshal them, against a running `oscar serve`.

The tables below are upstream's JSON tags, field by field: `grycap/oscar` 7ade09e (v4.1.2)
`pkg/types/service.go`, `storage.go`, `cluster.go`, `replica.go`, `federation.go`, and v3.3.0
(the version `oscar-cli` 78e73f6 links, `go.mod`). Go's `encoding/json` writes every field
without `omitempty`, zero-valued: nil slices, maps and pointers as `null`, structs as objects
of zeros (even with `omitempty`). `go_zero` does the same from a table; `go_decodes` checks an
answer the way `json.Unmarshal` into the same struct would (a type mismatch is an error).
"""

from __future__ import annotations

import copy
import re
from typing import Any

import httpx
import pytest

from tests.fixtures.services import unique_name

# A field: (json key, kind, omitempty, nested table for structs).
# Kinds: str, bool, int, list, map, ptr (nil pointer), struct.
Field = tuple[str, str, bool, "list[Field] | None"]

SYNCHRONOUS: list[Field] = [("min_scale", "int", False, None), ("max_scale", "int", False, None)]
EXPOSE_V4: list[Field] = [
    ("min_scale", "int", False, None),
    ("max_scale", "int", False, None),
    ("api_port", "list", True, None),
    ("cpu_threshold", "int", False, None),
    ("rewrite_target", "bool", False, None),
    ("nodePort", "list", True, None),
    ("default_command", "bool", False, None),
    ("set_auth", "bool", False, None),
    ("auth_type", "str", True, None),
    ("health_path", "str", False, None),
    ("probe_mode", "str", True, None),
]
EXPOSE_V3: list[Field] = [
    ("min_scale", "int", False, None),
    ("max_scale", "int", False, None),
    ("api_port", "int", True, None),
    ("cpu_threshold", "int", False, None),
    ("rewrite_target", "bool", False, None),
    ("nodePort", "int", False, None),
    ("default_command", "bool", False, None),
    ("set_auth", "bool", False, None),
]
IO_V4: list[Field] = [
    ("storage_provider", "str", False, None),
    ("path", "str", False, None),
    ("suffix", "list", True, None),
    ("prefix", "list", True, None),
    ("options", "str", True, None),
]
IO_V3: list[Field] = IO_V4[:4]
VOLUME_STATUS: list[Field] = [
    ("enabled", "bool", False, None),
    ("name", "str", True, None),
    ("phase", "str", True, None),
    ("error", "str", True, None),
]

SERVICE_V4: list[Field] = [
    ("name", "str", False, None),
    ("cluster_id", "str", False, None),
    ("memory", "str", False, None),
    ("cpu", "str", False, None),
    ("total_memory", "str", False, None),
    ("total_cpu", "str", False, None),
    ("ephemeral_storage_request", "str", False, None),
    ("enable_gpu", "bool", False, None),
    ("enable_sgx", "bool", False, None),
    ("image_prefetch", "bool", False, None),
    ("synchronous", "struct", False, SYNCHRONOUS),
    ("federation", "ptr", True, None),
    ("log_level", "str", False, None),
    ("image", "str", False, None),
    ("alpine", "bool", False, None),
    ("token", "str", False, None),
    ("file_stage_in", "bool", False, None),
    ("input", "list", False, None),
    ("output", "list", False, None),
    ("script", "str", True, None),
    ("image_pull_secrets", "list", True, None),
    ("expose", "struct", False, EXPOSE_V4),
    (
        "environment",
        "struct",
        False,
        [("variables", "map", False, None), ("secrets", "map", False, None)],
    ),
    ("annotations", "map", False, None),
    ("vo", "str", False, None),
    ("labels", "map", False, None),
    ("storage_providers", "ptr", True, None),
    ("clusters", "map", True, None),
    ("owner", "str", False, None),
    ("namespace", "str", True, None),
    ("interlink_node_name", "str", False, None),
    ("visibility", "str", False, None),
    ("allowed_users", "list", False, None),
    ("isolation_level", "str", False, None),
    ("bucket_list", "list", False, None),
    ("mount", "struct", False, IO_V4),
    ("volume", "ptr", True, None),
    ("volume_status", "struct", True, VOLUME_STATUS),
    ("deployment", "ptr", True, None),
    ("kserve", "ptr", True, None),
]

_V3_ONLY: list[Field] = [
    ("replicas", "list", True, None),
    ("delegation", "str", False, None),
    ("rescheduler_threshold", "int", False, None),
]
_V3_KEYS = {
    "name", "cluster_id", "memory", "cpu", "total_memory", "total_cpu", "enable_gpu",
    "enable_sgx", "image_prefetch", "synchronous", "log_level", "image", "alpine", "token",
    "file_stage_in", "input", "output", "script", "image_pull_secrets", "annotations", "vo",
    "labels", "storage_providers", "clusters", "owner", "interlink_node_name", "allowed_users",
}  # fmt: skip
SERVICE_V3: list[Field] = [
    *(f for f in SERVICE_V4 if f[0] in _V3_KEYS),
    *_V3_ONLY,
    ("expose", "struct", False, EXPOSE_V3),
    ("environment", "struct", False, [("Variables", "map", False, None)]),
    ("mount", "struct", False, IO_V3),
]

_ZERO = {"str": "", "bool": False, "int": 0}


def go_zero(table: list[Field]) -> dict[str, Any]:
    """What `json.Marshal` writes for the zero value of the struct `table` describes."""
    out: dict[str, Any] = {}
    for key, kind, omitempty, nested in table:
        if kind == "struct":
            out[key] = go_zero(nested or [])  # omitempty never omits a struct value
        elif omitempty:
            continue
        else:
            out[key] = _ZERO.get(kind)  # list, map and ptr: null
    return out


def go_decodes(value: Any, table: list[Field], where: str = "") -> list[str]:
    """Why `json.Unmarshal(value, &struct)` would fail (Go matches keys case-insensitively)."""
    problems: list[str] = []
    if not isinstance(value, dict):
        return [f"{where or 'body'}: {type(value).__name__} is not an object"]
    lowered = {k.lower(): v for k, v in value.items()}
    expected = {"str": str, "bool": bool, "list": list, "map": dict, "ptr": dict, "struct": dict}
    for key, kind, _, nested in table:
        path = f"{where}{key}"
        item = lowered.get(key.lower())
        if item is None:
            continue  # absent or null: the zero value
        if kind == "int":
            ok = isinstance(item, int) and not isinstance(item, bool)
        else:
            ok = isinstance(item, expected[kind]) and not (kind != "bool" and item is True)
        if not ok:
            problems.append(f"{path}: {item!r} does not decode into a Go {kind}")
        elif kind == "struct" and nested:
            problems += go_decodes(item, nested, f"{path}.")
    return problems


def _required(name: str) -> dict[str, str]:
    return {"name": name, "image": "docker.io/library/alpine:3.20", "script": "echo hi\n"}


def zero_payload(table: list[Field], name: str) -> dict[str, Any]:
    """A Go client's body for a service that sets only the required fields."""
    return {**go_zero(table), **_required(name)}


def full_v4_payload(name: str) -> dict[str, Any]:
    """Every v4 field set to a value other than its zero (server-only ones excepted)."""
    bucket = f"{name}-data"
    return {
        **zero_payload(SERVICE_V4, name),
        "cluster_id": "local",
        "memory": "512Mi",
        "cpu": "1.5",
        "total_memory": "2Gi",
        "total_cpu": "4",
        "ephemeral_storage_request": "1Gi",
        "enable_gpu": True,
        "enable_sgx": True,
        "image_prefetch": True,
        "synchronous": {"min_scale": 1, "max_scale": 3},
        "federation": {
            "group_id": "g1",
            "topology": "star",
            "delegation": "random",
            "rescheduler_threshold": 5,
            # A Go `Replica` writes every field (none has omitempty).
            "members": [
                {
                    "type": "oscar",
                    "cluster_id": "other",
                    "service_name": name,
                    "url": "",
                    "ssl_verify": True,
                    "priority": 1,
                    "headers": None,
                }
            ],
        },
        "log_level": "DEBUG",
        "alpine": True,
        "file_stage_in": True,
        "input": [{"storage_provider": "minio.default", "path": f"{bucket}/in"}],
        "output": [
            {"storage_provider": "minio.default", "path": f"{bucket}/out", "suffix": [".txt"]}
        ],
        "image_pull_secrets": ["regcred"],
        "expose": {
            "min_scale": 2,
            "max_scale": 4,
            "api_port": [8080],
            "cpu_threshold": 70,
            "rewrite_target": True,
            "nodePort": [30080],
            "default_command": True,
            "set_auth": True,
            "auth_type": "basic",
            "health_path": "/healthz",
            "probe_mode": "direct",
        },
        "environment": {"variables": {"MODE": "fast"}, "secrets": {"API_KEY": "s3cr3t"}},
        "annotations": {"example.org/note": "yes"},
        "vo": "vo.example.eu",
        "labels": {"team": "ai"},
        "storage_providers": {
            "s3": {"aws": {"access_key": "AK", "secret_key": "SK", "region": "eu-west-1"}}
        },
        "clusters": {
            "other": {
                "endpoint": "https://other.example.org",
                "auth_user": "u",
                "auth_password": "p",
                "ssl_verify": True,
            }
        },
        "interlink_node_name": "vk-node",
        "visibility": "restricted",
        "allowed_users": ["alice"],
        "isolation_level": "USER",
        "bucket_list": ["b-alice"],
        "mount": {
            "storage_provider": "minio.default",
            "path": f"{bucket}/models",
            "options": "--ro",
        },
        "volume": {"name": "v1", "size": "1Gi", "mount_path": "/data"},
    }


def _read(api: httpx.Client, name: str) -> dict[str, Any]:
    response = api.get(f"/system/services/{name}")
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def names(api: httpx.Client) -> Any:
    """Unique service names; every service made under them is deleted afterwards."""
    made: list[str] = []

    def make() -> str:
        made.append(unique_name())
        return made[-1]

    yield make
    for name in made:
        api.delete(f"/system/services/{name}")


# --- the zero payload -------------------------------------------------------------------------

# What upstream reads back for a service whose body set nothing but the required fields:
# defaults applied by create.go `checkValues` (memory, cpu, log_level, visibility), zeros kept.
ZERO_READ_BACK: dict[str, Any] = {
    "cluster_id": "",
    "memory": "256Mi",
    "cpu": "0.2",
    "total_memory": "",
    "total_cpu": "",
    "enable_gpu": False,
    "enable_sgx": False,
    "image_prefetch": False,
    "synchronous": {"min_scale": 0, "max_scale": 0},
    "log_level": "INFO",
    "alpine": False,
    "file_stage_in": False,
    "input": [],
    "output": [],
    "vo": "",
    "interlink_node_name": "",
    "visibility": "private",
    "allowed_users": [],
    "environment": {"variables": {}, "secrets": {}},
}
EXPOSE_ZERO = {
    "min_scale": 0,
    "max_scale": 0,
    "cpu_threshold": 0,
    "rewrite_target": False,
    "default_command": False,
    "set_auth": False,
}


@pytest.mark.parametrize("table", [SERVICE_V4, SERVICE_V3], ids=["v4.1.2", "v3.3.0-oscar-cli"])
@pytest.mark.parametrize("field", list(ZERO_READ_BACK))
def test_zero_payload_reads_back_as_upstream(
    api: httpx.Client, names: Any, table: list[Field], field: str
) -> None:
    name = names()
    response = api.post("/system/services", json=zero_payload(table, name))
    assert response.status_code == 201, response.text
    assert _read(api, name)[field] == ZERO_READ_BACK[field]


@pytest.mark.parametrize("table", [SERVICE_V4, SERVICE_V3], ids=["v4.1.2", "v3.3.0-oscar-cli"])
def test_zero_payload_is_not_exposed_and_decodes(
    api: httpx.Client, names: Any, table: list[Field]
) -> None:
    name = names()
    body = zero_payload(table, name)
    assert body["expose"]["max_scale"] == 0 and body["mount"] == {
        "storage_provider": "",
        "path": "",
    }
    assert api.post("/system/services", json=body).status_code == 201
    service = _read(api, name)
    # Not exposed: zeros, and no ports (the dashboard tests `max_scale != 0`, `api_port.length`).
    assert {k: service["expose"][k] for k in EXPOSE_ZERO} == EXPOSE_ZERO
    assert "api_port" not in service["expose"] and "nodePort" not in service["expose"]
    assert not (service.get("mount") or {}).get("path")
    assert go_decodes(service, table) == []
    # Every key upstream always writes is in the answer.
    always = {key for key, _, omitempty, _ in SERVICE_V4 if not omitempty} - {"volume_status"}
    assert always <= set(service)


@pytest.mark.parametrize("table", [SERVICE_V4, SERVICE_V3], ids=["v4.1.2", "v3.3.0-oscar-cli"])
def test_zero_payload_updates(api: httpx.Client, names: Any, table: list[Field]) -> None:
    name = names()
    assert api.post("/system/services", json=_required(name)).status_code == 201
    body = zero_payload(table, name)
    body["memory"] = "300Mi"
    response = api.put("/system/services", json=body)
    assert response.status_code == 204, response.text
    service = _read(api, name)
    assert service["memory"] == "300Mi"
    assert service["expose"]["max_scale"] == 0


def test_v3_environment_variables_capital_v(api: httpx.Client, names: Any) -> None:
    name = names()
    body = zero_payload(SERVICE_V3, name)
    body["environment"] = {"Variables": {"MODE": "fast"}}
    assert api.post("/system/services", json=body).status_code == 201
    assert _read(api, name)["environment"]["variables"] == {"MODE": "fast"}


# --- every field set --------------------------------------------------------------------------


def _expected_full(name: str) -> dict[str, Any]:
    """What a read answers for `full_v4_payload`: as sent, secrets blanked; server-set fields
    (`bucket_list` is generated from `allowed_users`, as upstream: tests/oscar/storage/
    test_user_isolation.py) are left out."""
    expected = copy.deepcopy(full_v4_payload(name))
    expected["environment"]["secrets"] = {"API_KEY": ""}
    for key in ("token", "owner", "bucket_list", "storage_providers", "volume_status"):
        expected.pop(key, None)
    return expected


_FULL_FIELDS = sorted(set(_expected_full("x")) - {"name", "image", "script"})


@pytest.mark.parametrize("field", _FULL_FIELDS)
def test_full_payload_reads_back(api: httpx.Client, names: Any, field: str) -> None:
    name = names()
    response = api.post("/system/services", json=full_v4_payload(name))
    assert response.status_code == 201, response.text
    service = _read(api, name)
    assert _holds(service[field], _expected_full(name)[field]), (field, service[field])


def _holds(actual: Any, expected: Any) -> bool:
    """Whether `actual` answers everything in `expected` (a Go null reads back empty)."""
    if expected is None:
        return actual in (None, [], {})
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            _holds(actual.get(k), v) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(_holds(a, e) for a, e in zip(actual, expected, strict=True))
        )
    return actual == expected


def test_full_payload_decodes_as_go_and_keeps_providers(api: httpx.Client, names: Any) -> None:
    name = names()
    assert api.post("/system/services", json=full_v4_payload(name)).status_code == 201
    service = _read(api, name)
    assert go_decodes(service, SERVICE_V4) == []
    assert re.fullmatch(r"[0-9a-f]{64}", service["token"])
    assert service["owner"] == "cluster_admin"
    assert service["storage_providers"]["s3"]["aws"]["region"] == "eu-west-1"


# --- round trips --------------------------------------------------------------------------


@pytest.mark.parametrize("make", ["zero-v4", "zero-v3", "full-v4"])
def test_read_back_put_unchanged_is_identity(api: httpx.Client, names: Any, make: str) -> None:
    """A Go client's get → edit nothing → apply keeps the service as it was."""
    name = names()
    body = {
        "zero-v4": lambda: zero_payload(SERVICE_V4, name),
        "zero-v3": lambda: zero_payload(SERVICE_V3, name),
        "full-v4": lambda: full_v4_payload(name),
    }[make]()
    assert api.post("/system/services", json=body).status_code == 201
    first = _read(api, name)
    response = api.put("/system/services", json=first)
    assert response.status_code == 204, response.text
    assert _read(api, name) == first


def test_v3_scalar_ports_round_trip_as_scalars(api: httpx.Client, names: Any) -> None:
    """oscar-cli's v3.3.0 types hold one port as an int; answering a list would break it."""
    name = names()
    body = zero_payload(SERVICE_V3, name)
    body["expose"].update(api_port=8080, nodePort=30081, max_scale=3)
    assert api.post("/system/services", json=body).status_code == 201
    service = _read(api, name)
    assert service["expose"]["api_port"] == 8080
    assert service["expose"]["nodePort"] == 30081
    assert go_decodes(service, SERVICE_V3) == []


# --- responses clients branch on ----------------------------------------------------------


def test_service_without_expose_section_is_not_exposed(api: httpx.Client, names: Any) -> None:
    name = names()
    assert api.post("/system/services", json=_required(name)).status_code == 201
    expose = _read(api, name)["expose"]
    assert expose["max_scale"] == 0
    assert "api_port" not in expose


def test_buckets_carry_upstream_metadata(api: httpx.Client, names: Any) -> None:
    name = names()
    body = zero_payload(SERVICE_V4, name)
    body["input"] = [{"storage_provider": "minio.default", "path": f"{name}/in"}]
    assert api.post("/system/services", json=body).status_code == 201
    standalone = f"{name}-free"
    assert api.post("/system/buckets", json={"bucket_name": standalone}).status_code == 201
    try:
        listed = {b["bucket_name"]: b for b in api.get("/system/buckets").json()}
        assert listed[name]["metadata"] == {"from_service": name, "owner_name": "oscar"}
        assert listed[standalone]["metadata"] == {"owner_name": "oscar"}
        assert {"bucket_name", "visibility", "allowed_users", "owner"} <= set(listed[name])
        detail = api.get(f"/system/buckets/{name}").json()
        assert detail["metadata"]["from_service"] == name
    finally:
        api.delete(f"/system/buckets/{standalone}")


def _is_version_lower(version: str, target: str) -> bool:
    """The dashboard's `isVersionLower` (src/lib/utils.ts), which gates its features."""
    if target == "devel":
        return True
    if version == "devel":
        return False

    def parts(text: str) -> list[int]:
        return [int(re.sub(r"\D", "", x) or 0) for x in text.split(".")]

    v, t = parts(version), parts(target)
    for i in range(3):
        a = v[i] if i < len(v) else 0
        b = t[i] if i < len(t) else 0
        if a != b:
            return a < b
    return False


@pytest.mark.parametrize("gate", ["3.6.4", "v3.8.0", "v4.1.0"])
def test_info_version_enables_dashboard_features(api: httpx.Client, gate: str) -> None:
    info = api.get("/system/info").json()
    assert not _is_version_lower(info["version"], gate)
    assert re.fullmatch(r"\d+\.\d+\.\d+", info["version"])  # upstream's form: tag without "v"


def test_info_reports_our_own_version_apart(api: httpx.Client) -> None:
    info = api.get("/system/info").json()
    assert info["oscar_version"] == __import__("oscar").__version__
    assert {"git_commit", "architecture", "kubernetes_version"} <= set(info)
