"""The supervisor as a process: input, script run, exit codes, response and log format."""

from __future__ import annotations

import base64
import io
import re
import time
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.supervisor.helpers import b64, run_supervisor

CONFIG = {"name": "svc", "log_level": "INFO"}
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - supervisor - [A-Z]+ - ")


def test_unknown_event_without_outputs_returns_script_output(tmp_path: Path) -> None:
    script = 'echo "got: $(cat "$INPUT_FILE_PATH")"\necho "event=$EVENT"\n'
    result = run_supervisor(CONFIG, script, b"hello world", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    # A non-base64 body is saved verbatim and the response is the script's output.
    assert result.stdout == b"got: hello world\nevent=hello world\n"


def test_base64_body_is_decoded_into_the_input_file(tmp_path: Path) -> None:
    script = 'cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/copy.bin"\n'
    data = bytes(range(256))
    result = run_supervisor(CONFIG, script, base64.b64encode(data), tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    # One output file: the response is that file, base64-encoded.
    assert base64.b64decode(result.stdout) == data


def test_json_body_is_saved_verbatim(tmp_path: Path) -> None:
    body = b'{"x": [1, 2, 3]}'
    result = run_supervisor(CONFIG, 'cat "$INPUT_FILE_PATH"', body, tmp_path=tmp_path)
    assert result.stdout == body


def test_several_outputs_return_a_base64_zip(tmp_path: Path) -> None:
    script = (
        'mkdir -p "$TMP_OUTPUT_DIR/sub"\n'
        'echo a > "$TMP_OUTPUT_DIR/a.txt"\necho b > "$TMP_OUTPUT_DIR/sub/b.txt"\n'
    )
    result = run_supervisor(CONFIG, script, b"x", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    archive = zipfile.ZipFile(io.BytesIO(base64.b64decode(result.stdout)))
    assert sorted(archive.namelist()) == ["a.txt", "sub/b.txt"]
    assert archive.read("sub/b.txt") == b"b\n"


def test_failing_script_fails_the_job_with_its_exit_code(tmp_path: Path) -> None:
    result = run_supervisor(CONFIG, "echo before\nexit 7\n", b"x", tmp_path=tmp_path)
    assert result.returncode == 7
    assert b"the script failed with exit code 7" in result.stderr
    assert b"before" in result.stderr  # its output still reached the log


def test_timeout_kills_the_script_and_its_children(tmp_path: Path) -> None:
    marker = tmp_path / "survivor"
    script = f"(sleep 30; touch {marker}) &\nsleep 30\n"
    started = time.monotonic()
    result = run_supervisor(CONFIG, script, b"x", tmp_path=tmp_path, args=["--timeout", "1"])
    assert result.returncode == 124
    assert time.monotonic() - started < 20
    assert b"timeout" in result.stderr
    assert not marker.exists()


def test_timeout_from_environment(tmp_path: Path) -> None:
    result = run_supervisor(
        CONFIG, "sleep 30\n", b"x", tmp_path=tmp_path, env={"SUPERVISOR_TIMEOUT": "0.5"}
    )
    assert result.returncode == 124


def test_log_format_and_level(tmp_path: Path) -> None:
    result = run_supervisor(CONFIG, "echo line-one\necho line-two\n", b"x", tmp_path=tmp_path)
    lines = result.stderr.decode().splitlines()
    assert lines and all(LOG_LINE.match(line) for line in lines)
    assert any(line.endswith("- INFO - line-one") for line in lines)
    quiet = run_supervisor(
        {**CONFIG, "log_level": "CRITICAL"}, "echo hi\n", b"x", tmp_path=tmp_path
    )
    assert quiet.stderr == b""
    assert quiet.stdout == b"hi\n"


def test_event_from_environment_and_base64_transport(tmp_path: Path) -> None:
    env = {"EVENT": b64("from-env"), "EVENT_BASE64": "1"}
    result = run_supervisor(CONFIG, 'cat "$INPUT_FILE_PATH"', None, tmp_path=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"from-env"


def test_service_environment_is_exported(tmp_path: Path) -> None:
    config = {**CONFIG, "environment": {"variables": {"MODE": "fast"}, "secrets": {"KEY": "k1"}}}
    script = 'echo "$MODE $KEY"; test -d "$TMP_INPUT_DIR" && test -d "$TMP_OUTPUT_DIR" && echo ok'
    result = run_supervisor(config, script, b"x", tmp_path=tmp_path)
    assert result.stdout == b"fast k1\nok\n"


def test_supervisor_inputs_are_not_passed_to_the_script(tmp_path: Path) -> None:
    result = run_supervisor(
        CONFIG, 'echo "[${FUNCTION_CONFIG}][${SCRIPT}]"', b"x", tmp_path=tmp_path
    )
    assert result.stdout == b"[][]\n"


def test_work_folders_are_removed(tmp_path: Path) -> None:
    run_supervisor(CONFIG, "echo hi > $TMP_OUTPUT_DIR/x", b"x", tmp_path=tmp_path)
    assert list((tmp_path / "work").iterdir()) == []


def test_missing_configuration_is_a_clear_error(tmp_path: Path) -> None:
    result = run_supervisor(CONFIG, "echo", b"x", tmp_path=tmp_path, env={"FUNCTION_CONFIG": "%%%"})
    assert result.returncode == 2
    assert b"FUNCTION_CONFIG" in result.stderr


def test_no_event_is_a_clear_error(tmp_path: Path) -> None:
    result = run_supervisor(CONFIG, "echo", b"", tmp_path=tmp_path)
    assert result.returncode == 2
    assert b"no event" in result.stderr


def test_storage_event_without_credentials_is_a_clear_error(tmp_path: Path) -> None:
    event = (
        b'{"Records":[{"eventSource":"minio:s3","s3":{"bucket":{"name":"b"},'
        b'"object":{"key":"in/f.txt"}}}]}'
    )
    config = {**CONFIG, "input": [{"storage_provider": "minio.default", "path": "b/in"}]}
    result = run_supervisor(config, "echo", event, tmp_path=tmp_path)
    assert result.returncode == 2
    assert b"no credentials for minio.default" in result.stderr


def test_storage_event_outside_the_inputs_is_refused_before_any_download(
    tmp_path: Path,
) -> None:
    event = (
        b'{"Records":[{"eventSource":"minio:s3","s3":{"bucket":{"name":"payroll"},'
        b'"object":{"key":"salaries.csv"}}}]}'
    )
    config = {**CONFIG, "input": [{"storage_provider": "minio.default", "path": "b/in"}]}
    result = run_supervisor(config, "echo ran", event, tmp_path=tmp_path)
    assert result.returncode == 2
    assert b"bucket 'payroll' (minio.default) is not an input" in result.stderr
    assert b"ran" not in result.stdout


def test_object_key_cannot_escape_the_input_folder(tmp_path: Path) -> None:
    event = (
        b'{"Records":[{"eventSource":"minio:s3","s3":{"bucket":{"name":"b"},'
        b'"object":{"key":"in/.."}}}]}'
    )
    config = {**CONFIG, "input": [{"storage_provider": "minio.default", "path": "b"}]}
    result = run_supervisor(config, "echo", event, tmp_path=tmp_path)
    assert result.returncode == 2
    assert b"'b/in/..' is not a plain key" in result.stderr


def test_script_wrapper_runs_the_script_inside_it(tmp_path: Path) -> None:
    # The HPC batch script sets SCRIPT_WRAPPER to `apptainer exec ... docker://image` when the
    # node has a runtime; `env NAME=value` is a wrapper every machine has.
    result = run_supervisor(
        CONFIG,
        'echo "inside=$WRAPPED"\n',
        b"x",
        tmp_path=tmp_path,
        env={"SCRIPT_WRAPPER": "env WRAPPED=yes"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"inside=yes\n"
    assert b"with env" in result.stderr


@pytest.mark.parametrize("event", [b"", b"ok"], ids=["bad-event", "good-event"])
def test_consumed_secrets_and_configuration_are_gone_however_the_job_ends(
    tmp_path: Path, event: bytes
) -> None:
    secrets = tmp_path / "secrets" / "minio.default"
    secrets.mkdir(parents=True)
    (secrets / "accessKey").write_text("job-access")
    (secrets / "secretKey").write_text("job-secret")
    config_file = tmp_path / "function_config.yaml"
    config_file.write_text(yaml.safe_dump(CONFIG))
    probe = f'ls "{secrets}" "{config_file}" 2>&1; echo done\n'
    result = run_supervisor(
        CONFIG,
        probe,
        event,
        tmp_path=tmp_path,
        env={
            "PROVIDER_SECRETS_DIR": str(tmp_path / "secrets"),
            "FUNCTION_CONFIG": str(config_file),
            "SUPERVISOR_CONSUME_SECRETS": "1",
        },
    )
    assert not secrets.exists() and not config_file.exists()
    if event:
        assert result.returncode == 0, result.stderr
        assert b"No such file" in result.stdout  # the script already could not find them
        assert b"job-secret" not in result.stdout
    else:
        assert result.returncode == 2
