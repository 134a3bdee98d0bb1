"""CORS on the API and the embedded S3 port (`OSCAR_CORS_ORIGINS`), against real `oscar serve`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from oscar.app import create_app
from oscar.cors import CorsPolicy, normalize_origin
from oscar.settings import Settings
from tests.fixtures.server import RunningServer, clean_env, start_server
from tests.fixtures.services import minimal_service, unique_name

APP = "http://app.example:3000"  # listed: credentials allowed
DASH = "https://dash.example.org"  # listed, written differently in the setting
EVIL = "https://evil.example"  # not listed
LISTED = f"{APP}, HTTPS://Dash.Example.org:443/"
BODY_LIMIT = 4096


def _preflight(url: str, origin: str, method: str = "GET", headers: str = "") -> httpx.Response:
    request = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        request["Access-Control-Request-Headers"] = headers
    return httpx.options(url, headers=request, timeout=10)


def _names(value: str) -> set[str]:
    return {part.strip().lower() for part in value.split(",") if part.strip()}


def _assert_echoed(response: httpx.Response, origin: str) -> None:
    """The answer lets a credentialed page of `origin` read it."""
    assert response.headers.get("access-control-allow-origin") == origin, response.headers
    assert response.headers.get("access-control-allow-credentials") == "true"
    assert "origin" in _names(response.headers.get("vary", ""))


def _assert_refused(response: httpx.Response) -> None:
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-credentials" not in response.headers


@pytest.fixture(scope="module")
def listed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server allowing APP and DASH, with a small body limit (for 413)."""
    running = start_server(
        tmp_path_factory.mktemp("cors-listed") / "data",
        extra_env={"OSCAR_CORS_ORIGINS": LISTED, "OSCAR_MAX_BODY_BYTES": str(BODY_LIMIT)},
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def disabled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server allowing no origin (`OSCAR_CORS_ORIGINS=`)."""
    running = start_server(
        tmp_path_factory.mktemp("cors-off") / "data", extra_env={"OSCAR_CORS_ORIGINS": ""}
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def services(listed: RunningServer) -> dict[str, Any]:
    """On `listed`: a service with input `<name>/in` and one whose script fails."""
    api = listed.client()
    name, failing = unique_name("cors"), unique_name("corsfail")
    inputs = [{"storage_provider": "minio.default", "path": f"{name}/in"}]
    assert api.post("/system/services", json=minimal_service(name, input=inputs)).status_code == 201
    assert (
        api.post("/system/services", json=minimal_service(failing, script="exit 3\n")).status_code
        == 201
    )
    token = api.get(f"/system/services/{name}").json()["token"]
    return {"name": name, "failing": failing, "token": token}


# --- the setting ------------------------------------------------------------------------------


def test_origins_are_normalized_as_browsers_send_them() -> None:
    assert normalize_origin(" HTTPS://Dash.Example.org:443/ ") == DASH
    assert normalize_origin("http://localhost:8080") == "http://localhost:8080"
    assert normalize_origin("http://[::1]:80") == "http://[::1]"
    assert normalize_origin("*") == "*"
    assert Settings(cors_origins=LISTED).cors_origins == [APP, DASH]
    assert Settings().cors_origins == ["*"]
    assert Settings(cors_origins="").cors_origins == []


@pytest.mark.parametrize(
    "value",
    ["https://x.org/path", "x.org", "https://*.x.org", "https://u:p@x.org", "http://h:99999"],
)
def test_invalid_origin_stops_serve(value: str, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "oscar", "serve", "--data-dir", str(tmp_path / "d")]
    done = subprocess.run(
        command,
        env=clean_env(OSCAR_CORS_ORIGINS=value, OSCAR_PASSWORD="x" * 20),
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert b"cors_origins" in done.stderr
    assert b"is not an origin" in done.stderr


def test_listed_origins_with_a_wildcard() -> None:
    policy = CorsPolicy.from_origins([DASH, "*"])
    assert policy.origin_headers(DASH) == {
        "Access-Control-Allow-Origin": DASH,
        "Access-Control-Allow-Credentials": "true",
    }
    # Everyone else may read, but never with credentials: no echo, no Allow-Credentials.
    assert policy.origin_headers(EVIL) == {"Access-Control-Allow-Origin": "*"}
    assert not CorsPolicy.from_origins([DASH]).allows(EVIL)
    assert not CorsPolicy.from_origins([]).allows(DASH)


# --- preflights -------------------------------------------------------------------------------


@pytest.mark.parametrize("origin", [APP, DASH])
def test_preflight_of_a_listed_origin(listed: RunningServer, origin: str) -> None:
    answer = _preflight(
        f"{listed.url}/system/services", origin, "PUT", "Authorization, Content-Type, X-Custom"
    )
    assert answer.status_code == 200
    _assert_echoed(answer, origin)
    assert {"GET", "HEAD", "POST", "PUT", "DELETE"} <= {
        m.strip() for m in answer.headers["access-control-allow-methods"].split(",")
    }
    # Authorization named explicitly: `*` would not cover it.
    assert {"authorization", "content-type", "x-custom"} <= _names(
        answer.headers["access-control-allow-headers"]
    )
    assert int(answer.headers["access-control-max-age"]) > 0
    assert "access-control-request-headers" in _names(answer.headers["vary"])
    assert answer.content == b""


def test_preflight_of_another_origin_is_refused(listed: RunningServer) -> None:
    answer = _preflight(f"{listed.url}/system/services", EVIL, "GET", "authorization")
    assert answer.status_code == 403
    _assert_refused(answer)
    assert "not allowed" in answer.json()["detail"]
    # A listed origin with another scheme or port is another origin.
    for other in ("https://app.example:3000", "http://app.example:3001", "http://app.example"):
        refused = _preflight(f"{listed.url}/health", other)
        assert refused.status_code == 403
        _assert_refused(refused)


def test_preflight_of_an_unknown_method_is_refused(listed: RunningServer) -> None:
    answer = _preflight(f"{listed.url}/system/services", APP, "PATCH")
    assert answer.status_code == 403
    _assert_refused(answer)


def test_preflight_on_every_route_and_with_a_trailing_slash(
    listed: RunningServer, services: dict[str, Any]
) -> None:
    name = services["name"]
    paths = [
        "/system/info",
        "/system/config/",
        f"/system/services/{name}",
        f"/job/{name}",
        f"/run/{name}",
        f"/system/logs/{name}/some-job",
        f"/system/buckets/{name}",
        "/no/such/route",
    ]
    for path in paths:
        answer = _preflight(listed.url + path, APP, "POST", "authorization")
        assert answer.status_code == 200, path
        _assert_echoed(answer, APP)


def test_private_network_preflight(listed: RunningServer) -> None:
    answer = httpx.options(
        f"{listed.url}/system/info",
        headers={
            "Origin": DASH,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Private-Network": "true",
        },
    )
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-private-network"] == "true"
    plain = _preflight(f"{listed.url}/system/info", DASH)
    assert "access-control-allow-private-network" not in plain.headers


# --- actual requests --------------------------------------------------------------------------


def test_basic_and_bearer_requests_from_a_listed_origin(
    listed: RunningServer, services: dict[str, Any]
) -> None:
    api = listed.client()
    answer = api.get("/system/services", headers={"Origin": APP})
    assert answer.status_code == 200
    _assert_echoed(answer, APP)
    exposed = _names(answer.headers["access-control-expose-headers"])
    assert {"x-oscar-job-name", "www-authenticate", "retry-after"} <= exposed

    anon = listed.client(auth=False)
    bearer = {"Authorization": f"Bearer {services['token']}", "Origin": DASH}
    created = anon.post(f"/job/{services['name']}", content=b"hello", headers=bearer)
    assert created.status_code == 201
    _assert_echoed(created, DASH)
    assert created.headers["x-oscar-job-name"].startswith(services["name"])


def test_requests_from_another_origin_get_no_cors_headers(listed: RunningServer) -> None:
    answer = listed.client().get("/system/info", headers={"Origin": EVIL})
    assert answer.status_code == 200  # the browser, not the server, withholds the answer
    _assert_refused(answer)
    assert "access-control-expose-headers" not in answer.headers
    assert "origin" in _names(answer.headers["vary"])


def test_requests_without_origin_vary_on_it(listed: RunningServer) -> None:
    answer = httpx.get(f"{listed.url}/health")
    assert answer.status_code == 200
    _assert_refused(answer)
    assert "origin" in _names(answer.headers["vary"])


def test_errors_carry_the_cors_headers(listed: RunningServer, services: dict[str, Any]) -> None:
    origin = {"Origin": APP}
    anon, api = listed.client(auth=False), listed.client()
    name = services["name"]
    wrong = httpx.BasicAuth(listed.username, "wrong-password")
    unauthorized = anon.get("/system/services", headers=origin, auth=wrong)
    assert unauthorized.status_code == 401
    _assert_echoed(unauthorized, APP)
    assert "www-authenticate" in _names(unauthorized.headers["access-control-expose-headers"])

    record = {
        "eventSource": "minio:s3",
        "eventName": "s3:ObjectCreated:Put",
        "s3": {"bucket": {"name": "elsewhere"}, "object": {"key": "x"}},
    }
    event = {"Records": [record]}
    forbidden = api.post(f"/job/{name}", json=event, headers=origin)
    assert forbidden.status_code == 403
    _assert_echoed(forbidden, APP)

    missing = api.get(f"/system/services/{unique_name()}", headers=origin)
    assert missing.status_code == 404
    _assert_echoed(missing, APP)

    too_large = api.post(f"/job/{name}", content=b"x" * (BODY_LIMIT + 1), headers=origin)
    assert too_large.status_code == 413
    _assert_echoed(too_large, APP)

    failed = api.post(f"/run/{services['failing']}", content=b"x", headers=origin)
    assert failed.status_code == 502
    _assert_echoed(failed, APP)


def test_unexpected_errors_carry_the_cors_headers(tmp_path: Path) -> None:
    """A 500 from Starlette's outermost error handler still gets the headers."""
    app = create_app(Settings(data_dir=tmp_path, password="x" * 20, cors_origins=APP))

    def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/boom", boom)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)

    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get("/boom", headers={"Origin": APP})

    import asyncio

    answer = asyncio.run(call())
    assert answer.status_code == 500
    assert answer.json()["detail"].startswith("internal error")
    _assert_echoed(answer, APP)


# --- the default (`*`) and no origin ------------------------------------------------------------


def test_default_allows_every_origin_without_credentials(server: RunningServer) -> None:
    for origin in (EVIL, "http://localhost:5173", "null"):
        answer = _preflight(f"{server.url}/system/services", origin, "POST", "authorization")
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in answer.headers
        assert "authorization" in _names(answer.headers["access-control-allow-headers"])
        actual = server.client().get("/system/services", headers={"Origin": origin})
        assert actual.status_code == 200
        assert actual.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in actual.headers
        assert "x-oscar-job-name" in _names(actual.headers["access-control-expose-headers"])
    denied = server.client(auth=False).get("/system/services", headers={"Origin": EVIL})
    assert denied.status_code == 401
    assert denied.headers["access-control-allow-origin"] == "*"


def test_empty_setting_allows_no_origin(disabled: RunningServer) -> None:
    answer = _preflight(f"{disabled.url}/system/info", APP, "GET", "authorization")
    assert answer.status_code == 403
    _assert_refused(answer)
    actual = disabled.client().get("/system/info", headers={"Origin": APP})
    assert actual.status_code == 200
    _assert_refused(actual)
    s3 = _preflight(f"{disabled.s3_endpoint}/bucket/key", APP, "PUT")
    assert s3.status_code == 403
    _assert_refused(s3)


# --- the embedded S3 endpoint -----------------------------------------------------------------


def test_s3_follows_the_same_origins(listed: RunningServer, services: dict[str, Any]) -> None:
    bucket, key = services["name"], "in/from-browser.txt"
    url = f"{listed.s3_endpoint}/{bucket}/{key}"
    preflight = _preflight(url, APP, "PUT", "content-type, x-amz-date, x-amz-content-sha256")
    assert preflight.status_code == 200
    _assert_echoed(preflight, APP)
    assert {"x-amz-date", "x-amz-content-sha256"} <= _names(
        preflight.headers["access-control-allow-headers"]
    )
    refused = _preflight(url, EVIL, "PUT")
    assert refused.status_code == 403
    _assert_refused(refused)
    assert b"<Code>AccessDenied</Code>" in refused.content

    s3 = listed.s3(signature_version="s3v4")
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": key})
    put = httpx.put(put_url, content=b"from a page", headers={"Origin": APP})
    assert put.status_code == 200, put.text
    _assert_echoed(put, APP)
    assert "etag" in _names(put.headers["access-control-expose-headers"])
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key})
    got = httpx.get(get_url, headers={"Origin": DASH})
    assert got.content == b"from a page"
    _assert_echoed(got, DASH)
    other = httpx.get(get_url, headers={"Origin": EVIL})
    assert other.status_code == 200
    _assert_refused(other)

    # S3 errors too: a bad signature, a missing key, an anonymous request.
    bad = httpx.get(
        get_url.replace("X-Amz-Signature=", "X-Amz-Signature=0"), headers={"Origin": APP}
    )
    assert bad.status_code == 403
    _assert_echoed(bad, APP)
    missing_url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "none"})
    missing = httpx.get(missing_url, headers={"Origin": APP})
    assert missing.status_code == 404
    _assert_echoed(missing, APP)
    anonymous = httpx.get(url, headers={"Origin": APP})
    assert anonymous.status_code == 403
    _assert_echoed(anonymous, APP)


def test_a_page_deletes_with_a_presigned_delete(
    listed: RunningServer, services: dict[str, Any]
) -> None:
    """The dashboard's delete: the API presigns it, the browser sends DELETE to the S3 port."""
    bucket, key = services["name"], "in/deleted-from-browser.txt"
    listed.s3().put_object(Bucket=bucket, Key=key, Body=b"to delete")
    signed = listed.client().post(
        f"/system/buckets/{bucket}/presign", json={"object_key": key, "operation": "delete"}
    )
    assert signed.status_code == 200, signed.text
    url = signed.json()["url"]
    assert url.startswith(f"{listed.s3_endpoint}/{bucket}/")
    preflight = _preflight(url, DASH, "DELETE")
    assert preflight.status_code == 200
    _assert_echoed(preflight, DASH)
    assert "DELETE" in {
        m.strip() for m in preflight.headers["access-control-allow-methods"].split(",")
    }
    deleted = httpx.delete(url, headers={"Origin": DASH})
    assert deleted.status_code == 204, deleted.text
    _assert_echoed(deleted, DASH)
    assert listed.s3().list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount") == 0
