"""Function configuration, script and provider credentials, read as upstream does.

Inside Kubernetes the control plane mounts `/oscar/config/function_config.yaml` and `script.sh`;
elsewhere (local processes, Slurm jobs) `FUNCTION_CONFIG` and `SCRIPT` carry them, either as a
path or as base64 text.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from supervisor.errors import ConfigError

# libyaml's safe loader where PyYAML has it: the same documents, several times faster.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
CONFIG_DIR = Path("/oscar/config")
PROVIDER_SECRETS_DIR = Path("/var/run/secrets/providers")
DEFAULT_MINIO_ENDPOINT = "http://minio-service.minio:9000"
DEFAULT_PROVIDER = "minio.default"
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


@dataclass(frozen=True)
class StorageEntry:
    """One `input` or `output` entry: a provider and a path, with optional name filters."""

    storage_provider: str
    path: str
    prefix: tuple[str, ...] = ()
    suffix: tuple[str, ...] = ()

    @property
    def provider_type(self) -> str:
        """`minio`, `s3`, `webdav`, ... (the part before the dot)."""
        return self.storage_provider.split(".", 1)[0]

    @property
    def provider_id(self) -> str:
        """The provider id (the part after the dot; `default` when absent)."""
        parts = self.storage_provider.split(".", 1)
        return parts[1] if len(parts) == 2 and parts[1] else "default"

    @property
    def bucket(self) -> str:
        """First path segment: the bucket for object stores."""
        return self.path.strip("/").split("/", 1)[0]

    @property
    def folder(self) -> str:
        """The path after the bucket (may be empty)."""
        parts = self.path.strip("/").split("/", 1)
        return parts[1] if len(parts) == 2 else ""

    def accepts(self, relative_name: str) -> bool:
        """Whether an output file passes this entry's prefix and suffix filters."""
        base = relative_name.rsplit("/", 1)[-1]
        prefix_ok = not self.prefix or any(base.startswith(p) for p in self.prefix)
        suffix_ok = not self.suffix or any(base.endswith(s) for s in self.suffix)
        return prefix_ok and suffix_ok


@dataclass
class FunctionConfig:
    """What the supervisor needs from the service definition."""

    name: str = ""
    log_level: str = "INFO"
    file_stage_in: bool = False
    inputs: list[StorageEntry] = field(default_factory=list)
    outputs: list[StorageEntry] = field(default_factory=list)
    storage_providers: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    isolation_level: str = "SERVICE"
    bucket_list: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)

    def provider(self, provider_type: str, provider_id: str) -> dict[str, Any]:
        """Credentials of one provider (an empty dict when not configured)."""
        return dict(self.storage_providers.get(provider_type, {}).get(provider_id) or {})


def _decode_base64(value: str, what: str) -> str:
    try:
        # Strict decoding: a typo in a path must not silently decode to an empty configuration.
        return base64.b64decode("".join(value.split()), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} is neither a readable file nor base64 text: {exc}") from None


def _read_path_or_base64(value: str, what: str) -> str:
    """A value that is a path to an existing file, or else base64 text."""
    candidate = Path(value)
    try:
        is_file = candidate.is_file()
    except OSError:  # e.g. a long base64 text is "File name too long"
        is_file = False
    if is_file:
        try:
            return candidate.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read {what} {candidate}: {exc.strerror}") from None
    return _decode_base64(value, what)


def _entries(raw: object, role: str) -> list[StorageEntry]:
    if raw in (None, ""):
        return []
    if not isinstance(raw, list):
        raise ConfigError(f"function config: '{role}' must be a list")
    entries = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or not item.get("path"):
            raise ConfigError(f"function config: {role}[{index}] needs a 'path'")
        provider = str(item.get("storage_provider") or DEFAULT_PROVIDER)
        if "." not in provider:
            provider = f"{provider}.default"
        entries.append(
            StorageEntry(
                storage_provider=provider,
                path=str(item["path"]).strip("/"),
                prefix=tuple(str(p) for p in item.get("prefix") or ()),
                suffix=tuple(str(s) for s in item.get("suffix") or ()),
            )
        )
    return entries


def parse_config(text: str, env: Mapping[str, str]) -> FunctionConfig:
    """Build the configuration from YAML text; upper-case env variables override as upstream."""
    try:
        raw = yaml.load(text, Loader=_SAFE_LOADER) or {}  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise ConfigError(f"function config is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError("function config must be a YAML mapping")
    environment = raw.get("environment") or {}
    level = str(env.get("LOG_LEVEL") or raw.get("log_level") or "INFO").upper()
    stage_in = env.get("FILE_STAGE_IN", str(raw.get("file_stage_in", False)))
    return FunctionConfig(
        name=str(raw.get("name") or ""),
        log_level=level if level in LOG_LEVELS else "INFO",
        file_stage_in=str(stage_in).lower() in {"true", "1", "yes"},
        inputs=_entries(raw.get("input"), "input"),
        outputs=_entries(raw.get("output"), "output"),
        storage_providers=raw.get("storage_providers") or {},
        isolation_level=str(raw.get("isolation_level") or "SERVICE").upper(),
        bucket_list=[str(b) for b in raw.get("bucket_list") or []],
        variables={str(k): str(v) for k, v in (environment.get("variables") or {}).items()},
        secrets={str(k): str(v) for k, v in (environment.get("secrets") or {}).items()},
    )


def load_config(env: Mapping[str, str], config_dir: Path = CONFIG_DIR) -> FunctionConfig:
    """Read the configuration from `/oscar/config/function_config.yaml` or `FUNCTION_CONFIG`."""
    mounted = config_dir / "function_config.yaml"
    if "FUNCTION_CONFIG" in env:
        text = _read_path_or_base64(env["FUNCTION_CONFIG"], "FUNCTION_CONFIG")
    elif mounted.is_file():
        text = mounted.read_text(encoding="utf-8")
    else:
        raise ConfigError(
            f"no function configuration: mount {mounted} or set FUNCTION_CONFIG "
            "(a file path or base64 YAML)"
        )
    return parse_config(text, env)


def load_script(env: Mapping[str, str], workdir: Path, config_dir: Path = CONFIG_DIR) -> Path:
    """The user script as a file: `SCRIPT` (path or base64) or `/oscar/config/script.sh`."""
    if "SCRIPT" in env:
        script = workdir / "script.sh"
        script.write_text(_read_path_or_base64(env["SCRIPT"], "SCRIPT"), encoding="utf-8")
        return script
    mounted = config_dir / "script.sh"
    if mounted.is_file():
        return mounted
    raise ConfigError(f"no script: mount {mounted} or set SCRIPT (a file path or base64 text)")


ProviderSecrets = Mapping[str, Mapping[str, str]]  # "<type>.<id>" -> file name -> content


def load_provider_secrets(secrets_dir: Path, *, consume: bool = False) -> dict[str, dict[str, str]]:
    """The provider secrets mounted under `secrets_dir` (`<type>.<id>/<file>`), read once.

    With `consume`, the files are removed once read: the control plane writes them for this
    job alone, and the script, which runs as the same user, must not find them. A mounted
    Kubernetes Secret is read-only and cannot be consumed; there the keys are the service's
    own scoped ones.
    """
    found: dict[str, dict[str, str]] = {}
    try:
        providers = sorted(p for p in secrets_dir.iterdir() if p.is_dir())
    except OSError:
        return found
    for provider in providers:
        files = {}
        try:
            for item in sorted(provider.iterdir()):
                if item.is_file() and not item.name.startswith("."):
                    files[item.name] = item.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the provider secret {provider}: {exc}") from None
        found[provider.name] = files
    if consume:
        for provider in providers:
            for item in provider.iterdir():
                item.unlink(missing_ok=True)
            provider.rmdir()
    return found


def default_minio_credentials(
    config: FunctionConfig, env: Mapping[str, str], secrets: ProviderSecrets
) -> dict[str, Any]:
    """`minio.default`: endpoint from the config, keys from the mounted secret or the env."""
    provider = config.provider("minio", "default")
    provider.setdefault("endpoint", env.get("MINIO_ENDPOINT") or DEFAULT_MINIO_ENDPOINT)
    provider.setdefault("region", env.get("MINIO_REGION") or "us-east-1")
    mounted = secrets.get(DEFAULT_PROVIDER, {})
    for key, file_name, env_name in (
        ("access_key", "accessKey", "MINIO_ACCESS_KEY"),
        ("secret_key", "secretKey", "MINIO_SECRET_KEY"),
    ):
        if mounted.get(file_name):
            provider[key] = mounted[file_name]
        elif env.get(env_name):
            provider[key] = env[env_name]
    if not provider.get("access_key") or not provider.get("secret_key"):
        raise ConfigError(
            f"no credentials for {DEFAULT_PROVIDER}: mount "
            f"<PROVIDER_SECRETS_DIR>/{DEFAULT_PROVIDER}/{{accessKey,secretKey}} or "
            "set MINIO_ACCESS_KEY and MINIO_SECRET_KEY"
        )
    return provider


def credentials_for(
    config: FunctionConfig,
    provider_type: str,
    provider_id: str,
    env: Mapping[str, str],
    secrets: ProviderSecrets,
) -> dict[str, Any]:
    """Credentials of any provider; `minio.default` is resolved specially."""
    if (provider_type, provider_id) == ("minio", "default"):
        return default_minio_credentials(config, env, secrets)
    provider = config.provider(provider_type, provider_id)
    if not provider:
        raise ConfigError(
            f"storage provider '{provider_type}.{provider_id}' is not defined in the "
            "function configuration"
        )
    return provider


def env_flag(env: Mapping[str, str], name: str) -> bool:
    """Whether an environment variable is set to a true value."""
    return env.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def process_env() -> dict[str, str]:
    """A copy of this process's environment."""
    return dict(os.environ)
