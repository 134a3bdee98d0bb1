"""The S3 HTTP API of the embedded store (path-style), as an ASGI app.

Every request is SigV4-verified (header or presigned query) except CORS preflights and
anonymous reads of `public` buckets, then authorised: the admin key may do anything, a
service's job key only what `oscar.storage.scoped.ServiceAccess` allows, an OIDC user's key
only what `oscar.storage.users.UserAccess` allows from each bucket's recorded owner and
visibility:

- on a bucket the user owns: everything (objects, multipart uploads, deleting the bucket);
- on a `public` bucket, or a `restricted` one whose allowed users include the user: read, list,
  look up, write and delete objects (multipart uploads included), nothing on the bucket itself;
- anything else, `private` buckets of others included, and any bucket that does not exist:
  `AccessDenied` (403);
- ListBuckets lists only the buckets the user may reach; CreateBucket makes a `private` bucket
  the user owns.

Every body is checked against its signed hash or chunk signatures before it is acted on
(`payload`). Object bodies are streamed to disk, never held in memory; other (XML) bodies are
bounded. After each object write, `on_object_created` is called with MinIO's event name so that
the control plane can turn it into jobs.
"""

from __future__ import annotations

import base64
import binascii
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.utils import format_datetime
from typing import Any, cast
from urllib.parse import parse_qsl
from xml.etree import ElementTree

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from oscar.cors import ANY, S3_EXPOSED, CORSMiddleware, CorsPolicy
from oscar.storage.embedded import xml
from oscar.storage.embedded.payload import PayloadCheck, PayloadError, read_small_body
from oscar.storage.embedded.sigv4 import SignatureError, VerifiedRequest, path_bytes, verify
from oscar.storage.embedded.store import ObjectInfo, ObjectStore, StoreError, check_key
from oscar.storage.scoped import Action, ServiceAccess
from oscar.storage.users import UserAccess

log = logging.getLogger("oscar.s3")
ObjectCreated = Callable[[ObjectInfo, str, str], None]  # (object, access key, event name)
# Every origin, without credentials, unless the control plane passes OSCAR_CORS_ORIGINS' policy.
_CORS = CorsPolicy.from_origins([ANY], S3_EXPOSED)
_READ_CHUNK = 1024 * 1024
_LIST_QUERY = {
    "list-type",
    "prefix",
    "delimiter",
    "max-keys",
    "continuation-token",
    "start-after",
    "marker",
    "encoding-type",
    "fetch-owner",
}
_PRESIGNED = ("X-Amz-Signature", "X-Amz-Credential", "Signature", "AWSAccessKeyId")
ANONYMOUS = ""  # the access key of an unsigned request


@dataclass(frozen=True)
class Principal:
    """A key's secret and what it may do: a service's job key (`access`), an OIDC user's key
    (`user`), or with neither the admin key, which may do everything."""

    secret: str
    access: ServiceAccess | None = None
    user: UserAccess | None = None


PrincipalLookup = Callable[[str], Principal | None]


class S3Error(Exception):
    """An error to answer in S3's XML format."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def _user_metadata(headers: Any) -> dict[str, str]:
    return {k[len("x-amz-meta-") :]: v for k, v in headers.items() if k.startswith("x-amz-meta-")}


def _object_headers(info: ObjectInfo) -> dict[str, str]:
    headers = {
        "ETag": f'"{info.etag}"',
        "Last-Modified": format_datetime(info.modified, usegmt=True),
        "Content-Type": info.content_type,
        "Accept-Ranges": "bytes",
    }
    headers.update({f"x-amz-meta-{k}": v for k, v in info.metadata.items()})
    return headers


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) for a `Range: bytes=...` header; None when absent."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip() != "bytes" or "," in spec:
        return None  # not satisfiable as a single range: serve the whole object, as S3 does
    start, _, end = spec.strip().partition("-")
    try:
        if start == "":
            length = int(end)
            first, last = max(0, size - length), size - 1
        else:
            first = int(start)
            last = min(int(end), size - 1) if end else size - 1
    except ValueError:
        return None
    if first >= size or first > last:
        raise S3Error("InvalidRange", "The requested range is not satisfiable", 416)
    return first, last


def _decode_path(raw: str) -> str:
    """A percent-encoded path or key as text; invalid UTF-8 is refused, never replaced."""
    try:
        return path_bytes(raw).decode()
    except UnicodeDecodeError:
        raise S3Error("InvalidArgument", "the path is not valid UTF-8", 400) from None


def _may_have_unread_body(request: Request) -> bool:
    """Whether the request came with a body that may not have been read to its end."""
    headers = request.headers
    declared = headers.get("content-length", "0").strip() not in ("", "0")
    return declared or "transfer-encoding" in headers


def requested_actions(
    method: str, query: dict[str, str], headers: Any, bucket: str, key: str
) -> list[tuple[Action, str, str]]:
    """What a request does, as (action, bucket, key or listing prefix) for access control."""
    if not bucket:
        return [(Action.LIST_BUCKETS if method == "GET" else Action.ADMIN, "", "")]
    if not key:
        if method == "HEAD" or (method == "GET" and "location" in query):
            return [(Action.LOOKUP, bucket, "")]
        if method == "GET" and not set(query) - _LIST_QUERY:
            return [(Action.LIST, bucket, query.get("prefix", ""))]
        if method == "PUT" and not query:
            return [(Action.CREATE_BUCKET, bucket, "")]
        if method == "DELETE" and not query:
            return [(Action.DELETE_BUCKET, bucket, "")]
        if method == "POST" and "delete" in query:
            return [(Action.DELETE, bucket, "")]  # DeleteObjects: the keys are in the body
        return [(Action.ADMIN, bucket, "")]
    if method in ("GET", "HEAD") and "uploadId" not in query:
        return [(Action.READ, bucket, key)]
    if method == "PUT" and "x-amz-copy-source" in headers and "uploadId" not in query:
        source = headers["x-amz-copy-source"].split("?", 1)[0]
        source_bucket, _, source_key = _decode_path(source).lstrip("/").partition("/")
        return [(Action.WRITE, bucket, key), (Action.READ, source_bucket, source_key)]
    if method in ("PUT", "POST") or (method in ("GET", "DELETE") and "uploadId" in query):
        return [(Action.WRITE, bucket, key)]  # uploads, parts, their listing and abort
    if method == "DELETE":
        return [(Action.DELETE, bucket, key)]
    return [(Action.ADMIN, bucket, key)]


def _sharing(meta: dict[str, object]) -> tuple[str, str, list[str]]:
    """(owner, visibility, allowed users) of a bucket's recorded metadata."""
    users = cast(list[object], meta.get("allowed_users") or [])
    return str(meta["owner"]), str(meta["visibility"]), [str(u) for u in users]


def _parse_xml(raw: bytes) -> ElementTree.Element:
    """A request's XML body, or MalformedXML."""
    try:
        # The body is small and authenticated, and expat refuses entity-expansion bombs.
        return ElementTree.fromstring(raw)  # noqa: S314
    except ElementTree.ParseError:
        raise S3Error("MalformedXML", "the XML body is not well-formed", 400) from None


class S3App:
    """The request handler; wraps an `ObjectStore` and a lookup of keys (`Principal`)."""

    def __init__(
        self,
        store: ObjectStore,
        principal_for: PrincipalLookup,
        region: str = "us-east-1",
        on_object_created: ObjectCreated | None = None,
        cors: CorsPolicy = _CORS,
    ) -> None:
        self.store = store
        self.principal_for = principal_for
        self.region = region
        self.on_object_created = on_object_created
        self.cors = cors

    def app(self) -> ASGIApp:
        """The ASGI application; CORS (preflights, headers on every answer) wraps it whole."""
        methods = ["GET", "PUT", "POST", "DELETE", "HEAD", "OPTIONS"]
        routes = Starlette(routes=[Route("/{path:path}", self.handle, methods=methods)])
        return CORSMiddleware(routes, self.cors, deny=self._cors_denial)

    async def handle(self, request: Request) -> Response:
        """Authenticate, dispatch, and turn errors into S3 XML."""
        request_id = uuid.uuid4().hex[:16].upper()
        raw_path = request.scope.get("raw_path", b"").decode("latin-1").split("?", 1)[0]
        raw_path = raw_path or request.url.path.encode().decode("latin-1")
        try:
            if request.method == "OPTIONS":  # not a preflight (`CORSMiddleware` answers those)
                return Response(status_code=200)
            query = parse_qsl(
                request.scope.get("query_string", b"").decode("utf-8", "replace"),
                keep_blank_values=True,
            )
            headers = {k.lower(): v for k, v in request.headers.items()}
            path = _decode_path(raw_path)
            bucket, _, key = path.lstrip("/").partition("/")
            actions = requested_actions(request.method, dict(query), headers, bucket, key)
            # Key lookups read the registry: off the event loop, like the rest of the work.
            verified, user = await run_in_threadpool(
                self._authorise, request.method, raw_path, query, headers, actions
            )
            response = await self._dispatch(request, verified, user, dict(query), bucket, key)
        except (S3Error, StoreError, PayloadError) as exc:
            status = exc.status
            body = (
                b""
                if request.method == "HEAD"
                else xml.error(exc.code, exc.message, raw_path, request_id)
            )
            response = Response(body, status_code=status, media_type="application/xml")
            if _may_have_unread_body(request):
                # A body refused before it was read (clients send it even without a `100
                # Continue`) would otherwise be parsed as the start of the next request.
                response.headers["Connection"] = "close"
        response.headers["x-amz-request-id"] = request_id
        return response

    def _authorise(
        self,
        method: str,
        raw_path: str,
        query: list[tuple[str, str]],
        headers: dict[str, str],
        actions: list[tuple[Action, str, str]],
    ) -> tuple[VerifiedRequest, UserAccess | None]:
        """Verify the signature and check that its key may do every action; raise S3Error.

        Answers the verified request and, for an OIDC user's key, that user's rules (the
        listing of buckets and the owner of a new bucket depend on them).
        """
        params = {name for name, _ in query}
        if "authorization" not in headers and not params & set(_PRESIGNED):
            if all(self._public_read(action, bucket) for action, bucket, _ in actions):
                return VerifiedRequest(ANONYMOUS, "UNSIGNED-PAYLOAD"), None
            raise S3Error("AccessDenied", "anonymous access is not allowed", 403)
        principals: dict[str, Principal | None] = {}

        def secret_for(access_key: str) -> str | None:
            principals[access_key] = self.principal_for(access_key)
            found = principals[access_key]
            return found.secret if found else None

        try:
            verified = verify(method, raw_path, query, headers, secret_for)
        except SignatureError as exc:
            raise S3Error(exc.code, exc.message, exc.status) from None
        principal = principals.get(verified.access_key)
        if principal is not None and principal.user is not None:
            for action, bucket, _ in actions:
                self._check_user(principal.user, action, bucket)
            return verified, principal.user
        access = principal.access if principal else None
        if principal is None or access is None:
            return verified, None
        for action, bucket, key in actions:
            if not access.allows(action, bucket, key):
                where = f"{bucket}/{key}" if key else bucket or "the service"
                raise S3Error(
                    "AccessDenied",
                    f"the key of service '{access.service}' may not {action} {where}",
                    403,
                )
        return verified, None

    def _check_user(self, user: UserAccess, action: Action, bucket: str) -> None:
        """AccessDenied unless the user's rules allow `action` on `bucket` (a bucket that does
        not exist is refused like another's private one: its existence is not revealed)."""
        if bucket and action is not Action.CREATE_BUCKET:
            try:
                meta = self.store.bucket_meta(bucket)
            except StoreError as exc:
                if exc.code != "NoSuchBucket":
                    raise
                meta = None
            if meta is not None and user.allows(action, *_sharing(meta)):
                return
        elif user.allows(action, "", "", ()):
            return
        raise S3Error(
            "AccessDenied", f"user '{user.subject}' may not {action} {bucket or 'buckets'}", 403
        )

    def _public_read(self, action: Action, bucket: str) -> bool:
        """Whether anonymous callers may do `action`: read, list and look up `public` buckets."""
        if action not in (Action.READ, Action.LIST, Action.LOOKUP) or not bucket:
            return False
        try:
            return self.store.bucket_meta(bucket)["visibility"] == "public"
        except StoreError:
            return False

    @staticmethod
    def _cors_denial(reason: str) -> tuple[bytes, str]:
        """A refused preflight, as S3 XML."""
        return xml.error("AccessDenied", f"CORS: {reason}", "", ""), "application/xml"

    async def _dispatch(
        self,
        request: Request,
        verified: VerifiedRequest,
        user: UserAccess | None,
        query: dict[str, str],
        bucket: str,
        key: str,
    ) -> Response:
        method = request.method
        streamed = method == "PUT" and bool(key) and "x-amz-copy-source" not in request.headers
        body = b"" if streamed else await self._small_body(request, verified)
        if not bucket:
            if method == "GET":
                return await run_in_threadpool(self._list_buckets, user)
            raise S3Error("MethodNotAllowed", "not allowed on the service", 405)
        if not key:
            return await self._bucket_operation(method, query, bucket, body, user)
        if method in ("GET", "HEAD") and "uploadId" not in query:
            return await run_in_threadpool(self._get_object, request, method, bucket, key)
        if method == "PUT" and "uploadId" in query:
            return await self._upload_part(request, verified, query, bucket, key)
        if method == "PUT" and "x-amz-copy-source" in request.headers:
            return await run_in_threadpool(self._copy_object, request, verified, bucket, key)
        if method == "PUT":
            return await self._put_object(request, verified, bucket, key)
        if method == "DELETE" and "uploadId" in query:
            await run_in_threadpool(self.store.abort_upload, bucket, key, query["uploadId"])
            return Response(status_code=204)
        if method == "DELETE":
            await run_in_threadpool(self.store.delete_object, bucket, key)
            return Response(status_code=204)
        if method == "POST" and "uploads" in query:
            upload = await run_in_threadpool(
                self.store.create_upload,
                bucket,
                key,
                request.headers.get("content-type", "application/octet-stream"),
                _user_metadata(request.headers),
            )
            body = xml.element("Bucket", bucket) + xml.element("Key", key)
            body += xml.element("UploadId", upload)
            return self._xml("InitiateMultipartUploadResult", body)
        if method == "POST" and "uploadId" in query:
            return await self._complete_upload(verified, query, bucket, key, body)
        if method == "GET" and "uploadId" in query:
            parts = await run_in_threadpool(self.store.list_parts, bucket, key, query["uploadId"])
            body = xml.element("Bucket", bucket) + xml.element("Key", key)
            body += xml.element("UploadId", query["uploadId"])
            for number, size, etag in parts:
                body += "<Part>" + xml.element("PartNumber", number)
                body += xml.element("ETag", f'"{etag}"') + xml.element("Size", size) + "</Part>"
            return self._xml("ListPartsResult", body)
        raise S3Error("NotImplemented", f"{method} on an object is not implemented", 501)

    # --- buckets ---------------------------------------------------------------------------

    def _list_buckets(self, user: UserAccess | None) -> Response:
        listed = self.store.list_buckets()
        if user is not None:  # only the buckets the user may reach
            reachable = {
                name
                for name, meta in self.store.list_buckets_meta()
                if user.reaches(*_sharing(meta))
            }
            listed = [(name, created) for name, created in listed if name in reachable]
        buckets = "".join(
            "<Bucket>"
            + xml.element("Name", name)
            + xml.element("CreationDate", xml.iso(created))
            + "</Bucket>"
            for name, created in listed
        )
        owner = "<Owner>" + xml.element("ID", "oscar") + xml.element("DisplayName", "oscar")
        return self._xml(
            "ListAllMyBucketsResult", owner + "</Owner><Buckets>" + buckets + "</Buckets>"
        )

    async def _bucket_operation(
        self,
        method: str,
        query: dict[str, str],
        bucket: str,
        body: bytes,
        user: UserAccess | None = None,
    ) -> Response:
        if method == "PUT" and not query:  # a CreateBucketConfiguration body is ignored
            await run_in_threadpool(self._create_bucket, bucket, user)
            return Response(status_code=200, headers={"Location": f"/{bucket}"})
        if method == "HEAD":
            await run_in_threadpool(self.store.require_bucket, bucket)
            return Response(status_code=200, headers={"x-amz-bucket-region": self.region})
        if method == "DELETE" and not query:
            await run_in_threadpool(self.store.delete_bucket, bucket)
            return Response(status_code=204)
        if method == "GET" and "location" in query:
            await run_in_threadpool(self.store.require_bucket, bucket)
            body = (
                f'<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint xmlns="{xml.NS}">'
                f"{self.region}</LocationConstraint>"
            )
            return Response(body, media_type="application/xml")
        if method == "GET" and not set(query) - _LIST_QUERY:
            return await run_in_threadpool(self._list_objects, bucket, query)
        if method == "POST" and "delete" in query:
            return await self._delete_objects(bucket, body)
        raise S3Error("NotImplemented", "this bucket operation is not implemented", 501)

    def _create_bucket(self, bucket: str, user: UserAccess | None) -> None:
        """Create a bucket; a user's is `private` and theirs. An existing bucket is
        `BucketAlreadyExists` for a user who does not own it, as S3 answers."""
        try:
            self.store.create_bucket(bucket, owner=user.subject if user else "")
        except StoreError as exc:
            if exc.code != "BucketAlreadyOwnedByYou" or user is None:
                raise
            if self.store.bucket_meta(bucket)["owner"] != user.subject:
                raise StoreError("BucketAlreadyExists", exc.message, 409) from None
            raise

    def _list_objects(self, bucket: str, query: dict[str, str]) -> Response:
        v2 = query.get("list-type") == "2"
        prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
        try:
            max_keys = max(0, min(1000, int(query.get("max-keys", "1000"))))
        except ValueError:
            raise S3Error("InvalidArgument", "max-keys must be an integer", 400) from None
        if v2 and query.get("continuation-token"):
            try:
                after = base64.urlsafe_b64decode(query["continuation-token"]).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise S3Error("InvalidArgument", "bad continuation token", 400) from None
        else:
            after = query.get("start-after", "") if v2 else query.get("marker", "")
        listing = self.store.list_objects(bucket, prefix, delimiter, after, max_keys)
        body = xml.element("Name", bucket) + xml.element("Prefix", prefix)
        body += xml.element("MaxKeys", max_keys) + xml.element(
            "IsTruncated", str(listing.truncated).lower()
        )
        if delimiter:
            body += xml.element("Delimiter", delimiter)
        if v2:
            body += xml.element("KeyCount", len(listing.objects) + len(listing.prefixes))
            if query.get("continuation-token"):
                body += xml.element("ContinuationToken", query["continuation-token"])
            if query.get("start-after"):
                body += xml.element("StartAfter", query["start-after"])
            if listing.truncated:
                token = base64.urlsafe_b64encode(listing.next_marker.encode()).decode()
                body += xml.element("NextContinuationToken", token)
        else:
            body += xml.element("Marker", after)
            if listing.truncated:
                body += xml.element("NextMarker", listing.next_marker)
        for info in listing.objects:
            body += (
                "<Contents>"
                + xml.element("Key", info.key)
                + xml.element("LastModified", xml.iso(info.modified))
                + xml.element("ETag", f'"{info.etag}"')
                + xml.element("Size", info.size)
                + xml.element("StorageClass", "STANDARD")
                + "</Contents>"
            )
        for common in listing.prefixes:
            body += "<CommonPrefixes>" + xml.element("Prefix", common) + "</CommonPrefixes>"
        return self._xml("ListBucketResult", body)

    async def _delete_objects(self, bucket: str, raw: bytes) -> Response:
        root = _parse_xml(raw)
        quiet = (root.findtext(f"{{{xml.NS}}}Quiet") or root.findtext("Quiet") or "") == "true"
        keys = [
            (element.text or "")
            for element in root.iter()
            if element.tag.endswith("Key") and element.tag.rsplit("}", 1)[-1] == "Key"
        ]
        if len(keys) > 1000:
            raise S3Error("MalformedXML", "at most 1000 keys can be deleted at once", 400)
        body = ""
        for key in keys:
            try:
                await run_in_threadpool(self.store.delete_object, bucket, key)
                if not quiet:
                    body += "<Deleted>" + xml.element("Key", key) + "</Deleted>"
            except StoreError as exc:
                body += "<Error>" + xml.element("Key", key) + xml.element("Code", exc.code)
                body += xml.element("Message", exc.message) + "</Error>"
        return self._xml("DeleteResult", body)

    # --- objects ---------------------------------------------------------------------------

    def _get_object(self, request: Request, method: str, bucket: str, key: str) -> Response:
        info = self.store.head(bucket, key)
        headers = _object_headers(info)
        span = _byte_range(request.headers.get("range", ""), info.size)
        if method == "HEAD":
            headers["Content-Length"] = str(info.size)
            return Response(status_code=200, headers=headers)
        first, last = span if span else (0, info.size - 1)
        length = max(0, last - first + 1)
        headers["Content-Length"] = str(length)
        status = 200
        if span:
            status = 206
            headers["Content-Range"] = f"bytes {first}-{last}/{info.size}"
        handle = self.store.open_blob(info)

        def chunks() -> Iterator[bytes]:
            try:
                handle.seek(first)
                remaining = length
                while remaining > 0:
                    chunk = handle.read(min(_READ_CHUNK, remaining))
                    if not chunk:
                        break
                    remaining -= len(chunk)
                    yield chunk
            finally:
                handle.close()

        return StreamingResponse(
            chunks(), status_code=status, headers=headers, media_type=info.content_type
        )

    async def _receive(self, request: Request, verified: VerifiedRequest) -> tuple[str, int, str]:
        """Stream the body into a new blob; check its hashes; return (blob, size, md5)."""
        check = PayloadCheck(verified, request.headers.get("content-encoding", ""))
        writer = await run_in_threadpool(self.store.new_blob)
        try:
            async for data in request.stream():
                payload = check.feed(data)
                if payload:
                    await run_in_threadpool(writer.write, payload)
            check.finish()
            declared = request.headers.get("content-md5")
            if declared:
                try:
                    expected = base64.b64decode(declared).hex()
                except binascii.Error:
                    raise S3Error("InvalidDigest", "Content-MD5 is not base64", 400) from None
                if expected != writer.md5.hexdigest():
                    raise S3Error("BadDigest", "the body does not match Content-MD5", 400)
            decoded_length = request.headers.get("x-amz-decoded-content-length")
            chunked = verified.streaming or "aws-chunked" in request.headers.get(
                "content-encoding", ""
            )
            if chunked and decoded_length and decoded_length != str(writer.size):
                raise S3Error("IncompleteBody", "the body is shorter than declared", 400)
        except BaseException:
            writer.abort()
            raise
        blob, size, md5, _ = await run_in_threadpool(writer.finish)
        return blob, size, md5

    async def _put_object(
        self, request: Request, verified: VerifiedRequest, bucket: str, key: str
    ) -> Response:
        await run_in_threadpool(self.store.require_bucket, bucket)
        blob, size, md5 = await self._receive(request, verified)
        try:
            info = await run_in_threadpool(
                self.store.commit_object,
                bucket,
                key,
                blob,
                size,
                md5,
                request.headers.get("content-type", "application/octet-stream"),
                _user_metadata(request.headers),
            )
        except BaseException:
            self.store.discard_blob(blob)
            raise
        await run_in_threadpool(self._created, info, verified, "s3:ObjectCreated:Put")
        return Response(status_code=200, headers={"ETag": f'"{md5}"'})

    def _copy_object(
        self, request: Request, verified: VerifiedRequest, bucket: str, key: str
    ) -> Response:
        source = _decode_path(request.headers["x-amz-copy-source"].split("?", 1)[0]).lstrip("/")
        source_bucket, _, source_key = source.partition("/")
        self.store.require_bucket(bucket)  # refuse before copying anything
        check_key(key)
        info = self.store.head(source_bucket, source_key)
        with self.store.open_blob(info) as handle:
            blob, size, md5, _ = self.store.write_blob(iter(lambda: handle.read(_READ_CHUNK), b""))
        replace = request.headers.get("x-amz-metadata-directive", "COPY").upper() == "REPLACE"
        content_type = (
            request.headers.get("content-type", info.content_type) if replace else info.content_type
        )
        metadata = _user_metadata(request.headers) if replace else info.metadata
        etag = info.etag if "-" in info.etag else md5
        try:
            copied = self.store.commit_object(bucket, key, blob, size, etag, content_type, metadata)
        except BaseException:
            self.store.discard_blob(blob)  # e.g. the bucket was deleted meanwhile
            raise
        self._created(copied, verified, "s3:ObjectCreated:Copy")
        body = xml.element("LastModified", xml.iso(copied.modified))
        body += xml.element("ETag", f'"{copied.etag}"')
        return self._xml("CopyObjectResult", body)

    async def _upload_part(
        self,
        request: Request,
        verified: VerifiedRequest,
        query: dict[str, str],
        bucket: str,
        key: str,
    ) -> Response:
        try:
            number = int(query.get("partNumber", ""))
        except ValueError:
            raise S3Error("InvalidArgument", "partNumber must be an integer", 400) from None
        await run_in_threadpool(self.store.list_parts, bucket, key, query["uploadId"])
        blob, size, md5 = await self._receive(request, verified)
        try:
            await run_in_threadpool(
                self.store.put_part, bucket, key, query["uploadId"], number, blob, size, md5
            )
        except BaseException:
            self.store.discard_blob(blob)
            raise
        return Response(status_code=200, headers={"ETag": f'"{md5}"'})

    async def _complete_upload(
        self, verified: VerifiedRequest, query: dict[str, str], bucket: str, key: str, raw: bytes
    ) -> Response:
        root = _parse_xml(raw)
        parts: list[tuple[int, str]] = []
        for part in root:
            fields = {child.tag.rsplit("}", 1)[-1]: (child.text or "") for child in part}
            try:
                parts.append((int(fields["PartNumber"]), fields["ETag"].strip('"')))
            except (KeyError, ValueError):
                raise S3Error("MalformedXML", "each Part needs PartNumber and ETag", 400) from None
        info = await run_in_threadpool(
            self.store.complete_upload, bucket, key, query["uploadId"], parts
        )
        await run_in_threadpool(
            self._created, info, verified, "s3:ObjectCreated:CompleteMultipartUpload"
        )
        body = xml.element("Location", f"/{bucket}/{key}") + xml.element("Bucket", bucket)
        body += xml.element("Key", key) + xml.element("ETag", f'"{info.etag}"')
        return self._xml("CompleteMultipartUploadResult", body)

    # --- helpers ---------------------------------------------------------------------------

    def _created(self, info: ObjectInfo, verified: VerifiedRequest, event: str) -> None:
        # Blocks (registry read, fsynced job record): callers run it in a worker thread.
        if self.on_object_created is not None:
            self.on_object_created(info, verified.access_key, event)

    @staticmethod
    def _xml(root: str, body: str) -> Response:
        return Response(xml.document(root, body), media_type="application/xml")

    @staticmethod
    async def _small_body(request: Request, verified: VerifiedRequest) -> bytes:
        """Any non-object body: bounded, and checked against its signature before use."""
        headers = request.headers
        return await read_small_body(
            request.stream(),
            verified,
            headers.get("content-encoding", ""),
            headers.get("content-length", ""),
        )
