"""Property-based fuzzing of service definitions posted to `POST`/`PUT /system/services`.

Definitions range from valid ones with one field changed to hostile documents: deep nesting,
huge numbers (`1e1000000`), lone surrogates, NUL, trailing newlines in names, YAML anchors,
aliases, tags and duplicate keys, wrong types, unknown fields, invalid UTF-8. The properties:

- the answer is never a 5xx and always arrives (the client times out after 30 s);
- a 2xx means the service can be read back: every service that appeared is listed, `GET`
  returns it and `DELETE` removes it;
- an error answer leaves nothing behind: no new service, no new bucket.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import yaml
from hypothesis import event, example, given
from hypothesis import strategies as st

from tests.fixtures.fuzz import (
    REQUEST_TIMEOUT,
    assert_healthy,
    assert_no_traceback,
    check_answer,
    dumps,
    fuzz_settings,
    hostile_text,
    json_values,
    module_server,
    nested,
)
from tests.fixtures.server import RunningServer
from tests.fixtures.services import full_service, minimal_service, unique_name

pytestmark = pytest.mark.slow

BASE = "fuzz-base"  # a service that stays for the whole module: the target of PUT examples
FIELDS = [*full_service("x"), "token", "owner", "routing", "unknown_field", "x" * 200, ""]
QUANTITY_FIELDS = ["cpu", "memory", "total_cpu", "total_memory", "ephemeral_storage_request"]
QUANTITIES = [
    "1e1000000",
    "-1e1000000",
    "1e308",
    "1e-400",
    "-1",
    "0",
    "0.0001m",
    "1Ei",
    "1Gi\n",
    " 1Gi",
    "1 Gi",
    "1.5",
    "100m",
    "9" * 400,
    "NaN",
    "inf",
    "1e1000000Gi",
    "",
]
FORMS = ["json", "json", "json", "yaml", "yaml", "yaml-hostile", "json-hostile", "raw"]
CONTENT_TYPES = [
    None,
    "application/json",
    "text/plain",
    "application/yaml",
    "application/x-yaml; charset=utf-8",
    "text/yaml",
    "multipart/form-data; boundary=x",
    "application/json; charset=latin-1",
    "yaml",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with module_server(tmp_path_factory, "fuzz-services") as running:
        api = running.client(timeout=REQUEST_TIMEOUT)
        response = api.post("/system/services", json=minimal_service(BASE))
        assert response.status_code == 201, response.text
        yield running
        assert_healthy(running)
        assert api.delete(f"/system/services/{BASE}").status_code == 204
        assert_no_traceback(running)


@pytest.fixture(scope="module")
def api(server: RunningServer) -> httpx.Client:
    return server.client(timeout=REQUEST_TIMEOUT)


# --- definitions ---------------------------------------------------------------------------

_valid_names = st.builds(unique_name, st.just("fz"))
names = st.one_of(
    _valid_names,
    _valid_names,
    _valid_names,
    _valid_names,
    _valid_names,
    st.builds(lambda n, suffix: n + suffix, st.builds(unique_name, st.just("fz")), hostile_text),
    st.builds(lambda n: n.upper(), st.builds(unique_name, st.just("fz"))),
    hostile_text,
    json_values,
)

storage_entries = st.fixed_dictionaries(
    {},
    optional={
        "storage_provider": st.one_of(
            st.sampled_from(["minio.default", "minio", "minio.other", "s3.aws", "webdav.x", ""]),
            json_values,
        ),
        "path": st.one_of(
            st.sampled_from(["in", "in/", "/in", "a/../b", "../x", "UPPER/in", BASE, f"{BASE}/in"]),
            hostile_text,
            json_values,
        ),
        "suffix": json_values,
        "prefix": json_values,
    },
)


@st.composite
def definitions(draw: st.DrawFn) -> dict[str, Any]:
    """A service definition: a valid base with fields changed, added and removed."""
    name = draw(names)
    base = draw(st.sampled_from([minimal_service, full_service]))
    definition: dict[str, Any] = base(name if isinstance(name, str) else "placeholder")
    if not isinstance(name, str):
        definition["name"] = name
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 1, 2, 4]))):
        field = draw(st.sampled_from(FIELDS))
        kind = draw(st.sampled_from(["value", "quantity", "storage", "drop"]))
        if kind == "drop":
            definition.pop(field, None)
        elif kind == "quantity":
            definition[draw(st.sampled_from(QUANTITY_FIELDS))] = draw(
                st.one_of(st.sampled_from(QUANTITIES), json_values)
            )
        elif kind == "storage":
            where = draw(st.sampled_from(["input", "output", "mount"]))
            entries = draw(st.lists(storage_entries, max_size=3))
            definition[where] = entries[0] if where == "mount" and entries else entries
        else:
            definition[field] = draw(json_values)
    if draw(st.booleans()) and "volume" in definition:
        definition["volume"] = {
            "name": "v",
            "size": draw(st.sampled_from(QUANTITIES)),
            "mount_path": draw(hostile_text),
        }
    return definition


def _yaml_hostile(name: str) -> list[str]:
    """YAML documents that use what a plain definition never needs."""
    return [
        f"name: {name}\nimage: &img alpine\nscript: *img\n",
        f"name: {name}\nname: {name}-2\nimage: alpine\nscript: echo\n",
        f"name: {name}\nimage: !!python/object/apply:os.system ['true']\nscript: echo\n",
        f"name: {name}\nimage: alpine\nscript: echo\ncpu: 1e1000000\n",
        f"name: {name}\nimage: alpine\nscript: echo\nmemory: .inf\n",
        f"name: {name}\nimage: alpine\nscript: echo\nkserve: {nested(500)}\n",
        f"name: {name}\nimage: alpine\nscript: echo\n<<: {{cpu: '1'}}\n",
        f"name: {name}\nimage: alpine\nscript: echo\n---\nname: {name}-b\n",
        f"? [a, b]\n: c\nname: {name}\n",
        f"name: !!binary aGVsbG8=\nimage: alpine\nscript: echo {name}\n",
        f"name: {name}\nimage: alpine\nscript: |\n  echo\n\tbad-tab: 1\n",
        f"name: {name}\nimage: alpine\nscript: echo\n"
        "environment: {variables: {A: !!set {a}}}\n",
        f"name: {name}\nimage: alpine\nscript: echo\ninput: [{{path: 2001-01-01}}]\n",
        f"%YAML 1.1\n%TAG ! tag:x,2000:\n---\nname: !x {name}\nimage: alpine\nscript: echo\n",
    ]


def _json_hostile(name: str) -> list[str]:
    """JSON texts a serialiser never writes."""
    return [
        f'{{"name": "{name}", "name": "{name}-2", "image": "alpine", "script": "echo"}}',
        f'{{"name": "{name}", "image": "alpine", "script": "echo", "cpu": 1e1000000}}',
        f'{{"name": "{name}", "image": "alpine", "script": "echo", "memory": -1e1000000}}',
        f'{{"name": "{name}", "image": "alpine", "script": "echo", "cpu": {"9" * 5000}}}',
        f'{{"name": "{name}", "image": "alpine", "script": "echo", "kserve": {nested(100_000)}}}',
        f'{{"name": "{name}\\u0000", "image": "alpine", "script": "echo"}}',
        f'{{"name": "{name}\\ud800", "image": "alpine", "script": "echo"}}',
        f'{{"name": "{name}", "image": "alpine", "script": "echo\\udfff"}}',
        f'{{"name": "{name}", "image": "alpine", "script": "echo"}} trailing',
        f'\ufeff{{"name": "{name}", "image": "alpine", "script": "echo"}}',
        f'{{"name": "{name}", "image": "alpine", "script": "echo", "cpu": NaN}}',
        f'[{{"name": "{name}", "image": "alpine", "script": "echo"}}]',
        '"just a string"',
        "",
        "null",
    ]


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str, bytes, str | None]:
    """(method, body, Content-Type) of one request."""
    method = draw(st.sampled_from(["POST", "POST", "POST", "PUT"]))
    definition = draw(definitions())
    if method == "PUT" and draw(st.booleans()):
        definition["name"] = BASE
    name = definition.get("name")
    name = name if isinstance(name, str) else unique_name("fz")
    form = draw(st.sampled_from(FORMS))
    content_type = draw(st.sampled_from(CONTENT_TYPES))
    if form == "json":
        body = dumps(definition)
        if draw(st.booleans()):
            content_type = "application/json"
    elif form == "yaml":
        try:
            body = yaml.safe_dump(definition, allow_unicode=draw(st.booleans())).encode(
                "utf-8", "surrogatepass"
            )
        except yaml.YAMLError:
            body = dumps(definition)
        content_type = draw(st.sampled_from(["application/yaml", "text/yaml", "x-yaml"]))
    elif form == "yaml-hostile":
        body = draw(st.sampled_from(_yaml_hostile(name))).encode("utf-8", "surrogatepass")
        content_type = "application/yaml"
    elif form == "json-hostile":
        body = draw(st.sampled_from(_json_hostile(name))).encode("utf-8", "surrogatepass")
    else:
        body = draw(
            st.one_of(
                st.binary(max_size=200),
                st.builds(lambda b: dumps(minimal_service(name))[:-1] + b, st.binary(max_size=8)),
                st.just(b"\xff\xfe" + json.dumps(minimal_service(name)).encode("utf-16-le")),
                st.just(dumps(minimal_service(name)).replace(b"alpine", b"alp\xffine")),
            )
        )
    return method, body, content_type


# --- the property --------------------------------------------------------------------------


def _services(api: httpx.Client) -> set[str]:
    response = api.get("/system/services")
    assert response.status_code == 200, response.text
    return {service["name"] for service in response.json()}


def _buckets(api: httpx.Client) -> set[str]:
    response = api.get("/system/buckets")
    assert response.status_code == 200, response.text
    return {bucket["bucket_name"] for bucket in response.json()}


# Found by this suite (500 "internal error"; the product still has to fix them):
# a lone surrogate escaped in JSON reaches the registry's JSON dump (UnicodeEncodeError) ...
@example(
    request=("POST", b'{"name": "fz-surrogate", "image": "alpine", "script": "echo\\udfff"}', None)
)
# ... and one escaped in YAML (which never pairs surrogates) reaches pydantic's validation.
@example(
    request=("POST", b'name: fz-surrogate2\nimage: "\\ud800"\nscript: echo\n', "application/yaml")
)
@fuzz_settings()
@given(request=bodies())
def test_service_definitions_never_get_a_5xx(
    server: RunningServer, api: httpx.Client, request: tuple[str, bytes, str | None]
) -> None:
    method, body, content_type = request
    headers = {"Content-Type": content_type} if content_type else {}
    before, buckets_before = _services(api), _buckets(api)
    response = api.request(method, "/system/services", content=body, headers=headers)
    check_answer(server, response, f"{method} /system/services")
    event(f"{method} answered {response.status_code}")
    after = _services(api)
    created = after - before
    try:
        if response.is_success:
            if method == "POST":
                assert response.status_code == 201, response.text
                assert len(created) == 1, (response.status_code, created)
            else:
                assert response.status_code == 204, response.text
                assert not created, created
            for name in after if method == "PUT" else created:
                read = api.get(f"/system/services/{quote(name, safe='')}")
                assert read.status_code == 200, (name, read.status_code, read.text)
                assert read.json()["name"] == name
        else:
            assert not created, f"{response.status_code} but created {created}: {response.text}"
            assert after == before, (before, after)
            assert _buckets(api) == buckets_before, response.text
    finally:
        for name in created:
            deleted = api.delete(f"/system/services/{quote(name, safe='')}")
            check_answer(server, deleted, f"DELETE the service {name!r}")
            assert deleted.status_code == 204, (name, deleted.status_code, deleted.text)
    assert _services(api) == before
