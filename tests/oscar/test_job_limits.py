"""Through a real `oscar serve`: large and binary `/run` bodies, short `/run` failures, the
per-service job quota and the data directory's file modes."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.fixtures.server import RunningServer
from tests.fixtures.services import minimal_service, unique_name
from tests.services import common


def _service(api: httpx.Client, script: str) -> str:
    name = unique_name("lim")
    created = api.post("/system/services", json=minimal_service(name, script=script))
    assert created.status_code == 201, created.text
    return name


def test_large_and_binary_bodies_run(start_oscar: Callable[..., RunningServer]) -> None:
    server = start_oscar()
    api = server.client(timeout=60)
    script = 'wc -c < "$INPUT_FILE_PATH"\nwc -c < "$EVENT_FILE"\necho "event=${#EVENT}"\n'
    name = _service(api, script)
    body = json.dumps({"data": "x" * 200 * 1024}).encode()  # over Linux's 128 KiB per variable
    ran = api.post(f"/run/{name}", content=body)
    assert ran.status_code == 200, ran.text
    assert ran.text.split() == [str(len(body)), str(len(body)), "event=0"]
    binary = b"\x00\x01 not base64 \x00\xff"
    ran = api.post(f"/run/{name}", content=binary)
    assert ran.status_code == 200, ran.text
    assert ran.text.split()[0] == str(len(binary))
    small = api.post(f"/run/{name}", content=b'{"a": 1}')
    assert small.status_code == 200, small.text
    assert small.text.split() == ["8", "8", "event=8"]
    job = api.post(f"/job/{name}", content=body)
    assert job.status_code == 201
    job_name = job.headers["x-oscar-job-name"]
    common.wait_until(
        lambda: api.get(f"/system/logs/{name}").json()["jobs"][job_name]["status"] == "Succeeded",
        timeout=60,
        what="the large job succeeded",
    )


def test_run_failure_answers_only_the_scripts_output(
    start_oscar: Callable[..., RunningServer],
) -> None:
    server = start_oscar()
    api = server.client(timeout=60)
    script = "".join(f"echo line-{i}\n" for i in range(30)) + "echo last-words\nexit 3\n"
    name = _service(api, script)
    ran = api.post(f"/run/{name}", content=b"x")
    assert ran.status_code == 502
    assert ran.text.startswith("the service failed (exit code 3):\n")
    lines = ran.text.splitlines()
    assert lines[-1] == "last-words"
    assert "line-29" in lines and "line-5" not in lines
    assert str(server.data_dir) not in ran.text
    for internal in ("supervisor", "Traceback", "INFO", "ERROR", "Running the user script"):
        assert internal not in ran.text


def test_job_quota_per_service(start_oscar: Callable[..., RunningServer], tmp_path: Path) -> None:
    server = start_oscar(extra_env={"OSCAR_MAX_JOBS_PER_SERVICE": "2"})
    api = server.client()
    release = tmp_path / "release"
    name = _service(api, f"while [ ! -e {release} ]; do sleep 0.05; done\n")
    other = _service(api, "echo other")
    first = api.post(f"/job/{name}", content=b"1")
    second = api.post(f"/job/{name}", content=b"2")
    assert (first.status_code, second.status_code) == (201, 201)
    refused = api.post(f"/job/{name}", content=b"3")
    assert refused.status_code == 429
    assert "OSCAR_MAX_JOBS_PER_SERVICE" in refused.text
    assert float(refused.headers["retry-after"]) > 0
    assert api.post(f"/job/{other}", content=b"x").status_code == 201  # per service
    release.touch()
    common.wait_until(
        lambda: all(
            j["status"] == "Succeeded"
            for j in api.get(f"/system/logs/{name}").json()["jobs"].values()
        ),
        timeout=60,
        what="the two jobs ended",
    )
    # Ended jobs do not count.
    assert api.post(f"/job/{name}", content=b"4").status_code == 201


def test_existing_data_dir_and_databases_become_private(
    start_oscar: Callable[..., RunningServer], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    server = start_oscar(data_dir)
    api = server.client()
    name = _service(api, "echo CONFIDENTIAL-PAYLOAD")
    job = api.post(f"/job/{name}", content=b"CONFIDENTIAL-PAYLOAD-42")
    job_name = job.headers["x-oscar-job-name"]
    common.wait_until(
        lambda: api.get(f"/system/logs/{name}").json()["jobs"][job_name]["status"] == "Succeeded",
        timeout=60,
        what="the job succeeded",
    )
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert "it is now 0700" in server.log()
    databases = [
        *data_dir.glob("jobs.db*"),
        *data_dir.glob("oscar.db*"),
        *(data_dir / "s3").glob("objects.db*"),
    ]
    names = {path.name for path in databases}
    assert {"jobs.db", "jobs.db-wal", "oscar.db", "objects.db", "objects.db-wal"} <= names
    modes = {str(path): oct(stat.S_IMODE(path.stat().st_mode)) for path in databases}
    assert set(modes.values()) == {"0o600"}, modes


def test_failure_message_keeps_only_the_scripts_output() -> None:
    from oscar.api.invoke import failure_message

    log = (
        "2026-12-01T10:00:00+00:00 - oscar - INFO - embedded default: no container runtime\n"
        "2026-12-01 10:00:00,001 - supervisor - INFO - Saved the request body as event-file-1\n"
        "2026-12-01 10:00:00,002 - supervisor - INFO - Running the user script\n"
        "2026-12-01 10:00:00,003 - supervisor - INFO - script says hi\n"
        "2026-12-01 10:00:00,004 - supervisor - ERROR - the script failed with exit code 1\n"
        "Traceback (most recent call last):\n"
        '  File "/root/.pyenv/versions/3.11.7/lib/python3.11/subprocess.py", line 1\n'
        "2026-12-01 10:00:00,005 - supervisor - ERROR - unexpected supervisor error\n"
    )
    assert failure_message(1, log) == "the service failed (exit code 1):\nscript says hi\n"
    # The script never ran: only the exit code.
    crashed = (
        "2026-12-01 10:00:00,005 - supervisor - ERROR - unexpected supervisor error\n"
        "Traceback (most recent call last):\n"
        "OSError: [Errno 7] Argument list too long: '/bin/sh'\n"
    )
    assert failure_message(1, crashed) == "the service failed (exit code 1)\n"
