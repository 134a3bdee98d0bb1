"""What a service cannot do to its supervisor: control variables, large events, odd outputs."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.supervisor.helpers import minio_s3, run_supervisor

CONFIG: dict[str, Any] = {"name": "svc", "log_level": "INFO"}


# --- M1: control variables stay the supervisor's ----------------------------------------------
@pytest.mark.parametrize("section", ["variables", "secrets"])
def test_service_variables_cannot_set_control_variables(tmp_path: Path, section: str) -> None:
    marker = tmp_path / "wrapper-ran"
    hijack = {
        "SCRIPT_WRAPPER": f"/usr/bin/env -S sh -c 'touch {marker}; exec \"$@\"' wrap",
        "OSCAR_JOB_MARK": "from-service",
        "OSCAR_SCRIPT_RUN": "from-service",
        "SUPERVISOR_TIMEOUT": "1000",
        "SUPERVISOR_KEEP_WORKDIR": "1",
        "PROVIDER_SECRETS_DIR": "/from-service",
        "FUNCTION_CONFIG": "from-service",
        "SCRIPT": "from-service",
        "TMP_OUTPUT_DIR": "/from-service",
        "EVENT_FILE": "/from-service",
        "USER_VARIABLE": "kept",
    }
    config = {**CONFIG, "environment": {section: hijack}}
    script = (
        'echo "wrapper=${SCRIPT_WRAPPER-unset}"\necho "mark=$OSCAR_JOB_MARK"\n'
        'echo "run=$OSCAR_SCRIPT_RUN"\necho "timeout=${SUPERVISOR_TIMEOUT-unset}"\n'
        'echo "keep=${SUPERVISOR_KEEP_WORKDIR-unset}"\n'
        'echo "secrets=${PROVIDER_SECRETS_DIR}"\n'
        'echo "config=${FUNCTION_CONFIG-unset} script=${SCRIPT-unset}"\n'
        'echo "out=$TMP_OUTPUT_DIR file=$EVENT_FILE"\necho "user=$USER_VARIABLE"\n'
    )
    env = {"OSCAR_JOB_MARK": "from-supervisor", "SUPERVISOR_TIMEOUT": "60"}
    result = run_supervisor(config, script, b"x", tmp_path=tmp_path, env=env)
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode()
    assert not marker.exists()  # the service's wrapper never ran
    assert "wrapper=unset" in out
    assert "mark=from-supervisor" in out
    assert "run=from-service" not in out and "run=" in out
    assert "timeout=60" in out
    assert "keep=unset" in out
    assert f"secrets={tmp_path / 'no-secrets'}" in out
    assert "config=unset script=unset" in out
    assert "/from-service" not in out
    assert "user=kept" in out
    assert b"Ignoring the service variable SCRIPT_WRAPPER" in result.stderr
    # SUPERVISOR_KEEP_WORKDIR from the service did not keep the workspace.
    assert list((tmp_path / "work").iterdir()) == []


def test_the_supervisors_own_wrapper_is_kept(tmp_path: Path) -> None:
    marker = tmp_path / "wrapper-ran"
    wrapper = f"/usr/bin/env -S sh -c 'touch {marker}; exec \"$@\"' wrap"
    config = {**CONFIG, "environment": {"variables": {"SCRIPT_WRAPPER": "/bin/false"}}}
    result = run_supervisor(
        config, "echo ok\n", b"x", tmp_path=tmp_path, env={"SCRIPT_WRAPPER": wrapper}
    )
    assert result.returncode == 0, result.stderr.decode()
    assert marker.exists()


# --- M10: events of any size and content ------------------------------------------------------
def test_large_event_reaches_the_script_by_file(tmp_path: Path) -> None:
    body = json.dumps({"data": "x" * 200 * 1024}).encode()
    script = 'echo "event=${EVENT-unset}"\ncmp "$EVENT_FILE" "$INPUT_FILE_PATH" && echo same\n'
    result = run_supervisor(CONFIG, script, body, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"event=unset\nsame\n"


def test_small_event_is_in_both_variable_and_file(tmp_path: Path) -> None:
    script = 'echo "event=$EVENT"\ncat "$EVENT_FILE"\n'
    result = run_supervisor(CONFIG, script, b"hello", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"event=hello\nhello"


def test_event_with_nul_bytes_works(tmp_path: Path) -> None:
    body = b"not base64 \x00 with a NUL"
    script = 'echo "event=${EVENT-unset}"\ncat "$INPUT_FILE_PATH"\n'
    result = run_supervisor(CONFIG, script, body, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"event=unset\n" + body


# --- L16 / L19: outputs that must not be uploaded ---------------------------------------------


@pytest.mark.minio
def test_unsafe_names_and_hard_links_are_skipped(minio: Any, tmp_path: Path) -> None:
    bucket = f"out-{uuid.uuid4().hex[:8]}"
    s3 = minio_s3(minio)
    s3.create_bucket(Bucket=bucket)
    config = {
        **CONFIG,
        "input": [{"storage_provider": "minio.default", "path": f"{bucket}/in"}],
        "output": [{"storage_provider": "minio.default", "path": f"{bucket}/res"}],
        "storage_providers": {
            "minio": {"default": {"endpoint": minio.endpoint, "region": "us-east-1"}}
        },
    }
    script = (
        'echo good > "$TMP_OUTPUT_DIR/good.txt"\n'
        'echo bad > "$TMP_OUTPUT_DIR/..\\\\..\\\\escape.txt"\n'
        'echo host-secret > "$TMP_OUTPUT_DIR/../outside.txt"\n'
        'ln "$TMP_OUTPUT_DIR/../outside.txt" "$TMP_OUTPUT_DIR/hardlink.txt"\n'
        'ln -s /etc/hostname "$TMP_OUTPUT_DIR/symlink.txt"\n'
        'ls -A "$TMP_OUTPUT_DIR"\n'
    )
    env = {"MINIO_ACCESS_KEY": minio.access_key, "MINIO_SECRET_KEY": minio.secret_key}
    event = json.dumps(
        {
            "Records": [
                {
                    "eventSource": "minio:s3",
                    "s3": {"bucket": {"name": bucket}, "object": {"key": "in/none"}},
                }
            ]
        }
    ).encode()
    config["file_stage_in"] = True  # nothing to download: only the outputs matter here
    result = run_supervisor(config, script, event, tmp_path=tmp_path, env=env)
    log = result.stderr.decode()
    assert result.returncode == 0, log
    assert "..\\..\\escape.txt" in result.stdout.decode()  # the script did create it
    listing = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    assert {item["Key"] for item in listing} == {"res/good.txt"}
    assert "unsafe file name" in log
    assert "a hard link" in log
    assert "not a regular file" in log
