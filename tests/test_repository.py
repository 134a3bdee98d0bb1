"""Repository conventions that CI relies on: README commands, CI script and documentation."""

from __future__ import annotations

import re

from oscar.settings import Settings
from tests.fixtures.services import REPO_ROOT


def _readme_block(heading: str) -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split(f"## {heading}", 1)[1]
    match = re.search(r"```sh\n(.+?)\n```", section, re.DOTALL)
    assert match, f"README section '{heading}' has no sh block"
    return match.group(1).strip()


def test_ci_runs_exactly_the_readme_test_command() -> None:
    command = _readme_block("Run the tests")
    ci_lines = [line.strip() for line in (REPO_ROOT / ".ci" / "run").read_text().splitlines()]
    assert command in ci_lines


def test_readme_install_command_serves() -> None:
    assert _readme_block("Install and run").endswith("oscar serve")


def test_every_setting_is_documented() -> None:
    documented = (REPO_ROOT / "docs" / "configuration.md").read_text()
    for name in Settings.model_fields:
        assert f"`OSCAR_{name.upper()}`" in documented, name
