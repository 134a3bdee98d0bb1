"""One job: parse the event, stage the input in, run the script, stage the outputs out.

How the script gets the event: always as the file `$EVENT_FILE` (in the job's workspace, mode
0600), and also as the variable `$EVENT` when it is shorter than 64 KiB and holds no NUL byte.
Linux caps one environment string at 128 KiB (and all of them together at about 2 MiB), so a
larger event in `$EVENT` would make the script fail to start (`Argument list too long`), and a
NUL cannot be in an environment string at all; a script that needs every event reads the file.

The script's environment is the supervisor's, then the service's variables and secrets, but
the supervisor's control variables (`SCRIPT_WRAPPER`, `SUPERVISOR_*`, the job marker, ...) are
never taken from the service: they keep the supervisor's own value, or stay unset.

Stage-out skips, with a warning, what it must not upload: symlinks, hard links (a file with
more than one link may be another file of the host) and files whose name is unsafe; the other
outputs are still uploaded.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import stat
import tempfile
import uuid
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from supervisor.config import (
    FunctionConfig,
    ProviderSecrets,
    StorageEntry,
    credentials_for,
    load_script,
)
from supervisor.errors import ConfigError, EventError, StageInError, StageOutError
from supervisor.events import Event, out_of_scope, parse_event
from supervisor.runner import run_script
from supervisor.staging import client_for
from supervisor.staging.base import StorageClient, clean_relative, join_key, local_target

log = logging.getLogger("supervisor")


@dataclass
class Workspace:
    """The job's temporary folders."""

    root: Path
    input_dir: Path
    output_dir: Path

    @classmethod
    def create(cls, parent: Path | None = None) -> Workspace:
        """Make fresh input and output folders (under `parent` or the system temp dir)."""
        root = Path(tempfile.mkdtemp(prefix="oscar-job-", dir=parent))
        (root / "input").mkdir()
        (root / "output").mkdir()
        return cls(root, root / "input", root / "output")


class Clients:
    """Storage clients per provider, created on first use."""

    def __init__(
        self, config: FunctionConfig, env: Mapping[str, str], secrets: ProviderSecrets
    ) -> None:
        self._config, self._env, self._secrets = config, env, secrets
        self._cache: dict[str, StorageClient] = {}

    def get(self, provider: str) -> StorageClient:
        """The client for `<type>.<id>`."""
        if provider not in self._cache:
            provider_type, _, provider_id = provider.partition(".")
            credentials = credentials_for(
                self._config, provider_type, provider_id or "default", self._env, self._secrets
            )
            self._cache[provider] = client_for(provider_type, credentials)
        return self._cache[provider]


def stage_in(event: Event, workspace: Workspace, clients: Clients) -> Path:
    """Download the event's object (or save an UNKNOWN body) and return its local path."""
    if not event.is_storage:
        target = workspace.input_dir / f"event-file-{uuid.uuid4()}"
        target.write_bytes(_unknown_body(event.body))
        log.info("Saved the request body as %s", target.name)
        return target
    try:
        target = local_target(workspace.input_dir, event.key)
    except ValueError as exc:
        raise EventError(str(exc)) from None
    what = f"{event.provider}:{join_key(event.bucket, event.key)}"
    log.info("Downloading %s", what)
    try:
        clients.get(event.provider).download(event.bucket, event.key, target)
    except ConfigError:
        raise
    except Exception as exc:
        raise StageInError(f"cannot download {what}: {exc}") from exc
    log.info("Downloaded %s (%d bytes)", what, target.stat().st_size)
    return target


def _unknown_body(body: bytes) -> bytes:
    """Upstream: JSON bodies are saved verbatim, anything else is base64-decoded if it can be."""
    stripped = body.strip()
    if stripped[:1] in (b"{", b"["):
        return body
    try:
        return base64.b64decode(stripped, validate=True)
    except ValueError:
        return body


def output_files(output_dir: Path) -> Iterator[tuple[Path, str]]:
    """Every regular file under `output_dir` with its relative POSIX name, cleaned; symlinks,
    hard links and files with an unsafe name are skipped with a warning."""
    for folder, _, files in os.walk(output_dir):
        for name in sorted(files):
            path = Path(folder) / name
            relative = path.relative_to(output_dir).as_posix()
            try:
                info = path.lstat()
            except OSError as exc:
                log.warning("Skipping output %r: %s", relative, exc.strerror)
                continue
            if not stat.S_ISREG(info.st_mode):
                log.warning("Skipping output %r: not a regular file", relative)
                continue
            if info.st_nlink > 1:
                log.warning("Skipping output %r: a hard link (%d links)", relative, info.st_nlink)
                continue
            try:
                yield path, clean_relative(relative)
            except ValueError:
                log.warning("Skipping output %r: unsafe file name", relative)


def _output_bucket(entry: StorageEntry, event: Event, config: FunctionConfig) -> str:
    # USER isolation: each user's uploads go back to their own bucket when it is one of the
    # service's buckets.
    if config.isolation_level == "USER" and event.bucket and event.bucket in config.bucket_list:
        return event.bucket
    return entry.bucket


def stage_out(
    event: Event, workspace: Workspace, config: FunctionConfig, clients: Clients
) -> list[str]:
    """Upload every output file to each output entry whose filters match; return the keys."""
    uploaded: list[str] = []
    files = list(output_files(workspace.output_dir))
    if not files:
        log.info("No output files")
    for path, relative in files:
        for entry in config.outputs:
            if not entry.accepts(relative):
                continue
            bucket = _output_bucket(entry, event, config)
            key = join_key(entry.folder, relative)
            what = f"{entry.storage_provider}:{join_key(bucket, key)}"
            log.info("Uploading %s", what)
            try:
                clients.get(entry.storage_provider).upload(path, bucket, key)
            except ConfigError:
                raise
            except Exception as exc:
                raise StageOutError(f"cannot upload {relative} to {what}: {exc}") from exc
            uploaded.append(what)
    return uploaded


def response(event: Event, workspace: Workspace, script_output: bytes) -> bytes:
    """The return value as upstream: for UNKNOWN events one output file → base64, several →
    a base64 zip; otherwise (and with no files) the script's output."""
    if event.is_storage:
        return script_output
    files = list(output_files(workspace.output_dir))
    if len(files) == 1:
        with files[0][0].open("rb") as handle:
            return base64.b64encode(handle.read())
    if len(files) > 1:
        archive = workspace.root / f"{uuid.uuid4()}.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
            for path, relative in files:
                bundle.write(path, relative)
        return base64.b64encode(archive.read_bytes())
    return script_output


# Variables that steer the supervisor, its runner or the control plane's process tracking: a
# service's variables and secrets never set them for the script.
CONTROL_VARIABLES = frozenset(
    {
        "SCRIPT_WRAPPER",
        "FUNCTION_CONFIG",
        "SCRIPT",
        "PROVIDER_SECRETS_DIR",
        "OSCAR_JOB_MARK",
        "OSCAR_SCRIPT_RUN",
        "OSCAR_SERVICE_NAME",
        "OSCAR_SERVICE_TOKEN",
        "JOB_UUID",
        "EVENT",
        "EVENT_FILE",
        "EVENT_BASE64",
        "EVENT_TIME",
        "STORAGE_OBJECT_KEY",
        "TMP_INPUT_DIR",
        "TMP_OUTPUT_DIR",
        "INPUT_FILE_PATH",
        "MINIO_ACCESS_KEY",
        "MINIO_SECRET_KEY",
    }
)
CONTROL_PREFIXES = ("SUPERVISOR_",)
# Longest event also exported as $EVENT (bytes of UTF-8); $EVENT_FILE always holds it.
EVENT_ENV_MAX = 64 * 1024


def is_control_variable(name: str) -> bool:
    """Whether `name` is one of the supervisor's control variables."""
    return name in CONTROL_VARIABLES or name.startswith(CONTROL_PREFIXES)


def job_environment(
    env: Mapping[str, str], config: FunctionConfig, event: Event, workspace: Workspace
) -> dict[str, str]:
    """The script's environment: ours, the service's variables and secrets (never a control
    variable), and the event's (see the module docstring for `EVENT` and `EVENT_FILE`)."""
    result = dict(env)
    for name, value in {**config.variables, **config.secrets}.items():
        if is_control_variable(name):
            log.warning("Ignoring the service variable %s: the supervisor sets it", name)
            continue
        result[name] = value
    for name in ("EVENT", "EVENT_BASE64", "EVENT_TIME", "STORAGE_OBJECT_KEY"):
        result.pop(name, None)  # a transport's copy of the event must not reach the script
    event_file = workspace.root / "event"
    data = event.raw.encode("utf-8", errors="replace")
    fd = os.open(event_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    result["EVENT_FILE"] = str(event_file)
    if len(data) < EVENT_ENV_MAX and "\0" not in event.raw:
        result["EVENT"] = event.raw
    result.update(
        {
            "TMP_INPUT_DIR": str(workspace.input_dir),
            "TMP_OUTPUT_DIR": str(workspace.output_dir),
        }
    )
    if event.is_storage:
        result["STORAGE_OBJECT_KEY"] = event.key
        result["EVENT_TIME"] = event.time
    for name in ("FUNCTION_CONFIG", "SCRIPT", "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY"):
        result.pop(name, None)  # the script has no business with the supervisor's inputs
    return result


def run_job(
    payload: bytes,
    config: FunctionConfig,
    env: Mapping[str, str],
    *,
    secrets: ProviderSecrets,
    workdir: Path | None = None,
    timeout: float | None = None,
    config_dir: Path | None = None,
) -> bytes:
    """Process one event end to end and return the response bytes; raises on any failure."""
    event = parse_event(payload, config)
    refused = out_of_scope(event, config)
    if refused:
        raise EventError(refused)  # the control plane refuses these too; scripts run elsewhere
    log.info("Event type: %s%s", event.kind, f" ({event.provider})" if event.is_storage else "")
    workspace = Workspace.create(workdir)
    try:
        return _run_in(workspace, event, config, env, timeout, config_dir, secrets)
    finally:
        if not env.get("SUPERVISOR_KEEP_WORKDIR"):
            shutil.rmtree(workspace.root, ignore_errors=True)


def _run_in(
    workspace: Workspace,
    event: Event,
    config: FunctionConfig,
    env: Mapping[str, str],
    timeout: float | None,
    config_dir: Path | None,
    secrets: ProviderSecrets,
) -> bytes:
    script = (
        load_script(env, workspace.root)
        if config_dir is None
        else load_script(env, workspace.root, config_dir)
    )
    clients = Clients(config, env, secrets)
    script_env = job_environment(env, config, event, workspace)
    if event.is_storage and config.file_stage_in:
        log.info("file_stage_in is set: the input is not downloaded")
        script_env["INPUT_FILE_PATH"] = str(workspace.input_dir)
    else:
        script_env["INPUT_FILE_PATH"] = str(stage_in(event, workspace, clients))
    # In memory up to 1 MiB (most answers): a file less to create per job.
    with tempfile.SpooledTemporaryFile(max_size=2**20) as captured:
        run_script(script, script_env, workspace.root, captured, timeout)
        stage_out(event, workspace, config, clients)
        captured.seek(0)
        return response(event, workspace, captured.read())
