"""Bridges in a real `oscar serve`: files become jobs and outputs exactly once, whatever happens
to the control plane; a broken bridge harms no other; a busy service pauses its bridges."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.bridges import (
    DCacheSite,
    Site,
    SqsSite,
    WebDavSite,
    aws_notification,
    output_of,
    site_params,
)
from tests.fixtures.server import RunningServer
from tests.fixtures.services import unique_name
from tests.services import common

ENV = {"OSCAR_MAX_CONCURRENT_JOBS": "4"}


def all_jobs(api: httpx.Client, service: str) -> dict[str, Any]:
    """Every job record of the service, across pages."""
    jobs: dict[str, Any] = {}
    page = ""
    while True:
        answer = api.get(f"/system/logs/{service}", params={"page": page} if page else {})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        jobs.update(body["jobs"])
        page = body["next_page"]
        if not page:
            return jobs


def outputs(server: RunningServer, service: str) -> list[str]:
    """The output keys of the service (on the control plane's own store), repeats included."""
    s3 = server.s3()
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=f"{service}-out"):
        keys += [o["Key"] for o in page.get("Contents", []) if o["Key"] != "out/"]
    return keys


def deploy(server: RunningServer, site: Site, name: str, **bridge: Any) -> httpx.Client:
    api = server.client()
    site.prepare(name)
    created = api.post("/system/services", json=site.service(name))
    assert created.status_code == 201, created.text
    made = api.post("/system/bridges", json=site.bridge(f"{name}-b", name, **bridge))
    assert made.status_code == 201, made.text
    return api


def wait_for_all(server: RunningServer, name: str, names: list[str], timeout: float) -> None:
    """Until every input has its output and a Succeeded job; then exactly one of each."""
    api = server.client()
    expected = sorted(output_of(n) for n in names)
    try:
        common.wait_until(
            lambda: set(outputs(server, name)) >= set(expected),
            timeout=timeout,
            interval=1,
            what=f"{len(names)} outputs",
        )
    except common.ServiceUnavailableError as exc:
        raise AssertionError(f"{exc}\n{_diagnosis(server, name, names)}") from None

    def succeeded() -> dict[str, Any] | None:
        jobs = all_jobs(api, name)
        done = all(j["status"] == "Succeeded" for j in jobs.values())
        return jobs if done and len(jobs) >= len(names) else None

    jobs = common.wait_until(succeeded, timeout=120, interval=1, what="every job Succeeded")
    assert len(jobs) == len(names)  # one job per file: none lost, none doubled
    assert sorted(outputs(server, name)) == expected


def _diagnosis(server: RunningServer, name: str, names: list[str]) -> str:
    """What a failed wait shows: the jobs by status, the bridges, the server's last lines."""
    api = server.client()
    jobs = all_jobs(api, name)
    states: dict[str, int] = {}
    for job in jobs.values():
        states[job["status"]] = states.get(job["status"], 0) + 1
    missing = sorted(set(output_of(n) for n in names) - set(outputs(server, name)))
    bridges = [(b["name"], b["status"]) for b in api.get("/system/bridges").json()]
    tail = "\n".join(server.log().splitlines()[-60:])
    return f"jobs {states}; missing {missing[:10]}; bridges {bridges}\nserver log:\n{tail}"


@pytest.mark.slow
@pytest.mark.parametrize("site", site_params("webdav", "minio", "kafka", "sqs"), indirect=True)
def test_a_thousand_files_through_a_kill_and_a_downtime_give_one_job_and_output_each(
    site: Site, start_oscar: Callable[..., RunningServer]
) -> None:
    """1,000 files: 400 while the control plane runs, killed with SIGKILL while it takes them
    in; 300 while it is down; 300 after it restarted."""
    name = unique_name(site.kind[:3])
    names = [f"f{i:04d}.txt" for i in range(1000)]
    first = start_oscar(extra_env=ENV)
    # Listing a folder of a thousand files takes WsgiDAV a while: once a second is enough.
    api = deploy(first, site, name, **({"interval": 1} if site.kind == "webdav" else {}))
    site.drop(name, names[:400])
    common.wait_until(
        lambda: len(all_jobs(api, name)) >= 40, timeout=120, interval=0.2, what="jobs recorded"
    )
    first.stop(signal.SIGKILL)  # mid-stream: some recorded, some not, a cursor behind
    site.drop(name, names[400:700])  # while nothing listens
    second = start_oscar(data_dir=first.data_dir, s3_port=first.s3_port, extra_env=ENV)
    site.drop(name, names[700:])
    wait_for_all(second, name, names, timeout=420)
    status = second.client().get(f"/system/bridges/{name}-b").json()["status"]
    assert status["state"] in ("running", "paused"), status


@pytest.mark.slow
@pytest.mark.webdav
def test_dcache_events_resume_after_a_restart(
    webdav: Any, dcache_standin: Any, start_oscar: Callable[..., RunningServer]
) -> None:
    """dCache keeps the channel's events while the bridge is away: the stream is reopened
    after the last recorded event (`Last-Event-ID`), and nothing runs twice."""
    site = DCacheSite(server=webdav, standin=dcache_standin)
    name = unique_name("dc")
    names = [f"f{i:03d}.txt" for i in range(60)]
    first = start_oscar(extra_env=ENV)
    api = deploy(first, site, name)
    common.wait_until(lambda: dcache_standin.streams_open, timeout=30, what="the event stream")
    site.drop(name, names[:30])
    common.wait_until(
        lambda: len(all_jobs(api, name)) == 30, timeout=60, interval=0.2, what="30 jobs"
    )
    first.stop(signal.SIGTERM)
    site.drop(name, names[30:])  # dCache keeps these on the channel
    second = start_oscar(data_dir=first.data_dir, s3_port=first.s3_port, extra_env=ENV)
    wait_for_all(second, name, names, timeout=120)
    assert dcache_standin.channel_count() == 1  # the same channel, not a new one
    assert dcache_standin.resumed_from[0] is None
    assert dcache_standin.resumed_from[-1] is not None  # resumed after an event id


@pytest.mark.webdav
def test_a_broken_bridge_retries_on_its_own_and_harms_no_other(
    webdav: Any, start_oscar: Callable[..., RunningServer]
) -> None:
    site = WebDavSite(server=webdav)
    server = start_oscar(extra_env={**ENV, "OSCAR_BRIDGE_RETRY_MAX": "2"})
    good, bad = unique_name("ok"), unique_name("ko")
    api = deploy(server, site, good)
    site.prepare(bad)
    assert api.post("/system/services", json=site.service(bad)).status_code == 201
    broken, words = site.broken(f"{bad}-b", bad)
    assert api.post("/system/bridges", json=broken).status_code == 201
    site.drop(good, ["a.txt", "b.txt", "c.txt"])
    site.drop(bad, ["x.txt"])
    wait_for_all(server, good, ["a.txt", "b.txt", "c.txt"], timeout=60)

    def failing_again() -> dict[str, Any] | None:
        status = api.get(f"/system/bridges/{bad}-b").json()["status"]
        return status if status["state"] == "error" and status["errors"] >= 3 else None

    status = common.wait_until(failing_again, timeout=30, what="the broken bridge retrying")
    assert all(word in status["message"] for word in words), status
    assert all_jobs(api, bad) == {}
    # Without the wrong credentials (the provider's are used), the same bridge recovers and
    # takes what waited. (Left out, they would be kept: `{}` removes them.)
    fixed = {**site.bridge(f"{bad}-b", bad), "credentials": {}}
    assert api.put(f"/system/bridges/{bad}-b", json=fixed).status_code == 200
    wait_for_all(server, bad, ["x.txt"], timeout=60)
    assert "wrong-pw" not in server.log()


@pytest.mark.webdav
def test_a_busy_service_pauses_its_bridge_and_nothing_is_dropped(
    webdav: Any, start_oscar: Callable[..., RunningServer], tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    script = f'while [ ! -e "{gate}" ]; do sleep 0.05; done\n' + (
        'cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH").out"\n'
    )
    site = WebDavSite(server=webdav)
    server = start_oscar(extra_env={"OSCAR_MAX_CONCURRENT_JOBS": "1"})
    name = unique_name("bp")
    api = server.client()
    site.prepare(name)
    assert api.post("/system/services", json=site.service(name, script=script)).status_code == 201
    bridge = site.bridge(f"{name}-b", name, max_pending=3)
    assert api.post("/system/bridges", json=bridge).status_code == 201
    names = [f"f{i:02d}.txt" for i in range(20)]
    site.drop(name, names)

    def paused() -> dict[str, Any] | None:
        status = api.get(f"/system/bridges/{name}-b").json()["status"]
        return status if status["state"] == "paused" else None

    status = common.wait_until(paused, timeout=60, what="the bridge paused")
    assert "max_pending 3" in status["message"]
    recorded = all_jobs(api, name)
    assert 3 <= len(recorded) <= 4  # three waiting, at most one running; the rest wait
    assert status["lag"] == len(names) - len(recorded)  # the rest wait at the source
    gate.touch()
    wait_for_all(server, name, names, timeout=120)


@pytest.mark.sqs
@pytest.mark.minio
def test_messages_that_are_no_event_become_failed_jobs_saying_why(
    sqs: Any, minio: Any, start_oscar: Callable[..., RunningServer]
) -> None:
    site = SqsSite(sqs=sqs, minio=minio)
    server = start_oscar(extra_env=ENV)
    name = unique_name("sq")
    api = deploy(server, site, name)
    site.send(
        name,
        [
            "hello, not an event",
            json.dumps(aws_notification("another-bucket", "in/x.txt", 3, "01")),
            json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": name}),
        ],
    )
    job = common.wait_until(
        lambda: next(iter(all_jobs(api, name).values()), None), timeout=60, what="a job"
    )
    assert job["status"] == "Failed"
    assert "not an S3 event notification" in job["reason"]
    [job_name] = all_jobs(api, name)
    log = api.get(f"/system/logs/{name}/{job_name}").text
    assert "not an S3 event notification" in log

    def counted() -> dict[str, Any] | None:
        status = api.get(f"/system/bridges/{name}-b").json()["status"]
        return status if status["refused"] == 1 and status["ignored"] >= 2 else None

    common.wait_until(counted, timeout=30, what="the refused and ignored counts")
    assert len(all_jobs(api, name)) == 1
