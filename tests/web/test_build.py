"""The committed dashboard (`oscar/ui/static`) is exactly the build of its source (`web/src`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.web


def test_the_committed_build_matches_the_source(web: Path) -> None:
    check = subprocess.run(
        ["node", "build.mjs", "--check"],
        cwd=web,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "matches the build of web/src" in check.stdout
