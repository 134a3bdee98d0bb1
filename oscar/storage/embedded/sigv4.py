"""AWS signature verification for the embedded store: SigV4 headers and presigned URLs, and
the legacy SigV2 presigned URLs that boto3 still generates by default.

Only what S3 clients send is implemented: service `s3`, algorithm `AWS4-HMAC-SHA256`, payload
hashes given as hex, `UNSIGNED-PAYLOAD`, or the aws-chunked streaming forms. The body itself
is checked later, as it streams (`payload.py`): `VerifiedRequest` carries what that needs.
Signatures are compared as bytes, so a non-ASCII signature is a mismatch, never an error.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote_to_bytes

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED = "UNSIGNED-PAYLOAD"
STREAMING_PREFIX = "STREAMING-"
MAX_CLOCK_SKEW = timedelta(minutes=15)
MAX_PRESIGN_EXPIRY = 7 * 24 * 3600
_AUTH_HEADER = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+),\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<signature>\S+)"
)


class SignatureError(Exception):
    """The request is not correctly signed; `code` is the S3 error code to answer with."""

    def __init__(self, code: str, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class VerifiedRequest:
    """Who signed the request and how the body must be checked."""

    access_key: str
    payload_hash: str  # hex digest, UNSIGNED-PAYLOAD or a STREAMING-* mode
    signature: str = ""  # the seed of a streaming body's chunk signatures
    signing_key: bytes = b""
    amz_date: str = ""
    scope: str = ""

    @property
    def streaming(self) -> bool:
        """Whether the body is aws-chunked."""
        return self.payload_hash.startswith(STREAMING_PREFIX)


def _uri_encode(value: str, safe: str) -> str:
    return quote(value, safe=safe)


def path_bytes(raw_path: str) -> bytes:
    """The request path's bytes, percent-escapes decoded (`raw_path` is the latin-1 raw path)."""
    try:
        raw = raw_path.encode("latin-1")
    except UnicodeEncodeError:
        raw = raw_path.encode()
    return unquote_to_bytes(raw)


def canonical_uri(raw_path: str) -> str:
    """S3's canonical URI: the path's bytes decoded once and re-encoded (slashes kept)."""
    return quote(path_bytes(raw_path), safe="/~") or "/"


def _same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogateescape"))


def canonical_query(query: list[tuple[str, str]], *, exclude: str | None = None) -> str:
    """Sorted, encoded query parameters."""
    pairs = sorted(
        (_uri_encode(k, safe="-_.~"), _uri_encode(v, safe="-_.~")) for k, v in query if k != exclude
    )
    return "&".join(f"{k}={v}" for k, v in pairs)


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """SigV4's derived key of `secret` for one day, region and service."""
    key = hmac.new(f"AWS4{secret}".encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _parse_time(value: str) -> datetime:
    try:
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise SignatureError("AccessDenied", f"invalid X-Amz-Date {value!r}") from None


def signature(
    key: bytes,
    method: str,
    raw_path: str,
    query: str,
    headers: Mapping[str, str],
    signed: list[str],
    payload_hash: str,
    amz_date: str,
    scope: str,
) -> str:
    """The SigV4 signature of a request (`raw_path` as sent, `query` already canonical)."""
    canonical_headers = "".join(
        f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in signed
    )
    canonical = "\n".join(
        [method, canonical_uri(raw_path), query, canonical_headers, ";".join(signed), payload_hash]
    )
    to_sign = "\n".join(
        [ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def _key_for(secret: str, scope: str) -> bytes:
    date, region, service, _ = scope.split("/")
    return signing_key(secret, date, region, service)


def _scope(credential: str) -> tuple[str, str]:
    parts = credential.split("/")
    if len(parts) != 5 or parts[3] != "s3" or parts[4] != "aws4_request":
        raise SignatureError("AuthorizationHeaderMalformed", f"bad credential scope {credential!r}")
    return parts[0], "/".join(parts[1:])


def verify(
    method: str,
    raw_path: str,
    query: list[tuple[str, str]],
    headers: Mapping[str, str],
    secret_for: Callable[[str], str | None],
    now: datetime | None = None,
) -> VerifiedRequest:
    """Check a request's SigV4 signature (header or presigned query); raise `SignatureError`.

    `headers` must have lower-case names. `secret_for` maps an access key to its secret.
    """
    now = now or datetime.now(UTC)
    params = dict(query)
    if "Signature" in params and "AWSAccessKeyId" in params:
        return _verify_presigned_v2(method, raw_path, params, headers, secret_for, now)
    if "X-Amz-Signature" in params:
        return _verify_presigned(method, raw_path, query, params, headers, secret_for, now)
    authorization = headers.get("authorization", "")
    if not authorization:
        raise SignatureError("AccessDenied", "anonymous access is not allowed", 403)
    match = _AUTH_HEADER.fullmatch(authorization.strip())
    if not match:
        raise SignatureError(
            "AuthorizationHeaderMalformed", "only AWS4-HMAC-SHA256 signatures are accepted", 400
        )
    access_key, scope = _scope(match["credential"])
    secret = secret_for(access_key)
    if secret is None:
        raise SignatureError("InvalidAccessKeyId", "the access key does not exist")
    amz_date = headers.get("x-amz-date") or ""
    if abs(now - _parse_time(amz_date)) > MAX_CLOCK_SKEW:
        raise SignatureError("RequestTimeTooSkewed", "the request time is too far from ours")
    if not scope.startswith(amz_date[:8]):
        raise SignatureError("SignatureDoesNotMatch", "credential date and X-Amz-Date differ")
    signed = match["signed"].split(";")
    if "host" not in signed:
        raise SignatureError("AccessDenied", "the host header must be signed")
    payload_hash = headers.get("x-amz-content-sha256") or UNSIGNED
    key = _key_for(secret, scope)
    expected = signature(
        key,
        method,
        raw_path,
        canonical_query(query),
        headers,
        signed,
        payload_hash,
        amz_date,
        scope,
    )
    if not _same(expected, match["signature"]):
        raise SignatureError("SignatureDoesNotMatch", "the request signature does not match")
    return VerifiedRequest(access_key, payload_hash, expected, key, amz_date, scope)


# Sub-resources that take part in a V2 signature (the ones S3 clients presign).
_V2_SUBRESOURCES = (
    "partNumber",
    "uploadId",
    "uploads",
    "versionId",
    "response-content-type",
    "response-content-disposition",
)


def _verify_presigned_v2(
    method: str,
    raw_path: str,
    params: dict[str, str],
    headers: Mapping[str, str],
    secret_for: Callable[[str], str | None],
    now: datetime,
) -> VerifiedRequest:
    """Legacy (SigV2) presigned URLs: boto3's default for `generate_presigned_url`."""
    access_key = params["AWSAccessKeyId"]
    secret = secret_for(access_key)
    if secret is None:
        raise SignatureError("InvalidAccessKeyId", "the access key does not exist")
    try:
        expires = int(params.get("Expires", ""))
    except ValueError:
        raise SignatureError("AccessDenied", "bad Expires", 403) from None
    if now.timestamp() > expires:
        raise SignatureError("AccessDenied", "Request has expired")
    if expires - now.timestamp() > MAX_PRESIGN_EXPIRY + MAX_CLOCK_SKEW.total_seconds():
        raise SignatureError(
            "AuthorizationQueryParametersError", "Expires must be at most 7 days from now", 400
        )
    sub = "&".join(
        f"{name}={params[name]}" if params[name] else name
        for name in sorted(params)
        if name in _V2_SUBRESOURCES
    )
    resource = raw_path + (f"?{sub}" if sub else "")
    amz = "".join(
        f"{name}:{headers[name].strip()}\n" for name in sorted(headers) if name.startswith("x-amz-")
    )
    to_sign = "\n".join(
        [method, headers.get("content-md5", ""), headers.get("content-type", ""), str(expires)]
    )
    to_sign += "\n" + amz + resource
    digest = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha1).digest()
    if not _same(base64.b64encode(digest).decode(), params["Signature"]):
        raise SignatureError("SignatureDoesNotMatch", "the request signature does not match")
    return VerifiedRequest(access_key, UNSIGNED)


def _verify_presigned(
    method: str,
    raw_path: str,
    query: list[tuple[str, str]],
    params: dict[str, str],
    headers: Mapping[str, str],
    secret_for: Callable[[str], str | None],
    now: datetime,
) -> VerifiedRequest:
    if params.get("X-Amz-Algorithm") != ALGORITHM:
        raise SignatureError("AuthorizationQueryParametersError", "unsupported algorithm", 400)
    access_key, scope = _scope(params.get("X-Amz-Credential", ""))
    secret = secret_for(access_key)
    if secret is None:
        raise SignatureError("InvalidAccessKeyId", "the access key does not exist")
    amz_date = params.get("X-Amz-Date", "")
    issued = _parse_time(amz_date)
    try:
        expires = int(params.get("X-Amz-Expires", ""))
    except ValueError:
        raise SignatureError(
            "AuthorizationQueryParametersError", "bad X-Amz-Expires", 400
        ) from None
    if not 0 < expires <= MAX_PRESIGN_EXPIRY:
        raise SignatureError("AuthorizationQueryParametersError", "bad X-Amz-Expires", 400)
    if now > issued + timedelta(seconds=expires):
        raise SignatureError("AccessDenied", "Request has expired")
    if issued - now > MAX_CLOCK_SKEW:
        raise SignatureError("AccessDenied", "the presigned URL is not valid yet")
    signed = params.get("X-Amz-SignedHeaders", "host").split(";")
    expected = signature(
        _key_for(secret, scope),
        method,
        raw_path,
        canonical_query(query, exclude="X-Amz-Signature"),
        headers,
        signed,
        UNSIGNED,
        amz_date,
        scope,
    )
    if not _same(expected, params.get("X-Amz-Signature", "")):
        raise SignatureError("SignatureDoesNotMatch", "the request signature does not match")
    return VerifiedRequest(access_key, UNSIGNED)
