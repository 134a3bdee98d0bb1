"""Decoder for `Content-Encoding: aws-chunked` bodies (streaming SigV4 uploads).

With a `ChunkSigner` each chunk's `chunk-signature` is checked as its data arrives (S3's
chained signatures, seeded by the request signature); the final zero-length chunk is signed
too, so a body cannot be truncated or extended. Trailers after the last chunk are ignored (the
store keeps no trailing checksums) but bounded.
"""

from __future__ import annotations

import hashlib
import hmac

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_MAX_HEADER = 4096
_MAX_TRAILER = 16 * 1024


class ChunkedDecodeError(ValueError):
    """The aws-chunked framing is broken."""


class ChunkSignatureError(ChunkedDecodeError):
    """A chunk signature is missing or wrong."""


class ChunkSigner:
    """The chain of chunk signatures of one `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` request."""

    def __init__(self, key: bytes, amz_date: str, scope: str, seed: str) -> None:
        self._key, self._prefix = key, f"AWS4-HMAC-SHA256-PAYLOAD\n{amz_date}\n{scope}\n"
        self.previous = seed

    def check(self, given: bytes, data_sha256: str) -> None:
        """Verify one chunk's signature (given as sent) and advance the chain."""
        to_sign = f"{self._prefix}{self.previous}\n{EMPTY_SHA256}\n{data_sha256}"
        expected = hmac.new(self._key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), given):
            raise ChunkSignatureError("a chunk signature does not match")
        self.previous = expected


class AwsChunkedDecoder:
    """Feed raw body bytes, get payload bytes."""

    def __init__(self, signer: ChunkSigner | None = None) -> None:
        self._buffer = b""
        self._remaining = 0  # payload bytes left in the current chunk
        self._expect_crlf = False
        self._signer = signer
        self._signature = b""
        self._digest = hashlib.sha256()
        self._trailer = 0
        self.done = False

    def feed(self, data: bytes) -> bytes:
        """Decode as much as `data` allows and return the payload found."""
        if self.done:
            self._trailer += len(data)
            if self._trailer > _MAX_TRAILER:
                raise ChunkedDecodeError("too much data after the last chunk")
            return b""
        self._buffer += data
        out = bytearray()
        while not self.done:
            if self._remaining:
                take = self._buffer[: self._remaining]
                out += take
                self._digest.update(take)
                self._buffer = self._buffer[len(take) :]
                self._remaining -= len(take)
                if self._remaining:
                    break
                self._chunk_done()
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
                if len(self._buffer) > _MAX_HEADER:
                    raise ChunkedDecodeError("chunk header too long")
                break
            self._start_chunk(self._buffer[:end])
            self._buffer = self._buffer[end + 2 :]
            if self.done:
                self._trailer = len(self._buffer)
                self._buffer = b""
        return bytes(out)

    def _start_chunk(self, line: bytes) -> None:
        header, _, extensions = line.partition(b";")
        header = header.strip()
        if not 0 < len(header) <= 16 or header.strip(b"0123456789abcdefABCDEF"):
            raise ChunkedDecodeError(f"bad chunk size {header!r}")
        size = int(header, 16)
        name, _, value = extensions.partition(b"=")
        self._signature = value.strip() if name.strip() == b"chunk-signature" else b""
        if self._signer is not None and not self._signature:
            raise ChunkSignatureError("a chunk has no chunk-signature")
        self._digest = hashlib.sha256()
        if size == 0:
            self._chunk_done()
            self.done = True
        self._remaining = size

    def _chunk_done(self) -> None:
        if self._signer is not None:
            self._signer.check(self._signature, self._digest.hexdigest())
