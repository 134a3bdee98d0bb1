"""The contract every bridge source keeps, run against each one's real server.

1. Every new file is one event, which the supervisor reads as naming that file in one of the
   service's own inputs.
2. What was committed is not handed out again after a reconnection; what was fetched and not
   committed is, with the same identities (dedup), so a crash can neither lose nor double.
3. A bridge that cannot work fails with an error naming the problem, never its secret.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oscar.bridges.base import Batch, EventSource, SourceContext
from oscar.bridges.manager import make_source
from oscar.bridges.store import BridgeStore
from oscar.errors import BackendError
from oscar.events.scope import function_config
from oscar.models.bridge import parse_bridge
from oscar.models.service import Service
from oscar.models.storage import MinIOProvider
from oscar.models.validation import parse_service
from supervisor.events import out_of_scope, parse_event
from tests.fixtures.bridges import Site, site_params

ROOM = 1000  # the backlog room the runner would offer


class Harness:
    """A source of one bridge, built as the runner builds it, on a private cursor store."""

    def __init__(self, site: Site, tmp_path: Path) -> None:
        self.site = site
        self.name = f"c{uuid.uuid4().hex[:8]}"
        self.service: Service = parse_service(site.service(self.name))
        site.prepare(self.name)
        self.store = BridgeStore(tmp_path / f"{self.name}.db")
        self.sources: list[EventSource] = []

    def source(self, bridge: dict[str, Any] | None = None) -> EventSource:
        """A new source for the bridge (the same cursor store each time), connected."""
        definition = parse_bridge(bridge or self.site.bridge(self.name, self.name))
        if not self.store.list():
            self.store.create(definition.name, definition.private())
        context = SourceContext(
            definition, self.service, self.store, MinIOProvider(endpoint="http://127.0.0.1:1")
        )
        source = make_source(context)
        self.sources.append(source)
        source.connect()
        return source

    def close(self) -> None:
        for source in self.sources:
            source.close()
        self.store.close()


@pytest.fixture
def harness(site: Site, tmp_path: Path) -> Iterator[Harness]:
    made = Harness(site, tmp_path)
    yield made
    made.close()


def collect(source: EventSource, count: int, timeout: float = 60) -> list[Batch]:
    """Fetch until the batches hold `count` events (fail after `timeout` seconds)."""
    batches: list[Batch] = []
    deadline = time.monotonic() + timeout
    stop = _never()
    while sum(len(b.events) for b in batches) < count:
        assert time.monotonic() < deadline, (
            f"{sum(len(b.events) for b in batches)} of {count} events within {timeout}s"
        )
        batches.append(source.fetch(stop, ROOM))
    return batches


def _never() -> Any:
    import threading

    return threading.Event()


def events(batches: list[Batch]) -> list[Any]:
    return [event for batch in batches for event in batch.events]


def drain(source: EventSource, fetches: int = 4) -> list[Any]:
    """What a few more fetches bring (each waits about one interval)."""
    return events([source.fetch(_never(), ROOM) for _ in range(fetches)])


@pytest.mark.parametrize("site", site_params(), indirect=True)
def test_each_new_file_is_one_event_naming_it_in_the_service_inputs(harness: Harness) -> None:
    source = harness.source()
    names = ["one.txt", "two words.txt", f"x-{uuid.uuid4().hex[:6]}.csv"]
    harness.site.drop(harness.name, names)
    batches = collect(source, len(names))
    got = events(batches)
    assert len(got) == len(names)
    assert len({e.dedup for e in got}) == len(names)
    config = function_config(harness.service)
    staged = set()
    for event in got:
        parsed = parse_event(event.event.encode(), config)
        assert parsed.is_storage, event.event
        assert out_of_scope(parsed, config) is None
        staged.add(parsed.file_name)
    assert staged == set(names)
    for batch in batches:
        source.commit(batch)
    assert drain(source) == []  # each file once


@pytest.mark.parametrize("site", site_params(), indirect=True)
def test_committed_events_stay_taken_and_uncommitted_come_back_the_same(
    harness: Harness,
) -> None:
    first = harness.source()
    harness.site.drop(harness.name, ["a.txt", "b.txt"])
    for batch in collect(first, 2):
        first.commit(batch)
    harness.site.drop(harness.name, ["c.txt", "d.txt"])
    fetched = events(collect(first, 2))  # taken, but the "crash" comes before the commit
    first.close()

    second = harness.source()
    again = events(collect(second, 2, timeout=90))  # SQS: after the visibility timeout
    assert sorted(e.dedup for e in again) == sorted(e.dedup for e in fetched)
    assert {e.subject.rsplit("/", 1)[-1] for e in again} == {"c.txt", "d.txt"}


@pytest.mark.parametrize("site", site_params(), indirect=True)
def test_a_broken_bridge_fails_clearly_without_showing_its_secret(harness: Harness) -> None:
    bridge, words = harness.site.broken(f"{harness.name}", harness.name)
    with pytest.raises(BackendError) as failure:
        harness.source(bridge)
    message = str(failure.value)
    for word in words:
        assert word in message, message
    for secret in (bridge.get("credentials") or {}).values():
        assert secret not in message
