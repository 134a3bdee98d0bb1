"""The dashboard's files at `/ui` over real HTTP: the committed build, compressed, cached, safe."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from oscar.api.ui import CONTENT_SECURITY_POLICY, STATIC_ROOT

ASSETS = STATIC_ROOT / "assets"


def _hashed_chunk() -> Path:
    chunks = [path for path in ASSETS.glob("*.js") if re.search(r"-[A-Z0-9]{8}\.js$", path.name)]
    assert chunks, f"no hashed chunk in {ASSETS}: build web/ first"
    return max(chunks, key=lambda path: path.stat().st_size)


def test_the_page_needs_no_login_but_the_api_does(anon: httpx.Client) -> None:
    page = anon.get("/ui")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.content == (STATIC_ROOT / "index.html").read_bytes()
    assert '<script type="module" src="/ui/assets/main.js"' in page.text
    assert anon.get("/ui/").content == page.content
    assert anon.get("/system/info").status_code == 401


def test_the_server_root_redirects_to_the_dashboard(anon: httpx.Client) -> None:
    answer = anon.get("/", follow_redirects=False)
    assert answer.status_code == 307
    assert answer.headers["location"] == "/ui"


def test_assets_are_gzipped_for_clients_that_accept_it(anon: httpx.Client) -> None:
    main = (ASSETS / "main.js").read_bytes()
    compressed = anon.get("/ui/assets/main.js", headers={"Accept-Encoding": "gzip"})
    assert compressed.status_code == 200
    assert compressed.headers["content-encoding"] == "gzip"
    assert compressed.headers["content-type"] == "application/javascript; charset=utf-8"
    assert "Accept-Encoding" in compressed.headers["vary"]
    assert int(compressed.headers["content-length"]) < len(main)
    assert compressed.content == main  # httpx inflates it
    plain = anon.get("/ui/assets/main.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.content == main


def test_hashed_chunks_are_immutable_and_the_rest_revalidated(anon: httpx.Client) -> None:
    chunk = _hashed_chunk()
    answer = anon.get(f"/ui/assets/{chunk.name}")
    assert answer.status_code == 200
    assert answer.content == chunk.read_bytes()
    assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
    main = anon.get("/ui/assets/main.js")
    assert main.headers["cache-control"] == "no-cache"
    revalidated = anon.get("/ui/assets/main.js", headers={"If-None-Match": main.headers["etag"]})
    assert revalidated.status_code == 304
    assert revalidated.content == b""
    stale = anon.get("/ui/assets/main.js", headers={"If-None-Match": '"not-this-one"'})
    assert stale.status_code == 200


def test_styles_and_icon_have_their_types(anon: httpx.Client) -> None:
    assert anon.get("/ui/assets/styles.css").headers["content-type"].startswith("text/css")
    assert anon.get("/ui/favicon.svg").headers["content-type"].startswith("image/svg+xml")


@pytest.mark.parametrize(
    "path",
    [
        "/ui/%2e%2e/app.py",
        "/ui/%2e%2e/%2e%2e/oscar/app.py",
        "/ui/assets/..%2f..%2fapi%2fui.py",
        "/ui/assets/%2e%2e/index.html",
        "/ui/.hidden",
        "/ui/assets//main.js",
        "/ui/assets/main.js%00.png",
        "/ui/assets/nothing-here.js",
    ],
)
def test_names_are_never_taken_as_paths(anon: httpx.Client, path: str) -> None:
    answer = anon.get(path)
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/json"
    assert "dashboard file" in answer.json()["detail"]
    assert b"import " not in answer.content and b"<html" not in answer.content
