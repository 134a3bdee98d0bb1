"""WebDAV / dCache by polling: PROPFIND the watched folder, take new or changed files.

The cursor holds, per file (its path under the service's webdav input), the version last
taken: ETag, size and modification time. A file is taken once it looked the same in
`stable_polls` consecutive listings, so one still being written (its size or ETag moving) is
left for a later poll. A file that disappears is forgotten, so a new file under the same name
is a new version.

Each file taken becomes the dCache event the supervisor stages from the service's webdav
input: `{"event": {"name": <path under the input>, "mask": ["IN_CLOSE_WRITE"]},
"subscription": <folder URL>}`.
"""

from __future__ import annotations

import json
import posixpath
import threading
import time
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit
from xml.etree import ElementTree

import httpx

from oscar.bridges.base import (
    Batch,
    EventSource,
    SourceContext,
    SourceEvent,
    Versions,
    first_input,
    provider_settings,
)
from oscar.errors import BackendError, BackendUnavailableError
from oscar.events.records import object_identity
from oscar.models.bridge import WebDavBridge

_DAV = "{DAV:}"
_PROPFIND = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b'<d:propfind xmlns:d="DAV:"><d:prop><d:resourcetype/><d:getcontentlength/>'
    b"<d:getetag/><d:getlastmodified/></d:prop></d:propfind>"
)
# Folders deeper than this are not listed (a loop of links on the server cannot trap us).
MAX_DEPTH = 32


@dataclass(frozen=True)
class Entry:
    """One file a listing showed."""

    path: str  # under the watched folder
    version: str  # etag|size|mtime


def url_with_scheme(endpoint: str) -> str:
    """`endpoint` with https:// when it names no scheme (as the supervisor reads it)."""
    endpoint = endpoint.strip().rstrip("/")
    return endpoint if endpoint.startswith(("http://", "https://")) else f"https://{endpoint}"


class WebDavLister:
    """PROPFIND listings of one folder tree, with errors turned into ours."""

    def __init__(
        self, endpoint: str, auth: httpx.Auth | None, headers: dict[str, str], verify: bool
    ):
        self.endpoint = url_with_scheme(endpoint)
        self._base_path = urlsplit(self.endpoint).path.rstrip("/")
        self._client = httpx.Client(
            auth=auth, headers=headers, verify=verify, timeout=httpx.Timeout(30, connect=10)
        )

    def close(self) -> None:
        """Close the connections."""
        self._client.close()

    def folder_url(self, folder: str) -> str:
        """The URL of a folder (a path under the endpoint)."""
        return f"{self.endpoint}/{quote(folder.strip('/'))}/"

    def list(self, folder: str, recursive: bool) -> list[Entry]:
        """Every file under `folder` (its subfolders too when `recursive`)."""
        files: list[Entry] = []
        pending = [(folder.strip("/"), 0)]
        while pending:
            current, depth = pending.pop()
            for path, is_folder, version in self._propfind(current):
                if is_folder:
                    if recursive and depth < MAX_DEPTH:
                        pending.append((path, depth + 1))
                else:
                    files.append(Entry(path, version))
        root = folder.strip("/")
        return [
            Entry(posixpath.relpath(e.path, root) if root else e.path, e.version) for e in files
        ]

    def _propfind(self, folder: str) -> list[tuple[str, bool, str]]:
        url = self.folder_url(folder)
        try:
            answer = self._client.request(
                "PROPFIND",
                url,
                content=_PROPFIND,
                headers={"Depth": "1", "Content-Type": "application/xml"},
            )
        except httpx.TransportError as exc:
            raise BackendUnavailableError(
                f"WebDAV server {self.endpoint} cannot be reached: {exc}"
            ) from None
        if answer.status_code in (401, 403):
            raise BackendError(
                f"WebDAV server {self.endpoint} refused the bridge's credentials "
                f"({answer.status_code}) for {url}"
            )
        if answer.status_code == 404:
            raise BackendError(f"folder {url} does not exist on the WebDAV server")
        if answer.status_code != 207:
            raise BackendError(
                f"WebDAV server {self.endpoint} answered PROPFIND {url} with {answer.status_code}"
            )
        return self._parse(answer.content, folder)

    def _parse(self, body: bytes, folder: str) -> list[tuple[str, bool, str]]:
        try:
            # The server is one the bridge's owner chose; expat resolves no external entities.
            root = ElementTree.fromstring(body)  # noqa: S314
        except ElementTree.ParseError as exc:
            raise BackendError(
                f"WebDAV server {self.endpoint} sent an unreadable listing: {exc}"
            ) from None
        entries = []
        own = "/".join(p for p in (self._base_path.strip("/"), folder.strip("/")) if p)
        for response in root.iter(f"{_DAV}response"):
            href = response.findtext(f"{_DAV}href") or ""
            path = unquote(urlsplit(href).path).strip("/")
            if path == own or not path.startswith(own + "/" if own else ""):
                continue  # the folder itself, or something not under it
            relative = path[len(self._base_path.strip("/")) :].strip("/")
            props: dict[str, str] = {}
            is_folder = False
            for propstat in response.iter(f"{_DAV}propstat"):
                if " 200 " not in f" {propstat.findtext(f'{_DAV}status') or ''} ":
                    continue
                prop = propstat.find(f"{_DAV}prop")
                if prop is None:
                    continue
                kind = prop.find(f"{_DAV}resourcetype")
                if kind is not None and kind.find(f"{_DAV}collection") is not None:
                    is_folder = True
                for name in ("getetag", "getcontentlength", "getlastmodified"):
                    props[name] = (prop.findtext(f"{_DAV}{name}") or "").strip()
            parts = relative.split("/")
            if any(part in ("", ".", "..") for part in parts):
                continue  # never a name the supervisor would refuse anyway
            version = "|".join(
                (props.get("getetag", ""), props.get("getcontentlength", ""),
                 props.get("getlastmodified", ""))
            )  # fmt: skip
            entries.append((relative, is_folder, version))
        return entries


def webdav_auth(user: str, password: str, token: str) -> tuple[httpx.Auth | None, dict[str, str]]:
    """Basic auth with a user, or a bearer token (a dCache macaroon or OIDC token)."""
    if token:
        return None, {"Authorization": f"Bearer {token}"}
    if user or password:
        return httpx.BasicAuth(user, password), {}
    return None, {}


class Source(EventSource):
    """A WebDAV folder watched by polling."""

    bridge: WebDavBridge

    def __init__(self, context: SourceContext) -> None:
        super().__init__(context)
        bridge = self.bridge
        entry = first_input(self.service, ("webdav",), bridge.provider)
        if entry is None:
            raise BackendError(f"service '{self.service.name}' has no webdav input")
        self.input_path = entry.path.strip("/")
        self.provider = entry.storage_provider
        settings = provider_settings(context, self.provider)
        self.folder = (bridge.folder or self.input_path).strip("/")
        if self.folder != self.input_path and not self.folder.startswith(self.input_path + "/"):
            raise BackendError(
                f"folder '{self.folder}' is not inside the service's webdav input "
                f"'{self.input_path}': its files could not be staged"
            )
        self.endpoint = bridge.endpoint or str(settings.get("hostname") or "")
        if not self.endpoint:
            raise BackendError(f"no endpoint: neither the bridge nor {self.provider} names one")
        user = bridge.secret("user") or str(settings.get("login") or "")
        password = bridge.secret("password") or str(settings.get("password") or "")
        auth, headers = webdav_auth(user, password, bridge.secret("token"))
        verify = bridge.verify and bool(settings.get("verify", True))
        self._lister = WebDavLister(self.endpoint, auth, headers, verify)
        self._versions = Versions(context)
        self._candidates: dict[str, tuple[str, int]] = {}  # path → (version, times seen)
        self._next_poll = 0.0

    def connect(self) -> None:
        """Load the cursor and check the folder can be listed."""
        self._versions.load()
        self._lister.list(self.folder, recursive=False)

    def close(self) -> None:
        """Close the connections."""
        self._lister.close()

    def lag(self) -> int | None:
        """Files seen new or changed and not yet taken (still settling)."""
        return len(self._candidates)

    def fetch(self, stop: threading.Event, limit: int) -> Batch:
        """One listing (at most one per `interval`), and the files that settled (at most
        `limit`: the others are taken by the next polls, without settling again)."""
        wait = self._next_poll - time.monotonic()
        if wait > 0 and stop.wait(wait):
            return Batch()
        self._next_poll = time.monotonic() + self.bridge.interval
        listing = {e.path: e.version for e in self._lister.list(self.folder, self.bridge.recursive)}
        taken: dict[str, str] = {}
        candidates: dict[str, tuple[str, int]] = {}
        for path, version in listing.items():
            if self._versions.is_taken(path, version):
                continue
            seen_version, times = self._candidates.get(path, ("", 0))
            times = times + 1 if seen_version == version else 1
            if times >= self.bridge.stable_polls and len(taken) < limit:
                taken[path] = version
            else:
                candidates[path] = (version, times)
        self._candidates = candidates
        gone = self._versions.gone(listing)
        subscription = self._lister.folder_url(self.folder)
        events = []
        for path, version in sorted(taken.items()):
            name = posixpath.join(self.folder, path)[len(self.input_path) :].strip("/")
            event = {
                "event": {"name": name, "mask": ["IN_CLOSE_WRITE"]},
                "subscription": subscription,
            }
            location = f"{self.input_path}/{name}"
            dedup = object_identity(self.service.name, self.provider, location, version)
            events.append(SourceEvent(json.dumps(event), dedup, subject=name))
        self._versions.hand(taken)
        return Batch(events, token=(taken, gone))

    def commit(self, batch: Batch) -> None:
        """Remember the versions taken and forget the files that are gone."""
        self._versions.commit(batch.token)
