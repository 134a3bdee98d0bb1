"""Group commit: writers waiting behind a commit share the next one, each on disk when it
returns, and one refused statement (a redelivered event) does not undo the others."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from oscar.jobs.store import JobStore
from oscar.models.job import Job, JobStatus
from tests.services import common


@pytest.fixture
def store(tmp_path: Path) -> Iterator[JobStore]:
    jobs = JobStore(tmp_path / "jobs.db")
    yield jobs
    jobs.close()


def _commits(store: JobStore) -> list[str]:
    seen: list[str] = []
    store._db.set_trace_callback(lambda sql: seen.append(sql) if sql == "COMMIT" else None)
    return seen


def _concurrent_adds(store: JobStore, dedups: list[str]) -> list[bool]:
    """One thread per add, all queued while a commit holds the database, then let go."""
    answers: list[bool | None] = [None] * len(dedups)

    def add(index: int) -> None:
        job = Job(name=f"svc-{index}", service="svc", event=f"event {index}")
        answers[index] = store.add(job, dedups[index])

    with store._lock:  # a commit under way
        threads = [threading.Thread(target=add, args=(i,)) for i in range(len(dedups))]
        for thread in threads:
            thread.start()
        # The first writer leads and waits for the database; the others queue behind it.
        common.wait_until(
            lambda: len(store._waiting) == len(dedups) - 1, timeout=10, what="writers queued"
        )
    for thread in threads:
        thread.join(10)
    assert all(answer is not None for answer in answers)
    return [bool(answer) for answer in answers]


def test_writers_queued_behind_a_commit_share_the_next_one(store: JobStore, tmp_path: Path) -> None:
    commits = _commits(store)
    assert _concurrent_adds(store, [f"d{i}" for i in range(20)]) == [True] * 20
    assert len(commits) == 2  # the leader's own, then the 19 that waited, together
    # On disk for any other reader once acknowledged.
    other = sqlite3.connect(tmp_path / "jobs.db")
    assert other.execute("SELECT COUNT(*) FROM jobs").fetchone() == (20,)
    other.close()


def test_a_refused_statement_leaves_the_rest_of_its_group(store: JobStore) -> None:
    store.add(Job(name="first", service="svc", event="e"), "seen")
    answers = _concurrent_adds(store, ["a", "b", "seen", "c", "d"])
    assert answers == [True, True, False, True, True]
    assert {j.name for j in store.summaries("svc")} == {
        "first",
        "svc-0",
        "svc-1",
        "svc-3",
        "svc-4",
    }


def test_a_write_sqlite_cannot_take_fails_alone_and_writing_goes_on(store: JobStore) -> None:
    """An exit code too large for SQLite fails its own write; before, the error escaped the
    committing writer and left every later write waiting for a commit that never came."""
    store.add(Job(name="a", service="svc", event="e"))
    store.add(Job(name="b", service="svc", event="e"))
    with pytest.raises(OverflowError):
        store.finish("a", JobStatus.FAILED, 2**70, "too large")
    finished = threading.Event()

    def later_write() -> None:
        store.finish("b", JobStatus.SUCCEEDED, 0, "")
        finished.set()

    threading.Thread(target=later_write, daemon=True).start()
    assert finished.wait(10), "a later write never committed"
    assert store.get("b").status == JobStatus.SUCCEEDED
    assert store.get("a").status == JobStatus.PENDING  # the refused write changed nothing
