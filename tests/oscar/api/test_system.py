"""System routes over real HTTP: health, info, config, OpenAPI and docs."""

from __future__ import annotations

import httpx
import pytest


def test_health_needs_no_auth(anon: httpx.Client) -> None:
    response = anon.get("/health")
    assert response.status_code == 200
    assert response.text == "Ok"


@pytest.mark.parametrize("path", ["/system/info", "/system/config", "/system/services"])
def test_system_routes_need_auth(anon: httpx.Client, path: str) -> None:
    response = anon.get(path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")


def test_info_shape(api: httpx.Client) -> None:
    body = api.get("/system/info").json()
    assert body["oscar_version"] == __import__("oscar").__version__
    assert body["version"]  # upstream's API version (tests/compat/test_go_payloads.py)
    assert {"git_commit", "architecture", "kubernetes_version", "name"} <= set(body)


def test_config_has_minio_provider_with_region(api: httpx.Client) -> None:
    body = api.get("/system/config").json()
    provider = body["minio_provider"]
    assert provider["endpoint"].startswith("http")
    assert provider["region"]
    assert provider["access_key"] and provider["secret_key"]
    assert isinstance(body["oidc_groups"], list)
    assert body["config"]["name"] == body["name"]


def test_trailing_slash_is_tolerated(api: httpx.Client) -> None:
    # oscar-python calls /system/config/ with a trailing slash.
    assert api.get("/system/config/").json() == api.get("/system/config").json()
    assert api.get("/system/services/").status_code == 200


def test_openapi_describes_every_route(anon: httpx.Client) -> None:
    spec = anon.get("/openapi.json").json()
    paths = spec["paths"]
    for path in ("/health", "/system/info", "/system/config", "/system/services"):
        assert path in paths
    assert {"get", "post", "put"} <= set(paths["/system/services"])
    assert "delete" in paths["/system/services/{name}"]
    assert "Service" in spec["components"]["schemas"]


def test_docs_page(anon: httpx.Client) -> None:
    response = anon.get("/docs")
    assert response.status_code == 200
    assert "swagger" in response.text.lower()


def test_unknown_route_is_404(api: httpx.Client) -> None:
    assert api.get("/system/nothing-here").status_code == 404
