"""Job listings do not load event bodies; counts by several states; private database files."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from oscar.jobs.store import JobStore
from oscar.models.job import Job, JobStatus


@pytest.fixture
def store(tmp_path: Path) -> Iterator[JobStore]:
    jobs = JobStore(tmp_path / "jobs.db")
    yield jobs
    jobs.close()


def _fill(store: JobStore) -> None:
    for index in range(3):
        store.add(Job(name=f"svc-{index}", service="svc", event="E" * 1_000_000))
    store.add(Job(name="other-0", service="other", event="small"))
    store.mark_running("svc-1")
    store.finish("svc-2", JobStatus.SUCCEEDED, 0, "")


def test_listings_never_read_the_event_column(store: JobStore) -> None:
    _fill(store)
    read: list[str] = []

    def authorizer(action: int, table: str | None, column: str | None, *_: object) -> int:
        if action == sqlite3.SQLITE_READ and column:
            read.append(column)
        return sqlite3.SQLITE_OK

    store._db.set_authorizer(authorizer)
    summaries = store.summaries("svc")
    assert [j.name for j in summaries] == ["svc-0", "svc-1", "svc-2"]
    assert [j.status for j in store.summaries("svc", JobStatus.RUNNING)] == [JobStatus.RUNNING]
    assert [j.name for j in store.with_status(JobStatus.PENDING)] == ["svc-0", "other-0"]
    queued = store.queued("local")  # what the dispatcher reads every turn of its loop
    assert [j.name for j in queued] == ["svc-0", "other-0"]
    store.set_submitted("svc-0", "h-0")
    assert [j.name for j in store.in_flight("local")] == ["svc-0"]
    assert all(j.event == "" for j in [*summaries, *queued])
    assert "event" not in read
    store._db.set_authorizer(None)
    job = store.get("svc-0")
    assert job is not None and len(job.event) == 1_000_000  # a single job keeps its event


def test_count_by_states(store: JobStore) -> None:
    _fill(store)
    assert store.count("svc", JobStatus.PENDING) == 1
    assert store.count("svc", JobStatus.PENDING, JobStatus.RUNNING) == 2
    assert store.count_active("svc") == 2
    assert store.count("svc") == 3
    assert store.count("nobody") == 0


def test_database_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    path.touch(mode=0o644)
    path.chmod(0o644)
    jobs = JobStore(path)
    jobs.add(Job(name="a-0", service="a", event="secret"))
    files = list(tmp_path.glob("jobs.db*"))
    assert {f.name for f in files} >= {"jobs.db", "jobs.db-wal", "jobs.db-shm"}
    assert {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o600}
    jobs.close()
