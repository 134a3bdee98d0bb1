"""The dashboard's files at `/ui` over real HTTP: the committed build, compressed, cached, safe."""

from __future__ import annotations

import gzip
import re
import socket
from pathlib import Path

import httpx
import pytest

from oscar.api import ui
from oscar.api.ui import CONTENT_SECURITY_POLICY, STATIC_ROOT
from tests.fixtures.server import RunningServer

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
    # If-None-Match compares weakly: a proxy's `W/` tag, a list, or `*` also revalidate.
    for tags in (f"W/{main.headers['etag']}", f'"other", {main.headers["etag"]}', "*"):
        answer = anon.get("/ui/assets/main.js", headers={"If-None-Match": tags})
        assert answer.status_code == 304, tags


@pytest.mark.parametrize(
    ("accept", "gzipped"),
    [
        ("gzip, deflate, br, zstd", True),
        ("br;q=1.0, gzip;q=0.8", True),
        ("*", True),
        ("gzip;q=0", False),
        ("br, *;q=0", False),
        ("deflate", False),
        ("", False),
    ],
)
def test_gzip_only_when_accepted(anon: httpx.Client, accept: str, gzipped: bool) -> None:
    main = (ASSETS / "main.js").read_bytes()
    # Read the raw bytes: httpx would inflate them whatever the header says.
    with anon.stream("GET", "/ui/assets/main.js", headers={"Accept-Encoding": accept}) as answer:
        raw = b"".join(answer.iter_raw())
    assert ("content-encoding" in answer.headers) is gzipped
    assert (gzip.decompress(raw) if gzipped else raw) == main


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


def _raw_get(server: RunningServer, target: str) -> tuple[int, bytes]:
    """GET `target` exactly as written (httpx would resolve `..` before sending it)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        request = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        sock.sendall(request.encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    return status, answer


@pytest.mark.parametrize(
    "target",
    ["/ui/../oscar/app.py", "/ui/../../pyproject.toml", "/ui/assets/../../api/ui.py"],
)
def test_literal_dot_dot_is_never_followed(server: RunningServer, target: str) -> None:
    status, answer = _raw_get(server, target)
    assert status == 404
    assert b"import " not in answer and b"[project]" not in answer


def test_a_rebuild_is_served_without_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`node build.mjs` under a running server: the new file, with its new ETag, not the old."""
    monkeypatch.setattr(ui, "STATIC_ROOT", tmp_path)
    page = tmp_path / "index.html"
    page.write_bytes(b"<!doctype html><p>first")
    first = ui._answer("index.html", "", "")
    page.write_bytes(b"<!doctype html><p>second build")
    second = ui._answer("index.html", "", "")
    assert (first.body, second.body) == (b"<!doctype html><p>first", page.read_bytes())
    assert first.headers["etag"] != second.headers["etag"]
