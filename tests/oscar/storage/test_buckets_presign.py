"""The bucket storage layer under `/system/buckets`: SigV4 presigning, key rules, and the error
types each implementation raises (the routes over both stores: tests/oscar/api/)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from oscar.errors import (
    BackendUnavailableError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    NotSupportedError,
)
from oscar.models.storage import MinIOProvider
from oscar.registry.sqlite import SQLiteRegistry
from oscar.storage.base import ServiceStorage
from oscar.storage.buckets import object_key_problem
from oscar.storage.embedded.buckets import EmbeddedBuckets
from oscar.storage.embedded.sigv4 import SignatureError, verify
from oscar.storage.embedded.store import ObjectStore
from oscar.storage.presign import presign_url
from tests.fixtures.server import free_port

SECRET = "presign-test-secret"
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def _sign(**overrides: Any) -> str:
    options: dict[str, Any] = {
        "endpoint": "http://127.0.0.1:9000",
        "region": "us-east-1",
        "access_key": "oscar",
        "secret_key": SECRET,
        "method": "PUT",
        "bucket": "data",
        "key": "in/a file+ü.txt",
        "expires_in": 300,
        "now": NOW,
        **overrides,
    }
    return presign_url(**options)


def _verify(url: str, method: str = "PUT", headers: dict[str, str] | None = None, **kw: Any) -> Any:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    sent = {"host": parts.netloc, **{k.lower(): v for k, v in (headers or {}).items()}}
    return verify(
        method, parts.path, query, sent, lambda key: SECRET if key == "oscar" else None, **kw
    )


def test_presigned_url_verifies_on_the_embedded_verifier() -> None:
    url = _sign()
    assert urlsplit(url).path == "/data/in/a%20file%2B%C3%BC.txt"
    assert _verify(url, now=NOW + timedelta(seconds=299)).access_key == "oscar"


def test_signed_headers_and_query_must_match() -> None:
    url = _sign(headers={"Content-Type": "text/csv"}, query={"response-content-type": "x/y"})
    assert dict(parse_qsl(urlsplit(url).query))["X-Amz-SignedHeaders"] == "content-type;host"
    _verify(url, headers={"Content-Type": "text/csv"}, now=NOW)
    with pytest.raises(SignatureError):
        _verify(url, headers={"Content-Type": "text/plain"}, now=NOW)
    with pytest.raises(SignatureError):
        _verify(url.replace("x%2Fy", "x%2Fz"), headers={"Content-Type": "text/csv"}, now=NOW)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda url: url.replace("/data/", "/other/"),
        lambda url: url.replace("X-Amz-Expires=300", "X-Amz-Expires=3000"),
        lambda url: url[:-1] + ("0" if url[-1] != "0" else "1"),
    ],
)
def test_tampered_urls_do_not_verify(tamper: Any) -> None:
    with pytest.raises(SignatureError):
        _verify(tamper(_sign()), now=NOW)


def test_expired_url_and_other_method_do_not_verify() -> None:
    with pytest.raises(SignatureError, match="expired"):
        _verify(_sign(), now=NOW + timedelta(seconds=301))
    with pytest.raises(SignatureError):
        _verify(_sign(), method="GET", now=NOW)


def test_endpoint_host_port_and_path_prefix() -> None:
    url = _sign(endpoint="https://s3.example.org:443/store/")
    assert url.startswith("https://s3.example.org/store/data/in/")
    assert _sign(endpoint="http://[::1]:9000").startswith("http://[::1]:9000/data/")


@pytest.mark.parametrize("expires_in", [0, -1, 7 * 24 * 3600 + 1])
def test_expiry_out_of_range_is_refused(expires_in: int) -> None:
    with pytest.raises(ValueError, match="expires_in"):
        _sign(expires_in=expires_in)


@pytest.mark.parametrize(
    "key",
    ["", "/abs", "a//b", "a/", "..", "a/../b", "./a", "a/.", "nul\x00", "tab\tkey", "k" * 1025],
)
def test_unsafe_object_keys_are_refused(key: str) -> None:
    assert object_key_problem(key) is not None


@pytest.mark.parametrize("key", ["a", "in/a b.txt", "déjà/vu", "a..b/c", ".hidden", "k" * 1024])
def test_ordinary_object_keys_are_accepted(key: str) -> None:
    assert object_key_problem(key) is None


def test_embedded_buckets_raise_typed_errors(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path / "s3")
    buckets = EmbeddedBuckets(store, MinIOProvider(endpoint="http://127.0.0.1:1", region="r"))
    try:
        buckets.create("box", "cluster_admin", "private", [])
        with pytest.raises(ConflictError):
            buckets.create("box", "cluster_admin", "private", [])
        with pytest.raises(BadRequestError, match="Bad_Name"):
            buckets.create("Bad_Name", "cluster_admin", "private", [])
        for call in (
            lambda: buckets.get("nope"),
            lambda: buckets.delete("nope"),
            lambda: buckets.list_objects("nope", "", "", 10),
            lambda: buckets.update("nope", "cluster_admin", "public", []),
            lambda: buckets.presign("nope", "k", "GET", 60, {}, {}),
        ):
            with pytest.raises(NotFoundError, match="nope"):
                call()
        blob, size, md5, _ = store.write_blob(iter([b"x"]))
        store.commit_object("box", "k", blob, size, md5, "text/plain", {})
        with pytest.raises(ConflictError):
            buckets.delete("box")
        buckets.update("box", "someone-else", "restricted", ["ana"])
        info = buckets.get("box")
        assert (info.owner, info.visibility, info.allowed_users) == (
            "cluster_admin",
            "restricted",
            ["ana"],
        )
    finally:
        store.close()


def test_stores_without_bucket_support_answer_not_supported() -> None:
    class Minimal(ServiceStorage):
        def existing_buckets(self, service: Any) -> set[str]:
            return set()

        def setup_service(self, service: Any) -> None:
            return None

        def usage(self) -> tuple[int, int]:
            return 0, 0

        def teardown_service(self, service: Any, keep: Any = ()) -> None:
            return None

    with pytest.raises(NotSupportedError):
        Minimal().buckets()


@pytest.mark.slow  # the minio client retries a refused connection for a few seconds
def test_unreachable_minio_is_backend_unavailable(tmp_path: Path) -> None:
    pytest.importorskip("minio")
    from oscar.storage.minio import MinIOStorage

    provider = MinIOProvider(
        endpoint=f"http://127.0.0.1:{free_port()}", access_key="a", secret_key="b", region="r"
    )
    registry = SQLiteRegistry(tmp_path / "registry.db")
    buckets = MinIOStorage(provider, registry).buckets()
    with pytest.raises(BackendUnavailableError, match="cannot reach MinIO"):
        buckets.list()
    with pytest.raises(NotFoundError):  # a name no bucket can have: nothing to ask MinIO
        buckets.get("Not_A_Bucket")
