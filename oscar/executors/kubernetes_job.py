"""The `batch/v1` Job upstream OSCAR creates for one event (reference §4), as a plain dict.

Pure data: no Kubernetes client here, so the spec can be compared field by field in tests and
submitted by the Kubernetes executor as is. Additions to upstream's spec, ignored by upstream
tools: the label `oscar_job` on the Job (so the executor can list the Jobs it follows in one
request) and, when given, `SUPERVISOR_TIMEOUT` in the container's environment. Departures,
so that the pod works on a real node (a kubelet, or interLink's virtual kubelet running it on
an HPC site) and not only under kwok:

- the event reaches the supervisor verbatim (`EVENT_COMMAND`), not through upstream's
  unquoted `echo $EVENT`, and the supervisor's argv follows the shell command as its
  positional parameters;
- `/oscar/config` is the Secret `oscar-job-<service>` written by the executor (the function
  configuration with a `minio.default` endpoint the pod can reach, the service's secrets, the
  script), not the registry's ConfigMap, which has neither and need not exist;
- the supervisor is installed on the node or copied by an init container from a supervisor
  image into an `emptyDir` (`SupervisorSource`), never read from upstream's `oscar-pvc`.

The service's labels and annotations are copied onto the Job and its Pods as upstream does:
they are the way to reach cluster features (a scheduler hint, an AppArmor or seccomp profile, a
sidecar opt-out), and services are defined by the platform's users and admins, whom the cluster
trusts with those features in the services namespace (its admission policies apply as to any
Pod). Being dicts, not templated YAML, they can add metadata but never change the spec.
"""

from __future__ import annotations

import shlex
import sys
import uuid
from dataclasses import dataclass
from typing import Any

from oscar.executors.kube import job_config_secret_name, store_secret_name
from oscar.models.service import Service
from oscar.models.storage import DEFAULT_PROVIDER

TTL_JOB_SECONDS = 2592000  # upstream TTL_JOB default (30 days)
CONTAINER_NAME = "oscar-container"
#: On each Job (not its Pods, which get `job-name` from Kubernetes): the job's name, so that the
#: executor can list exactly the Jobs it follows with one set-based label selector.
JOB_LABEL = "oscar_job"
UUID_LENGTH = 36
SUPERVISOR_DIR = "/oscar/bin"
CONFIG_DIR = "/oscar/config"
PROVIDER_SECRETS_DIR = "/var/run/secrets/providers"
MINIO_CREDENTIALS_MOUNT = f"{PROVIDER_SECRETS_DIR}/{DEFAULT_PROVIDER}"
#: The emptyDir the init container copies the supervisor into (image mode).
SUPERVISOR_VOLUME = "oscar-supervisor"
SUPERVISOR_INIT_CONTAINER = "oscar-supervisor-copy"
#: Where a supervisor image keeps its files (upstream's faas-supervisor-kit layout).
SUPERVISOR_IMAGE_DIR = "/supervisor"
#: `$0` of the container's shell command (shown in `ps`, never run).
SHELL_NAME = "oscar-supervisor"
#: The container's shell command: the event, byte for byte, on the stdin of the supervisor,
#: whose argv follows as the shell's positional parameters (`"$@"`), so no value of the
#: settings or the event is ever parsed as shell code. Upstream runs `echo $EVENT |
#: supervisor`, where the unquoted expansion splits the JSON into words (runs of spaces, tabs
#: and newlines inside strings collapse to one space) and expands globs (`*` becomes file
#: names), and dash's `echo` interprets backslashes (`\n` in a JSON string becomes a real
#: newline). `printf '%s\n' "$EVENT"` writes the value verbatim, with the one trailing newline
#: `echo` adds, so the supervisor (upstream's or ours) reads the same input as upstream's does
#: for any event `echo` left intact. The image's shell runs it, as upstream; `printf` is a
#: builtin of dash, bash and busybox.
EVENT_COMMAND = 'printf \'%s\\n\' "$EVENT" | "$@"'
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


@dataclass(frozen=True)
class SupervisorSource:
    """How the supervisor reaches a Job's pod.

    - `image` empty (the default): the supervisor is already installed where the container
      runs (HPC nodes sharing this installation, interLink's native runs), and `command` is
      its argv there; by default this installation's `python -m supervisor`.
    - `image` set: an init container of that image copies its `/supervisor` folder (upstream's
      faas-supervisor-kit layout) into an `emptyDir` mounted at `/oscar/bin`, and `command`
      defaults to `/oscar/bin/supervisor`.

    No persistent volume is involved either way (upstream's `oscar-pvc` exists only where its
    Helm chart made one, and cannot follow a pod to an HPC site).
    """

    image: str = ""
    command: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, image: str, command: str) -> SupervisorSource:
        """From `OSCAR_SUPERVISOR_IMAGE` and `OSCAR_SUPERVISOR_COMMAND` (shell words, split
        here into an argv: they are never given to a shell as code)."""
        return cls(image=image.strip(), command=tuple(shlex.split(command)))

    def argv(self) -> list[str]:
        """The supervisor's command line in the container."""
        if self.command:
            return list(self.command)
        if self.image:
            return [f"{SUPERVISOR_DIR}/supervisor"]
        return [sys.executable, "-m", "supervisor"]


def job_manifest(
    service: Service,
    event: str,
    name: str,
    *,
    namespace: str,
    base_path: str = "/",
    minio_credentials: str | None = None,
    config_secret: str | None = None,
    supervisor: SupervisorSource | None = None,
    env_secret: str | None = None,
    supervisor_timeout: float | None = None,
) -> dict[str, Any]:
    """The Job `name` (a `new_job_name`) for one event of `service`, following upstream's
    `ToPodSpec` and `job.go`; `JOB_UUID` is the name's uuid suffix. With `supervisor_timeout`
    the supervisor kills the script after that many seconds (`SUPERVISOR_TIMEOUT`).

    The pod mounts the Secret `config_secret` (default `oscar-job-<service>`: the function
    configuration with its `minio.default` endpoint, and the script) at `/oscar/config`, and
    the Secret `minio_credentials` (default `oscar-store-<service>`, the service's scoped
    keys) at `/var/run/secrets/providers/minio.default`; `supervisor` says how the supervisor
    gets there. `env_secret`, upstream's `envFrom` of a Secret, is not used by the executor:
    the service's secrets travel in the configuration, as on every other backend.
    """
    supervisor = supervisor or SupervisorSource()
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
    mounts: list[dict[str, Any]] = [
        {"name": "oscar-config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "minio-credentials", "mountPath": MINIO_CREDENTIALS_MOUNT, "readOnly": True},
    ]
    volumes: list[dict[str, Any]] = [
        {
            "name": "oscar-config",
            "secret": {
                "secretName": config_secret or job_config_secret_name(service.name),
                "defaultMode": 0o444,
            },
        },
        {
            "name": "minio-credentials",
            "secret": {
                "secretName": minio_credentials or store_secret_name(service.name),
                "defaultMode": 0o444,
            },
        },
    ]
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": service.image,
        "imagePullPolicy": "Always",
        "command": ["/bin/sh"],
        "args": ["-c", EVENT_COMMAND, SHELL_NAME, *supervisor.argv()],
        "env": env,
        "resources": resources,
        "volumeMounts": mounts,
    }
    if env_secret:
        container["envFrom"] = [{"secretRef": {"name": env_secret}}]
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "containers": [container],
        "volumes": volumes,
    }
    if supervisor.image:
        volumes.append({"name": SUPERVISOR_VOLUME, "emptyDir": {}})
        mounts.append({"name": SUPERVISOR_VOLUME, "mountPath": SUPERVISOR_DIR, "readOnly": True})
        pod_spec["initContainers"] = [
            {
                "name": SUPERVISOR_INIT_CONTAINER,
                "image": supervisor.image,
                "command": ["cp", "-R", f"{SUPERVISOR_IMAGE_DIR}/.", SUPERVISOR_DIR],
                "volumeMounts": [{"name": SUPERVISOR_VOLUME, "mountPath": SUPERVISOR_DIR}],
            }
        ]
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
