"""SQLite job records: written (and fsynced) before an event is acknowledged."""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime
from pathlib import Path

from oscar.models.job import Job, JobStatus, utcnow

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    name TEXT PRIMARY KEY, service TEXT NOT NULL, status TEXT NOT NULL, event TEXT NOT NULL,
    backend TEXT NOT NULL, created TEXT NOT NULL, started TEXT, finished TEXT,
    exit_code INTEGER, reason TEXT NOT NULL, attempts INTEGER NOT NULL, dedup TEXT UNIQUE
);
CREATE INDEX IF NOT EXISTS jobs_by_service ON jobs (service, created);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status);
"""
_COLUMNS = (
    "name, service, status, event, backend, created, started, finished, exit_code, reason, attempts"
)


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _job(row: tuple) -> Job:
    name, service, status, event, backend, created, started, finished, code, reason, attempts = row
    return Job(
        name=name,
        service=service,
        status=JobStatus(status),
        event=event,
        backend=backend,
        created=datetime.fromisoformat(created),
        started=_time(started),
        finished=_time(finished),
        exit_code=code,
        reason=reason,
        attempts=attempts,
    )


class JobStore:
    """Job records in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def add(self, job: Job, dedup: str | None = None) -> bool:
        """Persist a new job; False when `dedup` was already recorded (a redelivered event)."""
        with self._lock:
            try:
                self._db.execute(
                    f"INSERT INTO jobs ({_COLUMNS}, dedup) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",  # noqa: S608
                    (
                        job.name,
                        job.service,
                        job.status.value,
                        job.event,
                        job.backend,
                        job.created.isoformat(),
                        None,
                        None,
                        None,
                        job.reason,
                        job.attempts,
                        dedup,
                    ),
                )
            except sqlite3.IntegrityError:
                return False
        return True

    def get(self, name: str) -> Job | None:
        """One job, or None."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE name = ?",  # noqa: S608
                (name,),
            ).fetchone()
        return _job(row) if row else None

    def list(self, service: str, status: JobStatus | None = None) -> list[Job]:
        """A service's jobs, oldest first."""
        query = f"SELECT {_COLUMNS} FROM jobs WHERE service = ?"  # noqa: S608
        args: list[object] = [service]
        if status is not None:
            query += " AND status = ?"
            args.append(status.value)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY created, name", args).fetchall()
        return [_job(r) for r in rows]

    def with_status(self, *statuses: JobStatus) -> list[Job]:
        """Every job in one of `statuses`, oldest first."""
        marks = ",".join("?" * len(statuses))
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE status IN ({marks}) ORDER BY created, name",  # noqa: S608
                [s.value for s in statuses],
            ).fetchall()
        return [_job(r) for r in rows]

    def mark_running(self, name: str) -> None:
        """Pending → Running (counts an attempt)."""
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET status = ?, started = ?, attempts = attempts + 1 WHERE name = ?",
                (JobStatus.RUNNING.value, utcnow().isoformat(), name),
            )

    def mark_pending(self, name: str, reason: str) -> None:
        """Back to Pending (a job interrupted by a restart is run again)."""
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET status = ?, started = NULL, reason = ? WHERE name = ?",
                (JobStatus.PENDING.value, reason, name),
            )

    def finish(self, name: str, status: JobStatus, exit_code: int | None, reason: str) -> None:
        """Record the end of a job."""
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET status = ?, finished = ?, exit_code = ?, reason = ? "
                "WHERE name = ?",
                (status.value, utcnow().isoformat(), exit_code, reason, name),
            )

    def delete(self, name: str) -> None:
        """Forget a job record."""
        with self._lock:
            self._db.execute("DELETE FROM jobs WHERE name = ?", (name,))
