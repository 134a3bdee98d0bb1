"""`oscar-cli bridge ...` and FDL bridges through `oscar-cli apply/delete`, against a real
`oscar serve` (the session's: every test uses names of its own).

The bridges created here watch servers that are not there (WebDAV and dCache on closed ports:
refused at once), so they show an error state. No Kafka bridge is created: while its broker
cannot be reached, stopping one (update, delete) waits for the client's bootstrap timeout.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import yaml

from tests.cli.test_commands import add_local_cluster, cli
from tests.fixtures.server import RunningServer, free_port
from tests.services import common

SECRET = "dav-secret-4c1d"


def _fdl(name: str, bridges: str = "") -> str:
    """A service with a webdav input on a port nothing listens on (its bridges fail, which
    shows as their state), plus `bridges`."""
    return f"""\
functions:
  oscar:
  - local:
      name: {name}
      image: alpine
      script: |
        echo
      input:
      - {{storage_provider: webdav.dav, path: data/in}}
      storage_providers:
        webdav:
          dav: {{hostname: "http://127.0.0.1:{free_port()}", login: u, password: p}}
{bridges}"""


@pytest.fixture
def config(server: RunningServer, tmp_path: Path) -> Path:
    """An oscar-cli configuration whose default cluster `local` is the session server."""
    return add_local_cluster(tmp_path / "cli" / "config.yaml", server)


@pytest.fixture
def service(config: Path, tmp_path: Path) -> str:
    """A fresh service with a webdav input, applied with oscar-cli."""
    name = f"br-{uuid.uuid4().hex[:8]}"
    fdl = tmp_path / "service.yaml"
    fdl.write_text(_fdl(name))
    code, _, err = cli(config, "apply", str(fdl))
    assert code == 0, err
    return name


def _bridges(config: Path) -> dict[str, dict]:
    code, out, err = cli(config, "bridge", "list", "-o", "json")
    assert code == 0, err
    return {b["name"]: b for b in json.loads(out)}


def test_apply_list_get_delete(config: Path, service: str, tmp_path: Path) -> None:
    dav, topic = f"{service}-dav", f"{service}-auth"
    file = tmp_path / "bridges.yaml"
    file.write_text(
        yaml.safe_dump(
            [
                {"name": dav, "type": "webdav", "service": service, "interval": 0.5},
                {
                    "name": topic,
                    "type": "webdav",
                    "service": service,
                    "folder": "data/other",
                    "credentials": {"user": "u", "password": SECRET},
                },
            ]
        )
    )
    code, out, err = cli(config, "bridge", "apply", str(file))
    assert code == 0, err
    assert out.splitlines() == [
        f"bridge '{dav}' created on 'local'",
        f"bridge '{topic}' created on 'local'",
    ]
    code, out, err = cli(config, "bridges", "a", str(file), "--debug")  # aliases
    assert code == 0, err
    assert f"bridge '{topic}' updated on 'local'" in out
    assert SECRET not in out + err  # --debug shows the exchange, credentials masked

    def failing() -> dict | None:
        found = _bridges(config).get(dav)
        return found if found and found["status"]["state"] == "error" else None

    common.wait_until(failing, timeout=30, what="the webdav bridge reports its error")
    code, out, _ = cli(config, "bridge", "list")
    header, *rows = out.splitlines()
    assert header.split() == [
        "NAME",
        "TYPE",
        "SERVICE",
        "STATE",
        "LAST_EVENT",
        "LAG",
        "EVENTS",
        "ERRORS",
        "MESSAGE",
    ]
    row = next(r for r in rows if r.startswith(f"{dav} "))
    assert row.split()[1:5] == ["webdav", service, "error", "0"]  # no event yet: blank age
    assert SECRET not in out

    code, out, err = cli(config, "bridge", "get", topic, "-o", "json")
    assert code == 0, err
    answer = json.loads(out)
    assert answer["credentials"] == {"password": "********", "user": "********"}
    assert answer["folder"] == "data/other" and "status" in answer
    code, out, _ = cli(config, "bridge", "get", topic)
    assert yaml.safe_load(out)["name"] == topic and SECRET not in out

    # `get -o yaml` output applies back unchanged: the masked credentials keep the stored ones.
    saved = tmp_path / "saved.yaml"
    saved.write_text(out)
    code, out, err = cli(config, "bridge", "apply", str(saved))
    assert code == 0, err
    assert out.strip() == f"bridge '{topic}' updated on 'local'"

    code, out, err = cli(config, "bridge", "delete", dav, topic)
    assert code == 0, err
    assert out.splitlines() == [f"bridge '{dav}' deleted", f"bridge '{topic}' deleted"]
    assert not {dav, topic} & set(_bridges(config))
    code, _, err = cli(config, "bridge", "get", dav)
    assert code == 1 and "404" in err


def test_invalid_definitions_and_unknown_services_fail_with_exit_1(
    config: Path, service: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        f"- name: {service}-ok\n  type: webdav\n  service: {service}\n"
        f"- name: {service}-bad\n  type: kafka\n  service: {service}\n  topic: t\n"
        "  credentials: {password: nope}\n"
    )
    code, _, err = cli(config, "bridge", "apply", str(bad))
    assert code == 1
    assert f"{bad}:4: [1].bootstrap_servers: is required" in err
    assert f"{bad}:8: [1].credentials: unknown credential(s) password" in err
    assert "nothing was sent" in err and "nope" not in err
    assert f"{service}-ok" not in _bridges(config)  # the valid one was not sent either

    ghost = tmp_path / "ghost.yaml"
    ghost.write_text(f"name: {service}-ghost\ntype: webdav\nservice: no-such-service\n")
    code, _, err = cli(config, "bridge", "apply", str(ghost))
    assert code == 1
    assert f"bridge '{service}-ghost'" in err and "service 'no-such-service' does not exist" in err
    assert len(err.strip().splitlines()) == 1

    # A masked credential cannot create a bridge: it would become its password.
    masked = tmp_path / "masked.yaml"
    masked.write_text(
        f"name: {service}-masked\ntype: webdav\nservice: {service}\n"
        "credentials: {user: u, password: '********'}\n"
    )
    code, _, err = cli(config, "bridge", "apply", str(masked))
    assert code == 1 and "credentials are masked" in err
    assert f"{service}-masked" not in _bridges(config)

    code, _, err = cli(config, "bridge", "delete", f"{service}-never")
    assert code == 1 and "404" in err


DCNIOS = """\
nifi:
  endpoint: https://nifi.example.org
  user: admin
  password: nifi-secret
  Source:
    dCache:
      - name: dcache
        endpoint: http://127.0.0.1:{port}/api/v1
        user: duser
        password: {secret}
        folder: /data/in
        statefile: state
    Kafka:
      - name: Kafka_In
        bootstrap_servers: 127.0.0.1:{port}
        topic: uploads
        group_id: g1
        sasl_username: kuser
        sasl_password: {secret}
        ssl_context:
          Truststore_Filename: ca.p12
          Truststore_Password: p12-secret
  Destination:
    OSCAR:
      - name: invoke
        endpoint: https://oscar.example.org
        service: {service}
        token: token-secret
  connection:
    - from: dcache
      to: invoke
    - from: Kafka_In
      to: invoke
"""


def test_import_dry_run_then_apply(config: Path, service: str, tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text(DCNIOS.format(port=free_port(), secret=SECRET, service=service))
    secrets = (SECRET, "nifi-secret", "p12-secret", "token-secret")
    # A dry run needs no cluster at all.
    code, out, err = cli(tmp_path / "no-config.yaml", "bridge", "import", str(flow), "--dry-run")
    assert code == 0, err
    dcache, kafka = yaml.safe_load(out)
    assert (dcache["name"], dcache["type"], dcache["service"]) == ("dcache", "dcache", service)
    assert dcache["folder"] == "/data/in"
    assert dcache["credentials"] == {"user": "********", "password": "********"}
    assert (kafka["name"], kafka["type"], kafka["payload"]) == ("kafka-in", "kafka", "raw")
    assert kafka["credentials"] == {"sasl_username": "********", "sasl_password": "********"}
    assert f"warning: {flow}:12: nifi.Source.dCache[0].statefile:" in err
    assert f"warning: {flow}:20: nifi.Source.Kafka[0].ssl_context:" in err
    assert "'Kafka_In' is not a DNS label" in err
    assert not any(s in out + err for s in secrets)
    assert "dcache" not in _bridges(config)

    # Applied for real: the dCache connection only (a Kafka bridge would wait for its broker).
    flow.write_text(flow.read_text().replace("    - from: Kafka_In\n      to: invoke\n", ""))
    code, out, err = cli(config, "bridge", "import", str(flow))
    assert code == 0, err
    assert out.strip() == "bridge 'dcache' created on 'local'"
    assert "'Kafka_In' is connected to no OSCAR destination" in err
    assert not any(s in out + err for s in secrets)
    code, out, _ = cli(config, "bridge", "get", "dcache", "-o", "json")
    answer = json.loads(out)
    assert (answer["type"], answer["service"], answer["folder"]) == ("dcache", service, "/data/in")
    assert answer["credentials"] == {"password": "********", "user": "********"}
    code, out, _ = cli(config, "bridge", "import", str(flow))
    assert code == 0 and "bridge 'dcache' updated on 'local'" in out
    assert cli(config, "bridge", "rm", "dcache")[0] == 0

    broken = tmp_path / "broken.yaml"
    broken.write_text(flow.read_text().replace("        topic: uploads\n", ""))
    code, out, err = cli(config, "bridge", "import", str(broken))
    assert code == 1
    assert f"{broken}:14: nifi.Source.Kafka[0].topic: is required" in err
    assert not any(s in out + err for s in secrets)


def test_fdl_apply_and_delete_with_bridges(config: Path, tmp_path: Path) -> None:
    name = f"fb-{uuid.uuid4().hex[:8]}"
    fdl = tmp_path / "with-bridges.yaml"
    fdl.write_text(
        _fdl(
            name,
            f"""\
bridges:
- {{name: {name}-dav, type: webdav, service: {name}}}
- name: {name}-q
  type: webdav
  service: {name}
  folder: data/q
  credentials: {{user: u, password: {SECRET}}}
""",
        )
    )
    code, out, err = cli(config, "apply", str(fdl))
    assert code == 0, err
    assert out.splitlines() == [
        f'Applying file "{fdl.name}"...',
        f"service '{name}' created on 'local'",
        f"bridge '{name}-dav' created on 'local'",
        f"bridge '{name}-q' created on 'local'",
    ]
    assert SECRET not in out + err
    found = _bridges(config)
    assert found[f"{name}-dav"]["service"] == name and found[f"{name}-q"]["folder"] == "data/q"
    code, out, _ = cli(config, "apply", str(fdl))
    assert code == 0 and f"bridge '{name}-q' updated on 'local'" in out

    # `-n` deploys the service under another name; its bridges follow it.
    code, out, err = cli(config, "apply", str(fdl), "-n", f"{name}-2")
    assert code == 0, err
    assert _bridges(config)[f"{name}-dav"]["service"] == f"{name}-2"
    assert cli(config, "delete", str(fdl), "-n", f"{name}-2")[0] == 0

    # Bridges before services; one already gone is no error.
    code, out, err = cli(config, "delete", str(fdl))
    assert code == 0, err
    assert out.splitlines() == [
        f'Deleting file "{fdl.name}"...',
        f"bridge '{name}-dav' was not on 'local'",
        f"bridge '{name}-q' was not on 'local'",
        f"service '{name}' deleted from 'local'",
    ]
    assert not {f"{name}-dav", f"{name}-q"} & set(_bridges(config))


def test_fdl_bridge_for_an_unknown_service_fails(config: Path, tmp_path: Path) -> None:
    name = f"fu-{uuid.uuid4().hex[:8]}"
    fdl = tmp_path / "unknown.yaml"
    fdl.write_text(_fdl(name, f"bridges:\n- {{name: {name}-x, type: webdav, service: ghost}}\n"))
    code, out, err = cli(config, "apply", str(fdl))
    assert code == 1
    assert f"service '{name}' created on 'local'" in out  # the services went first
    assert f"bridge '{name}-x'" in err and "service 'ghost' does not exist" in err
    assert cli(config, "delete", str(fdl))[0] == 0

    invalid = tmp_path / "invalid.yaml"
    invalid.write_text(_fdl(name, "bridges:\n- {name: x, type: kafka, service: s}\n"))
    code, out, err = cli(config, "apply", str(invalid))
    assert code == 1 and out == ""
    assert f"{invalid}:14: bridges[0].bootstrap_servers: is required" in err
