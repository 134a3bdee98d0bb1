"""Authentication: Basic on every /system route, service tokens where upstream takes them."""

from __future__ import annotations

import stat
from collections.abc import Callable

import httpx
import pytest

from tests.fixtures.server import ADMIN_PASSWORD, RunningServer
from tests.fixtures.services import minimal_service, unique_name

# Every /system route with a method that reaches it (service names need not exist: auth first).
SYSTEM_ROUTES = [
    ("GET", "/system/info"),
    ("GET", "/system/config"),
    ("GET", "/system/services"),
    ("POST", "/system/services"),
    ("PUT", "/system/services"),
    ("GET", "/system/services/some-service"),
    ("DELETE", "/system/services/some-service"),
    ("GET", "/system/logs/some-service"),
    ("GET", "/system/logs/some-service/some-job"),
    ("DELETE", "/system/logs/some-service"),
    ("DELETE", "/system/logs/some-service/some-job"),
    ("GET", "/system/buckets"),
    ("POST", "/system/buckets"),
    ("PUT", "/system/buckets"),
    ("GET", "/system/buckets/some-bucket"),
    ("DELETE", "/system/buckets/some-bucket"),
]

BAD_CREDENTIALS = [
    None,
    ("oscar", "wrong-password"),
    ("someone", ADMIN_PASSWORD),
    ("oscar", ""),
    ("oscar", ADMIN_PASSWORD + "x"),
]


def _auth_id(auth: object) -> str:
    return (
        "none"
        if auth is None
        else f"{auth[0] or '-'}:{'ok' if auth[1] == ADMIN_PASSWORD else 'bad'}"
    )  # type: ignore[index]


@pytest.mark.parametrize(("method", "path"), SYSTEM_ROUTES)
@pytest.mark.parametrize("auth", BAD_CREDENTIALS, ids=_auth_id)
def test_system_routes_reject_missing_or_wrong_credentials(
    anon: httpx.Client, method: str, path: str, auth: tuple[str, str] | None
) -> None:
    body = minimal_service() if method in {"POST", "PUT"} else None
    response = anon.request(method, path, json=body, auth=auth)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Basic realm="oscar"'


def test_service_token_does_not_open_system_routes(api: httpx.Client, anon: httpx.Client) -> None:
    name = unique_name()
    api.post("/system/services", json=minimal_service(name))
    token = api.get(f"/system/services/{name}").json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert anon.get("/system/services", headers=bearer).status_code == 401
    assert anon.get(f"/system/services/{name}", headers=bearer).status_code == 401


def test_forward_auth_with_service_token(api: httpx.Client, anon: httpx.Client) -> None:
    name = unique_name()
    api.post("/system/services", json=minimal_service(name))
    token = api.get(f"/system/services/{name}").json()["token"]
    route = f"/system/services/{name}/auth"
    assert anon.get(route, headers={"Authorization": f"Bearer {token}"}).status_code == 204
    assert api.get(route).status_code == 204
    assert anon.get(route).status_code == 401
    assert anon.get(route, headers={"Authorization": "Bearer " + "0" * 64}).status_code == 401


def test_token_of_another_service_is_refused(api: httpx.Client, anon: httpx.Client) -> None:
    first, second = unique_name(), unique_name()
    for name in (first, second):
        api.post("/system/services", json=minimal_service(name))
    token = api.get(f"/system/services/{first}").json()["token"]
    response = anon.get(
        f"/system/services/{second}/auth", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401


def test_forward_auth_unknown_service_is_404(anon: httpx.Client) -> None:
    response = anon.get(f"/system/services/{unique_name()}/auth")
    assert response.status_code == 404


@pytest.mark.slow
def test_generated_password_is_stored_private_and_printed_once(
    start_oscar: Callable[..., RunningServer],
) -> None:
    first = start_oscar(password=None)
    password_file = first.data_dir / "admin-password"
    password = password_file.read_text().strip()
    assert len(password) >= 32
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert first.client().get("/system/info").status_code == 200
    assert first.client(auth=False).get("/system/info", auth=("oscar", "x")).status_code == 401
    first.stop()
    assert first.log().count(password) == 1

    second = start_oscar(data_dir=first.data_dir, password=None)
    assert second.client().get("/system/info").status_code == 200
    second.stop()
    assert password not in second.log()  # printed on first start only


def test_secrets_never_reach_the_log(server: RunningServer, api: httpx.Client) -> None:
    name = unique_name()
    secret = "top-secret-" + unique_name()
    service = minimal_service(name, environment={"secrets": {"KEY": secret}})
    assert api.post("/system/services", json=service).status_code == 201
    api.get(f"/system/services/{name}")
    log = server.log()
    assert f'"path": "/system/services/{name}"' in log or name in log  # requests are logged
    assert secret not in log
    assert ADMIN_PASSWORD not in log
    token = api.get(f"/system/services/{name}").json()["token"]
    assert token not in server.log()
