"""Stage-in and stage-out against the real MinIO and WebDAV servers of the test environment."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.fixtures.server import clean_env
from tests.supervisor.helpers import (
    b64,
    fresh_buckets,
    minio_event,
    minio_s3,
    object_keys,
    run_supervisor,
)

pytestmark = [pytest.mark.minio]


def _default_provider(minio: Any) -> dict[str, Any]:
    return {"endpoint": minio.endpoint, "region": "us-east-1", "verify": False}


def _credentials_env(minio: Any) -> dict[str, str]:
    return {"MINIO_ACCESS_KEY": minio.access_key, "MINIO_SECRET_KEY": minio.secret_key}


@pytest.fixture
def buckets(minio: Any) -> dict[str, str]:
    """Fresh input and output buckets."""
    return fresh_buckets(minio, "in", "out", "extra")


def test_minio_event_produces_filtered_outputs(
    minio: Any, buckets: dict[str, str], tmp_path: Path
) -> None:
    minio_s3(minio).put_object(
        Bucket=buckets["in"], Key="in/my photo.txt", Body=b"three little words"
    )
    config = {
        "name": "svc",
        "input": [{"storage_provider": "minio.default", "path": f"{buckets['in']}/in"}],
        "output": [
            {"storage_provider": "minio.default", "path": f"{buckets['out']}/res"},
            {
                "storage_provider": "minio.default",
                "path": f"{buckets['extra']}/only-counts",
                "suffix": [".count"],
                "prefix": ["my"],
            },
        ],
        "storage_providers": {"minio": {"default": _default_provider(minio)}},
    }
    script = (
        'name=$(basename "$INPUT_FILE_PATH")\n'
        'wc -w < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/$name.count"\n'
        'mkdir -p "$TMP_OUTPUT_DIR/logs/deep"\n'
        'echo "$STORAGE_OBJECT_KEY" > "$TMP_OUTPUT_DIR/logs/deep/key.txt"\n'
        'echo "$EVENT_TIME" > "$TMP_OUTPUT_DIR/other.count"\n'
    )
    result = run_supervisor(
        config,
        script,
        minio_event(buckets["in"], "in/my photo.txt"),
        tmp_path=tmp_path,
        env=_credentials_env(minio),
    )
    assert result.returncode == 0, result.stderr.decode()
    s3 = minio_s3(minio)
    assert object_keys(minio, buckets["out"]) == {
        "res/my photo.txt.count",
        "res/logs/deep/key.txt",
        "res/other.count",
    }
    body = s3.get_object(Bucket=buckets["out"], Key="res/my photo.txt.count")["Body"].read()
    assert body.strip() == b"3"
    key = s3.get_object(Bucket=buckets["out"], Key="res/logs/deep/key.txt")["Body"].read()
    assert key.strip() == b"in/my photo.txt"
    assert object_keys(minio, buckets["extra"]) == {"only-counts/my photo.txt.count"}
    # A storage event's response is the script's output (none here).
    assert result.stdout == b""


def test_credentials_from_mounted_secret(
    minio: Any, buckets: dict[str, str], tmp_path: Path
) -> None:
    secret = tmp_path / "secrets" / "minio.default"
    secret.mkdir(parents=True)
    (secret / "accessKey").write_text(minio.access_key)
    (secret / "secretKey").write_text(minio.secret_key)
    minio_s3(minio).put_object(Bucket=buckets["in"], Key="in/a.txt", Body=b"x")
    config = {
        "input": [{"storage_provider": "minio.default", "path": f"{buckets['in']}/in"}],
        "output": [{"storage_provider": "minio", "path": f"{buckets['out']}/o"}],
        "storage_providers": {"minio": {"default": _default_provider(minio)}},
    }
    result = run_supervisor(
        config,
        'cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/"',
        minio_event(buckets["in"], "in/a.txt"),
        tmp_path=tmp_path,
        env={"PROVIDER_SECRETS_DIR": str(tmp_path / "secrets")},
    )
    assert result.returncode == 0, result.stderr.decode()
    assert object_keys(minio, buckets["out"]) == {"o/a.txt"}


def test_user_isolation_writes_to_the_event_bucket(
    minio: Any, buckets: dict[str, str], tmp_path: Path
) -> None:
    minio_s3(minio).put_object(Bucket=buckets["extra"], Key="in/u.txt", Body=b"user data")
    config = {
        "isolation_level": "USER",
        "bucket_list": [buckets["extra"]],
        "output": [{"storage_provider": "minio.default", "path": f"{buckets['out']}/out"}],
        "storage_providers": {"minio": {"default": _default_provider(minio)}},
    }
    result = run_supervisor(
        config,
        'cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/result.txt"',
        minio_event(buckets["extra"], "in/u.txt"),
        tmp_path=tmp_path,
        env=_credentials_env(minio),
    )
    assert result.returncode == 0, result.stderr.decode()
    assert "out/result.txt" in object_keys(minio, buckets["extra"])
    assert object_keys(minio, buckets["out"]) == set()


def test_aws_s3_event_through_the_s3_api(
    minio: Any, buckets: dict[str, str], tmp_path: Path
) -> None:
    # Amazon S3 itself cannot run here: the S3 provider talks to the real MinIO through
    # AWS_ENDPOINT_URL, exercising the `s3` code path (no endpoint in the provider).
    minio_s3(minio).put_object(Bucket=buckets["in"], Key="data/sample one.csv", Body=b"a,b\n")
    event = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventTime": "2026-11-23T09:00:00.000Z",
                "s3": {
                    "bucket": {"name": buckets["in"]},
                    "object": {"key": "data/sample+one.csv"},
                },
            }
        ]
    }
    credentials = {"access_key": minio.access_key, "secret_key": minio.secret_key}
    config = {
        "input": [{"storage_provider": "s3.aws", "path": f"{buckets['in']}/data"}],
        "output": [{"storage_provider": "s3.aws", "path": f"{buckets['out']}/csv"}],
        "storage_providers": {"s3": {"aws": {**credentials, "region": "us-east-1"}}},
    }
    result = run_supervisor(
        config,
        'cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/"',
        json.dumps(event).encode(),
        tmp_path=tmp_path,
        env={"AWS_ENDPOINT_URL": minio.endpoint},
    )
    assert result.returncode == 0, result.stderr.decode()
    assert object_keys(minio, buckets["out"]) == {"csv/sample one.csv"}


def test_missing_object_fails_naming_it(
    minio: Any, buckets: dict[str, str], tmp_path: Path
) -> None:
    config = {
        "input": [{"storage_provider": "minio.default", "path": f"{buckets['in']}/in"}],
        "storage_providers": {"minio": {"default": _default_provider(minio)}},
    }
    result = run_supervisor(
        config,
        "echo never",
        minio_event(buckets["in"], "in/ghost.txt"),
        tmp_path=tmp_path,
        env=_credentials_env(minio),
    )
    assert result.returncode == 3
    assert f"{buckets['in']}/in/ghost.txt".encode() in result.stderr
    assert b"never" not in result.stderr


def test_wrong_credentials_fail_clearly(
    minio: Any, buckets: dict[str, str], tmp_path: Path
) -> None:
    minio_s3(minio).put_object(Bucket=buckets["in"], Key="in/a.txt", Body=b"x")
    config = {
        "input": [{"storage_provider": "minio.default", "path": f"{buckets['in']}/in"}],
        "storage_providers": {"minio": {"default": _default_provider(minio)}},
    }
    result = run_supervisor(
        config,
        "echo never",
        minio_event(buckets["in"], "in/a.txt"),
        tmp_path=tmp_path,
        env={"MINIO_ACCESS_KEY": "nobody", "MINIO_SECRET_KEY": "wrong-secret-key"},
    )
    assert result.returncode == 3
    assert b"cannot download" in result.stderr
    assert b"wrong-secret-key" not in result.stderr


def test_unwritable_output_fails_with_stage_out_code(
    minio: Any, buckets: dict[str, str], tmp_path: Path
) -> None:
    config = {
        "output": [{"storage_provider": "minio.default", "path": "no-such-bucket-x1/out"}],
        "storage_providers": {"minio": {"default": _default_provider(minio)}},
    }
    result = run_supervisor(
        config,
        'echo data > "$TMP_OUTPUT_DIR/r.txt"',
        b"plain body",
        tmp_path=tmp_path,
        env=_credentials_env(minio),
    )
    assert result.returncode == 4
    assert b"no-such-bucket-x1" in result.stderr


@pytest.mark.slow
def test_large_object_streams_with_bounded_memory(
    minio: Any, buckets: dict[str, str], tmp_path: Path
) -> None:
    size = 200 * 1024 * 1024
    source = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with source.open("wb") as handle:
        block = bytes(range(256)) * 4096  # 1 MiB, not all zeros
        for index in range(size // len(block)):
            chunk = block[index % 256 :] + block[: index % 256]
            handle.write(chunk)
            digest.update(chunk)
    minio_s3(minio).upload_file(str(source), buckets["in"], "in/big.bin")
    source.unlink()
    config = {
        "input": [{"storage_provider": "minio.default", "path": f"{buckets['in']}/in"}],
        "output": [{"storage_provider": "minio.default", "path": f"{buckets['out']}/big"}],
        "storage_providers": {"minio": {"default": _default_provider(minio)}},
    }
    env = clean_env(
        FUNCTION_CONFIG=b64(yaml.safe_dump(config)),
        SCRIPT=b64('mv "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/big.bin"\n'),
        PROVIDER_SECRETS_DIR=str(tmp_path / "none"),
        **_credentials_env(minio),
    )
    # Measure the supervisor's own peak RSS: a fresh parent whose only children are the
    # supervisor and the script's shell.
    probe = (
        "import resource, subprocess, sys\n"
        "event = sys.stdin.buffer.read()\n"
        "done = subprocess.run([sys.executable, '-m', 'supervisor'], input=event)\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(done.returncode, peak)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        input=minio_event(buckets["in"], "in/big.bin"),
        env=env,
        capture_output=True,
        timeout=600,
        check=False,
    )
    code, peak_kib = result.stdout.split()[-2:]
    assert code == b"0", result.stderr.decode()[-3000:]
    assert int(peak_kib) < 100 * 1024, f"peak RSS {int(peak_kib) / 1024:.0f} MiB"
    copy = tmp_path / "copy.bin"
    minio_s3(minio).download_file(buckets["out"], "big/big.bin", str(copy))
    assert copy.stat().st_size == size
    check = hashlib.sha256()
    with copy.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            check.update(chunk)
    assert check.hexdigest() == digest.hexdigest()


@pytest.mark.webdav
def test_dcache_event_stages_from_and_to_webdav(webdav: Any, tmp_path: Path) -> None:
    folder = f"pnfs/data-{uuid.uuid4().hex[:6]}"
    (webdav.root / folder / "in").mkdir(parents=True)
    (webdav.root / folder / "in" / "image2.jpg").write_bytes(b"fake jpeg bytes")
    hostname = webdav.url
    credentials = {"hostname": hostname, "login": webdav.username, "password": webdav.password}
    config = {
        "input": [{"storage_provider": "webdav.dcache", "path": f"{folder}/in"}],
        "output": [{"storage_provider": "webdav.dcache", "path": f"{folder}/out"}],
        "storage_providers": {"webdav": {"dcache": credentials}},
    }
    event = {
        "event": {"name": "image2.jpg", "mask": ["IN_CREATE"]},
        "subscription": "https://dcache.example.org:3880/api/v1/events/channels/x/subscriptions/inotify/y",
    }
    script = (
        'mkdir -p "$TMP_OUTPUT_DIR/sub"\n'
        'cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/sub/$(basename "$INPUT_FILE_PATH").copy"\n'
    )
    result = run_supervisor(config, script, json.dumps(event).encode(), tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    copied = webdav.root / folder / "out" / "sub" / "image2.jpg.copy"
    assert copied.read_bytes() == b"fake jpeg bytes"
    # And the server really serves it over WebDAV.
    response = httpx.get(
        f"{webdav.url}/{folder}/out/sub/image2.jpg.copy", auth=(webdav.username, webdav.password)
    )
    assert response.content == b"fake jpeg bytes"


@pytest.mark.webdav
def test_webdav_wrong_password_fails(webdav: Any, tmp_path: Path) -> None:
    (webdav.root / "secret-in").mkdir(exist_ok=True)
    (webdav.root / "secret-in" / "f.txt").write_text("x")
    credentials = {"hostname": webdav.url, "login": webdav.username, "password": "wrong"}
    config = {
        "input": [{"storage_provider": "webdav.dcache", "path": "secret-in"}],
        "storage_providers": {"webdav": {"dcache": credentials}},
    }
    event = {"event": {"name": "f.txt", "mask": ["IN_CREATE"]}, "subscription": "s"}
    result = run_supervisor(config, "echo never", json.dumps(event).encode(), tmp_path=tmp_path)
    assert result.returncode == 3
    assert b"denied" in result.stderr or b"401" in result.stderr
