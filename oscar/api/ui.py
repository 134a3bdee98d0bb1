"""The web dashboard at `/ui`: the committed build of `web/` (`oscar/ui/static`), served as files.

The dashboard is a client of the public API like any other, so these routes need no
authentication and read nothing but their own folder. Files are gzip-compressed once, in memory,
for clients that accept it; hashed chunks are cached for a year, the rest revalidated by ETag.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Header, Response
from fastapi.responses import RedirectResponse

from oscar.errors import NotFoundError

STATIC_ROOT = Path(__file__).resolve().parent.parent / "ui" / "static"
_SAFE_PATH = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*")
_HASHED = re.compile(r"-[A-Z0-9]{8}\.(js|css)$")
_COMPRESSIBLE = ("text/", "application/javascript", "application/json", "image/svg+xml")
# The page loads its own scripts and styles only; it talks to the API and to the object store,
# whose endpoint (embedded port, MinIO, S3) is known only at run time.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self' http: https:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)

router = APIRouter(tags=["dashboard"], include_in_schema=False)


@dataclass(frozen=True)
class StaticFile:
    """One file of the build, with its compressed form and validators computed once."""

    body: bytes
    gzipped: bytes | None
    media_type: str
    etag: str
    immutable: bool


def _load(relative: str) -> StaticFile:
    """The file `relative` under `STATIC_ROOT`, or 404; cached until the file changes."""
    path = (STATIC_ROOT / relative).resolve()
    if not path.is_relative_to(STATIC_ROOT) or not path.is_file():
        raise NotFoundError(f"no dashboard file {relative!r}")
    stat = path.stat()
    # A rebuild under a running server (`node build.mjs`) replaces files: serve the new ones.
    return _read(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=256)
def _read(path: Path, _mtime_ns: int, _size: int) -> StaticFile:
    body = path.read_bytes()
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if media_type == "text/javascript":
        media_type = "application/javascript"
    compress = media_type.startswith(_COMPRESSIBLE) and len(body) > 512
    return StaticFile(
        body=body,
        gzipped=gzip.compress(body, compresslevel=9, mtime=0) if compress else None,
        media_type=media_type,
        etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"',
        immutable=bool(_HASHED.search(path.name)),
    )


def _matches(etag: str, if_none_match: str) -> bool:
    """If-None-Match's weak comparison: `*`, or `etag` among the listed tags, `W/` or not."""
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


def _accepts_gzip(accept_encoding: str) -> bool:
    """Whether Accept-Encoding lists `gzip` (or `*`) with a quality above zero."""
    for item in accept_encoding.lower().split(","):
        coding, _, params = item.partition(";")
        if coding.strip() not in ("gzip", "*"):
            continue
        quality = params.strip().removeprefix("q=").strip() if params else "1"
        try:
            return float(quality) > 0
        except ValueError:
            return False
    return False


def _answer(relative: str, accept_encoding: str, if_none_match: str) -> Response:
    static = _load(relative)
    headers = {
        "ETag": static.etag,
        "Cache-Control": "public, max-age=31536000, immutable" if static.immutable else "no-cache",
        "X-Content-Type-Options": "nosniff",
        "Vary": "Accept-Encoding",
    }
    if relative == "index.html":
        headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        headers["Referrer-Policy"] = "no-referrer"
    if _matches(static.etag, if_none_match):
        return Response(status_code=304, headers=headers)
    media_type = static.media_type
    if media_type.startswith("text/") or media_type == "application/javascript":
        media_type += "; charset=utf-8"
    if static.gzipped is not None and _accepts_gzip(accept_encoding):
        headers["Content-Encoding"] = "gzip"
        return Response(static.gzipped, media_type=media_type, headers=headers)
    return Response(static.body, media_type=media_type, headers=headers)


@router.get("/", summary="Redirect to the dashboard")
def root() -> RedirectResponse:
    """Browsers that open the server's address land on the dashboard."""
    return RedirectResponse("/ui", status_code=307)


@router.get("/ui", summary="The dashboard")
def dashboard(
    accept_encoding: Annotated[str, Header()] = "",
    if_none_match: Annotated[str, Header()] = "",
) -> Response:
    """The dashboard's page (`/ui` and `/ui/` alike)."""
    return _answer("index.html", accept_encoding, if_none_match)


@router.get("/ui/{path:path}", summary="A file of the dashboard")
def dashboard_file(
    path: str,
    accept_encoding: Annotated[str, Header()] = "",
    if_none_match: Annotated[str, Header()] = "",
) -> Response:
    """One file of the build; names are matched, never taken as paths (no `..`, no dotfiles)."""
    if not _SAFE_PATH.fullmatch(path):
        raise NotFoundError(f"no dashboard file {path!r}")
    return _answer(path, accept_encoding, if_none_match)
