"""`/job` and `/run` refuse events naming objects outside the service's inputs (audit H1).

On main before the fix, `POST /run/<svc>` with a MinIO event for another bucket returned that
object's content (the supervisor downloaded whatever the event named with the admin keys).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fixtures.server import RunningServer
from tests.fixtures.services import minimal_service, unique_name

SECRET = b"ceo,1000000"


def _minio_event(bucket: str, key: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "eventSource": "minio:s3",
                "eventName": "s3:ObjectCreated:Put",
                "s3": {"bucket": {"name": bucket}, "object": {"key": key}},
            }
        ]
    }


@pytest.fixture
def scoped(server: RunningServer, api: httpx.Client) -> Iterator[dict[str, Any]]:
    """A service `alpha` with input `<alpha>/in`, and a private bucket holding a secret."""
    name = unique_name("alpha")
    payroll = unique_name("payroll")
    definition = minimal_service(
        name,
        script='cat "$INPUT_FILE_PATH"\n',
        input=[{"storage_provider": "minio.default", "path": f"{name}/in"}],
    )
    assert api.post("/system/services", json=definition).status_code == 201
    assert api.post("/system/buckets", json={"bucket_name": payroll}).status_code in (200, 201)
    s3 = server.s3()
    s3.put_object(Bucket=payroll, Key="salaries.csv", Body=SECRET)
    s3.put_object(Bucket=name, Key="elsewhere/private.txt", Body=SECRET)
    token = api.get(f"/system/services/{name}").json()["token"]
    yield {"name": name, "payroll": payroll, "token": token, "s3": s3}
    api.delete(f"/system/services/{name}")
    api.delete(f"/system/buckets/{payroll}")


def _forms(bucket: str, key: str) -> list[dict[str, Any]]:
    event = _minio_event(bucket, key)
    return [
        event,
        {"event": json.dumps(event), "storage_provider": "minio.default"},
        {"httpMethod": "POST", "path": "/", "body": json.dumps(event)},
        {
            "httpMethod": "POST",
            "isBase64Encoded": True,
            "body": base64.b64encode(json.dumps(event).encode()).decode(),
        },
    ]


@pytest.mark.parametrize("route", ["run", "job"])
@pytest.mark.parametrize("form", range(4), ids=["minio", "delegated", "gateway", "gateway64"])
def test_an_event_for_another_bucket_is_refused(
    anon: httpx.Client, api: httpx.Client, scoped: dict[str, Any], route: str, form: int
) -> None:
    body = _forms(scoped["payroll"], "salaries.csv")[form]
    response = anon.post(
        f"/{route}/{scoped['name']}",
        content=json.dumps(body),
        headers={"Authorization": f"Bearer {scoped['token']}"},
    )
    assert response.status_code == 403, response.text
    assert scoped["payroll"] in response.text
    assert SECRET.decode() not in response.text
    assert api.get(f"/system/logs/{scoped['name']}").json()["jobs"] == {}


@pytest.mark.parametrize("key", ["elsewhere/private.txt", "in/../elsewhere/private.txt", "in"])
def test_an_event_for_the_services_bucket_outside_its_input_folder_is_refused(
    anon: httpx.Client, scoped: dict[str, Any], key: str
) -> None:
    response = anon.post(
        f"/run/{scoped['name']}",
        json=_minio_event(scoped["name"], key),
        headers={"Authorization": f"Bearer {scoped['token']}"},
    )
    assert response.status_code == 403, response.text
    assert SECRET.decode() not in response.text


def test_an_event_for_the_services_own_input_runs(
    anon: httpx.Client, scoped: dict[str, Any]
) -> None:
    scoped["s3"].put_object(Bucket=scoped["name"], Key="in/mine.txt", Body=b"my own data")
    response = anon.post(
        f"/run/{scoped['name']}",
        json=_minio_event(scoped["name"], "in/mine.txt"),
        headers={"Authorization": f"Bearer {scoped['token']}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert response.text == "my own data"


def test_plain_bodies_name_nothing_and_run(anon: httpx.Client, scoped: dict[str, Any]) -> None:
    response = anon.post(
        f"/run/{scoped['name']}",
        content=base64.b64encode(b"plain input"),
        headers={"Authorization": f"Bearer {scoped['token']}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert response.text == "plain input"


# Found by the fuzz suite (tests/oscar/api/test_fuzz_events.py): each was a 500 or a 502.
@pytest.mark.parametrize(
    "body",
    [
        b'{"Records":[{"eventSource":[]}]}',  # TypeError: unhashable type
        b'{"Records":[{"eventSource":{"a":1}}]}',
        b'{"httpMethod":"POST","body":10000000000000}',  # bytes(int): MemoryError
        b'{"httpMethod":"POST","body":["x"]}',
    ],
)
def test_odd_event_shapes_are_data_not_server_errors(
    anon: httpx.Client, scoped: dict[str, Any], body: bytes
) -> None:
    response = anon.post(
        f"/job/{scoped['name']}",
        content=body,
        headers={"Authorization": f"Bearer {scoped['token']}"},
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("route", ["run", "job"])
def test_an_empty_body_is_a_bad_request(
    anon: httpx.Client, scoped: dict[str, Any], route: str
) -> None:
    response = anon.post(
        f"/{route}/{scoped['name']}",
        content=b" \n",
        headers={"Authorization": f"Bearer {scoped['token']}"},
    )
    assert response.status_code == 400, response.text
    assert "empty" in response.text
