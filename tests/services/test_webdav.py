"""Smoke test: the WebDAV server really speaks WebDAV, with auth, to httpx and webdavclient3."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from webdav3.client import Client

from tests.services.webdav import WebDavServer

pytestmark = pytest.mark.webdav


def test_put_propfind_get_mkcol(webdav: WebDavServer) -> None:
    auth = (webdav.username, webdav.password)
    with httpx.Client(base_url=webdav.url, auth=auth, timeout=10) as dav:
        assert dav.request("MKCOL", "/smoke").status_code == 201
        assert dav.put("/smoke/hello.txt", content=b"hello dav").status_code in {201, 204}
        listing = dav.request("PROPFIND", "/smoke/", headers={"Depth": "1"})
        assert listing.status_code == 207
        assert "hello.txt" in listing.text
        assert dav.get("/smoke/hello.txt").content == b"hello dav"
    assert (webdav.root / "smoke" / "hello.txt").read_bytes() == b"hello dav"


def test_requests_without_credentials_are_refused(webdav: WebDavServer) -> None:
    assert httpx.get(f"{webdav.url}/").status_code == 401
    wrong = httpx.get(f"{webdav.url}/", auth=(webdav.username, "wrong"))
    assert wrong.status_code == 401


def test_webdavclient3_round_trip(webdav: WebDavServer, tmp_path: Path) -> None:
    client = Client(
        {
            "webdav_hostname": webdav.url,
            "webdav_login": webdav.username,
            "webdav_password": webdav.password,
        }
    )
    source = tmp_path / "up.bin"
    source.write_bytes(bytes(range(256)) * 64)
    client.mkdir("wdc")
    client.upload_sync(remote_path="wdc/up.bin", local_path=str(source))
    assert "up.bin" in client.list("wdc")
    target = tmp_path / "down.bin"
    client.download_sync(remote_path="wdc/up.bin", local_path=str(target))
    assert target.read_bytes() == source.read_bytes()
