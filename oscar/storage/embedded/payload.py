"""Checking a request body against what its signature promises, as the body streams.

`x-amz-content-sha256` is either a hex digest of the raw body (checked at its end),
`UNSIGNED-PAYLOAD`, or an aws-chunked mode: `STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`
(every chunk signature is checked, chained from the request signature) or
`STREAMING-UNSIGNED-PAYLOAD-TRAILER`. Other streaming modes (SigV4a) are refused. The caller
must not act on a body before `finish()` has passed.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

from oscar.storage.embedded.chunked import (
    AwsChunkedDecoder,
    ChunkedDecodeError,
    ChunkSignatureError,
    ChunkSigner,
)
from oscar.storage.embedded.sigv4 import UNSIGNED, VerifiedRequest

SIGNED_STREAMING = (
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
)
UNSIGNED_STREAMING = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
MAX_SMALL_BODY = 2 * 1024 * 1024  # DeleteObjects (1000 keys) and Complete (10000 parts) fit


class PayloadError(Exception):
    """The body does not match its signature or framing; an S3 error code and status."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


class PayloadCheck:
    """Feed raw body bytes, get the payload; `finish()` raises unless the body was as signed."""

    def __init__(self, verified: VerifiedRequest, content_encoding: str = "") -> None:
        mode = verified.payload_hash
        chunked = verified.streaming or "aws-chunked" in content_encoding
        if verified.streaming and mode not in (*SIGNED_STREAMING, UNSIGNED_STREAMING):
            raise PayloadError("NotImplemented", f"{mode} is not supported", 501)
        signer = None
        if mode in SIGNED_STREAMING:
            signer = ChunkSigner(
                verified.signing_key, verified.amz_date, verified.scope, verified.signature
            )
        self._decoder = AwsChunkedDecoder(signer) if chunked else None
        self._expected = "" if verified.streaming or mode == UNSIGNED else mode
        self._sha256 = hashlib.sha256()
        self.raw_size = 0

    def feed(self, raw: bytes) -> bytes:
        """The payload bytes in `raw` (not yet trustworthy: wait for `finish()`)."""
        self.raw_size += len(raw)
        if self._expected:
            self._sha256.update(raw)
        if self._decoder is None:
            return raw
        try:
            return self._decoder.feed(raw)
        except ChunkSignatureError as exc:
            raise PayloadError("SignatureDoesNotMatch", str(exc), 403) from None
        except ChunkedDecodeError as exc:
            raise PayloadError("InvalidRequest", str(exc), 400) from None

    def finish(self) -> None:
        """Raise unless the whole body arrived and matches its signed hash."""
        if self._decoder is not None and not self._decoder.done:
            raise PayloadError("IncompleteBody", "the aws-chunked body ended early", 400)
        if self._expected and self._sha256.hexdigest() != self._expected:
            raise PayloadError("XAmzContentSHA256Mismatch", "the body does not match its hash", 400)


async def read_small_body(
    stream: AsyncIterator[bytes],
    verified: VerifiedRequest,
    content_encoding: str = "",
    content_length: str = "",
    limit: int = MAX_SMALL_BODY,
) -> bytes:
    """A whole (XML or ignored) body, checked, read incrementally and refused above `limit`."""
    too_big = PayloadError("MaxMessageLengthExceeded", f"the body exceeds {limit} bytes", 400)
    raw_limit = limit + 64 * 1024  # room for aws-chunked framing
    if content_length.strip().isdigit() and int(content_length) > raw_limit:
        raise too_big
    check = PayloadCheck(verified, content_encoding)
    body = bytearray()
    async for raw in stream:
        body += check.feed(raw)
        if len(body) > limit or check.raw_size > raw_limit:
            raise too_big
    check.finish()
    return bytes(body)
