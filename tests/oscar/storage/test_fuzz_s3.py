"""Property-based fuzzing of the embedded S3 port of a real `oscar serve`.

Requests are written byte by byte on a socket (so paths can hold percent-encoded invalid UTF-8,
dot segments and anything else a client library would normalise away), with random methods,
query strings, headers and XML or binary bodies, and are signed with the admin credentials
(SigV4 header or presigned query, signed over the server's canonical path), signed with the
wrong secret, or not signed at all. The properties:

- every request gets an HTTP answer, within the client timeout, that is not a 5xx, except
  `501 NotImplemented`, the documented answer to an operation the store does not implement;
- afterwards the store still works: a boto3 round trip and a listing succeed, the API answers,
  and the server logged no traceback.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, unquote_to_bytes

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import event, given
from hypothesis import strategies as st

from tests.fixtures.fuzz import (
    REQUEST_TIMEOUT,
    assert_healthy,
    assert_no_traceback,
    fuzz_settings,
    log_tail,
    module_server,
)
from tests.fixtures.server import ADMIN_PASSWORD, ADMIN_USER, RunningServer

pytestmark = pytest.mark.slow

REGION = "us-east-1"
BUCKET = "fuzz"
OBJECTS = ["a.txt", "dir/b.txt", "é ü/ç.bin", "k+plus space"]


class S3Port:
    """The server under test, with one bucket, a few objects and an open multipart upload."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.host = f"127.0.0.1:{server.s3_port}"
        self.s3 = server.s3()
        self.s3.create_bucket(Bucket=BUCKET)
        for key in OBJECTS:
            self.s3.put_object(Bucket=BUCKET, Key=key, Body=key.encode() * 10)
        upload = self.s3.create_multipart_upload(Bucket=BUCKET, Key="multi")
        self.upload_id = upload["UploadId"]


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Port]:
    with module_server(tmp_path_factory, "fuzz-s3") as server:
        running = S3Port(server)
        yield running
        assert_healthy(server)
        assert_no_traceback(server)


# --- requests ------------------------------------------------------------------------------

METHODS = ["GET", "GET", "PUT", "PUT", "POST", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE", "X"]
SEGMENTS = [
    "",
    ".",
    "..",
    "a.txt",
    "dir",
    "b.txt",
    "multi",
    "%2e%2e",
    "%2F",
    "%00",
    "%ff%fe",
    "%c3%28",
    "%ed%a0%80",
    "%",
    "%zz",
    "é",
    "%C3%A9%20%C3%BC",
    "k+plus%20space",
    "~",
    "a" * 1100,
    ";",
    "*",
]
QUERY_KEYS = [
    "uploads",
    "uploadId",
    "partNumber",
    "delete",
    "list-type",
    "prefix",
    "delimiter",
    "max-keys",
    "continuation-token",
    "start-after",
    "marker",
    "encoding-type",
    "location",
    "acl",
    "versioning",
    "tagging",
    "X-Amz-Signature",
    "X-Amz-Credential",
    "AWSAccessKeyId",
    "Signature",
    "Expires",
]
QUERY_VALUES = [
    "",
    "2",
    "1",
    "-1",
    "0",
    "1000001",
    "9" * 400,
    "1e9",
    "abc",
    "/",
    "%ff",
    "bm90IGEga2V5",
    "!!!",
    "\x00",
]
HEADER_NAMES = [
    "range",
    "content-md5",
    "content-type",
    "content-encoding",
    "x-amz-copy-source",
    "x-amz-metadata-directive",
    "x-amz-decoded-content-length",
    "x-amz-meta-note",
    "x-amz-date",
    "origin",
    "access-control-request-headers",
    "expect",
    "if-match",
]
HEADER_VALUES = [
    "",
    "bytes=0-1",
    "bytes=-5",
    "bytes=5-",
    "bytes=99999-",
    "bytes=3-1",
    "bytes=0-1,3-4",
    "bytes=x-y",
    "bytes=" + "9" * 400,
    "aws-chunked",
    "gzip",
    "REPLACE",
    "COPY",
    f"/{BUCKET}/a.txt",
    f"{BUCKET}/%2e%2e/a.txt",
    f"/{BUCKET}/%ff",
    "/nobucket/x",
    "/",
    "notbase64!",
    base64.b64encode(b"0" * 16).decode(),
    "-1",
    "99999999999999999999",
    "20000101T000000Z",
    "http://example.org",
    "100-continue",
    "é",
]


def _xml_bodies(upload_id: str) -> st.SearchStrategy[bytes]:
    key = st.sampled_from([*OBJECTS, "", "../x", "a\x00b", "%ff", "x" * 2000])
    deletes = st.builds(
        lambda keys, quiet: (
            "<Delete>"
            + ("<Quiet>true</Quiet>" if quiet else "")
            + "".join(f"<Object><Key>{k}</Key></Object>" for k in keys)
            + "</Delete>"
        ).encode("utf-8", "surrogateescape"),
        st.lists(key, max_size=5),
        st.booleans(),
    )
    parts = st.builds(
        lambda numbers: (
            "<CompleteMultipartUpload>"
            + "".join(
                f'<Part><PartNumber>{n}</PartNumber><ETag>"{"0" * 32}"</ETag></Part>'
                for n in numbers
            )
            + "</CompleteMultipartUpload>"
        ).encode(),
        st.lists(st.sampled_from(["1", "2", "-1", "x", "9" * 30, ""]), max_size=3),
    )
    hostile = st.sampled_from(
        [
            b"<",
            b"<Delete>",
            b"<?xml version='1.0'?><!DOCTYPE d [<!ENTITY a 'aaaa'><!ENTITY b '&a;&a;&a;&a;'>"
            b"<!ENTITY c '&b;&b;&b;&b;'>]><Delete><Object><Key>&c;</Key></Object></Delete>",
            b"<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><Delete><Key>&e;</Key></Delete>",
            b"<Delete>" + b"<Object><Key>k</Key></Object>" * 1001 + b"</Delete>",
            b"<a>" * 5000 + b"</a>" * 5000,
            b"<CreateBucketConfiguration><LocationConstraint>x</LocationConstraint>"
            b"</CreateBucketConfiguration>",
            f"<CompleteMultipartUpload><Part><UploadId>{upload_id}</UploadId></Part>"
            "</CompleteMultipartUpload>".encode(),
        ]
    )
    chunked = st.sampled_from(
        [
            b"5;chunk-signature=" + b"0" * 64 + b"\r\nhello\r\n0;chunk-signature=" + b"0" * 64,
            b"zz;chunk-signature=x\r\n",
            b"0\r\n\r\n",
            b"ffffffffffffffff;chunk-signature=" + b"0" * 64 + b"\r\n",
        ]
    )
    return st.one_of(
        st.just(b""),
        deletes,
        parts,
        hostile,
        chunked,
        st.binary(max_size=300),
        st.just(b"x" * 70_000),
    )


def _canonical(raw_path: str) -> str:
    """The canonical URI S3 signs: the path's bytes decoded once and URI-encoded again."""
    return quote(unquote_to_bytes(raw_path), safe="/~") or "/"


@st.composite
def requests(draw: st.DrawFn, upload_id: str) -> dict[str, Any]:
    """One request: method, raw path, query pairs, headers, body and how it is signed."""
    bucket = draw(st.sampled_from([BUCKET, BUCKET, BUCKET, "", "nobucket", "Fuzz", "a", "x" * 70]))
    segments = draw(st.lists(st.one_of(st.sampled_from(SEGMENTS), st.text(max_size=8)), max_size=4))
    encoded = [
        quote(s, safe="%~!$&'()*+,;=:@") if draw(st.booleans()) else quote(s) for s in segments
    ]
    raw_path = "/" + bucket + ("/" + "/".join(encoded) if segments else "")
    if draw(st.integers(0, 9)) == 0:
        raw_path += "/"
    if draw(st.integers(0, 19)) == 0:
        raw_path = "/" + "%41" * draw(st.sampled_from([3000, 20_000]))
    query = draw(
        st.lists(
            st.tuples(
                st.sampled_from(QUERY_KEYS),
                st.one_of(st.sampled_from([*QUERY_VALUES, upload_id]), st.text(max_size=10)),
            ),
            max_size=3,
        )
    )
    headers = dict(
        draw(
            st.lists(
                st.tuples(st.sampled_from(HEADER_NAMES), st.sampled_from(HEADER_VALUES)),
                max_size=3,
            )
        )
    )
    return {
        "method": draw(st.sampled_from(METHODS)),
        "path": raw_path,
        "query": "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query),
        "headers": headers,
        "body": draw(_xml_bodies(upload_id)),
        "auth": draw(
            st.sampled_from(
                [
                    "sigv4",
                    "sigv4",
                    "sigv4",
                    "unsigned-payload",
                    "presigned",
                    "wrong",
                    "none",
                    "junk",
                ]
            )
        ),
        "payload": draw(
            st.sampled_from(
                [
                    None,
                    None,
                    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
                    "UNSIGNED-PAYLOAD",
                    "0" * 64,
                    "x",
                ]
            )
        ),
    }


def _signed_headers(port: S3Port, request: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """(target, headers) of the request as it is sent, signed as `request["auth"]` says."""
    path, query, body = request["path"], request["query"], request["body"]
    headers = {"Host": port.host, **request["headers"]}
    mode = request["auth"]
    target = path + (f"?{query}" if query else "")
    if mode == "none":
        return target, headers
    if mode == "junk":
        headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=oscar/x, SignedHeaders=host, Sig=é"
        return target, headers
    secret = "not-the-secret" if mode == "wrong" else ADMIN_PASSWORD
    url = f"http://{port.host}{path}" + (f"?{query}" if query else "")
    signing = AWSRequest(
        method=request["method"], url=url, data=body, headers=dict(request["headers"])
    )
    if mode == "presigned":
        auth: Any = S3SigV4QueryAuth(Credentials(ADMIN_USER, secret), "s3", REGION, expires=60)
    else:
        auth = S3SigV4Auth(Credentials(ADMIN_USER, secret), "s3", REGION)
    auth._normalize_url_path = lambda _path: _canonical(path)  # type: ignore[method-assign]
    payload = "UNSIGNED-PAYLOAD" if mode == "unsigned-payload" else request["payload"]
    if payload is not None and mode != "presigned":
        auth.payload = lambda _request: payload  # type: ignore[method-assign]
    try:
        auth.add_auth(signing)
    except (TypeError, ValueError, UnicodeError):  # botocore refuses to sign it: send it unsigned
        return target, headers
    sent = {k: v for k, v in signing.headers.items()}
    sent["Host"] = port.host
    if mode == "presigned":
        signed_query = signing.url.split("?", 1)[1] if "?" in signing.url else ""
        target = path + (f"?{signed_query}" if signed_query else "")
    return target, sent


def _send(port: S3Port, method: str, target: str, headers: dict[str, str], body: bytes) -> Any:
    """Write the request on a fresh socket; return (status, body) or raise on no answer."""
    lines = [f"{method} {target} HTTP/1.1"]
    headers = {k: v for k, v in headers.items() if k.lower() != "content-length"}
    headers["Content-Length"] = str(len(body))
    headers["Connection"] = "close"
    lines += [f"{name}: {value}" for name, value in headers.items()]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
    with socket.create_connection(("127.0.0.1", port.server.s3_port), timeout=REQUEST_TIMEOUT) as s:
        s.sendall(head + body)
        response = http.client.HTTPResponse(s, method=method)
        response.begin()
        return response.status, response.read()


@fuzz_settings()
@given(data=st.data())
def test_s3_requests_never_get_a_5xx(port: S3Port, data: st.DataObject) -> None:
    request = data.draw(requests(port.upload_id), label="request")
    target, headers = _signed_headers(port, request)
    try:
        status, answer = _send(port, request["method"], target, headers, request["body"])
    except (OSError, http.client.HTTPException) as exc:
        raise AssertionError(
            f"no answer to {request['method']} {target[:300]}: {exc!r}\n"
            f"headers: {headers}\n--- server log tail ---\n{log_tail(port.server)}"
        ) from exc
    event(f"{request['auth']} {request['method']}: {status}")
    # A HEAD answer has no body to name the code in.
    not_implemented = b"<Code>NotImplemented</Code>" in answer or request["method"] == "HEAD"
    assert status < 500 or (status == 501 and not_implemented), (
        f"{status} for {request['method']} {target[:500]}\nheaders: {headers}\n"
        f"body: {request['body'][:300]!r}\nanswer: {answer[:600]!r}\n"
        f"--- server log tail ---\n{log_tail(port.server)}"
    )


def test_the_store_still_works_after_the_fuzz(port: S3Port) -> None:
    s3 = port.s3
    body = hashlib.sha256(b"after the fuzz").hexdigest().encode()
    s3.create_bucket(Bucket="after-fuzz")
    s3.put_object(Bucket="after-fuzz", Key="k/after.txt", Body=body)
    assert s3.get_object(Bucket="after-fuzz", Key="k/after.txt")["Body"].read() == body
    listed = s3.list_objects_v2(Bucket="after-fuzz", Prefix="k/")
    assert [item["Key"] for item in listed["Contents"]] == ["k/after.txt"]
    assert "after-fuzz" in {bucket["Name"] for bucket in s3.list_buckets()["Buckets"]}
    assert_healthy(port.server)
