"""Hostile request bodies get a quick 4xx, never a 500 or unbounded work (audit M4, M11, L1)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable

import httpx
import pytest
import yaml

from tests.fixtures.server import RunningServer
from tests.fixtures.services import minimal_service, unique_name

YAML = {"Content-Type": "application/yaml"}

# The 8-level "billion laughs": 360 bytes that expand to 9**8 (43 million) strings.
BILLION_LAUGHS = (
    'name: {name}\nimage: alpine\nscript: echo\nkserve:\n  a: &a ["lol","lol","lol","lol","lol"'
    ',"lol","lol","lol","lol"]\n  b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n  c: &c [*b,*b,*b,*b,*b,*b'
    ",*b,*b,*b]\n  d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n  e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n  f:"
    " &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n  g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n  h: [*g,*g,*g,*g,*g"
    ",*g,*g,*g,*g]\n"
)


def _nested_json(depth: int, name: str) -> str:
    """A valid definition whose `kserve` nests `depth` lists deep."""
    return json.dumps(minimal_service(name, kserve={"x": "@"})).replace(
        '"@"', "[" * depth + "]" * depth
    )


def test_billion_laughs_yaml_is_a_quick_400(api: httpx.Client) -> None:
    name = unique_name()
    body = BILLION_LAUGHS.format(name=name)
    assert len(body.encode()) < 450
    started = time.monotonic()
    response = api.post("/system/services", content=body, headers=YAML)
    elapsed = time.monotonic() - started
    assert response.status_code == 400, response.text
    assert "aliases are not accepted" in response.json()["detail"]
    assert elapsed < 5, elapsed
    assert api.get(f"/system/services/{name}").status_code == 404


def test_a_single_yaml_alias_is_refused(api: httpx.Client) -> None:
    name = unique_name()
    body = f"name: {name}\nimage: &img alpine\nscript: *img\n"
    response = api.post("/system/services", content=body, headers=YAML)
    assert response.status_code == 400, response.text
    assert "aliases are not accepted" in response.json()["detail"]


def test_plain_yaml_is_still_accepted(api: httpx.Client) -> None:
    name = unique_name()
    body = yaml.safe_dump(minimal_service(name, kserve={"a": {"b": [1, 2, {"c": "d"}]}}))
    response = api.post("/system/services", content=body, headers=YAML)
    assert response.status_code == 201, response.text
    assert api.get(f"/system/services/{name}").json()["kserve"] == {"a": {"b": [1, 2, {"c": "d"}]}}
    assert api.delete(f"/system/services/{name}").status_code == 204


@pytest.mark.parametrize("depth", [100, 2000, 100_000])
def test_deeply_nested_json_is_400(api: httpx.Client, depth: int) -> None:
    name = unique_name()
    response = api.post(
        "/system/services",
        content=_nested_json(depth, name),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert "nests deeper than" in response.json()["detail"]
    assert api.get(f"/system/services/{name}").status_code == 404


@pytest.mark.parametrize("flow", [True, False], ids=["flow", "block"])
def test_deeply_nested_yaml_is_400(api: httpx.Client, flow: bool) -> None:
    name = unique_name()
    head = f"name: {name}\nimage: alpine\nscript: echo\nkserve:\n  x: "
    if flow:
        tail = "[" * 10_000 + "]" * 10_000 + "\n"
    else:  # block style indents every level: 200 levels is already a 40 kB body
        depth = 200
        levels = "".join(" " * (i + 2) + f"k{i}:\n" for i in range(depth))
        tail = "\n" + levels + " " * (depth + 2) + "v\n"
    response = api.post("/system/services", content=head + tail, headers=YAML)
    assert response.status_code == 400, response.text
    assert "nests deeper than" in response.json()["detail"]


def test_moderate_nesting_is_accepted(api: httpx.Client) -> None:
    name = unique_name()
    response = api.post("/system/services", content=_nested_json(40, name))
    assert response.status_code == 201, response.text
    assert api.delete(f"/system/services/{name}").status_code == 204


@pytest.mark.parametrize("field", ["cpu", "memory", "volume"])
def test_an_overflowing_quantity_is_400_naming_the_field(api: httpx.Client, field: str) -> None:
    huge = "1e1000000"
    extra = (
        {"volume": {"name": "v", "size": huge, "mount_path": "/data"}}
        if field == "volume"
        else {field: huge}
    )
    response = api.post("/system/services", json=minimal_service(**extra))
    assert response.status_code == 400, response.text
    expected = "volume.size" if field == "volume" else field
    assert [e["field"] for e in response.json()["errors"]] == [expected]


def test_a_service_name_with_a_trailing_newline_is_400(api: httpx.Client) -> None:
    name = unique_name()
    response = api.post("/system/services", json=minimal_service(name + "\n"))
    assert response.status_code == 400, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["name"]
    assert api.get(f"/system/services/{name}%0A").status_code == 404


def test_the_events_endpoint_refuses_odd_tokens_and_skips_odd_records(
    start_oscar: Callable[..., RunningServer],
) -> None:
    token = "events-" + uuid.uuid4().hex
    server = start_oscar(extra_env={"OSCAR_EVENTS_TOKEN": token})
    anon = server.client(auth=False)
    right = {"Authorization": f"Bearer {token}"}
    # A non-ASCII bearer token (sent as raw UTF-8 bytes) is just a wrong token: 401, not 500.
    for wrong in ("Bearer \u00e9t\u00e9".encode(), f"Bearer {token}\u00e9".encode()):
        headers = {"Authorization": wrong}
        response = anon.post("/events/minio", json={"Records": []}, headers=headers)
        assert response.status_code == 401, response.text
    # Records whose key (or bucket) is not a string are skipped; the rest still count.
    odd = [
        {"s3": {"bucket": {"name": "b"}, "object": {"key": 5}}},
        {"s3": {"bucket": {"name": "b"}, "object": {"key": None}}},
        {"s3": {"bucket": {"name": ["b"]}, "object": {"key": "in/x"}}},
        {"s3": {"bucket": {"name": "b"}, "object": ["key"]}},
        {"s3": "nothing"},
        7,
    ]
    response = anon.post("/events/minio", json={"Records": odd}, headers=right)
    assert response.status_code == 200, response.text
    assert response.json() == {"jobs": []}
    for body in ({"Records": 5}, {"Records": "x"}, [1, 2]):
        response = anon.post("/events/minio", json=body, headers=right)
        assert response.status_code == 400, response.text
    deep = "[" * 100_000 + "]" * 100_000
    response = anon.post("/events/minio", content=deep, headers=right)
    assert response.status_code == 400, response.text
    assert "Traceback" not in server.log()
