"""oscar-cli's OIDC logins against a real Keycloak and a real `oscar serve` that trusts it: the
device-code flow approved in headless Chromium, refresh-token exchange and rotation, a revoked
login, and oidc-agent.

One server for the module (OIDC on), one config file per test; every wait polls with a deadline.
oidc-agent is the real daemon too (Debian's `oidc-agent-cli`, with its own socket and folder per
test), holding a login made with `oidc-gen --rt` from a Keycloak refresh token.
"""

from __future__ import annotations

import functools
import json
import queue
import shutil
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import httpx
import pytest
import typer.main
import yaml
from click.testing import CliRunner

from cli import config as config_file
from cli.main import app
from cli.oidc import Logins
from tests.fixtures.oidc import OidcRealm, unverified
from tests.fixtures.server import RunningServer, clean_env, start_server
from tests.services import common

pytestmark = pytest.mark.keycloak
runner = CliRunner()
CLIENT = "oscar-cli"
CLI_COMMAND = [sys.executable, "-c", "from cli.main import main; main()"]
FDL = """\
functions:
  oscar:
  - {cluster}:
      name: {name}
      image: ghcr.io/grycap/cowsay
      script: |
        echo hi
"""


@functools.cache
def command() -> click.Command:
    """oscar-cli's click command, built once: typer's runner builds all 300-odd commands and
    aliases again at each call (about 0.3 s, several times that on a loaded machine)."""
    return typer.main.get_command(app)


def cli(config: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(command(), [*args, "--config", str(config)])
    return result.exit_code, result.stdout, result.stderr


def entry(config: Path, cluster_id: str) -> dict[str, Any]:
    return yaml.safe_load(config.read_text())["oscar"][cluster_id]


@pytest.fixture(scope="module")
def oidc_server(
    oidc_realm: OidcRealm, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """One `oscar serve` trusting the realm (group `vo.oscar.test`, audience `oscar`)."""
    running = start_server(
        tmp_path_factory.mktemp("oidc-cli") / "data",
        extra_env={
            "OSCAR_OIDC_ISSUERS": oidc_realm.issuer,
            "OSCAR_OIDC_AUDIENCE": "oscar",
            "OSCAR_OIDC_GROUPS": "vo.oscar.test",
            "OSCAR_OIDC_CLIENT_ID": CLIENT,
            # Users define services here (the local executor runs scripts as the server).
            "OSCAR_LOCAL_USER_SERVICES": "true",
        },
    )
    yield running
    running.stop()


@contextmanager
def client_attributes(realm: OidcRealm, client_id: str, **attributes: str) -> Iterator[None]:
    """Set attributes of a realm client (through Keycloak's admin API) while the block runs."""
    admin = realm.keycloak.admin()
    client = realm.client_representation(client_id)
    url = f"/{realm.name}/clients/{client['id']}"
    before = dict(client.get("attributes") or {})
    client["attributes"] = {**before, **attributes}
    admin.put(url, json=client).raise_for_status()
    try:
        yield
    finally:
        # Keycloak keeps an attribute a PUT leaves out: each one set here is put back
        # explicitly, empty ("use the realm's default") when it was not set before.
        client["attributes"] = {**before, **{key: before.get(key, "") for key in attributes}}
        admin.put(url, json=client).raise_for_status()


@pytest.fixture(scope="module")
def quick_device_polling(oidc_realm: OidcRealm) -> Iterator[None]:
    """Keycloak asks device clients to poll every 5 s; 1 s for `oscar-cli` while this module
    runs (the CLI honours whatever the provider says)."""
    with client_attributes(oidc_realm, CLIENT, **{"oauth2.device.polling.interval": "1"}):
        yield


def _add_with_refresh_token(
    config: Path, server: RunningServer, realm: OidcRealm, user: str
) -> str:
    refresh_token = realm.tokens(user, CLIENT)["refresh_token"]
    code, out, err = cli(
        config,
        "cluster",
        "add",
        "kc",
        server.url,
        "-t",
        refresh_token,
        "--oidc-issuer",
        realm.issuer,
        "--oidc-client-id",
        CLIENT,
    )
    assert code == 0, err
    assert refresh_token not in out + err
    return refresh_token


def _read_lines(stream: Any, lines: queue.Queue[str]) -> None:
    for line in iter(stream.readline, ""):
        lines.put(line)
    lines.put("")


@pytest.mark.browser
def test_device_login_end_to_end(
    oidc_realm: OidcRealm, oidc_server: RunningServer, quick_device_polling: None, tmp_path: Path
) -> None:
    """`cluster add --device` asks the server which provider and client to use, shows the
    code, waits while the user approves it in a browser, and stores a working login."""
    config = tmp_path / "cli" / "config.yaml"
    process = subprocess.Popen(
        [
            *CLI_COMMAND,
            "cluster",
            "add",
            "kc",
            oidc_server.url,
            "--device",
            "--config",
            str(config),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=clean_env(),
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=_read_lines, args=(process.stderr, lines), daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 30
        complete = ""
        while not complete and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if not line:
                break
            seen.append(line)
            if "user_code=" in line:
                complete = line.strip()
        assert complete.startswith(oidc_realm.issuer), "".join(seen) or process.poll()
        oidc_realm.approve_device_code(complete, "owner")
        # Not communicate(): it would read stderr too, racing the reader thread for the lines.
        process.wait(timeout=60)
        out = process.stdout.read() if process.stdout else ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    reader.join(timeout=5)
    for pipe in (process.stdout, process.stderr):
        if pipe:
            pipe.close()
    while not lines.empty():
        seen.append(lines.get())
    err = "".join(seen)
    assert process.returncode == 0, err
    assert "cluster 'kc' added" in out
    assert "enter the code" in err and "waiting for the approval" in err
    assert "login approved" in err
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    stored = entry(config, "kc")
    assert stored["oidc_refresh_token"]
    assert stored["oidc_issuer"] == oidc_realm.issuer
    assert stored["oidc_client_id"] == CLIENT
    assert stored["oidc_token_endpoint"].startswith(oidc_realm.issuer)
    assert stored["oidc_refresh_token"] not in out + err
    code, _, err = cli(config, "cluster", "status")
    assert code == 0, err


def test_refresh_token_exchange_rotation_and_owner(
    oidc_realm: OidcRealm, oidc_server: RunningServer, tmp_path: Path
) -> None:
    """A refresh token got elsewhere (here by Keycloak's password grant) works with `-t
    --oidc-issuer --oidc-client-id`; each run stores the rotated token, the server sees the
    user, and --debug shows no token."""
    config = tmp_path / "config.yaml"
    first = _add_with_refresh_token(config, oidc_server, oidc_realm, "allowed")
    stored = entry(config, "kc")
    discovery = httpx.get(f"{oidc_realm.issuer}/.well-known/openid-configuration").json()
    assert stored["oidc_token_endpoint"] == discovery["token_endpoint"]
    fdl = tmp_path / "svc.yaml"
    fdl.write_text(FDL.format(cluster="kc", name="oidc-cli-owned"))
    code, out, err = cli(config, "apply", str(fdl))
    assert code == 0, err
    rotated = entry(config, "kc")["oidc_refresh_token"]
    assert rotated and rotated != first  # Keycloak answers every refresh with a new token
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    code, out, err = cli(config, "service", "list", "-o", "json", "--debug")
    assert code == 0, err
    assert [s["name"] for s in json.loads(out)] == ["oidc-cli-owned"]
    assert "authorization: Bearer ***" in err
    assert entry(config, "kc")["oidc_refresh_token"] != rotated
    assert rotated not in err and entry(config, "kc")["oidc_refresh_token"] not in err
    owned = oidc_server.client().get("/system/services/oidc-cli-owned").json()
    assert owned["owner"] == oidc_realm.users["allowed"].subject
    code, _, err = cli(config, "service", "delete", "oidc-cli-owned")
    assert code == 0, err


def test_one_exchange_per_run(
    oidc_realm: OidcRealm, oidc_server: RunningServer, tmp_path: Path
) -> None:
    """Within one run the access token is asked for once and reused from memory."""
    config = tmp_path / "config.yaml"
    _add_with_refresh_token(config, oidc_server, oidc_realm, "allowed")
    cluster = config_file.load(config).oscar["kc"]
    logins = Logins()
    token = logins.access_token("kc", cluster, config)
    after_first = entry(config, "kc")["oidc_refresh_token"]
    assert logins.access_token("kc", cluster, config) == token
    assert entry(config, "kc")["oidc_refresh_token"] == after_first  # no second exchange
    assert unverified(token)[1]["sub"] == oidc_realm.users["allowed"].subject


@pytest.mark.parametrize("how", ["revoked", "garbage"])
def test_dead_refresh_token_says_log_in_again(
    oidc_realm: OidcRealm, oidc_server: RunningServer, tmp_path: Path, how: str
) -> None:
    config = tmp_path / "config.yaml"
    refresh_token = _add_with_refresh_token(config, oidc_server, oidc_realm, "allowed")
    if how == "revoked":
        discovery = httpx.get(f"{oidc_realm.issuer}/.well-known/openid-configuration").json()
        revoked = httpx.post(
            discovery["revocation_endpoint"],
            data={"token": refresh_token, "token_type_hint": "refresh_token", "client_id": CLIENT},
        )
        assert revoked.status_code == 200, revoked.text
    else:
        data = yaml.safe_load(config.read_text())
        data["oscar"]["kc"]["oidc_refresh_token"] = "not-a-refresh-token"
        config.write_text(yaml.safe_dump(data))
    code, _, err = cli(config, "service", "list")
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "the OIDC login of cluster 'kc' has expired or was revoked (invalid_grant" in lines[0]
    assert f"log in again: oscar-cli cluster add kc {oidc_server.url} --device" in lines[0]
    assert "Traceback" not in err and refresh_token not in err


def test_device_code_that_nobody_approves_expires(
    oidc_realm: OidcRealm, oidc_server: RunningServer, quick_device_polling: None, tmp_path: Path
) -> None:
    """The CLI stops polling when the provider says the code expired, and stores nothing."""
    config = tmp_path / "config.yaml"
    with client_attributes(oidc_realm, CLIENT, **{"oauth2.device.code.lifespan": "1"}):
        started = time.monotonic()
        code, _, err = cli(config, "cluster", "add", "kc", oidc_server.url, "--device")
    assert code == 1
    assert "enter the code" in err
    assert err.strip().splitlines()[-1].startswith("error: the login code ")
    assert "expired before it was approved: run the command again" in err
    assert time.monotonic() - started < 15
    assert not config.exists()


def test_device_login_needs_a_cluster_with_oidc(server: RunningServer, tmp_path: Path) -> None:
    """The session server has no issuer: its /auth/config says OIDC is off."""
    config = tmp_path / "config.yaml"
    code, _, err = cli(config, "cluster", "add", "plain", server.url, "--device")
    assert code == 1
    assert err.strip().splitlines() == [
        f"error: the cluster at {server.url} does not accept OIDC logins "
        "(its /auth/config says OIDC is disabled)"
    ]
    assert not config.exists()


OIDC_AGENT_INSTALL = "apt-get install oidc-agent-cli"


def _gone(pid: int) -> bool:
    """Whether `pid` has exited (a zombie nobody reaps counts: it holds nothing)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


@pytest.fixture
def oidc_agent(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A real oidc-agent daemon of this test only (its own socket and account folder): the
    environment that reaches it."""
    if shutil.which("oidc-agent") is None or shutil.which("oidc-gen") is None:
        pytest.fail(f"oidc-agent is not installed: {OIDC_AGENT_INSTALL}")
    home = tmp_path / "oidc-agent"
    home.mkdir()
    env = clean_env(OIDC_CONFIG_DIR=str(home / "config"), TMPDIR=str(home))
    started = subprocess.run(
        ["oidc-agent", "--json", "--no-autoload"],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=30,
        check=True,
    )
    agent = json.loads(started.stdout)
    pid = int(agent["dpid"])
    env.update(OIDC_SOCK=agent["socket"], OIDCD_PID=str(pid))
    try:
        yield env
    finally:
        subprocess.run(["oidc-agent", "--kill"], env=env, capture_output=True, timeout=30)
        common.wait_until(lambda: _gone(pid), timeout=10, what="oidc-agent stopped")


def test_oidc_agent_account(
    oidc_realm: OidcRealm,
    oidc_server: RunningServer,
    oidc_agent: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`-o ACCOUNT` asks the local oidc-agent, which holds the user's login."""
    tokens = oidc_realm.tokens("allowed", CLIENT)
    subprocess.run(
        [
            "oidc-gen",
            "kc-allowed",
            f"--issuer={oidc_realm.issuer}",
            f"--client-id={CLIENT}",
            "--client-secret=",
            "--scope=openid profile email",
            f"--rt={tokens['refresh_token']}",
            "--no-save",
            "--no-url-call",
            "--confirm-default",
        ],
        env=oidc_agent,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    for name in ("OIDC_SOCK", "OIDCD_PID"):
        monkeypatch.setenv(name, oidc_agent[name])
    config = tmp_path / "config.yaml"
    code, _, err = cli(config, "cluster", "add", "agent", oidc_server.url, "-o", "kc-allowed")
    assert code == 0, err
    fdl = tmp_path / "svc.yaml"
    fdl.write_text(FDL.format(cluster="agent", name="oidc-agent-owned"))
    code, _, err = cli(config, "apply", str(fdl))
    assert code == 0, err
    owned = oidc_server.client().get("/system/services/oidc-agent-owned").json()
    assert owned["owner"] == oidc_realm.users["allowed"].subject
    assert cli(config, "service", "delete", "oidc-agent-owned")[0] == 0
    monkeypatch.delenv("OIDC_SOCK")
    code, _, err = cli(config, "service", "list")
    assert code == 1 and "oidc-agent could not give a token for 'agent'" in err
