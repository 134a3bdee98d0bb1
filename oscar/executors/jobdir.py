"""The private folder of a job run by a process backend (local or Slurm) and its environment.

The folder holds the supervisor's configuration, the script, the event, the log and the
response. The supervisor's environment is built from an allow-list: nothing of the control
plane's own environment (its password, its settings) reaches a job, and no credential is in
it at all. The job's store keys are the service's scoped ones (`oscar.storage.scoped`), in
0600 files under `secrets/` that the supervisor reads and removes before the script starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from oscar.models.service import Service
from oscar.models.storage import DEFAULT_PROVIDER, MinIOProvider
from oscar.storage.scoped import job_store

# libyaml's safe dumper where PyYAML has it (one configuration per job: it is on the hot path).
_SAFE_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
# This installation's code: what a supervisor started from here puts on its PYTHONPATH.
REPO_ROOT = Path(__file__).resolve().parents[2]
# The only variables of the control plane's environment a job inherits: what a shell and the
# supervisor's Python need to start.
INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER", "LOGNAME")


def private_file(path: Path, content: str | bytes) -> None:
    """Write `content` to a new file only the owner can read (0600)."""
    data = content.encode() if isinstance(content, str) else content
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def job_folder(jobs_dir: Path, job_name: str) -> Path:
    """The private folder of a job (refusing names that would leave the jobs folder)."""
    folder = (jobs_dir / job_name).resolve()
    if folder.parent != jobs_dir.resolve():
        raise ValueError(f"invalid job name {job_name!r}")
    return folder


def function_config(
    service: Service, store: MinIOProvider | None, endpoint: str | None = None
) -> dict[str, Any]:
    """The supervisor's function configuration for a job of `service`: the definition without
    its token (with its environment secrets, which the supervisor hands to the script), and
    `minio.default` with the default store's endpoint, region and TLS verification but never
    its keys (the job's scoped keys travel as files beside it). `endpoint`, when given, is the
    store as the job reaches it (a pod or an HPC node may need another address than the
    control plane's); without `store` and `endpoint` there is no `minio.default` entry."""
    config = service.model_dump(mode="json", by_alias=True, exclude={"token"})
    if store is None and not endpoint:
        return config
    providers = config.setdefault("storage_providers", {}).setdefault("minio", {})
    default: dict[str, Any] = {"endpoint": endpoint or (store.endpoint if store else "")}
    if store is not None:
        default.update({"region": store.region, "verify": store.verify})
    providers["default"] = default
    return config


def prepare_job(
    folder: Path,
    service: Service,
    event: bytes,
    store: MinIOProvider,
    timeout: float,
    parent_env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Write the job's configuration, script, event and store keys into `folder`; return the
    supervisor's environment (allow-listed from `parent_env`, by default this process's).

    `store` is the default store with its admin keys; the job gets the service's own keys.
    """
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    config = yaml.dump(function_config(service, store), Dumper=_SAFE_DUMPER)
    private_file(folder / "function_config.yaml", config)
    private_file(folder / "script.sh", service.script)
    private_file(folder / "event", event)
    (folder / "work").mkdir(exist_ok=True)
    secrets = folder / "secrets"
    write_store_keys(secrets, job_store(store, service.name))
    parent = os.environ if parent_env is None else parent_env
    env = {key: parent[key] for key in INHERITED if key in parent}
    env.update(
        {
            "FUNCTION_CONFIG": str(folder / "function_config.yaml"),
            "SCRIPT": str(folder / "script.sh"),
            "PROVIDER_SECRETS_DIR": str(secrets),
            "SUPERVISOR_CONSUME_SECRETS": "1",
            "SUPERVISOR_TIMEOUT": str(timeout),
            "OSCAR_SERVICE_NAME": service.name,
            "JOB_UUID": folder.name,
        }
    )
    return env


def write_store_keys(secrets: Path, keys: MinIOProvider) -> None:
    """The default store's keys as the supervisor reads mounted secrets:
    `<secrets>/minio.default/{accessKey,secretKey}`, folders 0700 and files 0600."""
    provider = secrets / DEFAULT_PROVIDER
    provider.mkdir(mode=0o700, parents=True, exist_ok=True)
    secrets.chmod(0o700)
    private_file(provider / "accessKey", keys.access_key)
    private_file(provider / "secretKey", keys.secret_key)


def read_tail(path: Path, tail: int | None = None, max_bytes: int = 8 * 2**20) -> str:
    """A log file's text (its last `tail` lines when given; never more than `max_bytes`)."""
    if not path.exists():
        return ""
    with path.open("rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(max(0, size - max_bytes))
        text = handle.read().decode(errors="replace")
    return last_lines(text, tail)


def last_lines(text: str, tail: int | None) -> str:
    """The last `tail` lines of `text` (all of it when `tail` is None)."""
    if tail is None:
        return text
    return "".join(text.splitlines(keepends=True)[-tail:]) if tail > 0 else ""
