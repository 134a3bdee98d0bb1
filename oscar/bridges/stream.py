"""A long-lived HTTP response read line by line in a thread of its own.

MinIO's listen API and dCache's event stream send lines whenever something happens, and keep
the connection open in between. A reader thread opens the response and turns its lines into a
queue, so that `fetch` waits for lines with a deadline (and a stop signal) instead of blocking
in a socket read — or in a server that never answers the request at all.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

import httpx

from oscar.errors import BackendError, BackendUnavailableError

_END = object()
# Once lines arrive, how long a pause ends a batch (events come in bursts of a few lines).
QUIET_SECONDS = 0.02


class LineStream:
    """The lines of one streamed response, opened and read in the background."""

    def __init__(self, open_response: Callable[[], httpx.Response], where: str) -> None:
        self._open = open_response
        self._response: httpx.Response | None = None
        self._where = where
        self._lines: queue.Queue[object] = queue.Queue()
        self._error: Exception | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._read, name=f"stream {where}", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            self._response = self._open()
            if self._closed:
                self._response.close()
                return
            for line in self._response.iter_lines():
                self._lines.put(line)
        except BackendError as exc:  # the server refused the request: said as it is
            self._error = exc
        except Exception as exc:  # the connection broke: `take` reports it
            if not self._closed:
                self._error = BackendUnavailableError(f"{self._where}: the stream broke: {exc}")
        finally:
            self._lines.put(_END)

    @property
    def ended(self) -> bool:
        """Whether the stream is over (closed by either side, or failed)."""
        return not self._thread.is_alive()

    def take(
        self, wait: float, stop: threading.Event, enough: Callable[[list[str]], bool]
    ) -> list[str]:
        """The lines that arrive within `wait` seconds: handed over as soon as a burst is
        over, or `enough(lines)` says so, or `stop` is set; raises when the stream ended."""
        lines: list[str] = []
        deadline = time.monotonic() + wait
        while not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                # Up to 0.2 s at a time while waiting, so that `stop` is seen.
                item = self._lines.get(timeout=min(left, QUIET_SECONDS if lines else 0.2))
            except queue.Empty:
                if lines:
                    break  # a burst arrived and is over: hand it over now
                continue
            if item is _END:
                self._lines.put(_END)  # keep reporting the end
                if lines:
                    break
                raise self._error or BackendError(f"{self._where}: the server closed the stream")
            lines.append(str(item))
            if enough(lines):
                break
        return lines

    def waiting(self) -> int:
        """Lines read and not yet taken."""
        return self._lines.qsize()

    def close(self) -> None:
        """Close the response; the reader thread ends (one still waiting for the server's
        answer ends when it comes, or never blocks anyone: it is a daemon)."""
        self._closed = True
        if self._response is not None:
            self._response.close()
