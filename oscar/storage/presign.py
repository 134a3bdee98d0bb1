"""SigV4 presigned URLs (query-string authentication) for a path-style S3 endpoint.

Both default stores verify these: MinIO, and the embedded store, whose verifier
(`embedded/sigv4.py`) also computes the signature here. The payload is `UNSIGNED-PAYLOAD`; `host`
and any extra headers are signed, so a client must send those headers with exactly the values
given.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlsplit

from oscar.storage.embedded.sigv4 import (
    ALGORITHM,
    MAX_PRESIGN_EXPIRY,
    UNSIGNED,
    canonical_query,
    signature,
    signing_key,
)

MAX_EXPIRY_SECONDS = MAX_PRESIGN_EXPIRY  # S3's limit on X-Amz-Expires
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _host(endpoint: str) -> tuple[str, str, str]:
    """(scheme, Host header value, path prefix) of an endpoint URL."""
    parts = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
    scheme = parts.scheme or "http"
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{parts.port}"
    return scheme, host, parts.path.rstrip("/")


def presign_url(
    *,
    endpoint: str,
    region: str,
    access_key: str,
    secret_key: str,
    method: str,
    bucket: str,
    key: str,
    expires_in: int,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> str:
    """The presigned URL of `method` on `bucket/key`, valid `expires_in` seconds from `now`."""
    if not 1 <= expires_in <= MAX_EXPIRY_SECONDS:
        raise ValueError(f"expires_in must be 1-{MAX_EXPIRY_SECONDS} seconds")
    now = (now or datetime.now(UTC)).astimezone(UTC)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    scope = f"{day}/{region}/s3/aws4_request"
    scheme, host, prefix = _host(endpoint)
    path = quote(f"{prefix}/{bucket}/{key}", safe="/~")
    signed_headers = {"host": host}
    for name, value in (headers or {}).items():
        signed_headers[name.strip().lower()] = " ".join(str(value).split())
    names = sorted(signed_headers)
    params = {
        **(query or {}),
        "X-Amz-Algorithm": ALGORITHM,
        "X-Amz-Credential": f"{access_key}/{scope}",
        "X-Amz-Date": amz_date,
        "X-Amz-Expires": str(expires_in),
        "X-Amz-SignedHeaders": ";".join(names),
    }
    query_string = canonical_query(list(params.items()))
    derived = signing_key(secret_key, day, region, "s3")
    signed = signature(
        derived, method, path, query_string, signed_headers, names, UNSIGNED, amz_date, scope
    )
    return f"{scheme}://{host}{path}?{query_string}&X-Amz-Signature={signed}"


def expiry(expires_in: int, now: datetime | None = None) -> datetime:
    """When a URL presigned now for `expires_in` seconds stops working (whole seconds, UTC)."""
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    return now + timedelta(seconds=expires_in)
