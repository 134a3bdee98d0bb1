"""A pod's folder on the plugin's host: its volumes, one launcher per container, the batch
script that runs them, and what they left behind (state files and logs).

Both backends run the same `run.sh`: init containers one after the other (the first failure
ends the pod), then the containers side by side. Each container's output goes, one line at a
time and prefixed with its UTC time, to `logs/<name>.log`; its start, exit code and end go to
`state/<name>.{started,exit,finished}`. The backend only starts `run.sh` (a process, or a Slurm
batch job) and says whether it is still alive; the container statuses come from these files.

A container runs through apptainer/singularity (`docker://<image>`, each volume bound at its
`mountPath`) when the host has one; natively otherwise, in a private mount namespace
(`unshare --mount`) with each volume bind-mounted at its `mountPath` when the plugin may do that
(root), else with the mount paths rewritten to the volumes' folders in the container's command,
arguments and environment (documented in docs/hpc.md).

Nothing from the pod reaches a shell unquoted: every value is `shlex.quote`d into the scripts,
and names used as file names (pod UID, container and volume names) are checked first.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from string import Template
from typing import Any

from interlink_plugin.models import ContainerLogOpts, RetrievedPodData

#: Kubernetes names (DNS-1123 labels/subdomains) and UIDs: safe as file names.
_SAFE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_SAFE_UID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,127}$")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
GPU_RESOURCE = "nvidia.com/gpu"
SINGULARITY_OPTIONS = "slurm-job.vk.io/singularity-options"
PRE_EXEC = "slurm-job.vk.io/pre-exec"
RUN_TEMPLATE = Path(__file__).with_name("templates") / "run_pod.sh"


class PodError(ValueError):
    """The pod cannot be run as sent (an unsupported volume, an unsafe name, no command)."""


def check_uid(uid: str) -> str:
    """`uid` if it is safe as a folder name (Kubernetes UIDs are), else `PodError`."""
    if not _SAFE_UID.match(uid or ""):
        raise PodError(f"pod UID {uid!r} is not a Kubernetes UID")
    return uid


def _check_name(what: str, name: str) -> str:
    if not _SAFE_NAME.match(name or "") or len(name) > 253:
        raise PodError(f"{what} {name!r} is not a Kubernetes name")
    return name


def container_runtime() -> str | None:
    """apptainer or singularity, when this host has one."""
    return shutil.which("apptainer") or shutil.which("singularity")


def can_bind_mount() -> bool:
    """Whether natively run containers can get private bind mounts (`unshare --mount`, root)."""
    return os.geteuid() == 0 and shutil.which("unshare") is not None


@dataclass(frozen=True)
class Mount:
    """One volume mount of a container: its folder here and where the container sees it."""

    source: Path
    target: str
    read_only: bool


@dataclass(frozen=True)
class ContainerState:
    """What a container's state files say."""

    started: str | None
    exit_code: int | None
    finished: str | None


class PodFolder:
    """The folder of one pod (`<state_dir>/pods/<uid>`)."""

    def __init__(self, root: Path, uid: str) -> None:
        self.uid = check_uid(uid)
        self.path = root / "pods" / uid

    # --- the record ------------------------------------------------------------------------
    @property
    def record_file(self) -> Path:
        return self.path / "pod.json"

    def exists(self) -> bool:
        """Whether the pod was created here (its record is written last)."""
        return self.record_file.exists()

    def read_record(self) -> dict[str, Any]:
        """The pod's record: `name`, `namespace`, `uid`, `job_id`, container names."""
        return dict(json.loads(self.record_file.read_text()))

    def write_record(self, record: dict[str, Any]) -> None:
        """Write the record aside and rename it, so a crash never leaves half of it."""
        partial = self.record_file.with_suffix(".partial")
        partial.write_text(json.dumps(record))
        os.replace(partial, self.record_file)

    # --- preparing ---------------------------------------------------------------------------
    def prepare(self, data: RetrievedPodData, *, runtime: str | None, bind: bool) -> dict[str, Any]:
        """Write volumes, launchers and `run.sh`; return the record (without a job id yet).

        `runtime` is apptainer/singularity's path (None: run natively), `bind` whether native
        containers get private bind mounts.
        """
        pod = data.pod
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        for folder in ("volumes", "containers", "state", "logs", "work"):
            (self.path / folder).mkdir(parents=True, exist_ok=True)
        os.chmod(self.path, 0o700)
        lookups = _Lookups(data)
        volumes = self._write_volumes(lookups, spec.get("volumes") or [])
        init = [c for c in spec.get("initContainers") or []]
        main = [c for c in spec.get("containers") or []]
        if not main:
            raise PodError("the pod has no containers")
        annotations = meta.get("annotations") or {}
        for container in [*init, *main]:
            name = _check_name("container name", container.get("name", ""))
            launcher = self._launcher(
                container, volumes, lookups, pod, annotations, runtime=runtime, bind=bind
            )
            _private(self.path / "containers" / f"{name}.sh", launcher)
        _private(
            self.path / "run.sh",
            _run_script(
                self.path,
                [c["name"] for c in init],
                [c["name"] for c in main],
                annotations.get(PRE_EXEC, ""),
            ),
        )
        return {**pod_record(self.uid, pod), "created": _now()}

    def _write_volumes(self, lookups: _Lookups, volumes: list[dict[str, Any]]) -> dict[str, Path]:
        config_maps, secrets, rendered = lookups.config_maps, lookups.secrets, lookups.rendered
        paths: dict[str, Path] = {}
        for volume in volumes:
            name = _check_name("volume name", volume.get("name", ""))
            folder = self.path / "volumes" / name
            folder.mkdir(parents=True, exist_ok=True)
            paths[name] = folder
            if "configMap" in volume:
                source = volume["configMap"]
                found = config_maps.get(source.get("name"))
                if found is None and not source.get("optional"):
                    raise PodError(f"volume {name}: ConfigMap {source.get('name')!r} was not sent")
                _write_items(folder, found or {}, source, 0o644)
            elif "secret" in volume:
                source = volume["secret"]
                found = secrets.get(source.get("secretName"))
                if found is None and not source.get("optional"):
                    raise PodError(
                        f"volume {name}: Secret {source.get('secretName')!r} was not sent"
                    )
                _write_items(folder, found or {}, source, 0o600)
            elif "projected" in volume:
                _write_items(folder, rendered.get(name) or {}, {}, 0o644)
                for item in volume["projected"].get("sources") or []:
                    if "configMap" in item:
                        cm = config_maps.get(item["configMap"].get("name")) or {}
                        _write_items(folder, cm, item["configMap"], 0o644)
                    elif "secret" in item:
                        secret = secrets.get(item["secret"].get("name")) or {}
                        _write_items(folder, secret, item["secret"], 0o600)
                    # serviceAccountToken and downwardAPI sources: nothing to write here.
            elif "emptyDir" in volume:
                pass  # the folder itself
            else:
                kind = next((k for k in volume if k != "name"), "unknown")
                raise PodError(f"volume {name}: {kind} volumes are not supported by this plugin")
        return paths

    def _launcher(
        self,
        container: dict[str, Any],
        volumes: dict[str, Path],
        lookups: _Lookups,
        pod: dict[str, Any],
        annotations: dict[str, str],
        *,
        runtime: str | None,
        bind: bool,
    ) -> str:
        name = container["name"]
        mounts = []
        for mount in container.get("volumeMounts") or []:
            volume = mount.get("name", "")
            if volume not in volumes:
                raise PodError(f"container {name}: volume {volume!r} is not defined in the pod")
            source = volumes[volume] / (mount.get("subPath") or "")
            target = mount.get("mountPath") or ""
            if not target.startswith("/"):
                raise PodError(f"container {name}: mountPath {target!r} is not absolute")
            mounts.append(Mount(source, target, bool(mount.get("readOnly"))))
        env = lookups.environment(container, pod)
        command = [*(container.get("command") or []), *(container.get("args") or [])]
        workdir = container.get("workingDir") or ""
        if runtime is not None:
            argv = [runtime, "exec", "--cleanenv"]
            if _gpus(container):
                argv.append("--nv")
            argv += shlex.split(annotations.get(SINGULARITY_OPTIONS, ""))
            for m in mounts:
                argv += ["--bind", f"{m.source}:{m.target}{':ro' if m.read_only else ''}"]
            if workdir:
                argv += ["--pwd", workdir]
            argv.append(f"docker://{container.get('image', '')}")
            if not command:
                argv[1] = "run"
            argv += command
            env_words = [f"APPTAINERENV_{k}={v}" for k, v in env.items()]
            env_words += [f"SINGULARITYENV_{k}={v}" for k, v in env.items()]
            return _exec_line(["env", "-i", f"PATH={DEFAULT_PATH}", *env_words], argv, "")
        if not command:
            raise PodError(
                f"container {name}: no command, and no apptainer/singularity on this host to "
                "run the image's entrypoint"
            )
        env.setdefault("PATH", DEFAULT_PATH)
        own_work = self.path / "work" / name
        work = workdir or str(own_work)
        own_work.mkdir(parents=True, exist_ok=True)
        if bind:
            # A mountPath may hide the folder that holds the pod's own files (an emptyDir at
            # /tmp while the plugin's state is under /tmp). So the pod's work folder is
            # entered first and every source is named relative to it, unresolved
            # (--no-canonicalize): the kernel walks such paths from the working directory,
            # which a mount over one of its ancestors does not change.
            setup = [f"cd {shlex.quote(str(own_work))}"]
            for m in sorted(mounts, key=lambda m: m.target.rstrip("/").count("/")):
                source = shlex.quote(os.path.relpath(m.source, own_work))
                target = shlex.quote(m.target)
                setup.append(f"mount --no-canonicalize --bind {source} {target}")
                if m.read_only:
                    setup.append(f"mount --no-canonicalize -o remount,bind,ro {target}")
            if workdir:
                setup.append(f"cd {shlex.quote(workdir)}")
            inner = " && ".join(setup) + ' && exec "$@"'
            argv = ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", inner, "sh"]
            env_words = [f"{k}={v}" for k, v in env.items()]
            return _bind_launcher(
                [m.target for m in mounts], ["env", "-i", *env_words, *argv, *command]
            )
        # No private mounts: the container sees each volume at its folder here instead.
        mapping = sorted(((m.target, str(m.source)) for m in mounts), key=lambda p: -len(p[0]))
        command = [_mapped(word, mapping) for word in command]
        env = {k: _mapped(v, mapping) for k, v in env.items()}
        env_words = [f"{k}={v}" for k, v in env.items()]
        return _exec_line(["env", "-i", *env_words], command, work)

    # --- reading back ------------------------------------------------------------------------
    def state(self, container: str) -> ContainerState:
        """A container's start, exit code and end, as far as they happened."""
        folder = self.path / "state"
        exit_text = _read(folder / f"{container}.exit")
        return ContainerState(
            started=_read(folder / f"{container}.started"),
            exit_code=int(exit_text) if exit_text and exit_text.lstrip("-").isdigit() else None,
            finished=_read(folder / f"{container}.finished"),
        )

    def log_lines(self, container: str) -> Iterator[tuple[str, str]]:
        """(timestamp, line) of everything the container wrote so far."""
        path = self.path / "logs" / f"{_check_name('container name', container)}.log"
        if not path.exists():
            return
        with path.open(errors="replace") as lines:
            for line in lines:
                stamp, _, text = line.rstrip("\n").partition(" ")
                yield stamp, text

    def logs(
        self, container: str, opts: ContainerLogOpts, lines: list[tuple[str, str]] | None = None
    ) -> str:
        """The container's log (or `lines` of it) as `kubectl logs` options ask for it."""
        lines = list(self.log_lines(container)) if lines is None else lines
        if opts.since_seconds > 0:
            since = datetime.now(UTC) - timedelta(seconds=opts.since_seconds)
            lines = [(s, t) for s, t in lines if _parse(s) is None or _parse(s) >= since]
        elif opts.since_time:
            since_time = _parse(opts.since_time)
            if since_time is not None:
                lines = [(s, t) for s, t in lines if _parse(s) is None or _parse(s) >= since_time]
        if opts.tail > 0:
            lines = lines[-opts.tail :]
        text = "".join(f"{s} {t}\n" if opts.timestamps else f"{t}\n" for s, t in lines)
        if opts.limit_bytes > 0:
            text = text.encode()[: opts.limit_bytes].decode(errors="ignore")
        return text

    def remove(self) -> None:
        """Forget the pod: its folder goes."""
        shutil.rmtree(self.path, ignore_errors=True)


def pod_record(uid: str, pod: dict[str, Any]) -> dict[str, Any]:
    """The record of a pod (`pod.json` without a job id): its name, namespace, containers and
    images. Containers whose names are not Kubernetes names are left out: they never name a
    file (`prepare` refuses such a pod)."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}

    def named(key: str) -> list[dict[str, Any]]:
        return [c for c in spec.get(key) or [] if _SAFE_NAME.match(str(c.get("name", "")))]

    init, main = named("initContainers"), named("containers")
    return {
        "uid": uid,
        "name": meta.get("name", ""),
        "namespace": meta.get("namespace", ""),
        "init_containers": [c["name"] for c in init],
        "containers": [c["name"] for c in main],
        "images": {c["name"]: c.get("image", "") for c in [*init, *main]},
    }


class _Lookups:
    """The ConfigMaps and Secrets sent with the pod, decoded into files (name → key → bytes),
    which its volumes and its `env`/`envFrom` refer to."""

    def __init__(self, data: RetrievedPodData) -> None:
        # interLink renders each projected volume into a ConfigMap named after the volume.
        self.rendered = {
            (c.get("metadata") or {}).get("name"): _config_map_files(c)
            for rc in data.containers
            for c in rc.projected_volume_maps
        }
        self.config_maps = {
            (c.get("metadata") or {}).get("name"): _config_map_files(c)
            for rc in data.containers
            for c in rc.config_maps
        }
        self.secrets = {
            (s.get("metadata") or {}).get("name"): _secret_files(s)
            for rc in data.containers
            for s in rc.secrets
        }

    def environment(self, container: dict[str, Any], pod: dict[str, Any]) -> dict[str, str]:
        env: dict[str, str] = {}
        for source in container.get("envFrom") or []:
            prefix = source.get("prefix", "")
            if "configMapRef" in source:
                values = self.config_maps.get(source["configMapRef"].get("name")) or {}
            else:
                values = self.secrets.get((source.get("secretRef") or {}).get("name")) or {}
            env.update({prefix + k: v.decode(errors="replace") for k, v in values.items()})
        for entry in container.get("env") or []:
            name = entry.get("name", "")
            if "valueFrom" not in entry:
                env[name] = str(entry.get("value", ""))
                continue
            ref = entry["valueFrom"]
            if "fieldRef" in ref:
                env[name] = _field(pod, ref["fieldRef"].get("fieldPath", ""))
            elif "secretKeyRef" in ref:
                key = ref["secretKeyRef"]
                raw = (self.secrets.get(key.get("name")) or {}).get(key.get("key", ""), b"")
                env[name] = raw.decode(errors="replace")
            elif "configMapKeyRef" in ref:
                key = ref["configMapKeyRef"]
                raw = (self.config_maps.get(key.get("name")) or {}).get(key.get("key", ""), b"")
                env[name] = raw.decode(errors="replace")
        for name in env:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
                raise PodError(f"environment variable name {name!r} is not valid")
        return env


def _field(pod: dict[str, Any], path: str) -> str:
    """A `fieldRef` (`spec.nodeName`, `metadata.name`, `metadata.labels['x']`, ...)."""
    match = re.match(r"^metadata\.(labels|annotations)\['(.+)'\]$", path)
    if match:
        return str(((pod.get("metadata") or {}).get(match[1]) or {}).get(match[2], ""))
    value: Any = pod
    for part in path.split("."):
        value = value.get(part, "") if isinstance(value, dict) else ""
    return str(value)


def _gpus(container: dict[str, Any]) -> int:
    limits = (container.get("resources") or {}).get("limits") or {}
    raw = str(limits.get(GPU_RESOURCE, "0"))
    return int(raw) if raw.isdigit() else 0


def pod_gpus(pod: dict[str, Any]) -> int:
    """The most GPUs one container of the pod asks for (`nvidia.com/gpu` limits)."""
    spec = pod.get("spec") or {}
    return max((_gpus(c) for c in spec.get("containers") or []), default=0)


def _config_map_files(config_map: dict[str, Any]) -> dict[str, bytes]:
    files = {k: str(v).encode() for k, v in (config_map.get("data") or {}).items()}
    files.update({k: base64.b64decode(v) for k, v in (config_map.get("binaryData") or {}).items()})
    return files


def _secret_files(secret: dict[str, Any]) -> dict[str, bytes]:
    files = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
    files.update({k: str(v).encode() for k, v in (secret.get("stringData") or {}).items()})
    return files


def _write_items(
    folder: Path, files: dict[str, bytes], source: dict[str, Any], default_mode: int
) -> None:
    """Write `files` (all keys, or the `items` mapping key → path) with the volume's mode."""
    mode = int(source.get("defaultMode", default_mode))
    items = source.get("items") or [{"key": k, "path": k} for k in files]
    for item in items:
        key, relative = item.get("key", ""), item.get("path", "")
        if key not in files:
            continue
        parts = relative.split("/")
        if not relative or relative.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise PodError(f"volume item path {relative!r} is not a relative path")
        target = folder.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(files[key])
        os.chmod(target, int(item.get("mode", mode)))


def _mapped(value: str, mapping: list[tuple[str, str]]) -> str:
    for target, source in mapping:
        value = re.sub(rf"(?<![\w/]){re.escape(target)}(?=/|\b|$)", source, value)
    return value


def _bind_launcher(targets: list[str], argv: list[str]) -> str:
    """Run `argv`, first creating the mount points that do not exist on this host (the mounts
    themselves stay private to the container) and removing them again afterwards."""
    create, remove = [], []
    for index, target in enumerate(targets):
        quoted = shlex.quote(target)
        create.append(f"[ -e {quoted} ] || {{ mkdir -p {quoted} && made{index}=1; }}")
        remove.append(f'[ -n "${{made{index}:-}}" ] && rmdir -p {quoted} 2>/dev/null')
    body = [*create, shlex.join(argv), "code=$?", *reversed(remove), 'exit "$code"']
    return "#!/bin/sh\n" + "\n".join(body) + "\n"


def _exec_line(env_words: list[str], argv: list[str], workdir: str) -> str:
    line = shlex.join(["exec", *env_words, *argv])
    cd = f"cd {shlex.quote(workdir)} || exit 127\n" if workdir else ""
    return f"#!/bin/sh\n{cd}{line}\n"


def _run_script(folder: Path, init: list[str], main: list[str], pre_exec: str) -> str:
    """`run.sh` from its template, every value quoted."""
    return _Template(RUN_TEMPLATE.read_text()).substitute(
        folder=shlex.quote(str(folder)),
        pre_exec=pre_exec,
        init_containers=" ".join(shlex.quote(n) for n in init),
        containers=" ".join(shlex.quote(n) for n in main),
    )


class _Template(Template):
    """`@{name}` placeholders, so the shell's own `$` stays verbatim in the template."""

    delimiter = "@"


def _private(path: Path, text: str) -> None:
    path.write_text(text)
    os.chmod(path, 0o700)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(stamp: str) -> datetime | None:
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
