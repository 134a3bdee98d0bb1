"""Service CRUD over real HTTP: status codes, tokens, ownership and secret handling."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator

import httpx
import pytest
import yaml

from tests.fixtures.server import RunningServer
from tests.fixtures.services import full_service, minimal_service, unique_name


@pytest.fixture
def created(api: httpx.Client) -> Iterator[dict[str, object]]:
    """A freshly created full service, deleted afterwards if the test did not."""
    definition = full_service()
    assert api.post("/system/services", json=definition).status_code == 201
    yield definition
    api.delete(f"/system/services/{definition['name']}")


def test_create_returns_201_and_generates_token(api: httpx.Client) -> None:
    name = unique_name()
    response = api.post("/system/services", json=minimal_service(name))
    assert response.status_code == 201
    service = api.get(f"/system/services/{name}").json()
    assert re.fullmatch(r"[0-9a-f]{64}", service["token"])
    assert service["owner"] == "cluster_admin"


def test_client_supplied_token_is_replaced(api: httpx.Client) -> None:
    name = unique_name()
    api.post("/system/services", json=minimal_service(name, token="mine"))
    assert api.get(f"/system/services/{name}").json()["token"] != "mine"


def test_tokens_differ_between_services(api: httpx.Client) -> None:
    names = [unique_name(), unique_name()]
    for name in names:
        api.post("/system/services", json=minimal_service(name))
    tokens = {api.get(f"/system/services/{n}").json()["token"] for n in names}
    assert len(tokens) == 2


def test_get_returns_the_definition(api: httpx.Client, created: dict[str, object]) -> None:
    service = api.get(f"/system/services/{created['name']}").json()
    assert service["image"] == created["image"]
    assert service["script"] == created["script"]
    assert service["cpu"] == "1.5"
    assert service["output"][1]["prefix"] == ["r-"]
    assert service["expose"]["nodePort"] == 30080


def test_secrets_are_blanked_when_read(api: httpx.Client, created: dict[str, object]) -> None:
    service = api.get(f"/system/services/{created['name']}").json()
    assert service["environment"]["secrets"] == {"API_KEY": ""}
    assert "s3cr3t" not in api.get("/system/services").text


def test_minio_default_is_the_cluster_store(api: httpx.Client, created: dict[str, object]) -> None:
    service = api.get(f"/system/services/{created['name']}").json()
    default = service["storage_providers"]["minio"]["default"]
    config = api.get("/system/config").json()["minio_provider"]
    assert default["endpoint"] == config["endpoint"]
    assert default["access_key"] == default["secret_key"] == "hidden"


def test_list_contains_created(api: httpx.Client, created: dict[str, object]) -> None:
    response = api.get("/system/services")
    assert response.status_code == 200
    assert created["name"] in {s["name"] for s in response.json()}


def test_duplicate_name_is_409(api: httpx.Client, created: dict[str, object]) -> None:
    response = api.post("/system/services", json=minimal_service(str(created["name"])))
    assert response.status_code == 409
    assert created["name"] in response.json()["detail"]


def test_validation_accepts_the_buckets_the_store_accepts(
    server: RunningServer, api: httpx.Client
) -> None:
    """A digits-only bucket is valid S3; validation and the store agree, so it is created.

    (Validation used to accept it and the store to refuse it: a 500, a half-created service
    and a 409 on retry.)
    """
    name, bucket = unique_name(), f"{uuid.uuid4().int % 10**12:012d}"
    definition = minimal_service(name, input=[{"path": f"{bucket}/in"}])
    assert api.post("/system/services", json=definition).status_code == 201
    assert api.get(f"/system/services/{name}").json()["input"][0]["path"] == f"{bucket}/in"
    s3 = server.s3()
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert [o["Key"] for o in listed] == ["in/"]
    assert api.post("/system/services", json=definition).status_code == 409
    assert api.delete(f"/system/services/{name}").status_code == 204
    assert bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert api.post("/system/services", json=definition).status_code == 201  # no leftovers
    assert api.delete(f"/system/services/{name}").status_code == 204


def test_update_keeps_token_and_owner(api: httpx.Client, created: dict[str, object]) -> None:
    name = created["name"]
    before = api.get(f"/system/services/{name}").json()
    changed = {**created, "image": "alpine:3.21", "token": "x" * 64, "owner": "someone"}
    assert api.put("/system/services", json=changed).status_code == 204
    after = api.get(f"/system/services/{name}").json()
    assert after["image"] == "alpine:3.21"
    assert (after["token"], after["owner"]) == (before["token"], before["owner"])


def test_update_with_blank_secret_keeps_stored_value(
    server: RunningServer, api: httpx.Client, created: dict[str, object]
) -> None:
    name = created["name"]
    read_back = api.get(f"/system/services/{name}").json()  # secrets blanked
    read_back["environment"]["secrets"]["NEW"] = "fresh"
    assert api.put("/system/services", json=read_back).status_code == 204
    # The stored values are only visible in the registry itself.
    from oscar.registry.sqlite import SQLiteRegistry

    registry = SQLiteRegistry(server.data_dir / "oscar.db")
    try:
        stored = registry.get(str(name)).environment.secrets
    finally:
        registry.close()
    assert stored == {"API_KEY": "s3cr3t", "NEW": "fresh"}


def test_update_unknown_is_404(api: httpx.Client) -> None:
    response = api.put("/system/services", json=minimal_service(unique_name()))
    assert response.status_code == 404


def test_update_invalid_is_400(api: httpx.Client, created: dict[str, object]) -> None:
    response = api.put("/system/services", json={**created, "memory": "lots"})
    assert response.status_code == 400
    assert any(e["field"] == "memory" for e in response.json()["errors"])


def test_delete_then_404(api: httpx.Client, created: dict[str, object]) -> None:
    name = created["name"]
    assert api.delete(f"/system/services/{name}").status_code == 204
    assert api.get(f"/system/services/{name}").status_code == 404
    assert api.delete(f"/system/services/{name}").status_code == 404


def test_get_unknown_is_404(api: httpx.Client) -> None:
    response = api.get(f"/system/services/{unique_name()}")
    assert response.status_code == 404
    assert "not found" in response.json()["detail"]


@pytest.mark.parametrize("cpu", [1, 0.5, "2", "500m"])
def test_cpu_as_number_or_string(api: httpx.Client, cpu: object) -> None:
    name = unique_name()
    assert api.post("/system/services", json=minimal_service(name, cpu=cpu)).status_code == 201
    assert api.get(f"/system/services/{name}").json()["cpu"] == str(cpu)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_json_body_with_any_label(api: httpx.Client, content_type: str) -> None:
    name = unique_name()
    body = json.dumps(minimal_service(name)).encode()
    response = api.post("/system/services", content=body, headers={"content-type": content_type})
    assert response.status_code == 201


def test_yaml_body(api: httpx.Client) -> None:
    name = unique_name()
    body = yaml.safe_dump(minimal_service(name))
    headers = {"content-type": "application/yaml"}
    assert api.post("/system/services", content=body, headers=headers).status_code == 201
    assert api.get(f"/system/services/{name}").json()["name"] == name


@pytest.mark.parametrize("body", [b"", b"   ", b"{not json", b"[1, 2]", b'"text"'])
def test_bad_body_is_400(api: httpx.Client, body: bytes) -> None:
    response = api.post("/system/services", content=body)
    assert response.status_code == 400
    assert response.json()["detail"]


def test_body_over_limit_is_413(api: httpx.Client) -> None:
    huge = minimal_service(script="x" * (65 * 1024 * 1024))
    response = api.post("/system/services", json=huge)
    assert response.status_code == 413
