"""oscar-cli has upstream's (Go oscar-cli, `cmd/*.go`) commands, and they work against real
`oscar serve` processes: multi-cluster FDLs, the hub (against a local stand-in), aliases."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.main import get_command

from cli.main import app
from tests.cli.test_commands import cli
from tests.fixtures.server import RunningServer
from tests.fixtures.services import EXAMPLES_DIR
from tests.fixtures.site import static_site
from tests.services import common

pytestmark = pytest.mark.slow

# Built from upstream's cmd/*.go (`Use:` of every command and its `Aliases:`).
UPSTREAM_COMMANDS: dict[str, list[str]] = {
    "version": ["v"],
    "apply": ["a"],
    "delete": ["d", "del", "remove", "rm"],
    "interactive": ["ui"],
    "cluster": ["c"],
    "cluster add": ["a"],
    "cluster delete": ["d", "del", "remove", "rm"],
    "cluster info": ["i"],
    "cluster list": ["ls"],
    "cluster default": [],  # upstream's `d` is also `delete`'s; cobra resolves it to delete
    "service": ["services", "svc", "s"],
    "service get": ["g"],
    "service list": ["ls"],
    "service delete": ["d", "del", "remove", "rm"],
    "service logs": ["log", "l"],
    "service logs get": ["g"],
    "service logs list": ["ls"],
    "service logs delete": ["d", "del", "remove", "rm"],
    "service get-file": ["gf"],
    "service put-file": ["pf"],
    "service delete-file": ["df", "del-fil", "remove-file", "rmf"],
    "service list-files": ["list-file", "lsf"],
    "service run": ["invoke", "r"],
    "service job": ["j"],
    "bucket": ["b", "buckets"],
    "bucket get": ["g"],
    "bucket list": ["ls"],
    "hub": ["h"],
    "hub list": [],
    "hub deploy": [],
    "hub validate": ["test", "check"],
}
UPSTREAM_FLAGS: dict[str, list[str]] = {
    "apply": ["--config", "-c", "--cluster", "--default", "-n", "--name"],
    "delete": ["--config", "--default"],
    "cluster add": ["--disable-ssl", "--password-stdin", "-o", "--oidc-account-name", "-t"],
    "cluster default": ["-s", "--set"],
    "cluster info": ["-c", "--cluster"],
    "service get-file": ["-c", "--no-progress", "--download-latest-into"],
    "service put-file": ["-c", "--no-progress"],
    "service run": ["-c", "-e", "-t", "-f", "-i", "-o", "--file-input", "--text-input"],
    "service job": ["-c", "-e", "-t", "-f", "-i", "--endpoint", "--token"],
    "service logs get": ["-l", "--latest", "-t", "--show-timestamps"],
    "service logs list": ["-s", "--status"],
    "service logs delete": ["-a", "--all", "-s", "--succeeded"],
    "bucket get": ["-c", "-o", "--prefix", "--page", "--limit", "--all"],
    "bucket list": ["-c", "-o"],
    "hub list": ["--owner", "--repo", "--path", "--ref", "--json", "--api-base"],
    "hub deploy": ["--owner", "--repo", "--path", "--ref", "-n", "--local-path", "-c"],
    "hub validate": ["--owner", "--repo", "--path", "--ref", "-n", "--local-path", "-c"],
}


def _resolve(words: list[str]) -> Any:
    command: Any = get_command(app)
    for word in words:
        subcommands = getattr(command, "commands", None)
        assert subcommands is not None, f"{words}: {command.name} has no subcommands"
        found = subcommands.get(word)
        assert found is not None, f"`oscar-cli {' '.join(words)}`: no command {word!r}"
        command = found
    return command


@pytest.mark.parametrize("path", sorted(UPSTREAM_COMMANDS))
def test_every_upstream_command_and_alias_exists(path: str) -> None:
    words = path.split()
    target = _resolve(words)
    for alias in UPSTREAM_COMMANDS[path]:
        other = _resolve([*words[:-1], alias])
        assert other.hidden, f"{path}: alias {alias} shows in the help"
        assert _shape(other) == _shape(target), f"{path}: {alias} is another command"


def _shape(command: Any) -> tuple[str | None, list[str], list[str]]:
    subcommands = sorted(getattr(command, "commands", {}))
    return command.help, [p.name for p in command.params], subcommands


@pytest.mark.parametrize("path", sorted(UPSTREAM_FLAGS))
def test_upstream_flags_exist(path: str) -> None:
    options = {o for p in _resolve(path.split()).params for o in p.opts}
    missing = set(UPSTREAM_FLAGS[path]) - options
    assert not missing, f"`oscar-cli {path}` lacks {sorted(missing)}"


def _add(config: Path, cluster_id: str, server: RunningServer) -> None:
    code, _, err = cli(
        config, "cluster", "add", cluster_id, server.url, server.username, server.password or ""
    )
    assert code == 0, err


def _names(server: RunningServer) -> set[str]:
    return {s["name"] for s in server.client().get("/system/services").json()}


# A service that delegates: the cluster credentials in `clusters` are for such services.
_REPLICA = {"type": "endpoint", "url": "https://replica.example/run", "priority": 0}


def _two_cluster_fdl(path: Path) -> Path:
    script = (EXAMPLES_DIR / "cowsay" / "cowsay.sh").read_text()
    service = {"image": "docker.io/library/alpine:3.20", "memory": "64Mi", "script": script}
    fdl = {
        "functions": {
            "oscar": [
                {"east": {**service, "name": "svc-east"}},
                {"west": {**service, "name": "svc-west"}},
                {"east": {**service, "name": "svc-east-2", "replicas": [_REPLICA]}},
            ]
        }
    }
    path.write_text(yaml.safe_dump(fdl))
    return path


@pytest.fixture
def two(
    start_oscar: Callable[..., RunningServer], tmp_path: Path
) -> tuple[RunningServer, RunningServer, Path]:
    east = start_oscar(tmp_path / "east")
    west = start_oscar(tmp_path / "west")
    config = tmp_path / "cli.yaml"
    _add(config, "east", east)  # the first added is the default
    _add(config, "west", west)
    return east, west, config


def test_multi_cluster_apply_and_delete(
    two: tuple[RunningServer, RunningServer, Path], tmp_path: Path
) -> None:
    east, west, config = two
    fdl = _two_cluster_fdl(tmp_path / "two.yaml")
    code, out, err = cli(config, "apply", str(fdl))
    assert code == 0, err
    assert _names(east) == {"svc-east", "svc-east-2"}
    assert _names(west) == {"svc-west"}
    assert "service 'svc-west' created on 'west'" in out
    stored = east.client().get("/system/services/svc-east").json()
    assert stored["cluster_id"] == "east"
    # Cluster credentials go only where a replica may need them (upstream: to every service).
    assert not stored.get("clusters")
    delegating = east.client().get("/system/services/svc-east-2").json()
    assert set(delegating["clusters"]) == {"east", "west"}
    code, out, err = cli(config, "apply", str(fdl))
    assert code == 0 and "service 'svc-east' updated on 'east'" in out, err
    code, out, err = cli(config, "delete", str(fdl))
    assert code == 0, err
    assert _names(east) == set() and _names(west) == set()


def test_unknown_cluster_in_fdl_fails_before_anything_is_sent(
    two: tuple[RunningServer, RunningServer, Path], tmp_path: Path
) -> None:
    east, west, config = two
    fdl = _two_cluster_fdl(tmp_path / "two.yaml")
    fdl.write_text(fdl.read_text().replace("west:", "north:"))
    code, _, err = cli(config, "apply", str(fdl))
    assert code == 1
    assert "cluster 'north'" in err and "is not configured" in err and "known: east, west" in err
    assert _names(east) == set() and _names(west) == set()
    assert cli(config, "delete", str(fdl))[0] == 1


def test_apply_overrides_cluster_and_name(
    two: tuple[RunningServer, RunningServer, Path], tmp_path: Path
) -> None:
    east, west, config = two
    fdl = _two_cluster_fdl(tmp_path / "two.yaml")
    code, _, err = cli(config, "apply", str(fdl), "-c", "west")
    assert code == 0, err
    assert _names(west) == {"svc-east", "svc-west", "svc-east-2"} and _names(east) == set()
    assert cli(config, "delete", str(fdl), "-c", "west")[0] == 0
    assert _names(west) == set()
    code, _, err = cli(config, "apply", str(fdl), "--default")  # default: east
    assert code == 0, err
    assert _names(east) == {"svc-east", "svc-west", "svc-east-2"} and _names(west) == set()
    assert cli(config, "delete", str(fdl), "--default")[0] == 0
    word_count = EXAMPLES_DIR / "word-count" / "word-count.yaml"
    code, _, err = cli(config, "apply", str(word_count), "-n", "words2", "-c", "west")
    assert code == 0, err
    renamed = west.client().get("/system/services/words2").json()
    assert [io["path"] for io in renamed["input"]] == ["words2/in"]
    assert [io["path"] for io in renamed["output"]] == ["words2/out"]
    assert cli(config, "delete", str(word_count), "-n", "words2", "-c", "west")[0] == 0
    assert _names(west) == set()


def test_default_cluster_key_goes_to_the_default(
    two: tuple[RunningServer, RunningServer, Path], tmp_path: Path
) -> None:
    east, west, config = two
    assert cli(config, "cluster", "default", "-s", "west")[0] == 0
    fdl = _two_cluster_fdl(tmp_path / "two.yaml")
    fdl.write_text(fdl.read_text().replace("east:", "default-cluster:"))
    assert cli(config, "apply", str(fdl))[0] == 0
    assert _names(west) == {"svc-east", "svc-west", "svc-east-2"} and _names(east) == set()


@pytest.fixture
def local(start_oscar: Callable[..., RunningServer], tmp_path: Path) -> tuple[RunningServer, Path]:
    server = start_oscar()
    config = tmp_path / "cli.yaml"
    _add(config, "local", server)
    return server, config


def test_upstream_aliases_and_group_flags_work(
    local: tuple[RunningServer, Path], tmp_path: Path
) -> None:
    server, config = local
    cowsay = EXAMPLES_DIR / "cowsay" / "cowsay.yaml"
    assert cli(config, "a", str(cowsay))[0] == 0
    code, out, _ = cli(config, "svc", "ls", "-o", "json")
    assert code == 0 and [s["name"] for s in json.loads(out)] == ["cowsay"]
    # Persistent flags on the group, as cobra's: `service --config F ...`, `logs -c ID ...`.
    result = cli_no_config(["service", "--config", str(config), "get", "cowsay", "-o", "json"])
    assert result[0] == 0 and json.loads(result[1])["name"] == "cowsay"
    assert cli(config, "service", "job", "cowsay", "-i", "via group flag")[0] == 0

    def jobs() -> list[dict[str, str]] | None:
        code, out, _ = cli_no_config(
            [
                *["service", "logs", "--config", str(config), "-c", "local", "list", "cowsay"],
                *["-o", "json", "-s", "Succeeded", "-s", "Failed"],
            ]
        )
        assert code == 0
        return json.loads(out) or None

    (job,) = common.wait_until(jobs, timeout=60, what="cowsay job finished")
    assert job["status"] == "Succeeded"
    code, out, _ = cli(config, "service", "logs", "get", "cowsay", job["name"], "--show-timestamps")
    assert code == 0 and out[:4].isdigit()  # the line keeps its leading timestamp
    code, out, _ = cli(config, "service", "logs", "get", "cowsay", job["name"])
    assert code == 0 and out.startswith("oscar - ")
    code, out, err = cli(config, "s", "l", "rm", "cowsay", "--all", job["name"])
    assert code == 1 and "take no JOB_NAME" in err
    code, out, err = cli(config, "service", "logs", "remove", "cowsay", job["name"])
    assert code == 0, err
    assert server.client().get("/system/logs/cowsay").json()["jobs"] == {}
    code, _, err = cli(config, "rm", str(cowsay))
    assert code == 0, err
    assert _names(server) == set()
    assert cli(config, "cluster", "add", "spare", "http://127.0.0.1:9", "u", "p")[0] == 0
    assert cli(config, "cluster", "remove", "spare")[0] == 0
    assert "spare" not in yaml.safe_load(config.read_text())["oscar"]


def cli_no_config(args: list[str]) -> tuple[int, str, str]:
    from tests.cli.test_commands import runner

    # A config file in the environment: the group's --config must win over it, as in cobra.
    result = runner.invoke(app, args, env={"OSCAR_CLI_CONFIG": "/nonexistent/oscar-cli.yaml"})
    return result.exit_code, result.stdout, result.stderr


def test_get_file_defaults_to_first_output(
    local: tuple[RunningServer, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, config = local
    assert cli(config, "apply", str(EXAMPLES_DIR / "word-count" / "word-count.yaml"))[0] == 0
    story = tmp_path / "tale.txt"
    story.write_text("a b c\n")
    code, _, err = cli(config, "service", "pf", "word-count", str(story), "--no-progress")
    assert code == 0, err

    def listed() -> bool:
        out = cli(config, "service", "lsf", "word-count", "minio.default", "word-count/out/")[1]
        return "tale.txt.count" in out

    common.wait_until(listed, timeout=60, what="word count output")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    # No provider, no remote path: the newest file under the first output, into the cwd.
    code, out, err = cli(config, "service", "get-file", "word-count", "--download-latest-into")
    assert code == 0, err
    assert (work / "tale.txt.count").read_text().strip() == "3"
    assert out.strip() == str(work / "tale.txt.count")
    code, out, err = cli(
        config, "service", "gf", "word-count", "word-count/out/tale.txt.count", "--no-progress"
    )
    assert code == 0 and out.strip() == str(work / "tale.txt.count"), err
    into = tmp_path / "into" / "sub"
    code, _, err = cli(
        config, "service", "get-file", "word-count", f"--download-latest-into={into}/"
    )
    assert code == 0, err
    assert (into / "tale.txt.count").read_text().strip() == "3"
    code, _, err = cli(config, "service", "get-file", "word-count")
    assert code == 1 and "REMOTE_PATH" in err
    code, _, err = cli(
        config, "service", "rmf", "word-count", "minio.default", "word-count/in/tale.txt"
    )
    assert code == 0, err
    out = cli(config, "service", "list-files", "word-count", "minio.default", "word-count/in/")[1]
    assert "tale.txt" not in out


def test_bucket_aliases_and_server_limit(local: tuple[RunningServer, Path], tmp_path: Path) -> None:
    server, config = local
    assert cli(config, "bucket", "create", "aliased")[0] == 0
    server.s3().put_object(Bucket="aliased", Key="one.txt", Body=b"1")
    code, out, _ = cli(config, "b", "ls")
    assert code == 0 and "ALLOWED_USERS" in out.splitlines()[0] and "aliased" in out
    code, out, err = cli(config, "buckets", "g", "aliased", "-o", "json")  # no --limit sent
    assert code == 0, err
    assert [o["object_name"] for o in json.loads(out)["objects"]] == ["one.txt"]


def test_interactive_is_not_supported_and_version(tmp_path: Path) -> None:
    code, _, err = cli(tmp_path / "c.yaml", "interactive")
    assert code == 2 and "not supported" in err
    assert cli(tmp_path / "c.yaml", "ui")[0] == 2
    from tests.cli.test_commands import runner

    result = runner.invoke(app, ["v"])
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0].startswith("version: ")
    assert result.stdout.splitlines()[1].startswith("git commit:")


def _hub_stand_in(root: Path) -> Path:
    """A local stand-in for GitHub's contents API serving an OSCAR Hub (no internet here):
    folder listings are JSON `index.html` files (the static server redirects `dir?ref=` to
    `dir/?ref=` and serves them), files are served raw."""
    contents = root / "repos" / "grycap" / "oscar-hub" / "contents" / "crates"
    crate = contents / "cowsay"
    crate.mkdir(parents=True)
    (contents / "empty").mkdir()
    (contents / "empty" / "index.html").write_text("[]")
    listing = [
        {"name": "cowsay", "path": "crates/cowsay", "type": "dir"},
        {"name": "empty", "path": "crates/empty", "type": "dir"},
        {"name": "README.md", "path": "crates/README.md", "type": "file"},
    ]
    (contents / "index.html").write_text(json.dumps(listing))
    (crate / "cowsay.yaml").write_text((EXAMPLES_DIR / "cowsay" / "cowsay.yaml").read_text())
    (crate / "cowsay.sh").write_text((EXAMPLES_DIR / "cowsay" / "cowsay.sh").read_text())
    (crate / "input.txt").write_text("from the crate")
    metadata = {
        "@context": "https://w3id.org/ro/crate/1.1/context",
        "@graph": [
            {"@id": "ro-crate-metadata.json", "about": {"@id": "./"}},
            {
                "@id": "./",
                "@type": "Dataset",
                "name": "Cowsay",
                "description": "An ASCII cow",
                "creator": {"@id": "#grycap"},
                "subjectOf": [{"@id": "#text-test"}, {"@id": "#file-test"}],
            },
            {"@id": "#grycap", "@type": "Organization", "name": "GRyCAP"},
            {
                "@id": "#text-test",
                "name": "says hello",
                "command": "oscar-cli service run cowsay --text-input 'hello hub'",
                "expectedSubstring": "< hello hub >",
            },
            {
                "@id": "#file-test",
                "name": "says the file",
                "command": "oscar-cli service run cowsay -f input.txt",
                "expectedSubstring": "< from the crate >",
                "supply": {"@id": "input.txt"},
            },
            {"@id": "input.txt", "@type": "File", "name": "input.txt"},
        ],
    }
    (crate / "ro-crate-metadata.json").write_text(json.dumps(metadata))
    files = ["cowsay.yaml", "cowsay.sh", "input.txt", "ro-crate-metadata.json"]
    (crate / "index.html").write_text(
        json.dumps([{"name": n, "path": f"crates/cowsay/{n}", "type": "file"} for n in files])
    )
    return crate


def test_hub_list_deploy_validate_against_a_stand_in(
    local: tuple[RunningServer, Path], tmp_path: Path
) -> None:
    server, config = local
    root = tmp_path / "hub"
    crate = _hub_stand_in(root)
    with static_site(root, "[]") as hub_url:
        code, out, err = cli(config, "hub", "list", "--api-base", hub_url)
        assert code == 0, err
        assert out.split() == ["SLUG", "NAME", "CREATOR", "cowsay", "Cowsay", "GRyCAP"]
        code, out, err = cli(config, "h", "list", "--api-base", hub_url, "--json")
        (entry,) = json.loads(out)["services"]
        assert entry["slug"] == "cowsay" and entry["description"] == "An ASCII cow"
        code, out, err = cli(config, "hub", "deploy", "cowsay", "--api-base", hub_url)
        assert code == 0, err
        assert 'Creating service "cowsay" in cluster "local"' in out
        stored = server.client().get("/system/services/cowsay").json()
        assert stored["script"] == (EXAMPLES_DIR / "cowsay" / "cowsay.sh").read_text()
        # Neither the cluster's password nor its store's admin keys are copied into it.
        assert "local" not in stored["storage_providers"].get("minio", {})
        assert not stored.get("clusters")
        code, out, err = cli(config, "hub", "validate", "cowsay", "--api-base", hub_url)
        assert code == 0, err
        assert "- [PASS] says hello" in out and "- [PASS] says the file" in out
        code, out, err = cli(config, "hub", "validate", "cowsay", "--api-base", hub_url, "-n", "x")
        assert code == 1 and "2 of 2 acceptance tests failed" in err
        code, _, err = cli(config, "hub", "deploy", "nothing-here", "--api-base", hub_url)
        assert code == 1 and "not found in the hub" in err
    code, out, err = cli(config, "hub", "deploy", "cowsay", "--local-path", str(crate), "-n", "moo")
    assert code == 0, err
    assert _names(server) == {"cowsay", "moo"}
    code, out, err = cli(config, "hub", "check", "cowsay", "--local-path", str(crate), "-n", "moo")
    assert code == 0 and "- [PASS] says the file" in out, err
    code, _, err = cli(config, "hub", "list", "--api-base", hub_url)  # the stand-in is gone
    assert code == 1 and "cannot reach the hub" in err


def test_hub_validate_fails_steps_it_cannot_run(
    local: tuple[RunningServer, Path], tmp_path: Path
) -> None:
    _, config = local
    crate = _hub_stand_in(tmp_path / "hub")
    metadata = json.loads((crate / "ro-crate-metadata.json").read_text())
    graph = metadata["@graph"]
    graph[1]["subjectOf"] = [{"@id": "#upload"}, {"@id": "#structured"}]
    graph.append({"@id": "#upload", "name": "uploads", "command": "oscar-cli service put-file x f"})
    graph.append({"@id": "#structured", "name": "structured only"})
    (crate / "ro-crate-metadata.json").write_text(json.dumps(metadata))
    assert cli(config, "hub", "deploy", "cowsay", "--local-path", str(crate))[0] == 0
    code, out, err = cli(config, "hub", "validate", "cowsay", "--local-path", str(crate))
    assert code == 1 and "2 of 2 acceptance tests failed" in err
    assert "unsupported acceptance command" in out and "no executable steps" in out
