"""End to end on the embedded default: apply, upload to the embedded S3, output, job logs."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from typing import Any

import pytest
from oscar_python.client import Client

from tests.fixtures.server import RunningServer
from tests.fixtures.services import EXAMPLES_DIR, minimal_service, unique_name
from tests.services import common

pytestmark = pytest.mark.slow


def _keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


def test_quick_start_flow(start_oscar: Callable[..., RunningServer]) -> None:
    server = start_oscar()
    client = Client(
        {
            "cluster_id": "local",
            "endpoint": server.url,
            "user": server.username,
            "password": server.password,
            "ssl": "False",
        }
    )
    assert (
        client.create_service(str(EXAMPLES_DIR / "word-count" / "word-count.yaml")).status_code
        == 201
    )
    s3 = server.s3()
    # Creating the service created its buckets and folders.
    assert "word-count" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.put_object(Bucket="word-count", Key="in/poem.txt", Body=b"the quick brown fox jumps")
    output = common.wait_until(
        lambda: "out/poem.txt.count" in _keys(s3, "word-count", "out/") and True,
        timeout=60,
        what="word-count output",
    )
    assert output
    body = s3.get_object(Bucket="word-count", Key="out/poem.txt.count")["Body"].read()
    assert body.strip() == b"5"
    api = server.client()
    jobs = api.get("/system/logs/word-count").json()["jobs"]
    assert len(jobs) == 1
    ((job_name, _),) = jobs.items()
    assert job_name.startswith("word-count-")
    common.wait_until(
        lambda: (
            api.get("/system/logs/word-count").json()["jobs"][job_name]["status"] == "Succeeded"
        ),
        timeout=30,
        what="job Succeeded",
    )
    log = api.get(f"/system/logs/word-count/{job_name}").text
    assert "no container runtime" in log
    assert "Counting words in poem.txt" in log
    stamped = api.get(f"/system/logs/word-count/{job_name}", params={"timestamps": "true"}).text
    assert stamped.splitlines()[0][:4].isdigit()


def test_job_and_run_endpoints(start_oscar: Callable[..., RunningServer]) -> None:
    server = start_oscar()
    api, anon = server.client(), server.client(auth=False)
    name = unique_name("inv")
    script = 'echo "got $(cat "$INPUT_FILE_PATH")"\n'
    assert (
        api.post("/system/services", json=minimal_service(name, script=script)).status_code == 201
    )
    token = api.get(f"/system/services/{name}").json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}

    assert anon.post(f"/job/{name}", content=b"x").status_code == 401
    assert anon.post(f"/job/{unique_name()}", content=b"x", headers=bearer).status_code == 404
    created = anon.post(f"/job/{name}", content=b"payload", headers=bearer)
    assert created.status_code == 201
    job_name = created.headers["x-oscar-job-name"]
    common.wait_until(
        lambda: api.get("/system/logs/" + name).json()["jobs"][job_name]["status"] == "Succeeded",
        timeout=60,
        what="async job",
    )
    assert "got payload" in api.get(f"/system/logs/{name}/{job_name}").text

    ran = anon.post(f"/run/{name}", content=b"hello", headers=bearer)
    assert ran.status_code == 200
    assert ran.text == "got hello\n"
    assert anon.post(f"/run/{name}", content=b"x").status_code == 401

    failing = unique_name("fail")
    api.post("/system/services", json=minimal_service(failing, script="exit 9\n"))
    job = api.post(f"/job/{failing}", content=b"x").headers["x-oscar-job-name"]
    record = common.wait_until(
        lambda: (
            (j := api.get(f"/system/logs/{failing}").json()["jobs"][job])["status"] == "Failed"
            and j
        ),
        timeout=60,
        what="failed job",
    )
    assert record["exit_code"] == 9
    assert "9" in record["reason"]
    assert api.post(f"/run/{failing}", content=b"x").status_code == 502

    assert api.delete(f"/system/logs/{failing}/{job}").status_code == 204
    assert api.get(f"/system/logs/{failing}/{job}").status_code == 404
    assert api.delete(f"/system/logs/{name}").status_code == 204  # succeeded ones
    assert api.get(f"/system/logs/{name}").json()["jobs"] == {}

    # Deleting a service deletes its jobs and their folders.
    jobs_dir = server.data_dir / "jobs"
    assert api.post(f"/job/{name}", content=b"again").status_code == 201
    common.wait_until(
        lambda: any(jobs_dir.glob(f"{name}-*")), timeout=30, what="job folder created"
    )
    assert api.delete(f"/system/services/{name}").status_code == 204
    assert not any(jobs_dir.glob(f"{name}-*"))


@pytest.mark.parametrize("total", [200, 1000])
def test_burst_survives_sigkill(start_oscar: Callable[..., RunningServer], total: int) -> None:
    """SIGKILL mid-burst, then a restart: every upload gives exactly one output and one
    Succeeded job."""
    first = start_oscar(extra_env={"OSCAR_MAX_CONCURRENT_JOBS": "4"})
    api = first.client()
    name = unique_name("burst")
    service = minimal_service(
        name,
        script='cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH").out"\n',
        input=[{"storage_provider": "minio.default", "path": f"{name}/in"}],
        output=[{"storage_provider": "minio.default", "path": f"{name}/out"}],
    )
    assert api.post("/system/services", json=service).status_code == 201
    s3 = first.s3()
    accepted = set()
    for index in range(total // 2):
        s3.put_object(Bucket=name, Key=f"in/f{index:04d}.txt", Body=f"file {index}".encode())
        accepted.add(index)
    first.stop(signal.SIGKILL)  # mid-burst: many jobs pending or running

    second = start_oscar(
        data_dir=first.data_dir, s3_port=first.s3_port, extra_env={"OSCAR_MAX_CONCURRENT_JOBS": "4"}
    )
    s3 = second.s3()
    for index in range(total // 2, total):
        s3.put_object(Bucket=name, Key=f"in/f{index:04d}.txt", Body=f"file {index}".encode())
    expected = {f"out/f{i:04d}.txt.out" for i in range(total)}
    common.wait_until(
        lambda: set(_keys(s3, name, "out/")) >= expected,
        timeout=300,
        interval=1,
        what=f"{total} outputs",
    )
    outputs = [k for k in _keys(s3, name, "out/") if k != "out/"]  # minus the folder marker
    assert sorted(outputs) == sorted(expected)  # nothing twice, nothing extra
    api = second.client()

    def all_succeeded() -> dict[str, Any] | None:
        jobs: dict[str, Any] = {}
        page = ""
        while True:
            answer = api.get(f"/system/logs/{name}", params={"page": page} if page else {}).json()
            jobs.update(answer["jobs"])
            page = answer["next_page"]
            if not page:
                break
        done = all(j["status"] == "Succeeded" for j in jobs.values())
        return jobs if done and len(jobs) == total else None

    jobs = common.wait_until(all_succeeded, timeout=120, interval=1, what=f"{total} succeeded jobs")
    assert len(jobs) == total
    assert json.dumps(jobs)  # serialisable as upstream clients expect


def test_readme_quick_start_runs_as_written(start_oscar: Callable[..., RunningServer]) -> None:
    import subprocess
    import sys

    from tests.fixtures.services import REPO_ROOT, readme_quick_start

    server = start_oscar(password="secret")
    program = (
        readme_quick_start()
        .replace("http://127.0.0.1:8080", server.url)
        .replace("http://127.0.0.1:9000", server.s3_endpoint)
    )
    result = subprocess.run(
        [sys.executable, "-c", program],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines == ["['Succeeded']", "b'4\\n'"]


def test_invocation_bodies_over_the_limit_get_413(
    start_oscar: Callable[..., RunningServer],
) -> None:
    server = start_oscar(extra_env={"OSCAR_MAX_BODY_BYTES": "1024"})
    api = server.client()
    name = unique_name("big")
    api.post("/system/services", json=minimal_service(name))
    assert api.post(f"/job/{name}", content=b"x" * 2048).status_code == 413
    assert api.post(f"/run/{name}", content=b"x" * 2048).status_code == 413
    assert api.get(f"/system/logs/{name}").json()["jobs"] == {}  # nothing was accepted
