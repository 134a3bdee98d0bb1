"""ASGI middleware: trailing-slash tolerance, request-body limit, structured access log, and
the execution log of `/job` and `/run` calls (`GET /system/logs`)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("oscar.access")


class TrailingSlashMiddleware:
    """Route `/system/config/` like `/system/config` (oscar-python calls the former).

    A redirect would make clients resend bodies and credentials; rewriting the path does not.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if len(path) > 1 and path.endswith("/"):
                scope = dict(scope)
                scope["path"] = path.rstrip("/") or "/"
                raw = scope.get("raw_path")
                if raw:
                    scope["raw_path"] = raw.rstrip(b"/") or b"/"
        await self.app(scope, receive, send)


class BodyTooLargeError(Exception):
    """Raised from `receive` when a streamed body passes the limit."""


class BodyLimitMiddleware:
    """Answer 413 to request bodies larger than `max_bytes`, declared or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _reject(self, send: Send) -> None:
        body = json.dumps(
            {"detail": f"request body larger than the limit of {self.max_bytes} bytes"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._reject(send)
                return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLargeError
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLargeError:
            if not started:
                await self._reject(send)


def go_duration(seconds: float) -> str:
    """`seconds` written as Go's `time.Duration` prints it (`850ns`, `1.5ms`, `2m3.5s`), the
    form of upstream's execution-log latency (the dashboard reads its leading number)."""
    ns = max(0, round(seconds * 1e9))
    if ns == 0:
        return "0s"
    if ns < 1000:
        return f"{ns}ns"
    for unit, size in (("µs", 1000), ("ms", 1000**2)):
        if ns < size * 1000:
            return f"{ns / size:.6f}".rstrip("0").rstrip(".") + unit
    hours, rest = divmod(ns, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    text = f"{rest / 1e9:.9f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    return f"{minutes}m{text}" if minutes else text


def is_execution(method: str, path: str) -> bool:
    """Whether a request is an invocation upstream's execution log records: `POST /job/...`
    or `POST /run/...`."""
    return method == "POST" and path.startswith(("/job/", "/run/"))


class ExecutionLog:
    """The last `size` `/job` and `/run` calls, oldest first, in memory (gone on restart).

    Appending and copying take a lock held for microseconds, so the event loop never waits on
    a request handler reading it. Entries hold no header, query string or body.
    """

    def __init__(self, size: int) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=size)
        self._lock = threading.Lock()

    def record(
        self,
        *,
        status: int,
        seconds: float,
        client_ip: str,
        method: str,
        path: str,
        user: str,
        moment: datetime | None = None,
    ) -> None:
        """Add one call (its end time `moment`, default now), dropping the oldest when full."""
        when = (moment or datetime.now(UTC)).astimezone(UTC)
        timestamp = when.isoformat().replace("+00:00", "Z")
        latency = go_duration(seconds)
        entry = {
            "timestamp": timestamp,
            "status": status,
            "latency": latency,
            "client_ip": client_ip,
            "method": method,
            "path": path,
            "user": user,
            # The line upstream's manager would have printed for this call.
            "raw": f"[GIN-EXECUTIONS-LOGGER] {timestamp} | {status:3d} | {latency:>13} | "
            f"{client_ip} | {method:<7} {path} | {user}",
        }
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[dict[str, Any]]:
        """A copy of the entries, oldest first."""
        with self._lock:
            return list(self._entries)


class AccessLogMiddleware:
    """One structured log record per HTTP request: method, path, status, latency, client, user;
    `/job` and `/run` calls also go to the execution log, when one is given.

    Never logs headers, query strings or bodies, so credentials and tokens cannot leak into
    logs.
    """

    def __init__(self, app: ASGIApp, executions: ExecutionLog | None = None) -> None:
        self.app = app
        self.executions = executions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status_code = 500
        state = scope.setdefault("state", {})  # shared with Request.state in the routes
        pending = self.executions is not None and is_execution(scope["method"], scope["path"])

        def record() -> None:
            nonlocal pending
            if pending and self.executions is not None:
                pending = False
                client = scope.get("client")
                self.executions.record(
                    status=status_code,
                    seconds=time.perf_counter() - start,
                    client_ip=client[0] if client else "",
                    method=scope["method"],
                    path=scope["path"],
                    # The principal's name (`oscar`, `service-token:<service>`), never a token.
                    user=state.get("principal") or "anonymous",
                )

        async def capture(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                record()  # before the caller can see the end of the answer
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            record()  # no-op unless the answer was never completed
            client = scope.get("client")
            access_log.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                status_code,
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status_code,
                    "duration_ms": round((time.perf_counter() - start) * 1000, 2),
                    "client": f"{client[0]}:{client[1]}" if client else None,
                    "user": state.get("principal"),
                },
            )
