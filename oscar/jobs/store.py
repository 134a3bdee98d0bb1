"""SQLite job records: written (and fsynced) before an event is acknowledged.

Every state change of the job lifecycle is one UPDATE guarded by the state it expects, so a
change that lost a race (the job was deleted or already ended) does nothing and says so.

Listings and the dispatcher's reads (`summaries`, `with_status`, `queued`, `in_flight`) never
load the event bodies, which may be many MiB each: their jobs have `event == ""`; `get` and
`events_of` load them. The database and its WAL
and SHM files are private to this user (0600).

Writes are group-committed: writers arriving while a commit is under way wait for it, and the
first of them then commits all of theirs in one transaction (one fsync). Every write still
returns only once its own transaction is on disk.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import threading
from datetime import datetime
from pathlib import Path

from oscar.jobs.base import JobRecords
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
# Columns added after the first release: (name, declaration), applied to older databases.
_ADDED_COLUMNS = (
    ("queued", "TEXT"),
    ("backend_id", "TEXT"),
    ("waiting", "TEXT NOT NULL DEFAULT ''"),
    ("owner", "TEXT NOT NULL DEFAULT ''"),
)
_COLUMNS = (
    "name, service, status, event, backend, created, started, finished, exit_code, reason, "
    "attempts, queued, backend_id, waiting, owner"
)
# Every column but `event`, in `_COLUMNS` order with an empty event in its place.
_LIGHT_COLUMNS = _COLUMNS.replace("event,", "'' AS event,")
_ACTIVE = (JobStatus.PENDING.value, JobStatus.RUNNING.value)


class _Write:
    """One statement waiting for its group's commit, and how it went."""

    __slots__ = ("args", "done", "error", "finished", "lead", "rowcount", "sql")

    def __init__(self, sql: str, args: tuple[object, ...]) -> None:
        self.sql = sql
        self.args = args
        self.done = threading.Event()
        self.lead = False  # this writer commits the next group
        self.finished = False
        self.rowcount = 0
        self.error: Exception | None = None


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _job(row: tuple) -> Job:
    (name, service, status, event, backend, created, started, finished, code, reason, attempts,
     queued, backend_id, waiting, owner) = row  # fmt: skip
    return Job(
        name=name,
        service=service,
        status=JobStatus(status),
        event=event,
        backend=backend,
        created=datetime.fromisoformat(created),
        queued_at=_time(queued),
        started_at=_time(started),
        finished_at=_time(finished),
        exit_code=code,
        reason=reason,
        attempts=attempts,
        backend_id=backend_id,
        waiting_reason=waiting,
        owner=owner,
    )


class JobStore(JobRecords):
    """Job records in one SQLite file; safe to use from several threads."""

    def __init__(self, path: Path) -> None:
        # Job events are private: the file exists 0600 before SQLite opens it (SQLite gives its
        # -wal and -shm files the database's mode), and older files are tightened.
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if file.exists() and stat.S_IMODE(file.stat().st_mode) & 0o077:
                file.chmod(0o600)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        present = {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}
        for column, declaration in _ADDED_COLUMNS:
            if column not in present:
                self._db.execute(f"ALTER TABLE jobs ADD COLUMN {column} {declaration}")
        self._db.execute("CREATE INDEX IF NOT EXISTS jobs_by_backend ON jobs (backend, status)")
        self._lock = threading.Lock()  # the connection
        self._queue_lock = threading.Lock()  # the writes waiting for a commit
        self._waiting: list[_Write] = []
        self._leading = False

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def _write(self, sql: str, args: tuple[object, ...]) -> int:
        """Run one write in the next group commit; its row count once it is on disk."""
        write = _Write(sql, args)
        with self._queue_lock:
            self._waiting.append(write)
            if not self._leading:
                self._leading = write.lead = True
        if not write.lead:
            write.done.wait()  # committed by another writer, or made the next leader
        if not write.finished:
            self._commit_group()
        if write.error is not None:
            raise write.error
        return write.rowcount

    def _commit_group(self) -> None:
        """Commit every waiting write in one transaction, then pass the lead on."""
        with self._queue_lock:
            group, self._waiting = self._waiting, []
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                for write in group:
                    try:
                        write.rowcount = self._db.execute(write.sql, write.args).rowcount
                    except (sqlite3.IntegrityError, sqlite3.InterfaceError, OverflowError) as exc:
                        # Refused (a constraint) or never run (a value SQLite cannot take):
                        # this statement only; the transaction goes on.
                        write.error = exc
                self._db.execute("COMMIT")
            except Exception as exc:  # the group failed (disk full, I/O): none of it is stored
                with contextlib.suppress(sqlite3.Error):
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                for write in group:
                    write.error = exc
        # Whatever happened, every writer of the group hears of it and the lead passes on.
        for write in group:
            write.finished = True
            write.done.set()
        with self._queue_lock:
            if self._waiting:
                self._waiting[0].lead = True
                self._waiting[0].done.set()
            else:
                self._leading = False

    def _update(self, sql: str, args: tuple[object, ...]) -> bool:
        return self._write(sql, args) > 0

    def _select(
        self, where: str, args: list[object], limit: int | None = None, *, events: bool = True
    ) -> list[Job]:
        columns = _COLUMNS if events else _LIGHT_COLUMNS
        query = f"SELECT {columns} FROM jobs WHERE {where} ORDER BY created, rowid"  # noqa: S608
        if limit is not None:
            query += f" LIMIT {int(limit)}"
        with self._lock:
            rows = self._db.execute(query, args).fetchall()
        return [_job(r) for r in rows]

    def add(self, job: Job, dedup: str | None = None) -> bool:
        """Persist a new job (usually Pending; an event refused outright is recorded Failed, with
        its times); False when `dedup` was already recorded (a redelivered event)."""
        queued = (job.queued_at or job.created).isoformat()
        try:
            self._write(
                f"INSERT INTO jobs ({_COLUMNS}, dedup) "  # noqa: S608
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    job.name,
                    job.service,
                    job.status.value,
                    job.event,
                    job.backend,
                    job.created.isoformat(),
                    job.started_at.isoformat() if job.started_at else None,
                    job.finished_at.isoformat() if job.finished_at else None,
                    job.exit_code,
                    job.reason,
                    job.attempts,
                    queued,
                    None,
                    "",
                    job.owner,
                    dedup,
                ),
            )
        except sqlite3.IntegrityError:
            return False
        return True

    def get(self, name: str) -> Job | None:
        """One job, or None."""
        found = self._select("name = ?", [name])
        return found[0] if found else None

    def list(self, service: str, status: JobStatus | None = None) -> list[Job]:
        """A service's jobs, oldest first."""
        if status is None:
            return self._select("service = ?", [service])
        return self._select("service = ? AND status = ?", [service, status.value])

    def summaries(self, service: str, status: JobStatus | None = None) -> list[Job]:
        """A service's jobs, oldest first, without their event bodies (`event == ""`)."""
        if status is None:
            return self._select("service = ?", [service], events=False)
        return self._select("service = ? AND status = ?", [service, status.value], events=False)

    def count(self, service: str, *statuses: JobStatus) -> int:
        """How many of a service's jobs are in one of `statuses` (all of its jobs when none is
        given), without loading them."""
        where, args = "service = ?", [service]
        if statuses:
            where += f" AND status IN ({','.join('?' * len(statuses))})"
            args += [s.value for s in statuses]
        with self._lock:
            (n,) = self._db.execute(
                f"SELECT COUNT(*) FROM jobs WHERE {where}",  # noqa: S608
                args,
            ).fetchone()
        return int(n)

    def counts(self) -> dict[str, dict[str, int]]:
        """Jobs per service and status, `{service: {status: n}}`, without loading any."""
        with self._lock:
            rows = self._db.execute(
                "SELECT service, status, COUNT(*) FROM jobs GROUP BY service, status"
            ).fetchall()
        found: dict[str, dict[str, int]] = {}
        for service, status, n in rows:
            found.setdefault(service, {})[status] = int(n)
        return found

    def count_active(self, service: str) -> int:
        """How many of a service's jobs have not ended (Pending or Running)."""
        return self.count(service, JobStatus.PENDING, JobStatus.RUNNING)

    def with_status(self, *statuses: JobStatus) -> list[Job]:
        """Every job in one of `statuses`, oldest first, without event bodies."""
        marks = ",".join("?" * len(statuses))
        return self._select(f"status IN ({marks})", [s.value for s in statuses], events=False)

    def queued(
        self, backend: str, limit: int | None = None, before: datetime | None = None
    ) -> list[Job]:
        """Pending jobs of `backend` not yet handed to it, oldest first (at most `limit`; only
        those queued before `before` when given), without event bodies (`events_of`)."""
        where = "backend = ? AND status = ? AND backend_id IS NULL"
        args: list[object] = [backend, JobStatus.PENDING.value]
        if before is not None:
            where += " AND queued < ?"
            args.append(before.isoformat())
        return self._select(where, args, limit, events=False)

    def events_of(self, names: list[str]) -> dict[str, str]:
        """The event bodies of the named jobs (those still recorded)."""
        found: dict[str, str] = {}
        for start in range(0, len(names), 500):  # SQLite's bound on host parameters
            part = names[start : start + 500]
            marks = ",".join("?" * len(part))
            with self._lock:
                found.update(
                    self._db.execute(
                        f"SELECT name, event FROM jobs WHERE name IN ({marks})",  # noqa: S608
                        part,
                    ).fetchall()
                )
        return found

    def in_flight(self, backend: str) -> list[Job]:
        """Jobs `backend` accepted that have not ended, without event bodies."""
        return self._select(
            "backend = ? AND status IN (?, ?) AND backend_id IS NOT NULL",
            [backend, *_ACTIVE],
            events=False,
        )

    def set_submitted(self, name: str, backend_id: str) -> bool:
        """Record the backend's handle of a queued job; False if the job is gone meanwhile."""
        return self._update(
            "UPDATE jobs SET backend_id = ?, waiting = '' "
            "WHERE name = ? AND status = ? AND backend_id IS NULL",
            (backend_id, name, JobStatus.PENDING.value),
        )

    def set_waiting(self, name: str, reason: str) -> bool:
        """Why submitted work has not started yet."""
        return self._update(
            "UPDATE jobs SET waiting = ? WHERE name = ? AND status = ?",
            (reason, name, JobStatus.PENDING.value),
        )

    def mark_running(self, name: str) -> bool:
        """Pending → Running (counts an attempt; the run timeout starts now)."""
        return self._update(
            "UPDATE jobs SET status = ?, started = ?, waiting = '', attempts = attempts + 1 "
            "WHERE name = ? AND status = ?",
            (JobStatus.RUNNING.value, utcnow().isoformat(), name, JobStatus.PENDING.value),
        )

    def requeue(self, name: str, reason: str) -> bool:
        """Back to Pending and not submitted (a job stopped by a restart is run again)."""
        return self._update(
            "UPDATE jobs SET status = ?, started = NULL, backend_id = NULL, waiting = '', "
            "queued = ?, reason = ? WHERE name = ? AND status IN (?, ?)",
            (JobStatus.PENDING.value, utcnow().isoformat(), reason, name, *_ACTIVE),
        )

    def finish(self, name: str, status: JobStatus, exit_code: int | None, reason: str) -> bool:
        """Record the end of a job that had not ended yet (a job never seen running gets its
        start time too, so that every ended job has both)."""
        now = utcnow().isoformat()
        return self._update(
            "UPDATE jobs SET status = ?, finished = ?, started = COALESCE(started, ?), "
            "exit_code = ?, reason = ?, waiting = '' WHERE name = ? AND status IN (?, ?)",
            (status.value, now, now, exit_code, reason, name, *_ACTIVE),
        )

    def delete(self, name: str) -> Job | None:
        """Forget a job record; return it as it was (None if there was none)."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE name = ?",  # noqa: S608
                (name,),
            ).fetchone()
            self._db.execute("DELETE FROM jobs WHERE name = ?", (name,))
        return _job(row) if row else None
