"""Bridge definitions and their cursors, in one private SQLite file beside the job store.

A cursor is what a source has consumed: the version of every file a WebDAV folder held, the
channel and last event id of a dCache listener. It is written only after the jobs of what it
covers are on disk (`oscar.events.accept`), in one transaction per batch, so a crash between
the two repeats a batch (recognised by its dedup keys) and never skips one.

The file holds bridge credentials: it is created 0600, with its WAL and SHM files.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from oscar.bridges.records import BridgeRecords
from oscar.errors import ConfigurationError, ConflictError, NotFoundError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bridges (
    name TEXT PRIMARY KEY, spec TEXT NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors (
    bridge TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (bridge, key)
) WITHOUT ROWID;
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class BridgeStore(BridgeRecords):
    """Bridge definitions (as their private JSON, credentials included) and cursors."""

    def __init__(self, path: Path) -> None:
        try:
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            for file in (path, path.with_name(path.name + "-wal")):
                if file.exists():
                    file.chmod(0o600)
            self._db = sqlite3.connect(
                path, timeout=30, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigurationError(f"cannot open the bridge database {path}: {exc}") from exc
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    # --- definitions ---------------------------------------------------------------------
    def create(self, name: str, spec: Mapping[str, Any]) -> None:
        """Store a new definition; `ConflictError` when the name is taken."""
        now = _now()
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO bridges (name, spec, created, updated) VALUES (?, ?, ?, ?)",
                    (name, json.dumps(spec), now, now),
                )
            except sqlite3.IntegrityError:
                raise ConflictError(f"a bridge named '{name}' already exists") from None

    def update(self, name: str, spec: Mapping[str, Any], *, reset_cursor: bool) -> None:
        """Replace a definition (and forget its cursor when `reset_cursor`), in one
        transaction; `NotFoundError` when there is none."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                changed = self._db.execute(
                    "UPDATE bridges SET spec = ?, updated = ? WHERE name = ?",
                    (json.dumps(spec), _now(), name),
                ).rowcount
                if reset_cursor:
                    self._db.execute("DELETE FROM cursors WHERE bridge = ?", (name,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        if not changed:
            raise NotFoundError(f"bridge '{name}' not found")

    def delete(self, name: str) -> None:
        """Forget a definition and its cursor; `NotFoundError` when there is none."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            changed = self._db.execute("DELETE FROM bridges WHERE name = ?", (name,)).rowcount
            self._db.execute("DELETE FROM cursors WHERE bridge = ?", (name,))
            self._db.execute("COMMIT")
        if not changed:
            raise NotFoundError(f"bridge '{name}' not found")

    def get(self, name: str) -> dict[str, Any]:
        """One definition; `NotFoundError` when there is none."""
        with self._lock:
            row = self._db.execute("SELECT spec FROM bridges WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFoundError(f"bridge '{name}' not found")
        return json.loads(row[0])

    def list(self) -> list[dict[str, Any]]:
        """Every definition, by name."""
        with self._lock:
            rows = self._db.execute("SELECT spec FROM bridges ORDER BY name").fetchall()
        return [json.loads(row[0]) for row in rows]

    # --- cursors -------------------------------------------------------------------------
    def cursor(self, bridge: str) -> dict[str, str]:
        """Every cursor entry of a bridge."""
        with self._lock:
            rows = self._db.execute(
                "SELECT key, value FROM cursors WHERE bridge = ?", (bridge,)
            ).fetchall()
        return dict(rows)

    def move_cursor(
        self, bridge: str, put: Mapping[str, str], remove: list[str] | None = None
    ) -> None:
        """Set and remove cursor entries in one transaction, on disk when this returns.

        Entries of a bridge deleted meanwhile are not written.
        """
        if not put and not remove:
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                exists = self._db.execute(
                    "SELECT 1 FROM bridges WHERE name = ?", (bridge,)
                ).fetchone()
                if exists:
                    self._db.executemany(
                        "INSERT OR REPLACE INTO cursors (bridge, key, value) VALUES (?, ?, ?)",
                        [(bridge, key, value) for key, value in put.items()],
                    )
                    self._db.executemany(
                        "DELETE FROM cursors WHERE bridge = ? AND key = ?",
                        [(bridge, key) for key in remove or ()],
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
