"""The contract every bridge source keeps, run against each one's real server.

1. Every new file is one event, which the supervisor reads as naming that file in one of the
   service's own inputs.
2. What was committed is not handed out again after a reconnection; what was fetched and not
   committed is, with the same identities (dedup), so a crash can neither lose nor double.
3. A bridge that cannot work fails with an error naming the problem, never its secret.
"""

from __future__ import annotations

import uuid

import pytest

from oscar.errors import BackendError
from oscar.events.scope import function_config
from supervisor.events import out_of_scope, parse_event
from tests.fixtures.bridges import Harness, collect, drain, events, site_params


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
