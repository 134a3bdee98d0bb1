"""The `batch/v1` Job upstream OSCAR creates for one event (reference §4), as a plain dict.

Pure data: no Kubernetes client here, so the spec can be compared field by field in tests and
submitted by the Kubernetes executor as is. Two additions to upstream's spec, both ignored by
upstream tools: the label `oscar_job` on the Job (so the executor can list the Jobs it follows
in one request) and, when given, `SUPERVISOR_TIMEOUT` in the container's environment. One
departure: the event reaches the supervisor verbatim (`EVENT_COMMAND`), not through upstream's
unquoted `echo $EVENT`.

The service's labels and annotations are copied onto the Job and its Pods as upstream does:
they are the way to reach cluster features (a scheduler hint, an AppArmor or seccomp profile, a
sidecar opt-out), and services are defined by the platform's users and admins, whom the cluster
trusts with those features in the services namespace (its admission policies apply as to any
Pod). Being dicts, not templated YAML, they can add metadata but never change the spec.
"""

from __future__ import annotations

import uuid
from typing import Any

from oscar.models.service import Service

TTL_JOB_SECONDS = 2592000  # upstream TTL_JOB default (30 days)
CONTAINER_NAME = "oscar-container"
#: On each Job (not its Pods, which get `job-name` from Kubernetes): the job's name, so that the
#: executor can list exactly the Jobs it follows with one set-based label selector.
JOB_LABEL = "oscar_job"
UUID_LENGTH = 36
SUPERVISOR_DIR = "/oscar/bin"
CONFIG_DIR = "/oscar/config"
MINIO_CREDENTIALS_MOUNT = "/var/run/secrets/providers/minio.default"
#: The container's shell command: the event, byte for byte, on the supervisor's stdin. Upstream
#: runs `echo $EVENT | supervisor`, where the unquoted expansion splits the JSON into words
#: (runs of spaces, tabs and newlines inside strings collapse to one space) and expands globs
#: (`*` becomes file names), and dash's `echo` interprets backslashes (`\n` in a JSON string
#: becomes a real newline). `printf '%s\n' "$EVENT"` writes the value verbatim, with the one
#: trailing newline `echo` adds, so the supervisor (upstream's or ours) reads the same input as
#: upstream's does for any event `echo` left intact. The image's shell runs it, as upstream;
#: `printf` is a builtin of dash, bash and busybox.
EVENT_COMMAND = f"printf '%s\\n' \"$EVENT\" | {SUPERVISOR_DIR}/supervisor"
WATCHDOG_ENV = {
    "fprocess": f"{SUPERVISOR_DIR}/supervisor",
    "max_inflight": "1",
    "write_debug": "true",
    "exec_timeout": "0",
    "read_timeout": "300s",
    "write_timeout": "300s",
    "healthcheck_interval": "5s",
}


def job_uuid(name: str) -> str:
    """The uuid4 a job name ends with (`oscar.models.job.new_job_name`), for `JOB_UUID`.

    Read from the end because the prefix is the service name, cut or not.
    """
    suffix = name[-UUID_LENGTH:]
    try:
        uuid.UUID(suffix)
    except ValueError:
        raise ValueError(f"job name {name!r} does not end with a UUID") from None
    return suffix


def service_env(service: Service, base_path: str = "/") -> list[dict[str, Any]]:
    """The container environment every upstream workload of a service gets: its variables,
    `OSCAR_SERVICE_*`, and the watchdog's settings."""
    env: list[dict[str, Any]] = [
        {"name": key, "value": value} for key, value in service.environment.variables.items()
    ]
    env += [
        {"name": "OSCAR_SERVICE_NAME", "value": service.name},
        {"name": "OSCAR_SERVICE_TOKEN", "value": service.token},
        {"name": "OSCAR_SERVICE_BASE_PATH", "value": base_path},
    ]
    env += [{"name": key, "value": value} for key, value in WATCHDOG_ENV.items()]
    return env


def job_manifest(
    service: Service,
    event: str,
    name: str,
    *,
    namespace: str,
    base_path: str = "/",
    minio_credentials: str = "minio",
    supervisor_pvc: str = "oscar-pvc",
    env_secret: str | None = None,
    supervisor_timeout: float | None = None,
) -> dict[str, Any]:
    """The Job `name` (a `new_job_name`) for one event of `service`, following upstream's
    `ToPodSpec` and `job.go`; `JOB_UUID` is the name's uuid suffix. With `supervisor_timeout`
    the supervisor kills the script after that many seconds (`SUPERVISOR_TIMEOUT`)."""
    env = service_env(service, base_path)
    env += [
        {"name": "EVENT", "value": event},
        {"name": "JOB_UUID", "value": job_uuid(name)},
        {"name": "RESOURCE_ID", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
    ]
    if supervisor_timeout is not None:
        env.append({"name": "SUPERVISOR_TIMEOUT", "value": f"{supervisor_timeout:g}"})
    limits: dict[str, str] = {"cpu": service.cpu, "memory": service.memory}
    if service.enable_gpu:
        limits["nvidia.com/gpu"] = "1"
    if service.enable_sgx:
        limits["sgx.intel.com/epc"] = "1"
    resources: dict[str, Any] = {"limits": limits}
    if service.ephemeral_storage_request:
        resources["requests"] = {"ephemeral-storage": service.ephemeral_storage_request}
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": service.image,
        "imagePullPolicy": "Always",
        "command": ["/bin/sh"],
        "args": ["-c", EVENT_COMMAND],
        "env": env,
        "resources": resources,
        "volumeMounts": [
            {"name": "oscar-config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "oscar-volume", "mountPath": SUPERVISOR_DIR, "readOnly": True},
            {"name": "minio-credentials", "mountPath": MINIO_CREDENTIALS_MOUNT, "readOnly": True},
        ],
    }
    if env_secret:
        container["envFrom"] = [{"secretRef": {"name": env_secret}}]
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "containers": [container],
        "volumes": [
            {"name": "oscar-config", "configMap": {"name": service.name, "defaultMode": 0o755}},
            {
                "name": "oscar-volume",
                "persistentVolumeClaim": {"claimName": supervisor_pvc, "readOnly": True},
            },
            {"name": "minio-credentials", "secret": {"secretName": minio_credentials}},
        ],
    }
    if service.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": s} for s in service.image_pull_secrets]
    # Copied as upstream does (see the module docstring): metadata only, never the spec.
    labels = {**service.labels, "oscar_service": service.name}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {**labels, JOB_LABEL: name},
            "annotations": dict(service.annotations),
        },
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": TTL_JOB_SECONDS,
            "template": {
                "metadata": {"labels": labels, "annotations": dict(service.annotations)},
                "spec": pod_spec,
            },
        },
    }
