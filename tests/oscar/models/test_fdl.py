"""FDL parsing: examples, script inlining, shared providers and located errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from oscar.models.fdl import FDLError, load_fdl, parse_fdl
from tests.fixtures.services import EXAMPLES_DIR

EXAMPLES = sorted(EXAMPLES_DIR.glob("*/*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_load(path: Path) -> None:
    fdl = load_fdl(path)
    assert fdl.services
    for entry in fdl.services:
        assert entry.service.script.strip()
        assert "\n" in entry.service.script  # the script file was inlined


def test_script_file_is_inlined_relative_to_the_fdl(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "run.sh").write_text("#!/bin/sh\necho from-file\n")
    fdl_path = tmp_path / "svc.yaml"
    fdl_path.write_text(
        "functions:\n  oscar:\n  - local:\n      name: svc\n      image: alpine\n"
        "      script: scripts/run.sh\n"
    )
    fdl = load_fdl(fdl_path)
    assert fdl.services[0].cluster_id == "local"
    assert fdl.services[0].service.cluster_id == "local"
    assert fdl.services[0].service.script == "#!/bin/sh\necho from-file\n"


def test_multi_line_script_is_taken_verbatim() -> None:
    text = (
        "functions:\n  oscar:\n  - c1:\n      name: svc\n      image: alpine\n"
        "      script: |\n        echo one\n        echo two\n"
    )
    assert parse_fdl(text).services[0].service.script == "echo one\necho two\n"


def test_top_level_providers_and_clusters_are_merged_into_each_service() -> None:
    text = """
functions:
  oscar:
  - c1:
      name: svc
      image: alpine
      script: |
        echo
      output:
      - storage_provider: s3.aws
        path: results/out
      storage_providers:
        webdav:
          mine: {hostname: dav.example.org, login: u, password: p}
storage_providers:
  s3:
    aws: {access_key: ak, secret_key: sk, region: eu-west-1}
clusters:
  c2: {endpoint: "https://other.example.org", auth_user: u, auth_password: p, ssl_verify: true}
"""
    fdl = parse_fdl(text)
    service = fdl.services[0].service
    assert service.storage_providers.s3["aws"].region == "eu-west-1"
    assert service.storage_providers.webdav["mine"].hostname == "dav.example.org"
    assert service.clusters["c2"].endpoint == "https://other.example.org"
    assert fdl.storage_providers.s3["aws"].access_key == "ak"


def test_errors_name_file_service_field_and_line(tmp_path: Path) -> None:
    fdl_path = tmp_path / "bad.yaml"
    fdl_path.write_text(
        "functions:\n"
        "  oscar:\n"
        "  - c1:\n"
        "      name: good-name\n"
        "      image: alpine\n"
        "      script: |\n"
        "        echo\n"
        "      memory: a-lot\n"
        "      input:\n"
        "      - storage_provider: nowhere.x\n"
        "        path: b/in\n"
    )
    with pytest.raises(FDLError) as excinfo:
        load_fdl(fdl_path)
    message = str(excinfo.value)
    assert str(fdl_path) in message
    assert "service 'good-name'" in message
    by_field = {e.field.removeprefix("functions.oscar[0].c1."): e for e in excinfo.value.errors}
    assert by_field["memory"].line == 8
    provider_error = next(e for f, e in by_field.items() if f.startswith("input[0]"))
    assert provider_error.line in {10, 11}
    assert "nowhere.x" in provider_error.message


def test_missing_script_file_is_reported_with_other_errors(tmp_path: Path) -> None:
    fdl_path = tmp_path / "svc.yaml"
    fdl_path.write_text(
        "functions:\n  oscar:\n  - c1:\n      name: svc\n      image: alpine\n"
        "      script: missing.sh\n      cpu: lots\n"
    )
    with pytest.raises(FDLError) as excinfo:
        load_fdl(fdl_path)
    fields = {e.field.rsplit(".", 1)[-1] for e in excinfo.value.errors}
    assert {"script", "cpu"} <= fields
    assert "missing.sh" in str(excinfo.value)


def test_yaml_syntax_error_has_line() -> None:
    with pytest.raises(FDLError) as excinfo:
        parse_fdl("functions:\n  oscar:\n  - c1: {name: svc\n", source="x.yaml")
    assert excinfo.value.errors[0].line is not None
    assert "invalid YAML" in str(excinfo.value)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("just a string", ""),
        ("other: 1", "functions"),
        ("functions: {oscar: []}", "functions.oscar"),
        ("functions: {oscar: [7]}", "functions.oscar[0]"),
        ("functions: {oscar: [{c1: 5}]}", "functions.oscar[0].c1"),
        ("functions: {oscar: [{c1: {name: s}}]}\nstorage_providers: [1]", "storage_providers"),
    ],
)
def test_structural_errors(text: str, field: str) -> None:
    with pytest.raises(FDLError) as excinfo:
        parse_fdl(text)
    assert excinfo.value.errors[0].field == field


def test_unreadable_fdl_file(tmp_path: Path) -> None:
    with pytest.raises(FDLError, match="cannot read FDL file"):
        load_fdl(tmp_path / "nope.yaml")
