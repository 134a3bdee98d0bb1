"""Integrity of the embedded S3 port: signed bodies, chunk signatures, bounded XML, no leaked
blobs, presigned lifetimes, malformed signatures and keys. Drives the ASGI app directly, so a
test controls every byte sent and sees how much of a body the server pulled."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from oscar.storage.embedded.server import Principal, S3App
from oscar.storage.embedded.store import ObjectStore

ACCESS, SECRET, REGION = "integrity-admin", "integrity-secret-0123456789", "us-east-1"
HOST = "s3.test:9000"
EMPTY = hashlib.sha256(b"").hexdigest()


@dataclass
class Answer:
    status: int
    body: bytes
    pulled: int  # body bytes the app asked for


class Raw:
    """Signs requests with botocore and feeds them to the ASGI app."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.app = S3App(store, {ACCESS: Principal(SECRET)}.get).app()

    def signed(
        self, method: str, path: str, body: bytes = b"", payload: str | None = None, **headers: str
    ) -> dict[str, str]:
        """Headers of a SigV4-signed request (`payload`: the x-amz-content-sha256 to sign)."""
        request = AWSRequest(method=method, url=f"http://{HOST}{path}", data=body, headers=headers)
        auth = S3SigV4Auth(Credentials(ACCESS, SECRET), "s3", REGION)
        if payload is not None:
            auth.payload = lambda _request: payload  # type: ignore[method-assign]
        auth.add_auth(request)
        return {"Host": HOST, **dict(request.headers.items())}

    def send(
        self, method: str, path: str, headers: dict[str, str], chunks: Iterator[bytes] | None = None
    ) -> Answer:
        raw_path, _, query = path.partition("?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": raw_path,
            "raw_path": raw_path.encode("latin-1"),
            "query_string": query.encode("latin-1"),
            "root_path": "",
            "headers": [
                (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()
            ],
            "server": ("s3.test", 9000),
            "client": ("127.0.0.1", 1),
        }
        pulled = 0
        pending = iter(chunks or ())
        upcoming = next(pending, b"")
        finished = False
        done = asyncio.Event()
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            nonlocal pulled, upcoming, finished
            if finished:
                await done.wait()
                return {"type": "http.disconnect"}
            chunk, upcoming = upcoming, next(pending, None)
            finished = upcoming is None
            pulled += len(chunk)
            return {"type": "http.request", "body": chunk, "more_body": not finished}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        async def run() -> None:
            await self.app(scope, receive, send)
            done.set()

        asyncio.run(run())
        start = next(m for m in sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return Answer(start["status"], body, pulled)

    def request(self, method: str, path: str, body: bytes = b"", **headers: str) -> Answer:
        return self.send(method, path, self.signed(method, path, body, **headers), _body(body))


def _body(body: bytes) -> Iterator[bytes]:
    """A body as ASGI messages: the data, then nothing more."""
    yield body


@pytest.fixture
def raw(tmp_path: Path) -> Iterator[Raw]:
    store = ObjectStore(tmp_path / "s3")
    store.create_bucket("trav")
    yield Raw(store)
    store.close()


def _put(raw: Raw, key: str, body: bytes) -> None:
    assert raw.request("PUT", f"/trav/{key}", body).status == 200


def _exists(raw: Raw, key: str) -> bool:
    return raw.request("HEAD", f"/trav/{key}").status == 200


def _code(answer: Answer) -> str:
    return answer.body.split(b"<Code>", 1)[-1].split(b"</Code>", 1)[0].decode()


# --- M7: the signed payload hash covers XML bodies too ------------------------------------


def test_delete_objects_body_must_match_its_signed_hash(raw: Raw) -> None:
    _put(raw, "keep.txt", b"k")
    _put(raw, "obj.txt", b"o")
    signed_for = b"<Delete><Object><Key>keep.txt</Key></Object></Delete>"
    sent = b"<Delete><Object><Key>obj.txt</Key></Object></Delete>"
    headers = raw.signed("POST", "/trav?delete", signed_for)
    answer = raw.send("POST", "/trav?delete", headers, _body(sent))
    assert (answer.status, _code(answer)) == (400, "XAmzContentSHA256Mismatch")
    assert _exists(raw, "obj.txt") and _exists(raw, "keep.txt")
    assert raw.send("POST", "/trav?delete", headers, _body(signed_for)).status == 200
    assert not _exists(raw, "keep.txt")


def test_complete_upload_body_must_match_its_signed_hash(raw: Raw) -> None:
    upload = raw.store.create_upload("trav", "m.bin", "application/octet-stream", {})
    part = raw.request("PUT", f"/trav/m.bin?partNumber=1&uploadId={upload}", b"part one")
    assert part.status == 200
    etag = hashlib.md5(b"part one").hexdigest()  # noqa: S324 - S3's ETag
    part_xml = f'<Part><PartNumber>1</PartNumber><ETag>"{etag}"</ETag></Part>'
    good = f"<CompleteMultipartUpload>{part_xml}</CompleteMultipartUpload>".encode()
    path = f"/trav/m.bin?uploadId={upload}"
    headers = raw.signed("POST", path, b"<CompleteMultipartUpload/>")
    answer = raw.send("POST", path, headers, _body(good))
    assert (answer.status, _code(answer)) == (400, "XAmzContentSHA256Mismatch")
    assert not _exists(raw, "m.bin")
    assert raw.store.list_parts("trav", "m.bin", upload)  # the upload is untouched
    assert raw.request("POST", path, good).status == 200
    assert _exists(raw, "m.bin")


# --- M7: chunk signatures of streaming uploads ---------------------------------------------


def _signing_key(date: str) -> bytes:
    key = hmac.new(f"AWS4{SECRET}".encode(), date.encode(), hashlib.sha256).digest()
    for part in (REGION, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _streamed(raw: Raw, path: str, chunks: list[bytes], forge: int | None = None) -> Answer:
    """A `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` PUT; chunk number `forge` gets a bogus signature."""
    encoded_length = sum(len(f"{len(c):x};chunk-signature=") + 64 + 4 + len(c) for c in chunks)
    encoded_length += len("0;chunk-signature=") + 64 + 4
    headers = raw.signed(
        "PUT",
        path,
        payload="STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        **{
            "Content-Encoding": "aws-chunked",
            "x-amz-decoded-content-length": str(sum(map(len, chunks))),
            "Content-Length": str(encoded_length),
        },
    )
    amz_date = headers["X-Amz-Date"]
    scope = f"{amz_date[:8]}/{REGION}/s3/aws4_request"
    key = _signing_key(amz_date[:8])
    previous = headers["Authorization"].rsplit("Signature=", 1)[1]
    body = []
    for number, data in enumerate([*chunks, b""]):
        to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256-PAYLOAD",
                amz_date,
                scope,
                previous,
                EMPTY,
                hashlib.sha256(data).hexdigest(),
            ]
        )
        previous = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        signature = "0" * 64 if number == forge else previous
        body.append(f"{len(data):x};chunk-signature={signature}\r\n".encode() + data + b"\r\n")
    return raw.send("PUT", path, headers, iter(body))


def test_streaming_put_with_good_chunk_signatures_is_stored(raw: Raw) -> None:
    answer = _streamed(raw, "/trav/s.txt", [b"a" * 70000, b"second chunk"])
    assert answer.status == 200, answer.body
    info = raw.store.head("trav", "s.txt")
    with raw.store.open_blob(info) as handle:
        assert handle.read() == b"a" * 70000 + b"second chunk"


@pytest.mark.parametrize("forge", [0, 1, 2])  # first, middle, and the final empty chunk
def test_streaming_put_with_a_bad_chunk_signature_is_refused(raw: Raw, forge: int) -> None:
    _put(raw, "s.txt", b"original")
    blobs = sorted(raw.store.blobs.iterdir())
    answer = _streamed(raw, "/trav/s.txt", [b"EVIL ", b"CONTENT"], forge=forge)
    assert (answer.status, _code(answer)) == (403, "SignatureDoesNotMatch")
    with raw.store.open_blob(raw.store.head("trav", "s.txt")) as handle:
        assert handle.read() == b"original"
    assert sorted(raw.store.blobs.iterdir()) == blobs
    assert not list(raw.store.tmp.iterdir())


def test_streaming_put_with_swapped_chunk_data_is_refused(raw: Raw) -> None:
    good = _streamed(raw, "/trav/a.txt", [b"AAAA", b"BBBB"])
    assert good.status == 200
    # Same framing and signatures, different data: the chain no longer matches.
    headers = raw.signed(
        "PUT",
        "/trav/b.txt",
        payload="STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        **{"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": "4"},
    )
    body = b"4;chunk-signature=" + b"1" * 64 + b"\r\nEVIL\r\n0;chunk-signature=" + b"2" * 64
    answer = raw.send("PUT", "/trav/b.txt", headers, _body(body + b"\r\n\r\n"))
    assert (answer.status, _code(answer)) == (403, "SignatureDoesNotMatch")
    assert not _exists(raw, "b.txt")


# --- M8: failed copies leave no blob; orphans are reclaimed at start ------------------------


def test_failed_copies_leave_no_blob(raw: Raw) -> None:
    _put(raw, "src.bin", b"x" * 100_000)
    blobs = sorted(raw.store.blobs.iterdir())
    for destination in ("/trav/../evil", "/trav/a/./b", "/no-such-bucket/k"):
        answer = raw.request("PUT", destination, **{"x-amz-copy-source": "/trav/src.bin"})
        assert answer.status in (400, 404), (destination, answer.body)
    missing = raw.request("PUT", "/trav/k", **{"x-amz-copy-source": "/trav/none"})
    assert missing.status == 404
    assert sorted(raw.store.blobs.iterdir()) == blobs
    assert (
        raw.request("PUT", "/trav/copy.bin", **{"x-amz-copy-source": "/trav/src.bin"}).status == 200
    )


def test_orphan_blobs_are_reclaimed_when_the_store_starts(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path / "s3")
    store.create_bucket("keep")
    blob, size, md5, _ = store.write_blob(iter([b"kept"]))
    store.commit_object("keep", "k", blob, size, md5, "text/plain", {})
    upload = store.create_upload("keep", "m", "text/plain", {})
    part, size, md5, _ = store.write_blob(iter([b"part"]))
    store.put_part("keep", "m", upload, 1, part, size, md5)
    orphan = store.blobs / "0123456789abcdef0123456789abcdef"
    orphan.write_bytes(b"leaked by a failed copy")
    store.close()
    again = ObjectStore(tmp_path / "s3")
    assert not orphan.exists()
    assert {p.name for p in again.blobs.iterdir()} == {blob, part}
    with again.open_blob(again.head("keep", "k")) as handle:
        assert handle.read() == b"kept"
    again.close()


# --- L8: XML bodies are bounded and read incrementally --------------------------------------


def test_huge_delete_objects_body_is_refused_without_being_buffered(raw: Raw) -> None:
    mib = b" " * (1024 * 1024)
    headers = raw.signed("POST", "/trav?delete", payload="UNSIGNED-PAYLOAD")
    answer = raw.send("POST", "/trav?delete", headers, (mib for _ in range(300)))
    assert (answer.status, _code(answer)) == (400, "MaxMessageLengthExceeded")
    assert answer.pulled <= 4 * 1024 * 1024
    declared = raw.signed(
        "POST", "/trav?delete", payload="UNSIGNED-PAYLOAD", **{"Content-Length": str(300 << 20)}
    )
    answer = raw.send("POST", "/trav?delete", declared, (mib for _ in range(300)))
    assert (answer.status, answer.pulled) == (400, 0)


# --- L14: SigV2 presigned URLs are capped at 7 days ------------------------------------------


def _v2_url(path: str, expires: int, signature: str | None = None) -> str:
    to_sign = f"GET\n\n\n{expires}\n{path}"
    digest = hmac.new(SECRET.encode(), to_sign.encode(), hashlib.sha1).digest()
    signature = signature or base64.b64encode(digest).decode()
    return f"{path}?AWSAccessKeyId={ACCESS}&Expires={expires}&Signature={quote(signature, safe='')}"


def test_sigv2_presigned_urls_are_capped_at_seven_days(raw: Raw) -> None:
    _put(raw, "p.txt", b"presigned")
    now = int(time.time())
    assert raw.send("GET", _v2_url("/trav/p.txt", now + 3600), {"Host": HOST}).body == b"presigned"
    assert raw.send("GET", _v2_url("/trav/p.txt", now + 7 * 86400), {"Host": HOST}).status == 200
    century = raw.send("GET", _v2_url("/trav/p.txt", now + 100 * 365 * 86400), {"Host": HOST})
    assert (century.status, _code(century)) == (400, "AuthorizationQueryParametersError")


# --- L1: non-ASCII signatures are mismatches, never a pre-auth 500 ---------------------------


def test_non_ascii_signatures_are_refused_with_403(raw: Raw) -> None:
    now = int(time.time())
    v2 = raw.send("GET", _v2_url("/trav/p.txt", now + 60, signature="é" * 28), {"Host": HOST})
    assert (v2.status, _code(v2)) == (403, "SignatureDoesNotMatch")
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    credential = quote(f"{ACCESS}/{amz_date[:8]}/{REGION}/s3/aws4_request", safe="")
    v4 = (
        f"/trav/p.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={credential}"
        f"&X-Amz-Date={amz_date}&X-Amz-Expires=60&X-Amz-SignedHeaders=host"
        f"&X-Amz-Signature=%C3%A9%C3%A9"
    )
    answer = raw.send("GET", v4, {"Host": HOST})
    assert (answer.status, _code(answer)) == (403, "SignatureDoesNotMatch")
    headers = raw.signed("GET", "/trav/p.txt")
    headers["Authorization"] = headers["Authorization"].rsplit("Signature=", 1)[0] + "Signature=é"
    answer = raw.send("GET", "/trav/p.txt", headers)
    assert (answer.status, _code(answer)) == (403, "SignatureDoesNotMatch")
    raw_query = raw.send("GET", "/trav/p.txt?X-Amz-Signature=\xff", {"Host": HOST})
    assert raw_query.status in (400, 403)


# --- L15: keys that are not UTF-8 are refused, never aliased ---------------------------------


def test_keys_that_are_not_utf8_are_refused(raw: Raw) -> None:
    answer = raw.request("PUT", "/trav/%FF%FE", b"x")
    assert (answer.status, _code(answer)) == (400, "InvalidArgument")
    assert raw.store.list_objects("trav", "", "", "", 10).objects == []
    copy = raw.request("PUT", "/trav/c", **{"x-amz-copy-source": "/trav/%FF"})
    assert (copy.status, _code(copy)) == (400, "InvalidArgument")
    assert raw.request("PUT", "/trav/%E2%82%AC", b"euro").status == 200
    assert raw.store.head("trav", "€").size == 4


def test_unsigned_trailer_streaming_still_works_and_sigv4a_is_refused(raw: Raw) -> None:
    # What botocore sends over https with flexible checksums: unsigned chunks and a trailer.
    extra = {"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": "5"}
    mode = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    headers = raw.signed("PUT", "/trav/t.txt", payload=mode, **extra)
    body = [b"5\r\nhel", b"lo\r\n0\r\n", b"x-amz-checksum-crc32:NhCmhg==\r\n\r\n"]
    assert raw.send("PUT", "/trav/t.txt", headers, iter(body)).status == 200
    with raw.store.open_blob(raw.store.head("trav", "t.txt")) as handle:
        assert handle.read() == b"hello"
    too_long = [*body[:2], b"x" * (64 * 1024)]
    answer = raw.send(
        "PUT",
        "/trav/u.txt",
        raw.signed("PUT", "/trav/u.txt", payload=mode, **extra),
        iter(too_long),
    )
    assert answer.status == 400 and not _exists(raw, "u.txt")
    sigv4a = raw.signed(
        "PUT", "/trav/v.txt", payload="STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD", **extra
    )
    answer = raw.send("PUT", "/trav/v.txt", sigv4a, _body(b"5\r\nhello\r\n0\r\n\r\n"))
    assert answer.status == 501 and not _exists(raw, "v.txt")
