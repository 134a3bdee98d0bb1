"""Smoke test: the real one-node Slurm runs, fails and cancels batch jobs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.services import common
from tests.services.slurm import SlurmCluster

pytestmark = pytest.mark.slurm

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"}


def _submit(slurm: SlurmCluster, script: Path, *flags: str) -> str:
    return slurm.run(["sbatch", "--parsable", *flags, str(script)]).stdout.strip().split(";")[0]


def _wait_terminal(slurm: SlurmCluster, job_id: str) -> dict[str, str]:
    def finished() -> dict[str, str] | None:
        state = slurm.job_state(job_id)
        return state if state.get("JobState") in TERMINAL else None

    return common.wait_until(finished, timeout=60, interval=0.3, what=f"slurm job {job_id}")


def test_batch_job_writes_a_file_and_completes(slurm: SlurmCluster, tmp_path: Path) -> None:
    result = tmp_path / "result.txt"
    script = tmp_path / "job.sh"
    script.write_text(f'#!/bin/sh\necho "ran on $SLURMD_NODENAME" > {result}\necho to-stdout\n')
    output = tmp_path / "job-%j.out"
    job_id = _submit(slurm, script, f"--output={output}", "--cpus-per-task=1", "--mem=64M")
    state = _wait_terminal(slurm, job_id)
    assert state["JobState"] == "COMPLETED"
    assert state["ExitCode"] == "0:0"
    assert result.read_text().strip() == f"ran on {slurm.node}"
    assert (tmp_path / f"job-{job_id}.out").read_text() == "to-stdout\n"


def test_failing_job_reports_its_exit_code(slurm: SlurmCluster, tmp_path: Path) -> None:
    script = tmp_path / "fail.sh"
    script.write_text("#!/bin/sh\nexit 3\n")
    job_id = _submit(slurm, script, f"--output={tmp_path / 'fail.out'}")
    state = _wait_terminal(slurm, job_id)
    assert state["JobState"] == "FAILED"
    assert state["ExitCode"] == "3:0"


def test_scancel_cancels_a_running_job(slurm: SlurmCluster, tmp_path: Path) -> None:
    script = tmp_path / "long.sh"
    script.write_text("#!/bin/sh\nsleep 300\n")
    job_id = _submit(slurm, script, f"--output={tmp_path / 'long.out'}")
    common.wait_until(
        lambda: slurm.job_state(job_id).get("JobState") == "RUNNING",
        timeout=30,
        what="job running",
    )
    assert job_id in slurm.run(["squeue", "-h", "-o", "%i"]).stdout.split()
    slurm.run(["scancel", job_id])
    assert _wait_terminal(slurm, job_id)["JobState"] == "CANCELLED"
    # The job's processes are gone with it.
    common.wait_until(
        lambda: (
            "sleep 300"
            not in subprocess.run(
                ["ps", "-eo", "args"], capture_output=True, text=True, check=False
            ).stdout
        ),
        timeout=20,
        what="cancelled job's processes to exit",
    )
