"""The plugin API as interLink's API server calls it, against the real plugin server, for every
backend: local processes, and batch jobs on the real one-node Slurm (marker `slurm`).

Pods here are written as the Go types marshal them (nil lists as `null`); the recorded bodies of
a real interLink API server are replayed in test_recorded_bodies.py.
"""

from __future__ import annotations

import base64
import json
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.plugin import RunningPlugin, running_plugin
from tests.services import common


@pytest.fixture(params=["local", pytest.param("slurm", marks=pytest.mark.slurm)])
def plugin(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningPlugin]:
    env: dict[str, str] = {}
    if request.param == "slurm":
        cluster = request.getfixturevalue("slurm")
        env = {"SLURM_CONF": str(cluster.conf_path)}
    with running_plugin(tmp_path / "plugin", request.param, env) as running:
        yield running


def _pod(*containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    uid = str(uuid.uuid4())
    return {
        "metadata": {
            "name": f"pod-{uid[:8]}",
            "namespace": "oscar-svc",
            "uid": uid,
            "annotations": spec.pop("annotations", {}),
        },
        "spec": {"containers": list(containers), **spec},
    }


def _sh(name: str, script: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": "alpine", "command": ["/bin/sh", "-c", script], **fields}


def _body(pod: dict[str, Any], **lists: Any) -> dict[str, Any]:
    container = {
        "name": pod["spec"]["containers"][0]["name"],
        "configMaps": lists.get("configMaps"),
        "projectedvolumemaps": None,
        "secrets": lists.get("secrets"),
        "emptyDirs": None,
    }
    return {"pod": pod, "container": [container]}


def _status(plugin: RunningPlugin, pod: dict[str, Any]) -> dict[str, Any]:
    answer = plugin.call("GET", "/status", [pod])
    assert answer.status_code == 200, answer.text
    (status,) = answer.json()
    return dict(status)


def _state(status: dict[str, Any], kind: str = "containers", index: int = 0) -> dict[str, Any]:
    return dict(status[kind][index]["state"])


def _ended(plugin: RunningPlugin, pod: dict[str, Any], timeout: float = 90) -> dict[str, Any]:
    return common.wait_until(
        lambda: (
            (s := _status(plugin, pod))
            and all("terminated" in c["state"] for c in s["containers"])
            and s
        ),
        timeout=timeout,
        what="the pod's containers terminated",
        log=plugin.log_path,
    )


def _logs(plugin: RunningPlugin, pod: dict[str, Any], container: str, **opts: Any) -> str:
    body = {
        "Namespace": pod["metadata"]["namespace"],
        "PodUID": pod["metadata"]["uid"],
        "PodName": pod["metadata"]["name"],
        "ContainerName": container,
        "Opts": {"Tail": 0, "Bytes": 0, "Timestamps": False, "Follow": False, **opts},
    }
    answer = plugin.call("GET", "/getLogs", body)
    assert answer.status_code == 200, answer.text
    return answer.text


def test_the_ping_reports_resources(plugin: RunningPlugin) -> None:
    answer = plugin.call("GET", "/status", [])
    assert answer.status_code == 200
    resources = answer.json()["resources"]
    assert int(resources["cpu"]) >= 1 and resources["memory"] and resources["pods"]


def test_volumes_env_and_init_containers_reach_the_containers(plugin: RunningPlugin) -> None:
    """ConfigMap (items, mode), Secret (0600), emptyDir shared by an init container, env from
    values, fields, secret and ConfigMap keys and envFrom; the exit code comes back."""
    init = _sh(
        "prepare", 'echo "from init" > /shared/note', volumeMounts=[_mount("shared", "/shared")]
    )
    main = _sh(
        "main",
        "cat /shared/note /etc/oscar-test/conf/app.yaml; stat -c %a /etc/oscar-test/keys/token;"
        ' cat /etc/oscar-test/keys/token; echo; echo "$PLAIN|$NODE|$FROM_SECRET|$FROM_CM|$P_k";'
        " exit 7",
        env=[
            {"name": "PLAIN", "value": "a b $c"},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "token"}}},
            {"name": "FROM_CM", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}},
        ],
        envFrom=[{"configMapRef": {"name": "cm"}, "prefix": "P_"}],
        volumeMounts=[
            _mount("shared", "/shared"),
            _mount("conf", "/etc/oscar-test/conf", read_only=True),
            _mount("keys", "/etc/oscar-test/keys", read_only=True),
        ],
    )
    pod = _pod(
        main,
        initContainers=[init],
        volumes=[
            {"name": "shared", "emptyDir": {}},
            {
                "name": "conf",
                "configMap": {"name": "cm", "items": [{"key": "x", "path": "app.yaml"}]},
            },
            {"name": "keys", "secret": {"secretName": "s"}},
        ],
    )
    pod["spec"]["containers"][0]["env"].append({"name": "P_k", "value": "overridden"})
    secret = {"metadata": {"name": "s"}, "data": {"token": base64.b64encode(b"s3cr3t").decode()}}
    config_map = {"metadata": {"name": "cm"}, "data": {"x": "conf: 1\n", "k": "from envFrom"}}
    created = plugin.call("POST", "/create", _body(pod, configMaps=[config_map], secrets=[secret]))
    assert created.status_code == 200, created.text
    assert created.json()["PodUID"] == pod["metadata"]["uid"] and created.json()["PodJID"]

    status = _ended(plugin, pod)
    assert _state(status, "initContainers")["terminated"]["exitCode"] == 0
    terminated = _state(status)["terminated"]
    assert terminated["exitCode"] == 7 and terminated["startedAt"] and terminated["finishedAt"]
    assert status["JID"] == created.json()["PodJID"]
    lines = _logs(plugin, pod, "main").splitlines()
    assert lines == [
        "from init",
        "conf: 1",
        "600",
        "s3cr3t",
        "a b $c|oscar-svc|s3cr3t|from envFrom|overridden",
    ]
    assert _logs(plugin, pod, "prepare") == ""  # its output went to the file
    assert not Path("/etc/oscar-test").exists()  # the mounts were private to the pod


def test_a_volume_over_the_folder_holding_the_plugin_state_hides_no_other_volume(
    plugin: RunningPlugin,
) -> None:
    """An emptyDir at the top folder of the plugin's state (/tmp here, as the chart mounts
    one at /tmp) is mounted while the other volumes, kept under that folder, still reach
    their mountPaths."""
    top = "/" + plugin.state_dir.resolve().parts[1]
    main = _sh(
        "main",
        f"cat /etc/oscar-test/keys/token && echo scratch > {top}/mine && ls -A {top}",
        volumeMounts=[
            _mount("keys", "/etc/oscar-test/keys", read_only=True),
            _mount("scratch", top),
        ],
    )
    pod = _pod(
        main,
        volumes=[
            {"name": "scratch", "emptyDir": {}},
            {"name": "keys", "secret": {"secretName": "s"}},
        ],
    )
    secret = {"metadata": {"name": "s"}, "data": {"token": base64.b64encode(b"k3y\n").decode()}}
    created = plugin.call("POST", "/create", _body(pod, secrets=[secret]))
    assert created.status_code == 200, created.text
    status = _ended(plugin, pod)
    assert _state(status)["terminated"]["exitCode"] == 0, _logs(plugin, pod, "main")
    assert _logs(plugin, pod, "main").splitlines() == ["k3y", "mine"]  # a private, empty /tmp
    assert not (Path(top) / "mine").exists()


def _mount(name: str, path: str, *, read_only: bool = False) -> dict[str, Any]:
    return {"name": name, "mountPath": path, "readOnly": read_only}


def test_log_options_tail_bytes_timestamps_and_follow(
    plugin: RunningPlugin, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    pod = _pod(
        _sh(
            "main",
            "for i in 1 2 3 4; do echo line$i; done;"
            f" while [ ! -e {release} ]; do sleep 0.05; done; echo last",
        )
    )
    assert plugin.call("POST", "/create", _body(pod)).status_code == 200
    common.wait_until(
        lambda: "line4" in _logs(plugin, pod, "main"), timeout=60, what="the first lines"
    )
    assert "running" in _state(_status(plugin, pod))
    assert _logs(plugin, pod, "main", Tail=2) == "line3\nline4\n"
    assert _logs(plugin, pod, "main", Bytes=7) == "line1\nl"
    stamped = _logs(plugin, pod, "main", Timestamps=True).splitlines()
    assert stamped[0].endswith(" line1") and stamped[0][:4].isdigit() and "T" in stamped[0]
    assert _logs(plugin, pod, "main", SinceSeconds=3600).startswith("line1")
    body = {"PodUID": pod["metadata"]["uid"], "ContainerName": "main", "Opts": {"Follow": True}}
    import httpx

    with httpx.stream(
        "GET", plugin.url + "/getLogs", content=json.dumps(body), timeout=60
    ) as followed:
        release.touch()
        text = "".join(followed.iter_text())
    assert text.splitlines() == ["line1", "line2", "line3", "line4", "last"]
    assert _state(_ended(plugin, pod))["terminated"]["exitCode"] == 0


def test_create_is_idempotent_and_delete_stops_a_running_pod(
    plugin: RunningPlugin, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    marker = tmp_path / "still-running"
    pod = _pod(_sh("main", f"echo run >> {runs}; while true; do touch {marker}; sleep 0.1; done"))
    first = plugin.call("POST", "/create", _body(pod)).json()
    second = plugin.call("POST", "/create", _body(pod)).json()  # a retried call
    assert first == second
    common.wait_until(lambda: marker.exists(), timeout=60, what="the pod running")
    assert runs.read_text() == "run\n"  # one run, not two
    assert plugin.call("POST", "/delete", pod).status_code == 200
    marker.unlink()

    def stopped() -> bool:
        if marker.exists():
            marker.unlink()
            return False
        return True

    # Stopped: the loop no longer touches the marker (it did every 0.1 s).
    common.wait_until(lambda: stopped() and stopped(), timeout=30, interval=0.5, what="stopped")
    assert plugin.call("GET", "/status", [pod]).json() == []  # forgotten
    assert plugin.call("POST", "/delete", pod).status_code == 200  # again: fine


def test_a_restarted_plugin_answers_for_its_pods(plugin: RunningPlugin, tmp_path: Path) -> None:
    release = tmp_path / "release"
    pod = _pod(_sh("main", f"while [ ! -e {release} ]; do sleep 0.05; done; echo done"))
    job = plugin.call("POST", "/create", _body(pod)).json()["PodJID"]
    common.wait_until(lambda: "running" in _state(_status(plugin, pod)), timeout=60, what="running")
    plugin.restart()
    assert "running" in _state(_status(plugin, pod))
    release.touch()
    status = _ended(plugin, pod)
    assert status["JID"] == job and _state(status)["terminated"]["exitCode"] == 0
    assert _logs(plugin, pod, "main") == "done\n"


def test_a_pod_that_cannot_run_fails_with_its_reason(plugin: RunningPlugin) -> None:
    pod = _pod(
        _sh("main", "true", volumeMounts=[_mount("host", "/data")]),
        volumes=[{"name": "host", "hostPath": {"path": "/etc"}}],
    )
    assert plugin.call("POST", "/create", _body(pod)).status_code == 200
    terminated = _state(_status(plugin, pod))["terminated"]
    assert (
        terminated["exitCode"] != 0
        and "hostPath volumes are not supported" in terminated["message"]
    )


@pytest.mark.parametrize("uid", ["../../etc", "a/b", "", "x" * 200])
def test_uids_are_never_taken_as_paths(plugin: RunningPlugin, uid: str) -> None:
    pod = _pod(_sh("main", "true"))
    pod["metadata"]["uid"] = uid
    assert plugin.call("POST", "/create", _body(pod)).status_code == 400
    assert not any(plugin.state_dir.parent.glob("etc"))


def test_secret_files_are_private(plugin: RunningPlugin) -> None:
    pod = _pod(
        _sh("main", "true", volumeMounts=[_mount("keys", "/etc/oscar-test-keys")]),
        volumes=[{"name": "keys", "secret": {"secretName": "s"}}],
    )
    secret = {"metadata": {"name": "s"}, "data": {"k": base64.b64encode(b"v").decode()}}
    assert plugin.call("POST", "/create", _body(pod, secrets=[secret])).status_code == 200
    folder = plugin.state_dir / "pods" / pod["metadata"]["uid"]
    assert stat.S_IMODE((folder / "volumes" / "keys" / "k").stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    _ended(plugin, pod)


def test_without_private_mounts_the_mount_paths_are_mapped(tmp_path: Path) -> None:
    """`--volumes map` (what a plugin that is not root gets): the container's command and
    environment name the volume's folder instead of its mountPath."""
    pod = _pod(
        _sh(
            "main",
            'cat /etc/oscar-test/conf/x; echo "$CONF"',
            env=[{"name": "CONF", "value": "/etc/oscar-test/conf/x"}],
            volumeMounts=[_mount("conf", "/etc/oscar-test/conf")],
        ),
        volumes=[{"name": "conf", "configMap": {"name": "cm"}}],
    )
    config_map = {"metadata": {"name": "cm"}, "data": {"x": "mapped\n"}}
    with running_plugin(tmp_path / "plugin", "local", args=["--volumes", "map"]) as plugin:
        assert (
            plugin.call("POST", "/create", _body(pod, configMaps=[config_map])).status_code == 200
        )
        assert _state(_ended(plugin, pod))["terminated"]["exitCode"] == 0
        folder = plugin.state_dir / "pods" / pod["metadata"]["uid"] / "volumes" / "conf"
        assert _logs(plugin, pod, "main").splitlines() == ["mapped", f"{folder}/x"]
