"""The Job manifest follows upstream's spec (reference §4) field by field."""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from oscar.executors.interlink import to_interlink
from oscar.executors.kubernetes_job import SupervisorSource, job_manifest, job_uuid
from oscar.models.job import new_job_name
from oscar.models.service import Service
from oscar.models.validation import parse_service
from tests.fixtures.services import minimal_service
from tests.services.kubernetes import KubernetesCluster

UUID = str(uuid.UUID(int=7))
NAME = f"grayify-{UUID}"


def _service(**fields: object) -> Service:
    return parse_service(
        minimal_service(
            "grayify",
            image="ghcr.io/grycap/imagemagick",
            cpu="1.0",
            memory="1Gi",
            token="t" * 64,
            environment={"variables": {"K": "v"}},
            labels={"team": "x"},
            annotations={"slurm-job.vk.io/flags": "--time=1:00:00"},
            **fields,
        )
    )


@pytest.mark.parametrize("length", [1, 7, 24, 25, 30, 39])
def test_job_uuid_is_the_suffix_of_the_job_name_for_every_length(length: int) -> None:
    """One rule makes names (`new_job_name`); `JOB_UUID` is read back from the name, whether
    the service name was cut to 16 characters (25 or longer) or not."""
    service = parse_service(minimal_service("s" * length))
    name = new_job_name(service.name)
    assert len(name) <= 63  # fits a label value, as the Job's `oscar_job` label needs
    manifest = job_manifest(service, "e", name, namespace="ns")
    (container,) = manifest["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert str(uuid.UUID(env["JOB_UUID"])) == env["JOB_UUID"] == job_uuid(name)
    assert name == f"{service.name[:16] if length >= 25 else service.name}-{env['JOB_UUID']}"
    assert manifest["metadata"]["name"] == name
    assert manifest["metadata"]["labels"]["oscar_job"] == name


def test_a_name_without_a_uuid_is_refused() -> None:
    with pytest.raises(ValueError, match="does not end with a UUID"):
        job_uuid("grayify-not-a-uuid")


def test_job_spec_matches_upstream() -> None:
    job = job_manifest(_service(), '{"Records": []}', NAME, namespace="oscar-svc")
    assert job["apiVersion"] == "batch/v1"
    assert job["kind"] == "Job"
    meta = job["metadata"]
    assert meta["name"] == f"grayify-{UUID}"
    assert meta["namespace"] == "oscar-svc"
    # Upstream's labels, plus ours naming the job (so one selector lists the Jobs in flight).
    assert meta["labels"] == {"team": "x", "oscar_service": "grayify", "oscar_job": NAME}
    assert meta["annotations"] == {"slurm-job.vk.io/flags": "--time=1:00:00"}
    spec = job["spec"]
    assert spec["backoffLimit"] == 0
    assert spec["ttlSecondsAfterFinished"] == 2592000
    pod = spec["template"]["spec"]
    assert spec["template"]["metadata"]["labels"] == {"team": "x", "oscar_service": "grayify"}
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    (container,) = pod["containers"]
    assert container["name"] == "oscar-container"
    assert container["image"] == "ghcr.io/grycap/imagemagick"
    assert container["imagePullPolicy"] == "Always"
    assert container["command"] == ["/bin/sh"]
    # The supervisor's argv follows the shell command as its positional parameters; by
    # default it is this installation's, already on the node.
    assert container["args"] == [
        "-c",
        'printf \'%s\\n\' "$EVENT" | "$@"',
        "oscar-supervisor",
        sys.executable,
        "-m",
        "supervisor",
    ]
    assert "initContainers" not in pod
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env["K"] == "v"
    assert env["OSCAR_SERVICE_NAME"] == "grayify"
    assert env["OSCAR_SERVICE_TOKEN"] == "t" * 64
    assert env["fprocess"] == "/oscar/bin/supervisor"
    watchdog = {"max_inflight", "write_debug", "exec_timeout", "read_timeout", "write_timeout"}
    assert watchdog | {"healthcheck_interval", "OSCAR_SERVICE_BASE_PATH"} <= set(env)
    assert env["EVENT"] == '{"Records": []}'
    assert env["JOB_UUID"] == UUID
    assert env["RESOURCE_ID"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert container["resources"] == {"limits": {"cpu": "1.0", "memory": "1Gi"}}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert set(mounts) == {"/oscar/config", "/var/run/secrets/providers/minio.default"}
    assert all(m["readOnly"] for m in mounts.values())
    volumes = {v["name"]: v for v in pod["volumes"]}
    # The configuration (with minio.default and the service's secrets) and the scoped store
    # keys are Secrets the executor writes, read as files; no PVC, no admin-keys Secret.
    assert volumes == {
        "oscar-config": {
            "name": "oscar-config",
            "secret": {"secretName": "oscar-job-grayify", "defaultMode": 0o444},
        },
        "minio-credentials": {
            "name": "minio-credentials",
            "secret": {"secretName": "oscar-store-grayify", "defaultMode": 0o444},
        },
    }
    assert not any("MINIO" in e["name"] or "KEY" in e["name"] for e in container["env"])


def test_gpu_pull_secrets_ephemeral_storage_and_env_secret() -> None:
    service = _service(
        enable_gpu=True, image_pull_secrets=["regcred"], ephemeral_storage_request="2Gi"
    )
    job = job_manifest(
        service, "e", NAME, namespace="ns", env_secret="grayify", supervisor_timeout=90.5
    )
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["resources"]["requests"] == {"ephemeral-storage": "2Gi"}
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert container["envFrom"] == [{"secretRef": {"name": "grayify"}}]
    assert {"name": "SUPERVISOR_TIMEOUT", "value": "90.5"} in container["env"]


# An event whose JSON strings hold what an unquoted `echo $EVENT` mangles: runs of spaces,
# tabs and newlines (word splitting), a glob (pathname expansion), backslash escapes (dash's
# echo), and a leading option-like word.
AWKWARD_EVENT = (
    '{"Records": [{"s3": {"object": {"key": "in/a  b\tc\n d a* [a]?.txt",'
    ' "note": "\\\\n \\\\t \\\\c -n -e"}}}]}'
)


def _run_container_command(
    container: dict[str, object], shell: str, tmp_path: Path
) -> tuple[bytes, list[str]]:
    """Run the container's `/bin/sh -c` command with a real shell, its `EVENT`, and a stand-in
    supervisor (recording its stdin and argv) in place of the supervisor's command; return
    what the stand-in received."""
    found = shutil.which(shell)
    assert found is not None, f"{shell} is not installed"
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}  # type: ignore[attr-defined]
    env["PATH"] = "/usr/bin:/bin"
    flag, command, name, *supervisor = container["args"]  # type: ignore[misc]
    received, argv = tmp_path / "stdin", tmp_path / "argv"
    stand_in = tmp_path / "supervisor"
    stand_in.write_text(f"#!/bin/sh\ncat > '{received}'\nprintf '%s\\n' \"$@\" > '{argv}'\n")
    stand_in.chmod(0o755)
    for file in ("a1", "a2", "ab.txt"):  # what the glob tokens would expand to
        (tmp_path / file).touch()
    # The supervisor's argv replaced by the stand-in's, with its arguments kept as words.
    args = [found, flag, command, name, str(stand_in), *supervisor[1:]]
    subprocess.run(args, env=env, cwd=tmp_path, check=True, timeout=30)
    return received.read_bytes(), argv.read_text().splitlines()


@pytest.mark.parametrize("shell", ["dash", "bash"])
def test_the_container_command_hands_the_event_over_verbatim(tmp_path: Path, shell: str) -> None:
    """The container's shell command, run by a real shell with the manifest's `EVENT`: the
    supervisor (a stand-in recording its stdin) gets the event byte for byte, plus the newline
    upstream's `echo` adds, and its own arguments as given."""
    supervisor = SupervisorSource(command=("/opt/s p/supervisor", "--flag=a b", "$HOME", "*"))
    job = job_manifest(_service(), AWKWARD_EVENT, NAME, namespace="ns", supervisor=supervisor)
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    assert env["EVENT"] == AWKWARD_EVENT
    assert container["args"][3:] == list(supervisor.command)
    stdin, argv = _run_container_command(container, shell, tmp_path)
    assert stdin == (AWKWARD_EVENT + "\n").encode()
    assert argv == ["--flag=a b", "$HOME", "*"]  # never expanded


@pytest.mark.parametrize("shell", ["dash", "bash"])
def test_the_interlink_command_decodes_the_event_verbatim(tmp_path: Path, shell: str) -> None:
    """interLink pods carry the event base64-encoded; the quoted `printf '%s' "$EVENT" |
    base64 -d` hands the supervisor the exact bytes (upstream's unquoted `echo $EVENT` did not
    quote the expansion)."""
    job = to_interlink(job_manifest(_service(), AWKWARD_EVENT, NAME, namespace="ns"), "vk-1")
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:2] == ["-c", 'printf \'%s\' "$EVENT" | base64 -d | "$@"']
    assert container["args"][3:] == [sys.executable, "-m", "supervisor"]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    assert base64.b64decode(env["EVENT"]) == AWKWARD_EVENT.encode()
    stdin, argv = _run_container_command(container, shell, tmp_path)
    assert stdin == AWKWARD_EVENT.encode()
    assert argv == ["-m", "supervisor"]


def test_the_node_supervisor_command_runs_this_installations_supervisor(tmp_path: Path) -> None:
    """The default command (the supervisor installed on the node) starts our supervisor from
    any working folder: run for real, it answers its version."""
    argv = SupervisorSource().argv()
    assert argv == [sys.executable, "-m", "supervisor"]
    done = subprocess.run(
        [*argv, "--version"], cwd=tmp_path, capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.startswith("oscar-supervisor ")


def test_image_mode_copies_the_supervisor_with_an_init_container() -> None:
    """With a supervisor image, an init container copies its `/supervisor` folder into an
    emptyDir at `/oscar/bin` (no PVC), for cloud and interLink pods alike."""
    supervisor = SupervisorSource.from_settings("registry.example/oscar-supervisor:1", "")
    assert supervisor.argv() == ["/oscar/bin/supervisor"]
    for job in (
        job_manifest(_service(), "e", NAME, namespace="ns", supervisor=supervisor),
        to_interlink(
            job_manifest(_service(), "e", NAME, namespace="ns", supervisor=supervisor), "vk"
        ),
    ):
        pod = job["spec"]["template"]["spec"]
        (init,) = pod["initContainers"]
        assert init["image"] == "registry.example/oscar-supervisor:1"
        assert init["command"] == ["cp", "-R", "/supervisor/.", "/oscar/bin"]
        assert init["volumeMounts"] == [{"name": "oscar-supervisor", "mountPath": "/oscar/bin"}]
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["oscar-supervisor"] == {"name": "oscar-supervisor", "emptyDir": {}}
        assert not any("persistentVolumeClaim" in v for v in pod["volumes"])
        container = pod["containers"][0]
        assert container["args"][2:] == ["oscar-supervisor", "/oscar/bin/supervisor"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert mounts["/oscar/bin"] == "oscar-supervisor"
        assert mounts["/oscar/config"] == "oscar-config"


def test_the_supervisor_command_setting_is_split_into_words_never_shell_code() -> None:
    source = SupervisorSource.from_settings("", "/opt/py/bin/python -m 'super visor'; echo pwned")
    assert source.argv() == ["/opt/py/bin/python", "-m", "super visor;", "echo", "pwned"]
    job = job_manifest(_service(), "e", NAME, namespace="ns", supervisor=source)
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[1] == 'printf \'%s\\n\' "$EVENT" | "$@"'  # the only shell code
    assert args[3:] == source.argv()


@pytest.mark.kubernetes
def test_real_api_server_accepts_the_job(kubernetes: KubernetesCluster) -> None:
    from kubernetes import client

    api = kubernetes.api_client()
    namespace = f"oscar-svc-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": namespace}})
    service = _service(enable_gpu=True, image_pull_secrets=["regcred"])
    manifest = job_manifest(service, '{"k": 1}', NAME, namespace=namespace, env_secret="grayify")
    created = client.BatchV1Api(api).create_namespaced_job(namespace, manifest, dry_run="All")
    assert created.metadata.name == f"grayify-{UUID}"
    container = created.spec.template.spec.containers[0]
    assert container.resources.limits == {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": "1"}
    assert container.args[:2] == ["-c", 'printf \'%s\\n\' "$EVENT" | "$@"']
