"""The launcher written for apptainer/singularity, which this machine does not have (so these
pods cannot run here): what it would run is checked as text, every value quoted."""

from __future__ import annotations

import shlex
from pathlib import Path

from interlink_plugin.models import RetrievedPodData
from interlink_plugin.pods import PodFolder
from tests.interlink_plugin.test_plugin_contract import _mount, _pod, _sh


def test_apptainer_runs_the_image_with_binds_gpus_and_site_options(tmp_path: Path) -> None:
    main = _sh(
        "main",
        "echo 'it''s'; rm -rf /",
        env=[{"name": "EVENT", "value": '{"a": "$(touch /tmp/x)"}'}],
        volumeMounts=[_mount("cfg", "/oscar/config", read_only=True)],
        resources={"limits": {"nvidia.com/gpu": "1"}},
        image="ghcr.io/grycap/cowsay:latest",
    )
    pod = _pod(
        main,
        volumes=[{"name": "cfg", "emptyDir": {}}],
        annotations={"slurm-job.vk.io/singularity-options": "--contain --writable-tmpfs"},
    )
    folder = PodFolder(tmp_path, pod["metadata"]["uid"])
    data = RetrievedPodData.model_validate({"pod": pod, "container": None})
    folder.prepare(data, runtime="/usr/bin/apptainer", bind=False)
    launcher = (folder.path / "containers" / "main.sh").read_text().splitlines()[-1]
    words = shlex.split(launcher)
    assert words[:3] == ["exec", "env", "-i"]
    assert 'APPTAINERENV_EVENT={"a": "$(touch /tmp/x)"}' in words  # one word, never expanded
    runtime = words.index("/usr/bin/apptainer")
    assert words[runtime + 1 : runtime + 3] == ["exec", "--cleanenv"]
    assert "--nv" in words and "--contain" in words and "--writable-tmpfs" in words
    assert f"{folder.path}/volumes/cfg:/oscar/config:ro" in words
    assert "docker://ghcr.io/grycap/cowsay:latest" in words
    assert words[-3:] == ["/bin/sh", "-c", "echo 'it''s'; rm -rf /"]
