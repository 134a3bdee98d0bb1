"""Smoke test: the WebDAV server really speaks WebDAV, with auth, to httpx and webdavclient3."""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest
from defusedxml import ElementTree
from webdav3.client import Client
from webdav3.exceptions import ResponseErrorCode

from tests.services.webdav import WebDavServer

pytestmark = pytest.mark.webdav

DAV = "{DAV:}"


def _hrefs(multistatus: str) -> list[str]:
    """The decoded hrefs of a PROPFIND 207 Multi-Status body."""
    return [
        unquote(href.text or "") for href in ElementTree.fromstring(multistatus).iter(f"{DAV}href")
    ]


def test_put_propfind_get_mkcol_with_httpx(webdav: WebDavServer) -> None:
    folder = f"smoke-{uuid.uuid4().hex[:8]}"
    payload = bytes(range(256)) * 16
    with httpx.Client(base_url=webdav.url, auth=(webdav.username, webdav.password)) as dav:
        assert dav.request("MKCOL", f"/{folder}").status_code == 201
        assert dav.put(f"/{folder}/hello file.bin", content=payload).status_code == 201

        listing = dav.request("PROPFIND", f"/{folder}/", headers={"Depth": "1"})
        assert listing.status_code == 207
        assert f"/{folder}/hello file.bin" in _hrefs(listing.text)

        fetched = dav.get(f"/{folder}/hello file.bin")
        assert fetched.status_code == 200
        assert fetched.content == payload

        assert dav.request("MKCOL", f"/{folder}/sub").status_code == 201
        assert dav.request("MKCOL", f"/{folder}/sub").status_code == 405  # already exists
    assert (webdav.root / folder / "hello file.bin").read_bytes() == payload
    assert (webdav.root / folder / "sub").is_dir()


def test_requests_without_valid_credentials_are_refused(webdav: WebDavServer) -> None:
    anonymous = httpx.request("PROPFIND", f"{webdav.url}/", headers={"Depth": "0"})
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
    assert httpx.put(f"{webdav.url}/anon.txt", content=b"x").status_code == 401
    wrong = httpx.get(f"{webdav.url}/", auth=(webdav.username, "wrong"))
    assert wrong.status_code == 401
    assert not (webdav.root / "anon.txt").exists()


def test_webdavclient3_upload_list_download(webdav: WebDavServer, tmp_path: Path) -> None:
    client = Client(
        {
            "webdav_hostname": webdav.url,
            "webdav_login": webdav.username,
            "webdav_password": webdav.password,
        }
    )
    folder = f"wdc-{uuid.uuid4().hex[:8]}"
    source = tmp_path / "up.bin"
    source.write_bytes(bytes(range(256)) * 64)
    assert client.mkdir(folder)
    client.upload_sync(remote_path=f"{folder}/up.bin", local_path=str(source))
    assert client.check(f"{folder}/up.bin")
    assert "up.bin" in client.list(folder)
    target = tmp_path / "down.bin"
    client.download_sync(remote_path=f"{folder}/up.bin", local_path=str(target))
    assert target.read_bytes() == source.read_bytes()
    assert (webdav.root / folder / "up.bin").read_bytes() == source.read_bytes()


def test_webdavclient3_with_wrong_password_fails(webdav: WebDavServer) -> None:
    client = Client(
        {
            "webdav_hostname": webdav.url,
            "webdav_login": webdav.username,
            "webdav_password": "wrong",
        }
    )
    with pytest.raises(ResponseErrorCode) as refused:
        client.list("/")
    assert refused.value.code == 401
