"""oscar-cli through typer's runner against a real `oscar serve` and its embedded store."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cli.main import app
from tests.fixtures.server import RunningServer
from tests.fixtures.services import EXAMPLES_DIR
from tests.services import common

pytestmark = pytest.mark.slow
runner = CliRunner()


def cli(config: Path, *args: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, [*args, "--config", str(config)], input=input)
    return result.exit_code, result.stdout, result.stderr


def add_local_cluster(config: Path, server: RunningServer) -> Path:
    """Write an oscar-cli configuration whose default cluster `local` is `server`."""
    code, _out, err = cli(
        config,
        "cluster",
        "add",
        "local",
        server.url,
        server.username,
        "--password-stdin",
        input=f"{server.password}\n",
    )
    assert code == 0, err
    return config


@pytest.fixture
def oscar(start_oscar: Callable[..., RunningServer], tmp_path: Path) -> tuple[RunningServer, Path]:
    server = start_oscar()
    return server, add_local_cluster(tmp_path / "cli" / "config.yaml", server)


def test_config_file_is_private_and_upstream_shaped(oscar: tuple[RunningServer, Path]) -> None:
    server, config = oscar
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    data = yaml.safe_load(config.read_text())
    assert data["default"] == "local"
    assert data["oscar"]["local"]["endpoint"] == server.url
    assert data["oscar"]["local"]["auth_password"] == server.password
    code, out, _ = cli(config, "cluster", "list")
    assert code == 0 and "local" in out and server.password not in out


def test_quick_start_flow(oscar: tuple[RunningServer, Path], tmp_path: Path) -> None:
    _, config = oscar
    fdl = EXAMPLES_DIR / "word-count" / "word-count.yaml"
    code, out, err = cli(config, "apply", str(fdl))
    assert code == 0, err
    assert "created" in out
    code, out, _ = cli(config, "apply", str(fdl))
    assert "updated" in out
    code, out, _ = cli(config, "service", "list")
    assert "word-count" in out
    text = tmp_path / "story.txt"
    text.write_text("one two three four five six\n")
    code, out, err = cli(config, "service", "put-file", "word-count", "minio.default", str(text))
    assert code == 0, err

    def listed() -> bool:
        code, out, _ = cli(
            config, "service", "list-files", "word-count", "minio.default", "word-count/out/"
        )
        return code == 0 and "story.txt.count" in out

    common.wait_until(listed, timeout=60, what="output listed")
    target = tmp_path / "count.txt"
    code, out, err = cli(
        config,
        "service",
        "get-file",
        "word-count",
        "minio.default",
        "word-count/out/story.txt.count",
        str(target),
    )
    assert code == 0, err
    assert target.read_text().strip() == "6"
    latest = tmp_path / "latest"
    latest.mkdir()
    code, _, err = cli(
        config,
        "service",
        "get-file",
        "word-count",
        "minio.default",
        "word-count/out/",
        f"--download-latest-into={latest}",
    )
    assert code == 0, err
    assert (latest / "story.txt.count").read_text().strip() == "6"

    def succeeded() -> bool:
        code, out, _ = cli(config, "service", "logs", "list", "word-count", "-o", "json")
        return code == 0 and any(j["status"] == "Succeeded" for j in json.loads(out))

    common.wait_until(succeeded, timeout=30, what="job succeeded")
    code, out, _ = cli(config, "service", "logs", "get", "word-count", "--latest")
    assert "Counting words in story.txt" in out
    code, out, _ = cli(config, "service", "logs", "get", "word-count", "--latest", "--tail", "1")
    assert code == 0 and len(out.splitlines()) == 1 and "Counting words" not in out
    code, out, _ = cli(config, "service", "logs", "list", "word-count")
    header = out.splitlines()[0].split()
    assert header[-4:] == ["BACKEND", "BACKEND_ID", "WAITING_REASON", "REASON"]
    assert " local " in out.splitlines()[1]
    code, out, _ = cli(config, "service", "logs", "list", "word-count", "-s", "failed")
    assert "word-count-" not in out
    code, out, _ = cli(config, "service", "logs", "delete", "word-count", "--all")
    assert code == 0
    code, out, err = cli(config, "delete", str(fdl))
    assert code == 0, err
    code, out, _ = cli(config, "service", "list", "-o", "json")
    assert json.loads(out) == []


def test_run_and_job(oscar: tuple[RunningServer, Path], tmp_path: Path) -> None:
    _, config = oscar
    assert cli(config, "apply", str(EXAMPLES_DIR / "cowsay" / "cowsay.yaml"))[0] == 0
    code, out, err = cli(config, "service", "run", "cowsay", "-i", "Hello CLI")
    assert code == 0, err
    assert "< Hello CLI >" in out
    answer = tmp_path / "answer.txt"
    code, _, _ = cli(config, "service", "run", "cowsay", "-i", "to file", "-o", str(answer))
    assert "< to file >" in answer.read_text()
    code, out, err = cli(config, "service", "job", "cowsay", "-i", "async")
    assert code == 0, err
    code, out, _ = cli(config, "service", "get", "cowsay", "-o", "json")
    token = json.loads(out)["token"]
    server_url = yaml.safe_load(config.read_text())["oscar"]["local"]["endpoint"]
    code, out, err = cli(
        config, "service", "run", "cowsay", "-i", "direct", "-e", server_url, "-t", token
    )
    assert code == 0, err
    assert "< direct >" in out


def test_cluster_commands(oscar: tuple[RunningServer, Path]) -> None:
    _server, config = oscar
    code, out, _ = cli(config, "cluster", "info")
    assert code == 0 and "version" in out
    code, out, _ = cli(config, "cluster", "status")
    assert code == 0 and ": ok" in out
    assert cli(config, "cluster", "add", "other", "http://127.0.0.1:9", "u", "p")[0] == 0
    assert cli(config, "cluster", "default")[1].strip() == "local"
    assert cli(config, "cluster", "default", "-s", "other")[0] == 0
    assert cli(config, "cluster", "default")[1].strip() == "other"
    code, _, err = cli(config, "service", "list")
    assert code == 1
    assert err.strip().splitlines() == [
        "error: cannot connect to cluster 'other' at http://127.0.0.1:9"
    ]
    assert cli(config, "cluster", "delete", "other")[0] == 0
    assert cli(config, "cluster", "default")[1].strip() == "local"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["service", "get", "no-such-service"], "not found"),
        (["cluster", "info", "-c", "ghost"], "cluster 'ghost' is not configured"),
    ],
)
def test_errors_are_one_clear_line(
    oscar: tuple[RunningServer, Path], args: list[str], message: str
) -> None:
    _, config = oscar
    code, _, err = cli(config, *args)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert "Traceback" not in err


def test_bad_credentials_and_invalid_fdl(oscar: tuple[RunningServer, Path], tmp_path: Path) -> None:
    server, config = oscar
    cli(config, "cluster", "add", "wrong", server.url, "oscar", "not-the-password")
    code, _, err = cli(config, "service", "list", "-c", "wrong")
    assert code == 1 and "bad credentials for cluster 'wrong' (401)" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "functions:\n  oscar:\n  - local:\n      name: Bad_Name\n      image: x\n"
        "      script: |\n        e\n"
    )
    code, _, err = cli(config, "apply", str(bad))
    assert code == 1
    assert f"{bad}:4: functions.oscar[0].local.name" in err


def test_debug_masks_credentials(oscar: tuple[RunningServer, Path]) -> None:
    server, config = oscar
    code, _, err = cli(config, "service", "list", "--debug")
    assert code == 0
    assert "> GET" in err and "< 200" in err
    assert server.password not in err
    assert (
        "authorization: Basic ***" in err.lower().replace("basic ***", "Basic ***") or "***" in err
    )


def test_reads_upstream_config_unchanged(tmp_path: Path) -> None:
    upstream = tmp_path / "config.yaml"
    upstream.write_text(
        "oscar:\n"
        "  oscar-cluster:\n"
        "    endpoint: https://oscar.example.org\n"
        "    auth_user: oscar\n"
        "    auth_password: s3cr3t\n"
        "    oidc_account_name: egi\n"
        "    oidc_refresh_token: rt-123\n"
        "    ssl_verify: false\n"
        "    memory: 512Mi\n"
        "    log_level: DEBUG\n"
        "default: oscar-cluster\n"
    )
    code, out, err = cli(upstream, "cluster", "list", "-o", "json")
    assert code == 0, err
    (entry,) = json.loads(out)
    assert entry == {
        "id": "oscar-cluster",
        "endpoint": "https://oscar.example.org",
        "user": "oscar",
        "ssl_verify": False,
        "default": True,
    }
    cli(upstream, "cluster", "add", "second", "http://x", "u", "p")
    again = yaml.safe_load(upstream.read_text())
    assert again["oscar"]["oscar-cluster"] == {
        "endpoint": "https://oscar.example.org",
        "auth_user": "oscar",
        "auth_password": "s3cr3t",
        "oidc_account_name": "egi",
        "oidc_refresh_token": "rt-123",
        "ssl_verify": False,
        "memory": "512Mi",
        "log_level": "DEBUG",
    }


def test_bucket_commands(oscar: tuple[RunningServer, Path], tmp_path: Path) -> None:
    _, config = oscar
    code, out, err = cli(config, "bucket", "create", "cli-bucket", "--visibility", "public")
    assert code == 0, err
    code, out, _ = cli(config, "bucket", "list", "-o", "json")
    entry = next(b for b in json.loads(out) if b["bucket_name"] == "cli-bucket")
    assert entry["visibility"] == "public"
    code, _, err = cli(config, "bucket", "create", "cli-bucket")
    assert code == 1 and "already exists" in err
    code, out, _ = cli(config, "cluster", "info", "--config-info", "-o", "json")
    provider = json.loads(out)["config"]["minio_provider"]
    assert "secret_key" not in provider
    files = tmp_path / "f.txt"
    files.write_text("x")
    for index in range(5):
        cli(config, "apply", str(EXAMPLES_DIR / "word-count" / "word-count.yaml"))
        code, _, err = cli(
            config, "service", "put-file", "word-count", str(files), f"cli-bucket/k{index}.txt"
        )
        assert code == 0, err
    code, out, _ = cli(config, "bucket", "get", "cli-bucket", "--limit", "2", "--all", "-o", "json")
    assert [o["object_name"] for o in json.loads(out)["objects"]] == [f"k{i}.txt" for i in range(5)]
    code, out, _ = cli(config, "bucket", "get", "cli-bucket", "--limit", "2")
    assert "k0.txt" in out and "k2.txt" not in out and "--page" in out
    code, _, err = cli(config, "bucket", "delete", "cli-bucket")
    assert code == 1 and "not empty" in err
    for index in range(5):
        cli(
            config,
            "service",
            "delete-file",
            "word-count",
            "minio.default",
            f"cli-bucket/k{index}.txt",
        )
    assert cli(config, "bucket", "delete", "cli-bucket")[0] == 0
    code, _, err = cli(config, "bucket", "get", "cli-bucket")
    assert code == 1 and ("does not exist" in err or "not found" in err)


def test_large_transfers_show_progress(oscar: tuple[RunningServer, Path], tmp_path: Path) -> None:
    _, config = oscar
    cli(config, "apply", str(EXAMPLES_DIR / "hello-sync" / "hello-sync.yaml"))
    cli(config, "bucket", "create", "big-files")
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 4096 * 6)  # 6 MiB
    code, out, err = cli(config, "service", "put-file", "hello-sync", str(big), "big-files/big.bin")
    assert code == 0, err
    assert "uploading big.bin" in out
    back = tmp_path / "back.bin"
    code, out, err = cli(
        config, "service", "get-file", "hello-sync", "minio.default", "big-files/big.bin", str(back)
    )
    assert code == 0, err
    assert "downloading big.bin" in out
    assert back.read_bytes() == big.read_bytes()


def test_service_delete_job_delete_and_version(oscar: tuple[RunningServer, Path]) -> None:
    _, config = oscar
    cli(config, "apply", str(EXAMPLES_DIR / "cowsay" / "cowsay.yaml"))
    assert cli(config, "service", "job", "cowsay", "-i", "one")[0] == 0

    def finished_job() -> str | None:
        out = cli(config, "service", "logs", "list", "cowsay", "-o", "json")[1]
        done = [j["name"] for j in json.loads(out) if j["status"] in ("Succeeded", "Failed")]
        return done[0] if done else None

    job = common.wait_until(finished_job, timeout=60, what="cowsay job")
    code, out, err = cli(config, "service", "logs", "delete", "cowsay", job)
    assert code == 0, err
    assert job not in cli(config, "service", "logs", "list", "cowsay")[1]
    code, out, err = cli(config, "service", "delete", "cowsay")
    assert code == 0 and "deleted" in out, err
    assert cli(config, "service", "get", "cowsay")[0] == 1
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0 and result.stdout.startswith("version: ")
