"""dCache server-sent events: an inotify subscription on a channel of dCache's frontend API.

On its first start the bridge creates a channel (`POST <api>/events/channels`) and subscribes
it to the watched folder (`POST <channel>/subscriptions/inotify`, flags `IN_CLOSE_WRITE` and
`IN_MOVED_TO`), then reads the channel's event stream. The cursor holds the channel and the id
of the last event whose job is recorded; after a restart or a broken connection the stream is
reopened with `Last-Event-ID`, so dCache replays what came after it. A file closed after
writing (or moved in) becomes the event DCNiOS posts, dCache's own payload:
`{"event": {"name": ..., "mask": [...]}, "subscription": ...}`.

dCache forgets a channel some minutes after its client disconnects (and allows one listener
per channel): a channel that is gone is replaced, and the gap is reported in the bridge's
status, as is dCache's own `EVENT_LOSS`.
"""

from __future__ import annotations

import json
import threading

import httpx

from oscar.bridges.base import Batch, EventSource, SourceContext, SourceEvent, first_input
from oscar.bridges.stream import LineStream
from oscar.bridges.webdav import url_with_scheme, webdav_auth
from oscar.errors import BackendError, BackendUnavailableError
from oscar.events.records import object_identity
from oscar.models.bridge import DCacheBridge

FLAGS = ["IN_CLOSE_WRITE", "IN_MOVED_TO"]
MAX_BATCH = 500
READ_TIMEOUT = 600.0
# An event is `event:`, `id:` and `data:` lines and a blank one.
LINES_PER_EVENT = 4


class Source(EventSource):
    """One dCache channel with one inotify subscription."""

    bridge: DCacheBridge

    def __init__(self, context: SourceContext) -> None:
        super().__init__(context)
        entry = first_input(self.service, ("webdav",))
        if entry is None:
            raise BackendError(f"service '{self.service.name}' has no webdav input")
        self.provider = entry.storage_provider
        self.input_path = entry.path.strip("/")
        self.folder = "/" + (self.bridge.folder or self.input_path).strip("/")
        self.api = url_with_scheme(self.bridge.endpoint)
        auth, headers = webdav_auth(
            self.bridge.secret("user"), self.bridge.secret("password"), self.bridge.secret("token")
        )
        self._client = httpx.Client(
            auth=auth,
            headers=headers,
            verify=self.bridge.verify,
            # dCache may stay quiet for long: a read this long without a byte means a dead
            # connection, reopened after the last recorded event.
            timeout=httpx.Timeout(30, read=READ_TIMEOUT),
        )
        self._where = f"dCache {self.api}"
        self._stream: LineStream | None = None
        self._channel = ""
        self._pending: dict[str, str] = {}  # the SSE fields of an event not yet complete

    def _check(self, answer: httpx.Response, doing: str) -> None:
        if answer.status_code in (401, 403):
            raise BackendError(
                f"{self._where} refused the bridge's credentials ({answer.status_code}) "
                f"while {doing}"
            )
        if answer.status_code >= 400:
            raise BackendError(f"{self._where} answered {answer.status_code} while {doing}")

    def _call(self, method: str, url: str, doing: str, **options: object) -> httpx.Response:
        try:
            answer = self._client.request(method, url, **options)  # type: ignore[arg-type]
        except httpx.TransportError as exc:
            raise BackendUnavailableError(f"{self._where} cannot be reached: {exc}") from None
        self._check(answer, doing)
        return answer

    def _new_channel(self) -> None:
        answer = self._call("POST", f"{self.api}/events/channels", "creating a channel", json={})
        channel = answer.headers.get("location", "")
        if not channel:
            raise BackendError(f"{self._where} created a channel without naming it (Location)")
        self._call(
            "POST",
            f"{channel}/subscriptions/inotify",
            f"subscribing to {self.folder}",
            json={"path": self.folder, "flags": FLAGS},
        )
        # Nothing of the new channel is taken yet: no event id.
        self.context.move_cursor({"channel": channel}, ["last_id"])
        self._channel = channel

    def connect(self) -> None:
        """Reopen the stored channel after its last recorded event, or start a new one."""
        cursor = self.context.cursor()
        self._channel = cursor.get("channel", "")
        if not self._channel:
            self._new_channel()
        response = self._open(cursor.get("last_id", ""))
        if response is None:  # dCache forgot the channel
            self.notice = (
                f"dCache had forgotten channel {self._channel}: a new one was opened, and "
                "files closed while the bridge was away may have been missed"
            )
            self._new_channel()
            response = self._open("")
            if response is None:
                raise BackendError(f"{self._where} lost the channel it just created")
        self._stream = LineStream(lambda: response, self._where)

    def _open(self, last_id: str) -> httpx.Response | None:
        headers = {"Accept": "text/event-stream"}
        if last_id:
            headers["Last-Event-ID"] = last_id
        request = self._client.build_request("GET", self._channel, headers=headers)
        try:
            response = self._client.send(request, stream=True)
        except httpx.TransportError as exc:
            raise BackendUnavailableError(f"{self._where} cannot be reached: {exc}") from None
        if response.status_code == 404:
            response.close()
            return None
        if response.status_code != 200:
            response.read()
            response.close()
            self._check(response, "opening the event stream")
        return response

    def fetch(self, stop: threading.Event, limit: int) -> Batch:
        """The events the stream brought within one `interval` (about `limit`)."""
        assert self._stream is not None
        most = min(MAX_BATCH, limit) * LINES_PER_EVENT
        lines = self._stream.take(self.bridge.interval, stop, lambda got: len(got) >= most)
        batch = Batch()
        for line in lines:
            if line:
                field, _, value = line.partition(":")
                self._pending[field] = value[1:] if value.startswith(" ") else value
                continue
            fields, self._pending = self._pending, {}  # a blank line ends an event
            self._dispatch(fields, batch)
        return batch

    def _dispatch(self, fields: dict[str, str], batch: Batch) -> None:
        kind, event_id = fields.get("event", "message"), fields.get("id", "")
        try:
            data = json.loads(fields.get("data", ""))
        except ValueError:
            data = None
        if event_id:
            batch.token = event_id
        if kind == "SYSTEM" and isinstance(data, dict) and data.get("type") == "EVENT_LOSS":
            self.notice = "dCache reported EVENT_LOSS: some file events were not delivered"
            return
        if (
            kind != "inotify"
            or not isinstance(data, dict)
            or not isinstance(data.get("event"), dict)
        ):
            return
        inner = data["event"]
        mask = inner.get("mask") or []
        name = inner.get("name")
        if not isinstance(name, str) or not name or "IN_ISDIR" in mask:
            return
        if not set(mask) & set(FLAGS):
            return  # a file being created, opened, changed: taken once it is closed
        # The supervisor stages `name` from the service's webdav input: relative to it when
        # the watched folder lies inside it, else (DCNiOS's way) relative to the folder.
        path = f"{self.folder.strip('/')}/{name}"
        inside = path.startswith(self.input_path + "/")
        under_input = path[len(self.input_path) :].strip("/") if inside else name
        job_event = {**data, "event": {**inner, "name": under_input}}
        dedup = object_identity(
            self.service.name,
            self.provider,
            f"{self.input_path}/{under_input}",
            f"sse:{self._channel}:{event_id}",
        )
        batch.events.append(SourceEvent(json.dumps(job_event), dedup, subject=under_input))

    def commit(self, batch: Batch) -> None:
        """Remember the last event id whose job is recorded."""
        if batch.token:
            self.context.move_cursor({"last_id": batch.token})

    def lag(self) -> int | None:
        """Lines received and not yet taken."""
        return self._stream.waiting() if self._stream is not None else None

    def close(self) -> None:
        """Close the stream (the channel stays, for the next connection)."""
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        self._client.close()
