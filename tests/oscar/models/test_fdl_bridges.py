"""FDL `bridges:`: parsed with the services, every error with its path and YAML line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from oscar.models.bridge import KafkaBridge, WebDavBridge
from oscar.models.fdl import FDLError, parse_fdl
from tests.fixtures.server import clean_env

SERVICE = """\
functions:
  oscar:
  - local:
      name: dav-in
      image: alpine
      script: |
        echo
      input:
      - {storage_provider: webdav.dav, path: data/in}
      storage_providers:
        webdav:
          dav: {hostname: "http://127.0.0.1:9", login: u, password: p}
"""


def test_bridges_are_parsed_with_the_services() -> None:
    fdl = parse_fdl(
        SERVICE
        + """\
bridges:
- name: watch-dav
  type: webdav
  service: dav-in
  interval: 2
- name: topic
  type: kafka
  service: dav-in
  bootstrap_servers: "k:9092"
  topic: t
  payload: raw
  credentials: {sasl_username: u, sasl_password: secret}
"""
    )
    assert [s.service.name for s in fdl.services] == ["dav-in"]
    webdav, kafka = fdl.bridges
    assert isinstance(webdav, WebDavBridge) and webdav.interval == 2
    assert isinstance(kafka, KafkaBridge) and kafka.secret("sasl_password") == "secret"
    assert fdl.line_of("bridges[1].topic") == 22


def test_a_file_without_bridges_has_none() -> None:
    assert parse_fdl(SERVICE).bridges == []


def test_bridge_errors_carry_path_and_line_with_the_service_errors() -> None:
    text = (
        SERVICE.replace("image: alpine", "image: alpine\n      memory: lots")
        + """\
bridges:
- name: Bad_Name
  type: webdav
  service: dav-in
- name: k
  type: kafka
  service: dav-in
  topic: t
  intervall: 3
- {name: q, type: nats, service: dav-in}
- name: k
  type: kafka
  service: dav-in
  bootstrap_servers: "k:1"
  topic: t
"""
    )
    with pytest.raises(FDLError) as excinfo:
        parse_fdl(text, source="f.yaml")
    errors = {e.field: e for e in excinfo.value.errors}
    # All errors at once: the service's and every bridge's.
    assert errors["functions.oscar[0].local.memory"].line == 6
    assert errors["bridges[0].name"].line == 15
    assert "must be 1-63 lowercase" in errors["bridges[0].name"].message
    assert errors["bridges[1].bootstrap_servers"].message == "is required"
    assert errors["bridges[1].bootstrap_servers"].line == 18  # the bridge's own line
    assert errors["bridges[1].intervall"].line == 22
    assert errors["bridges[2].type"].line == 23
    assert "must be one of webdav, dcache, sqs, kafka, minio" in errors["bridges[2].type"].message


def test_a_name_used_twice_is_refused() -> None:
    text = SERVICE + (
        "bridges:\n"
        "- {name: twice, type: webdav, service: dav-in}\n"
        "- {name: twice, type: webdav, service: dav-in}\n"
    )
    with pytest.raises(FDLError) as excinfo:
        parse_fdl(text)
    (error,) = excinfo.value.errors
    assert error.field == "bridges[1].name" and error.line == 15
    assert "already defined by bridges[0]" in error.message


@pytest.mark.parametrize(
    ("bridges", "field", "line"),
    [("bridges: {name: x}\n", "bridges", 13), ("bridges:\n- just text\n", "bridges[0]", 14)],
)
def test_structural_errors(bridges: str, field: str, line: int) -> None:
    with pytest.raises(FDLError) as excinfo:
        parse_fdl(SERVICE + bridges)
    (error,) = excinfo.value.errors
    assert (error.field, error.line) == (field, line)


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oscar", "validate", str(path)],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_oscar_validate_checks_bridges_against_their_service_in_the_file(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(SERVICE + "bridges:\n- {name: watch, type: webdav, service: dav-in}\n")
    result = _validate(good)
    assert result.returncode == 0, result.stderr
    assert "ok: dav-in (cluster local); bridges: watch → dav-in" in result.stdout

    # A dcache bridge feeds a webdav input: fine. An s3-payload sqs bridge needs a minio or
    # s3 input, which this service lacks; a bridge for a service elsewhere is not checked.
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        SERVICE
        + "bridges:\n"
        + "- {name: d, type: dcache, service: dav-in, endpoint: 'https://d/api/v1'}\n"
        + "- {name: q, type: sqs, service: dav-in, queue: q}\n"
        + "- {name: elsewhere, type: sqs, service: other, queue: q}\n"
    )
    result = _validate(bad)
    assert result.returncode == 1
    assert f"{bad}:15: bridges[1].payload: service 'dav-in' has no minio or s3 input" in (
        result.stderr
    )
    assert "bridges[0]" not in result.stderr and "bridges[2]" not in result.stderr
    assert "Traceback" not in result.stderr
