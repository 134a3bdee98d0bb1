"""What only the Slurm backend does: sbatch options from the pod, Slurm's queue reason while a
pod waits, and each way a Slurm job can end told apart (real one-node Slurm)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from interlink_plugin.backends.slurm import ENDINGS, SlurmBackend
from interlink_plugin.pods import PodError, PodFolder
from oscar.executors.slurm_commands import LocalTransport
from tests.fixtures.plugin import RunningPlugin, running_plugin
from tests.interlink_plugin.test_plugin_contract import _body, _pod, _sh, _state, _status
from tests.services import common
from tests.services.slurm import SlurmCluster


def test_sbatch_options_come_from_the_pod(tmp_path: Path) -> None:
    backend = SlurmBackend(LocalTransport())
    pod = _pod(
        _sh(
            "main",
            "true",
            resources={"limits": {"cpu": "2500m", "memory": "1Gi", "nvidia.com/gpu": "2"}},
        ),
        annotations={"slurm-job.vk.io/flags": "--partition=gpu --time=01:00:00"},
    )
    folder = PodFolder(tmp_path, pod["metadata"]["uid"])
    options = backend.directives(folder, pod)
    assert f"--job-name=pod-{folder.uid}" in options
    assert "--cpus-per-task=3" in options and "--mem=1024M" in options
    assert "--gres=gpu:2" in options
    assert options[-2:] == ["--partition=gpu", "--time=01:00:00"]  # last: they may override ours
    pod["metadata"]["annotations"]["slurm-job.vk.io/flags"] = "--output=/etc/passwd"
    with pytest.raises(PodError, match="not allowed"):
        backend.directives(folder, pod)


@pytest.fixture
def slurm_plugin(slurm: SlurmCluster, tmp_path: Path) -> Iterator[RunningPlugin]:
    env = {"SLURM_CONF": str(slurm.conf_path)}
    with running_plugin(tmp_path / "plugin", "slurm", env) as plugin:
        yield plugin


@pytest.mark.slurm
def test_a_waiting_pod_shows_slurms_reason_and_a_cancelled_one_says_so(
    slurm_plugin: RunningPlugin, slurm: SlurmCluster
) -> None:
    pod = _pod(
        _sh("main", "echo never"),
        annotations={"slurm-job.vk.io/flags": "--begin=now+1hour"},
    )
    job = slurm_plugin.call("POST", "/create", _body(pod)).json()["PodJID"]
    waiting = common.wait_until(
        lambda: _state(_status(slurm_plugin, pod)).get("waiting"), timeout=30, what="waiting"
    )
    assert waiting["reason"] == "BeginTime"
    slurm.run(["scancel", job])
    terminated = common.wait_until(
        lambda: _state(_status(slurm_plugin, pod)).get("terminated"), timeout=30, what="ended"
    )
    assert terminated["exitCode"] == ENDINGS["CANCELLED"][0]
    assert "CANCELLED" in terminated["message"] and job in terminated["message"]


@pytest.mark.slurm
def test_pre_exec_runs_before_the_containers(slurm_plugin: RunningPlugin) -> None:
    marker = f"pre-{uuid.uuid4().hex[:6]}"
    pod = _pod(
        _sh("main", 'echo "container sees $PRE"'),
        annotations={"slurm-job.vk.io/pre-exec": f"echo {marker} > pre-exec.out"},
    )
    assert slurm_plugin.call("POST", "/create", _body(pod)).status_code == 200
    common.wait_until(
        lambda: "terminated" in _state(_status(slurm_plugin, pod)), timeout=60, what="ended"
    )
    folder = slurm_plugin.state_dir / "pods" / pod["metadata"]["uid"]
    assert (folder / "pre-exec.out").read_text().strip() == marker
