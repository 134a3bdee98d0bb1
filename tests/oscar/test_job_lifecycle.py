"""The job lifecycle through a real `oscar serve`: regressions of the review's findings.

Each test fails on the code before the executor contract: a deleted Pending job ran anyway;
SIGTERM or `kill -9` left scripts running and a restart ran the job a second time beside its
orphan; detached children outlived (or hung) their job; `/run` ignored the concurrency limit
and kept running after its client left.
"""

from __future__ import annotations

import random
import shlex
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.fixtures.harness_local import counting_script, run_marks
from tests.fixtures.processes import alive_with
from tests.fixtures.server import RunningServer
from tests.fixtures.services import minimal_service, unique_name
from tests.services.common import wait_until

pytestmark = pytest.mark.slow


def _sleeper() -> str:
    """A `sleep` argument no other process on this host uses (to find it in /proc)."""
    return f"{random.randint(1000, 9999)}.{random.randint(100000, 999999)}"


def _status(api: httpx.Client, service: str, job: str) -> str | None:
    jobs = api.get(f"/system/logs/{service}").json()["jobs"]
    return jobs[job]["status"] if job in jobs else None


def _job(api: httpx.Client, service: str) -> str:
    created = api.post(f"/job/{service}", content=b"x")
    assert created.status_code == 201, created.text
    return created.headers["x-oscar-job-name"]


def test_a_deleted_pending_job_neverrun_marks(
    start_oscar: Callable[..., RunningServer], tmp_path: Path
) -> None:
    server = start_oscar(extra_env={"OSCAR_MAX_CONCURRENT_JOBS": "1"})
    api, marks, hold = server.client(), tmp_path / "marks", _sleeper()
    name = unique_name("pend")
    script = counting_script(
        marks, f'if grep -q hold "$INPUT_FILE_PATH"; then exec sleep {hold}; fi\n'
    )
    assert api.post("/system/services", json=minimal_service(name, script=script)).is_success
    holder = api.post(f"/job/{name}", content=b'{"hold": 1}').headers["x-oscar-job-name"]
    wait_until(lambda: run_marks(marks, holder), timeout=30, what="the first job running")
    waiting = _job(api, name)
    summary = api.get(f"/system/logs/{name}").json()["jobs"][waiting]
    assert summary["status"] == "Pending" and summary["backend_id"] is None
    assert api.delete(f"/system/logs/{name}/{waiting}").status_code == 204
    assert api.delete(f"/system/logs/{name}/{holder}").status_code == 204
    wait_until(lambda: not alive_with(hold), timeout=30, what="the first job stopped")
    after = _job(api, name)  # the slot is free again: this one runs, the deleted one never
    wait_until(lambda: _status(api, name, after) == "Succeeded", timeout=30, what="next job")
    assert run_marks(marks, waiting) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
def test_a_restart_stops_the_job_before_running_it_again(
    start_oscar: Callable[..., RunningServer], tmp_path: Path, sig: int
) -> None:
    server = start_oscar()
    api, marks, hold, child = server.client(), tmp_path / "marks", _sleeper(), _sleeper()
    name = unique_name("restart")
    script = counting_script(marks, f"setsid sleep {child} >/dev/null 2>&1 &\nexec sleep {hold}\n")
    assert api.post("/system/services", json=minimal_service(name, script=script)).is_success
    job = _job(api, name)
    wait_until(lambda: run_marks(marks, job) == ["start"], timeout=30, what="the script started")
    wait_until(lambda: alive_with(child), timeout=10, what="the detached child started")
    server.stop(sig)
    if sig == signal.SIGTERM:  # a graceful stop kills the whole tree, detached child included
        assert alive_with(hold) == [] and alive_with(child) == []
    again = start_oscar(data_dir=server.data_dir, s3_port=server.s3_port)
    api = again.client()
    wait_until(lambda: run_marks(marks, job).count("start") == 2, timeout=30, what="re-run")
    assert "overlap" not in run_marks(marks, job)  # the first run was gone before the second began
    assert len(alive_with(hold)) == 1 and len(alive_with(child)) == 1
    wait_until(lambda: _status(api, name, job) == "Running", timeout=10, what="Running")
    assert api.delete(f"/system/services/{name}").status_code == 204
    wait_until(
        lambda: not alive_with(hold) and not alive_with(child),
        timeout=30,
        what="deleting the service stopped its job",
    )


def test_detached_children_die_with_their_job_and_cannot_hang_it(
    start_oscar: Callable[..., RunningServer],
) -> None:
    server = start_oscar(extra_env={"OSCAR_JOB_TIMEOUT": "60"})
    api = server.client()
    sub, sess, out = _sleeper(), _sleeper(), _sleeper()
    script = (
        f"(sleep {sub} >/dev/null 2>&1 &)\n"
        f"setsid sleep {sess} >/dev/null 2>&1 &\n"
        f"sleep {out} &\n"  # keeps the script's stdout open
        "echo done\n"
    )
    name = unique_name("daemon")
    assert api.post("/system/services", json=minimal_service(name, script=script)).is_success
    job = _job(api, name)
    wait_until(
        lambda: _status(api, name, job) in ("Succeeded", "Failed"),
        timeout=20,  # far below the job timeout: nothing may hang the job
        what="the job ended",
    )
    assert _status(api, name, job) == "Succeeded"
    assert alive_with(sub) == [] and alive_with(sess) == [] and alive_with(out) == []


def _overlap(spans: list[tuple[int, int]]) -> int:
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def test_concurrent_runs_are_bounded_and_refused_with_retry_after(
    start_oscar: Callable[..., RunningServer], tmp_path: Path
) -> None:
    spans = tmp_path / "spans"
    spans.mkdir()
    server = start_oscar(extra_env={"OSCAR_MAX_CONCURRENT_JOBS": "2", "OSCAR_SYNC_QUEUE_WAIT": "1"})
    api = server.client(timeout=60)
    name = unique_name("bounded")
    folder = shlex.quote(str(spans))
    script = (
        f'f={folder}/$JOB_UUID; echo "$(date +%s%N)" > "$f"; sleep 1.5; '
        'echo "$(date +%s%N)" >> "$f"; echo ok\n'
    )
    assert api.post("/system/services", json=minimal_service(name, script=script)).is_success
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def call() -> None:
        with httpx.Client(base_url=server.url, auth=api.auth, timeout=60) as client:
            answer = client.post(f"/run/{name}", content=b"x")
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=call) for _ in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    codes = sorted(a.status_code for a in answers)
    assert len(codes) == 30 and set(codes) <= {200, 429}, codes
    assert codes.count(200) >= 2 and codes.count(429) >= 1, codes
    refused = next(a for a in answers if a.status_code == 429)
    assert int(refused.headers["retry-after"]) >= 1
    recorded: list[tuple[int, int]] = []
    for path in spans.iterdir():
        start, end = (int(v) for v in path.read_text().split())
        recorded.append((start, end))
    assert len(recorded) == codes.count(200)
    assert _overlap(recorded) <= 2


def test_a_client_that_disconnects_cancels_its_run(
    start_oscar: Callable[..., RunningServer],
) -> None:
    server = start_oscar()
    api = server.client()
    hold = _sleeper()
    name = unique_name("gone")
    script = f"sleep {hold}\necho never\n"
    assert api.post("/system/services", json=minimal_service(name, script=script)).is_success
    with pytest.raises(httpx.ReadTimeout):
        server.client(timeout=httpx.Timeout(10, read=3)).post(f"/run/{name}", content=b"x")
    wait_until(lambda: not alive_with(hold), timeout=15, what="the abandoned run killed")
