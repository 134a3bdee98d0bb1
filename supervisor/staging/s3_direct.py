"""Small objects on an S3 endpoint in one signed HTTP request each, without boto3.

Most inputs and outputs of a job are small, and loading boto3 and building its client costs
far more than moving them (hundreds of milliseconds of a fresh process, tens of a forked one).
This client signs a GET or a PUT with AWS Signature Version 4 over the standard library's
`http.client`, path-style (`<endpoint>/<bucket>/<key>`), as MinIO and the embedded store
serve. Objects above the limit are left to boto3's transfer manager (`DirectS3.get` says so).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ssl
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_CHUNK = 1024 * 1024
_TIMEOUT = 60.0
# Answers that retrying cannot change; everything else (5xx, a broken connection) may.
PERMANENT_STATUSES = frozenset({400, 401, 403, 404, 405, 409, 411, 412, 416})


class S3RequestError(Exception):
    """An S3 request answered with an error status (`status`, S3's error `code`)."""

    def __init__(self, message: str, status: int, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


class DirectS3:
    """GET and PUT of single objects on one endpoint with one pair of keys."""

    def __init__(self, endpoint: str, access_key: str, secret_key: str, region: str, verify: bool):
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) endpoint: {endpoint!r}")
        self.https = parts.scheme == "https"
        self.host = parts.netloc
        self.base_path = parts.path.rstrip("/")
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.context: ssl.SSLContext | None = None
        if self.https:
            self.context = ssl.create_default_context()
            if not verify:
                self.context.check_hostname = False
                self.context.verify_mode = ssl.CERT_NONE

    @classmethod
    def for_credentials(cls, credentials: Mapping[str, Any]) -> DirectS3 | None:
        """A client for a MinIO-style provider (endpoint and keys), else None (boto3's job:
        AWS endpoints, anonymous access, temporary credentials)."""
        endpoint = credentials.get("endpoint")
        access, secret = credentials.get("access_key"), credentials.get("secret_key")
        if not endpoint or not access or not secret or credentials.get("session_token"):
            return None
        try:
            return cls(
                str(endpoint),
                str(access),
                str(secret),
                str(credentials.get("region") or "us-east-1"),
                bool(credentials.get("verify", True)),
            )
        except ValueError:
            return None

    # --- signing -------------------------------------------------------------------------
    def _headers(self, method: str, path: str, payload_sha256: str) -> dict[str, str]:
        now = datetime.now(UTC)
        stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        headers = {"host": self.host, "x-amz-content-sha256": payload_sha256, "x-amz-date": stamp}
        signed = ";".join(sorted(headers))
        canonical = "\n".join(
            [
                method,
                path,
                "",
                *(f"{name}:{headers[name]}" for name in sorted(headers)),
                "",
                signed,
                payload_sha256,
            ]
        )
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        key = _hmac(f"AWS4{self.secret_key}".encode(), day)
        for part in (self.region, "s3", "aws4_request"):
            key = _hmac(key, part)
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
            f"SignedHeaders={signed}, Signature={signature}"
        )
        return headers

    def _path(self, bucket: str, key: str) -> str:
        return f"{self.base_path}/{quote(bucket, safe='')}/{quote(key, safe='/-_.~')}"

    def _connection(self) -> http.client.HTTPConnection:
        if self.https:
            return http.client.HTTPSConnection(self.host, timeout=_TIMEOUT, context=self.context)
        return http.client.HTTPConnection(self.host, timeout=_TIMEOUT)

    @staticmethod
    def _failure(what: str, response: http.client.HTTPResponse) -> S3RequestError:
        body = response.read(64 * 1024).decode(errors="replace")
        code = ""
        if "<Code>" in body:
            code = body.split("<Code>", 1)[1].split("</Code>", 1)[0]
        message = f"{what}: HTTP {response.status} {code}".strip()
        return S3RequestError(message, response.status, code)

    # --- objects -------------------------------------------------------------------------
    def get(self, bucket: str, key: str, destination: Path, limit: int) -> bool:
        """Write the object to `destination`; False, writing nothing, when it is larger than
        `limit` bytes (to be fetched another way)."""
        path = self._path(bucket, key)
        connection = self._connection()
        try:
            connection.request("GET", path, headers=self._headers("GET", path, _EMPTY_SHA256))
            response = connection.getresponse()
            if response.status != 200:
                raise self._failure(f"GET {bucket}/{key}", response)
            if int(response.getheader("Content-Length") or 0) > limit:
                return False
            with destination.open("wb") as handle:
                while chunk := response.read(_CHUNK):
                    handle.write(chunk)
            return True
        finally:
            connection.close()

    def put(self, source: Path, bucket: str, key: str) -> None:
        """Store the file as the object (one request; the caller keeps it small)."""
        digest = hashlib.sha256()
        with source.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        path = self._path(bucket, key)
        headers = self._headers("PUT", path, digest.hexdigest())
        headers["content-length"] = str(source.stat().st_size)
        connection = self._connection()
        try:
            with source.open("rb") as body:
                connection.request("PUT", path, body=body, headers=headers)
                response = connection.getresponse()
            if response.status != 200:
                raise self._failure(f"PUT {bucket}/{key}", response)
            response.read()
        finally:
            connection.close()
