"""The OSCAR service definition (upstream `types.Service`), with upstream JSON/YAML names."""

from __future__ import annotations

import json
import re
import shlex
from decimal import Decimal
from typing import Any, Literal

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from oscar.models.base import OscarModel
from oscar.models.quantity import positive_quantity
from oscar.models.storage import StorageIOConfig, StorageProviders

DEFAULT_OWNER = "cluster_admin"
# Upstream's defaults for an unset (empty) memory and cpu (handlers/create.go).
DEFAULT_MEMORY = "256Mi"
DEFAULT_CPU = "0.2"
# Keys upstream answers but a client never sets (pkg/types/service.go: `yaml:"-"` fields).
_SERVER_ONLY_FIELDS = frozenset({"volume_status", "namespace", "deployment"})
LOG_LEVELS = ("NOTSET", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_LOG_LEVEL_ALIASES = {"WARN": "WARNING", "FATAL": "CRITICAL"}

NAME_MAX_LENGTH = 39
# Every pattern is used with `fullmatch`: `match` with `$` would accept a trailing newline.
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
# The characters of an OCI/Docker image reference (`registry:port/repo/name:tag@sha256:...`,
# Apptainer's `docker://...`); nothing a shell or a batch script would interpret.
IMAGE_MAX_LENGTH = 512
_IMAGE = re.compile(r"[A-Za-z0-9._/:@+-]+")

# Bounds of the resources a service may ask for (base units: cores, bytes).
CPU_MAX = Decimal(10_000)
MEMORY_MIN = Decimal(2**20)  # 1 MiB
MEMORY_MAX = Decimal(2**50)  # 1 PiB
ENV_MAX_VARIABLES = 1000
ANNOTATION_VALUE_MAX_BYTES = 64 * 1024
# Annotations whose value the Slurm backend turns into `#SBATCH` lines (oscar/executors/slurm.py).
SLURM_FLAGS_ANNOTATIONS = ("slurm-job.vk.io/flags", "job.vk.io/flags")


def _scalar_to_str(value: object) -> object:
    """YAML turns `PORT: 8080` and `DEBUG: true` into numbers and booleans; env wants strings."""
    if isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int | float):
        return str(value)
    return value


def _string_map(value: object) -> object:
    if value is None:
        return {}
    if isinstance(value, dict):
        return {k: _scalar_to_str(v) for k, v in value.items()}
    return value


def _check_qualified_key(key: str, what: str) -> None:
    """Validate a Kubernetes label/annotation key: `[prefix/]name`."""
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)):
        raise ValueError(f"{what} key '{key}': prefix '{prefix}' is not a DNS subdomain")
    if not name or len(name) > 63 or not _LABEL_NAME.fullmatch(name):
        raise ValueError(
            f"{what} key '{key}': name must be 1-63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )


# sbatch options a service may not pass through the flags annotation: those the Slurm backend
# sets itself (the job's name, log, folder, its parsable answer, the environment it runs with),
# and those that redirect a file, change the job's identity or environment, or stop `sbatch`
# from submitting and answering at once. Long names match as sbatch does: any unambiguous
# prefix (`--out=...` is `--output=...`).
SLURM_REFUSED_LONG_OPTIONS = (
    "output", "error", "input", "chdir", "job-name", "export", "export-file", "get-user-env",
    "uid", "gid", "wrap", "parsable", "wait", "test-only",
)  # fmt: skip
SLURM_REFUSED_SHORT_OPTIONS = "oeiDJW"
# sbatch's short options that take an argument: in a cluster (`-No`) what follows is its value.
_SBATCH_SHORT_WITH_ARGUMENT = frozenset("aAbBcCdDeFGiJLmMnNopqStwx")


def refused_slurm_option(word: str) -> str | None:
    """The refused sbatch option `word` sets (`--output=x`, `--out=x`, `-ox`, `-Qox`), or None.

    `word` is one flag of the annotation, already known to start with '-'.
    """
    if word.startswith("--"):
        name = word[2:].partition("=")[0]
        refused = next((o for o in SLURM_REFUSED_LONG_OPTIONS if o.startswith(name)), None)
        return None if refused is None else f"--{refused}"
    for letter in word[1:]:  # a cluster of short options: `-Qo/path` is `-Q -o /path`
        if letter in SLURM_REFUSED_SHORT_OPTIONS:
            return f"-{letter}"
        if letter in _SBATCH_SHORT_WITH_ARGUMENT:
            return None  # the rest of the word is this option's value
    return None


def slurm_flag_words(key: str, value: str) -> list[str]:
    """The flags annotation as sbatch options, one per shell word; ValueError naming `key` and
    the offending flag otherwise.

    The Slurm backend writes one `#SBATCH` line per word; a newline, carriage return or NUL
    inside a word would end the directive and start a line the batch shell runs. Each word must
    be an option (`--time=1:00`, not `--time 1:00`), and none of the options oscar sets itself
    or that redirect files, identity or environment (`SLURM_REFUSED_LONG_OPTIONS`).
    """
    try:
        words = shlex.split(value)
    except ValueError as exc:
        raise ValueError(f"annotation '{key}': {exc} in {value!r}") from None
    for word in words:
        if any(ch in word for ch in "\n\r\0"):
            raise ValueError(f"annotation '{key}': the flag {word!r} contains a line break or NUL")
        if not word.startswith("-") or word in ("-", "--"):
            raise ValueError(
                f"annotation '{key}': {word!r} is not an option (each flag starts with '-')"
            )
        if refused := refused_slurm_option(word):
            raise ValueError(
                f"annotation '{key}': the flag {word!r} sets {refused}, which oscar sets itself "
                "or which would redirect the job's files, identity or environment; it is not "
                "allowed"
            )
    return words


class Synchronous(OscarModel):
    """Scaling of the synchronous (`/run`) runtime."""

    min_scale: int = Field(0, ge=0)
    max_scale: int = Field(0, ge=0, description="0 means unlimited")

    @model_validator(mode="after")
    def _ordered(self) -> Synchronous:
        if self.max_scale and self.max_scale < self.min_scale:
            raise ValueError(
                f"max_scale ({self.max_scale}) must be 0 (unlimited) or at least min_scale "
                f"({self.min_scale})"
            )
        return self


class Environment(OscarModel):
    """Environment variables and secrets handed to every job of the service."""

    variables: dict[str, str] = Field(default_factory=dict)
    secrets: dict[str, str] = Field(default_factory=dict)

    @field_validator("variables", "secrets", mode="before")
    @classmethod
    def _coerce(cls, value: object) -> object:
        return _string_map(value)

    @field_validator("variables", "secrets")
    @classmethod
    def _names(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > ENV_MAX_VARIABLES:
            raise ValueError(f"at most {ENV_MAX_VARIABLES} entries (got {len(value)})")
        seen: dict[str, str] = {}
        for key in value:
            if not _ENV_NAME.fullmatch(key):
                raise ValueError(
                    f"{key!r} is not a valid variable name (letters, digits, '_', '-', '.'; "
                    "not starting with a digit)"
                )
            if (other := seen.setdefault(key.lower(), key)) != key:
                raise ValueError(
                    f"'{other}' and '{key}' differ only by case; which one wins would depend "
                    "on the order of the keys"
                )
        return value

    @model_validator(mode="after")
    def _disjoint(self) -> Environment:
        total = len(self.variables) + len(self.secrets)
        if total > ENV_MAX_VARIABLES:
            raise ValueError(
                f"at most {ENV_MAX_VARIABLES} variables and secrets in all (got {total})"
            )
        variables = {key.lower(): key for key in self.variables}
        for key in self.secrets:
            if key.lower() in variables:
                raise ValueError(
                    f"'{key}' is both a variable ('{variables[key.lower()]}') and a secret"
                )
        return self


class Cluster(OscarModel):
    """Credentials of another OSCAR cluster (replicas, federation, delegation)."""

    endpoint: str = ""
    auth_user: str = ""
    auth_password: str = ""
    ssl_verify: bool = True


class Replica(OscarModel):
    """A place a job can be delegated to: another OSCAR service or a plain endpoint."""

    type: Literal["oscar", "endpoint"] = "oscar"
    cluster_id: str = ""
    service_name: str = ""
    url: str = ""
    ssl_verify: bool = True
    priority: int = Field(0, ge=0)
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("type", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        if value is None or value == "":
            return "oscar"
        return value.lower() if isinstance(value, str) else value

    @field_validator("headers", mode="before")
    @classmethod
    def _null_headers(cls, value: object) -> object:
        return _string_map(value)

    @model_validator(mode="after")
    def _target(self) -> Replica:
        if self.type == "endpoint" and not self.url:
            raise ValueError("a replica of type 'endpoint' needs a 'url'")
        if self.type == "oscar" and not (self.cluster_id and self.service_name):
            raise ValueError("a replica of type 'oscar' needs 'cluster_id' and 'service_name'")
        return self


class Federation(OscarModel):
    """Upstream v4 federation settings (v3 kept `replicas` and `delegation` at top level)."""

    group_id: str = ""
    topology: Literal["none", "star", "mesh"] = "none"
    delegation: Literal["static", "random", "load-based", "topsis"] = "static"
    rescheduler_threshold: int = Field(0, ge=0)
    members: list[Replica] = Field(default_factory=list)

    @field_validator("topology", "delegation", mode="before")
    @classmethod
    def _zero_is_default(cls, value: object, info: ValidationInfo) -> object:
        # Go marshals an unset string as "": the default, as upstream reads it.
        if value is None or value == "":
            return cls.model_fields[info.field_name].default
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("members", mode="before")
    @classmethod
    def _null_members(cls, value: object) -> object:
        return [] if value is None else value

    @field_validator("rescheduler_threshold", mode="before")
    @classmethod
    def _null_threshold(cls, value: object) -> object:
        return 0 if value is None else value


def _ports_of(value: int | list[int] | None) -> list[int]:
    """A port setting as a list: upstream v3 sent one number, v4 sends a list; 0 is unset."""
    if value is None:
        return []
    return [value] if isinstance(value, int) else list(value)


# Expose keys upstream marshals with `omitempty`: left out of answers while unset.
_EXPOSE_OMIT_EMPTY = ("api_port", "nodePort", "auth_type", "probe_mode")


class Expose(OscarModel):
    """An always-on exposed HTTP service (Deployment + HPA + Ingress upstream).

    As upstream's `Expose` struct, every field is zero until set: a service without `expose`
    reads back `max_scale: 0` and no `api_port`, which is what clients test to tell whether a
    service is exposed. Upstream's defaults (`min_scale` 1, `max_scale` 10, `cpu_threshold` 80,
    `health_path` "/") are what a zero means once the service is exposed (see the `effective_*`
    properties). Ports may be one number (v3) or a list (v4); they are answered as sent.
    """

    min_scale: int = Field(0, ge=0)
    max_scale: int = Field(0, ge=0, description="0 means upstream's default, 10")
    api_port: int | list[int] | None = None
    cpu_threshold: int = Field(0, ge=0, le=100, description="0 means upstream's default, 80")
    rewrite_target: bool = False
    node_port: int | list[int] | None = Field(None, alias="nodePort")
    default_command: bool = False
    set_auth: bool = False
    auth_type: Literal["", "basic", "forward"] = ""
    health_path: str = ""
    probe_mode: Literal["", "legacy", "direct"] = ""

    @field_validator("min_scale", "max_scale", "cpu_threshold", mode="before")
    @classmethod
    def _null_int(cls, value: object) -> object:
        return 0 if value is None else value

    @field_validator("health_path", "auth_type", "probe_mode", mode="before")
    @classmethod
    def _null_text(cls, value: object) -> object:
        return "" if value is None else value

    @field_validator("api_port", "node_port", mode="after")
    @classmethod
    def _unset_ports(cls, value: int | list[int] | None) -> int | list[int] | None:
        # Go marshals an unset v3 port as 0 and an unset v4 list as null: both mean "none".
        return None if value == 0 or value == [] else value

    @field_validator("api_port")
    @classmethod
    def _ports(cls, value: int | list[int] | None) -> int | list[int] | None:
        for port in _ports_of(value):
            if not 1 <= port <= 65535:
                raise ValueError(f"port {port} is outside 1-65535")
        return value

    @field_validator("node_port")
    @classmethod
    def _node_port(cls, value: int | list[int] | None) -> int | list[int] | None:
        for port in _ports_of(value):
            if port and not 30000 <= port <= 32767:
                raise ValueError(f"nodePort {port} must be 0 or within 30000-32767")
        return value

    @field_validator("health_path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if value and not value.startswith("/"):
            raise ValueError(f"'{value}' must start with '/'")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Expose:
        if self.max_scale and self.max_scale < self.min_scale:
            raise ValueError(
                f"max_scale ({self.max_scale}) must be 0 (the default) or at least min_scale "
                f"({self.min_scale})"
            )
        return self

    @model_serializer(mode="wrap")
    def _omit_empty(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        for key in (*_EXPOSE_OMIT_EMPTY, "node_port"):
            if key in data and data[key] in (None, "", [], 0):
                del data[key]
        return data

    @property
    def exposed(self) -> bool:
        """Whether the service is exposed: upstream tests for a first API port other than 0."""
        return bool(_ports_of(self.api_port))

    @property
    def effective_max_scale(self) -> int:
        """The replica ceiling: upstream's default 10 when unset."""
        return self.max_scale or 10

    @property
    def effective_cpu_threshold(self) -> int:
        """The CPU percentage that scales the service out: upstream's default 80 when unset."""
        return self.cpu_threshold or 80

    @property
    def effective_health_path(self) -> str:
        """The probe path: '/' when unset."""
        return self.health_path or "/"


class Volume(OscarModel):
    """A managed persistent volume mounted into the service's jobs (upstream v4)."""

    name: str = ""
    size: str = ""
    mount_path: str = ""
    lifecycle_policy: str = ""

    @field_validator("size", mode="before")
    @classmethod
    def _size(cls, value: object) -> str:
        return positive_quantity(value, allow_empty=True)

    @field_validator("mount_path")
    @classmethod
    def _mount_path(cls, value: str) -> str:
        if value and not value.startswith("/"):
            raise ValueError(f"'{value}' must be an absolute path")
        return value


class Service(OscarModel):
    """An OSCAR service; field names, JSON/YAML keys and defaults follow upstream `Service`."""

    name: str = Field(description="DNS-1123 label, 1-39 characters")
    cluster_id: str = ""
    image: str
    script: str
    memory: str = DEFAULT_MEMORY
    cpu: str = DEFAULT_CPU
    enable_gpu: bool = False
    enable_sgx: bool = False
    ephemeral_storage_request: str = ""
    total_memory: str = ""
    total_cpu: str = ""
    synchronous: Synchronous = Field(default_factory=Synchronous)
    replicas: list[Replica] = Field(default_factory=list)
    delegation: Literal["", "static", "random", "load-based", "topsis"] = ""
    rescheduler_threshold: int = Field(0, ge=0)
    federation: Federation | None = None
    log_level: str = "INFO"
    alpine: bool = False
    image_prefetch: bool = False
    image_pull_secrets: list[str] = Field(default_factory=list)
    token: str = Field("", description="Read-only: generated by the server on create")
    file_stage_in: bool = False
    input: list[StorageIOConfig] = Field(default_factory=list)
    output: list[StorageIOConfig] = Field(default_factory=list)
    mount: StorageIOConfig | None = None
    expose: Expose = Field(default_factory=Expose)
    environment: Environment = Field(default_factory=Environment)
    annotations: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    vo: str = ""
    storage_providers: StorageProviders = Field(default_factory=StorageProviders)
    clusters: dict[str, Cluster] = Field(default_factory=dict)
    owner: str = Field("", description="Read-only: set by the server")
    visibility: Literal["private", "restricted", "public"] = "private"
    allowed_users: list[str] = Field(default_factory=list)
    isolation_level: Literal["SERVICE", "USER"] = "SERVICE"
    bucket_list: list[str] = Field(default_factory=list)
    interlink_node_name: str = ""
    # Beyond upstream: where this service's jobs run (docs/hpc.md).
    routing: Literal["cloud", "hpc", "auto"] = "cloud"
    volume: Volume | None = None
    kserve: dict[str, Any] | None = None

    # --- field normalisation and validation -----------------------------------------------

    @model_validator(mode="before")
    @classmethod
    def _drop_server_fields(cls, data: Any) -> Any:
        # Upstream's Go clients send back what the server answers: `volume_status`,
        # `namespace` and `deployment` are the server's, not part of a definition.
        if isinstance(data, dict):
            return {
                k: v
                for k, v in data.items()
                if not (isinstance(k, str) and k.lower() in _SERVER_ONLY_FIELDS)
            }
        return data

    @field_validator("name")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if not 1 <= len(value) <= NAME_MAX_LENGTH:
            raise ValueError(f"must be 1-{NAME_MAX_LENGTH} characters long (got {len(value)})")
        if not _DNS_LABEL.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a DNS-1123 label: use lowercase letters, digits and '-', "
                "starting and ending with a letter or digit"
            )
        return value

    @field_validator("image", "script")
    @classmethod
    def _required_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("image")
    @classmethod
    def _image_reference(cls, value: str) -> str:
        # The image is written into the Slurm batch script and handed to container runtimes:
        # only the characters of an OCI reference, so it can never be read as shell syntax.
        value = value.strip()
        if len(value) > IMAGE_MAX_LENGTH:
            raise ValueError(f"must be at most {IMAGE_MAX_LENGTH} characters (got {len(value)})")
        if not _IMAGE.fullmatch(value):
            bad = sorted({ch for ch in value if not _IMAGE.fullmatch(ch)})
            raise ValueError(
                f"{value!r} is not an image reference: only letters, digits and '._/:@+-' are "
                f"allowed (found {', '.join(repr(ch) for ch in bad)})"
            )
        return value

    @field_validator("cpu", mode="before")
    @classmethod
    def _cpu(cls, value: object) -> str:
        # Upstream (create.go `checkValues`): an empty cpu or memory means the default.
        if value is None or value == "":
            return DEFAULT_CPU
        return positive_quantity(value, maximum=CPU_MAX, unit=" cores")

    @field_validator("memory", mode="before")
    @classmethod
    def _memory(cls, value: object) -> str:
        if value is None or value == "":
            return DEFAULT_MEMORY
        return positive_quantity(value, minimum=MEMORY_MIN, maximum=MEMORY_MAX, unit=" bytes")

    @field_validator("cluster_id", "vo", "owner", "token", "interlink_node_name", mode="before")
    @classmethod
    def _null_text(cls, value: object) -> object:
        return "" if value is None else value

    @field_validator(
        "enable_gpu", "enable_sgx", "alpine", "image_prefetch", "file_stage_in", mode="before"
    )
    @classmethod
    def _null_flag(cls, value: object) -> object:
        return False if value is None else value

    @field_validator("rescheduler_threshold", mode="before")
    @classmethod
    def _null_threshold(cls, value: object) -> object:
        return 0 if value is None else value

    @field_validator("ephemeral_storage_request", "total_memory", "total_cpu", mode="before")
    @classmethod
    def _optional_quantity(cls, value: object) -> str:
        return positive_quantity("" if value is None else value, allow_empty=True)

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, value: object) -> str:
        if value is None or value == "":
            return "INFO"
        if not isinstance(value, str):
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)} (got {value!r})")
        level = value.strip().upper()
        level = _LOG_LEVEL_ALIASES.get(level, level)
        if level not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)} (got {value!r})")
        return level

    @field_validator("visibility", mode="before")
    @classmethod
    def _visibility(cls, value: object) -> object:
        if value is None or value == "":
            return "private"
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("isolation_level", mode="before")
    @classmethod
    def _isolation(cls, value: object) -> object:
        if value is None or value == "":
            return "SERVICE"
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("delegation", mode="before")
    @classmethod
    def _delegation(cls, value: object) -> object:
        return "" if value is None else value.strip().lower() if isinstance(value, str) else value

    @field_validator("mount", mode="before")
    @classmethod
    def _empty_mount(cls, value: object) -> object:
        # The upstream dashboard and Go clients always send a zero-valued `mount` object.
        if isinstance(value, dict) and not value.get("path"):
            return None
        return value

    @field_validator(
        "input",
        "output",
        "replicas",
        "image_pull_secrets",
        "allowed_users",
        "bucket_list",
        mode="before",
    )
    @classmethod
    def _null_list(cls, value: object) -> object:
        return [] if value is None else value

    @field_validator("annotations", "labels", mode="before")
    @classmethod
    def _coerce_map(cls, value: object) -> object:
        return _string_map(value)

    @field_validator(
        "clusters", "storage_providers", "synchronous", "expose", "environment", mode="before"
    )
    @classmethod
    def _null_object(cls, value: object) -> object:
        return {} if value is None else value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        for key, label in value.items():
            _check_qualified_key(key, "label")
            if label and (len(label) > 63 or not _LABEL_NAME.fullmatch(label)):
                raise ValueError(
                    f"label '{key}': value '{label}' must be at most 63 letters, digits, '-', '_' "
                    "or '.', starting and ending with a letter or digit"
                )
        return value

    @field_validator("annotations")
    @classmethod
    def _annotations(cls, value: dict[str, str]) -> dict[str, str]:
        for key, annotation in value.items():
            _check_qualified_key(key, "annotation")
            size = len(annotation.encode("utf-8", "surrogatepass"))
            if size > ANNOTATION_VALUE_MAX_BYTES:
                raise ValueError(
                    f"annotation '{key}': the value is {size} bytes, more than the limit of "
                    f"{ANNOTATION_VALUE_MAX_BYTES}"
                )
            if key in SLURM_FLAGS_ANNOTATIONS:
                slurm_flag_words(key, annotation)
        return value

    @field_validator("interlink_node_name")
    @classmethod
    def _node_name(cls, value: str) -> str:
        value = value.strip()
        if value and (len(value) > 253 or not _DNS_SUBDOMAIN.fullmatch(value)):
            raise ValueError(f"'{value}' is not a valid Kubernetes node name")
        return value

    @field_validator("image_pull_secrets")
    @classmethod
    def _secret_names(cls, value: list[str]) -> list[str]:
        for secret in value:
            if len(secret) > 253 or not _DNS_SUBDOMAIN.fullmatch(secret):
                raise ValueError(f"{secret!r} is not a valid Kubernetes secret name")
        return value

    @model_validator(mode="after")
    def _default_buckets(self) -> Service:
        # Upstream: an input/output path with no '/' names a folder in a bucket named after
        # the service. Only bucket-based stores have buckets.
        for entry in (*self.input, *self.output):
            if "/" not in entry.path and entry.provider_type in ("minio", "s3"):
                entry.path = f"{self.name}/{entry.path}"
        return self
