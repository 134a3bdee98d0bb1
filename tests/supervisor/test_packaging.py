"""The supervisor ships alone: no imports from oscar/, only allowed dependencies, one-file build."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.fixtures.server import clean_env
from tests.fixtures.services import REPO_ROOT
from tests.supervisor.helpers import b64

ALLOWED_THIRD_PARTY = {"boto3", "botocore", "webdav3", "yaml"}


def _imported_top_levels() -> set[str]:
    names: set[str] = set()
    for path in (REPO_ROOT / "supervisor").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def test_imports_only_stdlib_and_allowed_dependencies() -> None:
    third_party = _imported_top_levels() - set(sys.stdlib_module_names) - {"supervisor"}
    assert "oscar" not in third_party
    assert third_party <= ALLOWED_THIRD_PARTY, third_party - ALLOWED_THIRD_PARTY


def test_zipapp_build_runs_a_job(tmp_path: Path) -> None:
    archive = tmp_path / "oscar-supervisor.pyz"
    build = subprocess.run(
        [str(REPO_ROOT / "scripts" / "build-supervisor.sh"), str(archive)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    env = clean_env(FUNCTION_CONFIG=b64("name: x\n"), SCRIPT=b64('cat "$INPUT_FILE_PATH"\n'))
    # Run from an empty folder so that only the archive can provide the `supervisor` package.
    result = subprocess.run(
        [sys.executable, "-I", str(archive)],
        input=b'{"k": "v"}',
        env=env,
        cwd=tmp_path,
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b'{"k": "v"}'
