"""Smoke tests: the real one-node Slurm runs, fails and cancels batch jobs, and stops cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.services import common
from tests.services import slurm as slurm_service
from tests.services.slurm import SlurmCluster

pytestmark = pytest.mark.slurm


def test_cluster_describes_its_node(slurm: SlurmCluster) -> None:
    text = slurm.run(["scontrol", "show", "node", "--oneliner", slurm.node]).stdout
    assert "State=IDLE" in text
    assert f"CPUTot={slurm.cpus} " in text
    assert f"RealMemory={slurm.memory_mb} " in text
    partitions = slurm.run(["sinfo", "-h", "-o", "%P"]).stdout.split()
    assert partitions == [f"{slurm.partition}*"]  # the default partition


def test_batch_job_writes_a_file_and_completes(slurm: SlurmCluster, tmp_path: Path) -> None:
    result = tmp_path / "result.txt"
    script = tmp_path / "job.sh"
    script.write_text(f'#!/bin/sh\necho "ran on $SLURMD_NODENAME" > {result}\necho to-stdout\n')
    output = tmp_path / "job-%j.out"
    job_id = slurm.submit(script, f"--output={output}", "--cpus-per-task=1", "--mem=64M")
    state = slurm.wait_for_job(job_id)
    assert state["JobState"] == "COMPLETED"
    assert state["ExitCode"] == "0:0"
    assert result.read_text().strip() == f"ran on {slurm.node}"
    assert state["StdOut"] == str(tmp_path / f"job-{job_id}.out")
    assert Path(state["StdOut"]).read_text() == "to-stdout\n"


def test_failing_job_reports_its_exit_code(slurm: SlurmCluster, tmp_path: Path) -> None:
    script = tmp_path / "fail.sh"
    script.write_text("#!/bin/sh\necho about to fail >&2\nexit 3\n")
    job_id = slurm.submit(script, f"--output={tmp_path / 'fail.out'}")
    state = slurm.wait_for_job(job_id)
    assert state["JobState"] == "FAILED"
    assert state["ExitCode"] == "3:0"
    assert (tmp_path / "fail.out").read_text() == "about to fail\n"  # stderr joins stdout


def test_scancel_cancels_a_running_job(slurm: SlurmCluster, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    script = tmp_path / "long.sh"
    # The script records the pid it then hands to `sleep`, so we can see the process go away.
    script.write_text(
        f"#!/bin/sh\necho $$ > {pid_file}.tmp\nmv {pid_file}.tmp {pid_file}\nexec sleep 300\n"
    )
    job_id = slurm.submit(script, f"--output={tmp_path / 'long.out'}")
    common.wait_until(pid_file.exists, timeout=30, what="job running")
    assert slurm.job_state(job_id)["JobState"] == "RUNNING"
    assert job_id in slurm.run(["squeue", "-h", "-o", "%i"]).stdout.split()
    pid = int(pid_file.read_text())
    assert "sleep" in Path(f"/proc/{pid}/cmdline").read_text()
    slurm.run(["scancel", job_id])
    assert slurm.wait_for_job(job_id)["JobState"] == "CANCELLED"
    common.wait_until(
        lambda: not Path(f"/proc/{pid}").exists(), timeout=20, what="cancelled job's sleep to exit"
    )


def test_running_leaves_no_process_behind(tmp_path: Path) -> None:
    """A second, private cluster with a job still running when it is stopped."""
    common.require_installed(slurm_service.NAME, slurm_service.is_installed())
    with slurm_service.running(tmp_path / "cluster") as cluster:
        script = tmp_path / "forever.sh"
        script.write_text(f"#!/bin/sh\ntouch {tmp_path / 'started'}\nexec sleep 600\n")
        job_id = cluster.submit(script, f"--output={tmp_path / 'forever.out'}")
        common.wait_until((tmp_path / "started").exists, timeout=30, what=f"job {job_id} running")
        daemons = slurm_service.leftover_processes(cluster.workdir, cluster.conf_path)
        assert len(daemons) >= 4  # munged, slurmctld, slurmd, slurmstepd (and the job)
    assert slurm_service.leftover_processes(cluster.workdir, cluster.conf_path) == []
