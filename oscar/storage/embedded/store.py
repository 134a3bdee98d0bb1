"""On-disk buckets and objects: data files written atomically, metadata in SQLite.

Object keys are never used as file names: each object's bytes live in a file named by a random
id, so no key (`../x`, absolute paths, NUL) can reach outside the store. A write is a temp file,
`fsync`, `rename`, then one SQLite transaction; an object either exists whole or not at all.
The same database records each bucket's owner and visibility, and which OIDC users got store
keys (`users`: subjects only, never a secret).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from oscar.models.job import utcnow
from oscar.models.validation import bucket_name_problem

MAX_KEY_BYTES = 1024
_SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (name TEXT PRIMARY KEY, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
    bucket TEXT NOT NULL, key TEXT NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL,
    content_type TEXT NOT NULL, metadata TEXT NOT NULL, modified TEXT NOT NULL,
    blob TEXT NOT NULL, PRIMARY KEY (bucket, key)
);
CREATE TABLE IF NOT EXISTS bucket_meta (
    name TEXT PRIMARY KEY, owner TEXT NOT NULL, visibility TEXT NOT NULL,
    allowed_users TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS service_buckets (name TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS users (
    subject TEXT PRIMARY KEY, access_key TEXT NOT NULL, display_name TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS users_by_access_key ON users (access_key);
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY, bucket TEXT NOT NULL, key TEXT NOT NULL, content_type TEXT NOT NULL,
    metadata TEXT NOT NULL, created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS parts (
    upload TEXT NOT NULL, number INTEGER NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL,
    blob TEXT NOT NULL, PRIMARY KEY (upload, number)
);
"""


class StoreError(Exception):
    """An S3 error: `code` (e.g. NoSuchKey) and HTTP `status`."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass(frozen=True)
class ObjectInfo:
    """Metadata of one stored object."""

    bucket: str
    key: str
    size: int
    etag: str
    content_type: str
    modified: datetime
    metadata: dict[str, str] = field(default_factory=dict)
    blob: str = ""


@dataclass(frozen=True)
class Listing:
    """One page of a listing."""

    objects: list[ObjectInfo]
    prefixes: list[str]
    truncated: bool
    next_marker: str


def _meta(row: tuple[str, str, str] | None) -> dict[str, object]:
    if row is None:
        return {"owner": "cluster_admin", "visibility": "private", "allowed_users": []}
    return {"owner": row[0], "visibility": row[1], "allowed_users": json.loads(row[2])}


def check_bucket_name(name: str) -> None:
    """Raise `InvalidBucketName` unless `name` follows S3's rules (the rule services obey)."""
    if (problem := bucket_name_problem(name)) is not None:
        raise StoreError("InvalidBucketName", problem, 400)


def check_key(key: str) -> None:
    """Refuse keys that are empty, too long, or that would read as a path escape."""
    if not key or len(key.encode()) > MAX_KEY_BYTES:
        raise StoreError("KeyTooLongError" if key else "InvalidArgument", "invalid object key", 400)
    segments = key.split("/")
    if "\x00" in key or key.startswith("/") or any(s in {"..", "."} for s in segments):
        raise StoreError("InvalidArgument", f"object key {key!r} is not allowed", 400)


class BlobWriter:
    """Streams bytes to a temp file, hashing them; `finish()` fsyncs and renames into place."""

    def __init__(self, store: ObjectStore) -> None:
        self.blob = uuid.uuid4().hex
        self._store = store
        self._temp = store.tmp / self.blob
        self._handle = self._temp.open("wb")
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        """Append bytes."""
        self._handle.write(chunk)
        self.md5.update(chunk)
        self.sha256.update(chunk)
        self.size += len(chunk)

    def finish(self) -> tuple[str, int, str, str]:
        """Make the blob durable; return (blob id, size, md5 hex, sha256 hex)."""
        try:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            os.replace(self._temp, self._store.blobs / self.blob)
        except BaseException:
            self.abort()
            raise
        return self.blob, self.size, self.md5.hexdigest(), self.sha256.hexdigest()

    def abort(self) -> None:
        """Drop what was written."""
        self._handle.close()
        self._temp.unlink(missing_ok=True)


class ObjectStore:
    """Buckets and objects under one folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs"
        self.tmp = root / "tmp"
        for folder in (root, self.blobs, self.tmp):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            root / "objects.db", isolation_level=None, check_same_thread=False, timeout=30
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()
        for leftover in self.tmp.iterdir():  # half-written uploads from a crash
            leftover.unlink(missing_ok=True)
        self._reclaim_orphans()

    def _reclaim_orphans(self) -> None:
        """Delete blobs no object or part refers to (a crash or a failed write left them)."""
        with self._lock:
            referenced = {
                blob
                for (blob,) in self._db.execute(
                    "SELECT blob FROM objects UNION SELECT blob FROM parts"
                )
            }
        for path in self.blobs.iterdir():
            if path.name not in referenced:
                path.unlink(missing_ok=True)

    def close(self) -> None:
        """Close the metadata database."""
        with self._lock:
            self._db.close()

    # --- buckets ---------------------------------------------------------------------------

    def create_bucket(self, name: str, owner: str = "") -> None:
        """Create a bucket; `BucketAlreadyOwnedByYou` if it exists.

        With `owner`, the bucket is recorded as that owner's and `private` in the same
        transaction, so that it is never, even for a moment, the admin's.
        """
        check_bucket_name(name)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("INSERT INTO buckets VALUES (?, ?)", (name, utcnow().isoformat()))
                if owner:
                    self._db.execute(
                        "INSERT OR REPLACE INTO bucket_meta VALUES (?, ?, 'private', '[]')",
                        (name, owner),
                    )
            except sqlite3.IntegrityError:
                self._db.execute("ROLLBACK")
                raise StoreError(
                    "BucketAlreadyOwnedByYou", f"bucket {name} already exists", 409
                ) from None
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def bucket_exists(self, name: str) -> bool:
        """Whether the bucket exists."""
        with self._lock:
            row = self._db.execute("SELECT 1 FROM buckets WHERE name = ?", (name,)).fetchone()
        return row is not None

    def require_bucket(self, name: str) -> None:
        """Raise `NoSuchBucket` unless the bucket exists."""
        if not self.bucket_exists(name):
            raise StoreError("NoSuchBucket", f"bucket {name} does not exist", 404)

    def list_buckets(self) -> list[tuple[str, datetime]]:
        """Every bucket with its creation time, by name."""
        with self._lock:
            rows = self._db.execute("SELECT name, created FROM buckets ORDER BY name").fetchall()
        return [(name, datetime.fromisoformat(created)) for name, created in rows]

    def usage(self) -> tuple[int, int]:
        """(buckets, objects) in the store, counted without listing them."""
        with self._lock:
            (buckets,) = self._db.execute("SELECT COUNT(*) FROM buckets").fetchone()
            (objects,) = self._db.execute("SELECT COUNT(*) FROM objects").fetchone()
        return int(buckets), int(objects)

    def bucket_meta(self, name: str) -> dict[str, object]:
        """Owner, visibility and allowed users of a bucket (defaults when never set)."""
        self.require_bucket(name)
        with self._lock:
            row = self._db.execute(
                "SELECT owner, visibility, allowed_users FROM bucket_meta WHERE name = ?", (name,)
            ).fetchone()
        return _meta(row)

    def list_buckets_meta(self) -> list[tuple[str, dict[str, object]]]:
        """Every bucket with its owner, visibility and allowed users, by name (one query)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT b.name, m.owner, m.visibility, m.allowed_users FROM buckets b "
                "LEFT JOIN bucket_meta m ON m.name = b.name ORDER BY b.name"
            ).fetchall()
        return [
            (name, _meta(None if owner is None else (owner, vis, users)))
            for name, owner, vis, users in rows
        ]

    def set_bucket_meta(
        self, name: str, owner: str, visibility: str, allowed_users: list[str]
    ) -> None:
        """Record a bucket's owner, visibility and allowed users."""
        self.require_bucket(name)
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO bucket_meta VALUES (?, ?, ?, ?)",
                (name, owner, visibility, json.dumps(allowed_users)),
            )

    def delete_bucket(self, name: str) -> None:
        """Delete an empty bucket."""
        self.require_bucket(name)
        with self._lock:
            if self._db.execute(
                "SELECT 1 FROM objects WHERE bucket = ? LIMIT 1", (name,)
            ).fetchone():
                raise StoreError("BucketNotEmpty", f"bucket {name} is not empty", 409)
            self._db.execute("DELETE FROM buckets WHERE name = ?", (name,))
            self._db.execute("DELETE FROM bucket_meta WHERE name = ?", (name,))
            self._db.execute("DELETE FROM service_buckets WHERE name = ?", (name,))

    def mark_service_bucket(self, name: str) -> None:
        """Record that oscar created the bucket for a service (so it may delete it with them)."""
        self.require_bucket(name)
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO service_buckets VALUES (?)", (name,))

    def is_service_bucket(self, name: str) -> bool:
        """Whether oscar created the bucket for a service (see `mark_service_bucket`)."""
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM service_buckets WHERE name = ?", (name,)
            ).fetchone()
        return row is not None

    # --- users ---------------------------------------------------------------------------

    def record_user(self, subject: str, access_key: str, display_name: str) -> None:
        """Remember that `subject` got the store key `access_key` (kept across restarts)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO users VALUES (?, ?, ?, ?) ON CONFLICT (subject) DO UPDATE SET "
                "access_key = excluded.access_key, display_name = excluded.display_name",
                (subject, access_key, display_name, utcnow().isoformat()),
            )

    def users_with_access_key(self, access_key: str) -> list[str]:
        """The subjects recorded with `access_key` (one, or none)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT subject FROM users WHERE access_key = ?", (access_key,)
            ).fetchall()
        return [subject for (subject,) in rows]

    # --- writing ---------------------------------------------------------------------------

    def new_blob(self) -> BlobWriter:
        """A writer for a new blob (call `finish()` to make it durable, `abort()` to drop it)."""
        return BlobWriter(self)

    def write_blob(self, chunks: Iterator[bytes]) -> tuple[str, int, str, str]:
        """Store a stream durably; return (blob id, size, md5 hex, sha256 hex)."""
        writer = self.new_blob()
        try:
            for chunk in chunks:
                writer.write(chunk)
        except BaseException:
            writer.abort()
            raise
        return writer.finish()

    def discard_blob(self, blob: str) -> None:
        """Remove a blob no object refers to."""
        (self.blobs / blob).unlink(missing_ok=True)

    def commit_object(
        self,
        bucket: str,
        key: str,
        blob: str,
        size: int,
        etag: str,
        content_type: str,
        metadata: dict[str, str],
    ) -> ObjectInfo:
        """Make a written blob visible as `bucket/key`, replacing any previous object."""
        check_key(key)
        info = ObjectInfo(bucket, key, size, etag, content_type, utcnow(), metadata, blob)
        with self._lock:
            self.require_bucket(bucket)
            old = self._db.execute(
                "SELECT blob FROM objects WHERE bucket = ? AND key = ?", (bucket, key)
            ).fetchone()
            self._db.execute(
                "INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    bucket,
                    key,
                    size,
                    etag,
                    content_type,
                    json.dumps(metadata),
                    info.modified.isoformat(),
                    blob,
                ),
            )
        if old and old[0] != blob:
            self.discard_blob(old[0])
        self._sync_dir()
        return info

    def _sync_dir(self) -> None:
        # The rename into blobs/ must survive power loss too, not only the file's content.
        fd = os.open(self.blobs, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # --- reading ---------------------------------------------------------------------------

    def head(self, bucket: str, key: str) -> ObjectInfo:
        """Metadata of one object (`NoSuchKey` when absent)."""
        self.require_bucket(bucket)
        with self._lock:
            row = self._db.execute(
                "SELECT size, etag, content_type, metadata, modified, blob FROM objects "
                "WHERE bucket = ? AND key = ?",
                (bucket, key),
            ).fetchone()
        if row is None:
            raise StoreError("NoSuchKey", "The specified key does not exist.", 404)
        size, etag, content_type, metadata, modified, blob = row
        return ObjectInfo(
            bucket,
            key,
            size,
            etag,
            content_type,
            datetime.fromisoformat(modified),
            json.loads(metadata),
            blob,
        )

    def open_blob(self, info: ObjectInfo) -> BinaryIO:
        """Open an object's bytes for reading."""
        return (self.blobs / info.blob).open("rb")

    def delete_object(self, bucket: str, key: str) -> None:
        """Delete an object; deleting a missing key succeeds, as in S3."""
        self.require_bucket(bucket)
        with self._lock:
            row = self._db.execute(
                "SELECT blob FROM objects WHERE bucket = ? AND key = ?", (bucket, key)
            ).fetchone()
            self._db.execute("DELETE FROM objects WHERE bucket = ? AND key = ?", (bucket, key))
        if row:
            self.discard_blob(row[0])

    def list_objects(
        self, bucket: str, prefix: str, delimiter: str, after: str, limit: int
    ) -> Listing:
        """Keys after `after` that start with `prefix`, rolled up at `delimiter`."""
        self.require_bucket(bucket)
        objects: list[ObjectInfo] = []
        prefixes: list[str] = []
        cursor, marker = after, ""
        batch = max(limit, 100) + 1
        while True:
            with self._lock:
                rows = self._db.execute(
                    "SELECT key, size, etag, content_type, modified FROM objects "
                    "WHERE bucket = ? AND key > ? AND substr(key, 1, ?) = ? "
                    "ORDER BY key LIMIT ?",
                    (bucket, cursor, len(prefix), prefix, batch),
                ).fetchall()
            jumped = False
            for key, size, etag, content_type, modified in rows:
                if len(objects) + len(prefixes) == limit:
                    return Listing(objects, prefixes, True, marker)
                rest = key[len(prefix) :]
                if delimiter and delimiter in rest:
                    common = prefix + rest.split(delimiter, 1)[0] + delimiter
                    if common > after:  # a continuation starts after an already-sent prefix
                        prefixes.append(common)
                        marker = common
                    # Skip every other key under this common prefix in one query.
                    cursor = common + "\U0010ffff"
                    jumped = True
                    break
                objects.append(
                    ObjectInfo(
                        bucket, key, size, etag, content_type, datetime.fromisoformat(modified)
                    )
                )
                cursor = marker = key
            if not jumped and len(rows) < batch:
                return Listing(objects, prefixes, False, "")

    # --- multipart -------------------------------------------------------------------------

    def create_upload(
        self, bucket: str, key: str, content_type: str, metadata: dict[str, str]
    ) -> str:
        """Start a multipart upload; return its id."""
        self.require_bucket(bucket)
        check_key(key)
        upload = uuid.uuid4().hex
        with self._lock:
            self._db.execute(
                "INSERT INTO uploads VALUES (?, ?, ?, ?, ?, ?)",
                (upload, bucket, key, content_type, json.dumps(metadata), utcnow().isoformat()),
            )
        return upload

    def _upload(self, bucket: str, key: str, upload: str) -> tuple[str, dict[str, str]]:
        with self._lock:
            row = self._db.execute(
                "SELECT content_type, metadata FROM uploads "
                "WHERE id = ? AND bucket = ? AND key = ?",
                (upload, bucket, key),
            ).fetchone()
        if row is None:
            raise StoreError("NoSuchUpload", "The specified upload does not exist.", 404)
        return row[0], json.loads(row[1])

    def put_part(
        self, bucket: str, key: str, upload: str, number: int, blob: str, size: int, etag: str
    ) -> None:
        """Record an uploaded part (replacing an earlier part with the same number)."""
        self._upload(bucket, key, upload)
        if not 1 <= number <= 10000:
            raise StoreError("InvalidArgument", "part number must be 1-10000", 400)
        with self._lock:
            old = self._db.execute(
                "SELECT blob FROM parts WHERE upload = ? AND number = ?", (upload, number)
            ).fetchone()
            self._db.execute(
                "INSERT OR REPLACE INTO parts VALUES (?, ?, ?, ?, ?)",
                (upload, number, size, etag, blob),
            )
        if old:
            self.discard_blob(old[0])

    def list_parts(self, bucket: str, key: str, upload: str) -> list[tuple[int, int, str]]:
        """(number, size, etag) of every part so far."""
        self._upload(bucket, key, upload)
        with self._lock:
            return self._db.execute(
                "SELECT number, size, etag FROM parts WHERE upload = ? ORDER BY number", (upload,)
            ).fetchall()

    def complete_upload(
        self, bucket: str, key: str, upload: str, requested: list[tuple[int, str]]
    ) -> ObjectInfo:
        """Concatenate the requested parts into the object (S3's multipart ETag)."""
        content_type, metadata = self._upload(bucket, key, upload)
        with self._lock:
            stored = {
                number: (size, etag, blob)
                for number, size, etag, blob in self._db.execute(
                    "SELECT number, size, etag, blob FROM parts WHERE upload = ?", (upload,)
                ).fetchall()
            }
        numbers = [n for n, _ in requested]
        if not requested or numbers != sorted(set(numbers)):
            raise StoreError("InvalidPartOrder", "parts must be listed in ascending order", 400)
        for number, etag in requested:
            if number not in stored or stored[number][1] != etag.strip('"'):
                raise StoreError("InvalidPart", f"part {number} was not uploaded as listed", 400)

        def chunks() -> Iterator[bytes]:
            for number, _ in requested:
                with (self.blobs / stored[number][2]).open("rb") as handle:
                    while chunk := handle.read(1024 * 1024):
                        yield chunk

        blob, size, _, _ = self.write_blob(chunks())
        digest = hashlib.md5(usedforsecurity=False)
        for number, _ in requested:
            digest.update(bytes.fromhex(stored[number][1]))
        etag = f"{digest.hexdigest()}-{len(requested)}"
        try:
            info = self.commit_object(bucket, key, blob, size, etag, content_type, metadata)
        except BaseException:
            self.discard_blob(blob)
            raise
        self.abort_upload(bucket, key, upload)
        return info

    def abort_upload(self, bucket: str, key: str, upload: str) -> None:
        """Drop an upload and its parts."""
        self._upload(bucket, key, upload)
        with self._lock:
            blobs = self._db.execute(
                "SELECT blob FROM parts WHERE upload = ?", (upload,)
            ).fetchall()
            self._db.execute("DELETE FROM parts WHERE upload = ?", (upload,))
            self._db.execute("DELETE FROM uploads WHERE id = ?", (upload,))
        for (blob,) in blobs:
            self.discard_blob(blob)
