"""The Job manifest follows upstream's spec (reference §4) field by field."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from oscar.executors.kubernetes_job import job_manifest, job_uuid
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
    assert container["args"] == ["-c", "printf '%s\\n' \"$EVENT\" | /oscar/bin/supervisor"]
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
    assert mounts["/oscar/config"]["readOnly"] is True
    assert mounts["/oscar/bin"]["readOnly"] is True
    assert "/var/run/secrets/providers/minio.default" in mounts
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["oscar-config"]["configMap"]["name"] == "grayify"
    assert volumes["oscar-volume"]["persistentVolumeClaim"]["claimName"] == "oscar-pvc"
    assert volumes["minio-credentials"]["secret"]["secretName"] == "minio"


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


@pytest.mark.parametrize("shell", ["dash", "bash"])
def test_the_container_command_hands_the_event_over_verbatim(tmp_path: Path, shell: str) -> None:
    """The container's shell command, run by a real shell with the manifest's `EVENT`: the
    supervisor (a stand-in recording its stdin) gets the event byte for byte, plus the newline
    upstream's `echo` adds."""
    found = shutil.which(shell)
    assert found is not None, f"{shell} is not installed"
    argv = [found]
    job = job_manifest(_service(), AWKWARD_EVENT, NAME, namespace="ns")
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    assert env["EVENT"] == AWKWARD_EVENT
    flag, command = container["args"]
    received = tmp_path / "stdin"
    stand_in = tmp_path / "supervisor"
    stand_in.write_text(f"#!/bin/sh\ncat > '{received}'\n")
    stand_in.chmod(0o755)
    assert "/oscar/bin/supervisor" in command
    command = command.replace("/oscar/bin/supervisor", str(stand_in))
    for name in ("a1", "a2", "ab.txt"):  # what the glob tokens would expand to
        (tmp_path / name).touch()
    subprocess.run([*argv, flag, command], env=env, cwd=tmp_path, check=True, timeout=30)
    assert received.read_text() == AWKWARD_EVENT + "\n"


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
    assert container.args == ["-c", "printf '%s\\n' \"$EVENT\" | /oscar/bin/supervisor"]
