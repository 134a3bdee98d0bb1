"""A long-lived HTTP response read line by line in a thread of its own.

MinIO's listen API and dCache's event stream send lines whenever something happens, and keep
the connection open in between. A reader thread turns them into a queue, so that `fetch` can
wait for lines with a deadline (and a stop signal) instead of blocking in a socket read.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import httpx

from oscar.errors import BackendError, BackendUnavailableError

_END = object()


class LineStream:
    """The lines of one streamed response, read in the background."""

    def __init__(self, response: httpx.Response, where: str) -> None:
        self._response = response
        self._where = where
        self._lines: queue.Queue[object] = queue.Queue()
        self._error: Exception | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._read, name=f"stream {where}", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for line in self._response.iter_lines():
                self._lines.put(line)
        except Exception as exc:  # the connection broke: `take` reports it
            if not self._closed:
                self._error = BackendUnavailableError(f"{self._where}: the stream broke: {exc}")
        finally:
            self._lines.put(_END)

    def take(
        self, wait: float, stop: threading.Event, enough: Callable[[list[str]], bool]
    ) -> list[str]:
        """Lines that arrive within `wait` seconds (fewer once `enough(lines)` says so, or
        `stop` is set); raises when the stream ended."""
        lines: list[str] = []
        deadline = wait
        step = min(0.2, wait)
        while deadline > 0 and not stop.is_set():
            try:
                item = self._lines.get(timeout=step)
            except queue.Empty:
                deadline -= step
                if lines:
                    break  # something arrived and then a pause: hand it over now
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
        """Close the response; the reader thread ends."""
        self._closed = True
        self._response.close()
