"""SQLite registry of the embedded default: one file in the data directory, WAL journal.

Each write is one transaction with `synchronous=FULL`, so an acknowledged create/update/delete
survives `kill -9` and power loss. Services are stored as their full JSON document.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from oscar.errors import ConfigurationError, ServiceExistsError, ServiceNotFoundError
from oscar.models.service import Service
from oscar.registry.base import Registry

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS services (
    name        TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    spec        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL
)
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class SQLiteRegistry(Registry):
    """Registry backed by one SQLite database file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            # The database holds service tokens and secrets: private to this user from the
            # start (SQLite gives its -wal and -shm files the same mode).
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            self._db = sqlite3.connect(
                path, timeout=30, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except (OSError, sqlite3.Error) as exc:
            raise ConfigurationError(f"cannot open the registry database {path}: {exc}") from exc
        # One connection shared by the API's worker threads; sqlite3 needs us to serialise.
        self._lock = threading.Lock()

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise ConfigurationError(
                f"{self.path} was written by a newer oscar (schema {version} > {SCHEMA_VERSION})"
            )
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @staticmethod
    def _dump(service: Service) -> str:
        return service.model_dump_json(by_alias=True)

    def create(self, service: Service) -> None:
        now = _now()
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO services (name, owner, spec, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (service.name, service.owner, self._dump(service), now, now),
                )
            except sqlite3.IntegrityError:
                raise ServiceExistsError(service.name) from None

    def get(self, name: str) -> Service:
        with self._lock:
            row = self._db.execute("SELECT spec FROM services WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise ServiceNotFoundError(name)
        return Service.model_validate_json(row[0])

    def list(self) -> list[Service]:
        with self._lock:
            rows = self._db.execute("SELECT spec FROM services ORDER BY name").fetchall()
        return [Service.model_validate_json(spec) for (spec,) in rows]

    def update(self, service: Service) -> None:
        with self._lock:
            cursor = self._db.execute(
                "UPDATE services SET owner = ?, spec = ?, updated_at = ? WHERE name = ?",
                (service.owner, self._dump(service), _now(), service.name),
            )
        if cursor.rowcount == 0:
            raise ServiceNotFoundError(service.name)

    def delete(self, name: str) -> None:
        with self._lock:
            cursor = self._db.execute("DELETE FROM services WHERE name = ?", (name,))
        if cursor.rowcount == 0:
            raise ServiceNotFoundError(name)

    def read_setting(self, key: str) -> Any:
        with self._lock:
            row = self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def write_setting(self, key: str, value: Any) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()
