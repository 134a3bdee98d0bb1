"""Decoder for `Content-Encoding: aws-chunked` bodies (streaming SigV4 uploads)."""

from __future__ import annotations


class ChunkedDecodeError(ValueError):
    """The aws-chunked framing is broken."""


class AwsChunkedDecoder:
    """Feed raw body bytes, get payload bytes; trailers after the last chunk are ignored."""

    def __init__(self) -> None:
        self._buffer = b""
        self._remaining = 0  # payload bytes left in the current chunk
        self._expect_crlf = False
        self.done = False

    def feed(self, data: bytes) -> bytes:
        """Decode as much as `data` allows and return the payload found."""
        self._buffer += data
        out = bytearray()
        while not self.done:
            if self._remaining:
                take = self._buffer[: self._remaining]
                out += take
                self._buffer = self._buffer[len(take) :]
                self._remaining -= len(take)
                if self._remaining:
                    break
                self._expect_crlf = True
            if self._expect_crlf:
                if len(self._buffer) < 2:
                    break
                if self._buffer[:2] != b"\r\n":
                    raise ChunkedDecodeError("missing CRLF after a chunk")
                self._buffer = self._buffer[2:]
                self._expect_crlf = False
            end = self._buffer.find(b"\r\n")
            if end < 0:
                if len(self._buffer) > 4096:
                    raise ChunkedDecodeError("chunk header too long")
                break
            header = self._buffer[:end].split(b";", 1)[0].strip()
            self._buffer = self._buffer[end + 2 :]
            try:
                size = int(header, 16)
            except ValueError:
                raise ChunkedDecodeError(f"bad chunk size {header!r}") from None
            if size == 0:
                self.done = True
                break
            self._remaining = size
        return bytes(out)
