"""Settings that cannot work together are refused before anything starts, with the reason."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from oscar.settings import Settings
from tests.fixtures.server import clean_env


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"job_store": "kubernetes"}, "OSCAR_JOB_STORE=kubernetes needs OSCAR_EXECUTOR=kubernetes"),
        (
            {"job_store": "kubernetes", "executor": "kubernetes", "hpc_executor": "slurm"},
            "not OSCAR_HPC_EXECUTOR=slurm",
        ),
        (
            {"leader_election": True, "executor": "kubernetes"},
            "OSCAR_LEADER_ELECTION needs OSCAR_JOB_STORE=kubernetes",
        ),
    ],
)
def test_records_and_election_need_kubernetes(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**values)


def test_a_stateless_control_plane_is_accepted() -> None:
    settings = Settings(
        executor="kubernetes", registry="kubernetes", job_store="kubernetes", leader_election=True
    )
    assert settings.lease_name == "oscar-control-plane" and settings.lease_duration == 15


def test_oscar_serve_says_why_and_exits_2(tmp_path: object) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "oscar", "serve", "--data-dir", str(tmp_path)],
        env=clean_env(OSCAR_JOB_STORE="kubernetes"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "OSCAR_JOB_STORE=kubernetes needs OSCAR_EXECUTOR=kubernetes" in result.stderr
    assert "Traceback" not in result.stderr
