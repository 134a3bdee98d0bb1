"""CORS for browser apps on other origins, by the Fetch standard's rules (API and S3 port alike).

`OSCAR_CORS_ORIGINS` lists the origins allowed to call from a browser. A listed origin is
echoed in `Access-Control-Allow-Origin` with `Access-Control-Allow-Credentials: true`, so a page
there may send cookies or the browser's cached Basic credentials (`credentials: "include"`). The
entry `*` allows every other origin too, but only without credentials: the answer is
`Access-Control-Allow-Origin: *` and never `Allow-Credentials` (the Fetch standard refuses the
pair, and echoing any origin with credentials would let every web site use a logged-in
browser). Scripts that set `Authorization` themselves (Basic or Bearer, as the OSCAR dashboard
does) work from any allowed origin, since the header is allowed explicitly in preflights
(`Access-Control-Allow-Headers: *` would not cover it).

The middleware wraps the whole application, outside Starlette's error handling, so that every
answer carries the headers, errors included (401, 403, 404, 413, 5xx): a browser hides the
status and body of a cross-origin answer without them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ANY = "*"
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS")
MAX_AGE = 3600  # seconds; Chromium caps a preflight cache entry at 7200
# Response headers scripts may read beyond the CORS-safelisted ones.
API_EXPOSED = ("X-Oscar-Job-Name", "WWW-Authenticate", "Retry-After", "Content-Disposition")
S3_EXPOSED = (
    "ETag",
    "Content-Length",
    "Content-Range",
    "Accept-Ranges",
    "Last-Modified",
    "x-amz-request-id",
    "x-amz-version-id",
    "x-amz-delete-marker",
)
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # a header name (RFC 9110 token)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(entry: str) -> str:
    """`entry` as browsers serialize an origin (`scheme://host[:port]`); raise ValueError."""
    entry = entry.strip()
    if entry == ANY:
        return ANY
    try:
        parts = urlsplit(entry.rstrip("/"))
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{entry!r} is not an origin: {exc}") from None
    if (
        not parts.scheme
        or not parts.hostname
        or parts.path
        or parts.query
        or parts.fragment
        or parts.username is not None
        or "*" in entry
    ):
        raise ValueError(
            f"{entry!r} is not an origin: write scheme://host[:port] without a path, "
            "or * for every origin"
        )
    scheme, host = parts.scheme.lower(), parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}:{port}"
    return f"{scheme}://{host}"


@dataclass(frozen=True)
class CorsPolicy:
    """Which origins may call, and what their answers carry."""

    origins: frozenset[str]  # listed: echoed, with credentials
    any_origin: bool = False  # `*`: everyone else, without credentials
    exposed: tuple[str, ...] = API_EXPOSED
    max_age: int = MAX_AGE

    @classmethod
    def from_origins(
        cls, entries: Iterable[str], exposed: tuple[str, ...] = API_EXPOSED
    ) -> CorsPolicy:
        """The policy of an `OSCAR_CORS_ORIGINS` list (entries normalized as origins)."""
        normalized = {normalize_origin(e) for e in entries if e.strip()}
        return cls(frozenset(normalized - {ANY}), ANY in normalized, exposed)

    def with_exposed(self, exposed: tuple[str, ...]) -> CorsPolicy:
        """The same origins, exposing `exposed` instead."""
        return CorsPolicy(self.origins, self.any_origin, exposed, self.max_age)

    def credentialed(self, origin: str) -> bool:
        """Whether `origin` is listed (and so may send credentials)."""
        return origin.lower() in self.origins

    def allows(self, origin: str) -> bool:
        """Whether a page of `origin` may read answers."""
        return self.any_origin or self.credentialed(origin)

    def origin_headers(self, origin: str) -> dict[str, str]:
        """`Access-Control-Allow-Origin` (and `-Credentials`) for an allowed `origin`."""
        if self.credentialed(origin):
            return {
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Credentials": "true",
            }
        return {"Access-Control-Allow-Origin": ANY}

    def preflight_headers(self, origin: str, request: Headers) -> dict[str, str]:
        """The answer to an allowed preflight: methods, the requested headers, max-age."""
        headers = self.origin_headers(origin)
        headers["Access-Control-Allow-Methods"] = ", ".join(METHODS)
        wanted = [
            name.strip().lower()
            for name in request.get("access-control-request-headers", "").split(",")
        ]
        # Named one by one: a `*` here does not cover Authorization, nor anything with credentials.
        allowed = dict.fromkeys(["authorization", "content-type"] + [w for w in wanted if w])
        headers["Access-Control-Allow-Headers"] = ", ".join(
            name for name in allowed if _TOKEN.match(name)
        )
        headers["Access-Control-Max-Age"] = str(self.max_age)
        if request.get("access-control-request-private-network", "").lower() == "true":
            # Chrome's Private Network Access: a public page (the hosted dashboard) calling a
            # server on a private address or localhost.
            headers["Access-Control-Allow-Private-Network"] = "true"
        return headers


def json_denial(reason: str) -> tuple[bytes, str]:
    """The body of a refused preflight on the API: JSON with a `detail` sentence."""
    return json.dumps({"detail": reason}).encode(), "application/json"


class CORSMiddleware:
    """Answer preflights and add the CORS headers of `policy` to every answer.

    A preflight (OPTIONS with `Origin` and `Access-Control-Request-Method`) never reaches the
    application: an allowed one is answered 200, a refused origin or method 403 with `deny`'s
    body and no CORS headers (so the browser refuses the request). Every other answer gets
    `Vary: Origin` (they depend on it) and, for an allowed `Origin`, the origin headers and
    `Access-Control-Expose-Headers`.
    """

    def __init__(
        self,
        app: ASGIApp,
        policy: CorsPolicy,
        deny: Callable[[str], tuple[bytes, str]] = json_denial,
    ) -> None:
        self.app = app
        self.policy = policy
        self.deny = deny

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Headers(scope=scope)
        origin = request.get("origin")
        if (
            scope["method"] == "OPTIONS"
            and origin is not None
            and "access-control-request-method" in request
        ):
            await self._preflight(origin, request, send)
            return
        extra: dict[str, str] = {}
        if origin is not None and self.policy.allows(origin):
            extra = self.policy.origin_headers(origin)
            if self.policy.exposed:
                extra["Access-Control-Expose-Headers"] = ", ".join(self.policy.exposed)

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", []))
                headers = MutableHeaders(scope=message)
                for name in [n for n in headers if n.startswith("access-control-")]:
                    del headers[name]  # ours replace whatever the application set
                headers.update(extra)
                headers.add_vary_header("Origin")
            await send(message)

        await self.app(scope, receive, with_cors)

    async def _preflight(self, origin: str, request: Headers, send: Send) -> None:
        method = request["access-control-request-method"].strip()
        if not self.policy.allows(origin):
            await self._refuse(send, f"origin {origin!r} is not allowed (OSCAR_CORS_ORIGINS)")
            return
        if method not in METHODS:
            await self._refuse(send, f"method {method!r} is not allowed")
            return
        headers = self.policy.preflight_headers(origin, request)
        headers["Vary"] = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        raw.append((b"content-length", b"0"))
        await send({"type": "http.response.start", "status": 200, "headers": raw})
        await send({"type": "http.response.body", "body": b""})

    async def _refuse(self, send: Send, reason: str) -> None:
        body, media_type = self.deny(reason)
        headers = [
            (b"content-type", media_type.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"vary", b"Origin"),
        ]
        await send({"type": "http.response.start", "status": 403, "headers": headers})
        await send({"type": "http.response.body", "body": body})
